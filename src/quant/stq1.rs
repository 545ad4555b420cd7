//! STQ1_0, the published Sherry GGUF type (llama.cpp PR #22836, "Sparse Ternary
//! Quantization"; Tencent's Hy-MT 1.25-bit files). 3:4 sparse ternary: in every group of 4
//! weights exactly one is 0. See docs/FORMATS.md for a worked example.
//!
//! Per 256 weights of a row, 42 bytes: `qs[32]`, `sign[8]`, f16 `d`.
//! - Group `g` (0..64) holds weights `base + 16p`, p = 0..4 ("lanes"), where
//!   `base = (g / 16) * 64 + g % 16` — stride 16 inside each 64-weight chunk.
//! - `slot = (qs[g / 2] >> (4 * (g & 1))) & 15` (even groups in the low nibble),
//!   `sign = (sign[g / 8] >> (g % 8)) & 1`.
//! - Decoded through a 32-entry codebook indexed by `(sign << 4) | slot`; an entry packs
//!   the 4 lanes as 2-bit codes (value + 1), lane 0 lowest. The codebook follows one rule,
//!   which [`lane_values`] computes: the zero lane is `slot >> 2`; the three other lanes, in
//!   increasing order, are `+1`, `bit0 ? -1 : +1`, `bit1 ? -1 : +1`; `sign = 1` negates all
//!   three. (Our own Sherry type uses the same idea with bit1 and bit0 swapped.)
//!
//! Note that STQ1_0's groups are not SHERRY's: weights that are 3:4 in consecutive quads are
//! in general not 3:4 in STQ1_0's stride-16 quads, so converting between the two is lossless
//! only for weights that are 3:4 both ways (otherwise project with
//! [`super::sherry::GroupLayout::Stride16`] first).
//!
//! Type id: 43 in the PR, 42 in early published files; the GGUF reader tells 42 apart from
//! mainline Q2_0 by the byte size.

use super::sherry::{split_34, Group34};
use super::ternary::{TernaryWeights, WeightScale};
use super::tq::{block_scale_f16, f16_at};
use crate::error::{Error, Result};

/// Weights per STQ1_0 block.
pub const BLOCK_WEIGHTS: usize = 256;
/// Bytes per STQ1_0 block.
pub const BLOCK_BYTES: usize = 42;

/// The first weight (lane 0) of group `g` (0..64) inside its block; lane `p` is `+ 16p`.
#[inline]
pub fn group_base(g: usize) -> usize {
    (g / 16) * 64 + g % 16
}

/// The four values of codebook entry (`sign`, `slot`).
pub const fn lane_values(sign: u8, slot: u8) -> [i8; 4] {
    let z = (slot >> 2) as usize;
    let neg = if sign & 1 == 1 { -1 } else { 1 };
    let rel = [
        1i8,
        if slot & 1 == 1 { -1 } else { 1 },
        if slot & 2 == 2 { -1 } else { 1 },
    ];
    super::sherry::spread_around_zero(z, rel, neg)
}

const fn build_codebook() -> [u8; 32] {
    let mut cb = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        let v = lane_values((i >> 4) as u8, (i & 15) as u8);
        let mut byte = 0u8;
        let mut p = 0;
        while p < 4 {
            byte |= ((v[p] + 1) as u8) << (2 * p);
            p += 1;
        }
        cb[i] = byte;
        i += 1;
    }
    cb
}

/// The PR's codebook: entry `(sign << 4) | slot` packs lanes 0..4 as 2-bit codes, lane 0 in
/// bits 1-0.
pub const CODEBOOK: [u8; 32] = build_codebook();

/// The (slot, sign) of a 3:4 group, or `None` when it is not 3:4.
pub fn encode_group(vals: [i8; 4]) -> Option<(u8, u8)> {
    let Group34 {
        zero,
        negate,
        second_neg,
        third_neg,
    } = split_34(vals)?;
    let slot = (zero as u8) << 2 | (third_neg as u8) << 1 | second_neg as u8;
    Some((slot, negate as u8))
}

/// Unpacks `rows x cols` STQ1_0 bytes (size already checked).
pub fn unpack(rows: usize, cols: usize, data: &[u8]) -> Result<TernaryWeights> {
    let n = rows * cols;
    let mut values = vec![0i8; n];
    let mut scales = Vec::with_capacity(n / BLOCK_WEIGHTS);
    for (bi, (block, out)) in data
        .chunks_exact(BLOCK_BYTES)
        .zip(values.chunks_exact_mut(BLOCK_WEIGHTS))
        .enumerate()
    {
        let d = f16_at(block, 40);
        if !d.is_finite() {
            return Err(Error::format(format!(
                "STQ1_0 block {bi} (row {}) has scale {d}, not a finite number",
                bi * BLOCK_WEIGHTS / cols
            )));
        }
        scales.push(d);
        for g in 0..64 {
            let slot = (block[g / 2] >> (4 * (g & 1))) & 15;
            let sign = (block[32 + g / 8] >> (g % 8)) & 1;
            let v = lane_values(sign, slot);
            for (p, &vp) in v.iter().enumerate() {
                out[group_base(g) + 16 * p] = vp;
            }
        }
    }
    TernaryWeights::new(
        rows,
        cols,
        values,
        WeightScale::PerBlock {
            block: BLOCK_WEIGHTS,
            scales,
        },
    )
}

/// Packs 3:4 ternary weights as STQ1_0 (groups in the stride-16 order above; scales rounded
/// to f16, an all-zero block — which cannot be 3:4 — is an error like any other non-3:4
/// group). The error names the first group that is not 3:4.
pub fn pack(w: &TernaryWeights) -> Result<Vec<u8>> {
    if w.cols % BLOCK_WEIGHTS != 0 {
        return Err(Error::invalid(format!(
            "STQ1_0 needs the column count to be a multiple of {BLOCK_WEIGHTS}, got {}",
            w.cols
        )));
    }
    let per_row = w.cols / BLOCK_WEIGHTS;
    let mut out = vec![0u8; w.values.len() / BLOCK_WEIGHTS * BLOCK_BYTES];
    for (bi, (vals, block)) in w
        .values
        .chunks_exact(BLOCK_WEIGHTS)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
        .enumerate()
    {
        let (row, col0) = (bi / per_row, (bi % per_row) * BLOCK_WEIGHTS);
        for g in 0..64 {
            let b = group_base(g);
            let lanes = [vals[b], vals[b + 16], vals[b + 32], vals[b + 48]];
            let (slot, sign) = encode_group(lanes).ok_or_else(|| {
                Error::invalid(format!(
                    "STQ1_0 needs exactly one zero in each group of 4: row {row}, columns \
                     {}, {}, {}, {} hold {lanes:?}",
                    col0 + b,
                    col0 + b + 16,
                    col0 + b + 32,
                    col0 + b + 48
                ))
            })?;
            block[g / 2] |= slot << (4 * (g & 1));
            block[32 + g / 8] |= sign << (g % 8);
        }
        let d = block_scale_f16(w, row, col0, BLOCK_WEIGHTS)?;
        block[40..].copy_from_slice(&d.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebook_matches_the_pr() {
        // The 32 bytes as PR #22836 lists them (ggml-common.h `stq1_0_codebook`).
        let pr: [u8; 32] = [
            0xA9, 0x89, 0x29, 0x09, 0xA6, 0x86, 0x26, 0x06, 0x9A, 0x92, 0x1A, 0x12, 0x6A, 0x62,
            0x4A, 0x42, 0x01, 0x21, 0x81, 0xA1, 0x04, 0x24, 0x84, 0xA4, 0x10, 0x18, 0x90, 0x98,
            0x40, 0x48, 0x60, 0x68,
        ];
        assert_eq!(CODEBOOK, pr);
    }

    #[test]
    fn every_entry_encodes_back() {
        for i in 0..32u8 {
            let v = lane_values(i >> 4, i & 15);
            assert_eq!(encode_group(v), Some((i & 15, i >> 4)));
        }
        assert_eq!(encode_group([1, 1, 1, 1]), None);
        assert_eq!(encode_group([0, 0, 1, 1]), None);
    }
}
