//! I2_S, bitnet.cpp's 2-bit ternary type, in the order its x86 build writes (the order of
//! the official BitNet b1.58 2B4T GGUF). See docs/FORMATS.md for the byte-level picture.
//!
//! - Codes: 2 bits per weight, `code = value + 1` (0 → -1, 1 → 0, 2 → +1; 3 is unused).
//! - The flattened tensor (row-major, `rows * cols` weights) is cut into blocks of 128
//!   weights, 32 bytes each. Byte `j` of a block holds weights `j`, `j + 32`, `j + 64`,
//!   `j + 96` of the block in bits 7-6, 5-4, 3-2, 1-0.
//! - After the `rows * cols / 4` code bytes, a 32-byte tail: the f32 scale (little-endian),
//!   then 28 bytes that bitnet.cpp leaves uninitialised and we write as zeros.
//!
//! We require `cols % 128 == 0`, so every row starts on a block boundary and row `r` is
//! bytes `r * cols / 4 .. (r + 1) * cols / 4`.

use super::ternary::{check_scale, push_scale_tail, read_f32, TernaryWeights, WeightScale};
use crate::error::{Error, Result};

/// Weights per I2_S block.
pub const BLOCK_WEIGHTS: usize = 128;
/// Bytes per I2_S block.
pub const BLOCK_BYTES: usize = 32;

/// The (byte, shift) of weight `k` (0..128) inside its block: byte `k % 32`, bits
/// `6 - 2 * (k / 32)` and up.
#[inline]
pub fn position_in_block(k: usize) -> (usize, u32) {
    (k % 32, 6 - 2 * (k / 32) as u32)
}

/// The 2-bit code of weight `col` of a row whose code bytes are `row_bytes`.
#[inline]
pub fn code_at(row_bytes: &[u8], col: usize) -> u8 {
    let (byte, shift) = position_in_block(col % BLOCK_WEIGHTS);
    (row_bytes[(col / BLOCK_WEIGHTS) * BLOCK_BYTES + byte] >> shift) & 3
}

/// Unpacks `rows x cols` I2_S bytes (size already checked by the caller).
pub fn unpack(rows: usize, cols: usize, data: &[u8]) -> Result<TernaryWeights> {
    let n = rows * cols;
    let scale = read_f32(data, n / 4);
    check_scale(scale, "the I2_S tensor scale")?;
    let mut values = vec![0i8; n];
    for (bi, block) in data[..n / 4].chunks_exact(BLOCK_BYTES).enumerate() {
        let out = &mut values[bi * BLOCK_WEIGHTS..][..BLOCK_WEIGHTS];
        for (j, &b) in block.iter().enumerate() {
            for g in 0..4 {
                let code = (b >> (6 - 2 * g)) & 3;
                if code == 3 {
                    let i = bi * BLOCK_WEIGHTS + g * 32 + j;
                    return Err(Error::format(format!(
                        "I2_S code 3 (no ternary value) for row {}, column {} (byte {})",
                        i / cols,
                        i % cols,
                        bi * BLOCK_BYTES + j
                    )));
                }
                out[g * 32 + j] = code as i8 - 1;
            }
        }
    }
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))
}

/// Packs ternary weights as I2_S. Per-block scales must all be equal (ignoring all-zero
/// blocks): I2_S has one scale per tensor.
pub fn pack(w: &TernaryWeights) -> Result<Vec<u8>> {
    if w.cols % BLOCK_WEIGHTS != 0 {
        return Err(Error::invalid(format!(
            "I2_S needs the column count to be a multiple of {BLOCK_WEIGHTS}, got {}",
            w.cols
        )));
    }
    let scale = w.uniform_scale()?;
    let mut out = Vec::with_capacity(w.values.len() / 4 + 32);
    for block in w.values.chunks_exact(BLOCK_WEIGHTS) {
        out.extend((0..BLOCK_BYTES).map(|j| {
            let c = |g: usize| ((block[g * 32 + j] + 1) as u8) << (6 - 2 * g);
            c(0) | c(1) | c(2) | c(3)
        }));
    }
    push_scale_tail(&mut out, scale);
    Ok(out)
}

/// Quantizes float weights to I2_S exactly as bitnet.cpp's `quantize_i2_s` (llama-quantize)
/// does, so that an F32 file of ternary-valued weights gives its I2_S file byte for byte:
///
/// - scale = max |x| over the whole tensor (computed in f64, stored as f32);
/// - code = 1 (zero) where |x| < 1e-6, else 2 where x > 0, else 0 — only the sign of a
///   non-zero weight counts, its magnitude is ignored.
///
/// That is lossless only for ternary-valued input `{-a, 0, +a}`; for latent weights use an
/// absmean ternarization first. NaN and infinite inputs are rejected (bitnet.cpp would
/// silently write garbage).
pub fn quantize_from_f32(rows: usize, cols: usize, x: &[f32]) -> Result<Vec<u8>> {
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
    if x.len() != n {
        return Err(Error::invalid(format!(
            "a {rows}x{cols} matrix needs {n} values, got {}",
            x.len()
        )));
    }
    if cols % BLOCK_WEIGHTS != 0 {
        return Err(Error::invalid(format!(
            "I2_S needs the column count to be a multiple of {BLOCK_WEIGHTS}, got {cols}"
        )));
    }
    let mut max = 0.0f64;
    for (i, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::invalid(format!(
                "weight {v} at row {}, column {} is not finite",
                i / cols,
                i % cols
            )));
        }
        max = max.max((v as f64).abs());
    }
    let values: Vec<i8> = x
        .iter()
        .map(|&v| {
            if (v as f64).abs() < 1e-6 {
                0
            } else if v as f64 * max > 0.0 {
                1
            } else {
                -1
            }
        })
        .collect();
    let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(max as f32))?;
    pack(&w)
}
