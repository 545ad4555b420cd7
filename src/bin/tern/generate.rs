//! `tern generate`: tokenize a prompt, evaluate it, sample tokens one at a time and
//! stream their text, then print a one-line speed summary (as llama-cli does).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use tern::context::{Context, ContextParams};
use tern::model::{KvType, LoadParams, Model};
use tern::sampling::{Sampler, SamplerParams, SEED_RANDOM};
use tern::tokenizer::ChatMessage;
use tern::{Error, Result};

use crate::args::Args;

const HELP: &str = "\
usage: tern generate -m FILE -p TEXT [-n N] [sampling options] [-t THREADS] [--chat]

  -m, --model FILE        GGUF model
  -p, --prompt TEXT       the prompt
  -n, --n-predict N       tokens to generate at most (default 128); generation also
                          stops at an end-of-generation token
  --temp T                temperature; 0 = greedy (default 0.8)
  --top-k K               keep the K best tokens; 0 = off (default 40)
  --top-p P               nucleus mass; 1 = off (default 0.95)
  --min-p M               drop tokens below M x the best probability; 0 = off (default 0.05)
  --typical P             locally typical mass; 1 = off (default 1)
  --repeat-penalty R      repetition penalty; 1 = off (default 1)
  --repeat-last-n N       penalty window; -1 = the context size (default 64)
  --frequency-penalty F   (default 0)
  --presence-penalty F    (default 0)
  --seed S                seed of the random draw (default: from the clock; printed)
  -t, --threads N         threads for generation (default: one per CPU)
  -tb, --threads-batch N  threads for the prompt (default: as --threads)
  -c, --ctx-size N        context size (default: prompt + n-predict)
  -b, --batch-size N      prompt tokens per evaluation (default 512)
  --kv-type T             KV cache element type: f16 (default) or f32
  --chat                  wrap the prompt as a user message in the chat template
  --chat-template NAME    the template for --chat: a format name (llama3, bitnet,
                          bitnet-hf, falcon3, chatml, phi3) or a Jinja template
                          (default: the model's own)
  --system TEXT           a system message for --chat
  --ids                   after the text, print the generated token ids on a line
                          `ids: ID ID ...`
  --no-echo               do not print the prompt before the generated text

The text streams to standard output; the seed and a one-line speed summary (prompt and
generation tokens per second) go to standard error.";

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let required = |v: Option<String>, what: &str| {
        v.ok_or_else(|| Error::invalid(format!("{what} is required\n\n{HELP}")))
    };
    let model_path = required(args.value(&["-m", "--model"])?, "-m FILE")?;
    let prompt = required(args.value(&["-p", "--prompt"])?, "-p TEXT")?;
    let n_predict: usize = args.parsed(&["-n", "--n-predict"])?.unwrap_or(128);
    let defaults = SamplerParams::default();
    let penalty_last_n: i64 = args
        .parsed(&["--repeat-last-n"])?
        .unwrap_or(defaults.penalty_last_n as i64);
    let mut sp = SamplerParams {
        seed: args.parsed(&["--seed", "-s"])?.unwrap_or(SEED_RANDOM),
        temperature: args.parsed(&["--temp"])?.unwrap_or(defaults.temperature),
        top_k: args.parsed(&["--top-k"])?.unwrap_or(defaults.top_k),
        top_p: args.parsed(&["--top-p"])?.unwrap_or(defaults.top_p),
        min_p: args.parsed(&["--min-p"])?.unwrap_or(defaults.min_p),
        typical_p: args.parsed(&["--typical"])?.unwrap_or(defaults.typical_p),
        penalty_repeat: args
            .parsed(&["--repeat-penalty"])?
            .unwrap_or(defaults.penalty_repeat),
        penalty_freq: args
            .parsed(&["--frequency-penalty"])?
            .unwrap_or(defaults.penalty_freq),
        penalty_present: args
            .parsed(&["--presence-penalty"])?
            .unwrap_or(defaults.penalty_present),
        ..defaults
    };
    let threads: Option<usize> = args.parsed(&["-t", "--threads"])?;
    let threads_batch: Option<usize> = args.parsed(&["-tb", "--threads-batch"])?;
    let ctx_size: Option<usize> = args.parsed(&["-c", "--ctx-size"])?;
    let batch_size: usize = args.parsed(&["-b", "--batch-size"])?.unwrap_or(512);
    let kv_type = match args.value(&["--kv-type"])? {
        None => KvType::F16,
        Some(t) => KvType::from_name(&t)
            .ok_or_else(|| Error::invalid(format!("--kv-type must be f16 or f32, not '{t}'")))?,
    };
    let chat = args.flag(&["--chat"]);
    let chat_template = args.value(&["--chat-template"])?;
    let system = args.value(&["--system"])?;
    let print_ids = args.flag(&["--ids"]);
    let echo = !args.flag(&["--no-echo"]);
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    if threads == Some(0) || threads_batch == Some(0) || batch_size == 0 {
        return Err(Error::invalid(
            "--threads, --threads-batch and --batch-size must be at least 1",
        ));
    }
    if (chat_template.is_some() || system.is_some()) && !chat {
        return Err(Error::invalid(
            "--chat-template and --system go with --chat",
        ));
    }

    let model = Arc::new(Model::load(&model_path, &LoadParams::default())?);
    let tok = model
        .tokenizer()
        .ok_or_else(|| Error::invalid("the model has no tokenizer"))?;
    let text = if chat {
        let mut messages = Vec::new();
        if let Some(s) = &system {
            messages.push(ChatMessage::new("system", s.as_str()));
        }
        messages.push(ChatMessage::new("user", prompt.as_str()));
        tok.apply_chat_template(chat_template.as_deref(), &messages, true)?
    } else {
        prompt.clone()
    };
    // Chat markers written by the template are control tokens.
    let tokens = tok.tokenize(&text, true, chat)?;
    if tokens.is_empty() {
        return Err(Error::invalid("the prompt gives no tokens"));
    }
    let n_ctx = ctx_size.unwrap_or(tokens.len() + n_predict.max(1));
    if tokens.len() >= n_ctx {
        return Err(Error::invalid(format!(
            "the prompt has {} tokens and the context holds {n_ctx}: nothing could be generated",
            tokens.len()
        )));
    }
    sp.penalty_last_n = match penalty_last_n {
        -1 => n_ctx,
        n => {
            usize::try_from(n).map_err(|_| Error::invalid("--repeat-last-n must be >= 0 or -1"))?
        }
    };
    let mut sampler = Sampler::new(sp)?;
    eprintln!("seed: {}", sampler.seed());

    let mut ctx = Context::new(
        model.clone(),
        &ContextParams {
            n_ctx,
            n_batch: batch_size.min(tokens.len()),
            kv_type,
            logits_all: false,
            n_threads: threads.unwrap_or(0),
            n_threads_batch: threads_batch.or(threads).unwrap_or(0),
        },
    )?;

    let mut out = std::io::stdout().lock();
    if echo && !chat {
        write!(out, "{prompt}")?;
        out.flush()?;
    }
    for &t in &tokens {
        sampler.accept(t);
    }
    for chunk in tokens.chunks(ctx.n_batch()) {
        ctx.eval(chunk)?;
    }
    let mut stream = tok.stream(false);
    let mut generated = Vec::new();
    while generated.len() < n_predict {
        let started = Instant::now();
        let logits = ctx.last_logits().expect("eval produced logits");
        let next = sampler.sample(logits)?;
        ctx.record_sample(started.elapsed());
        if tok.is_eog(next) {
            break;
        }
        sampler.accept(next);
        generated.push(next);
        write!(out, "{}", stream.push(next)?)?;
        out.flush()?;
        if generated.len() == n_predict || ctx.n_past() == ctx.n_ctx() {
            break;
        }
        ctx.eval(&[next])?;
    }
    writeln!(out, "{}", stream.finish())?;
    if print_ids {
        let ids: Vec<String> = generated.iter().map(u32::to_string).collect();
        writeln!(out, "ids: {}", ids.join(" "))?;
    }
    out.flush()?;
    // Counted as llama.cpp counts: batches of several tokens are the prompt, evaluations
    // of one token are generation (a one-token prompt counts there too).
    let p = ctx.perf();
    eprintln!(
        "prompt: {} tokens, {:.1} ms, {:.2} tok/s | generation: {} tokens, {} evals, {:.1} ms, {:.2} tok/s | sampling {:.1} ms | load {:.1} ms",
        p.prompt_tokens,
        p.prompt_time.as_secs_f64() * 1e3,
        p.prompt_tokens_per_second(),
        generated.len(),
        p.gen_tokens,
        p.gen_time.as_secs_f64() * 1e3,
        p.gen_tokens_per_second(),
        p.sample_time.as_secs_f64() * 1e3,
        p.load.as_secs_f64() * 1e3,
    );
    Ok(())
}
