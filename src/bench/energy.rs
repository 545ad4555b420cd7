//! Energy of a measured span. A measurement when the kernel's RAPL counters are readable
//! (`/sys/class/powercap/intel-rapl:N/energy_uj`, whole CPU packages, so other processes'
//! work counts too); otherwise an *estimate*: this process's CPU time times a stated power
//! per busy core. Every reading says which one it is.

use std::path::{Path, PathBuf};

use super::sys::process_cpu_seconds;

/// Power per busy core assumed by the estimate unless told otherwise, in watts.
pub const DEFAULT_WATTS_PER_CORE: f64 = 15.0;

/// Where a reading came from.
#[derive(Debug, Clone, PartialEq)]
pub enum EnergySource {
    /// RAPL package counters (a measurement).
    Rapl,
    /// CPU seconds × watts per core (not a measurement).
    Estimate { watts_per_core: f64 },
}

impl EnergySource {
    /// `"RAPL"` or `"estimate (N W/core x CPU time)"`.
    pub fn label(&self) -> String {
        match self {
            EnergySource::Rapl => "RAPL".to_string(),
            EnergySource::Estimate { watts_per_core } => {
                format!("estimate ({watts_per_core} W/core x CPU time)")
            }
        }
    }

    /// True for an estimate.
    pub fn is_estimate(&self) -> bool {
        matches!(self, EnergySource::Estimate { .. })
    }
}

/// Joules spent over a span and how they were obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyReading {
    pub joules: f64,
    pub source: EnergySource,
}

/// One RAPL package domain: its counter file and wrap-around range.
#[derive(Debug, Clone)]
struct RaplDomain {
    energy_file: PathBuf,
    max_uj: u64,
}

/// The readable top-level RAPL domains (`intel-rapl:N`, not sub-zones) under `root`.
fn rapl_domains(root: &Path) -> Vec<RaplDomain> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<RaplDomain> = dir
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_prefix("intel-rapl:")
                .is_some_and(|rest| !rest.contains(':'))
        })
        .filter_map(|e| {
            let energy_file = e.path().join("energy_uj");
            read_u64(&energy_file)?;
            let max_uj = read_u64(&e.path().join("max_energy_range_uj")).unwrap_or(u64::MAX);
            Some(RaplDomain {
                energy_file,
                max_uj,
            })
        })
        .collect();
    out.sort_by(|a, b| a.energy_file.cmp(&b.energy_file));
    out
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Measures the energy of a span: create with [`EnergyMeter::start`], read with
/// [`EnergyMeter::stop`].
#[derive(Debug, Clone)]
pub struct EnergyMeter {
    rapl: Vec<(RaplDomain, u64)>,
    cpu_start: Option<f64>,
    watts_per_core: f64,
}

impl EnergyMeter {
    /// Starts a span, using RAPL under `/sys/class/powercap` if readable.
    pub fn start(watts_per_core: f64) -> EnergyMeter {
        Self::start_with_root(Path::new("/sys/class/powercap"), watts_per_core)
    }

    /// Starts a span with RAPL domains looked up under `root`.
    pub fn start_with_root(root: &Path, watts_per_core: f64) -> EnergyMeter {
        let rapl = rapl_domains(root)
            .into_iter()
            .filter_map(|d| read_u64(&d.energy_file).map(|v| (d, v)))
            .collect();
        EnergyMeter {
            rapl,
            cpu_start: process_cpu_seconds(),
            watts_per_core,
        }
    }

    /// The energy since `start`; `None` when neither RAPL nor CPU time is available.
    pub fn stop(&self) -> Option<EnergyReading> {
        if !self.rapl.is_empty() {
            let mut uj = 0u64;
            for (d, start) in &self.rapl {
                let now = read_u64(&d.energy_file)?;
                uj += if now >= *start {
                    now - start
                } else {
                    (d.max_uj - start).saturating_add(now)
                };
            }
            return Some(EnergyReading {
                joules: uj as f64 * 1e-6,
                source: EnergySource::Rapl,
            });
        }
        let cpu = process_cpu_seconds()? - self.cpu_start?;
        Some(EnergyReading {
            joules: cpu.max(0.0) * self.watts_per_core,
            source: EnergySource::Estimate {
                watts_per_core: self.watts_per_core,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rapl_counters_and_wraparound() {
        let root = std::env::temp_dir().join(format!("tern-rapl-{}", std::process::id()));
        let pkg = root.join("intel-rapl:0");
        let sub = root.join("intel-rapl:0:0");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(pkg.join("energy_uj"), "999000000\n").unwrap();
        std::fs::write(pkg.join("max_energy_range_uj"), "1000000000\n").unwrap();
        std::fs::write(sub.join("energy_uj"), "5\n").unwrap();
        let m = EnergyMeter::start_with_root(&root, 10.0);
        assert_eq!(m.rapl.len(), 1, "sub-zones are not counted");
        std::fs::write(pkg.join("energy_uj"), "2000000\n").unwrap();
        let r = m.stop().unwrap();
        assert_eq!(r.source, EnergySource::Rapl);
        assert!((r.joules - 3.0).abs() < 1e-9, "{}", r.joules);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn estimate_is_labelled() {
        let m = EnergyMeter::start_with_root(Path::new("/nonexistent"), 12.0);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        if let Some(r) = m.stop() {
            assert!(r.source.is_estimate());
            assert!(r.joules >= 0.0);
            assert!(r.source.label().starts_with("estimate (12 W/core"));
        }
    }
}
