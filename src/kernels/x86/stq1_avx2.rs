//! STQ1_0 on AVX2: 128 weights (two 64-weight chunks of a block) per step.
//!
//! The 16 slot nibbles of a chunk are spread to 16 bytes (one per group, chunk `c` in the
//! low 128-bit lane, `c + 1` in the high one), the sign bits to byte masks; then for each
//! lane `p` a `vpshufb` of the lane's code table (`value + 1`, and `1 - value` for negated
//! groups, chosen by a blend) gives 32 weight codes in the order of
//! [`super::super::stq1_prep`]'s reordered quants, and `vpmaddubsw` multiplies them. Per
//! block the exact integer `Σ code·q − Σ q = Σ w·q` feeds the scalar epilogue
//! `sumf += sumi · (d_w · d_a)`, blocks in order, so the floats equal the scalar kernel's.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::stq1_prep::prepared_token;
use crate::kernels::stq1_prep::{block_sum, Stq1Token};
use crate::quant::stq1::{lane_values, BLOCK_BYTES, BLOCK_WEIGHTS};
use crate::quant::ternary::TernaryMatrix;
use crate::quant::tq::f16_at;
use std::ops::Range;

/// Whether this CPU can run the kernels of this module.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Tokens per pass over a row.
const TOKENS_PER_PASS: usize = 4;

const fn code_table(p: usize, negate: bool) -> [u8; 16] {
    let mut t = [0u8; 16];
    let mut s = 0;
    while s < 16 {
        let v = lane_values(0, s as u8)[p];
        t[s] = if negate { 1 - v } else { 1 + v } as u8;
        s += 1;
    }
    t
}

const POS_CODES: [[u8; 16]; 4] = [
    code_table(0, false),
    code_table(1, false),
    code_table(2, false),
    code_table(3, false),
];
const NEG_CODES: [[u8; 16]; 4] = [
    code_table(0, true),
    code_table(1, true),
    code_table(2, true),
    code_table(3, true),
];

/// `out[t * rows.len() + (r - rows.start)] = Σ_c W[r, c] · x_t[c]` for the STQ1_0 matrix
/// `data` (`cols` columns) and the prepared tokens `acts`, equal bit for bit to the scalar
/// kernel. Panics when the CPU has no AVX2 or the operands do not fit.
pub fn stq1_gemm<'a>(
    data: &[u8],
    cols: usize,
    n_tokens: usize,
    token: &dyn Fn(usize) -> Stq1Token<'a>,
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert!(
        available(),
        "the STQ1_0 SIMD kernel needs its instruction set"
    );
    assert!(cols % BLOCK_WEIGHTS == 0);
    let row_bytes = cols / BLOCK_WEIGHTS * BLOCK_BYTES;
    assert!(rows.end * row_bytes <= data.len());
    let n = rows.len();
    assert_eq!(out.len(), n_tokens * n);
    let mut t0 = 0;
    while t0 < n_tokens {
        let nt = (n_tokens - t0).min(TOKENS_PER_PASS);
        let empty = Stq1Token {
            qs: &[],
            sums: &[],
            d: &[],
        };
        let mut toks = [empty; TOKENS_PER_PASS];
        for (dt, tok) in toks[..nt].iter_mut().enumerate() {
            *tok = token(t0 + dt);
            assert!(
                tok.qs.len() == cols
                    && tok.d.len() == cols / BLOCK_WEIGHTS
                    && tok.sums.len() == 2 * (cols / BLOCK_WEIGHTS)
            );
        }
        let toks = &toks[..nt];
        for r in rows.clone() {
            let row = &data[r * row_bytes..][..row_bytes];
            let mut res = [0f32; TOKENS_PER_PASS];
            // SAFETY: the instruction set is present (checked above); the row holds
            // `cols / 256` blocks and every token `cols` quants and `cols / 256` scales and
            // sums (checked above), which is all `row_dots` reads.
            unsafe {
                match toks.len() {
                    1 => row_dots::<1>(row, toks, &mut res),
                    2 => row_dots::<2>(row, toks, &mut res),
                    3 => row_dots::<3>(row, toks, &mut res),
                    _ => row_dots::<4>(row, toks, &mut res),
                }
            }
            for (dt, v) in res[..nt].iter().enumerate() {
                out[(t0 + dt) * n + (r - rows.start)] = *v;
            }
        }
        t0 += nt;
    }
}

/// The dispatch-table entry ([`crate::kernels::table::TernaryGemmFn`]) over rows prepared by
/// [`prepare_stq1`](crate::kernels::stq1_prep::prepare_stq1).
pub fn gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    stq1_gemm(
        m.data,
        m.cols,
        acts.len(),
        &|t| prepared_token(&acts[t]),
        rows,
        out,
    );
}

#[inline(always)]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b01_00_11_10>(x));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0b10_11_00_01>(x));
    _mm_cvtsi128_si32(x)
}

#[target_feature(enable = "avx2")]
unsafe fn row_dots<const NT: usize>(row: &[u8], toks: &[Stq1Token], res: &mut [f32]) {
    let nib = _mm256_set1_epi8(0x0f);
    // Slot bytes: lane 0 takes qs bytes 0..8 (chunk c), lane 1 bytes 8..16 (chunk c + 1),
    // each twice (even groups in the low nibble, odd in the high one).
    let dup = _mm256_setr_epi8(
        0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
        14, 14, 15, 15,
    );
    let odd = _mm256_set1_epi16(0xff00u16 as i16);
    let pick_signs = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bits = _mm256_setr_epi8(
        1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,
        1, 2, 4, 8, 16, 32, 64, -128,
    );
    let ones16 = _mm256_set1_epi16(1);
    let mut pos = [_mm256_setzero_si256(); 4];
    let mut neg = [_mm256_setzero_si256(); 4];
    for p in 0..4 {
        pos[p] =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(POS_CODES[p].as_ptr() as *const __m128i));
        neg[p] =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(NEG_CODES[p].as_ptr() as *const __m128i));
    }
    let mut sumf = [0f32; NT];
    for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
        let bp = block.as_ptr();
        let mut acc = [_mm256_setzero_si256(); NT];
        for cp in 0..2 {
            let raw =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(bp.add(16 * cp) as *const __m128i));
            let d = _mm256_shuffle_epi8(raw, dup);
            let slot = _mm256_blendv_epi8(
                _mm256_and_si256(d, nib),
                _mm256_and_si256(_mm256_srli_epi16::<4>(d), nib),
                odd,
            );
            let sw = std::ptr::read_unaligned(bp.add(32 + 4 * cp) as *const i32);
            let s = _mm256_set1_epi32(sw);
            let m = _mm256_cmpeq_epi8(
                _mm256_and_si256(_mm256_shuffle_epi8(s, pick_signs), bits),
                bits,
            );
            for p in 0..4 {
                let codes = _mm256_blendv_epi8(
                    _mm256_shuffle_epi8(pos[p], slot),
                    _mm256_shuffle_epi8(neg[p], slot),
                    m,
                );
                for t in 0..NT {
                    let q = _mm256_loadu_si256(
                        toks[t]
                            .qs
                            .as_ptr()
                            .add(b * BLOCK_WEIGHTS + cp * 128 + p * 32)
                            as *const __m256i,
                    );
                    acc[t] = _mm256_add_epi16(acc[t], _mm256_maddubs_epi16(codes, q));
                }
            }
        }
        let d_w = f16_at(block, BLOCK_BYTES - 2);
        for t in 0..NT {
            let sumi = hsum_epi32(_mm256_madd_epi16(acc[t], ones16)) - block_sum(toks[t].sums, b);
            sumf[t] += sumi as f32 * (d_w * toks[t].d[b]);
        }
    }
    res[..NT].copy_from_slice(&sumf);
}
