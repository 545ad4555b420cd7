//! AVX2 (+FMA, F16C) pieces of attention over the KV cache, each giving exactly the
//! floats of its scalar twin in `model::attention` / `model::numerics`:
//!
//! - [`exp_in_place`]: ggml's vectorized `exp` (`numerics::exp`), lane for lane, including
//!   the two-step scaling of very small or large results and the 0 / ∞ / NaN cases;
//! - [`softmax_in_place`]: the row maximum, `exp(x - max)`, the sum by 16-lane trees
//!   accumulated in f64 (`numerics::softmax_sum`), the f32 reciprocal;
//! - [`value_sum_f16_probs`]: the one-token weighted sum of f16 values with
//!   probabilities rounded to f16, in `vec_dot_f16` order over the cells (4 × 16
//!   accumulators per output, the tail past the last run of 64 in f64);
//! - [`value_sum_tinyblas`]: the batched weighted sum (one 16-lane fused accumulator per
//!   output over the cells);
//! - [`value_sum_f32`], [`dot_f32_8`]: the f32-cache variants;
//! - [`round_to_f16`]: f32 → nearest-even f16 → f32, as the query is rounded.
//!
//! The value sums keep the twin's per-output accumulators as one SIMD lane each across
//! the value dimensions (outputs are independent, so their order inside a register does
//! not matter); the accumulators are laid out cell-lane-major (`lanes[l * dv + d]`).

use std::arch::x86_64::*;

use half::f16;

use super::dense_avx2::available;

#[inline]
#[track_caller]
fn require() {
    assert!(
        available(),
        "AVX2 kernel called on a CPU without AVX2/FMA/F16C"
    );
}

/// `v[i] = numerics::exp(v[i])` for every element.
pub fn exp_in_place(v: &mut [f32]) {
    require();
    // SAFETY: features checked; all accesses are within `v`.
    unsafe { exp_sub_in_place(v, 0.0) }
}

/// ggml's `soft_max` of one row in place: `exp(x - max)`, normalized by the f32
/// reciprocal of the sum taken in `numerics::softmax_sum` order.
pub fn softmax_in_place(x: &mut [f32]) {
    require();
    // SAFETY: features checked; all accesses are within `x`.
    unsafe { softmax_raw(x) }
}

/// `out[i] = f16(x[i]) as f32` (round to nearest even).
pub fn round_to_f16(x: &[f32], out: &mut [f32]) {
    require();
    assert_eq!(x.len(), out.len());
    // SAFETY: features checked; lengths equal.
    unsafe { round_to_f16_raw(x, out) }
}

/// Where one head's values sit in the cache: row `j` of the head is
/// `values[j * stride + offset..][..dim]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadView {
    pub stride: usize,
    pub offset: usize,
    pub dim: usize,
}

impl HeadView {
    fn check(&self, cells: usize, len: usize) {
        if cells > 0 {
            assert!((cells - 1) * self.stride + self.offset + self.dim <= len);
        }
    }
}

/// The one-token weighted sum of f16 values: each probability rounded to f16, cells
/// `j < full` (`full` a multiple of 64) accumulated per output into the accumulator
/// `(j % 64)` of `lanes` (64 × `dim` floats, layout `lanes[l * dim + d]`), later cells in
/// `tail` (f64, `dim`), and `out[d] = (combine(lanes[..][d]) + tail[d]) as f32`.
pub fn value_sum_f16_probs(
    probs: &[f32],
    values: &[f16],
    head: HeadView,
    full: usize,
    lanes: &mut [f32],
    tail: &mut [f64],
    out: &mut [f32],
) {
    require();
    head.check(probs.len(), values.len());
    assert!(full % 64 == 0);
    assert!(lanes.len() >= 64 * head.dim && tail.len() >= head.dim && out.len() == head.dim);
    // SAFETY: features checked; every row read is in bounds (checked above).
    unsafe { value_sum_f16_probs_raw(probs, values, head, full, lanes, tail, out) }
}

/// The batched weighted sum of f16 values with f32 probabilities: per output one 16-lane
/// accumulator over the cells, `acc[j % 16] = fma(v_j, p_j, acc[j % 16])`, reduced by
/// `reduce16`. `lanes` holds 16 × `dim` floats (layout `lanes[l * dim + d]`).
pub fn value_sum_tinyblas(
    probs: &[f32],
    values: &[f16],
    head: HeadView,
    lanes: &mut [f32],
    out: &mut [f32],
) {
    require();
    head.check(probs.len(), values.len());
    assert!(lanes.len() >= 16 * head.dim && out.len() == head.dim);
    // SAFETY: features checked; every row read is in bounds (checked above).
    unsafe { value_sum_tinyblas_raw(probs, values, head, lanes, out) }
}

/// The f32-cache weighted sum: `out[d] = Σ_j p_j * v_j[d]` in cell order, from 0.
pub fn value_sum_f32(probs: &[f32], values: &[f32], head: HeadView, out: &mut [f32]) {
    require();
    head.check(probs.len(), values.len());
    assert!(out.len() == head.dim);
    // SAFETY: features checked; every row read is in bounds (checked above).
    unsafe { value_sum_f32_raw(probs, values, head, out) }
}

/// `attention::dot_f32`: eight running sums (product rounded, then added), summed in
/// order, then the tail added in order.
pub fn dot_f32_8(a: &[f32], b: &[f32]) -> f32 {
    require();
    assert_eq!(a.len(), b.len());
    // SAFETY: features checked; equal lengths.
    unsafe { dot_f32_8_raw(a, b) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn exp8(x: __m256) -> __m256 {
    let f = |b: u32| _mm256_set1_ps(f32::from_bits(b));
    let shifter = _mm256_set1_ps(12_582_912.0);
    let z = _mm256_fmadd_ps(x, f(0x3fb8_aa3b), shifter);
    let n = _mm256_sub_ps(z, shifter);
    let b = _mm256_fnmadd_ps(n, f(0x35bf_be8e), _mm256_fnmadd_ps(n, f(0x3f31_7200), x));
    let u = _mm256_mul_ps(b, b);
    let p = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(f(0x3c07_2010), b, f(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(f(0x3e2a_af33), b, f(0x3eff_fedb)),
        ),
        u,
        _mm256_fmadd_ps(f(0x3f7f_fff6), b, _mm256_set1_ps(1.0)),
    );
    // p · 2^n, in two steps where 2^n alone is not a normal float (n in -192..=192).
    let low = _mm256_cmp_ps(n, _mm256_set1_ps(-126.0), _CMP_LT_OQ);
    let high = _mm256_cmp_ps(n, _mm256_set1_ps(127.0), _CMP_GT_OQ);
    let p = _mm256_blendv_ps(p, _mm256_mul_ps(p, f(0x0080_0000)), low);
    let p = _mm256_blendv_ps(p, _mm256_mul_ps(p, f(0x7f00_0000)), high);
    let n = _mm256_blendv_ps(n, _mm256_add_ps(n, _mm256_set1_ps(126.0)), low);
    let n = _mm256_blendv_ps(n, _mm256_sub_ps(n, _mm256_set1_ps(127.0)), high);
    let bias = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    let r = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(bias, 23)));
    // |n| > 192: 0 or ∞ by the sign of n (computed from the unadjusted n); NaN stays.
    let n0 = _mm256_sub_ps(z, shifter);
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n0);
    let out_of_range = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0), _CMP_GT_OQ);
    let big = _mm256_cmp_ps(n0, _mm256_setzero_ps(), _CMP_GT_OQ);
    let extreme = _mm256_and_ps(big, _mm256_set1_ps(f32::INFINITY));
    let r = _mm256_blendv_ps(r, extreme, out_of_range);
    let nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    _mm256_blendv_ps(r, x, nan)
}

/// `v[i] = exp(v[i] - sub)`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exp_sub_in_place(v: &mut [f32], sub: f32) {
    let s = _mm256_set1_ps(sub);
    let mut chunks = v.chunks_exact_mut(8);
    for c in &mut chunks {
        let x = _mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), s);
        _mm256_storeu_ps(c.as_mut_ptr(), exp8(x));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0f32; 8];
        buf[..rest.len()].copy_from_slice(rest);
        let x = _mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), s);
        _mm256_storeu_ps(buf.as_mut_ptr(), exp8(x));
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

/// `reduce16` of lanes `lo` (0..8) and `hi` (8..16).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn reduce16(lo: __m256, hi: __m256) -> f32 {
    let a = _mm256_add_ps(lo, hi);
    let b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn softmax_raw(x: &mut [f32]) {
    // The maximum (NaNs ignored, as f32::max does).
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        mv = _mm256_max_ps(_mm256_loadu_ps(c.as_ptr()), mv);
    }
    let mut m = [0f32; 8];
    _mm256_storeu_ps(m.as_mut_ptr(), mv);
    let max = m
        .iter()
        .chain(chunks.remainder())
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    exp_sub_in_place(x, max);
    let mut sum = 0f64;
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        let s = reduce16(
            _mm256_loadu_ps(c.as_ptr()),
            _mm256_loadu_ps(c.as_ptr().add(8)),
        );
        sum += f64::from(s);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0f32; 16];
        buf[..rest.len()].copy_from_slice(rest);
        sum += f64::from(reduce16(
            _mm256_loadu_ps(buf.as_ptr()),
            _mm256_loadu_ps(buf.as_ptr().add(8)),
        ));
    }
    let inv = (1.0 / sum) as f32;
    let iv = _mm256_set1_ps(inv);
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        _mm256_storeu_ps(
            c.as_mut_ptr(),
            _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), iv),
        );
    }
    for v in chunks.into_remainder() {
        *v *= inv;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_to_f16_raw(x: &[f32], out: &mut [f32]) {
    let mut xc = x.chunks_exact(8);
    let mut oc = out.chunks_exact_mut(8);
    for (a, o) in (&mut xc).zip(&mut oc) {
        let h = _mm256_cvtps_ph(_mm256_loadu_ps(a.as_ptr()), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(o.as_mut_ptr(), _mm256_cvtph_ps(h));
    }
    for (o, &a) in oc.into_remainder().iter_mut().zip(xc.remainder()) {
        *o = f16::from_f32(a).to_f32();
    }
}

/// Eight halves at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8(p: *const f16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn value_sum_f16_probs_raw(
    probs: &[f32],
    values: &[f16],
    head: HeadView,
    full: usize,
    lanes: &mut [f32],
    tail: &mut [f64],
    out: &mut [f32],
) {
    let dv = head.dim;
    let d8 = dv / 8 * 8;
    lanes[..64 * dv].fill(0.0);
    tail[..dv].fill(0.0);
    let vp = values.as_ptr();
    for (j, &p) in probs.iter().enumerate() {
        let p = f16::from_f32(p).to_f32();
        let row = vp.add(j * head.stride + head.offset);
        if j < full {
            let acc = lanes.as_mut_ptr().add((j % 64) * dv);
            let pv = _mm256_set1_ps(p);
            let mut d = 0;
            while d < d8 {
                let prod = _mm256_mul_ps(pv, load8(row.add(d)));
                _mm256_storeu_ps(acc.add(d), _mm256_add_ps(_mm256_loadu_ps(acc.add(d)), prod));
                d += 8;
            }
            for d in d8..dv {
                *acc.add(d) += p * (*row.add(d)).to_f32();
            }
        } else {
            for (d, t) in tail[..dv].iter_mut().enumerate() {
                *t += f64::from(p * (*row.add(d)).to_f32());
            }
        }
    }
    // out[d] = (combine(acc[..][d]) + tail[d]) as f32, vectorized across d.
    let l = |r: usize, i: usize, d: usize| lanes.as_ptr().add((16 * r + i) * dv + d);
    let mut d = 0;
    while d < d8 {
        let mut v = [_mm256_setzero_ps(); 16];
        for (i, vi) in v.iter_mut().enumerate() {
            let a0 = _mm256_loadu_ps(l(0, i, d));
            let a1 = _mm256_loadu_ps(l(1, i, d));
            let a2 = _mm256_loadu_ps(l(2, i, d));
            let a3 = _mm256_loadu_ps(l(3, i, d));
            *vi = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
        }
        let s = reduce16_across(&v);
        let mut r = [0f32; 8];
        _mm256_storeu_ps(r.as_mut_ptr(), s);
        for (k, &rk) in r.iter().enumerate() {
            out[d + k] = (f64::from(rk) + tail[d + k]) as f32;
        }
        d += 8;
    }
    for d in d8..dv {
        let mut v = [0f32; 16];
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = (*l(0, i, d) + *l(2, i, d)) + (*l(1, i, d) + *l(3, i, d));
        }
        out[d] = (f64::from(reduce16_scalar(&v)) + tail[d]) as f32;
    }
}

/// `reduce16` applied lane-wise: lane `k` of the result reduces lane `k` of `v[0..16]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn reduce16_across(v: &[__m256; 16]) -> __m256 {
    let a: [__m256; 8] = std::array::from_fn(|i| _mm256_add_ps(v[i], v[i + 8]));
    let b: [__m256; 4] = std::array::from_fn(|i| _mm256_add_ps(a[i], a[i + 4]));
    _mm256_add_ps(_mm256_add_ps(b[0], b[2]), _mm256_add_ps(b[1], b[3]))
}

fn reduce16_scalar(v: &[f32; 16]) -> f32 {
    let a: [f32; 8] = std::array::from_fn(|i| v[i] + v[i + 8]);
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (b[0] + b[2]) + (b[1] + b[3])
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn value_sum_tinyblas_raw(
    probs: &[f32],
    values: &[f16],
    head: HeadView,
    lanes: &mut [f32],
    out: &mut [f32],
) {
    let dv = head.dim;
    let d8 = dv / 8 * 8;
    lanes[..16 * dv].fill(0.0);
    let vp = values.as_ptr();
    for (j, &p) in probs.iter().enumerate() {
        let row = vp.add(j * head.stride + head.offset);
        let acc = lanes.as_mut_ptr().add((j % 16) * dv);
        let pv = _mm256_set1_ps(p);
        let mut d = 0;
        while d < d8 {
            let a = _mm256_fmadd_ps(load8(row.add(d)), pv, _mm256_loadu_ps(acc.add(d)));
            _mm256_storeu_ps(acc.add(d), a);
            d += 8;
        }
        for d in d8..dv {
            *acc.add(d) = (*row.add(d)).to_f32().mul_add(p, *acc.add(d));
        }
    }
    let l = |i: usize, d: usize| lanes.as_ptr().add(i * dv + d);
    let mut d = 0;
    while d < d8 {
        let v: [__m256; 16] = std::array::from_fn(|i| _mm256_loadu_ps(l(i, d)));
        _mm256_storeu_ps(out.as_mut_ptr().add(d), reduce16_across(&v));
        d += 8;
    }
    for (d, o) in out.iter_mut().enumerate().skip(d8) {
        let v: [f32; 16] = std::array::from_fn(|i| *l(i, d));
        *o = reduce16_scalar(&v);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn value_sum_f32_raw(probs: &[f32], values: &[f32], head: HeadView, out: &mut [f32]) {
    let dv = head.dim;
    let d8 = dv / 8 * 8;
    out.fill(0.0);
    let vp = values.as_ptr();
    for (j, &p) in probs.iter().enumerate() {
        let row = vp.add(j * head.stride + head.offset);
        let pv = _mm256_set1_ps(p);
        let mut d = 0;
        while d < d8 {
            let o = out.as_mut_ptr().add(d);
            let prod = _mm256_mul_ps(pv, _mm256_loadu_ps(row.add(d)));
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), prod));
            d += 8;
        }
        for (d, o) in out.iter_mut().enumerate().skip(d8) {
            *o += p * *row.add(d);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_8_raw(a: &[f32], b: &[f32]) -> f32 {
    let n8 = a.len() / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < n8 {
        let prod = _mm256_mul_ps(
            _mm256_loadu_ps(a.as_ptr().add(i)),
            _mm256_loadu_ps(b.as_ptr().add(i)),
        );
        acc = _mm256_add_ps(acc, prod);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    let mut s = lanes.iter().sum::<f32>();
    for (x, y) in a[n8..].iter().zip(&b[n8..]) {
        s += x * y;
    }
    s
}

#[cfg(test)]
#[path = "attn_avx2_tests.rs"]
mod tests;
