//! Causal multi-head attention with grouped keys/values (GQA) over the KV cache, with
//! the roundings llama.cpp's CPU graph applies (no flash attention):
//!
//! - with an f16 cache the query is rounded to f16 before `q·k` (ggml converts the
//!   right-hand side of a matmul to the left-hand side's type); the products are exact and
//!   summed in ggml's order ([`numerics::dot_exact_products`]);
//! - scores are scaled, the softmax subtracts the row maximum, takes ggml's `exp`
//!   ([`numerics::exp`]), sums in ggml's order ([`numerics::softmax_sum`]) and multiplies
//!   by the f32 reciprocal of the sum;
//! - for a batch of one token the probabilities are rounded to f16 before they weight an
//!   f16 value cache, and the weighted sum runs in ggml's `vec_dot_f16` order over the
//!   positions padded to 32 (llama.cpp's KV padding); for larger batches they stay f32
//!   (llamafile's sgemm path, which takes f32 right-hand sides) and are summed as its
//!   16-lane fused accumulators sum them.
//!
//! The functions here are the scalar twins; [`crate::kernels::simd`] runs the SIMD
//! versions (same bits) when the CPU has them.

use half::f16;

use super::kv_cache::{KvCache, KvRows};
use super::numerics;
use crate::kernels::simd::{self, HeadRows};
use crate::kernels::Workers;

/// The head layout of one attention layer.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (`n_head` is a multiple of it).
    pub n_head_kv: usize,
    /// Key/query head size.
    pub head_dim: usize,
    /// Value head size.
    pub head_dim_v: usize,
    /// Factor applied to `q·k`.
    pub scale: f32,
}

/// Buffers attention needs besides its input and output, sized at context creation.
#[derive(Debug, Clone)]
pub struct AttentionScratch {
    scores: Vec<f32>,
    query: Vec<f32>,
    /// The accumulators of the value sums: 64 per value dimension.
    value_lanes: Vec<f32>,
    /// Per value dimension, the f64 tail of that dot product.
    value_tail: Vec<f64>,
}

impl AttentionScratch {
    /// Room for contexts of `n_ctx` positions and heads of `head_dim` (keys and values).
    pub fn new(n_ctx: usize, head_dim: usize) -> AttentionScratch {
        AttentionScratch {
            scores: vec![0.0; n_ctx],
            query: vec![0.0; head_dim],
            value_lanes: vec![0.0; 64 * head_dim],
            value_tail: vec![0.0; head_dim],
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        (self.scores.len() + self.query.len() + self.value_lanes.len()) * 4
            + self.value_tail.len() * 8
    }
}

/// llama.cpp pads the number of cache cells attention reads to a multiple of 32.
const KV_PAD: usize = 32;

/// Attention runs its heads on several threads when the batch holds at least this many
/// (head, cached position) pairs: below it (one token over a short context) the work is
/// a few microseconds, less than handing it to the pool costs.
const PARALLEL_MIN_HEAD_POSITIONS: usize = 8192;

/// Scratches per thread [`attend`] can use: the heads of a batch are cut into this many
/// runs per thread, for balance (later tokens of a prompt see more positions).
pub const SCRATCHES_PER_THREAD: usize = 4;

/// Computes the attention output of the `n` tokens at positions `start..start + n`,
/// whose keys and values are already in `cache` (layer `layer`). `q` holds `n` rows of
/// `n_head * head_dim` rotated queries; `out` receives `n` rows of `n_head * head_dim_v`.
/// The (token, head) pairs are independent; with enough of them they are split over
/// `workers`' threads, one of `scratches` per run (the results are the same bits).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    shape: &AttentionShape,
    cache: &KvCache,
    layer: usize,
    start: usize,
    n: usize,
    q: &[f32],
    out: &mut [f32],
    scratches: &mut [AttentionScratch],
    workers: &Workers,
) {
    let o_dim = shape.n_head * shape.head_dim_v;
    let parallel = n * shape.n_head * (start + n) >= PARALLEL_MIN_HEAD_POSITIONS;
    workers.for_unit_runs(
        &mut out[..n * o_dim],
        shape.head_dim_v,
        scratches,
        parallel,
        &|first, run, scratch| {
            for (i, oh) in run.chunks_exact_mut(shape.head_dim_v).enumerate() {
                let (t, h) = ((first + i) / shape.n_head, (first + i) % shape.n_head);
                attend_head(shape, cache, layer, start, n, t, h, q, oh, scratch);
            }
        },
    );
}

/// One query head `h` of token `t` (of the batch described in [`attend`]) into `oh`.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    shape: &AttentionShape,
    cache: &KvCache,
    layer: usize,
    start: usize,
    n: usize,
    t: usize,
    h: usize,
    q: &[f32],
    oh: &mut [f32],
    scratch: &mut AttentionScratch,
) {
    let AttentionShape {
        n_head,
        n_head_kv,
        head_dim,
        head_dim_v,
        scale,
    } = *shape;
    let group = n_head / n_head_kv;
    let (k_dim, v_dim) = (cache.k_dim(), cache.v_dim());
    let n_kv_total = start + n;
    let keys = cache.keys(layer, n_kv_total);
    let values = cache.values(layer, n_kv_total);
    let round_probs = n == 1;
    let q_dim = n_head * head_dim;

    let n_kv = start + t + 1;
    let kvh = h / group;
    let qh = &q[t * q_dim + h * head_dim..][..head_dim];
    let query = &mut scratch.query[..head_dim];
    let scores = &mut scratch.scores[..n_kv];
    match keys {
        KvRows::F16(k) => {
            if !simd::round_to_f16(qh, query) {
                for (d, &s) in query.iter_mut().zip(qh) {
                    *d = f16::from_f32(s).to_f32();
                }
            }
            for (j, s) in scores.iter_mut().enumerate() {
                let kr = &k[j * k_dim + kvh * head_dim..][..head_dim];
                let dot = simd::dot_f16_exact_halves(query, kr)
                    .unwrap_or_else(|| numerics::dot_exact_products(query, |i| kr[i].to_f32()));
                *s = dot * scale;
            }
        }
        KvRows::F32(k) => {
            for (j, s) in scores.iter_mut().enumerate() {
                let kr = &k[j * k_dim + kvh * head_dim..][..head_dim];
                let dot = simd::dot_f32_8(qh, kr).unwrap_or_else(|| dot_f32(qh, kr));
                *s = dot * scale;
            }
        }
    }
    if !simd::softmax_in_place(scores) {
        softmax_in_place(scores);
    }

    let head = ValueHead {
        stride: v_dim,
        offset: kvh * head_dim_v,
        dim: head_dim_v,
    };
    let rows = HeadRows {
        stride: v_dim,
        offset: kvh * head_dim_v,
        dim: head_dim_v,
    };
    let (lanes, tail) = (&mut scratch.value_lanes, &mut scratch.value_tail);
    match values {
        KvRows::F16(v) if round_probs => {
            // ggml: probabilities to f16, then vec_dot_f16 over the padded cells.
            let padded = n_kv_total.div_ceil(KV_PAD) * KV_PAD;
            let full = padded / 64 * 64;
            if !simd::value_sum_f16_probs(scores, v, rows, full, lanes, tail, oh) {
                value_sum_f16_probs(scores, v, head, full, lanes, tail, oh);
            }
        }
        // llamafile's sgemm: f32 probabilities.
        KvRows::F16(v) => {
            if !simd::value_sum_tinyblas(scores, v, rows, lanes, oh) {
                value_sum_tinyblas(scores, v, head, lanes, oh);
            }
        }
        KvRows::F32(v) => {
            if !simd::value_sum_f32(scores, v, rows, oh) {
                value_sum_f32(scores, v, head, oh);
            }
        }
    }
}

/// Where one head's values sit in the cache: row `j` is `values[j * stride + offset..]
/// [..dim]`.
#[derive(Debug, Clone, Copy)]
pub struct ValueHead {
    pub stride: usize,
    pub offset: usize,
    pub dim: usize,
}

/// The one-token weighted sum of f16 values, as ggml's `vec_dot_f16` over the cells: each
/// probability rounded to f16, cells `j < full` into accumulator `j % 64` (four 16-lane
/// accumulators per output, `lanes` holds 64 floats per output), later cells summed in
/// f64 (`tail`, one per output), `out[d] = (combine(lanes of d) + tail[d]) as f32`.
pub fn value_sum_f16_probs(
    probs: &[f32],
    values: &[f16],
    head: ValueHead,
    full: usize,
    lanes: &mut [f32],
    tail: &mut [f64],
    out: &mut [f32],
) {
    let dv = head.dim;
    let lanes = &mut lanes[..64 * dv];
    let tail = &mut tail[..dv];
    lanes.fill(0.0);
    tail.fill(0.0);
    for (j, &p) in probs.iter().enumerate() {
        let p = f16::from_f32(p).to_f32();
        let vr = &values[j * head.stride + head.offset..][..dv];
        if j < full {
            for (a, &x) in lanes.chunks_exact_mut(64).zip(vr) {
                a[j % 64] += p * x.to_f32();
            }
        } else {
            for (a, &x) in tail.iter_mut().zip(vr) {
                *a += f64::from(p * x.to_f32());
            }
        }
    }
    for ((o, a), &t) in out.iter_mut().zip(lanes.chunks_exact(64)).zip(tail.iter()) {
        let acc: [[f32; 16]; 4] =
            std::array::from_fn(|r| a[16 * r..16 * r + 16].try_into().expect("16 lanes"));
        *o = (f64::from(numerics::combine_accumulators(&acc)) + t) as f32;
    }
}

/// The batched weighted sum of f16 values (llamafile's sgemm, f32 probabilities): per
/// output one 16-lane fused accumulator over the cells (`lanes` holds 16 per output),
/// reduced by [`numerics::reduce16`].
pub fn value_sum_tinyblas(
    probs: &[f32],
    values: &[f16],
    head: ValueHead,
    lanes: &mut [f32],
    out: &mut [f32],
) {
    let dv = head.dim;
    let lanes = &mut lanes[..16 * dv];
    lanes.fill(0.0);
    for (j, &p) in probs.iter().enumerate() {
        let vr = &values[j * head.stride + head.offset..][..dv];
        for (a, &x) in lanes.chunks_exact_mut(16).zip(vr) {
            a[j % 16] = x.to_f32().mul_add(p, a[j % 16]);
        }
    }
    for (o, a) in out.iter_mut().zip(lanes.chunks_exact(16)) {
        *o = numerics::reduce16(a.try_into().expect("16 lanes"));
    }
}

/// The weighted sum of f32 values: `out[d] = Σ_j p_j * v_j[d]`, in cell order.
pub fn value_sum_f32(probs: &[f32], values: &[f32], head: ValueHead, out: &mut [f32]) {
    out.fill(0.0);
    for (j, &p) in probs.iter().enumerate() {
        let vr = &values[j * head.stride + head.offset..][..head.dim];
        for (o, &x) in out.iter_mut().zip(vr) {
            *o += p * x;
        }
    }
}

/// ggml's `soft_max`: `exp(x - max)` summed in ggml's order, scaled by the f32
/// reciprocal of the sum.
pub fn softmax_in_place(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v = numerics::exp(*v - max);
    }
    let sum = numerics::softmax_sum(x);
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `a·b` in f32 with eight running sums (the shape of ggml's SIMD dot products).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kv_cache::KvType;

    /// Attention computed in f64 from the same (rounded) inputs.
    fn naive(q: &[f32], ks: &[Vec<f32>], vs: &[Vec<f32>], scale: f32) -> Vec<f64> {
        let s: Vec<f64> = ks
            .iter()
            .map(|k| {
                q.iter()
                    .zip(k)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum::<f64>()
                    * f64::from(scale)
            })
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let mut out = vec![0.0; vs[0].len()];
        for (p, v) in e.iter().zip(vs) {
            for (o, x) in out.iter_mut().zip(v) {
                *o += p / z * f64::from(*x);
            }
        }
        out
    }

    #[test]
    fn gqa_matches_a_naive_softmax() {
        // 4 query heads sharing 2 kv heads of size 8; 5 positions, prefill of 3 after 2.
        let shape = AttentionShape {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 8,
            head_dim_v: 8,
            scale: 0.35,
        };
        for ty in [KvType::F32, KvType::F16] {
            let mut cache = KvCache::new(ty, 8, 1, 16, 16).unwrap();
            let val = |i: usize, j: usize| ((i * 31 + j * 7) % 13) as f32 * 0.25 - 1.5;
            let ks: Vec<Vec<f32>> = (0..5)
                .map(|p| (0..16).map(|j| val(p, j)).collect())
                .collect();
            let vs: Vec<Vec<f32>> = (0..5)
                .map(|p| (0..16).map(|j| val(p + 9, j)).collect())
                .collect();
            for p in 0..5 {
                cache.store(0, p, &ks[p], &vs[p]);
            }
            cache.advance(5);
            let q: Vec<f32> = (0..3 * 32)
                .map(|i| ((i * 5) % 11) as f32 * 0.2 - 1.0)
                .collect();
            let mut out = vec![0.0; 3 * 32];
            let mut scratch = [AttentionScratch::new(8, 8)];
            attend(
                &shape,
                &cache,
                0,
                2,
                3,
                &q,
                &mut out,
                &mut scratch,
                &Workers::single(),
            );
            for t in 0..3 {
                for h in 0..4 {
                    let kvh = h / 2;
                    let n_kv = 2 + t + 1;
                    let kh: Vec<Vec<f32>> = ks[..n_kv]
                        .iter()
                        .map(|k| k[kvh * 8..][..8].to_vec())
                        .collect();
                    let vh: Vec<Vec<f32>> = vs[..n_kv]
                        .iter()
                        .map(|v| v[kvh * 8..][..8].to_vec())
                        .collect();
                    let want = naive(&q[t * 32 + h * 8..][..8], &kh, &vh, 0.35);
                    for d in 0..8 {
                        let got = out[t * 32 + h * 8 + d];
                        assert!(
                            (f64::from(got) - want[d]).abs() < 2e-3,
                            "{ty:?} t{t} h{h} d{d}: {got} vs {}",
                            want[d]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn heads_split_over_threads_give_the_same_bits() {
        let shape = AttentionShape {
            n_head: 8,
            n_head_kv: 2,
            head_dim: 16,
            head_dim_v: 16,
            scale: 0.25,
        };
        let (ctx, start) = (1100, 1030);
        let val = |i: usize| ((i * 2_654_435_761) % 1999) as f32 / 999.5 - 1.0;
        for ty in [KvType::F32, KvType::F16] {
            let mut cache = KvCache::new(ty, ctx, 1, 32, 32).unwrap();
            for p in 0..ctx {
                let k: Vec<f32> = (0..32).map(|j| val(p * 64 + j)).collect();
                let v: Vec<f32> = (0..32).map(|j| val(p * 64 + 32 + j + 7)).collect();
                cache.store(0, p, &k, &v);
            }
            cache.advance(ctx);
            // A prompt of 40 after 1030 cached positions, and one decoded token after 1099:
            // both above the parallel threshold.
            for (start, n) in [(start, 40), (ctx - 1, 1)] {
                assert!(n * 8 * (start + n) >= PARALLEL_MIN_HEAD_POSITIONS);
                let q: Vec<f32> = (0..n * 128).map(|i| val(i + 5)).collect();
                let mut one = vec![0.0; n * 128];
                let mut scratch = [AttentionScratch::new(ctx, 16)];
                attend(
                    &shape,
                    &cache,
                    0,
                    start,
                    n,
                    &q,
                    &mut one,
                    &mut scratch,
                    &Workers::single(),
                );
                let workers = Workers::new(2, 1).unwrap();
                let mut scratches: Vec<_> =
                    (0..8).map(|_| AttentionScratch::new(ctx, 16)).collect();
                let mut two = vec![0.0; n * 128];
                workers.run(|| {
                    attend(
                        &shape,
                        &cache,
                        0,
                        start,
                        n,
                        &q,
                        &mut two,
                        &mut scratches,
                        &workers,
                    )
                });
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&two), "{ty:?} start {start} n {n}");
            }
        }
    }

    #[test]
    fn dots() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let want: f32 = (0..19).map(|i| (i * i) as f32 * 0.5).sum();
        assert_eq!(dot_f32(&a, &b), want);
    }
}
