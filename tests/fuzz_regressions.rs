//! Replays the saved fuzzing corpora (`tests/fuzz_corpus/<target>/`, grown by
//! `cargo +nightly fuzz run <target> tests/fuzz_corpus/<target>`) and every crash the
//! fuzzers found (`tests/fuzz_crashes/<target>/`, fixed since) through the same target
//! bodies on stable Rust: no input may panic.

use std::path::Path;

use tern::fuzz_harness::TARGETS;

fn replay(folder: &str, name: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(folder)
        .join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&bytes));
        assert!(result.is_ok(), "{} panics", path.display());
        n += 1;
    }
    n
}

#[test]
fn every_corpus_replays_cleanly() {
    for &(name, run) in TARGETS {
        let n = replay("tests/fuzz_corpus", name, run);
        eprintln!("{name}: {n} corpus inputs replayed");
        assert!(n > 0, "the corpus of {name} is empty");
    }
}

#[test]
fn every_crash_found_stays_fixed() {
    for &(name, run) in TARGETS {
        let n = replay("tests/fuzz_crashes", name, run);
        eprintln!("{name}: {n} crash inputs replayed");
    }
}
