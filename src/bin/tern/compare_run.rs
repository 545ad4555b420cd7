//! Running the two benchmark programs as child processes, the same way for both: argv,
//! stdout captured (llama-bench `-o json`), stderr kept for error messages, and the child's
//! peak resident memory sampled from `/proc/PID/status` while it runs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tern::bench::llama_bench::{parse_llama_bench_json, BenchRecord};
use tern::bench::sys::status_kib;
use tern::{Error, Result};

/// The bitnet.cpp programs `tern compare` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct BitnetCppBuild {
    pub llama_bench: PathBuf,
    pub llama_perplexity: Option<PathBuf>,
    /// Needed for `tern compare -d` (llama-bench of bitnet.cpp's age has no `-d`).
    pub llama_cli: Option<PathBuf>,
}

/// Finds bitnet.cpp's binaries under `dir`: `dir/bin`, `dir/build/bin` or `dir` itself.
pub fn find_build(dir: &Path) -> Result<BitnetCppBuild> {
    if !dir.is_dir() {
        return Err(Error::NotFound(format!(
            "--bitnet-cpp {}: no such directory",
            dir.display()
        )));
    }
    for bin in [
        dir.join("bin"),
        dir.join("build").join("bin"),
        dir.to_path_buf(),
    ] {
        let bench = bin.join("llama-bench");
        if bench.is_file() {
            let ppl = bin.join("llama-perplexity");
            let cli = bin.join("llama-cli");
            return Ok(BitnetCppBuild {
                llama_bench: bench,
                llama_perplexity: ppl.is_file().then_some(ppl),
                llama_cli: cli.is_file().then_some(cli),
            });
        }
    }
    Err(Error::NotFound(format!(
        "--bitnet-cpp {}: no bitnet.cpp build there (looked for bin/llama-bench, \
         build/bin/llama-bench and llama-bench); build it with cmake (see docs/PERF.md)",
        dir.display()
    )))
}

/// What a child printed and its peak memory.
pub struct ChildOutput {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    /// How it ended, e.g. `exit status: 1` or `signal: 11 (SIGSEGV) (core dumped)`.
    pub status: String,
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `program args`, polling its peak RSS every 10 ms.
pub fn run_child(program: &Path, args: &[String]) -> Result<ChildOutput> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("cannot run {}: {e}", program.display())))?;
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status_kib(&text, "VmHWM:") {
                peak = Some(peak.unwrap_or(0).max(kib * 1024));
            }
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(ChildOutput {
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
        success: status.success(),
        status: status.to_string(),
        peak_rss_bytes: peak,
    })
}

/// The last `n` lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a llama-bench-compatible program with `-o json` and reads its records, with the
/// child's peak RSS filled in. `who` names it in errors.
pub fn run_bench_json(who: &str, program: &Path, args: &[String]) -> Result<Vec<BenchRecord>> {
    let out = run_child(program, args)?;
    if !out.success {
        return Err(Error::invalid(format!(
            "{who} failed, {} ({} {}):\n{}",
            out.status,
            program.display(),
            args.join(" "),
            tail(&out.stderr, 12)
        )));
    }
    let mut records = parse_llama_bench_json(&out.stdout).map_err(|e| {
        Error::invalid(format!(
            "{who}: {e}; its stderr ends with:\n{}",
            tail(&out.stderr, 12)
        ))
    })?;
    if records.is_empty() {
        return Err(Error::invalid(format!(
            "{who} printed no results; its stderr ends with:\n{}",
            tail(&out.stderr, 12)
        )));
    }
    for r in &mut records {
        r.peak_rss_bytes = out.peak_rss_bytes;
    }
    Ok(records)
}
