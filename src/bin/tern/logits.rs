//! `tern logits`: feed token ids to a model exactly as given and write the logits, the
//! interface the reference comparisons with bitnet.cpp use.

use std::io::Write;
use std::sync::Arc;

use tern::context::{argmax, Context, ContextParams};
use tern::model::{KvType, LoadParams, Model};
use tern::{Error, Result};

use crate::args::Args;

const HELP: &str = "\
usage: tern logits -m FILE --tokens 1,2,3 [--all-positions] [--incremental]
                   [--threads N] [--out FILE.f32] [--greedy N] [--kv-type f16|f32]

  -m, --model FILE   GGUF model
  --tokens IDS       comma-separated token ids, fed exactly as given (no BOS added)
  --all-positions    output the logits of every prompt position (else the last only)
  --incremental      feed the prompt one token per evaluation (else as one batch)
  --threads N        worker threads (accepted; evaluation is single-threaded for now)
  --out FILE         write raw little-endian f32 logits: positions x n_vocab
  --greedy N         then generate N tokens greedily (argmax, ties to the lowest id)
                     and print them as `greedy: ID ID ...`
  --kv-type T        KV cache element type: f16 (default) or f32

Prints the top-5 ids (with their logits) of every output position.";

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let model_path = args
        .value(&["-m", "--model"])?
        .ok_or_else(|| Error::invalid(format!("-m FILE is required\n\n{HELP}")))?;
    let tokens_text = args
        .value(&["--tokens"])?
        .ok_or_else(|| Error::invalid(format!("--tokens is required\n\n{HELP}")))?;
    let all_positions = args.flag(&["--all-positions"]);
    let incremental = args.flag(&["--incremental"]);
    let threads: usize = args.parsed(&["--threads", "-t"])?.unwrap_or(1);
    let out_path = args.value(&["--out", "-o"])?;
    let greedy: usize = args.parsed(&["--greedy"])?.unwrap_or(0);
    let kv_type = match args.value(&["--kv-type"])? {
        None => KvType::F16,
        Some(t) => KvType::from_name(&t)
            .ok_or_else(|| Error::invalid(format!("--kv-type must be f16 or f32, not '{t}'")))?,
    };
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    if threads == 0 {
        return Err(Error::invalid("--threads must be at least 1"));
    }
    let tokens = parse_tokens(&tokens_text)?;

    let model = Arc::new(Model::load(&model_path, &LoadParams::default())?);
    let params = ContextParams {
        n_ctx: tokens.len() + greedy.max(1),
        n_batch: tokens.len(),
        kv_type,
        logits_all: all_positions,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model, &params)?;
    let n_vocab = ctx.n_vocab();

    // Rows of logits in prompt order: every position, or the last.
    let mut rows: Vec<f32> = Vec::new();
    if incremental {
        for (i, &t) in tokens.iter().enumerate() {
            ctx.eval(&[t])?;
            if all_positions || i + 1 == tokens.len() {
                rows.extend_from_slice(ctx.last_logits().expect("eval produced logits"));
            }
        }
    } else {
        ctx.eval(&tokens)?;
        rows.extend_from_slice(ctx.logits());
    }
    let first_pos = if all_positions { 0 } else { tokens.len() - 1 };
    for (r, row) in rows.chunks_exact(n_vocab).enumerate() {
        println!("pos {:>4}: {}", first_pos + r, top_k_text(row, 5));
    }
    if let Some(path) = &out_path {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| Error::Io(format!("{path}: {e}")))?,
        );
        for v in &rows {
            f.write_all(&v.to_le_bytes())?;
        }
        f.flush()?;
    }

    if greedy > 0 {
        let last = &rows[rows.len() - n_vocab..];
        let mut next = argmax(last).expect("n_vocab > 0") as u32;
        let mut generated = vec![next];
        while generated.len() < greedy {
            ctx.eval(&[next])?;
            next = argmax(ctx.last_logits().expect("eval produced logits")).expect("n_vocab > 0")
                as u32;
            generated.push(next);
        }
        let ids: Vec<String> = generated.iter().map(u32::to_string).collect();
        println!("greedy: {}", ids.join(" "));
    }
    Ok(())
}

fn parse_tokens(text: &str) -> Result<Vec<u32>> {
    let tokens: Vec<u32> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| Error::invalid(format!("--tokens: '{s}' is not a token id")))
        })
        .collect::<Result<_>>()?;
    if tokens.is_empty() {
        return Err(Error::invalid("--tokens needs at least one id"));
    }
    Ok(tokens)
}

/// `id (logit) ...` of the `k` largest logits, largest first, ties to the lower id.
fn top_k_text(row: &[f32], k: usize) -> String {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.iter()
        .take(k)
        .map(|&i| format!("{i} ({:.4})", row[i]))
        .collect::<Vec<_>>()
        .join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_top_k() {
        assert_eq!(parse_tokens("1, 2,3").unwrap(), vec![1, 2, 3]);
        assert!(parse_tokens("1,x").is_err());
        assert!(parse_tokens("").is_err());
        assert!(parse_tokens("-1").is_err());
        assert_eq!(
            top_k_text(&[0.5, 2.0, 2.0, -1.0], 3),
            "1 (2.0000)  2 (2.0000)  0 (0.5000)"
        );
    }
}
