//! `tern perplexity`: perplexity over a text file, computed as llama-perplexity computes it.

use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::eval::data::prompt_bytes;
use tern::eval::perplexity::{perplexity, PerplexityParams};
use tern::model::{KvType, LoadParams, Model};
use tern::{Error, Result};

use crate::args::Args;

const HELP: &str = "\
usage: tern perplexity -m FILE -f TEXT.txt [-c 512] [-b 2048] [--chunks N] [-t N]
                       [--kv-type f16|f32] [--json]

  -m, --model FILE   GGUF model
  -f, --file TEXT    the text (e.g. wikitext-2-raw's wiki.test.raw)
  -c, --ctx-size N   tokens per chunk (default 512, as llama-perplexity)
  -b, --batch-size N tokens per evaluation within a chunk (default 2048, capped at -c)
  --chunks N         evaluate at most N chunks (default: all)
  -t, --threads N    worker threads (the result does not depend on it)
  --kv-type T        KV cache element type: f16 (default, as llama.cpp) or f32
  --json             print the result as JSON

The text is tokenized once with BOS; each chunk of -c tokens is evaluated from an empty
cache with its first token replaced by BOS, and only its second half is scored. Progress
([chunk]running-PPL) goes to stderr; the final estimate to stdout:
  Final estimate: PPL = X +/- Y";

/// Options shared with `tern eval`.
pub struct RunOptions {
    pub model: String,
    pub data: String,
    pub threads: usize,
    pub kv_type: KvType,
    pub json: bool,
}

pub fn common_options(args: &mut Args, help: &str) -> Result<RunOptions> {
    let model = args
        .value(&["-m", "--model"])?
        .ok_or_else(|| Error::invalid(format!("-m FILE is required\n\n{help}")))?;
    let data = args
        .value(&["-f", "--file"])?
        .ok_or_else(|| Error::invalid(format!("-f FILE is required\n\n{help}")))?;
    let threads: usize = args.parsed(&["-t", "--threads"])?.unwrap_or(1);
    if threads == 0 {
        return Err(Error::invalid("--threads must be at least 1"));
    }
    let kv_type = match args.value(&["--kv-type"])? {
        None => KvType::F16,
        Some(t) => KvType::from_name(&t)
            .ok_or_else(|| Error::invalid(format!("--kv-type must be f16 or f32, not '{t}'")))?,
    };
    let json = args.flag(&["--json"]);
    Ok(RunOptions {
        model,
        data,
        threads,
        kv_type,
        json,
    })
}

impl RunOptions {
    /// The context for a run: `-t N` gives it N threads for batches and single tokens alike.
    pub fn context_params(&self, n_ctx: usize, n_batch: usize, logits_all: bool) -> ContextParams {
        ContextParams {
            n_ctx,
            n_batch: n_batch.min(n_ctx),
            kv_type: self.kv_type,
            logits_all,
            n_threads: self.threads,
            n_threads_batch: self.threads,
        }
    }
}

pub fn read_file(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let opts = common_options(&mut args, HELP)?;
    let n_ctx: usize = args.parsed(&["-c", "--ctx-size"])?.unwrap_or(512);
    let n_batch: usize = args.parsed(&["-b", "--batch-size"])?.unwrap_or(2048);
    let max_chunks: Option<usize> = args.parsed(&["--chunks"])?;
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    if n_batch == 0 {
        return Err(Error::invalid("-b must be at least 1"));
    }
    let bytes = read_file(&opts.data)?;
    let model = Arc::new(Model::load(&opts.model, &LoadParams::default())?);
    let tok = model
        .tokenizer()
        .ok_or_else(|| Error::model("the model file has no tokenizer"))?;
    let mut ctx = Context::new(model.clone(), &opts.context_params(n_ctx, n_batch, true))?;
    let params = PerplexityParams { n_ctx, max_chunks };
    let report = perplexity(
        &mut ctx,
        tok,
        prompt_bytes(&bytes),
        &params,
        &mut |done, total, line| {
            eprint!("{line},");
            if done == total {
                eprintln!();
            }
        },
    )
    .map_err(|e| e.context(&opts.data))?;
    if opts.json {
        let v = serde_json::json!({
            "ppl": report.ppl,
            "ppl_error": report.ppl_error,
            "mean_nll": report.mean_nll,
            "n_tokens": report.n_tokens,
            "n_chunks": report.n_chunks,
            "n_ctx": n_ctx,
            "count": report.count,
            "running": report.running,
        });
        println!("{v}");
    } else {
        println!(
            "{} tokens, {} chunks of {n_ctx}, {} tokens scored",
            report.n_tokens, report.n_chunks, report.count
        );
        match report.ppl_error {
            Some(e) => println!("Final estimate: PPL = {:.4} +/- {e:.5}", report.ppl),
            None => println!(
                "Final estimate: PPL = {:.4} (no error estimate)",
                report.ppl
            ),
        }
    }
    Ok(())
}
