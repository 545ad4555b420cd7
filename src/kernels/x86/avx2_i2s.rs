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
//! One token (decode) runs tiles of 4 rows sharing the activation loads; several tokens
//! (prefill) run tiles of 1 row × 4 tokens, unpacking each weight block once for the 4.

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::scalar::i2s_epilogue;
use crate::quant::i2s;
use crate::quant::ternary::TernaryMatrix;

/// Blocks whose sums a 16-bit accumulator takes before widening (see the module doc).
const BLOCKS_PER_WIDEN: usize = 8;

/// How far ahead of each weight row the one-token kernel prefetches (see `dot_tile`):
/// 2-16 KiB measured alike; 4 KiB is a tile of 4 rows of 2560 columns and more.
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
        let q = [acts[0].qs().as_ptr()];
        let mut r = rows.start;
        while r + 4 <= rows.end {
            // SAFETY: rows r..r+4 exist, each `row_bytes` long; q holds `cols` quants.
            let s = unsafe {
                dot_tile::<4, 1>(
                    &[wrow(r), wrow(r + 1), wrow(r + 2), wrow(r + 3)],
                    &q,
                    nblocks,
                )
            };
            for (i, s) in s.iter().enumerate() {
                store(0, r + i, s[0]);
            }
            r += 4;
        }
        while r < rows.end {
            // SAFETY: as above, one row.
            let s = unsafe { dot_tile::<1, 1>(&[wrow(r)], &q, nblocks) };
            store(0, r, s[0][0]);
            r += 1;
        }
        return;
    }
    for r in rows.clone() {
        let w = [wrow(r)];
        let mut t = 0;
        while t + 4 <= acts.len() {
            let q = [
                acts[t].qs().as_ptr(),
                acts[t + 1].qs().as_ptr(),
                acts[t + 2].qs().as_ptr(),
                acts[t + 3].qs().as_ptr(),
            ];
            // SAFETY: one row of `row_bytes`, four activation rows of `cols` quants.
            let s = unsafe { dot_tile::<1, 4>(&w, &q, nblocks) };
            for (i, &v) in s[0].iter().enumerate() {
                store(t + i, r, v);
            }
            t += 4;
        }
        while t < acts.len() {
            // SAFETY: as above, one activation row.
            let s = unsafe { dot_tile::<1, 1>(&w, &[acts[t].qs().as_ptr()], nblocks) };
            store(t, r, s[0][0]);
            t += 1;
        }
    }
}

/// `Σ code·q` for `R` weight rows × `T` activation rows, each `nblocks` I2_S blocks long.
///
/// # Safety
/// AVX2 must be available; each `w[i]` must be readable for `32 * nblocks` bytes and each
/// `q[i]` for `128 * nblocks` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_tile<const R: usize, const T: usize>(
    w: &[*const u8; R],
    q: &[*const i8; T],
    nblocks: usize,
) -> [[i32; T]; R] {
    let mask = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let mut acc32 = [[_mm256_setzero_si256(); T]; R];
    let mut b = 0;
    while b < nblocks {
        let end = (b + BLOCKS_PER_WIDEN).min(nblocks);
        let mut acc16 = [[_mm256_setzero_si256(); T]; R];
        while b < end {
            if T == 1 && b % 2 == 0 {
                // One token: the kernel is bound by the weight stream. The R rows of a tile
                // are R short streams (2560 columns are 10 cache lines per row) that restart
                // every tile, too short for the hardware prefetcher to pick up; asking for
                // the line PREFETCH_BYTES ahead of each (one per 64-byte line) keeps the
                // loads fed: +50-70% GEMV throughput from memory on Zen 3 (docs/PERF.md).
                for wr in w {
                    // A prefetch never faults; `wrapping_add` keeps the address arithmetic
                    // defined past the end of the weights.
                    _mm_prefetch::<_MM_HINT_T0>(wr.wrapping_add(b * 32 + PREFETCH_BYTES).cast());
                }
            }
            for r in 0..R {
                // SAFETY: block b of row r is inside its 32 * nblocks bytes.
                let wv = unsafe { _mm256_loadu_si256(w[r].add(b * 32) as *const __m256i) };
                let c0 = _mm256_and_si256(_mm256_srli_epi16::<6>(wv), mask);
                let c1 = _mm256_and_si256(_mm256_srli_epi16::<4>(wv), mask);
                let c2 = _mm256_and_si256(_mm256_srli_epi16::<2>(wv), mask);
                let c3 = _mm256_and_si256(wv, mask);
                for t in 0..T {
                    // SAFETY: quants b*128 .. b*128+128 are inside the row.
                    let (a0, a1, a2, a3) = unsafe {
                        let p = q[t].add(b * 128) as *const __m256i;
                        (
                            _mm256_loadu_si256(p),
                            _mm256_loadu_si256(p.add(1)),
                            _mm256_loadu_si256(p.add(2)),
                            _mm256_loadu_si256(p.add(3)),
                        )
                    };
                    let s01 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(c0, a0),
                        _mm256_maddubs_epi16(c1, a1),
                    );
                    let s23 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(c2, a2),
                        _mm256_maddubs_epi16(c3, a3),
                    );
                    acc16[r][t] = _mm256_add_epi16(acc16[r][t], _mm256_add_epi16(s01, s23));
                }
            }
            b += 1;
        }
        for r in 0..R {
            for t in 0..T {
                acc32[r][t] = _mm256_add_epi32(acc32[r][t], _mm256_madd_epi16(acc16[r][t], ones));
            }
        }
    }
    let mut sums = [[0i32; T]; R];
    for r in 0..R {
        for t in 0..T {
            sums[r][t] = hsum_i32(acc32[r][t]);
        }
    }
    sums
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
