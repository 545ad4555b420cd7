//! The dense (non-ternary) types that hold embeddings and output heads: F32, F16, BF16,
//! Q8_0, Q4_0 and Q6_K, plus Q8_K, the activation type Q6_K is dotted with. One entry
//! point per job, dispatching on [`TensorType`]:
//!
//! - [`row_bytes`]: bytes of a row of `n` elements;
//! - [`dequantize_row`]: bytes -> f32 (embedding lookup; ggml's `to_float`);
//! - [`quantize_row`]: f32 -> bytes with ggml's reference quantizers (`from_float_ref`),
//!   bit for bit, for writing model files;
//! - [`vec_dot_type`]: the type ggml converts activations to before a dot product with a
//!   weight of this type (the kernels in `kernels::scalar_dense` use it).
//!
//! The byte layout of each type is documented in its own module ([`super::float`],
//! [`super::q8_0`], [`super::q4_0`], [`super::q6_k`]).

use super::float;
use super::q4_0::{self, BlockQ4_0, BLOCK_Q4_0_BYTES, QK4_0};
use super::q6_k::{self, BlockQ6K, BlockQ8K, BLOCK_Q6_K_BYTES, BLOCK_Q8_K_BYTES, QK_K};
use super::q8_0::{self, BlockQ8_0, BLOCK_Q8_0_BYTES, QK8_0};
use super::TensorType;
use crate::error::{Error, Result};

/// The dense types this module reads and writes (weights and the Q8_K activation type).
pub const DENSE_TYPES: &[TensorType] = &[
    TensorType::F32,
    TensorType::F16,
    TensorType::BF16,
    TensorType::Q8_0,
    TensorType::Q4_0,
    TensorType::Q6_K,
    TensorType::Q8_K,
];

/// Whether [`row_bytes`], [`dequantize_row`] and [`quantize_row`] handle `ty`.
pub fn is_dense(ty: TensorType) -> bool {
    DENSE_TYPES.contains(&ty)
}

/// (elements per block, bytes per block) of a dense type.
fn block_shape(ty: TensorType) -> Result<(usize, usize)> {
    Ok(match ty {
        TensorType::F32 => (1, float::F32_BYTES),
        TensorType::F16 => (1, float::F16_BYTES),
        TensorType::BF16 => (1, float::BF16_BYTES),
        TensorType::Q8_0 => (QK8_0, BLOCK_Q8_0_BYTES),
        TensorType::Q4_0 => (QK4_0, BLOCK_Q4_0_BYTES),
        TensorType::Q6_K => (QK_K, BLOCK_Q6_K_BYTES),
        TensorType::Q8_K => (QK_K, BLOCK_Q8_K_BYTES),
        other => {
            return Err(Error::unsupported(format!(
                "{other} is not a dense type (dense types: {})",
                DENSE_TYPES
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    })
}

/// Bytes of one row of `n` elements of type `ty`. Errors when `ty` is not dense, when `n`
/// is not a multiple of the block size, or on overflow.
pub fn row_bytes(ty: TensorType, n: usize) -> Result<usize> {
    let (block, bytes) = block_shape(ty)?;
    if n % block != 0 {
        return Err(Error::invalid(format!(
            "a {ty} row needs a multiple of {block} elements, got {n}"
        )));
    }
    (n / block)
        .checked_mul(bytes)
        .ok_or_else(|| Error::invalid(format!("a {ty} row of {n} elements overflows")))
}

/// The type ggml converts f32 activations to before calling this weight type's dot
/// product (`type_traits[ty].vec_dot_type`): F32 -> F32, F16 -> F16, BF16 -> BF16,
/// Q8_0 and Q4_0 -> Q8_0, Q6_K -> Q8_K.
pub fn vec_dot_type(ty: TensorType) -> Result<TensorType> {
    Ok(match ty {
        TensorType::F32 => TensorType::F32,
        TensorType::F16 => TensorType::F16,
        TensorType::BF16 => TensorType::BF16,
        TensorType::Q8_0 | TensorType::Q4_0 => TensorType::Q8_0,
        TensorType::Q6_K => TensorType::Q8_K,
        other => {
            return Err(Error::unsupported(format!(
                "no dense dot product for {other} (supported weights: F32, F16, BF16, Q8_0, Q4_0, Q6_K)"
            )))
        }
    })
}

/// Checks that `bytes` holds exactly one row of `n` elements of `ty`.
fn check_row(ty: TensorType, n: usize, bytes: usize) -> Result<()> {
    let want = row_bytes(ty, n)?;
    if bytes != want {
        return Err(Error::invalid(format!(
            "a {ty} row of {n} elements takes {want} bytes, got a buffer of {bytes}"
        )));
    }
    Ok(())
}

/// Decodes one row of `out.len()` elements of type `ty` from `row` (exactly
/// [`row_bytes`]`(ty, out.len())` bytes) into f32, as ggml's `to_float` does.
pub fn dequantize_row(ty: TensorType, row: &[u8], out: &mut [f32]) -> Result<()> {
    check_row(ty, out.len(), row.len())?;
    match ty {
        TensorType::F32 => float::dequantize_f32(row, out),
        TensorType::F16 => float::dequantize_f16(row, out),
        TensorType::BF16 => float::dequantize_bf16(row, out),
        TensorType::Q8_0 => {
            for (b, o) in row
                .chunks_exact(BLOCK_Q8_0_BYTES)
                .zip(out.chunks_exact_mut(QK8_0))
            {
                let blk = BlockQ8_0::from_bytes(b.try_into().expect("chunk size"));
                q8_0::dequantize_block(&blk, o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q4_0 => {
            for (b, o) in row
                .chunks_exact(BLOCK_Q4_0_BYTES)
                .zip(out.chunks_exact_mut(QK4_0))
            {
                let blk = BlockQ4_0::from_bytes(b.try_into().expect("chunk size"));
                q4_0::dequantize_block(&blk, o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q6_K => {
            for (b, o) in row
                .chunks_exact(BLOCK_Q6_K_BYTES)
                .zip(out.chunks_exact_mut(QK_K))
            {
                let blk = BlockQ6K::from_bytes(b.try_into().expect("chunk size"));
                q6_k::dequantize_block(&blk, o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q8_K => {
            for (b, o) in row
                .chunks_exact(BLOCK_Q8_K_BYTES)
                .zip(out.chunks_exact_mut(QK_K))
            {
                let blk = BlockQ8K::from_bytes(b.try_into().expect("chunk size"));
                for (v, &q) in o.iter_mut().zip(&blk.qs) {
                    *v = blk.d * q as f32;
                }
            }
        }
        _ => unreachable!("check_row accepted only dense types"),
    }
    Ok(())
}

/// Encodes one row `x` as type `ty` into `out` (exactly [`row_bytes`]`(ty, x.len())`
/// bytes) with ggml's reference quantizer (`quantize_row_*_ref`, `ggml_fp32_to_fp16_row`,
/// `ggml_fp32_to_bf16_row_ref`), bit for bit. Q6_K follows the FMA-contracted build of
/// `quantize_row_q6_K_ref` (`q6_k::quantize_block_ref_fma`: clang/gcc with FMA, i.e.
/// bitnet.cpp's and llama.cpp's default native builds); `q6_k::quantize_block_ref` gives
/// the unfused variant. F32/F16/BF16 accept any value; the block
/// types (Q8_0, Q4_0, Q6_K, Q8_K) reject NaN and infinities with an error naming the
/// first bad element.
pub fn quantize_row(ty: TensorType, x: &[f32], out: &mut [u8]) -> Result<()> {
    check_row(ty, x.len(), out.len())?;
    if !matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::BF16) {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "cannot quantize a non-finite value ({}) at element {i} to {ty}",
                x[i]
            )));
        }
    }
    match ty {
        TensorType::F32 => float::quantize_f32(x, out),
        TensorType::F16 => float::quantize_f16(x, out),
        TensorType::BF16 => float::quantize_bf16(x, out),
        TensorType::Q8_0 => {
            for (v, o) in x
                .chunks_exact(QK8_0)
                .zip(out.chunks_exact_mut(BLOCK_Q8_0_BYTES))
            {
                q8_0::quantize_block_ref(v.try_into().expect("chunk size"))
                    .to_bytes(o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q4_0 => {
            for (v, o) in x
                .chunks_exact(QK4_0)
                .zip(out.chunks_exact_mut(BLOCK_Q4_0_BYTES))
            {
                q4_0::quantize_block_ref(v.try_into().expect("chunk size"))
                    .to_bytes(o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q6_K => {
            for (v, o) in x
                .chunks_exact(QK_K)
                .zip(out.chunks_exact_mut(BLOCK_Q6_K_BYTES))
            {
                q6_k::quantize_block_ref_fma(v.try_into().expect("chunk size"))
                    .to_bytes(o.try_into().expect("chunk size"));
            }
        }
        TensorType::Q8_K => {
            for (v, o) in x
                .chunks_exact(QK_K)
                .zip(out.chunks_exact_mut(BLOCK_Q8_K_BYTES))
            {
                q6_k::quantize_block_q8_k(v.try_into().expect("chunk size"))
                    .to_bytes(o.try_into().expect("chunk size"));
            }
        }
        _ => unreachable!("check_row accepted only dense types"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(row_bytes(TensorType::F32, 3).unwrap(), 12);
        assert_eq!(row_bytes(TensorType::BF16, 3).unwrap(), 6);
        assert_eq!(row_bytes(TensorType::Q8_0, 64).unwrap(), 68);
        assert_eq!(row_bytes(TensorType::Q4_0, 64).unwrap(), 36);
        assert_eq!(row_bytes(TensorType::Q6_K, 512).unwrap(), 420);
        assert_eq!(row_bytes(TensorType::Q8_K, 256).unwrap(), 292);
        for &t in DENSE_TYPES {
            let info = t.info();
            let n = info.block_size as usize * 3;
            assert_eq!(
                row_bytes(t, n).unwrap() as u64,
                t.nbytes(&[n as u64]).unwrap(),
                "{t}"
            );
        }
        assert!(row_bytes(TensorType::Q8_0, 33).is_err());
        assert!(row_bytes(TensorType::Q6_K, 128).is_err());
        assert!(row_bytes(TensorType::I2_S, 128).is_err());
        assert!(row_bytes(TensorType::F32, usize::MAX).is_err());
    }

    #[test]
    fn bad_buffers_are_errors() {
        let mut out = vec![0f32; 32];
        assert!(dequantize_row(TensorType::Q8_0, &[0u8; 33], &mut out).is_err());
        assert!(dequantize_row(TensorType::TL2, &[0u8; 34], &mut out).is_err());
        let mut bytes = vec![0u8; 34];
        assert!(quantize_row(TensorType::Q8_0, &[0.0; 31], &mut bytes).is_err());
        let mut x = [0.0f32; 32];
        x[5] = f32::NAN;
        let e = quantize_row(TensorType::Q8_0, &x, &mut bytes).unwrap_err();
        assert!(e.to_string().contains("element 5"), "{e}");
        x[5] = f32::INFINITY;
        assert!(quantize_row(TensorType::Q4_0, &x, &mut bytes[..18]).is_err());
        let mut h = vec![0u8; 64];
        quantize_row(TensorType::F16, &x, &mut h).unwrap();
        assert_eq!(&h[10..12], &[0x00, 0x7c]);
        assert!(vec_dot_type(TensorType::TQ2_0).is_err());
    }
}
