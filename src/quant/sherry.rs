//! SHERRY, our 1.25-bit type (GGUF id 1250): 3:4 sparse ternary weights, one f32 scale per
//! tensor, laid out for 16-entry table lookups (AVX2 `vpshufb`, NEON `tbl`). Every bit is
//! specified in docs/FORMATS.md; in short:
//!
//! - A *group* is 4 consecutive weights of a row (columns `4g .. 4g + 3`); exactly one of
//!   them is 0. It is stored as a 4-bit *index* and a *sign* bit. Index `i`: the zero is at
//!   position `i >> 2`; the three other positions, in increasing order, are
//!   `+1`, `bit1(i) ? -1 : +1`, `bit0(i) ? -1 : +1`; sign 1 negates all three.
//! - Rows come in *tiles* of 32 (tile `t` = rows `32t .. 32t + 31`), tiles in order. A tile
//!   is cut into *chunks* of 32 columns (8 groups), in column order. A chunk is 160 bytes:
//!   `8 × 16` index bytes (group `j` of the chunk: 16 bytes; byte `b` has row `b`'s index in
//!   its low nibble and row `b + 16`'s in its high nibble), then `8 × 4` sign bytes (group `j`:
//!   a little-endian u32, bit `r` = sign of row `r` of the tile).
//! - After `rows * cols * 5 / 32` bytes of chunks, the 32-byte tail: f32 scale, 28 zeros.
//!
//! Activations: bitnet.cpp's int8 per-row format, as for I2_S.

use super::ternary::{check_scale, push_scale_tail, read_f32, TernaryWeights, WeightScale};
use crate::error::{Error, Result};

/// Rows per tile.
pub const TILE_ROWS: usize = 32;
/// Columns per chunk.
pub const CHUNK_COLS: usize = 32;
/// Groups (of 4 columns) per chunk.
pub const CHUNK_GROUPS: usize = 8;
/// Bytes per chunk (32 rows × 32 columns × 5/32).
pub const CHUNK_BYTES: usize = 160;
/// Offset of the sign words inside a chunk.
pub const SIGNS_OFFSET: usize = 128;

/// A 3:4 group taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group34 {
    /// Position (0..4) of the zero.
    pub zero: usize,
    /// The first non-zero weight is -1 (the group's sign bit).
    pub negate: bool,
    /// After undoing `negate`, the second non-zero weight is -1.
    pub second_neg: bool,
    /// After undoing `negate`, the third non-zero weight is -1.
    pub third_neg: bool,
}

/// Takes a group of 4 ternary values apart, or `None` when it does not have exactly one 0.
pub fn split_34(vals: [i8; 4]) -> Option<Group34> {
    let mut zero = None;
    for (p, &v) in vals.iter().enumerate() {
        if v == 0 {
            if zero.is_some() {
                return None;
            }
            zero = Some(p);
        }
    }
    let zero = zero?;
    let nz: Vec<i8> = (0..4).filter(|&p| p != zero).map(|p| vals[p]).collect();
    let negate = nz[0] < 0;
    let flip = |v: i8| if negate { -v } else { v };
    Some(Group34 {
        zero,
        negate,
        second_neg: flip(nz[1]) < 0,
        third_neg: flip(nz[2]) < 0,
    })
}

/// The four values of pattern `index` (0..16) with sign bit `sign`.
pub const fn pattern(index: u8, sign: u8) -> [i8; 4] {
    let z = ((index >> 2) & 3) as usize;
    let neg = if sign & 1 == 1 { -1 } else { 1 };
    let rel = [
        1i8,
        if index & 2 == 2 { -1 } else { 1 },
        if index & 1 == 1 { -1 } else { 1 },
    ];
    spread_around_zero(z, rel, neg)
}

/// Places three signed values (times `neg`) at the positions of a group of four other
/// than `zero`, in increasing order; the shared step of Sherry's patterns and STQ1_0's
/// codebook.
pub const fn spread_around_zero(zero: usize, rel: [i8; 3], neg: i8) -> [i8; 4] {
    let mut out = [0i8; 4];
    let mut k = 0;
    let mut p = 0;
    while p < 4 {
        if p != zero {
            out[p] = rel[k] * neg;
            k += 1;
        }
        p += 1;
    }
    out
}

const fn build_patterns() -> [[i8; 4]; 16] {
    let mut t = [[0i8; 4]; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = pattern(i as u8, 0);
        i += 1;
    }
    t
}

/// The 16 canonical patterns (sign 0); sign 1 negates one.
pub const PATTERNS: [[i8; 4]; 16] = build_patterns();

/// (index, sign) of a 3:4 group, or `None`.
pub fn encode_group(vals: [i8; 4]) -> Option<(u8, u8)> {
    let g = split_34(vals)?;
    let index = (g.zero as u8) << 2 | (g.second_neg as u8) << 1 | g.third_neg as u8;
    Some((index, g.negate as u8))
}

/// Byte offset of the chunk holding (tile `t`, chunk `k`) in a tensor of `cols` columns.
#[inline]
pub fn chunk_offset(cols: usize, tile: usize, chunk: usize) -> usize {
    (tile * (cols / CHUNK_COLS) + chunk) * CHUNK_BYTES
}

/// (index, sign) of row `r`, group `g` (columns `4g..4g+3`) of a packed tensor.
#[inline]
pub fn group_at(data: &[u8], cols: usize, r: usize, g: usize) -> (u8, u8) {
    let base = chunk_offset(cols, r / TILE_ROWS, g / CHUNK_GROUPS);
    let (j, b) = (g % CHUNK_GROUPS, r % TILE_ROWS);
    let idx = (data[base + j * 16 + b % 16] >> (4 * (b / 16))) & 15;
    let sign = (data[base + SIGNS_OFFSET + j * 4 + b / 8] >> (b % 8)) & 1;
    (idx, sign)
}

fn check_shape(rows: usize, cols: usize) -> Result<()> {
    if rows % TILE_ROWS != 0 || cols % CHUNK_COLS != 0 {
        return Err(Error::invalid(format!(
            "SHERRY needs rows and columns to be multiples of 32, got {rows} x {cols}"
        )));
    }
    Ok(())
}

/// Unpacks `rows x cols` Sherry bytes (size already checked).
pub fn unpack(rows: usize, cols: usize, data: &[u8]) -> Result<TernaryWeights> {
    check_shape(rows, cols)?;
    let scale = read_f32(data, rows * cols / 32 * 5);
    check_scale(scale, "the SHERRY tensor scale")?;
    let mut values = vec![0i8; rows * cols];
    for r in 0..rows {
        for g in 0..cols / 4 {
            let (idx, sign) = group_at(data, cols, r, g);
            values[r * cols + 4 * g..][..4].copy_from_slice(&pattern(idx, sign));
        }
    }
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))
}

/// Packs 3:4 ternary weights as Sherry. Errors name the first group that is not 3:4 (use
/// [`project_34`] first for weights that are not), and per-block scales that differ.
pub fn pack(w: &TernaryWeights) -> Result<Vec<u8>> {
    check_shape(w.rows, w.cols)?;
    let scale = w.uniform_scale()?;
    let body = w.rows * w.cols / 32 * 5;
    let mut out = vec![0u8; body];
    for r in 0..w.rows {
        for g in 0..w.cols / 4 {
            let v = &w.values[r * w.cols + 4 * g..][..4];
            let lanes = [v[0], v[1], v[2], v[3]];
            let (idx, sign) = encode_group(lanes).ok_or_else(|| {
                Error::invalid(format!(
                    "SHERRY needs exactly one zero in each group of 4: row {r}, group {g} \
                     (columns {}..{}) holds {lanes:?}",
                    4 * g,
                    4 * g + 3
                ))
            })?;
            let base = chunk_offset(w.cols, r / TILE_ROWS, g / CHUNK_GROUPS);
            let (j, b) = (g % CHUNK_GROUPS, r % TILE_ROWS);
            out[base + j * 16 + b % 16] |= idx << (4 * (b / 16));
            out[base + SIGNS_OFFSET + j * 4 + b / 8] |= sign << (b % 8);
        }
    }
    push_scale_tail(&mut out, scale);
    Ok(out)
}

/// What a 3:4 projection changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionReport {
    /// Groups of 4 in the tensor.
    pub groups: usize,
    /// Groups that had no zero (one weight was set to 0).
    pub groups_without_zero: usize,
    /// Groups that had two or more zeros (zeros were set to ±1).
    pub groups_with_extra_zeros: usize,
    /// Weights whose value changed.
    pub weights_changed: usize,
}

impl ProjectionReport {
    /// Groups that changed.
    pub fn groups_changed(&self) -> usize {
        self.groups_without_zero + self.groups_with_extra_zeros
    }
}

/// Which 4 weights of a row form a group for the 3:4 rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLayout {
    /// Columns `4g .. 4g + 3` (SHERRY, and the Sherry paper's training mask).
    Consecutive,
    /// STQ1_0's groups: in each 64-column chunk, columns `m, m + 16, m + 32, m + 48`.
    Stride16,
}

impl GroupLayout {
    /// The column of lane `p` (0..4) of group `g` (0..cols / 4).
    #[inline]
    pub fn column(self, g: usize, p: usize) -> usize {
        match self {
            GroupLayout::Consecutive => 4 * g + p,
            GroupLayout::Stride16 => (g / 16) * 64 + g % 16 + 16 * p,
        }
    }

    /// Column counts this layout can group.
    pub fn check_cols(self, cols: usize) -> Result<()> {
        let m = match self {
            GroupLayout::Consecutive => 4,
            GroupLayout::Stride16 => 64,
        };
        if cols % m != 0 {
            return Err(Error::invalid(format!(
                "{self:?} 3:4 groups need a column count divisible by {m}, got {cols}"
            )));
        }
        Ok(())
    }
}

/// Projects ternary weights onto the 3:4 pattern (groups as `layout` says), deterministically.
/// Groups that already have exactly one zero are kept. The scale is kept.
///
/// - A group with no zero: with `latent` (the float weights the ternary ones came from,
///   row-major, same shape), the weight of smallest |latent| becomes 0 (the lowest lane on
///   ties); without, lane `(row + group) % 4` becomes 0 (a fixed rotation, so that no
///   column is favoured).
/// - A group with two or more zeros: with `latent`, the three lanes of largest |latent|
///   (lowest lane first on ties) are kept non-zero — a weight that was already ±1 keeps its
///   value, a zero becomes the sign of its latent (+1 for a latent of exactly 0) — and the
///   fourth becomes 0. Without, zeros are filled in lane order until one zero is left (the
///   last one), each with `+1` when `row + column` is even and `-1` when odd.
pub fn project_34(
    w: &TernaryWeights,
    latent: Option<&[f32]>,
    layout: GroupLayout,
) -> Result<(TernaryWeights, ProjectionReport)> {
    w.validate()?;
    layout.check_cols(w.cols)?;
    if let Some(l) = latent {
        if l.len() != w.values.len() {
            return Err(Error::invalid(format!(
                "{} latent weights given for {} ternary ones",
                l.len(),
                w.values.len()
            )));
        }
        if let Some(i) = l.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!("latent weight {i} is {}", l[i])));
        }
    }
    let mut out = w.clone();
    let mut rep = ProjectionReport {
        groups: w.values.len() / 4,
        ..Default::default()
    };
    for r in 0..w.rows {
        for g in 0..w.cols / 4 {
            let at = |p: usize| r * w.cols + layout.column(g, p);
            let idx = [at(0), at(1), at(2), at(3)];
            let before = idx.map(|i| out.values[i]);
            let zeros = before.iter().filter(|&&x| x == 0).count();
            if zeros == 1 {
                continue;
            }
            let mut v = before;
            let mag = |p: usize| latent.map_or(0.0, |l| l[idx[p]].abs());
            if zeros == 0 {
                rep.groups_without_zero += 1;
                let z = match latent {
                    Some(_) => (1..4).fold(0, |best, p| if mag(p) < mag(best) { p } else { best }),
                    None => (r + g) % 4,
                };
                v[z] = 0;
            } else {
                rep.groups_with_extra_zeros += 1;
                match latent {
                    Some(l) => {
                        let mut order = [0usize, 1, 2, 3];
                        // Largest |latent| first; the sort is stable, so ties keep lane order.
                        order.sort_by(|&a, &b| mag(b).total_cmp(&mag(a)));
                        for &p in &order[..3] {
                            if v[p] == 0 {
                                v[p] = if l[idx[p]] < 0.0 { -1 } else { 1 };
                            }
                        }
                        v[order[3]] = 0;
                    }
                    None => {
                        let mut left = zeros;
                        for (p, vp) in v.iter_mut().enumerate() {
                            if left == 1 {
                                break;
                            }
                            if *vp == 0 {
                                let c = layout.column(g, p);
                                *vp = if (r + c) % 2 == 0 { 1 } else { -1 };
                                left -= 1;
                            }
                        }
                    }
                }
            }
            rep.weights_changed += before.iter().zip(&v).filter(|(a, b)| a != b).count();
            for (p, &i) in idx.iter().enumerate() {
                out.values[i] = v[p];
            }
        }
    }
    Ok((out, rep))
}

/// Ternarizes latent float weights straight to 3:4, as Sherry's training code does: in each
/// group of 4 weights of a row (consecutive for SHERRY, as in the paper) keep the 3 of largest |w| (lowest position first
/// on ties) as `sign(w)` (+1 for 0) and set the fourth to 0; the scale is the mean |w| of
/// all kept weights of the tensor (absmean over the kept weights, one scale per tensor as
/// Sherry stores it).
pub fn project_34_from_latent(
    rows: usize,
    cols: usize,
    latent: &[f32],
    layout: GroupLayout,
) -> Result<TernaryWeights> {
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
    if latent.len() != n {
        return Err(Error::invalid(format!(
            "a {rows}x{cols} matrix needs {n} latent weights, got {}",
            latent.len()
        )));
    }
    if let Some(i) = latent.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "latent weight {i} is {}",
            latent[i]
        )));
    }
    layout.check_cols(cols)?;
    let mut values = vec![0i8; n];
    let mut sum = 0.0f64;
    for r in 0..rows {
        for g in 0..cols / 4 {
            let idx = [0, 1, 2, 3].map(|p| r * cols + layout.column(g, p));
            let mut order = [0usize, 1, 2, 3];
            order.sort_by(|&a, &b| latent[idx[b]].abs().total_cmp(&latent[idx[a]].abs()));
            for &p in &order[..3] {
                let x = latent[idx[p]];
                values[idx[p]] = if x < 0.0 { -1 } else { 1 };
                sum += x.abs() as f64;
            }
        }
    }
    let kept = (n / 4 * 3).max(1);
    let scale = (sum / kept as f64) as f32;
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_the_rule() {
        assert_eq!(PATTERNS[0], [0, 1, 1, 1]);
        assert_eq!(PATTERNS[1], [0, 1, 1, -1]);
        assert_eq!(PATTERNS[2], [0, 1, -1, 1]);
        assert_eq!(PATTERNS[7], [1, 0, -1, -1]);
        assert_eq!(PATTERNS[14], [1, -1, 1, 0]);
        assert_eq!(pattern(14, 1), [-1, 1, -1, 0]);
        for i in 0..16u8 {
            for s in 0..2u8 {
                assert_eq!(encode_group(pattern(i, s)), Some((i, s)));
            }
        }
        assert_eq!(encode_group([1, -1, 1, -1]), None);
        assert_eq!(encode_group([0, 0, 0, 1]), None);
    }
}
