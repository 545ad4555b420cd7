//! Lookup tables shared by the Sherry SIMD kernels (AVX2 `vpshufb`, NEON `tbl`).
//!
//! For every group of 4 activations `q[4g .. 4g + 4]` the 16 canonical patterns of
//! [`crate::quant::sherry::PATTERNS`] have the sums `T[i] = Σ_p PATTERNS[i][p] · q[4g + p]`.
//! With int8 activations in `-128..=127` a sum of three of them spans `-384..=384`: it does
//! not fit an int8 table (three activations of ±127 give ±381), so the tables hold int16 sums
//! split in two byte planes, low byte and high byte, which a byte shuffle can look up.
//!
//! The group's sign is applied without a multiply: a negated group XORs both looked-up bytes
//! with `0xff`, which gives `!T = -T - 1` as an int16, and the kernels add the number of
//! negated groups of each row once at the end (that count depends on the weights only).
//!
//! Layout (chosen for 32-byte AVX2 registers whose two 128-bit lanes hold two consecutive
//! groups; NEON reads the same bytes 16 at a time): groups come in pairs `(2k, 2k + 1)`, a pair
//! takes [`PAIR_BYTES`] bytes at `k * PAIR_BYTES`: the low bytes of group `2k`'s 16 sums, those
//! of group `2k + 1`, then the high bytes of `2k`, then of `2k + 1`.

use super::act::QuantizedActivations;
use super::scalar::sherry_epilogue;
use crate::quant::sherry::PATTERNS;
use crate::quant::ternary::TernaryMatrix;
use std::ops::Range;

/// Bytes of table per pair of groups (8 activations).
pub const PAIR_BYTES: usize = 64;
/// Bytes of table per activation (`PAIR_BYTES / 8`).
pub const BYTES_PER_ACTIVATION: usize = PAIR_BYTES / 8;

/// Offset of the low-byte plane inside a pair (add `16 * h` for the pair's group `h`).
pub const PLANE_LO: usize = 0;
/// Offset of the high-byte plane.
pub const PLANE_HI: usize = 32;

/// The 16 pattern sums of one group of 4 activations.
#[inline]
pub fn pattern_sums(q: &[i8]) -> [i16; 16] {
    let q = [q[0] as i16, q[1] as i16, q[2] as i16, q[3] as i16];
    let mut t = [0i16; 16];
    for (ti, pat) in t.iter_mut().zip(PATTERNS.iter()) {
        *ti = pat[0] as i16 * q[0]
            + pat[1] as i16 * q[1]
            + pat[2] as i16 * q[2]
            + pat[3] as i16 * q[3];
    }
    t
}

/// Fills `out` (resized to `q.len() * BYTES_PER_ACTIVATION`) with the tables of one
/// activation row; `q.len()` must be a multiple of 8 (Sherry rows are multiples of 32).
pub fn build_sherry_tables(q: &[i8], out: &mut Vec<u8>) {
    out.clear();
    out.resize(q.len() * BYTES_PER_ACTIVATION, 0);
    build_sherry_tables_into(q, out);
}

/// [`build_sherry_tables`] into a slice of exactly `q.len() * BYTES_PER_ACTIVATION` bytes.
pub fn build_sherry_tables_into(q: &[i8], out: &mut [u8]) {
    assert!(
        q.len() % 8 == 0,
        "Sherry tables need a multiple of 8 activations"
    );
    assert_eq!(out.len(), q.len() * BYTES_PER_ACTIVATION);
    for (pair, dst) in q.chunks_exact(8).zip(out.chunks_exact_mut(PAIR_BYTES)) {
        for h in 0..2 {
            let t = pattern_sums(&pair[4 * h..4 * h + 4]);
            for (i, &v) in t.iter().enumerate() {
                dst[PLANE_LO + 16 * h + i] = v as u8;
                dst[PLANE_HI + 16 * h + i] = (v >> 8) as u8;
            }
        }
    }
}

/// The bytes of an `i16` buffer (the activation rows' table buffers are `i16`; the Sherry
/// and STQ1_0 kernels store bytes in them).
pub fn i16_bytes(v: &[i16]) -> &[u8] {
    // SAFETY: u8 has alignment 1 and every bit pattern is a valid u8; the slice covers
    // exactly the `2 * v.len()` bytes of `v`, borrowed for as long as `v`.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// The bytes of an `i16` buffer, writable.
pub fn i16_bytes_mut(v: &mut [i16]) -> &mut [u8] {
    // SAFETY: as in `i16_bytes`; the mutable borrow of `v` is handed on, so nothing else
    // aliases the bytes while they are written (any bytes are valid i16 halves).
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// The dispatch table's prepare hook for Sherry: builds the row's tables into its table
/// buffer (`cols * BYTES_PER_ACTIVATION` bytes; no allocation once the buffer has grown to
/// that size).
pub fn prepare_sherry(cols: usize, act: &mut QuantizedActivations) {
    let (q, lut) = act.qs_and_lut_mut();
    assert_eq!(
        q.len(),
        cols,
        "Sherry tables for {cols} columns from {} quants",
        q.len()
    );
    lut.clear();
    lut.resize(cols * BYTES_PER_ACTIVATION / 2, 0);
    build_sherry_tables_into(q, i16_bytes_mut(lut));
}

/// The Sherry GEMM over activation rows prepared by [`prepare_sherry`], with a tile kernel:
/// the body of each instruction set's dispatch-table entry.
pub fn sherry_gemm_prepared(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
    tile_sums: SherryTileSums,
) {
    sherry_gemm_with(
        m.data,
        m.cols,
        m.scale().unwrap_or(0.0),
        acts.len(),
        &|t| (i16_bytes(acts[t].lut()), acts[t].act_scale()),
        rows,
        out,
        tile_sums,
    );
}

/// Tokens one call of a [`SherryTileSums`] handles at most.
pub const MAX_TOKENS_PER_PASS: usize = 4;

/// Integer sums of one 32-row tile: `tile` is the tile's `5 * cols` bytes of chunks,
/// `tables[t]` the tables of token `t` (1..=[`MAX_TOKENS_PER_PASS`] tokens), and
/// `sums[t][r]` receives `Σ_c W[r, c] · q_t[c]` for the tile's row `r`.
pub type SherryTileSums = fn(tile: &[u8], cols: usize, tables: &[&[u8]], sums: &mut [[i32; 32]]);

/// One token row as the Sherry kernels see it: its tables and its activation scale.
pub type SherryToken<'a> = (&'a [u8], f32);

/// The batched Sherry matmul around a tile kernel, for `n_tokens` token rows that `token`
/// hands out: `out` is token-major, `n_tokens × rows.len()`,
/// `out[t * rows.len() + (r - rows.start)]` for row `r` of `rows` and token `t`; each value is
/// [`super::scalar::sherry_epilogue`] of the exact sum, so it equals the scalar kernel bit
/// for bit. Tokens are taken [`MAX_TOKENS_PER_PASS`] at a time over all tiles of the range
/// (a token block's tables stay in cache while the weights stream). Allocates nothing.
#[allow(clippy::too_many_arguments)]
pub fn sherry_gemm_with<'a>(
    data: &[u8],
    cols: usize,
    w_scale: f32,
    n_tokens: usize,
    token: &dyn Fn(usize) -> SherryToken<'a>,
    rows: Range<usize>,
    out: &mut [f32],
    tile_sums: SherryTileSums,
) {
    use crate::quant::sherry::TILE_ROWS;
    let n = rows.len();
    assert_eq!(out.len(), n_tokens * n);
    assert!(cols % 32 == 0);
    let tile_bytes = cols * TILE_ROWS * 5 / 32;
    if n == 0 {
        return;
    }
    let first_tile = rows.start / TILE_ROWS;
    let end_tile = rows.end.div_ceil(TILE_ROWS);
    assert!(end_tile * tile_bytes <= data.len());
    let mut sums = [[0i32; 32]; MAX_TOKENS_PER_PASS];
    let mut t0 = 0;
    while t0 < n_tokens {
        let nt = (n_tokens - t0).min(MAX_TOKENS_PER_PASS);
        let mut tabs: [&[u8]; MAX_TOKENS_PER_PASS] = [&[]; MAX_TOKENS_PER_PASS];
        let mut scales = [0f32; MAX_TOKENS_PER_PASS];
        for dt in 0..nt {
            let (tab, scale) = token(t0 + dt);
            assert_eq!(
                tab.len(),
                cols * BYTES_PER_ACTIVATION,
                "Sherry tables of another size"
            );
            tabs[dt] = tab;
            scales[dt] = scale;
        }
        for tile in first_tile..end_tile {
            let bytes = &data[tile * tile_bytes..][..tile_bytes];
            tile_sums(bytes, cols, &tabs[..nt], &mut sums[..nt]);
            let r0 = tile * TILE_ROWS;
            let lo = rows.start.max(r0);
            let hi = rows.end.min(r0 + TILE_ROWS);
            for dt in 0..nt {
                let o = &mut out[(t0 + dt) * n..][..n];
                for r in lo..hi {
                    o[r - rows.start] = sherry_epilogue(sums[dt][r - r0], scales[dt], w_scale);
                }
            }
        }
        t0 += nt;
    }
}

/// [`sherry_gemm_with`] over explicit tables and scales (tests, benchmarks).
#[allow(clippy::too_many_arguments)]
pub fn sherry_gemm_tables(
    data: &[u8],
    cols: usize,
    w_scale: f32,
    tables: &[&[u8]],
    act_scales: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
    tile_sums: SherryTileSums,
) {
    assert_eq!(tables.len(), act_scales.len());
    sherry_gemm_with(
        data,
        cols,
        w_scale,
        tables.len(),
        &|t| (tables[t], act_scales[t]),
        rows,
        out,
        tile_sums,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_rebuild_the_sums() {
        let q: Vec<i8> = vec![127, -127, 127, -128, 5, 0, -3, 100];
        let mut tab = Vec::new();
        build_sherry_tables(&q, &mut tab);
        assert_eq!(tab.len(), PAIR_BYTES);
        for h in 0..2 {
            let t = pattern_sums(&q[4 * h..4 * h + 4]);
            for i in 0..16 {
                let lo = tab[PLANE_LO + 16 * h + i];
                let hi = tab[PLANE_HI + 16 * h + i];
                assert_eq!(i16::from_le_bytes([lo, hi]), t[i]);
                // The sign trick: both bytes XOR 0xff, plus one.
                assert_eq!(i16::from_le_bytes([!lo, !hi]) + 1, -t[i]);
            }
        }
        // The extreme sums that int8 cannot hold.
        let t = pattern_sums(&[127, 127, 127, 127]);
        assert_eq!(t[0], 381);
        let t = pattern_sums(&[-128, -128, -128, -128]);
        assert_eq!(t[0], -384);
    }
}
