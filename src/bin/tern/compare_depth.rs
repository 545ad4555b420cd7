//! `tern compare -d N,..`: decoding speed with N tokens already in context. bitnet.cpp's
//! llama-bench has no `-d`, so its side runs bitnet.cpp's `llama-cli` on a prompt that the
//! model's vocabulary reads as exactly N tokens, generating G+1 tokens greedily; the
//! `eval time = X ms / G runs` it prints is the time of the G single-token decode calls at
//! positions N..N+G-1, the same positions `tern bench -p 0 -n G -d N` times (`tgG @ dN`).

use std::path::{Path, PathBuf};

use tern::bench::llama_bench::BenchRecord;
use tern::bench::llama_cli::{parse_llama_cli_timings, prompt_of_n_tokens};
use tern::bench::sys::cpu_description;
use tern::gguf::GgufFile;
use tern::tokenizer::Tokenizer;
use tern::{Error, Result};

use crate::compare_run::{run_child, tail};

/// Micro-batch size of llama-cli's prompt fill (see [`run_llama_cli_at_depth`]).
const MAX_UBATCH: usize = 256;

/// Prompt files of exactly `depth` tokens for `model`, one per depth, in a fresh
/// temporary directory (removed on drop).
pub struct DepthPrompts {
    dir: PathBuf,
    pub files: Vec<(usize, PathBuf)>,
}

impl DepthPrompts {
    pub fn write(model: &str, depths: &[usize]) -> Result<DepthPrompts> {
        let file = GgufFile::open(model)?;
        let tok = Tokenizer::from_gguf(&file)
            .map_err(|e| e.context(format!("{model}: no tokenizer to build the -d prompts")))?;
        let dir = std::env::temp_dir().join(format!("tern-compare-depth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        let mut prompts = DepthPrompts {
            dir,
            files: Vec::new(),
        };
        for &d in depths {
            let text = prompt_of_n_tokens(&tok, d).map_err(|e| e.context(format!("-d {d}")))?;
            let path = prompts.dir.join(format!("prompt-{d}.txt"));
            std::fs::write(&path, text)
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            prompts.files.push((d, path));
        }
        Ok(prompts)
    }
}

impl Drop for DepthPrompts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One llama-cli run: `depth` tokens of prompt from `prompt_file`, then `n_gen` timed
/// decode calls, as a llama-bench-style record `tg{n_gen} @ d{depth}`.
pub fn run_llama_cli_at_depth(
    llama_cli: &Path,
    model: &str,
    prompt_file: &Path,
    depth: usize,
    n_gen: usize,
    n_threads: usize,
    n_batch: usize,
) -> Result<BenchRecord> {
    let args: Vec<String> = [
        "-m".to_string(),
        model.to_string(),
        "-f".into(),
        prompt_file.display().to_string(),
        // The first generated token comes from the prompt's logits; the next n_gen are
        // each one decode call.
        "-n".into(),
        (n_gen + 1).to_string(),
        "--ignore-eos".into(),
        "--temp".into(),
        "0".into(),
        "-t".into(),
        n_threads.to_string(),
        "-b".into(),
        n_batch.to_string(),
        // The prompt is filled untimed; micro-batches of at most 256 tokens because
        // bitnet.cpp's I2_S build crashed (SIGSEGV) on larger ones at one thread with a
        // 2B4T-shape file (llama-bench -p 384 -ub 384 -t 1; -ub 256 runs).
        "-ub".into(),
        n_batch.min(MAX_UBATCH).to_string(),
        "-c".into(),
        (depth + n_gen + 8).to_string(),
        "--no-warmup".into(),
        "--no-display-prompt".into(),
    ]
    .into();
    let who = "bitnet.cpp's llama-cli";
    let out = run_child(llama_cli, &args)?;
    if !out.success {
        return Err(Error::invalid(format!(
            "{who} failed, {} ({} {}); its stderr ends with:\n{}",
            out.status,
            llama_cli.display(),
            args.join(" "),
            tail(&out.stderr, 12)
        )));
    }
    let timings = parse_llama_cli_timings(&out.stderr).map_err(|e| {
        Error::invalid(format!(
            "{who}: {e}; its stderr ends with:\n{}",
            tail(&out.stderr, 12)
        ))
    })?;
    if timings.prompt_tokens != depth {
        return Err(Error::invalid(format!(
            "{who} read the -d {depth} prompt as {} tokens (tern's tokenizer: {depth}), so \
             the depths would differ; its stderr ends with:\n{}",
            timings.prompt_tokens,
            tail(&out.stderr, 12)
        )));
    }
    if timings.eval_runs != n_gen {
        eprintln!(
            "tern compare: {who} made {} decode calls instead of {n_gen} at depth {depth}; \
             its time per call is used",
            timings.eval_runs
        );
    }
    Ok(BenchRecord {
        model_filename: model.to_string(),
        model_type: String::new(),
        model_size: 0,
        model_n_params: 0,
        backend: "CPU".into(),
        n_threads,
        n_batch,
        n_prompt: 0,
        n_gen,
        n_depth: depth,
        test_time: String::new(),
        samples_ns: vec![(timings.eval_ns_per_token() * n_gen as f64).round() as u64],
        cpu_info: cpu_description(),
        build_commit: "bitnet.cpp llama-cli".into(),
        peak_rss_bytes: out.peak_rss_bytes,
        energy_j_per_token: None,
        energy_source: None,
    })
}
