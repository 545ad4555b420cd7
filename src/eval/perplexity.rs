//! Perplexity over a text, as llama-perplexity computes it: the text (read as `-f` reads it,
//! one trailing newline dropped) is tokenized once with BOS; it is cut into chunks of
//! `n_ctx` tokens (a partial last chunk is dropped); each chunk is evaluated from an empty
//! cache with its first token replaced by BOS when the model adds BOS; only the second half
//! of each chunk is scored, every token from position `n_ctx/2 + 1` on, predicted from
//! everything before it in the chunk. PPL = exp(mean negative log-likelihood) and its error
//! is `PPL·sqrt(var(nll)/(count-1))`, the tool's estimate. The sums run in token order, so
//! the result does not depend on threads.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::choice::feed;
use super::logprob::perplexity_nll;
use super::Progress;

/// How to compute perplexity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerplexityParams {
    /// Tokens per chunk (`-c`, 512 in llama-perplexity).
    pub n_ctx: usize,
    /// Evaluate at most this many chunks (`--chunks`); `None` for all.
    pub max_chunks: Option<usize>,
}

impl Default for PerplexityParams {
    fn default() -> Self {
        PerplexityParams {
            n_ctx: 512,
            max_chunks: None,
        }
    }
}

/// The outcome of a perplexity run.
#[derive(Debug, Clone, PartialEq)]
pub struct PerplexityReport {
    /// Tokens in the text (with BOS).
    pub n_tokens: usize,
    /// Chunks evaluated.
    pub n_chunks: usize,
    /// Tokens scored.
    pub count: usize,
    /// Running perplexity after each chunk (what the tool prints as `[i]value`).
    pub running: Vec<f64>,
    /// Mean negative log-likelihood per scored token.
    pub mean_nll: f64,
    /// exp(mean_nll).
    pub ppl: f64,
    /// The tool's error estimate of `ppl`; `None` when the variance is not positive.
    pub ppl_error: Option<f64>,
}

/// Computes perplexity over `text`. The context must compute logits for every position
/// and hold at least `params.n_ctx` positions; its batch size sets how a chunk is split.
pub fn perplexity(
    ctx: &mut Context,
    tok: &Tokenizer,
    text: &[u8],
    params: &PerplexityParams,
    progress: Progress<'_>,
) -> Result<PerplexityReport> {
    let special = tok.special();
    if special.add_eos {
        return Err(Error::unsupported(
            "the model's tokenizer appends EOS to every text; llama-perplexity refuses \
             such models and so does tern",
        ));
    }
    let bos = if special.add_bos {
        Some(
            special
                .bos
                .ok_or_else(|| Error::model("the tokenizer adds BOS but names no BOS token"))?,
        )
    } else {
        None
    };
    let tokens = tok.tokenize_bytes(text, true, false)?;
    perplexity_tokens(ctx, &tokens, bos, params, progress)
}

/// Perplexity over tokens already tokenized (with BOS, if any); `bos` replaces the first
/// token of every chunk when given.
pub fn perplexity_tokens(
    ctx: &mut Context,
    tokens: &[u32],
    bos: Option<u32>,
    params: &PerplexityParams,
    progress: Progress<'_>,
) -> Result<PerplexityReport> {
    let n_ctx = params.n_ctx;
    if n_ctx < 4 {
        return Err(Error::invalid(
            "the chunk size (-c) must be at least 4 tokens",
        ));
    }
    if ctx.n_ctx() < n_ctx {
        return Err(Error::invalid(format!(
            "the context holds {} positions, fewer than the chunk size {n_ctx}",
            ctx.n_ctx()
        )));
    }
    if tokens.len() < 2 * n_ctx {
        return Err(Error::invalid(format!(
            "the text tokenizes to {} tokens; perplexity with a context of {n_ctx} needs at \
             least {} (use a longer text or a smaller -c)",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let max_chunks = tokens.len() / n_ctx;
    let n_chunks = params.max_chunks.map_or(max_chunks, |m| m.min(max_chunks));
    let first = n_ctx / 2;
    let mut nll = 0.0f64;
    let mut nll2 = 0.0f64;
    let mut count = 0usize;
    let mut running = Vec::with_capacity(n_chunks);
    let mut chunk = vec![0u32; n_ctx];
    for i in 0..n_chunks {
        chunk.copy_from_slice(&tokens[i * n_ctx..(i + 1) * n_ctx]);
        if let Some(b) = bos {
            chunk[0] = b;
        }
        ctx.kv_clear();
        let mut pos = 0usize;
        feed(ctx, &chunk, &mut |row| {
            // Row `pos` predicts token pos + 1; rows first..n_ctx-2 are scored.
            if pos >= first && pos + 1 < n_ctx {
                let v = perplexity_nll(row, chunk[pos + 1] as usize);
                nll += v;
                nll2 += v * v;
                count += 1;
            }
            pos += 1;
        })?;
        let ppl = (nll / count as f64).exp();
        running.push(ppl);
        progress(i + 1, n_chunks, &format!("[{}]{ppl:.4}", i + 1));
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let ppl_error = (var > 0.0).then(|| (var / (count - 1) as f64).sqrt() * ppl);
    Ok(PerplexityReport {
        n_tokens: tokens.len(),
        n_chunks,
        count,
        running,
        mean_nll: mean,
        ppl,
        ppl_error,
    })
}
