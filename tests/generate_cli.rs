//! `tern generate`: chat mode, options, the speed summary, and errors that name the
//! problem. (That its tokens equal the C API's and the Rust API's for a seed is in
//! tests/c_examples.rs.)

mod common;

use std::process::{Command, Output};

fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("generate")
        .args(args)
        .output()
        .expect("run tern")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ids(out: &Output) -> Vec<u32> {
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix("ids:"))
        .unwrap_or_else(|| panic!("no ids line in {s}"));
    line.split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

#[test]
fn chat_mode_options_and_summary() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let model = dir.join("bitnet25/ggml-model-i2s.gguf");
    let m = model.to_str().unwrap();
    let chat = tern(&[
        "-m",
        m,
        "-p",
        "Hi",
        "-n",
        "5",
        "--seed",
        "3",
        "--chat",
        "--chat-template",
        "chatml",
        "--system",
        "Be brief.",
        "--repeat-last-n",
        "-1",
        "--repeat-penalty",
        "1.2",
        "-t",
        "1",
        "--ids",
    ]);
    assert!(chat.status.success(), "{}", text(&chat.stderr));
    assert!(ids(&chat).len() <= 5);
    let err = text(&chat.stderr);
    assert!(err.contains("seed: 3"), "{err}");
    let summary = err.lines().last().unwrap();
    assert!(
        summary.starts_with("prompt: ") && summary.contains("tok/s | generation: "),
        "{summary}"
    );
    // Greedy is deterministic whatever the seed; the KV type f32 changes nothing visible
    // in the interface.
    let a = tern(&[
        "-m", m, "-p", "Hello", "-n", "6", "--temp", "0", "--ids", "--seed", "1",
    ]);
    let b = tern(&[
        "-m",
        m,
        "-p",
        "Hello",
        "-n",
        "6",
        "--temp",
        "0",
        "--ids",
        "--seed",
        "2",
        "--kv-type",
        "f32",
        "--no-echo",
    ]);
    assert!(a.status.success() && b.status.success());
    assert_eq!(ids(&a).len(), ids(&b).len());
    assert!(text(&a.stdout).starts_with("Hello"));
    assert!(!text(&b.stdout).starts_with("Hello"));
}

#[test]
fn errors_name_the_problem() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let model = dir.join("bitnet25/ggml-model-i2s.gguf");
    let m = model.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["-p", "x"], "-m FILE is required"),
        (&["-m", m], "-p TEXT is required"),
        (
            &["-m", m, "-p", "x", "--chat", "--chat-template", "nosuch"],
            "format names",
        ),
        (&["-m", m, "-p", "x", "-t", "0"], "at least 1"),
        (
            &["-m", m, "-p", "x", "--repeat-last-n", "-3"],
            "--repeat-last-n",
        ),
    ];
    for (args, want) in cases {
        let out = tern(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
