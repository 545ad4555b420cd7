//! Sherry on NEON: `tbl` lookups, one group (16 index bytes = 32 rows) per register.
//!
//! The low nibbles of a group's 16 index bytes index rows 0..16 of the tile, the high
//! nibbles rows 16..32. The sign word becomes byte masks that XOR the looked-up bytes of
//! [`super::super::lut`]'s planes (`!T = -T - 1`, no multiply; a byte counter per row adds
//! the ones back); zipping the low and high byte planes gives the int16 sums, added in int16
//! for 64 groups (at most `64 × 385 + 64`) and then widened into int32.

use std::arch::aarch64::*;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::lut::{
    self, BYTES_PER_ACTIVATION, MAX_TOKENS_PER_PASS, PAIR_BYTES, PLANE_HI, PLANE_LO,
};
use crate::quant::sherry::{CHUNK_BYTES, CHUNK_COLS, SIGNS_OFFSET};
use crate::quant::ternary::TernaryMatrix;
use std::ops::Range;

/// Whether this CPU can run the kernels of this module.
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Groups added in int16 before widening.
const GROUPS_PER_FLUSH: usize = 64;

/// The batched Sherry matmul on NEON (see [`lut::sherry_gemm_with`] for `out`'s layout).
pub fn sherry_gemm(
    data: &[u8],
    cols: usize,
    w_scale: f32,
    tables: &[&[u8]],
    act_scales: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert!(available(), "the NEON Sherry kernel needs NEON");
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
    assert!(available(), "the NEON Sherry kernel needs NEON");
    lut::sherry_gemm_prepared(m, acts, rows, out, tile_sums);
}

fn tile_sums(tile: &[u8], cols: usize, tables: &[&[u8]], sums: &mut [[i32; 32]]) {
    assert!(cols % CHUNK_COLS == 0 && tile.len() >= cols / CHUNK_COLS * CHUNK_BYTES);
    assert!(tables.len() <= MAX_TOKENS_PER_PASS && sums.len() == tables.len());
    assert!(tables
        .iter()
        .all(|t| t.len() >= cols * BYTES_PER_ACTIVATION));
    // SAFETY: NEON is part of every aarch64 target Rust supports; the tile holds
    // `cols / 32` chunks and every table `cols / 8` pairs (checked above), which is all
    // the kernel reads.
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

/// Adds the per-row negation counts (one byte per row: rows 0..16 in `cnt_lo`, 16..32 in
/// `cnt_hi`) to every token's int16 accumulators.
#[inline(always)]
unsafe fn add_counts<const NT: usize>(
    acc16: &mut [[int16x8_t; 4]; NT],
    cnt_lo: uint8x16_t,
    cnt_hi: uint8x16_t,
) {
    let c = [
        vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(cnt_lo))),
        vreinterpretq_s16_u16(vmovl_high_u8(cnt_lo)),
        vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(cnt_hi))),
        vreinterpretq_s16_u16(vmovl_high_u8(cnt_hi)),
    ];
    for a in acc16.iter_mut() {
        for u in 0..4 {
            a[u] = vaddq_s16(a[u], c[u]);
        }
    }
}

#[inline(always)]
unsafe fn flush(acc16: &mut [int16x8_t; 4], acc32: &mut [int32x4_t; 8]) {
    for u in 0..4 {
        acc32[2 * u] = vaddw_s16(acc32[2 * u], vget_low_s16(acc16[u]));
        acc32[2 * u + 1] = vaddw_high_s16(acc32[2 * u + 1], acc16[u]);
        acc16[u] = vdupq_n_s16(0);
    }
}

#[target_feature(enable = "neon")]
unsafe fn tile_sums_n<const NT: usize>(
    tile: &[u8],
    cols: usize,
    tables: &[&[u8]],
    sums: &mut [[i32; 32]],
) {
    let nib = vdupq_n_u8(0x0f);
    const PICK_LO: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const PICK_HI: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
    const BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let pick_lo = vld1q_u8(PICK_LO.as_ptr());
    let pick_hi = vld1q_u8(PICK_HI.as_ptr());
    let bits = vld1q_u8(BITS.as_ptr());
    let mut acc16 = [[vdupq_n_s16(0); 4]; NT];
    let mut acc32 = [[vdupq_n_s32(0); 8]; NT];
    // Negated groups per row since the last flush (rows 0..16, rows 16..32).
    let mut cnt_lo = vdupq_n_u8(0);
    let mut cnt_hi = vdupq_n_u8(0);
    let mut tabs = [std::ptr::null::<u8>(); NT];
    for (p, t) in tabs.iter_mut().zip(tables) {
        *p = t.as_ptr();
    }
    let mut w = tile.as_ptr();
    let mut pending = 0;
    for _chunk in 0..cols / CHUNK_COLS {
        for j in 0..8 {
            let idx = vld1q_u8(w.add(16 * j));
            let i_lo = vandq_u8(idx, nib);
            let i_hi = vshrq_n_u8::<4>(idx);
            let word = std::ptr::read_unaligned(w.add(SIGNS_OFFSET + 4 * j) as *const u32);
            let s = vreinterpretq_u8_u32(vdupq_n_u32(word));
            let m_lo = vtstq_u8(vqtbl1q_u8(s, pick_lo), bits);
            let m_hi = vtstq_u8(vqtbl1q_u8(s, pick_hi), bits);
            cnt_lo = vsubq_u8(cnt_lo, m_lo);
            cnt_hi = vsubq_u8(cnt_hi, m_hi);
            let h = 16 * (j % 2);
            for t in 0..NT {
                let tab = tabs[t].add(PAIR_BYTES * (j / 2) + h);
                let tlo = vld1q_u8(tab.add(PLANE_LO));
                let thi = vld1q_u8(tab.add(PLANE_HI));
                let a = &mut acc16[t];
                let lo = veorq_u8(vqtbl1q_u8(tlo, i_lo), m_lo);
                let hi = veorq_u8(vqtbl1q_u8(thi, i_lo), m_lo);
                a[0] = vaddq_s16(a[0], vreinterpretq_s16_u8(vzip1q_u8(lo, hi)));
                a[1] = vaddq_s16(a[1], vreinterpretq_s16_u8(vzip2q_u8(lo, hi)));
                let lo = veorq_u8(vqtbl1q_u8(tlo, i_hi), m_hi);
                let hi = veorq_u8(vqtbl1q_u8(thi, i_hi), m_hi);
                a[2] = vaddq_s16(a[2], vreinterpretq_s16_u8(vzip1q_u8(lo, hi)));
                a[3] = vaddq_s16(a[3], vreinterpretq_s16_u8(vzip2q_u8(lo, hi)));
            }
            pending += 1;
            if pending == GROUPS_PER_FLUSH {
                add_counts(&mut acc16, cnt_lo, cnt_hi);
                cnt_lo = vdupq_n_u8(0);
                cnt_hi = vdupq_n_u8(0);
                for t in 0..NT {
                    flush(&mut acc16[t], &mut acc32[t]);
                }
                pending = 0;
            }
        }
        for tab in tabs.iter_mut() {
            *tab = tab.add(4 * PAIR_BYTES);
        }
        w = w.add(CHUNK_BYTES);
    }
    add_counts(&mut acc16, cnt_lo, cnt_hi);
    for t in 0..NT {
        flush(&mut acc16[t], &mut acc32[t]);
        // acc32[v] holds rows 4v .. 4v + 4.
        for v in 0..8 {
            vst1q_s32(sums[t][4 * v..].as_mut_ptr(), acc32[t][v]);
        }
    }
}
