//! Output agreement with bitnet.cpp, through its own tools: its `llama-perplexity`
//! tokenizes a text, evaluates chunks of `n_ctx` tokens and saves the log-probabilities of
//! the second half of each chunk (`--kl-divergence-base`); we evaluate the same token ids
//! (with the same BOS replacement) and compare log-probabilities row by row.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use tern::bench::logprobs::{log_softmax, SavedLogProbs};
use tern::context::{argmax, Context, ContextParams};
use tern::model::{KvType, LoadParams, Model};
use tern::{Error, Result};

use crate::compare_run::{run_child, tail};

/// A public-domain passage (the opening of "A Tale of Two Cities"), repeated as needed.
const PASSAGE: &str = "It was the best of times, it was the worst of times, it was the age \
of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
incredulity, it was the season of Light, it was the season of Darkness, it was the spring of \
hope, it was the winter of despair, we had everything before us, we had nothing before us, \
we were all going direct to Heaven, we were all going direct the other way. ";

/// The agreement found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitsAgreement {
    pub n_ctx: usize,
    pub n_chunk: usize,
    pub rows: usize,
    pub max_abs_diff: f32,
    pub mean_row_max_diff: f64,
    pub top1_agree: usize,
    /// Half the coarsest quantization step of bitnet.cpp's saved values.
    pub storage_resolution: f32,
}

impl LogitsAgreement {
    pub fn to_json(&self) -> Value {
        json!({
            "method": "bitnet.cpp llama-perplexity --kl-divergence-base (16-bit log-probs) vs tern log-softmax, same token ids",
            "n_ctx": self.n_ctx,
            "n_chunk": self.n_chunk,
            "rows": self.rows,
            "max_abs_diff_logprob": self.max_abs_diff,
            "mean_row_max_abs_diff_logprob": self.mean_row_max_diff,
            "top1_agree": self.top1_agree,
            "top1_agreement": self.top1_agree as f64 / self.rows.max(1) as f64,
            "storage_resolution": self.storage_resolution,
        })
    }

    pub fn summary(&self) -> String {
        format!(
            "outputs: {} positions ({} chunks of {} tokens, 2nd halves): max |Δ log-prob| {:.4} \
             (mean of per-position max {:.4}; bitnet.cpp stores log-probs to ±{:.1e}), \
             top-1 agreement {}/{} ({:.1}%)",
            self.rows,
            self.n_chunk,
            self.n_ctx,
            self.max_abs_diff,
            self.mean_row_max_diff,
            self.storage_resolution,
            self.top1_agree,
            self.rows,
            100.0 * self.top1_agree as f64 / self.rows.max(1) as f64
        )
    }
}

/// Runs bitnet.cpp's llama-perplexity on a generated text and compares with ours.
pub fn compare_logits(
    perplexity: &Path,
    model_path: &str,
    n_ctx: usize,
    n_chunk: usize,
    threads: usize,
) -> Result<LogitsAgreement> {
    if n_ctx < 4 || n_chunk == 0 {
        return Err(Error::invalid(
            "--logits-ctx must be at least 4 and --logits-chunks at least 1",
        ));
    }
    let dir = std::env::temp_dir().join(format!("tern-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let text_path = dir.join("text.txt");
    let base_path = dir.join("bitnet-cpp.logits");
    // Byte-level vocabularies need up to one token per byte; be generous.
    let need = (n_chunk + 2) * n_ctx * 4;
    let text = PASSAGE.repeat(need / PASSAGE.len() + 1);
    std::fs::write(&text_path, text)?;
    let args: Vec<String> = [
        "-m",
        model_path,
        "-f",
        &text_path.to_string_lossy(),
        "-c",
        &n_ctx.to_string(),
        "-b",
        &n_ctx.to_string(),
        "--chunks",
        &n_chunk.to_string(),
        "-t",
        &threads.to_string(),
        "--kl-divergence-base",
        &base_path.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_child(perplexity, &args)?;
    let result = (|| {
        if !out.success {
            return Err(Error::invalid(format!(
                "bitnet.cpp's llama-perplexity failed, {}:\n{}",
                out.status,
                tail(&out.stderr, 12)
            )));
        }
        let bytes = std::fs::read(&base_path)
            .map_err(|e| Error::Io(format!("{}: {e}", base_path.display())))?;
        let saved = SavedLogProbs::parse(&bytes)?;
        ours_against(model_path, &saved)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Evaluates the chunks of `saved` with our engine and compares.
pub fn ours_against(model_path: &str, saved: &SavedLogProbs) -> Result<LogitsAgreement> {
    let model = Arc::new(Model::load(model_path, &LoadParams::default())?);
    let bos = model
        .tokenizer()
        .filter(|t| t.special().add_bos)
        .and_then(|t| t.bos());
    let params = ContextParams {
        n_ctx: saved.n_ctx,
        n_batch: saved.n_ctx,
        kv_type: KvType::F16,
        logits_all: true,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model, &params)?;
    if ctx.n_vocab() != saved.n_vocab {
        return Err(Error::invalid(format!(
            "bitnet.cpp saw {} tokens in the vocabulary, we see {}",
            saved.n_vocab,
            ctx.n_vocab()
        )));
    }
    let first = saved.first();
    let per_chunk = saved.rows_per_chunk();
    let mut agreement = LogitsAgreement {
        n_ctx: saved.n_ctx,
        n_chunk: saved.n_chunk,
        rows: 0,
        max_abs_diff: 0.0,
        mean_row_max_diff: 0.0,
        top1_agree: 0,
        storage_resolution: 0.0,
    };
    for c in 0..saved.n_chunk {
        let mut tokens = saved.tokens[c * saved.n_ctx..(c + 1) * saved.n_ctx].to_vec();
        if let Some(b) = bos {
            tokens[0] = b;
        }
        ctx.kv_clear();
        ctx.eval(&tokens)?;
        for j in 0..per_chunk {
            let row = &saved.rows[c * per_chunk + j];
            let logits = ctx
                .logits_row(first + j)
                .ok_or_else(|| Error::invalid("no logits for a position"))?;
            let ours = log_softmax(logits);
            let d = row.max_abs_diff(&ours);
            agreement.max_abs_diff = agreement.max_abs_diff.max(d);
            agreement.mean_row_max_diff += f64::from(d);
            agreement.storage_resolution = agreement.storage_resolution.max(row.scale / 2.0);
            if argmax(logits) == Some(row.argmax()) {
                agreement.top1_agree += 1;
            }
            agreement.rows += 1;
        }
    }
    agreement.mean_row_max_diff /= agreement.rows.max(1) as f64;
    Ok(agreement)
}
