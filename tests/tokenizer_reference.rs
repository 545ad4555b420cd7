//! llama.cpp's own tokenizer test suite: every vocab-only GGUF in
//! `$TERN_REFERENCE_DIR/tokenizer/` with `.inp` / `.out` files, plus the extra Llama 3
//! cases, must give exactly the ids llama.cpp gives (add_special = false,
//! parse_special = false).

use std::path::{Path, PathBuf};

use tern::gguf::GgufFile;
use tern::tokenizer::Tokenizer;

const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"))
        .join("tokenizer");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("tokenizer reference data not found at {}", dir.display());
    }
    eprintln!(
        "\n*** SKIPPING tokenizer reference tests: {} not found (set TERN_REFERENCE_DIR) ***\n",
        dir.display()
    );
    None
}

/// Splits an `.inp` file the way llama.cpp does: on the separator, dropping the last
/// piece only when it is empty.
fn read_inputs(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut parts: Vec<String> = text.split(SEPARATOR).map(str::to_string).collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

fn read_outputs(path: &Path) -> Vec<Vec<u32>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect()
}

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap();
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one case set; returns (passed, total) and prints the first failures.
fn run_cases(tok: &Tokenizer, name: &str, inp: &Path, out: &Path) -> (usize, usize) {
    let inputs = read_inputs(inp);
    let expected = read_outputs(out);
    assert_eq!(inputs.len(), expected.len(), "{name}: inputs vs outputs");
    let mut passed = 0;
    let mut shown = 0;
    for (i, (text, want)) in inputs.iter().zip(&expected).enumerate() {
        let got = tok.tokenize(text, false, false).unwrap();
        if &got == want {
            passed += 1;
        } else if shown < 5 {
            shown += 1;
            eprintln!("{name} case {i}: {text:?}\n  want {want:?}\n  got  {got:?}");
        }
    }
    println!("{name}: {passed}/{} cases pass", inputs.len());
    (passed, inputs.len())
}

fn vocabs_with_tests(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .filter(|p| p.with_extension("gguf.inp").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn every_reference_vocab_matches_llama_cpp() {
    let Some(dir) = reference_dir() else { return };
    let vocabs = vocabs_with_tests(&dir);
    assert!(vocabs.len() >= 9, "expected the 9 vocabularies with tests");
    let mut failures = Vec::new();
    for path in vocabs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let tok = load(&path);
        let (passed, total) = run_cases(
            &tok,
            &name,
            &path.with_extension("gguf.inp"),
            &path.with_extension("gguf.out"),
        );
        if passed != total {
            failures.push(format!("{name}: {passed}/{total}"));
        }
    }
    assert!(
        failures.is_empty(),
        "vocabularies with failures: {failures:?}"
    );
}

#[test]
fn extra_llama3_cases_match_meta_reference() {
    let Some(dir) = reference_dir() else { return };
    let tok = load(&dir.join("ggml-vocab-llama-bpe.gguf"));
    let (passed, total) = run_cases(
        &tok,
        "extra/llama-bpe-tiktoken-s1234",
        &dir.join("extra/llama-bpe-tiktoken-s1234.inp"),
        &dir.join("extra/llama-bpe-tiktoken-s1234.out"),
    );
    assert_eq!(total, 276);
    assert_eq!(passed, total);
}

#[test]
fn vocabularies_without_tests_load() {
    let Some(dir) = reference_dir() else { return };
    for name in ["ggml-vocab-baichuan.gguf", "ggml-vocab-gpt-neox.gguf"] {
        let tok = load(&dir.join(name));
        assert!(tok.n_vocab() > 50_000, "{name}");
        // A round trip through the tokenizer keeps plain text.
        let ids = tok.tokenize("Hello world", false, false).unwrap();
        assert!(!ids.is_empty());
        let text = tok.detokenize(&ids, false, false).unwrap();
        assert_eq!(text.trim_start(), "Hello world", "{name}");
    }
}

/// `other/` holds families BitNet does not use; those of a kind tern supports must pass
/// too, the others must be refused with a clear error.
#[test]
fn other_vocabularies_pass_or_are_refused() {
    let Some(dir) = reference_dir() else { return };
    let other = dir.join("other");
    if !other.is_dir() {
        eprintln!("*** no tokenizer/other/ folder; skipping ***");
        return;
    }
    for path in vocabs_with_tests(&other) {
        let name = format!("other/{}", path.file_name().unwrap().to_string_lossy());
        let file = GgufFile::open(&path).unwrap();
        match Tokenizer::from_gguf(&file) {
            Ok(tok) => {
                let (passed, total) = run_cases(
                    &tok,
                    &name,
                    &path.with_extension("gguf.inp"),
                    &path.with_extension("gguf.out"),
                );
                assert_eq!(passed, total, "{name}");
            }
            Err(e) => {
                println!("{name}: refused: {e}");
                assert!(
                    matches!(e, tern::Error::Unsupported(_)),
                    "{name}: expected an 'unsupported' error, got {e}"
                );
            }
        }
    }
}
