//! CPU feature detection and the choice of instruction set, made once per process.
//!
//! `TERN_ISA=scalar|avx2|avx512|neon|dotprod` forces a path (tests use it to exercise each
//! one on a machine that has them all); forcing a path the CPU lacks falls back to the best
//! one it has, and says so in [`system_info`].

use std::fmt;
use std::sync::OnceLock;

/// The CPU features the kernels care about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512vnni: bool,
    pub avx512vbmi: bool,
    pub neon: bool,
    pub dotprod: bool,
    pub i8mm: bool,
}

impl CpuFeatures {
    /// Asks the CPU.
    pub fn detect() -> CpuFeatures {
        #[allow(unused_mut)]
        let mut f = CpuFeatures::default();
        #[cfg(target_arch = "x86_64")]
        {
            f.avx2 = std::arch::is_x86_feature_detected!("avx2");
            f.fma = std::arch::is_x86_feature_detected!("fma");
            f.f16c = std::arch::is_x86_feature_detected!("f16c");
            f.avx512f = std::arch::is_x86_feature_detected!("avx512f");
            f.avx512bw = std::arch::is_x86_feature_detected!("avx512bw");
            f.avx512vl = std::arch::is_x86_feature_detected!("avx512vl");
            f.avx512vnni = std::arch::is_x86_feature_detected!("avx512vnni");
            f.avx512vbmi = std::arch::is_x86_feature_detected!("avx512vbmi");
        }
        #[cfg(target_arch = "aarch64")]
        {
            f.neon = std::arch::is_aarch64_feature_detected!("neon");
            f.dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
            f.i8mm = std::arch::is_aarch64_feature_detected!("i8mm");
        }
        f
    }

    /// Names of the features present, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            (self.avx2, "AVX2"),
            (self.fma, "FMA"),
            (self.f16c, "F16C"),
            (self.avx512f, "AVX512F"),
            (self.avx512bw, "AVX512BW"),
            (self.avx512vl, "AVX512VL"),
            (self.avx512vnni, "AVX512_VNNI"),
            (self.avx512vbmi, "AVX512_VBMI"),
            (self.neon, "NEON"),
            (self.dotprod, "DOTPROD"),
            (self.i8mm, "I8MM"),
        ];
        all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect()
    }

    /// The instruction-set paths this CPU can run, best last.
    pub fn supported_isas(&self) -> Vec<Isa> {
        let mut v = vec![Isa::Scalar];
        if self.avx2 && self.fma && self.f16c {
            v.push(Isa::Avx2);
        }
        if self.avx2 && self.fma && self.f16c && self.avx512f && self.avx512bw && self.avx512vl {
            v.push(Isa::Avx512);
        }
        if self.neon {
            v.push(Isa::Neon);
        }
        if self.neon && self.dotprod {
            v.push(Isa::Dotprod);
        }
        v
    }
}

/// A family of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    Scalar,
    Avx2,
    Avx512,
    Neon,
    Dotprod,
}

impl Isa {
    /// The name used by `TERN_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
        }
    }

    /// Parses a `TERN_ISA` value.
    pub fn from_name(s: &str) -> Option<Isa> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Isa::Scalar,
            "avx2" => Isa::Avx2,
            "avx512" | "avx-512" => Isa::Avx512,
            "neon" => Isa::Neon,
            "dotprod" => Isa::Dotprod,
            _ => return None,
        })
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What was detected and chosen, once per process.
#[derive(Debug, Clone)]
pub struct Selection {
    pub features: CpuFeatures,
    pub isa: Isa,
    /// Set when `TERN_ISA` asked for something that could not be honoured.
    pub note: Option<String>,
}

/// Picks the path given the CPU's features and an optional request.
pub fn choose_isa(features: &CpuFeatures, request: Option<&str>) -> Selection {
    let supported = features.supported_isas();
    let best = *supported.last().expect("scalar is always supported");
    let (isa, note) = match request {
        None => (best, None),
        Some(r) => match Isa::from_name(r) {
            Some(isa) if supported.contains(&isa) => (isa, None),
            Some(isa) => (
                best,
                Some(format!(
                    "TERN_ISA={r}: this CPU cannot run {isa}; using {best}"
                )),
            ),
            None => (
                best,
                Some(format!(
                    "TERN_ISA={r} is not one of scalar, avx2, avx512, neon, dotprod; using {best}"
                )),
            ),
        },
    };
    Selection {
        features: *features,
        isa,
        note,
    }
}

/// The process-wide selection (reads `TERN_ISA` the first time it is called).
pub fn selection() -> &'static Selection {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION.get_or_init(|| {
        let request = std::env::var("TERN_ISA").ok();
        choose_isa(&CpuFeatures::detect(), request.as_deref())
    })
}

/// One line describing the CPU features found and the kernels chosen.
pub fn system_info() -> String {
    let s = selection();
    let feats = s.features.names();
    let mut line = format!(
        "tern {} | arch {} | features: {} | kernels: {}",
        crate::VERSION,
        std::env::consts::ARCH,
        if feats.is_empty() {
            "none".to_string()
        } else {
            feats.join(" ")
        },
        s.isa
    );
    if let Some(n) = &s.note {
        line.push_str(" | ");
        line.push_str(n);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forcing_a_path() {
        let all = CpuFeatures {
            avx2: true,
            fma: true,
            f16c: true,
            avx512f: true,
            avx512bw: true,
            avx512vl: true,
            ..Default::default()
        };
        assert_eq!(choose_isa(&all, None).isa, Isa::Avx512);
        assert_eq!(choose_isa(&all, Some("avx2")).isa, Isa::Avx2);
        assert_eq!(choose_isa(&all, Some("scalar")).isa, Isa::Scalar);
        let s = choose_isa(&all, Some("neon"));
        assert_eq!(s.isa, Isa::Avx512);
        assert!(s.note.unwrap().contains("cannot run neon"));
        assert!(choose_isa(&all, Some("bogus")).note.is_some());
        assert_eq!(choose_isa(&CpuFeatures::default(), None).isa, Isa::Scalar);
    }
}
