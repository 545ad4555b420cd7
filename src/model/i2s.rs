//! I2_S weights and bitnet.cpp's int8 activations, as the reference arithmetic of the
//! forward pass: per-row absmax activation quantization, exact integer dot products
//! with the 2-bit codes, and bitnet.cpp's epilogue
//! `((Σ code·q) − Σ q) / act_scale × weight_scale`, all in the order bitnet.cpp uses.
//!
//! Layout (bitnet.cpp's x86 order, used by every official file): each row of `cols`
//! weights is `cols / 4` bytes, in blocks of 128 weights in 32 bytes; byte `j` of a block
//! holds the codes (value + 1) of weights `j`, `j + 32`, `j + 64`, `j + 96` in bits 7-6,
//! 5-4, 3-2 and 1-0. The f32 scale follows the codes of the whole tensor.

use crate::error::{Error, Result};

/// Weights per I2_S block.
pub const BLOCK: usize = 128;

/// bitnet.cpp's `quantize_row_i8_s`: `s = 127 / max(|x|, 1e-5)` (the maximum taken in
/// f64, `s` rounded to f32), `q = clamp(round_half_even(x * s), -128, 127)`. Returns `s`
/// and `Σ q`.
pub fn quantize_activations(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let max = x.iter().fold(0.00001f64, |m, &v| m.max(f64::from(v).abs()));
    let s = (127.0 / max) as f32;
    let mut sum = 0i32;
    for (d, &v) in q.iter_mut().zip(x) {
        let r = (v * s).round_ties_even().clamp(-128.0, 127.0) as i32;
        sum += r;
        *d = r as i8;
    }
    (s, sum)
}

/// The per-tensor scale stored after the codes of an I2_S tensor of `rows × cols`.
pub fn tensor_scale(bytes: &[u8], rows: usize, cols: usize) -> Result<f32> {
    let at = rows * cols / 4;
    let b = bytes
        .get(at..at + 4)
        .ok_or_else(|| Error::format("I2_S tensor is too short to hold its scale"))?;
    Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `out[r] = ((Σ_c code[r][c]·q[c]) − q_sum) / q_scale × w_scale` for every row `r`.
#[allow(clippy::too_many_arguments)]
pub fn gemv(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    w_scale: f32,
    q: &[i8],
    q_scale: f32,
    q_sum: i32,
    out: &mut [f32],
) {
    let row_bytes = cols / 4;
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        let row = &bytes[r * row_bytes..][..row_bytes];
        let mut acc = 0i32;
        for (blk, qb) in row.chunks_exact(32).zip(q.chunks_exact(BLOCK)) {
            for (j, &byte) in blk.iter().enumerate() {
                acc += i32::from(byte >> 6) * i32::from(qb[j])
                    + i32::from((byte >> 4) & 3) * i32::from(qb[j + 32])
                    + i32::from((byte >> 2) & 3) * i32::from(qb[j + 64])
                    + i32::from(byte & 3) * i32::from(qb[j + 96]);
            }
        }
        *o = (acc as f32 - q_sum as f32) / q_scale * w_scale;
    }
}

/// Packs ternary values (`-1, 0, 1`, row-major `rows × cols`) and a scale into I2_S bytes
/// (codes, then the scale, then 28 zero bytes). Used to build test models.
pub fn pack(values: &[i8], rows: usize, cols: usize, scale: f32) -> Vec<u8> {
    assert!(cols % BLOCK == 0 && values.len() == rows * cols);
    let mut out = vec![0u8; rows * cols / 4 + 32];
    for (bi, blk) in values.chunks_exact(BLOCK).enumerate() {
        for j in 0..32 {
            let code = |i: usize| ((blk[i] + 1) as u8) & 3;
            out[bi * 32 + j] =
                (code(j) << 6) | (code(j + 32) << 4) | (code(j + 64) << 2) | code(j + 96);
        }
    }
    let at = rows * cols / 4;
    out[at..at + 4].copy_from_slice(&scale.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_matches_bitnet_cpp_rules() {
        let x = [0.5f32, -1.0, 0.25, 0.0, 1.0 / 254.0];
        let mut q = [0i8; 5];
        let (s, sum) = quantize_activations(&x, &mut q);
        assert_eq!(s, 127.0);
        // 63.5 and 0.5 round to even.
        assert_eq!(q, [64, -127, 32, 0, 0]);
        assert_eq!(sum, 64 - 127 + 32);
        let (s0, _) = quantize_activations(&[0.0; 4], &mut [0; 4]);
        assert_eq!(s0, (127.0f64 / 0.00001) as f32);
    }

    #[test]
    fn gemv_equals_the_float_product() {
        let (rows, cols) = (3, 256);
        let w: Vec<i8> = (0..rows * cols)
            .map(|i| ((i * 7 + i / 5) % 3) as i8 - 1)
            .collect();
        let bytes = pack(&w, rows, cols, 0.5);
        assert_eq!(tensor_scale(&bytes, rows, cols).unwrap(), 0.5);
        let x: Vec<f32> = (0..cols).map(|i| ((i * 13) % 17) as f32 - 8.0).collect();
        let mut q = vec![0i8; cols];
        let (s, sum) = quantize_activations(&x, &mut q);
        let mut out = vec![0.0; rows];
        gemv(&bytes, rows, cols, 0.5, &q, s, sum, &mut out);
        for r in 0..rows {
            let want: f64 = (0..cols)
                .map(|c| f64::from(w[r * cols + c]) * f64::from(q[c]))
                .sum::<f64>()
                / f64::from(s)
                * 0.5;
            assert!(
                (f64::from(out[r]) - want).abs() < 1e-4,
                "{} vs {want}",
                out[r]
            );
        }
    }
}
