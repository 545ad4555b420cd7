//! Replays the fuzzing corpus of the whole-file GGUF target (tests/fuzz_corpus/gguf_parse,
//! grown by `cargo +nightly fuzz run gguf_parse tests/fuzz_corpus/gguf_parse`) through the
//! reader on stable Rust: every input parses or errors, and no view leaves the file.

use std::path::Path;

use tern::gguf::GgufFile;

#[test]
fn gguf_parse_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/gguf_parse");
    let mut n = 0;
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus folder") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        if let Ok(file) = GgufFile::from_bytes(bytes) {
            parsed += 1;
            for t in file.tensors() {
                assert_eq!(file.tensor(&t.name).unwrap().data.len() as u64, t.nbytes);
            }
        }
    }
    assert!(
        n > 50,
        "the corpus should hold the inputs found so far, found {n}"
    );
    eprintln!("{n} corpus inputs replayed, {parsed} parse as GGUF");
}
