//! TL2, bitnet.cpp's 3-weight lookup-table format (ggml type 39 in its fork), exactly as
//! its converter (`utils/convert-hf-to-gguf-bitnet.py`, `--outtype tl2`) writes it.
//!
//! A `M x K` matrix (M rows = ggml ne1, K columns = ne0) with tiling (BM, BK, bm = 32;
//! see [`super::tl_params`]) is split by columns: the first `three_k = floor(K/BK)*BK`
//! columns (the "three" part) and the remaining `two_k = K - three_k` (the "two" part,
//! a multiple of 32). The tensor data is, in order:
//!
//! 1. three-part codes, `M*three_k/6` bytes. Triples of columns (c, c+1, c+2) give
//!    `v = 9*w[c] + 3*w[c+1] + w[c+2]`; the 4-bit code is `|v|` (0..=13). A byte holds two
//!    triples, columns c0..c0+5: high nibble (c0..c0+2), low nibble (c0+3..c0+5). Bytes
//!    come in groups of 32, one per (i0, i1, i2, i3) in
//!    `i0 < M/BM, i1 < three_k/BK, i2 < BM/32, i3 < BK/6` (outermost first); byte
//!    `j = 8q + s` of a group (q < 4, s < 8) is row `i0*BM + i2*32 + 8*P[q] + s` with
//!    `P = [0, 2, 1, 3]`, columns from `c0 = i1*BK + i3*6`.
//! 2. three-part signs, `M*three_k/24` bytes: one bit per triple, 1 when `v < 0`. Groups
//!    of 16 little-endian u16 words, one group per (i0, i1, i2, i3) in
//!    `i0 < M/BM, i1 < three_k/BK, i2 < BM/32, i3 < BK/24`; bit `15 - i` of word `c`
//!    (i, c < 16) is the triple of row `i0*BM + i2*32 + 16*(i % 2) + c` starting at column
//!    `i1*BK + i3*24 + 3*(i / 2)`.
//! 3. two-part codes, `M*two_k/4` bytes: TL1's pair code `3*w[c] + w[c+1] + 4` (0..=8),
//!    two pairs per byte (high nibble first), in groups of 32 per (i0, i1, i2, i3) in
//!    `i0 < M/BM, i1 < two_k/32, i2 < BM/32, i3 < 8`; byte `8q + s` is row
//!    `i0*BM + i2*32 + 8*P[q] + s`, columns from `c0 = three_k + i1*32 + i3*4`.
//! 4. zeros up to `raw = (K-256)*M/3*5/8 + 256*M/2*4/8` bytes (ggml's size formula, in
//!    integer arithmetic), zeros up to a multiple of 32, then the 32-byte tail: f32 scale,
//!    28 zero bytes.

use super::ternary::{
    check_byte_size, check_scale, matrix_shape, push_scale_tail, read_f32, TernaryWeights,
    WeightScale,
};
use super::tl1::{pair_code, pair_values};
use super::tl_params::{tl2_tiling, TlTiling};
use super::types::TensorType;
use crate::error::{Error, Result};

/// Rows per tile: the only value bitnet.cpp's TL2 code generator accepts.
pub const TILE_ROWS: usize = 32;
/// Columns of the two-weight part per block (the converter's fixed BY = 32).
pub const TWO_BLOCK_COLS: usize = 32;

/// Row order inside a group of 32 bytes: byte `8q + s` holds row `8 * ROW_SWAP[q] + s`.
const ROW_SWAP: [usize; 4] = [0, 2, 1, 3];

/// The split of a TL2 matrix's columns and the byte size of each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tl2Layout {
    /// Rows (M).
    pub rows: usize,
    /// Columns (K).
    pub cols: usize,
    /// The tiling.
    pub tiling: TlTiling,
    /// Columns packed three at a time: `floor(K / BK) * BK`.
    pub three_cols: usize,
    /// Columns packed two at a time: `K - three_cols`.
    pub two_cols: usize,
    /// ggml's `raw` size: the packed parts plus zero fill.
    pub raw_bytes: usize,
}

impl Tl2Layout {
    /// Computes and checks the layout of a `rows x cols` matrix with tiling `t`.
    pub fn new(rows: usize, cols: usize, t: TlTiling) -> Result<Self> {
        let (bmo, bk, bm) = (t.block_rows, t.block_cols, t.tile_rows);
        let bad = |why: &str| {
            Error::invalid(format!(
                "TL2 tiling BM={bmo} BK={bk} bm={bm} does not fit a {rows} x {cols} matrix: {why}"
            ))
        };
        if bm != TILE_ROWS {
            return Err(bad("bm must be 32"));
        }
        if bmo == 0 || bmo % TILE_ROWS != 0 || rows % bmo != 0 {
            return Err(bad("BM must be a multiple of 32 that divides the rows"));
        }
        if bk == 0 || bk % 24 != 0 {
            return Err(bad("BK must be a multiple of 24"));
        }
        if cols < 256 {
            return Err(bad("TL2 needs at least 256 columns"));
        }
        let three_cols = cols / bk * bk;
        let two_cols = cols - three_cols;
        if three_cols == 0 {
            return Err(bad("no column block for the three-weight part"));
        }
        if two_cols % TWO_BLOCK_COLS != 0 {
            return Err(bad("K mod BK must be a multiple of 32"));
        }
        // ggml's formula, truncating after each step as its integer arithmetic does.
        let of = || Error::invalid(format!("a {rows} x {cols} TL2 matrix overflows"));
        let three = (cols - 256).checked_mul(rows).ok_or_else(of)? / 3;
        let three = three.checked_mul(5).ok_or_else(of)? / 8;
        let two = rows.checked_mul(256 / 2 * 4 / 8).ok_or_else(of)?;
        let raw_bytes = three.checked_add(two).ok_or_else(of)?;
        let used = rows * three_cols / 6 + rows * three_cols / 24 + rows * two_cols / 4;
        if used > raw_bytes {
            return Err(bad("the packed parts exceed ggml's TL2 size"));
        }
        Ok(Tl2Layout {
            rows,
            cols,
            tiling: t,
            three_cols,
            two_cols,
            raw_bytes,
        })
    }

    /// Bytes of the three-part codes.
    pub fn three_code_bytes(&self) -> usize {
        self.rows * self.three_cols / 6
    }

    /// Bytes of the three-part sign words.
    pub fn sign_bytes(&self) -> usize {
        self.rows * self.three_cols / 24
    }

    /// Bytes of the two-part codes.
    pub fn two_code_bytes(&self) -> usize {
        self.rows * self.two_cols / 4
    }

    /// Offset of the f32 scale: `raw_bytes` rounded up to 32.
    pub fn scale_offset(&self) -> usize {
        self.raw_bytes.div_ceil(32) * 32
    }

    /// Total tensor bytes: the scale offset plus the 32-byte tail.
    pub fn total_bytes(&self) -> usize {
        self.scale_offset() + 32
    }

    /// Calls `f(byte, row, col0)` for every three-part code byte, in file order.
    fn for_each_three_code(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (bmo, bk) = (self.tiling.block_rows, self.tiling.block_cols);
        let mut i = 0;
        for i0 in 0..self.rows / bmo {
            for i1 in 0..self.three_cols / bk {
                for i2 in 0..bmo / TILE_ROWS {
                    for i3 in 0..bk / 6 {
                        for j in 0..32 {
                            let row = i0 * bmo + i2 * TILE_ROWS + 8 * ROW_SWAP[j / 8] + j % 8;
                            f(i, row, i1 * bk + i3 * 6);
                            i += 1;
                        }
                    }
                }
            }
        }
    }

    /// Calls `f(word, row0, col0)` for every sign word, in file order (word index from the
    /// start of the sign part). Bit `15 - i` of the word is the triple of row
    /// `row0 + 16 * (i % 2)` starting at column `col0 + 3 * (i / 2)`.
    fn for_each_sign_word(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (bmo, bk) = (self.tiling.block_rows, self.tiling.block_cols);
        let mut word = 0;
        for i0 in 0..self.rows / bmo {
            for i1 in 0..self.three_cols / bk {
                for i2 in 0..bmo / TILE_ROWS {
                    for i3 in 0..bk / 24 {
                        for c in 0..16 {
                            f(word, i0 * bmo + i2 * TILE_ROWS + c, i1 * bk + i3 * 24);
                            word += 1;
                        }
                    }
                }
            }
        }
    }

    /// Calls `f(byte, row, col0)` for every two-part code byte (index from the start of
    /// the two part), in file order.
    fn for_each_two_code(&self, mut f: impl FnMut(usize, usize, usize)) {
        let bmo = self.tiling.block_rows;
        let mut i = 0;
        for i0 in 0..self.rows / bmo {
            for i1 in 0..self.two_cols / TWO_BLOCK_COLS {
                for i2 in 0..bmo / TILE_ROWS {
                    for i3 in 0..TWO_BLOCK_COLS / 4 {
                        for j in 0..32 {
                            let row = i0 * bmo + i2 * TILE_ROWS + 8 * ROW_SWAP[j / 8] + j % 8;
                            f(i, row, self.three_cols + i1 * TWO_BLOCK_COLS + i3 * 4);
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

/// `9a + 3b + c` of a triple.
#[inline]
fn triple_value(v: &[i8]) -> i8 {
    9 * v[0] + 3 * v[1] + v[2]
}

/// The triple whose `9a + 3b + c` is `v` (-13..=13).
#[inline]
fn triple_of(v: i8) -> [i8; 3] {
    let a = (v + 4).div_euclid(9);
    let r = v - 9 * a; // -4..=4
    let b = (r + 1).div_euclid(3);
    [a, b, r - 3 * b]
}

/// Unpacks a TL2 tensor of ggml shape `dims` (`[cols, rows]`), deriving the tiling from
/// the shape ([`tl2_tiling`]).
pub fn unpack(dims: &[u64], data: &[u8]) -> Result<TernaryWeights> {
    let (rows, cols) = matrix_shape(TensorType::TL2, dims)?;
    check_byte_size(TensorType::TL2, dims, data)?;
    unpack_with(rows, cols, tl2_tiling(rows, cols)?, data)
}

/// Unpacks a `rows x cols` TL2 tensor packed with tiling `t`. Zero fill and padding are
/// not checked; three-part codes above 13, two-part codes above 8 and a sign bit on a
/// zero triple are errors.
pub fn unpack_with(rows: usize, cols: usize, t: TlTiling, data: &[u8]) -> Result<TernaryWeights> {
    let lay = Tl2Layout::new(rows, cols, t)?;
    if data.len() != lay.total_bytes() {
        return Err(Error::format(format!(
            "a {rows} x {cols} TL2 tensor takes {} bytes, got {}",
            lay.total_bytes(),
            data.len()
        )));
    }
    let scale = read_f32(data, lay.scale_offset());
    check_scale(scale, "the TL2 tensor scale")?;
    let mut values = vec![0i8; rows * cols];
    let mut bad: Option<String> = None;

    // Signed triple values `9a + 3b + c`, row-major: magnitudes first, then signs.
    let per_row = lay.three_cols / 3;
    let mut tv = vec![0i8; rows * per_row];
    let codes = &data[..lay.three_code_bytes()];
    lay.for_each_three_code(|i, row, col0| {
        let b = codes[i];
        let at = row * per_row + col0 / 3;
        tv[at] = (b >> 4) as i8;
        tv[at + 1] = (b & 15) as i8;
    });
    if let Some(i) = tv.iter().position(|&m| m > 13) {
        return Err(Error::format(format!(
            "TL2 three-weight code {} for row {}, columns {}..{} (codes are 0..=13)",
            tv[i],
            i / per_row,
            3 * (i % per_row),
            3 * (i % per_row) + 3
        )));
    }
    let signs = &data[lay.three_code_bytes()..][..lay.sign_bytes()];
    lay.for_each_sign_word(|word, row0, col0| {
        let w = u16::from_le_bytes([signs[2 * word], signs[2 * word + 1]]);
        if w == 0 {
            return;
        }
        for i in 0..16 {
            if (w >> (15 - i)) & 1 == 1 {
                let (row, col) = (row0 + 16 * (i % 2), col0 + 3 * (i / 2));
                let t = &mut tv[row * per_row + col / 3];
                if *t == 0 {
                    bad.get_or_insert_with(|| {
                        format!(
                            "TL2 sign bit set on an all-zero triple (row {row}, column {col}, \
                             sign byte {})",
                            lay.three_code_bytes() + 2 * word
                        )
                    });
                }
                *t = -*t;
            }
        }
    });
    for (row, trow) in tv.chunks_exact(per_row.max(1)).enumerate() {
        let vrow = &mut values[row * cols..][..lay.three_cols];
        for (v, &t) in vrow.chunks_exact_mut(3).zip(trow) {
            v.copy_from_slice(&triple_of(t));
        }
    }
    let two = &data[lay.three_code_bytes() + lay.sign_bytes()..][..lay.two_code_bytes()];
    lay.for_each_two_code(|i, row, col0| {
        let b = two[i];
        for (k, code) in [(0, b >> 4), (2, b & 15)] {
            match pair_values(code) {
                Some((a, c)) => {
                    values[row * cols + col0 + k] = a;
                    values[row * cols + col0 + k + 1] = c;
                }
                None => {
                    bad.get_or_insert_with(|| {
                        format!(
                            "TL2 two-weight code {code} at byte {i} of that part (codes are 0..=8)"
                        )
                    });
                }
            }
        }
    });
    if let Some(msg) = bad {
        return Err(Error::format(msg));
    }
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))
}

/// Packs ternary weights as TL2 with the tiling of their shape ([`tl2_tiling`]).
/// Per-block scales must all be equal: TL2 has one scale per tensor.
pub fn pack(w: &TernaryWeights) -> Result<Vec<u8>> {
    pack_with(w, tl2_tiling(w.rows, w.cols)?)
}

/// Packs ternary weights as TL2 with tiling `t`, byte-identical to bitnet.cpp's
/// converter: the three parts, zero fill, zero padding to 32, the 32-byte scale tail.
pub fn pack_with(w: &TernaryWeights, t: TlTiling) -> Result<Vec<u8>> {
    w.validate()?;
    let lay = Tl2Layout::new(w.rows, w.cols, t)?;
    let scale = w.uniform_scale()?;
    check_scale(scale, "the TL2 tensor scale")?;
    let cols = w.cols;
    // Signed triple values `9a + 3b + c` of the three-part columns, row-major.
    let per_row = lay.three_cols / 3;
    let mut tv = Vec::with_capacity(w.rows * per_row);
    for row in w.values.chunks_exact(cols) {
        tv.extend(row[..lay.three_cols].chunks_exact(3).map(triple_value));
    }
    let mut out = vec![0u8; lay.scale_offset()];
    {
        let (codes, rest) = out.split_at_mut(lay.three_code_bytes());
        let (signs, rest) = rest.split_at_mut(lay.sign_bytes());
        let two = &mut rest[..lay.two_code_bytes()];
        lay.for_each_three_code(|i, row, col0| {
            let at = row * per_row + col0 / 3;
            codes[i] = (tv[at].unsigned_abs() << 4) | tv[at + 1].unsigned_abs();
        });
        lay.for_each_sign_word(|word, row0, col0| {
            let mut bits = 0u16;
            for i in 0..16 {
                let (row, col) = (row0 + 16 * (i % 2), col0 + 3 * (i / 2));
                if tv[row * per_row + col / 3] < 0 {
                    bits |= 1 << (15 - i);
                }
            }
            signs[2 * word..2 * word + 2].copy_from_slice(&bits.to_le_bytes());
        });
        lay.for_each_two_code(|i, row, col0| {
            let v = &w.values[row * cols + col0..][..4];
            two[i] = (pair_code(v[0], v[1]) << 4) | pair_code(v[2], v[3]);
        });
    }
    push_scale_tail(&mut out, scale);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples() {
        for v in -13i8..=13 {
            let t = triple_of(v);
            assert!(t.iter().all(|x| (-1..=1).contains(x)));
            assert_eq!(triple_value(&t), v);
        }
    }

    #[test]
    fn layout_of_the_reference_shapes() {
        let t = tl2_tiling(1536, 4096).unwrap();
        let lay = Tl2Layout::new(1536, 4096, t).unwrap();
        assert_eq!((lay.three_cols, lay.two_cols), (4032, 64));
        assert_eq!(lay.raw_bytes, 1_327_104);
        assert_eq!(
            lay.total_bytes() as u64,
            TensorType::TL2.nbytes(&[4096, 1536]).unwrap()
        );
        for (m, k) in [
            (1536, 1536),
            (4096, 1536),
            (3200, 8640),
            (8640, 3200),
            (14336, 4096),
        ] {
            let lay = Tl2Layout::new(m, k, tl2_tiling(m, k).unwrap()).unwrap();
            assert_eq!(
                lay.total_bytes() as u64,
                TensorType::TL2.nbytes(&[k as u64, m as u64]).unwrap(),
                "{m}x{k}"
            );
        }
        let t = TlTiling {
            block_rows: 64,
            block_cols: 96,
            tile_rows: 32,
        };
        assert!(Tl2Layout::new(64, 300, t).is_err()); // K mod BK = 12
        assert!(Tl2Layout::new(64, 96, t).is_err()); // fewer than 256 columns
        assert!(Tl2Layout::new(64, 288, TlTiling { tile_rows: 64, ..t }).is_err());
    }

    #[test]
    fn small_matrix_round_trip_and_order() {
        // BM = 32, BK = 48: a 64 x 272 matrix -> three_k = 240, two_k = 32.
        let t = TlTiling {
            block_rows: 32,
            block_cols: 48,
            tile_rows: 32,
        };
        let (rows, cols) = (64, 272);
        let values: Vec<i8> = (0..rows * cols)
            .map(|i| ((i * 5 + i / 7) % 3) as i8 - 1)
            .collect();
        let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(2.0)).unwrap();
        let bytes = pack_with(&w, t).unwrap();
        let lay = Tl2Layout::new(rows, cols, t).unwrap();
        assert_eq!(bytes.len(), lay.total_bytes());
        let val = |r: usize, c: usize| triple_value(&w.values[r * cols + c..][..3]);
        // Byte 8 of the first group is row 16 (rows 8..16 and 16..24 swap places).
        assert_eq!(bytes[8] >> 4, val(16, 0).unsigned_abs());
        assert_eq!(bytes[8] & 15, val(16, 3).unsigned_abs());
        assert_eq!(bytes[16] >> 4, val(8, 0).unsigned_abs());
        // The second group: columns 6..12.
        assert_eq!(bytes[32] >> 4, val(0, 6).unsigned_abs());
        // Sign word 0, bit 15: row 0, column 0; bit 14: row 16, column 0; bit 13: row 0,
        // column 3.
        let s0 = u16::from_le_bytes([
            bytes[lay.three_code_bytes()],
            bytes[lay.three_code_bytes() + 1],
        ]);
        assert_eq!((s0 >> 15) & 1, (val(0, 0) < 0) as u16);
        assert_eq!((s0 >> 14) & 1, (val(16, 0) < 0) as u16);
        assert_eq!((s0 >> 13) & 1, (val(0, 3) < 0) as u16);
        assert_eq!(unpack_with(rows, cols, t, &bytes).unwrap(), w);
        assert!(bytes
            [lay.three_code_bytes() + lay.sign_bytes() + lay.two_code_bytes()..lay.scale_offset()]
            .iter()
            .all(|&b| b == 0));
        // A magnitude of 14 is an error.
        let mut bad = bytes.clone();
        bad[0] = 0xe0;
        assert!(unpack_with(rows, cols, t, &bad).is_err());
        // So is a sign bit on an all-zero triple.
        let z = TernaryWeights::new(
            rows,
            cols,
            vec![0; rows * cols],
            WeightScale::PerTensor(1.0),
        )
        .unwrap();
        let mut zb = pack_with(&z, t).unwrap();
        assert_eq!(unpack_with(rows, cols, t, &zb).unwrap(), z);
        zb[lay.three_code_bytes() + 1] = 0x80;
        let e = unpack_with(rows, cols, t, &zb).unwrap_err().to_string();
        assert!(e.contains("all-zero triple (row 0, column 0"), "{e}");
    }
}
