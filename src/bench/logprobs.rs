//! llama-perplexity's saved logits (`--kl-divergence-base FILE` without `--kl-divergence`):
//! `_logits_`, `n_ctx`, `n_vocab`, `n_chunk` (i32 each), the `n_chunk * n_ctx` token ids
//! (i32), then for each chunk `n_ctx - 1 - n_ctx/2` rows (positions `n_ctx/2 ..= n_ctx-2`),
//! each `2*((n_vocab+1)/2) + 4` u16: two f32 (`scale`, `min_log_prob`), then one u16 per
//! token `q` with `log_prob = min_log_prob + scale * q` (q = 0: at most `min_log_prob`,
//! which is at most 16 below the top). This is how we get bitnet.cpp's outputs with its
//! own tools; the 16-bit storage limits their precision to `scale / 2` (< 1.3e-4).

use crate::error::{Error, Result};

/// A parsed logits file.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedLogProbs {
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    /// `n_chunk * n_ctx` token ids as tokenized (before any BOS replacement).
    pub tokens: Vec<u32>,
    /// Rows in file order (chunk-major).
    pub rows: Vec<LogProbRow>,
}

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct LogProbRow {
    pub scale: f32,
    pub min_log_prob: f32,
    pub q: Vec<u16>,
}

impl LogProbRow {
    /// The token with the largest stored log-probability (ties to the lowest id).
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (i, &v) in self.q.iter().enumerate() {
            if v > self.q[best] {
                best = i;
            }
        }
        best
    }

    /// Largest |ours - stored| over the vocabulary, where `ours` are log-probabilities.
    /// Where the file only says "at most `min_log_prob`" (q = 0) the difference counts only
    /// if ours is above that bound.
    pub fn max_abs_diff(&self, ours: &[f32]) -> f32 {
        let mut worst = 0.0f32;
        for (&q, &o) in self.q.iter().zip(ours) {
            let d = if q == 0 {
                (o - self.min_log_prob).max(0.0)
            } else {
                (o - (self.min_log_prob + self.scale * f32::from(q))).abs()
            };
            worst = worst.max(d);
        }
        worst
    }
}

impl SavedLogProbs {
    /// First position of a chunk whose logits are stored.
    pub fn first(&self) -> usize {
        self.n_ctx / 2
    }

    /// Rows stored per chunk.
    pub fn rows_per_chunk(&self) -> usize {
        self.n_ctx - 1 - self.first()
    }

    /// Parses a file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<SavedLogProbs> {
        let bad = |what: &str| Error::invalid(format!("llama-perplexity logits file: {what}"));
        if bytes.len() < 20 || &bytes[..8] != b"_logits_" {
            return Err(bad("does not start with '_logits_'"));
        }
        let i32_at =
            |o: usize| i32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let (n_ctx, n_vocab, n_chunk) = (i32_at(8), i32_at(12), i32_at(16));
        if n_ctx < 2 || n_vocab < 1 || n_chunk < 0 {
            return Err(bad(&format!(
                "bad sizes n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}"
            )));
        }
        let (n_ctx, n_vocab, n_chunk) = (n_ctx as usize, n_vocab as usize, n_chunk as usize);
        let n_tok = n_chunk * n_ctx;
        let nv = 2 * n_vocab.div_ceil(2) + 4;
        let per_chunk = n_ctx - 1 - n_ctx / 2;
        let need = 20 + 4 * n_tok + 2 * nv * per_chunk * n_chunk;
        if bytes.len() != need {
            return Err(bad(&format!(
                "{} bytes, expected {need} for {n_chunk} chunks of {n_ctx} x {n_vocab}",
                bytes.len()
            )));
        }
        let tokens = (0..n_tok)
            .map(|i| {
                let t = i32_at(20 + 4 * i);
                u32::try_from(t).map_err(|_| bad("negative token id"))
            })
            .collect::<Result<Vec<u32>>>()?;
        let mut rows = Vec::with_capacity(per_chunk * n_chunk);
        let mut o = 20 + 4 * n_tok;
        let f32_at =
            |o: usize| f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        for _ in 0..per_chunk * n_chunk {
            let q = bytes[o + 8..o + 8 + 2 * n_vocab]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            rows.push(LogProbRow {
                scale: f32_at(o),
                min_log_prob: f32_at(o + 4),
                q,
            });
            o += 2 * nv;
        }
        Ok(SavedLogProbs {
            n_ctx,
            n_vocab,
            n_chunk,
            tokens,
            rows,
        })
    }
}

/// log-softmax of a row of logits (in f64, then rounded).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = sum.ln() as f32;
    logits.iter().map(|&l| l - max - lse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as llama-perplexity writes it, for `logits` rows (quantized the same way).
    fn file(n_ctx: i32, n_vocab: i32, tokens: &[i32], logits: &[Vec<f32>]) -> Vec<u8> {
        let mut b = b"_logits_".to_vec();
        for v in [n_ctx, n_vocab, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for t in tokens {
            b.extend_from_slice(&t.to_le_bytes());
        }
        for row in logits {
            let max = row.iter().copied().fold(f32::MIN, f32::max);
            let min = row.iter().copied().fold(f32::MAX, f32::min).max(max - 16.0);
            let lse = (row.iter().map(|&l| f64::from(l - max).exp()).sum::<f64>()).ln() as f32;
            let scale = (max - min) / 65535.0;
            b.extend_from_slice(&scale.to_le_bytes());
            b.extend_from_slice(&(min - max - lse).to_le_bytes());
            for &l in row {
                let q = if l > min {
                    ((l - min) / scale).round() as u16
                } else {
                    0
                };
                b.extend_from_slice(&q.to_le_bytes());
            }
            if n_vocab % 2 == 1 {
                b.extend_from_slice(&[0, 0]);
            }
        }
        b
    }

    #[test]
    fn parses_and_compares() {
        let rows = vec![vec![1.0, 3.0, -30.0], vec![0.5, 0.25, 2.0]];
        // n_ctx 6: positions 3 and 4 stored.
        let bytes = file(6, 3, &[1, 2, 0, 1, 2, 0], &rows);
        let s = SavedLogProbs::parse(&bytes).unwrap();
        assert_eq!((s.n_ctx, s.n_vocab, s.n_chunk, s.first()), (6, 3, 1, 3));
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].argmax(), 1);
        assert_eq!(s.rows[1].argmax(), 2);
        for (r, l) in s.rows.iter().zip(&rows) {
            let ours = log_softmax(l);
            assert!(r.max_abs_diff(&ours) < 2e-4, "{}", r.max_abs_diff(&ours));
            let mut off = ours.clone();
            off[0] += 0.1;
            assert!(r.max_abs_diff(&off) > 0.09);
        }
        assert!(SavedLogProbs::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(SavedLogProbs::parse(b"_logits_").is_err());
        assert!(SavedLogProbs::parse(&[0u8; 40]).is_err());
    }
}
