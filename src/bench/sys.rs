//! What the operating system says about this process: peak resident memory and CPU time
//! (Linux `/proc`; `None` elsewhere), and a one-line description of the CPU.

/// Peak resident set size of this process in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmHWM:").map(|k| k * 1024)
}

/// The value in KiB of a `/proc/<pid>/status` line such as `VmHWM:   1912 kB`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time this process has used so far, all threads, in seconds
/// (`/proc/self/schedstat`, nanoseconds).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// The CPU's model name (`/proc/cpuinfo`), or the architecture.
pub fn cpu_description() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let s = "Name:\ttern\nVmHWM:\t    1912 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(status_kib(s, "VmHWM:"), Some(1912));
        assert_eq!(status_kib(s, "VmPeak:"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 0);
            assert!(process_cpu_seconds().is_some());
        }
    }
}
