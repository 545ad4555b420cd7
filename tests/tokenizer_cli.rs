//! `tern tokenize`, run as a program.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vocab(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    let path = dir.join("tokenizer").join(name);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("reference data not found at {}", path.display());
    }
    eprintln!(
        "\n*** SKIPPING tern tokenize tests: {} not found ***\n",
        path.display()
    );
    None
}

fn tern(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("tokenize")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn prints_ids_json_and_pieces() {
    let Some(v) = vocab("ggml-vocab-llama-bpe.gguf") else {
        return;
    };
    let v = v.to_str().unwrap();
    assert_eq!(tern(&["-m", v, "Hello world"]).1, "128000 9906 1917\n");
    assert_eq!(tern(&["-m", v, "--no-bos", "Hello world"]).1, "9906 1917\n");
    assert_eq!(tern(&["-m", v, "--json", "Hello"]).1, "[128000,9906]\n");
    let (ok, out, _) = tern(&[
        "-m",
        v,
        "--pieces",
        "--parse-special",
        "--",
        "<|eot_id|>--x",
    ]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["128000", "\"<|begin_of_text|>\""]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["128009", "\"<|eot_id|>\""]
    );
    let (_, out, _) = tern(&["-m", v, "--json", "--pieces", "--no-bos", " world"]);
    assert_eq!(out, "[{\"id\":1917,\"piece\":\" world\"}]\n");
}

#[test]
fn reads_text_from_a_file() {
    let Some(v) = vocab("ggml-vocab-llama-spm.gguf") else {
        return;
    };
    let v = v.to_str().unwrap();
    let path = std::env::temp_dir().join(format!("tern-tok-cli-{}.txt", std::process::id()));
    std::fs::write(&path, b"Hello world").unwrap();
    let (ok, out, err) = tern(&["-m", v, "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "{err}");
    assert_eq!(out, tern(&["-m", v, "Hello world"]).1);
}

#[test]
fn errors_are_reported() {
    let (ok, _, err) = tern(&["Hello"]);
    assert!(!ok && err.contains("-m FILE is required"), "{err}");
    let (ok, _, err) = tern(&["-m", "/nonexistent/x.gguf", "Hello"]);
    assert!(!ok && err.contains("/nonexistent/x.gguf"), "{err}");
    let Some(v) = vocab("ggml-vocab-llama-bpe.gguf") else {
        return;
    };
    let (ok, _, err) = tern(&["-m", v.to_str().unwrap()]);
    assert!(!ok && err.contains("expected one TEXT"), "{err}");
    let (ok, _, err) = tern(&["-m", v.to_str().unwrap(), "--bogus", "x"]);
    assert!(!ok && err.contains("--bogus"), "{err}");
}
