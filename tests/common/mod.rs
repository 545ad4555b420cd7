//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// True when running under CI (`CI=true`), where missing reference data is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints a loud skip message, or panics under CI.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("CI=true and {why}");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// The reference data folder (`TERN_REFERENCE_DIR`, default `../shared/reference`), or
/// `None` after a loud skip message when it is absent (a failure under CI).
pub fn reference_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("TERN_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_or_fail(&format!(
            "reference data not found at {} (set TERN_REFERENCE_DIR)",
            dir.display()
        ));
        None
    }
}

/// Every `.gguf` file under `dir`, recursively, sorted.
pub fn gguf_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "gguf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
