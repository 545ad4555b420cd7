//! Sherry on AVX2: `vpshufb` table lookups, two groups per 32-byte register.
//!
//! A pair of groups `(j, j + 1)` of a chunk is 32 index bytes (group `j`'s 16 then group
//! `j + 1`'s), so one load puts group `j` in the low 128-bit lane and group `j + 1` in the
//! high one, exactly where the tables of [`super::super::lut`] put their planes: the low
//! nibbles index rows 0..16 of the tile, the high nibbles rows 16..32. The pair's two sign
//! words become byte masks (`0xff` = negated) that XOR the looked-up low and high bytes
//! (`!T = -T - 1`); a byte counter per row adds the missing ones. Unpacking the two byte
//! planes gives the int16 sums, which are added in int16 for 32 pairs (at most `32 × 384`
//! per lane, and the two lanes together stay below `2^15`) and then widened into int32.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::lut::{
    self, BYTES_PER_ACTIVATION, MAX_TOKENS_PER_PASS, PAIR_BYTES, PLANE_HI, PLANE_LO,
};
use crate::quant::sherry::{CHUNK_BYTES, CHUNK_COLS, SIGNS_OFFSET};
use crate::quant::ternary::TernaryMatrix;
use std::ops::Range;

/// Whether this CPU can run the kernels of this module.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Pairs added in int16 before widening.
const PAIRS_PER_FLUSH: usize = 32;

/// The batched Sherry matmul on AVX2 (see [`lut::sherry_gemm_with`] for `out`'s layout).
/// Panics when the CPU has no AVX2 (the dispatcher never calls it then).
pub fn sherry_gemm(
    data: &[u8],
    cols: usize,
    w_scale: f32,
    tables: &[&[u8]],
    act_scales: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert!(available(), "the AVX2 Sherry kernel needs AVX2");
    lut::sherry_gemm_tables(
        data, cols, w_scale, tables, act_scales, rows, out, tile_sums,
    );
}

/// The dispatch-table entry ([`crate::kernels::table::TernaryGemmFn`]) over rows prepared by
/// [`lut::prepare_sherry`].
pub fn gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert!(available(), "the AVX2 Sherry kernel needs AVX2");
    lut::sherry_gemm_prepared(m, acts, rows, out, tile_sums);
}

fn tile_sums(tile: &[u8], cols: usize, tables: &[&[u8]], sums: &mut [[i32; 32]]) {
    assert!(cols % CHUNK_COLS == 0 && tile.len() >= cols / CHUNK_COLS * CHUNK_BYTES);
    assert!(tables.len() <= MAX_TOKENS_PER_PASS && sums.len() == tables.len());
    assert!(tables
        .iter()
        .all(|t| t.len() >= cols * BYTES_PER_ACTIVATION));
    assert!(available());
    // SAFETY: AVX2 is present (checked above); the tile holds `cols / 32` chunks and every
    // table `cols / 8` pairs (checked above), which is all the kernels read.
    unsafe {
        match tables.len() {
            1 => tile_sums_n::<1>(tile, cols, tables, sums),
            2 => tile_sums_n::<2>(tile, cols, tables, sums),
            3 => tile_sums_n::<3>(tile, cols, tables, sums),
            4 => tile_sums_n::<4>(tile, cols, tables, sums),
            _ => {}
        }
    }
}

/// Adds the negation counts of the two row halves (`cnt_lo`: rows 0..16, `cnt_hi`: rows
/// 16..32, one byte per row and lane) to the int16 accumulators of every token.
#[inline(always)]
unsafe fn add_counts<const NT: usize>(
    acc16: &mut [[__m256i; 4]; NT],
    cnt_lo: __m256i,
    cnt_hi: __m256i,
) {
    let zero = _mm256_setzero_si256();
    let c = [
        _mm256_unpacklo_epi8(cnt_lo, zero),
        _mm256_unpackhi_epi8(cnt_lo, zero),
        _mm256_unpacklo_epi8(cnt_hi, zero),
        _mm256_unpackhi_epi8(cnt_hi, zero),
    ];
    for a in acc16.iter_mut() {
        for u in 0..4 {
            a[u] = _mm256_add_epi16(a[u], c[u]);
        }
    }
}

/// Adds the two 128-bit lanes of each int16 accumulator (two groups' rows) and widens the
/// 8 row sums into the int32 accumulator.
#[inline(always)]
unsafe fn flush(acc16: &mut [__m256i; 4], acc32: &mut [__m256i; 4]) {
    for u in 0..4 {
        let a = acc16[u];
        let x = _mm_add_epi16(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
        acc32[u] = _mm256_add_epi32(acc32[u], _mm256_cvtepi16_epi32(x));
        acc16[u] = _mm256_setzero_si256();
    }
}

#[target_feature(enable = "avx2")]
unsafe fn tile_sums_n<const NT: usize>(
    tile: &[u8],
    cols: usize,
    tables: &[&[u8]],
    sums: &mut [[i32; 32]],
) {
    let nib = _mm256_set1_epi8(0x0f);
    // Sign bytes: lane 0 reads group j's word (bytes 0..4 of the broadcast), lane 1 group
    // j + 1's (bytes 4..8); rows 0..16 need word bytes 0 and 1, rows 16..32 bytes 2 and 3.
    let pick_lo = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5,
        5, 5,
    );
    let pick_hi = _mm256_setr_epi8(
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7,
        7, 7,
    );
    let bits = _mm256_setr_epi8(
        1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,
        1, 2, 4, 8, 16, 32, 64, -128,
    );
    let zero = _mm256_setzero_si256();
    let mut acc16 = [[zero; 4]; NT];
    let mut acc32 = [[zero; 4]; NT];
    // Negated groups per row (byte = row of the lane's group), since the last flush.
    let mut cnt_lo = zero;
    let mut cnt_hi = zero;
    let mut tabs = [std::ptr::null::<u8>(); NT];
    for (p, t) in tabs.iter_mut().zip(tables) {
        *p = t.as_ptr();
    }
    let mut w = tile.as_ptr();
    let mut pending = 0;
    for _chunk in 0..cols / CHUNK_COLS {
        for k in 0..4 {
            let idx = _mm256_loadu_si256(w.add(32 * k) as *const __m256i);
            let i_lo = _mm256_and_si256(idx, nib);
            let i_hi = _mm256_and_si256(_mm256_srli_epi16::<4>(idx), nib);
            let s = _mm256_set1_epi64x(std::ptr::read_unaligned(
                w.add(SIGNS_OFFSET + 8 * k) as *const i64
            ));
            let m_lo = _mm256_cmpeq_epi8(
                _mm256_and_si256(_mm256_shuffle_epi8(s, pick_lo), bits),
                bits,
            );
            let m_hi = _mm256_cmpeq_epi8(
                _mm256_and_si256(_mm256_shuffle_epi8(s, pick_hi), bits),
                bits,
            );
            cnt_lo = _mm256_sub_epi8(cnt_lo, m_lo);
            cnt_hi = _mm256_sub_epi8(cnt_hi, m_hi);
            for t in 0..NT {
                let tab = tabs[t];
                let tlo = _mm256_loadu_si256(tab.add(PLANE_LO) as *const __m256i);
                let thi = _mm256_loadu_si256(tab.add(PLANE_HI) as *const __m256i);
                let lo = _mm256_xor_si256(_mm256_shuffle_epi8(tlo, i_lo), m_lo);
                let hi = _mm256_xor_si256(_mm256_shuffle_epi8(thi, i_lo), m_lo);
                let a = &mut acc16[t];
                a[0] = _mm256_add_epi16(a[0], _mm256_unpacklo_epi8(lo, hi));
                a[1] = _mm256_add_epi16(a[1], _mm256_unpackhi_epi8(lo, hi));
                let lo = _mm256_xor_si256(_mm256_shuffle_epi8(tlo, i_hi), m_hi);
                let hi = _mm256_xor_si256(_mm256_shuffle_epi8(thi, i_hi), m_hi);
                a[2] = _mm256_add_epi16(a[2], _mm256_unpacklo_epi8(lo, hi));
                a[3] = _mm256_add_epi16(a[3], _mm256_unpackhi_epi8(lo, hi));
                tabs[t] = tab.add(PAIR_BYTES);
            }
            pending += 1;
            if pending == PAIRS_PER_FLUSH {
                add_counts(&mut acc16, cnt_lo, cnt_hi);
                cnt_lo = zero;
                cnt_hi = zero;
                for t in 0..NT {
                    flush(&mut acc16[t], &mut acc32[t]);
                }
                pending = 0;
            }
        }
        w = w.add(CHUNK_BYTES);
    }
    add_counts(&mut acc16, cnt_lo, cnt_hi);
    for t in 0..NT {
        flush(&mut acc16[t], &mut acc32[t]);
        // acc32[u] holds rows 8u .. 8u + 8 (u = 0, 1 from the low nibbles, 2, 3 from the
        // high ones).
        for u in 0..4 {
            _mm256_storeu_si256(sums[t][8 * u..].as_mut_ptr() as *mut __m256i, acc32[t][u]);
        }
    }
}
