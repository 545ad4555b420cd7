//! AVX2 Q6_K × Q8_K row dots, bit for bit those of `scalar_dense` (ggml's generic
//! `ggml_vec_dot_q6_K_q8_K`): per super-block, eight exact integer sums — lane `k` sums
//! `scale · q · y` over the elements whose index is `k` mod 8 — each lane scaled by
//! `d_w · d_x` into its own f32 sum, the eight f32 sums added in lane order at the end.
//!
//! The integer sums are exact, so any order works; the kernel picks the cheapest:
//!
//! - Weights stay unsigned (`u = q + 32`, 0..=63) so `maddubs` multiplies them with the
//!   signed activations; `32 · y` is subtracted afterwards (16-bit, exact).
//! - A byte shuffle (`PAIR_K_K8`, the same for weights and activations) puts elements `k`
//!   and `k + 8` of each 16-element group side by side, so each 16-bit `maddubs` result
//!   holds one lane of one scale group.
//! - Two such results (two groups) are interleaved and `madd`-ed with their two scales:
//!   each 32-bit sum then belongs to one lane.
//!
//! The activation side (shuffled quants, `32 · y` pair sums) depends only on the Q8_K
//! block, so [`dot_q6_k_rows`] prepares it once per block for four rows at a time.

use std::arch::x86_64::*;

use super::dense_avx2::available;
use crate::kernels::scalar_dense::DenseActivations;
use crate::quant::q6_k::{BlockQ8K, BLOCK_Q6_K_BYTES};

/// The farthest ahead (bytes) the several-row kernel prefetches.
const PREFETCH_MAX_BYTES: usize = 32 << 10;

/// Rows dotted together by [`dot_q6_k_rows`], sharing the activation preparation.
const ROWS: usize = 4;

#[inline]
#[track_caller]
fn require() {
    assert!(
        available(),
        "AVX2 kernel called on a CPU without AVX2/FMA/F16C"
    );
}

/// One Q6_K row (`w`: 210-byte super-blocks) dotted with Q8_K activations, as
/// `scalar_dense` does (see the module doc).
pub fn dot_q6_k(w: &[u8], x: &[BlockQ8K]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q6_K_BYTES);
    let mut out = [0f32];
    // SAFETY: features checked; `w` holds one row of `x.len()` super-blocks.
    unsafe { dot_rows::<1>(w.as_ptr(), 0, x, &mut out) };
    out[0]
}

/// `out[r] = dot_q6_k(row r of w, x)` for `out.len()` consecutive rows.
pub fn dot_q6_k_rows(w: &[u8], x: &[BlockQ8K], out: &mut [f32]) {
    require();
    let rb = x.len() * BLOCK_Q6_K_BYTES;
    assert_eq!(w.len(), rb * out.len());
    let mut r = 0;
    while r + ROWS <= out.len() {
        // SAFETY: features checked; rows r..r+ROWS lie inside `w` (length checked above).
        unsafe {
            dot_rows::<ROWS>(
                w.as_ptr().add(r * rb),
                rb,
                x,
                (&mut out[r..r + ROWS]).try_into().expect("ROWS outputs"),
            )
        };
        r += ROWS;
    }
    for (o, row) in out[r..].iter_mut().zip(w[r * rb..].chunks_exact(rb)) {
        *o = dot_q6_k(row, x);
    }
}

/// [`dot_q6_k`] as a dispatch-table entry.
pub fn q6_k_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q6_k(
        row,
        act.q8_k_blocks().expect("activations converted for Q6_K"),
    )
}

/// [`dot_q6_k_rows`] as a dispatch-table entry.
pub fn q6_k_rows_dot(rows: &[u8], act: &DenseActivations, out: &mut [f32]) {
    dot_q6_k_rows(
        rows,
        act.q8_k_blocks().expect("activations converted for Q6_K"),
        out,
    )
}

/// Within each 128-bit lane, byte `2k` takes byte `k` and byte `2k + 1` byte `k + 8`.
const PAIR_K_K8: [i8; 32] = [
    0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, //
    0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,
];

/// The 16 scales, even-indexed ones first.
const EVEN_ODD: [i8; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15];

/// One Q8_K block as the kernel consumes it: the eight 32-quant chunks shuffled by
/// `PAIR_K_K8`, and `32 · (y_a + y_b)` of each shuffled pair as i16.
struct PreparedQ8K {
    q: [__m256i; 8],
    q32: [__m256i; 8],
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn prepare(y: &BlockQ8K, pair: __m256i) -> PreparedQ8K {
    let m32 = _mm256_set1_epi8(32);
    let mut a = PreparedQ8K {
        q: [_mm256_setzero_si256(); 8],
        q32: [_mm256_setzero_si256(); 8],
    };
    for c in 0..8 {
        let v = _mm256_shuffle_epi8(_mm256_loadu_si256(y.qs.as_ptr().add(32 * c).cast()), pair);
        a.q[c] = v;
        // 32 · (y_a + y_b) lies in -8192..=8128: no saturation.
        a.q32[c] = _mm256_maddubs_epi16(m32, v);
    }
    a
}

/// The eight exact lane sums of one super-block at `p`, as f32 in lane order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_lanes(p: *const u8, a: &PreparedQ8K, pair: __m256i) -> __m256 {
    let m4 = _mm256_set1_epi8(0x0f);
    let m30 = _mm256_set1_epi8(0x30);
    let scales = _mm_shuffle_epi8(
        _mm_loadu_si128(p.add(192).cast()),
        _mm_loadu_si128(EVEN_ODD.as_ptr().cast()),
    );
    // Low lane: s0, s2, .., s14 as i16; high lane: s1, s3, .., s15. 32-bit element j of
    // the low lane is (s[4j], s[4j+2]), of the high lane (s[4j+1], s[4j+3]).
    let sc = _mm256_cvtepi8_epi16(scales);
    let sc_pairs = [
        _mm256_shuffle_epi32::<0x00>(sc),
        _mm256_shuffle_epi32::<0x55>(sc),
        _mm256_shuffle_epi32::<0xaa>(sc),
        _mm256_shuffle_epi32::<0xff>(sc),
    ];
    // acc_lo: lanes [0..4 | 0..4], acc_hi: lanes [4..8 | 4..8].
    let mut acc_lo = _mm256_setzero_si256();
    let mut acc_hi = _mm256_setzero_si256();
    for h in 0..2 {
        let ql0 = _mm256_shuffle_epi8(_mm256_loadu_si256(p.add(64 * h).cast()), pair);
        let ql1 = _mm256_shuffle_epi8(_mm256_loadu_si256(p.add(64 * h + 32).cast()), pair);
        let qh = _mm256_shuffle_epi8(_mm256_loadu_si256(p.add(128 + 32 * h).cast()), pair);
        // Chunk c holds elements 128h + 32c + (0..32): groups 8h + 2c (low lane) and
        // 8h + 2c + 1 (high lane). 16-bit shifts leak bits across bytes; the masks drop them.
        let u = [
            _mm256_or_si256(
                _mm256_and_si256(ql0, m4),
                _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(ql1, m4),
                _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                _mm256_and_si256(qh, m30),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
            ),
        ];
        // (u - 32) · y pair sums: maddubs is exact (|sum| <= 2 · 63 · 128), so is the
        // difference (|(u - 32) · y| pair sums <= 2 · 32 · 128).
        let d = |c: usize| {
            let i = 4 * h + c;
            _mm256_sub_epi16(_mm256_maddubs_epi16(u[c], a.q[i]), a.q32[i])
        };
        for (j, (c0, c1)) in [(0usize, 1usize), (2, 3)].into_iter().enumerate() {
            let (p0, p1) = (d(c0), d(c1));
            // Groups of chunks c0 and c1 side by side, times their scales.
            let s = sc_pairs[2 * h + j];
            acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(p0, p1), s));
            acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(p0, p1), s));
        }
    }
    let lanes = _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(acc_lo, acc_hi),
        _mm256_permute2x128_si256::<0x31>(acc_lo, acc_hi),
    );
    _mm256_cvtepi32_ps(lanes)
}

/// The f16 at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// `R` rows, `rb` bytes apart from `w`, each dotted with `x` into `out`.
///
/// # Safety
/// AVX2, FMA and F16C must be present and `w + r * rb` must hold `x.len()` super-blocks
/// for every `r < R`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows<const R: usize>(w: *const u8, rb: usize, x: &[BlockQ8K], out: &mut [f32; R]) {
    // Several rows are several short streams (2560 columns are 33 cache lines a row) that
    // restart every R rows, which the hardware prefetcher does not follow: each block
    // asks for the same block two groups of R rows ahead (one group for long rows, to
    // stay within the L1 cache). Without it the 4-row kernel runs at half speed from
    // memory; with it, faster than row by row (docs/PERF.md).
    let ahead = if R > 1 && R * rb <= PREFETCH_MAX_BYTES / 2 {
        2 * R * rb
    } else {
        R * rb
    };
    let pair = _mm256_loadu_si256(PAIR_K_K8.as_ptr().cast());
    let mut sums = [_mm256_setzero_ps(); R];
    for (b, y) in x.iter().enumerate() {
        let a = prepare(y, pair);
        for (r, s) in sums.iter_mut().enumerate() {
            let p = w.add(r * rb + b * BLOCK_Q6_K_BYTES);
            if R > 1 {
                // A prefetch never faults; `wrapping_add` keeps the address arithmetic
                // defined past the end of the weights.
                let next = p.wrapping_add(ahead);
                for l in 0..4 {
                    _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(64 * l).cast());
                }
            }
            let lanes = block_lanes(p, &a, pair);
            let d = _mm256_set1_ps(f16_at(p.add(208)) * y.d);
            // Product then sum, unfused, as the scalar twin.
            *s = _mm256_add_ps(*s, _mm256_mul_ps(d, lanes));
        }
    }
    for (o, s) in out.iter_mut().zip(sums) {
        let mut v = [0f32; 8];
        _mm256_storeu_ps(v.as_mut_ptr(), s);
        *o = v.iter().fold(0f32, |acc, &t| acc + t);
    }
}
