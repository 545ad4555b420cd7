//! The float element types F32, F16 and BF16: one element per "block", little-endian.
//!
//! Conversions follow ggml exactly:
//! - f32 -> f16 rounds to nearest, ties to even (IEEE 754 binary16; what F16C's
//!   `vcvtps2ph` with rounding mode 0 and ggml's portable fallback both do); NaN stays NaN.
//! - f32 -> bf16 rounds to nearest, ties to even, by adding `0x7fff + lsb` to the f32 bits
//!   and keeping the top 16; a NaN keeps its top bits and gets the quiet bit (0x0040) set.
//!   Subnormals are kept (not flushed).
//! - f16 -> f32 and bf16 -> f32 are exact.

use half::f16;

/// Bytes of one F32 element.
pub const F32_BYTES: usize = 4;
/// Bytes of one F16 element.
pub const F16_BYTES: usize = 2;
/// Bytes of one BF16 element.
pub const BF16_BYTES: usize = 2;

/// f32 -> IEEE binary16 bits, round to nearest even (ggml `GGML_FP32_TO_FP16`).
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// IEEE binary16 bits -> f32 (exact; ggml `GGML_FP16_TO_FP32`).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    f16::from_bits(h).to_f32()
}

/// f32 -> bfloat16 bits exactly as ggml's `ggml_compute_fp32_to_bf16`.
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        // NaN: keep sign and payload top bits, force quiet.
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// bfloat16 bits -> f32 (exact).
#[inline]
pub fn bf16_bits_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Decodes a row of F32 elements (`row.len() == 4 * out.len()`, checked by the caller).
pub(crate) fn dequantize_f32(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(F32_BYTES)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Decodes a row of F16 elements.
pub(crate) fn dequantize_f16(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(F16_BYTES)) {
        *o = f16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// Decodes a row of BF16 elements.
pub(crate) fn dequantize_bf16(row: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(row.chunks_exact(BF16_BYTES)) {
        *o = bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// Encodes a row as F32 (`out.len() == 4 * x.len()`, checked by the caller).
pub(crate) fn quantize_f32(x: &[f32], out: &mut [u8]) {
    for (v, c) in x.iter().zip(out.chunks_exact_mut(F32_BYTES)) {
        c.copy_from_slice(&v.to_le_bytes());
    }
}

/// Encodes a row as F16 (ggml `ggml_fp32_to_fp16_row`).
pub(crate) fn quantize_f16(x: &[f32], out: &mut [u8]) {
    for (v, c) in x.iter().zip(out.chunks_exact_mut(F16_BYTES)) {
        c.copy_from_slice(&f32_to_f16_bits(*v).to_le_bytes());
    }
}

/// Encodes a row as BF16 (ggml `ggml_fp32_to_bf16_row_ref`).
pub(crate) fn quantize_bf16(x: &[f32], out: &mut [u8]) {
    for (v, c) in x.iter().zip(out.chunks_exact_mut(BF16_BYTES)) {
        c.copy_from_slice(&f32_to_bf16_bits(*v).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_known_values_and_ties() {
        assert_eq!(f32_to_f16_bits(1.0), 0x3c00);
        assert_eq!(f32_to_f16_bits(-2.0), 0xc000);
        assert_eq!(f32_to_f16_bits(65504.0), 0x7bff);
        assert_eq!(f32_to_f16_bits(1e6), 0x7c00);
        // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to even (1.0).
        assert_eq!(f32_to_f16_bits(1.0 + f32::powi(2.0, -11)), 0x3c00);
        // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 and 1 + 2^-9: ties to even.
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * f32::powi(2.0, -11)), 0x3c02);
        // Smallest subnormal.
        assert_eq!(f32_to_f16_bits(f32::powi(2.0, -24)), 0x0001);
        assert!(f16_bits_to_f32(f32_to_f16_bits(f32::NAN)).is_nan());
        assert_eq!(f16_bits_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn bf16_known_values_and_ties() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        // 0x3f808000 is halfway between 0x3f80 and 0x3f81: ties to even (0x3f80).
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        // Rounds up to infinity past the largest finite bf16.
        assert_eq!(f32_to_bf16_bits(f32::MAX), 0x7f80);
        // Signalling NaN gets the quiet bit.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0xffa0_0000)), 0xffe0);
        // Subnormals are kept.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x0001_0000)), 0x0001);
        assert_eq!(bf16_bits_to_f32(0xc040), -3.0);
    }
}
