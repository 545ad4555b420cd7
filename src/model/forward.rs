//! The forward pass shared by every architecture: a batch of tokens (a prompt or one
//! decoded token) through embedding, the blocks and the output head, mirroring the graph
//! bitnet.cpp's llama.cpp fork builds (`build_bitnet_158`, `build_bitnet`, `build_llama`):
//!
//! ```text
//! x = embd[token]
//! per block:  h = rmsnorm(x) * attn_norm
//!             q, k, v = Wq h, Wk h, Wv h          (activations quantized once if ternary)
//!             rope(q, k); cache k, v
//!             a = attention(q, cache)             (causal, GQA)
//!             a = rmsnorm(a) * attn_sub_norm      (BitNet)
//!             x = Wo a + x
//!             h = rmsnorm(x) * ffn_norm
//!             g = act(Wgate h) * (Wup h)          (ReLU² or SiLU)
//!             g = rmsnorm(g) * ffn_sub_norm       (BitNet)
//!             x = Wdown g + x
//! logits = Whead (rmsnorm(x) * output_norm)
//! ```
//!
//! As in llama.cpp, the last block computes its feed-forward part only for the rows whose
//! logits are wanted. Nothing here allocates: every buffer is in [`ForwardScratch`].

use super::attention::{attend, AttentionScratch, AttentionShape, SCRATCHES_PER_THREAD};
use super::config::{FfnActivation, ModelConfig};
use super::kv_cache::KvCache;
use super::linear::{self, ActivationScratch, LinearInput};
use super::memory::try_filled_vec;
use super::norm::rms_norm_rows;
use super::numerics;
use super::rope::Rope;
use super::weights::ModelWeights;
use crate::error::{Error, Result};
use crate::kernels::{simd, Workers};

/// Working memory of the forward pass for batches of up to `n_batch` tokens.
#[derive(Debug, Clone)]
pub struct ForwardScratch {
    n_batch: usize,
    x: Vec<f32>,
    cur: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    acts: ActivationScratch,
    /// One per run of heads attention may split into ([`SCRATCHES_PER_THREAD`] per thread).
    attention: Vec<AttentionScratch>,
    rope_table: Vec<f32>,
}

impl ForwardScratch {
    /// Buffers for a model, batches of up to `n_batch` tokens and contexts of `n_ctx`,
    /// run on up to `n_threads` threads.
    pub fn new(
        config: &ModelConfig,
        weights: &ModelWeights,
        n_batch: usize,
        n_ctx: usize,
        n_threads: usize,
    ) -> Result<ForwardScratch> {
        let b = n_batch;
        let widest = config.n_embd.max(config.attn_out_dim()).max(config.n_ff);
        let linears = weights
            .layers
            .iter()
            .flat_map(|l| {
                [
                    &l.wq,
                    &l.wk,
                    &l.wv,
                    &l.wo,
                    &l.ffn_gate,
                    &l.ffn_up,
                    &l.ffn_down,
                ]
            })
            .chain(std::iter::once(&weights.output));
        let f = |n: usize| try_filled_vec(n, 0.0f32, "the forward pass's scratch memory");
        Ok(ForwardScratch {
            n_batch,
            x: f(b * config.n_embd)?,
            cur: f(b * widest)?,
            q: f(b * config.q_dim())?,
            k: f(b * config.k_dim())?,
            v: f(b * config.v_dim())?,
            attn: f(b * config.attn_out_dim())?,
            proj: f(b * config.n_embd)?,
            gate: f(b * config.n_ff)?,
            up: f(b * config.n_ff)?,
            acts: ActivationScratch::new(b, widest, linears)?,
            attention: (0..attention_scratches(n_threads))
                .map(|_| AttentionScratch::new(n_ctx, config.head_dim))
                .collect(),
            rope_table: vec![0.0; config.n_rot.max(2)],
        })
    }

    /// An upper bound of the bytes [`ForwardScratch::new`] allocates for these sizes;
    /// `None` when it overflows. Checked before anything is allocated.
    pub fn bytes_needed(
        config: &ModelConfig,
        n_batch: usize,
        n_ctx: usize,
        n_threads: usize,
    ) -> Option<usize> {
        let widest = config.n_embd.max(config.attn_out_dim()).max(config.n_ff);
        let per_row = [
            config.n_embd,
            widest,
            config.q_dim(),
            config.k_dim(),
            config.v_dim(),
            config.attn_out_dim(),
            config.n_embd,
            config.n_ff,
            config.n_ff,
            // Quantized, f16-rounded and up to three converted dense forms of a row.
            widest.checked_mul(1 + 4 + 12)?,
        ]
        .iter()
        .try_fold(0usize, |acc, &n| acc.checked_add(n))?;
        let rows = n_batch.checked_mul(per_row)?.checked_mul(4)?;
        let attention = n_ctx
            .checked_mul(4)?
            .checked_add(config.head_dim.checked_mul(272)?)?
            .checked_mul(attention_scratches(n_threads))?;
        rows.checked_add(attention)
    }

    /// The largest batch these buffers hold.
    pub fn n_batch(&self) -> usize {
        self.n_batch
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        let f = self.x.len()
            + self.cur.len()
            + self.q.len()
            + self.k.len()
            + self.v.len()
            + self.attn.len()
            + self.proj.len()
            + self.gate.len()
            + self.up.len()
            + self.rope_table.len();
        f * 4
            + self.acts.memory_bytes()
            + self
                .attention
                .iter()
                .map(AttentionScratch::memory_bytes)
                .sum::<usize>()
    }
}

/// Attention scratches for `n_threads` threads (one run of heads per scratch).
fn attention_scratches(n_threads: usize) -> usize {
    if n_threads <= 1 {
        1
    } else {
        n_threads.saturating_mul(SCRATCHES_PER_THREAD)
    }
}

/// The model pieces the forward pass reads.
pub struct ForwardModel<'a> {
    /// Configuration.
    pub config: &'a ModelConfig,
    /// Weights.
    pub weights: &'a ModelWeights,
    /// The model file's bytes (weights point into them).
    pub file: &'a [u8],
    /// RoPE tables' parameters.
    pub rope: &'a Rope,
    /// The threads matrix products split their rows among.
    pub workers: &'a Workers,
}

/// Runs `tokens` (at positions `cache.len()..`) through the model, appends their keys and
/// values to `cache`, and writes the logits of the last `n_out` tokens (row-major,
/// `n_out × n_vocab`) into `logits`. The caller checks the token ids, the batch size and
/// the cache's room first. `should_abort` is asked before each block; when it answers
/// true the pass stops with [`Error::Aborted`] and the cache's length is unchanged.
pub fn forward(
    m: &ForwardModel<'_>,
    cache: &mut KvCache,
    s: &mut ForwardScratch,
    tokens: &[u32],
    n_out: usize,
    logits: &mut [f32],
    should_abort: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let c = m.config;
    let w = m.weights;
    let n = tokens.len();
    let start = cache.len();
    if n == 0 || n > s.n_batch || n_out == 0 || n_out > n || start + n > cache.capacity() {
        return Err(Error::Internal(format!(
            "forward: batch of {n} (buffers for {}), {n_out} outputs, at {start} of {}",
            s.n_batch,
            cache.capacity()
        )));
    }
    let e = c.n_embd;
    for (t, &tok) in tokens.iter().enumerate() {
        linear::dequantize_row(&w.token_embd, m.file, tok as usize, &mut s.x[t * e..][..e])?;
    }

    let shape = AttentionShape {
        n_head: c.n_head,
        n_head_kv: c.n_head_kv,
        head_dim: c.head_dim,
        head_dim_v: c.head_dim_v,
        scale: c.attention_scale,
    };
    let (qd, kd, vd, ad, ff) = (c.q_dim(), c.k_dim(), c.v_dim(), c.attn_out_dim(), c.n_ff);
    let mut rows = n;
    for (il, lw) in w.layers.iter().enumerate() {
        if should_abort() {
            return Err(Error::Aborted(format!(
                "the abort callback stopped the evaluation before block {il}"
            )));
        }
        // Attention.
        rms_norm_rows(&s.x, &lw.attn_norm, c.rms_eps, &mut s.cur, n);
        {
            let mut input = LinearInput::new(&s.cur, n, e, &mut s.acts);
            linear::matmul(&lw.wq, m.file, &mut input, m.workers, &mut s.q)?;
            linear::matmul(&lw.wk, m.file, &mut input, m.workers, &mut s.k)?;
            linear::matmul(&lw.wv, m.file, &mut input, m.workers, &mut s.v)?;
        }
        for t in 0..n {
            m.rope.fill_table(start + t, &mut s.rope_table);
            m.rope
                .rotate_heads(&mut s.q[t * qd..][..qd], c.head_dim, &s.rope_table);
            m.rope
                .rotate_heads(&mut s.k[t * kd..][..kd], c.head_dim, &s.rope_table);
            cache.store(il, start + t, &s.k[t * kd..][..kd], &s.v[t * vd..][..vd]);
        }
        attend(
            &shape,
            cache,
            il,
            start,
            n,
            &s.q,
            &mut s.attn,
            &mut s.attention,
            m.workers,
        );
        let attn_in: &[f32] = match &lw.attn_sub_norm {
            Some(norm) => {
                rms_norm_rows(&s.attn, norm, c.rms_eps, &mut s.cur, n);
                &s.cur
            }
            None => &s.attn,
        };
        linear::matmul(
            &lw.wo,
            m.file,
            &mut LinearInput::new(attn_in, n, ad, &mut s.acts),
            m.workers,
            &mut s.proj,
        )?;

        if il + 1 == c.n_layer && n_out < n {
            // Only the rows whose logits are wanted go on (llama.cpp's inp_out_ids).
            let skip = n - n_out;
            s.proj.copy_within(skip * e..n * e, 0);
            s.x.copy_within(skip * e..n * e, 0);
            rows = n_out;
        }
        add_in_place(&mut s.x[..rows * e], &s.proj[..rows * e]);

        // Feed-forward.
        rms_norm_rows(&s.x, &lw.ffn_norm, c.rms_eps, &mut s.cur, rows);
        {
            let mut input = LinearInput::new(&s.cur, rows, e, &mut s.acts);
            linear::matmul(&lw.ffn_up, m.file, &mut input, m.workers, &mut s.up)?;
            linear::matmul(&lw.ffn_gate, m.file, &mut input, m.workers, &mut s.gate)?;
        }
        gate_in_place(c.activation, &mut s.gate[..rows * ff], &s.up[..rows * ff]);
        let down_in: &[f32] = match &lw.ffn_sub_norm {
            Some(norm) => {
                rms_norm_rows(&s.gate, norm, c.rms_eps, &mut s.cur, rows);
                &s.cur
            }
            None => &s.gate,
        };
        linear::matmul(
            &lw.ffn_down,
            m.file,
            &mut LinearInput::new(down_in, rows, ff, &mut s.acts),
            m.workers,
            &mut s.proj,
        )?;
        add_in_place(&mut s.x[..rows * e], &s.proj[..rows * e]);
    }
    cache.advance(n);

    rms_norm_rows(&s.x, &w.output_norm, c.rms_eps, &mut s.cur, rows);
    let mut input = LinearInput::new(&s.cur, rows, e, &mut s.acts);
    linear::matmul(&w.output, m.file, &mut input, m.workers, logits)
}

/// `x += y`.
fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `gate = act(gate) * up`, with ggml's element functions ([`numerics::silu`]).
fn gate_in_place(act: FfnActivation, gate: &mut [f32], up: &[f32]) {
    let done = match act {
        FfnActivation::ReluSquared => simd::relu2_gate(gate, up),
        FfnActivation::Silu => simd::silu_gate(gate, up),
    };
    if !done {
        gate_in_place_scalar(act, gate, up);
    }
}

/// [`gate_in_place`] without SIMD (the twin the SIMD versions are tested against).
pub fn gate_in_place_scalar(act: FfnActivation, gate: &mut [f32], up: &[f32]) {
    match act {
        FfnActivation::ReluSquared => {
            for (g, &u) in gate.iter_mut().zip(up) {
                let r = if *g > 0.0 { *g } else { 0.0 };
                *g = (r * r) * u;
            }
        }
        FfnActivation::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = numerics::silu(*g) * u;
            }
        }
    }
}
