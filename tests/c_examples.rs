//! The C examples (`c_examples/`), compiled with the system's C and C++ compilers through
//! the `cc` crate and linked with the shared library this `cargo test` built, run on the
//! reference model: so the C API is tested where CMake is absent. Also: the same seed
//! gives the same tokens from C (`simple.c`), from the CLI (`tern generate`) and from the
//! Rust API.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use tern::context::{Context, ContextParams};
use tern::model::{LoadParams, Model};
use tern::sampling::{Sampler, SamplerParams};

const PROMPT: &str = "Once upon a time";
const N_PREDICT: usize = 24;
const SEED: u64 = 42;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn reference_model() -> Option<PathBuf> {
    Some(common::reference_dir()?.join("bitnet25/ggml-model-i2s.gguf"))
}

/// The folder holding the `libtern` shared library cargo built for these tests.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps folder");
    let name = format!(
        "{}tern{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    for dir in [deps.parent().expect("profile folder"), deps] {
        if dir.join(&name).is_file() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "{name} was not found next to {} (cargo builds it with the library's cdylib crate type)",
        exe.display()
    );
}

/// The target triple for `cc` (it normally reads it from a build script's environment).
fn target_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        os => panic!("no C compiler set-up for {os} in this test"),
    }
}

/// Compiles one example into an executable linked with the shared library; returns its
/// path. Warnings are errors, as in the CMake build.
fn compile(source: &str) -> PathBuf {
    compile_file(&root().join("c_examples").join(source))
}

/// Compiles a C or C++ file (by its extension) as [`compile`] does.
fn compile_file(src: &Path) -> PathBuf {
    let source = src.file_name().unwrap().to_str().unwrap();
    let cpp = source.ends_with(".cpp");
    let triple = target_triple();
    let mut build = cc::Build::new();
    build
        .cpp(cpp)
        .target(&triple)
        .host(&triple)
        .opt_level(0)
        .debug(true)
        .cargo_metadata(false)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true);
    let compiler = build.get_compiler();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_examples");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(source.replace('.', "_"));
    let lib_dir = library_dir();
    let mut cmd = compiler.to_command();
    if cpp {
        cmd.args(["-std=c++11", "-pedantic"]);
    }
    cmd.arg("-I")
        .arg(root().join("include"))
        .arg(src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-ltern", "-lpthread", "-lm"]);
    let out = cmd.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling {source} failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Each example is compiled once per test process.
fn example(source: &'static str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut b = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = b.iter().find(|(s, _)| *s == source) {
        return p.clone();
    }
    let p = compile(source);
    b.push((source, p.clone()));
    p
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the example");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids of the `ids: ...` line of an output.
fn ids_line(text: &str) -> Vec<u32> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ids:"))
        .unwrap_or_else(|| panic!("no `ids:` line in:\n{text}"));
    line.split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect()
}

/// The generation loop of simple.c, written with the Rust API.
fn rust_api_tokens(model_path: &Path) -> Vec<u32> {
    let model = Arc::new(Model::load(model_path, &LoadParams::default()).unwrap());
    let tok = model.tokenizer().unwrap();
    let prompt = tok.tokenize(PROMPT, true, false).unwrap();
    let mut ctx = Context::new(
        model.clone(),
        &ContextParams {
            n_ctx: prompt.len() + N_PREDICT,
            n_batch: prompt.len(),
            n_threads: 1,
            n_threads_batch: 1,
            ..ContextParams::default()
        },
    )
    .unwrap();
    let mut sampler = Sampler::new(SamplerParams {
        seed: SEED,
        ..SamplerParams::default()
    })
    .unwrap();
    ctx.eval(&prompt).unwrap();
    for &t in &prompt {
        sampler.accept(t);
    }
    let mut out = Vec::new();
    while out.len() < N_PREDICT {
        let next = sampler.sample(ctx.last_logits().unwrap()).unwrap();
        if tok.is_eog(next) {
            break;
        }
        sampler.accept(next);
        out.push(next);
        if out.len() < N_PREDICT {
            ctx.eval(&[next]).unwrap();
        }
    }
    out
}

#[test]
fn same_seed_same_tokens_from_c_cli_and_rust() {
    let Some(model) = reference_model() else {
        return;
    };
    let n = N_PREDICT.to_string();
    let seed = SEED.to_string();
    let c = run(
        Command::new(example("simple.c")).args([model.to_str().unwrap(), PROMPT, &n, &seed]),
        None,
    );
    let c_ids = ids_line(&stdout_of(&c));
    let cli = run(
        Command::new(env!("CARGO_BIN_EXE_tern")).args([
            "generate",
            "-m",
            model.to_str().unwrap(),
            "-p",
            PROMPT,
            "-n",
            &n,
            "--seed",
            &seed,
            "-t",
            "1",
            "--ids",
        ]),
        None,
    );
    let cli_ids = ids_line(&stdout_of(&cli));
    let rust_ids = rust_api_tokens(&model);
    assert!(!rust_ids.is_empty());
    assert_eq!(c_ids, rust_ids, "C (simple.c) and the Rust API differ");
    assert_eq!(cli_ids, rust_ids, "tern generate and the Rust API differ");
    // The texts agree too: simple.c prints the prompt then the pieces, as the CLI does.
    let c_text = stdout_of(&c);
    let cli_text = stdout_of(&cli);
    assert_eq!(
        c_text.lines().next(),
        cli_text.lines().next(),
        "the streamed text differs"
    );
    // The CLI ends with a speed summary on stderr.
    let summary = String::from_utf8_lossy(&cli.stderr);
    assert!(
        summary.contains("tok/s") && summary.contains("prompt:"),
        "{summary}"
    );
    // A different seed gives a different sequence (the seed is used at all).
    let other = run(
        Command::new(example("simple.c")).args([model.to_str().unwrap(), PROMPT, &n, "43"]),
        None,
    );
    assert_ne!(ids_line(&stdout_of(&other)), c_ids);
}

#[test]
fn bad_arguments_give_statuses_from_c() {
    let Some(model) = reference_model() else {
        return;
    };
    let out = run(
        Command::new(example("bad_args.c")).arg(model.to_str().unwrap()),
        None,
    );
    assert!(
        stdout_of(&out).contains("checks passed"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn threads_share_a_model_from_c() {
    let Some(model) = reference_model() else {
        return;
    };
    let out = run(
        Command::new(example("embed_threads.c")).args([model.to_str().unwrap(), "3", "8"]),
        None,
    );
    assert!(
        stdout_of(&out).contains("all 3 threads match"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn chat_reuses_the_cache_across_turns_from_c() {
    let Some(model) = reference_model() else {
        return;
    };
    let out = run(
        Command::new(example("chat.c")).args([model.to_str().unwrap(), "chatml", "6"]),
        Some("Hello there\nTell me more\nAnd then?\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let turns: Vec<(usize, usize, usize)> = err
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("turn ")?;
            let nums: Vec<usize> = rest
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            // turn T: evaluated E prompt tokens, reused R, n_past P
            Some((nums[1], nums[2], nums[3]))
        })
        .collect();
    assert_eq!(turns.len(), 3, "{err}");
    assert_eq!(turns[0].1, 0, "the first turn starts with an empty cache");
    for w in turns.windows(2) {
        // Each turn starts where the previous one ended: the cache was kept.
        assert_eq!(w[1].1, w[0].2, "{err}");
        assert!(w[1].1 > 0);
    }
    assert!(stdout_of(&out).contains("> Tell me more"));
}

#[test]
fn the_header_compiles_as_cpp_and_greedy_matches_the_cli() {
    let Some(model) = reference_model() else {
        return;
    };
    let cpp = run(
        Command::new(example("greedy.cpp")).args([model.to_str().unwrap(), "Hello", "10"]),
        None,
    );
    let cli = run(
        Command::new(env!("CARGO_BIN_EXE_tern")).args([
            "generate",
            "-m",
            model.to_str().unwrap(),
            "-p",
            "Hello",
            "-n",
            "10",
            "--temp",
            "0",
            "--ids",
        ]),
        None,
    );
    assert_eq!(ids_line(&stdout_of(&cpp)), ids_line(&stdout_of(&cli)));
}

/// `include/module.modulemap` makes the header a Clang module (what Swift imports):
/// clang with `-fmodules` must build the module and type-check a use of it.
#[test]
fn the_module_map_builds_as_a_clang_module() {
    if Command::new("clang").arg("--version").output().is_err() {
        eprintln!("\n*** SKIPPED: clang is not installed: the module map is not checked ***\n");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clang_module");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("use_module.c");
    std::fs::write(
        &src,
        "#pragma clang module import tern\n\
         int main(void) {\n\
             tern_context_params p = tern_context_default_params();\n\
             return tern_abi_version() == TERN_ABI_VERSION && p.kv_type == TERN_KV_F16 ? 0 : 1;\n\
         }\n",
    )
    .unwrap();
    let out = Command::new("clang")
        .args(["-fmodules", "-fsyntax-only", "-Wall", "-Werror"])
        .arg(format!(
            "-fmodules-cache-path={}",
            dir.join("cache").display()
        ))
        .arg("-I")
        .arg(root().join("include"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang -fmodules rejected the module:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The C program in README.md's "Using it from C" compiles without warnings and runs.
#[test]
fn the_readme_c_example_compiles_and_runs() {
    let Some(model) = reference_model() else {
        return;
    };
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("## Using it from C")
        .nth(1)
        .expect("README has a 'Using it from C' section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a ```c block");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("readme_example.c");
    std::fs::write(&src, code).unwrap();
    let exe = compile_file(&src);
    let out = run(Command::new(exe).arg(&model), None);
    assert!(!out.stdout.is_empty(), "the README example printed nothing");
}
