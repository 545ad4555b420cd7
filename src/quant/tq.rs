//! TQ1_0 and TQ2_0, mainline llama.cpp's ternary types (ggml-common.h `block_tq1_0`,
//! `block_tq2_0`; ggml-quants.c `quantize_row_tq{1,2}_0_ref`, `dequantize_row_tq{1,2}_0`).
//! Both cut each row into blocks of 256 weights with one f16 scale `d` per block, stored
//! after the codes. See docs/FORMATS.md for worked examples.
//!
//! TQ2_0 (66 bytes): `qs[64]` then `d`. In each half of the block (bytes 0..32 for weights
//! 0..128, bytes 32..64 for weights 128..256), byte `m` holds weights `m`, `m + 32`, `m + 64`,
//! `m + 96` of that half in bits 1-0, 3-2, 5-4, 7-6 (note: lowest bits first, the reverse
//! of I2_S). Code = value + 1.
//!
//! TQ1_0 (54 bytes): `qs[48]`, `qh[4]`, then `d`. Five trits (value + 1, 0..2) per byte,
//! as the base-3 number `t0 t1 t2 t3 t4` (t0 most significant) scaled to a byte:
//! `byte = ceil(q * 256 / 243)`. Trit `n` comes back as `((byte * 3^n) mod 256) * 3 >> 8`.
//! - `qs[m]`, m < 32: trit n is weight `32n + m` (weights 0..160);
//! - `qs[32 + m]`, m < 16: trit n is weight `160 + 16n + m` (weights 160..240);
//! - `qh[j]`, j < 4: four trits (the fifth is 0), trit n is weight `240 + 4n + j`.

use half::f16;

use super::ternary::{TernaryWeights, WeightScale};
use crate::error::{Error, Result};

/// Weights per TQ block.
pub const BLOCK_WEIGHTS: usize = 256;
/// Bytes of a TQ1_0 block.
pub const TQ1_BLOCK_BYTES: usize = 54;
/// Bytes of a TQ2_0 block.
pub const TQ2_BLOCK_BYTES: usize = 66;

/// The little-endian f16 at byte `at`, as f32.
#[inline]
pub fn f16_at(data: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([data[at], data[at + 1]]).to_f32()
}

/// Rounds a block scale to f16 (round to nearest even, as ggml's `GGML_FP32_TO_FP16`),
/// refusing values f16 cannot hold.
pub fn scale_to_f16(s: f32, what: &dyn Fn() -> String) -> Result<f16> {
    let h = f16::from_f32(s);
    if !s.is_finite() || !h.is_finite() {
        return Err(Error::invalid(format!(
            "{}: scale {s} does not fit an f16",
            what()
        )));
    }
    Ok(h)
}

/// The f16 scale to write for the block of `w` at (`row`, columns `col0..col0 + len`): the
/// block's scale, or 0 when all its weights are 0 (as llama.cpp's quantizer writes for an
/// all-zero block, whose absmax is 0).
pub(crate) fn block_scale_f16(
    w: &TernaryWeights,
    row: usize,
    col0: usize,
    len: usize,
) -> Result<f16> {
    let s = w.span_scale(row, col0, len)?.unwrap_or(0.0);
    scale_to_f16(s, &|| format!("row {row}, columns {col0}..{}", col0 + len))
}

/// Weight index (0..256) of trit `n` of byte `byte` (0..52) of a TQ1_0 block.
#[inline]
pub fn tq1_weight_index(byte: usize, n: usize) -> usize {
    match byte {
        0..=31 => 32 * n + byte,
        32..=47 => 160 + 16 * n + (byte - 32),
        _ => 240 + 4 * n + (byte - 48),
    }
}

/// Trit `n` (0..5) of a TQ1_0 byte, 0..2.
#[inline]
pub fn tq1_trit(byte: u8, n: usize) -> u8 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let q = byte.wrapping_mul(POW3[n]);
    ((q as u16 * 3) >> 8) as u8
}

/// Packs trits (0..2, most significant first) into one TQ1_0 byte; four trits get a zero
/// fifth.
fn tq1_byte(trits: &[u8]) -> u8 {
    let mut q: u16 = 0;
    for &t in trits {
        q = q * 3 + t as u16;
    }
    for _ in trits.len()..5 {
        q *= 3;
    }
    (q * 256).div_ceil(243) as u8
}

/// Weight index (0..256) of the 2-bit field at `shift` (0, 2, 4, 6) of byte `byte` (0..64)
/// of a TQ2_0 block.
#[inline]
pub fn tq2_weight_index(byte: usize, shift: u32) -> usize {
    (byte / 32) * 128 + (shift as usize / 2) * 32 + byte % 32
}

fn check_cols(cols: usize, ty: &str) -> Result<()> {
    if cols % BLOCK_WEIGHTS != 0 {
        return Err(Error::invalid(format!(
            "{ty} needs the column count to be a multiple of {BLOCK_WEIGHTS}, got {cols}"
        )));
    }
    Ok(())
}

/// Shared unpack loop: `decode(block, out)` writes the block's 256 values (0..2 codes).
fn unpack_blocks(
    rows: usize,
    cols: usize,
    data: &[u8],
    block_bytes: usize,
    ty: &str,
    decode: impl Fn(&[u8], &mut [i8]) -> Result<()>,
) -> Result<TernaryWeights> {
    let n = rows * cols;
    let mut values = vec![0i8; n];
    let mut scales = Vec::with_capacity(n / BLOCK_WEIGHTS);
    for (bi, (block, out)) in data
        .chunks_exact(block_bytes)
        .zip(values.chunks_exact_mut(BLOCK_WEIGHTS))
        .enumerate()
    {
        let d = f16_at(block, block_bytes - 2);
        if !d.is_finite() {
            return Err(Error::format(format!(
                "{ty} block {bi} (row {}) has scale {d}, not a finite number",
                bi * BLOCK_WEIGHTS / cols
            )));
        }
        scales.push(d);
        decode(block, out).map_err(|e| e.context(format!("{ty} block {bi}")))?;
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

/// Unpacks `rows x cols` TQ1_0 bytes (size already checked).
pub fn unpack_tq1(rows: usize, cols: usize, data: &[u8]) -> Result<TernaryWeights> {
    unpack_blocks(rows, cols, data, TQ1_BLOCK_BYTES, "TQ1_0", |block, out| {
        for (byte, &b) in block[..52].iter().enumerate() {
            let trits = if byte < 48 { 5 } else { 4 };
            for n in 0..trits {
                out[tq1_weight_index(byte, n)] = tq1_trit(b, n) as i8 - 1;
            }
        }
        Ok(())
    })
}

/// Unpacks `rows x cols` TQ2_0 bytes (size already checked). Code 3 is an error.
pub fn unpack_tq2(rows: usize, cols: usize, data: &[u8]) -> Result<TernaryWeights> {
    unpack_blocks(rows, cols, data, TQ2_BLOCK_BYTES, "TQ2_0", |block, out| {
        for (byte, &b) in block[..64].iter().enumerate() {
            for shift in [0u32, 2, 4, 6] {
                let code = (b >> shift) & 3;
                if code == 3 {
                    return Err(Error::format(format!(
                        "byte {byte} holds the code 3, which is no ternary value"
                    )));
                }
                out[tq2_weight_index(byte, shift)] = code as i8 - 1;
            }
        }
        Ok(())
    })
}

/// Shared pack loop: `encode(values_of_block, codes_out)` writes the block's code bytes.
fn pack_blocks(
    w: &TernaryWeights,
    block_bytes: usize,
    ty: &str,
    encode: impl Fn(&[i8], &mut [u8]),
) -> Result<Vec<u8>> {
    check_cols(w.cols, ty)?;
    let per_row = w.cols / BLOCK_WEIGHTS;
    let mut out = vec![0u8; w.values.len() / BLOCK_WEIGHTS * block_bytes];
    for (bi, (vals, block)) in w
        .values
        .chunks_exact(BLOCK_WEIGHTS)
        .zip(out.chunks_exact_mut(block_bytes))
        .enumerate()
    {
        let (row, col0) = (bi / per_row, (bi % per_row) * BLOCK_WEIGHTS);
        let d = block_scale_f16(w, row, col0, BLOCK_WEIGHTS)?;
        encode(vals, &mut block[..block_bytes - 2]);
        block[block_bytes - 2..].copy_from_slice(&d.to_le_bytes());
    }
    Ok(out)
}

/// Packs ternary weights as TQ1_0 (scales rounded to f16; an all-zero block gets d = 0).
pub fn pack_tq1(w: &TernaryWeights) -> Result<Vec<u8>> {
    pack_blocks(w, TQ1_BLOCK_BYTES, "TQ1_0", |vals, codes| {
        let code = |i: usize| (vals[i] + 1) as u8;
        for (byte, slot) in codes.iter_mut().enumerate() {
            let trits = if byte < 48 { 5 } else { 4 };
            let mut t = [0u8; 5];
            for (n, tn) in t.iter_mut().enumerate().take(trits) {
                *tn = code(tq1_weight_index(byte, n));
            }
            *slot = tq1_byte(&t[..trits]);
        }
    })
}

/// Packs ternary weights as TQ2_0 (scales rounded to f16; an all-zero block gets d = 0).
pub fn pack_tq2(w: &TernaryWeights) -> Result<Vec<u8>> {
    pack_blocks(w, TQ2_BLOCK_BYTES, "TQ2_0", |vals, codes| {
        for (byte, slot) in codes.iter_mut().enumerate() {
            *slot = [0u32, 2, 4, 6].iter().fold(0u8, |acc, &shift| {
                acc | (((vals[tq2_weight_index(byte, shift)] + 1) as u8) << shift)
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tq1_bytes_decode_their_trits() {
        // Every 5-trit number survives the byte encoding.
        for q in 0..243u16 {
            let t: Vec<u8> = (0..5).map(|n| ((q / 3u16.pow(4 - n)) % 3) as u8).collect();
            let b = tq1_byte(&t);
            let back: Vec<u8> = (0..5).map(|n| tq1_trit(b, n)).collect();
            assert_eq!(back, t, "q = {q}, byte = {b}");
        }
        // Worked example of docs/FORMATS.md: trits (2,0,1,1,2) -> q = 2*81+0+9+3+2 = 176,
        // byte = ceil(176 * 256 / 243) = 186.
        assert_eq!(tq1_byte(&[2, 0, 1, 1, 2]), 186);
        // All-zero weights (code 1) -> q = 121 -> byte 128; qh: 1111|0 = 120 -> byte 127.
        assert_eq!(tq1_byte(&[1, 1, 1, 1, 1]), 128);
        assert_eq!(tq1_byte(&[1, 1, 1, 1]), 127);
    }

    #[test]
    fn element_orders_are_permutations() {
        let mut seen = [false; 256];
        for byte in 0..52 {
            for n in 0..if byte < 48 { 5 } else { 4 } {
                let i = tq1_weight_index(byte, n);
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        let mut seen = [false; 256];
        for byte in 0..64 {
            for shift in [0, 2, 4, 6] {
                let i = tq2_weight_index(byte, shift);
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
