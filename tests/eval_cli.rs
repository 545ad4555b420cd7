//! `tern perplexity` and `tern eval` end to end: outputs, determinism across runs and
//! thread counts, the generation tasks, and clear errors naming the line of bad data files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval")
        .join(name)
}

fn model() -> Option<PathBuf> {
    Some(common::reference_dir()?.join("bitnet25/ggml-model-i2s.gguf"))
}

fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "tern failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn failure(o: &Output) -> String {
    assert!(!o.status.success(), "tern should have failed");
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-eval-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Splits a command line at spaces (no argument here has one) and appends `extra`.
fn cmd(line: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = line.split(' ').collect();
    args.extend_from_slice(extra);
    tern(&args)
}

#[test]
fn perplexity_command() {
    let Some(m) = model() else { return };
    let f = data("perplexity.txt");
    let base = format!("perplexity -m {} -f {}", m.display(), f.display());
    let one = cmd(&base, &["-c", "32", "--chunks", "1", "-t", "1"]);
    let out = stdout(&one);
    assert!(out.contains("Final estimate: PPL = "), "{out}");
    let err = String::from_utf8_lossy(&one.stderr);
    assert!(err.contains("[1]"), "{err}");
    let two = cmd(&base, &["-c", "32", "--chunks", "1", "-t", "2"]);
    assert_eq!(stdout(&two), out, "thread count changed the result");
    let json = stdout(&cmd(&base, &["-c", "32", "--chunks", "2", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["n_chunks"], 2);
    assert_eq!(v["count"], 2 * 15);
    let e = failure(&cmd(&base, &["-c", "4096"]));
    assert!(e.contains("needs at least 8192"), "{e}");
}

#[test]
fn choice_tasks_print_accuracy() {
    let Some(m) = model() else { return };
    // Two tasks of each file: the scalar debug build is slow, and tests/eval_tasks.rs
    // checks the scores themselves.
    for (task, file) in [
        ("hellaswag", "hellaswag.txt"),
        ("winogrande", "winogrande.csv"),
        ("multiple-choice", "multiple_choice.bin"),
    ] {
        let f = data(file);
        let base = format!("eval --task {task} -m {} -f {}", m.display(), f.display());
        let out = stdout(&cmd(&base, &["--tasks", "2", "--json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["total"], 2, "{task}");
        assert_eq!(v["results"].as_array().unwrap().len(), 2, "{task}");
        let correct = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["correct"] == true)
            .count();
        assert_eq!(v["correct"], correct, "{task}");
        let text = stdout(&cmd(&base, &["--tasks", "2", "-t", "2"]));
        assert!(
            text.contains("accuracy: ") && text.contains(" +/- "),
            "{text}"
        );
    }
}

#[test]
fn generation_tasks() {
    let Some(m) = model() else { return };
    let f = data("gsm8k.jsonl");
    let base = format!("eval --task gsm8k -m {} -f {}", m.display(), f.display());
    let opts = ["--shots", "3", "--max-tokens", "4", "--tasks", "1"];
    let out = stdout(&cmd(&base, &[&opts[..], &["--json"]].concat()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["results"][0]["expected"], "180");
    let again = stdout(&cmd(&base, &[&opts[..], &["--json", "-t", "2"]].concat()));
    assert_eq!(again, out, "greedy generation changed between runs/threads");
    let chat = stdout(&cmd(
        &base,
        &[&opts[..], &["--chat-template", "llama3"]].concat(),
    ));
    assert!(chat.contains("GSM8K exact match: "), "{chat}");

    let f = data("humaneval.jsonl");
    let samples = scratch("samples.jsonl");
    let base = format!(
        "eval --task humaneval -m {} -f {}",
        m.display(),
        f.display()
    );
    let out = stdout(&cmd(
        &base,
        &["--max-tokens", "4", "-o", samples.to_str().unwrap()],
    ));
    assert!(
        out.contains("wrote 2 completions") && out.contains("never"),
        "{out}"
    );
    let text = std::fs::read_to_string(&samples).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["task_id"], "Sample/0");
    assert_eq!(lines[1]["task_id"], "Sample/1");
    for l in &lines {
        let c = l["completion"].as_str().unwrap();
        for stop in ["\nclass", "\ndef", "\n#", "\nif", "\nprint"] {
            assert!(!c.contains(stop), "completion keeps a stop string: {c:?}");
        }
    }
}

#[test]
fn bad_data_files_name_the_line() {
    let Some(m) = model() else { return };
    let m = m.to_str().unwrap();
    let run = |task: &str, name: &str, bytes: &[u8]| {
        let p = scratch(name);
        std::fs::write(&p, bytes).unwrap();
        failure(&tern(&[
            "eval",
            "--task",
            task,
            "-m",
            m,
            "-f",
            p.to_str().unwrap(),
        ]))
    };
    let hs = std::fs::read(data("hellaswag.txt")).unwrap();
    let e = run("hellaswag", "truncated.txt", &hs[..hs.len() - 40]);
    assert!(e.contains("line 19") && e.contains("multiple of 6"), "{e}");
    let e = run("hellaswag", "empty.txt", b"");
    assert!(e.contains("empty"), "{e}");
    let wg = std::fs::read(data("winogrande.csv")).unwrap();
    let e = run("hellaswag", "wrong-format.txt", &wg[..]);
    assert!(e.contains("line "), "{e}");
    let e = run("winogrande", "bad.csv", b"0,a _ b,x,y,1\n1,a b,x,y,2\n");
    assert!(e.contains("bad.csv") && e.contains("line 2"), "{e}");
    let mc = std::fs::read(data("multiple_choice.bin")).unwrap();
    let e = run("multiple-choice", "truncated.bin", &mc[..mc.len() - 10]);
    assert!(e.contains("task 3") && e.contains("byte"), "{e}");
    let e = run(
        "gsm8k",
        "bad.jsonl",
        b"{\"question\": \"q\", \"answer\": \"#### 1\"}\n{\"answer\": 1}\n",
    );
    assert!(e.contains("line 2"), "{e}");
    let e = failure(&tern(&[
        "eval",
        "--task",
        "hellaswag",
        "-m",
        m,
        "-f",
        "/nonexistent/file",
    ]));
    assert!(e.contains("/nonexistent/file"), "{e}");
    let e = failure(&tern(&[
        "eval",
        "--task",
        "hellaswag",
        "-m",
        m,
        "-f",
        "x",
        "--chat",
    ]));
    assert!(e.contains("gsm8k and humaneval only"), "{e}");
}
