//! I2_S × int8 on AVX2, as bitnet.cpp does it: the 2-bit codes (0..3) are unpacked with
//! shifts and masks and multiplied with the int8 activations by `vpmaddubsw` (unsigned ×
//! signed bytes, pairs summed into 16-bit lanes), giving `Σ code·q`; the epilogue then
//! removes the +1 offset with the activation row sum, exactly as the scalar twin
//! ([`crate::kernels::scalar::i2s_gemm_rows`]).
//!
//! Exactness: one `vpmaddubsw` lane is at most 2·3·128 = 768 in magnitude; the four of a
//! block add up to 3072, and the 16-bit accumulators take at most 8 blocks (24576 < 2^15)
//! before they are widened into 32-bit ones. So the integer sums equal the scalar ones for
//! every input, and the same f32 epilogue gives the same bits.
//!
//! Layout reminder: byte `j` of a 32-byte block holds weights `j, j+32, j+64, j+96` in bits
//! 7-6, 5-4, 3-2, 1-0, so the four unpacked code vectors of a block line up with four
//! contiguous 32-byte runs of activations.
//!
//! One token (decode) runs one row after the other, each a sequential stream with a
//! software prefetch ahead ([`dot_row`]); several tokens (prefill) run blocks of 64 rows × 1024
//! columns in tiles of 2 rows × 4 tokens ([`gemm_blocked`]).

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::scalar::i2s_epilogue;
use crate::quant::i2s;
use crate::quant::ternary::TernaryMatrix;

/// Blocks whose sums a 16-bit accumulator takes before widening (see the module doc).
const BLOCKS_PER_WIDEN: usize = 8;

/// How far ahead in the weights the one-token kernel prefetches (see [`dot_row`]).
const PREFETCH_BYTES: usize = 4096;

/// The dispatch-table entry (see [`crate::kernels::table::TernaryGemmFn`]).
pub fn gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let row_bytes = m.cols / 4;
    assert!(m.cols % i2s::BLOCK_WEIGHTS == 0, "I2_S columns");
    assert!(rows.start <= rows.end && rows.end <= m.rows, "row range");
    assert!(m.data.len() >= m.rows * row_bytes, "I2_S bytes");
    assert_eq!(out.len(), acts.len() * rows.len(), "output size");
    for a in acts {
        assert_eq!(a.qs().len(), m.cols, "activation length");
    }
    // SAFETY: this entry is installed only when the CPU has AVX2 (`table_for`); every
    // pointer the kernel forms stays inside the slices whose sizes were asserted above.
    unsafe { gemm_rows_avx2(m, acts, rows, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_rows_avx2(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let nr = rows.len();
    let row_bytes = m.cols / 4;
    let nblocks = m.cols / i2s::BLOCK_WEIGHTS;
    let w_scale = m.scale().unwrap_or(0.0);
    let wrow = |r: usize| m.data[r * row_bytes..].as_ptr();
    let mut store = |t: usize, r: usize, sumi: i32| {
        let a = &acts[t];
        out[t * nr + (r - rows.start)] = i2s_epilogue(sumi, a.row_sum(), a.act_scale(), w_scale);
    };
    if acts.len() == 1 {
        let q = acts[0].qs().as_ptr();
        for r in rows.clone() {
            // SAFETY: row r exists and is `row_bytes` long; q holds `cols` quants.
            let s = unsafe { dot_row(wrow(r), q, nblocks) };
            store(0, r, s);
        }
        return;
    }
    // SAFETY: as for this function (AVX2; the sizes were asserted by the entry).
    unsafe { gemm_blocked(m, acts, rows, out) }
}

/// Rows per row block of the prefill path: its weights for one column chunk (64 × 256
/// bytes) stay in L1 while every token group passes over them.
const BLOCK_ROWS: usize = 64;
/// Tokens per register tile of the prefill path.
const TILE_TOKENS: usize = 4;
/// Weight rows per register tile of the prefill path.
const TILE_ROWS: usize = 2;

/// The prefill path: for each block of [`BLOCK_ROWS`] rows and each chunk of
/// [`BLOCKS_PER_WIDEN`] I2_S blocks (1024 columns), every group of [`TILE_TOKENS`] tokens
/// passes over the rows in tiles of [`TILE_ROWS`] rows × [`TILE_TOKENS`] tokens
/// ([`gemm_tile`]); the tiles' exact 32-bit sums are added up per (token, row) in `sums`,
/// and the float epilogue runs once per output. The chunk's activations of one token
/// group (4 KiB) and weights of the row block (16 KiB) stay in L1. Nothing is allocated:
/// the running sums of a row block are kept, as `i32` bit patterns, in the outputs they
/// become.
///
/// # Safety
/// AVX2; the operand sizes as asserted by [`gemm_rows`].
#[target_feature(enable = "avx2")]
unsafe fn gemm_blocked(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let nr = rows.len();
    let nt = acts.len();
    let row_bytes = m.cols / 4;
    let nblocks = m.cols / i2s::BLOCK_WEIGHTS;
    let w_scale = m.scale().unwrap_or(0.0);
    // out[t * nr + r - rows.start] holds the running Σ code·q of token t and row r as the
    // bits of an i32 until the epilogue turns it into the output.
    let mut r0 = rows.start;
    while r0 < rows.end {
        let rn = (rows.end - r0).min(BLOCK_ROWS);
        for t in 0..nt {
            out[t * nr + (r0 - rows.start)..][..rn].fill(f32::from_bits(0));
        }
        let mut b0 = 0;
        while b0 < nblocks {
            let bn = (nblocks - b0).min(BLOCKS_PER_WIDEN);
            let mut t = 0;
            while t < nt {
                let tn = (nt - t).min(TILE_TOKENS);
                let mut i = 0;
                while i < rn {
                    let in_ = (rn - i).min(TILE_ROWS);
                    let w = |k: usize| {
                        // Past the last row of a short tile, repeat it (its sums are
                        // not used).
                        let r = r0 + i + k.min(in_ - 1);
                        m.data[r * row_bytes + b0 * i2s::BLOCK_BYTES..].as_ptr()
                    };
                    let w = [w(0), w(1)];
                    let qt = |k: usize| {
                        // SAFETY: block b0 of a token row is inside its `cols` quants.
                        unsafe {
                            acts[t + k.min(tn - 1)]
                                .qs()
                                .as_ptr()
                                .add(b0 * i2s::BLOCK_WEIGHTS)
                        }
                    };
                    // SAFETY: each pointer is readable for `bn` blocks (rows of
                    // `row_bytes` bytes, token rows of `cols` quants); bn ≤ 8 blocks.
                    let s = unsafe {
                        match tn {
                            4 => pad(gemm_tile::<4>(&w, &[qt(0), qt(1), qt(2), qt(3)], bn)),
                            3 => pad(gemm_tile::<3>(&w, &[qt(0), qt(1), qt(2)], bn)),
                            2 => pad(gemm_tile::<2>(&w, &[qt(0), qt(1)], bn)),
                            _ => pad(gemm_tile::<1>(&w, &[qt(0)], bn)),
                        }
                    };
                    for (k, s) in s.iter().enumerate().take(in_) {
                        for (j, &v) in s.iter().enumerate().take(tn) {
                            let o = &mut out[(t + j) * nr + (r0 - rows.start) + i + k];
                            *o = f32::from_bits((o.to_bits() as i32 + v) as u32);
                        }
                    }
                    i += in_;
                }
                t += tn;
            }
            b0 += bn;
        }
        for (t, a) in acts.iter().enumerate() {
            for o in &mut out[t * nr + (r0 - rows.start)..][..rn] {
                *o = i2s_epilogue(o.to_bits() as i32, a.row_sum(), a.act_scale(), w_scale);
            }
        }
        r0 += rn;
    }
}

/// A tile's sums, padded to the full tile width.
fn pad<const T: usize>(s: [[i32; T]; TILE_ROWS]) -> [[i32; TILE_TOKENS]; TILE_ROWS] {
    let mut o = [[0; TILE_TOKENS]; TILE_ROWS];
    for (o, s) in o.iter_mut().zip(&s) {
        o[..T].copy_from_slice(s);
    }
    o
}

/// `Σ code·q` over `nblocks ≤ 8` I2_S blocks for 2 weight rows × `T` activation rows,
/// code plane by code plane: each plane of a weight block is unpacked once for the `T`
/// tokens, and each 32-byte activation run is loaded once for both rows. 2·T 16-bit
/// accumulators never take more than 8 blocks (the module doc's bound).
///
/// # Safety
/// AVX2; each `w[i]` readable for `32 * nblocks` bytes, each `q[i]` for `128 * nblocks`;
/// `nblocks ≤ BLOCKS_PER_WIDEN`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn gemm_tile<const T: usize>(
    w: &[*const u8; TILE_ROWS],
    q: &[*const i8; T],
    nblocks: usize,
) -> [[i32; T]; TILE_ROWS] {
    debug_assert!(nblocks <= BLOCKS_PER_WIDEN);
    let mask = _mm256_set1_epi8(3);
    let mut acc = [[_mm256_setzero_si256(); T]; TILE_ROWS];
    for b in 0..nblocks {
        // SAFETY: block b of each row is inside its 32 * nblocks bytes.
        let wv = unsafe {
            [
                _mm256_loadu_si256(w[0].add(b * 32) as *const __m256i),
                _mm256_loadu_si256(w[1].add(b * 32) as *const __m256i),
            ]
        };
        for plane in 0..4 {
            let c = wv.map(|v| {
                let v = match plane {
                    0 => _mm256_srli_epi16::<6>(v),
                    1 => _mm256_srli_epi16::<4>(v),
                    2 => _mm256_srli_epi16::<2>(v),
                    _ => v,
                };
                _mm256_and_si256(v, mask)
            });
            for t in 0..T {
                // SAFETY: quants b*128 + 32*plane .. +32 are inside the token row.
                let a =
                    unsafe { _mm256_loadu_si256(q[t].add(b * 128 + plane * 32) as *const __m256i) };
                for r in 0..TILE_ROWS {
                    acc[r][t] = _mm256_add_epi16(acc[r][t], _mm256_maddubs_epi16(c[r], a));
                }
            }
        }
    }
    let ones = _mm256_set1_epi16(1);
    let mut sums = [[0i32; T]; TILE_ROWS];
    for r in 0..TILE_ROWS {
        for t in 0..T {
            sums[r][t] = hsum_i32(_mm256_madd_epi16(acc[r][t], ones));
        }
    }
    sums
}

/// Blocks whose sums [`dot_row`]'s 16-bit accumulators take before widening: its
/// four-times accumulator gains at most 2·(2·12·128) = 6144 per block in magnitude, so four
/// blocks stay below 2^15.
const BLOCKS_PER_WIDEN_ROW: usize = 4;

/// `Σ code·q` of one weight row with one activation row, `nblocks` I2_S blocks long: the
/// one-token (decode) kernel, bound by the weight stream.
///
/// Each row is one sequential stream (whole rows one after the other), which the hardware
/// prefetcher follows, helped by a software prefetch [`PREFETCH_BYTES`] ahead (one per
/// 64-byte line). Unpacking takes one shift per 32 bytes: bits 7-6 and 3-2 of each byte
/// are masked in place (`& 0b1100` of the byte shifted right by 4, and of the byte), which
/// gives their codes times 4; those products go to their own accumulators, whose exact
/// sum is divided by 4 at the end. Bits 5-4 and 1-0 (`& 0b11`) give the codes as they are.
///
/// # Safety
/// AVX2 must be available; `w` must be readable for `32 * nblocks` bytes and `q` for
/// `128 * nblocks` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_row(w: *const u8, q: *const i8, nblocks: usize) -> i32 {
    let low2 = _mm256_set1_epi8(0b11);
    let high2 = _mm256_set1_epi8(0b1100);
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    let mut b = 0;
    while b < nblocks {
        let end = (b + BLOCKS_PER_WIDEN_ROW).min(nblocks);
        // x1: Σ code·q of planes 1 and 3; x4: 4·Σ code·q of planes 0 and 2.
        let mut x1 = _mm256_setzero_si256();
        let mut x4 = _mm256_setzero_si256();
        while b < end {
            if b % 2 == 0 {
                // A prefetch never faults; `wrapping_add` keeps the address arithmetic
                // defined past the end of the weights.
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(b * 32 + PREFETCH_BYTES).cast());
            }
            // SAFETY: block b is inside the row's 32 * nblocks bytes and the
            // activations' 128 * nblocks quants.
            let (wv, a0, a1, a2, a3) = unsafe {
                let p = q.add(b * 128) as *const __m256i;
                (
                    _mm256_loadu_si256(w.add(b * 32) as *const __m256i),
                    _mm256_loadu_si256(p),
                    _mm256_loadu_si256(p.add(1)),
                    _mm256_loadu_si256(p.add(2)),
                    _mm256_loadu_si256(p.add(3)),
                )
            };
            // Across the 16-bit shift, bits of the next byte land in bits 7-4 of each
            // byte: the masks below keep only bits 3-0.
            let hi = _mm256_srli_epi16::<4>(wv);
            let c0_x4 = _mm256_and_si256(hi, high2);
            let c1 = _mm256_and_si256(hi, low2);
            let c2_x4 = _mm256_and_si256(wv, high2);
            let c3 = _mm256_and_si256(wv, low2);
            x4 = _mm256_add_epi16(
                x4,
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(c0_x4, a0),
                    _mm256_maddubs_epi16(c2_x4, a2),
                ),
            );
            x1 = _mm256_add_epi16(
                x1,
                _mm256_add_epi16(_mm256_maddubs_epi16(c1, a1), _mm256_maddubs_epi16(c3, a3)),
            );
            b += 1;
        }
        // Every term of x4 is 4·code·q, so each 32-bit lane of its widened sums divides
        // exactly.
        let x4 = _mm256_srai_epi32::<2>(_mm256_madd_epi16(x4, ones));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(x1, ones), x4));
    }
    hsum_i32(acc)
}

/// The sum of the eight 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}
