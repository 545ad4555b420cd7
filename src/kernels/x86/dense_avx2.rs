//! AVX2 (+FMA, F16C) row dot products and GEMVs for the dense weight types of embeddings
//! and output heads, each giving exactly the float its scalar twin gives:
//!
//! | kernel | scalar twin |
//! |---|---|
//! | [`dot_f16_exact`], [`gemv_f16_exact`] | `model::numerics::dot_exact_products` (F16 weights, one token) |
//! | [`dot_f32_fused`], [`gemv_f32_fused`] | `model::numerics::dot_fused` (F32 weights, one token) |
//! | [`gemm_tinyblas`] | `model::numerics::dot_tinyblas` (F32/F16 weights, batches) |
//! | [`dot_q8_0`], [`dot_q4_0`] | `kernels::scalar_dense` (Q8_0, Q4_0) |
//! | [`dot_q6_k`], [`dot_q6_k_rows`] (in `q6k_avx2`) | `kernels::scalar_dense` (Q6_K) |
//!
//! Exactness comes from keeping every float accumulator of the twin as one SIMD lane: the
//! 4 × 16-lane accumulators of ggml's AVX-512 dot products are eight 8-lane registers
//! here, combined and reduced in the twin's tree order; the quantized dots compute their
//! integer parts exactly (any order) and apply the float epilogue per block in sequence.
//!
//! Every public function is safe: it checks lengths and the CPU's features (the check is
//! a cached load) and panics when either is wrong. Callers pick this module through the
//! dispatch, which only does so when [`available`] holds.

use std::arch::x86_64::*;

use crate::kernels::scalar_dense::{self, DenseActivations};
use crate::kernels::table::DenseKernels;
use crate::quant::float::f16_bits_to_f32;
use crate::quant::q4_0::BLOCK_Q4_0_BYTES;
use crate::quant::q8_0::{BlockQ8_0, BLOCK_Q8_0_BYTES};

pub use super::q6k_avx2::{dot_q6_k, dot_q6_k_rows, q6_k_row_dot, q6_k_rows_dot};

/// Whether this CPU runs the AVX2 kernels (AVX2, FMA and F16C).
#[inline]
pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

#[inline]
#[track_caller]
fn require() {
    assert!(
        available(),
        "AVX2 kernel called on a CPU without AVX2/FMA/F16C"
    );
}

/// `Σ a_i·w_i` for F16 weights `w` (little-endian bytes, `2 * a.len()` of them) in the
/// order of `numerics::dot_exact_products`: each product rounded to f32, then added.
pub fn dot_f16_exact(a: &[f32], w: &[u8]) -> f32 {
    require();
    assert_eq!(w.len(), 2 * a.len());
    // SAFETY: the features are present (checked above) and `w` holds `a.len()` halves.
    unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr(), a.len()) }
}

/// [`dot_f16_exact`] with the weights as `half::f16` values (the f16 KV cache).
pub fn dot_f16_exact_halves(a: &[f32], w: &[half::f16]) -> f32 {
    require();
    assert_eq!(w.len(), a.len());
    // SAFETY: features checked; `half::f16` is a `repr(transparent)` u16, so `w` is
    // `2 * a.len()` readable bytes of little-endian (x86) halves.
    unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr().cast::<u8>(), a.len()) }
}

/// `out[r] = dot_f16_exact(a, row r of w)` for `out.len()` rows of `a.len()` halves.
pub fn gemv_f16_exact(a: &[f32], w: &[u8], out: &mut [f32]) {
    require();
    let rb = 2 * a.len();
    assert_eq!(w.len(), rb * out.len());
    for (r, o) in out.iter_mut().enumerate() {
        // SAFETY: features checked; row `r` lies inside `w` (length checked above).
        *o = unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr().add(r * rb), a.len()) };
    }
}

/// `Σ a_i·w_i` for F32 weights `w` (little-endian bytes, `4 * a.len()`) in the order of
/// `numerics::dot_fused`: products fused into 4 × 16 accumulators.
pub fn dot_f32_fused(a: &[f32], w: &[u8]) -> f32 {
    require();
    assert_eq!(w.len(), 4 * a.len());
    // SAFETY: the features are present and `w` holds `a.len()` floats.
    unsafe { dot_f32_raw(a.as_ptr(), w.as_ptr(), a.len()) }
}

/// `out[r] = dot_f32_fused(a, row r of w)`.
pub fn gemv_f32_fused(a: &[f32], w: &[u8], out: &mut [f32]) {
    require();
    let rb = 4 * a.len();
    assert_eq!(w.len(), rb * out.len());
    for (r, o) in out.iter_mut().enumerate() {
        // SAFETY: features checked; row `r` lies inside `w`.
        *o = unsafe { dot_f32_raw(a.as_ptr(), w.as_ptr().add(r * rb), a.len()) };
    }
}

/// Weight element type of [`gemm_tinyblas`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatWeights {
    /// IEEE half, little-endian.
    F16,
    /// IEEE single, little-endian.
    F32,
}

/// `out[t * m + r] = Σ_c x[t * k + c] · w[r][c]` for `n = x.len() / k` activation rows and
/// `m = out.len() / n` weight rows, each sum in the order of `numerics::dot_tinyblas`
/// (one 16-lane fused accumulator, reduced by `reduce16`). `k` must be a multiple of 16.
pub fn gemm_tinyblas(ty: FloatWeights, x: &[f32], k: usize, w: &[u8], out: &mut [f32]) {
    require();
    assert!(k > 0 && k % 16 == 0 && x.len() % k == 0);
    let n = x.len() / k;
    assert!(n > 0 && out.len() % n == 0);
    let m = out.len() / n;
    let rb = match ty {
        FloatWeights::F16 => 2 * k,
        FloatWeights::F32 => 4 * k,
    };
    assert_eq!(w.len(), rb * m);
    let mut r = 0;
    while r < m {
        let rows = (m - r).min(4);
        for t in 0..n {
            let mut sums = [0f32; 4];
            // SAFETY: features checked; rows r..r+rows of `w` and row t of `x` are in
            // bounds (lengths checked above).
            unsafe {
                let xr = x.as_ptr().add(t * k);
                let wr = w.as_ptr().add(r * rb);
                match ty {
                    FloatWeights::F16 => tinyblas_rows::<true>(xr, wr, rb, k, rows, &mut sums),
                    FloatWeights::F32 => tinyblas_rows::<false>(xr, wr, rb, k, rows, &mut sums),
                }
            }
            out[t * m + r..][..rows].copy_from_slice(&sums[..rows]);
        }
        r += rows;
    }
}

/// One Q8_0 row (`w`: 34-byte blocks) dotted with Q8_0 activations `x` (as quantized by
/// `q8_0::quantize_block_x86`, whose quants lie in -127..=127), as `scalar_dense` does:
/// exact block sums, `sumf += sumi * (d_w * d_x)` block after block.
pub fn dot_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q8_0_BYTES);
    // SAFETY: features checked; `w` holds `x.len()` blocks.
    unsafe { dot_q8_0_raw(w.as_ptr(), x) }
}

/// One Q4_0 row (`w`: 18-byte blocks) dotted with Q8_0 activations, as `scalar_dense`
/// does: exact block sums, `sumf += sumi * d_w * d_x` block after block.
pub fn dot_q4_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q4_0_BYTES);
    // SAFETY: features checked; `w` holds `x.len()` blocks.
    unsafe { dot_q4_0_raw(w.as_ptr(), x) }
}

/// `numerics::dot_tinyblas` of one F16 row (`x.len()` a multiple of 16).
pub fn dot_tinyblas_f16(x: &[f32], row: &[u8]) -> f32 {
    let mut out = [0f32];
    gemm_tinyblas(FloatWeights::F16, x, x.len(), row, &mut out);
    out[0]
}

/// `numerics::dot_tinyblas` of one F32 row (`x.len()` a multiple of 16).
pub fn dot_tinyblas_f32(x: &[f32], row: &[u8]) -> f32 {
    let mut out = [0f32];
    gemm_tinyblas(FloatWeights::F32, x, x.len(), row, &mut out);
    out[0]
}

/// [`dot_q8_0`] as a dispatch-table entry.
pub fn q8_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q8_0(
        row,
        act.q8_0_blocks().expect("activations converted for Q8_0"),
    )
}

/// [`dot_q4_0`] as a dispatch-table entry.
pub fn q4_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q4_0(
        row,
        act.q8_0_blocks().expect("activations converted for Q4_0"),
    )
}

/// The dense entries of the dispatch table on this path (BF16 stays scalar: its twin
/// sums in f64 in element order, which leaves nothing to vectorize but the products).
pub fn table_entries() -> DenseKernels {
    DenseKernels {
        f32_fused: dot_f32_fused,
        f32_tinyblas: dot_tinyblas_f32,
        f16_exact: dot_f16_exact,
        f16_tinyblas: dot_tinyblas_f16,
        bf16: scalar_dense::bf16_row_dot,
        q8_0: q8_0_row_dot,
        q4_0: q4_0_row_dot,
        q6_k: q6_k_row_dot,
        q6_k_rows: Some(q6_k_rows_dot),
        name: "avx2",
    }
}

/// `_mm512_reduce_add_ps`'s tree over 16 lanes held as `lo` (lanes 0..8) and `hi`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn reduce16(lo: __m256, hi: __m256) -> f32 {
    let a = _mm256_add_ps(lo, hi);
    let b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    // (b0 + b2), (b1 + b3)
    let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 1)))
}

/// ggml's `(acc0 + acc2) + (acc1 + acc3)` then `reduce16`, with `acc[2r]`/`acc[2r+1]` the
/// low/high halves of 16-lane accumulator `r`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn combine4x16(acc: &[__m256; 8]) -> f32 {
    let lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    let hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    reduce16(lo, hi)
}

/// Eight halves at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8_f16(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
}

/// The F16 dot of [`dot_f16_exact`]: each product rounded, then added (as the twin).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_raw(a: *const f32, w: *const u8, n: usize) -> f32 {
    let full = n / 64 * 64;
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut i = 0;
    while i < full {
        for (j, s) in acc.iter_mut().enumerate() {
            let off = i + 8 * j;
            let wv = load8_f16(w.add(2 * off));
            let av = _mm256_loadu_ps(a.add(off));
            *s = _mm256_add_ps(*s, _mm256_mul_ps(av, wv));
        }
        i += 64;
    }
    let mut sum = f64::from(combine4x16(&acc));
    for j in full..n {
        let wv = f16_bits_to_f32(u16::from_le_bytes([*w.add(2 * j), *w.add(2 * j + 1)]));
        sum += f64::from(*a.add(j) * wv);
    }
    sum as f32
}

/// The F32 dot of [`dot_f32_fused`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_raw(a: *const f32, w: *const u8, n: usize) -> f32 {
    let full = n / 64 * 64;
    let w = w.cast::<f32>();
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut i = 0;
    while i < full {
        for (j, s) in acc.iter_mut().enumerate() {
            let off = i + 8 * j;
            *s = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(off)), _mm256_loadu_ps(w.add(off)), *s);
        }
        i += 64;
    }
    let mut sum = f64::from(combine4x16(&acc));
    for j in full..n {
        sum += f64::from(*a.add(j) * w.add(j).read_unaligned());
    }
    sum as f32
}

/// `rows` (1..=4) tinyBLAS dots of the activation row at `x` (`k` floats) with weight rows
/// `rb` bytes apart from `w`, into `sums[..rows]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tinyblas_rows<const F16: bool>(
    x: *const f32,
    w: *const u8,
    rb: usize,
    k: usize,
    rows: usize,
    sums: &mut [f32; 4],
) {
    let load = |p: *const u8, c: usize| -> (__m256, __m256) {
        if F16 {
            (load8_f16(p.add(2 * c)), load8_f16(p.add(2 * c + 16)))
        } else {
            let p = p.cast::<f32>().add(c);
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        }
    };
    let mut lo = [_mm256_setzero_ps(); 4];
    let mut hi = [_mm256_setzero_ps(); 4];
    let mut c = 0;
    if rows == 4 {
        while c < k {
            let xl = _mm256_loadu_ps(x.add(c));
            let xh = _mm256_loadu_ps(x.add(c + 8));
            for j in 0..4 {
                let (wl, wh) = load(w.add(j * rb), c);
                lo[j] = _mm256_fmadd_ps(xl, wl, lo[j]);
                hi[j] = _mm256_fmadd_ps(xh, wh, hi[j]);
            }
            c += 16;
        }
    } else {
        while c < k {
            let xl = _mm256_loadu_ps(x.add(c));
            let xh = _mm256_loadu_ps(x.add(c + 8));
            for j in 0..rows {
                let (wl, wh) = load(w.add(j * rb), c);
                lo[j] = _mm256_fmadd_ps(xl, wl, lo[j]);
                hi[j] = _mm256_fmadd_ps(xh, wh, hi[j]);
            }
            c += 16;
        }
    }
    for j in 0..rows {
        sums[j] = reduce16(lo[j], hi[j]);
    }
}

/// Horizontal sums of eight i32x8 vectors: lane `i` of the result is the sum of `v[i]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum8_epi32(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let a = _mm256_hadd_epi32(h01, h23);
    let b = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(a, b, 0x20),
        _mm256_permute2x128_si256(a, b, 0x31),
    )
}

/// Exact `Σ w_i x_i` of 32 int8 pairs in i32x8 partial sums; `x` must not hold -128.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot32_i8(w: __m256i, x: __m256i) -> __m256i {
    // |w| as unsigned times x with w's sign: pair sums stay within ±2·128·127.
    let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    _mm256_madd_epi16(p16, _mm256_set1_epi16(1))
}

#[inline]
fn f16_at(p: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([p[0], p[1]]))
}

/// Block-sum epilogue shared by Q8_0 and Q4_0: adds the per-block terms in order.
/// `Q4` selects `(sumi * d_w) * d_x` (Q4_0) over `sumi * (d_w * d_x)` (Q8_0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn add_block_terms<const Q4: bool>(
    sumf: &mut f32,
    sums: __m256i,
    dw: &[f32; 8],
    dx: &[f32; 8],
    count: usize,
) {
    let si = _mm256_cvtepi32_ps(sums);
    let dwv = _mm256_loadu_ps(dw.as_ptr());
    let dxv = _mm256_loadu_ps(dx.as_ptr());
    let t = if Q4 {
        _mm256_mul_ps(_mm256_mul_ps(si, dwv), dxv)
    } else {
        _mm256_mul_ps(si, _mm256_mul_ps(dwv, dxv))
    };
    let mut terms = [0f32; 8];
    _mm256_storeu_ps(terms.as_mut_ptr(), t);
    for &v in &terms[..count] {
        *sumf += v;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0_raw(w: *const u8, x: &[BlockQ8_0]) -> f32 {
    let nb = x.len();
    let wb = std::slice::from_raw_parts(w, nb * BLOCK_Q8_0_BYTES);
    let mut sumf = 0f32;
    let mut b = 0;
    while b < nb {
        let count = (nb - b).min(8);
        let mut v = [_mm256_setzero_si256(); 8];
        let mut dw = [0f32; 8];
        let mut dx = [0f32; 8];
        for j in 0..count {
            let blk = &wb[(b + j) * BLOCK_Q8_0_BYTES..][..BLOCK_Q8_0_BYTES];
            let wq = _mm256_loadu_si256(blk.as_ptr().add(2).cast());
            let xq = _mm256_loadu_si256(x[b + j].qs.as_ptr().cast());
            v[j] = dot32_i8(wq, xq);
            dw[j] = f16_at(blk);
            dx[j] = x[b + j].scale();
        }
        add_block_terms::<false>(&mut sumf, hsum8_epi32(&v), &dw, &dx, count);
        b += count;
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_0_raw(w: *const u8, x: &[BlockQ8_0]) -> f32 {
    let nb = x.len();
    let wb = std::slice::from_raw_parts(w, nb * BLOCK_Q4_0_BYTES);
    let low = _mm256_set1_epi8(0x0f);
    let eight = _mm256_set1_epi8(8);
    let mut sumf = 0f32;
    let mut b = 0;
    while b < nb {
        let count = (nb - b).min(8);
        let mut v = [_mm256_setzero_si256(); 8];
        let mut dw = [0f32; 8];
        let mut dx = [0f32; 8];
        for j in 0..count {
            let blk = &wb[(b + j) * BLOCK_Q4_0_BYTES..][..BLOCK_Q4_0_BYTES];
            let packed = _mm_loadu_si128(blk.as_ptr().add(2).cast());
            // Low nibbles are elements 0..16, high nibbles 16..32.
            let both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
            let wq = _mm256_sub_epi8(_mm256_and_si256(both, low), eight);
            let xq = _mm256_loadu_si256(x[b + j].qs.as_ptr().cast());
            v[j] = dot32_i8(wq, xq);
            dw[j] = f16_at(blk);
            dx[j] = x[b + j].scale();
        }
        add_block_terms::<true>(&mut sumf, hsum8_epi32(&v), &dw, &dx, count);
        b += count;
    }
    sumf
}

#[cfg(test)]
#[path = "dense_avx2_tests.rs"]
mod tests;
