//! `tern synth`, `tern bench` and `tern compare` end to end on tiny synthetic models. No
//! timing is asserted: only that the runs happen and the outputs have the right shape.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern::bench::llama_bench::parse_llama_bench_json;
use tern::bench::svg::check_well_formed;
use tern::model::{LoadParams, Model};

const TINY: &str = "custom(256,512,2,4,2,600)";

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tern(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn synth(name: &str, ty: &str, head: &str) -> PathBuf {
    let path = tmp(name);
    let p = path.to_str().unwrap();
    let (ok, _, err) = tern(&[
        "synth", p, "--shape", TINY, "--type", ty, "--head", head, "--seed", "5",
    ]);
    assert!(ok, "synth {ty}: {err}");
    assert!(err.contains("wrote"), "progress/summary on stderr: {err}");
    path
}

#[test]
fn synth_files_load_with_their_vocabulary() {
    for (ty, head) in [
        ("i2_s", "f16"),
        ("tq2_0", "q6_k"),
        ("tq1_0", "q8_0"),
        ("sherry", "q4_0"),
    ] {
        let path = synth(&format!("m-{ty}.gguf"), ty, head);
        let model = Model::load(&path, &LoadParams::default()).unwrap();
        assert_eq!(model.info().n_vocab, 600);
        assert_eq!(model.info().n_layer, 2);
        let tok = model.tokenizer().expect("a tokenizer");
        let ids = tok.tokenize("the world", false, false).unwrap();
        assert_eq!(ids.len(), 2, "'the' and ' world' are tokens: {ids:?}");
        assert_eq!(tok.detokenize(&ids, false, false).unwrap(), "the world");
        assert!(tok.bos().is_some());
    }
    let (ok, _, err) = tern(&["synth", tmp("x.gguf").to_str().unwrap(), "--type", "q4_0"]);
    assert!(!ok && err.contains("--type"), "{err}");
    let (ok, _, err) = tern(&["synth"]);
    assert!(!ok && err.contains("one output file"), "{err}");
}

#[test]
fn bench_prints_llama_bench_formats() {
    let path = synth("bench.gguf", "i2_s", "f16");
    let m = path.to_str().unwrap();
    let base = ["bench", "-m", m, "-p", "8", "-n", "4", "-t", "1", "-r", "2"];
    let with = |fmt: &str| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(["-o", fmt]);
        let (ok, out, err) = tern(&a);
        assert!(ok, "{err}");
        out
    };
    let records = parse_llama_bench_json(&with("json")).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].test_name(), "pp8");
    assert_eq!(records[1].test_name(), "tg4");
    for r in &records {
        assert_eq!(r.samples_ns.len(), 2);
        assert_eq!(r.n_threads, 1);
        assert!(
            r.model_type.starts_with("bitnet-b1.58 "),
            "{}",
            r.model_type
        );
        assert!(r.model_n_params > 2 * 256 * 600);
        if cfg!(target_os = "linux") {
            assert!(r.peak_rss_bytes.unwrap() > 0);
            let src = r.energy_source.as_deref().unwrap();
            assert!(src == "RAPL" || src.starts_with("estimate"), "{src}");
        }
    }
    let csv = with("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].contains("avg_ts") && lines[0].contains("n_prompt"));
    let md = with("md");
    let header = md.lines().next().unwrap();
    for col in [
        "model", "size", "params", "backend", "threads", "test", "t/s", "peak RSS", "ms/token",
        "J/token",
    ] {
        assert!(header.contains(col), "{col} in {header}");
    }
    assert!(md.contains("| pp8 |") || md.contains(" pp8 |"), "{md}");
    let (ok, _, err) = tern(&["bench", "-m", m, "-o", "xml"]);
    assert!(!ok && err.contains("md, json or csv"), "{err}");
    let (ok, _, err) = tern(&["bench", "-m", m, "-t", "0"]);
    assert!(!ok && err.contains("-t"), "{err}");
}

#[test]
fn bench_depth_fills_context_before_each_test() {
    let path = synth("bench-depth.gguf", "i2_s", "f16");
    let m = path.to_str().unwrap();
    let args = [
        "bench", "-m", m, "-p", "4", "-n", "3", "-d", "0,6", "-t", "1", "-r", "1", "-o", "json",
    ];
    let (ok, out, err) = tern(&args);
    assert!(ok, "{err}");
    let records = parse_llama_bench_json(&out).unwrap();
    let names: Vec<String> = records.iter().map(|r| r.test_name()).collect();
    assert_eq!(names, ["pp4", "tg3", "pp4 @ d6", "tg3 @ d6"]);
    assert_eq!(records[3].n_depth, 6);
    assert_eq!(records[3].n_tokens(), 3, "the depth is filled untimed");
    assert!(out.contains("\"n_depth\": 6"), "{out}");
    // The long form and a range, as llama-bench reads them; the markdown names the depth.
    let (ok, md, err) = tern(&[
        "bench",
        "-m",
        m,
        "-p",
        "0",
        "-n",
        "2",
        "--n-depth",
        "1-2",
        "-t",
        "1",
        "-r",
        "1",
    ]);
    assert!(ok, "{err}");
    assert!(
        md.contains(" tg2 @ d1 |") && md.contains(" tg2 @ d2 |"),
        "{md}"
    );
    let (ok, _, err) = tern(&["bench", "-m", m, "-d", "x"]);
    assert!(!ok && err.contains("-d"), "{err}");
}

/// A directory that looks like a bitnet.cpp build whose llama-bench is `script`.
fn fake_build(name: &str, script: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let exe = dir.join("bin").join("llama-bench");
    std::fs::write(&exe, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn fixture_json(model: &Path) -> String {
    let one = |p: usize, g: usize, ns: &str| {
        format!(
            r#"{{"build_commit": "fake", "build_number": 0, "cpu_info": "x", "gpu_info": "",
  "model_filename": "{}", "model_type": "bitnet-b1.58 ?B I2_S - 2 bpw ternary",
  "model_size": 1000, "model_n_params": 2000, "n_batch": 2048, "n_threads": 1,
  "n_prompt": {p}, "n_gen": {g}, "test_time": "t", "avg_ns": {ns}, "stddev_ns": 0,
  "avg_ts": 1, "stddev_ts": 0, "samples_ns": [ {ns} ], "samples_ts": [ 1 ]}}"#,
            model.display()
        )
    };
    format!(
        "[\n{},\n{}\n]\n",
        one(8, 0, "1000000"),
        one(0, 4, "2000000")
    )
}

#[cfg(unix)]
#[test]
fn compare_side_by_side_and_its_errors() {
    let model = synth("cmp.gguf", "i2_s", "f16");
    let m = model.to_str().unwrap();
    let json_path = tmp("cmp.json");
    let svg_path = tmp("cmp.svg");
    let fixture = tmp("fixture.json");
    std::fs::write(&fixture, fixture_json(&model)).unwrap();
    let good = fake_build(
        "good-build",
        &format!("#!/bin/sh\ncat '{}'\n", fixture.display()),
    );
    let args = |build: &Path| -> Vec<String> {
        [
            "compare",
            "--bitnet-cpp",
            build.to_str().unwrap(),
            "-m",
            m,
            "-p",
            "8",
            "-n",
            "4",
            "-t",
            "1",
            "-r",
            "2",
            "--json",
            json_path.to_str().unwrap(),
            "--svg",
            svg_path.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a = args(&good);
    let (ok, out, err) = tern(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(out.contains("tern / bitnet.cpp"), "{out}");
    assert!(out.contains("| pp8 ") && out.contains("| tg4 "), "{out}");
    assert!(
        out.contains("8000.00 ± 0.00"),
        "bitnet.cpp's pp8: 8 tokens in 1 ms: {out}"
    );
    assert!(
        out.contains("2000.00 ± 0.00"),
        "bitnet.cpp's tg4: 4 tokens in 2 ms: {out}"
    );
    assert!(err.contains("no llama-perplexity"), "{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2);
    assert_eq!(
        tests[0]["bitnet_cpp"]["samples_ts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(tests[0]["tern"]["samples_ts"].as_array().unwrap().len(), 2);
    assert!(tests[0]["ratio_tern_over_bitnet_cpp"].as_f64().unwrap() > 0.0);
    check_well_formed(&std::fs::read_to_string(&svg_path).unwrap()).unwrap();

    // A build whose llama-bench cannot load the file.
    let failing = fake_build(
        "failing-build",
        "#!/bin/sh\necho 'llama_model_load: error loading model: unknown type' >&2\nexit 1\n",
    );
    let a = args(&failing);
    let (ok, _, err) = tern(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok);
    assert!(
        err.contains("could not benchmark") && err.contains("error loading model"),
        "{err}"
    );

    // No build at all, and no directory.
    let empty = tmp("empty-build");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, err) = tern(
        &a.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .iter()
            .map(|s| {
                if *s == failing.to_str().unwrap() {
                    empty.to_str().unwrap()
                } else {
                    s
                }
            })
            .collect::<Vec<_>>(),
    );
    assert!(!ok && err.contains("no bitnet.cpp build"), "{err}");
    let (ok, _, err) = tern(&["compare", "--bitnet-cpp", "/nonexistent/dir", "-m", m]);
    assert!(!ok && err.contains("no such directory"), "{err}");
    let (ok, _, err) = tern(&[
        "compare",
        "--bitnet-cpp",
        good.to_str().unwrap(),
        "-m",
        "/nonexistent.gguf",
    ]);
    assert!(!ok && err.contains("no such file"), "{err}");
}

/// Adds a `llama-cli` script to a fake build.
#[cfg(unix)]
fn add_llama_cli(build: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let exe = build.join("bin").join("llama-cli");
    std::fs::write(&exe, script).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake llama-cli: keeps a copy of its prompt file, and prints llama.cpp's perf lines
/// with the depth `tern compare` asked for (read back from `-c` = depth + G + 8 and
/// `-n` = G + 1) and `eval` = 2 ms per decode call.
#[cfg(unix)]
fn fake_llama_cli(saved_prompts: &Path, prompt_tokens: &str) -> String {
    format!(
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    -f) f="$2"; shift ;;
    -n) n="$2"; shift ;;
    -c) c="$2"; shift ;;
  esac
  shift
done
g=$((n - 1)); d=$((c - g - 8))
cp "$f" "{dir}/prompt-$d.txt"
p={prompt_tokens}
echo "generated text"
echo "llama_perf_context_print: prompt eval time =      21.09 ms /   $p tokens (    0.17 ms per token,  5831.04 tokens per second)" >&2
echo "llama_perf_context_print:        eval time =   $((2 * g)).00 ms /    $g runs   (    2.00 ms per token,   500.00 tokens per second)" >&2
echo "llama_perf_context_print:       total time =      55.89 ms /   138 tokens" >&2
"#,
        dir = saved_prompts.display()
    )
}

#[cfg(unix)]
#[test]
fn compare_at_depth_runs_llama_cli_on_a_prompt_of_that_many_tokens() {
    let model = synth("cmp-depth.gguf", "i2_s", "f16");
    let m = model.to_str().unwrap();
    let fixture = tmp("fixture-depth.json");
    std::fs::write(&fixture, fixture_json(&model)).unwrap();
    let bench_script = format!("#!/bin/sh\ncat '{}'\n", fixture.display());
    let saved = tmp("saved-prompts");
    std::fs::create_dir_all(&saved).unwrap();
    let json_path = tmp("cmp-depth.json");
    let svg_path = tmp("cmp-depth.svg");
    let run = |build: &Path| {
        tern(&[
            "compare",
            "--bitnet-cpp",
            build.to_str().unwrap(),
            "-m",
            m,
            "-p",
            "8",
            "-n",
            "4",
            "-d",
            "6,20",
            "-t",
            "1",
            "-r",
            "2",
            "--no-logits",
            "--json",
            json_path.to_str().unwrap(),
            "--svg",
            svg_path.to_str().unwrap(),
        ])
    };

    let good = fake_build("depth-build", &bench_script);
    add_llama_cli(&good, &fake_llama_cli(&saved, "$d"));
    let (ok, out, err) = run(&good);
    assert!(ok, "{err}");
    for row in ["| pp8 ", "| tg4 ", "| tg4 @ d6 ", "| tg4 @ d20 "] {
        assert!(out.contains(row), "{row} in {out}");
    }
    assert!(
        out.contains("500.00 ± 0.00"),
        "llama-cli's eval: 4 runs in 8 ms: {out}"
    );
    // The prompt files read as exactly the depth in tokens, BOS included.
    let loaded = Model::load(&model, &LoadParams::default()).unwrap();
    let tok = loaded.tokenizer().unwrap();
    for d in [6, 20] {
        let text = std::fs::read_to_string(saved.join(format!("prompt-{d}.txt"))).unwrap();
        assert_eq!(tok.tokenize(&text, true, false).unwrap().len(), d, "{text}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t["test"].as_str().unwrap()).collect();
    assert_eq!(names, ["pp8", "tg4", "tg4 @ d6", "tg4 @ d20"]);
    assert_eq!(tests[2]["tern"]["samples_ts"].as_array().unwrap().len(), 2);
    assert_eq!(tests[1]["bitnet_cpp_program"], "llama-bench");
    assert_eq!(tests[2]["bitnet_cpp_program"], "llama-cli");
    assert!(out.contains("llama-cli's eval time"), "{out}");
    assert_eq!(
        tests[3]["bitnet_cpp"]["samples_ns"],
        serde_json::json!([8000000, 8000000])
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    check_well_formed(&svg).unwrap();
    assert!(svg.contains("tg4 @ d20"), "{svg}");

    // llama-cli counts another number of prompt tokens: the depths would differ.
    let off = fake_build("depth-off-build", &bench_script);
    add_llama_cli(&off, &fake_llama_cli(&saved, "$((d + 1))"));
    let (ok, _, err) = run(&off);
    assert!(
        !ok && err.contains("read the -d 6 prompt as 7 tokens"),
        "{err}"
    );

    // Output without the perf lines: the error shows the end of its stderr.
    let mute = fake_build("depth-mute-build", &bench_script);
    add_llama_cli(
        &mute,
        "#!/bin/sh\necho 'main: error: unknown argument: --no-warmup' >&2\n",
    );
    let (ok, _, err) = run(&mute);
    assert!(
        !ok && err.contains("prompt eval time") && err.contains("unknown argument: --no-warmup"),
        "{err}"
    );

    // No llama-cli in the build.
    let bare = fake_build("depth-bare-build", &bench_script);
    let (ok, _, err) = run(&bare);
    assert!(
        !ok && err.contains("-d needs bitnet.cpp's llama-cli"),
        "{err}"
    );
    let (ok, _, err) = tern(&[
        "compare",
        "--bitnet-cpp",
        good.to_str().unwrap(),
        "-m",
        m,
        "-n",
        "0",
        "-d",
        "6",
    ]);
    assert!(!ok && err.contains("-d needs a generation length"), "{err}");
}
