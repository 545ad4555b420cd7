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

/// CPU time this process has used so far, all threads, user + system, in seconds
/// (`/proc/self/stat`, in the kernel's fixed 100 Hz user-visible ticks).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu_ticks(&stat).map(|t| t as f64 / 100.0)
}

/// utime + stime from a `/proc/PID/stat` line (fields 14 and 15; the command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis).
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ')' the fields start at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
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
        let stat = "42 (a b) R 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1 0";
        assert_eq!(stat_cpu_ticks(stat), Some(280));
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 0);
            assert!(process_cpu_seconds().is_some());
        }
    }
}
