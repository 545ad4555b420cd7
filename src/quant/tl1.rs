//! TL1, bitnet.cpp's 2-weight lookup-table format (ggml type 38 in its fork), exactly as
//! its converter (`utils/convert-hf-to-gguf-bitnet.py`, `--outtype tl1`) writes it.
//!
//! Codes: weights are taken in pairs along a row, columns (c, c+1) -> the 4-bit code
//! `3 * w[c] + w[c+1] + 4` (0..=8). Each byte holds two pairs, four consecutive weights
//! c0..c0+3: the high nibble codes (c0, c0+1), the low nibble (c0+2, c0+3).
//!
//! Order: with the shape's tiling (BM, BK, bm; by = 256 / bm, see [`super::tl_params`]),
//! bytes come out of these loops, outermost first:
//!
//! ```text
//! for i0 in 0..M/BM, i1 in 0..K/BK, i2 in 0..BM/bm, i3 in 0..BK/by,
//!     i4 in 0..bm/16, i5 in 0..by/4, r in 0..16:
//!         row  = i0*BM + i2*bm + i4*16 + r
//!         col0 = i1*BK + i3*by + i5*4
//! ```
//!
//! M*K/4 bytes in all, then the tensor's 32-byte tail: f32 scale, 28 zero bytes (the
//! converter's `<name>_scale` tensor, written inline by bitnet.cpp's GGUF writer).

use super::ternary::{
    check_byte_size, check_scale, matrix_shape, push_scale_tail, read_f32, TernaryWeights,
    WeightScale,
};
use super::tl_params::{tl1_tiling, TlTiling};
use super::types::TensorType;
use crate::error::{Error, Result};

/// The code of the weight pair (a, b): `3a + b + 4`, 0..=8.
#[inline]
pub(crate) fn pair_code(a: i8, b: i8) -> u8 {
    (3 * a + b + 4) as u8
}

/// The pair a code stands for, or `None` for codes 9..=15.
#[inline]
pub(crate) fn pair_values(code: u8) -> Option<(i8, i8)> {
    (code <= 8).then(|| {
        let v = code as i8 - 4; // 3a + b, in -4..=4
        let a = (v + 1).div_euclid(3);
        (a, v - 3 * a)
    })
}

/// Checks that `t` tiles a `rows x cols` TL1 matrix the way the converter can.
pub fn check_tiling(rows: usize, cols: usize, t: TlTiling) -> Result<()> {
    let TlTiling {
        block_rows: bm_outer,
        block_cols: bk,
        tile_rows: bm,
    } = t;
    let ok = bm > 0
        && 256 % bm == 0
        && bm % 16 == 0
        && bm_outer % bm == 0
        && bm_outer > 0
        && rows % bm_outer == 0
        && bk > 0
        && cols % bk == 0
        && bk % (256 / bm) == 0
        && (256 / bm) % 4 == 0;
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "TL1 tiling BM={bm_outer} BK={bk} bm={bm} does not fit a {rows} x {cols} matrix \
             (needs rows % BM, cols % BK, BM % bm, BK % (256/bm), bm % 16 and (256/bm) % 4 \
             all zero)"
        )))
    }
}

/// Calls `f(byte_index, row, col0)` for every packed byte in file order (the loops in
/// the module docs). The tiling must have passed [`check_tiling`].
fn for_each_byte(rows: usize, cols: usize, t: TlTiling, mut f: impl FnMut(usize, usize, usize)) {
    let (bmo, bk, bm) = (t.block_rows, t.block_cols, t.tile_rows);
    let by = 256 / bm;
    let mut i = 0;
    for i0 in 0..rows / bmo {
        for i1 in 0..cols / bk {
            for i2 in 0..bmo / bm {
                for i3 in 0..bk / by {
                    for i4 in 0..bm / 16 {
                        for i5 in 0..by / 4 {
                            for r in 0..16 {
                                f(
                                    i,
                                    i0 * bmo + i2 * bm + i4 * 16 + r,
                                    i1 * bk + i3 * by + i5 * 4,
                                );
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Bytes before the scale tail: `rows * cols / 4`, padded to 32 (a no-op for every
/// tiling that fits).
fn packed_len(rows: usize, cols: usize) -> usize {
    (rows * cols / 4).div_ceil(32) * 32
}

/// Unpacks a TL1 tensor of ggml shape `dims` (`[cols, rows]`), deriving the tiling from
/// the shape ([`tl1_tiling`]).
pub fn unpack(dims: &[u64], data: &[u8]) -> Result<TernaryWeights> {
    let (rows, cols) = matrix_shape(TensorType::TL1, dims)?;
    check_byte_size(TensorType::TL1, dims, data)?;
    unpack_with(rows, cols, tl1_tiling(rows, cols)?, data)
}

/// Unpacks a `rows x cols` TL1 tensor packed with tiling `t`. The padding bytes are not
/// checked; codes 9..=15 are errors.
pub fn unpack_with(rows: usize, cols: usize, t: TlTiling, data: &[u8]) -> Result<TernaryWeights> {
    check_tiling(rows, cols, t)?;
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
    let body = packed_len(rows, cols);
    if data.len() != body + 32 {
        return Err(Error::format(format!(
            "a {rows} x {cols} TL1 tensor takes {} bytes, got {}",
            body + 32,
            data.len()
        )));
    }
    let scale = read_f32(data, body);
    check_scale(scale, "the TL1 tensor scale")?;
    let mut values = vec![0i8; n];
    let mut bad = None;
    for_each_byte(rows, cols, t, |i, row, col0| {
        let b = data[i];
        let out = &mut values[row * cols + col0..][..4];
        for (half, code) in [(0, b >> 4), (2, b & 15)] {
            match pair_values(code) {
                Some((a, c)) => {
                    out[half] = a;
                    out[half + 1] = c;
                }
                None => {
                    bad.get_or_insert((i, code));
                }
            }
        }
    });
    if let Some((i, code)) = bad {
        return Err(Error::format(format!(
            "TL1 byte {i} holds code {code}, which stands for no weight pair (codes are 0..=8)"
        )));
    }
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))
}

/// Packs ternary weights as TL1 with the tiling of their shape ([`tl1_tiling`]).
/// Per-block scales must all be equal: TL1 has one scale per tensor.
pub fn pack(w: &TernaryWeights) -> Result<Vec<u8>> {
    pack_with(w, tl1_tiling(w.rows, w.cols)?)
}

/// Packs ternary weights as TL1 with tiling `t`: the packed codes, then the 32-byte tail
/// (f32 scale, 28 zero bytes).
pub fn pack_with(w: &TernaryWeights, t: TlTiling) -> Result<Vec<u8>> {
    w.validate()?;
    check_tiling(w.rows, w.cols, t)?;
    let scale = w.uniform_scale()?;
    check_scale(scale, "the TL1 tensor scale")?;
    let cols = w.cols;
    let mut out = vec![0u8; packed_len(w.rows, cols)];
    for_each_byte(w.rows, cols, t, |i, row, col0| {
        let v = &w.values[row * cols + col0..][..4];
        out[i] = (pair_code(v[0], v[1]) << 4) | pair_code(v[2], v[3]);
    });
    push_scale_tail(&mut out, scale);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_codes() {
        for a in -1i8..=1 {
            for b in -1i8..=1 {
                let c = pair_code(a, b);
                assert!(c <= 8);
                assert_eq!(pair_values(c), Some((a, b)));
            }
        }
        assert_eq!(pair_code(-1, -1), 0);
        assert_eq!(pair_code(0, 0), 4);
        assert_eq!(pair_code(1, 1), 8);
        assert_eq!(pair_values(9), None);
    }

    #[test]
    fn small_tiling_round_trip_and_order() {
        // BM = 32, BK = 16, bm = 32 -> by = 8: a 64 x 32 matrix.
        let t = TlTiling {
            block_rows: 32,
            block_cols: 16,
            tile_rows: 32,
        };
        let (rows, cols) = (64, 32);
        let values: Vec<i8> = (0..rows * cols)
            .map(|i| ((i * 7 + i / 5) % 3) as i8 - 1)
            .collect();
        let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(0.5)).unwrap();
        let bytes = pack_with(&w, t).unwrap();
        assert_eq!(bytes.len(), rows * cols / 4 + 32);
        assert_eq!(&bytes[rows * cols / 4..][..4], &0.5f32.to_le_bytes());
        // Byte 0: row 0, columns 0..4. Byte 16: row 0, columns 4..8 (i5 = 1). Byte 32:
        // row 16 (i4 = 1). Byte 64: row 0, columns 8..12 (i3 = 1).
        let code = |r: usize, c: usize| {
            let v = &w.values[r * cols + c..][..4];
            (pair_code(v[0], v[1]) << 4) | pair_code(v[2], v[3])
        };
        assert_eq!(bytes[0], code(0, 0));
        assert_eq!(bytes[1], code(1, 0));
        assert_eq!(bytes[16], code(0, 4));
        assert_eq!(bytes[32], code(16, 0));
        assert_eq!(bytes[64], code(0, 8));
        assert_eq!(bytes[128], code(0, 16)); // i1 = 1
        assert_eq!(bytes[256], code(32, 0)); // i0 = 1
        let back = unpack_with(rows, cols, t, &bytes).unwrap();
        assert_eq!(back, w);
        let mut bad = bytes.clone();
        bad[5] = 0x9f;
        assert!(unpack_with(rows, cols, t, &bad).is_err());
        assert!(unpack_with(rows, cols, t, &bytes[1..]).is_err());
        assert!(check_tiling(rows, cols, TlTiling { tile_rows: 48, ..t }).is_err());
        assert!(check_tiling(rows + 1, cols, t).is_err());
    }

    #[test]
    fn shapes_without_presets_are_named() {
        let w = TernaryWeights::new(64, 32, vec![0; 64 * 32], WeightScale::PerTensor(1.0)).unwrap();
        let e = pack(&w).unwrap_err().to_string();
        assert!(e.contains("64 rows x 32 columns"), "{e}");
        assert!(unpack(&[32, 64], &[0u8; 64 * 32 / 4 + 32]).is_err());
    }
}
