//! Tokenizer speed on long inputs: a 100 KB prompt and 10 MB of one repeated character.
//! Ignored by default (it asserts no time; it checks the results and prints timings):
//!
//! ```text
//! CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
//!     cargo test --release --test tokenizer_bench -- --ignored --nocapture
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use tern::gguf::GgufFile;
use tern::tokenizer::Tokenizer;

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"))
        .join("tokenizer");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "*** SKIPPING tokenizer benchmark: {} not found ***",
            dir.display()
        );
        None
    }
}

/// About `bytes` of varied text: the reference inputs (English, code, CJK, emoji,
/// whitespace runs) repeated.
fn prompt(dir: &Path, bytes: usize) -> String {
    let mut base = std::fs::read_to_string(dir.join("extra/llama-bpe-tiktoken-s1234.inp")).unwrap();
    base = base.replace("\n__ggml_vocab_test__\n", "\n");
    let mut s = String::with_capacity(bytes + base.len());
    while s.len() < bytes {
        s.push_str(&base);
    }
    let mut cut = bytes;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s
}

fn time(label: &str, tok: &Tokenizer, text: &str) {
    time_with(label, tok, text, false);
}

fn time_with(label: &str, tok: &Tokenizer, text: &str, parse_special: bool) {
    let start = Instant::now();
    let ids = tok.tokenize(text, true, parse_special).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let back = tok.detokenize(&ids, true, false).unwrap();
    let start2 = Instant::now();
    let _ = tok.detokenize(&ids, true, false).unwrap();
    let secs2 = start2.elapsed().as_secs_f64();
    println!(
        "{label:<44} {:>9} bytes -> {:>8} tokens: tokenize {:>8.3} s ({:>6.1} MB/s), detokenize {:.3} s",
        text.len(),
        ids.len(),
        secs,
        text.len() as f64 / secs / 1e6,
        secs2
    );
    assert!(!ids.is_empty());
    assert!(back.len() <= text.len() + 1);
}

#[test]
#[ignore]
fn tokenizer_speed() {
    let Some(dir) = reference_dir() else { return };
    let kb100 = prompt(&dir, 100 * 1024);
    for name in ["ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"] {
        let start = Instant::now();
        let tok = Tokenizer::from_gguf(&GgufFile::open(dir.join(name)).unwrap()).unwrap();
        println!("{name}: built in {:.3} s", start.elapsed().as_secs_f64());
        time(&format!("{name} 100 KB prompt"), &tok, &kb100);
        for (what, c) in [("'a'", "a"), ("space", " "), ("'7'", "7"), ("'!'", "!")] {
            let text = c.repeat(10 * 1024 * 1024);
            time(&format!("{name} 10 MB of {what}"), &tok, &text);
        }
        let words = "ab ".repeat(10 * 1024 * 1024 / 3);
        time(&format!("{name} 10 MB of 'ab '"), &tok, &words);
        let text = prompt(&dir, 10 * 1024 * 1024);
        time(&format!("{name} 10 MB prompt"), &tok, &text);
        let markers = "<|eot_id|></s>".repeat(10 * 1024 * 1024 / 14);
        time_with(
            &format!("{name} 10 MB of markers, parse_special"),
            &tok,
            &markers,
            true,
        );
    }
}
