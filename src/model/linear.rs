//! Linear layers: a weight matrix (any supported tensor type) with its optional output
//! scale and bias, and the one entry point per weight kind that multiplies it with a
//! batch of activations. The kernels behind these entry points can be swapped for faster
//! ones without touching the forward pass.
//!
//! The arithmetic follows what ggml does on the CPU for each weight type, because the
//! goal is to reproduce bitnet.cpp's logits:
//!
//! - ternary weights: activations quantized to int8 in the format the weight type's
//!   kernels read (bitnet.cpp's per-row int8 for I2_S, llama.cpp's Q8_K for TQ types),
//!   exact integer dot products, the type's epilogue ([`crate::kernels::scalar`]);
//! - F16 weights: for one row the activations are rounded to f16 first (ggml converts the
//!   right-hand side to the weight's `vec_dot_type`); for two or more rows with a column
//!   count that is a multiple of 8, llamafile's sgemm multiplies the f16 weights with the
//!   f32 activations directly;
//! - BF16 weights: activations rounded to bf16;
//! - F32 weights: f32 throughout.

use std::ops::Range;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::kernels::act::{ActivationFormat, QuantizedActivations};
use crate::kernels::scalar::ternary_gemm;
use crate::quant::ternary::TernaryMatrix;
use crate::quant::TensorType;

/// Ternary types a matmul kernel exists for. (TL1/TL2 weights are repacked at load.)
const TERNARY_KERNEL_TYPES: &[TensorType] = &[
    TensorType::I2_S,
    TensorType::TQ1_0,
    TensorType::TQ2_0,
    TensorType::STQ1_0,
    TensorType::Sherry,
];

/// Where a weight's bytes live.
#[derive(Debug, Clone)]
pub enum WeightBytes {
    /// A byte range of the model file (zero copy).
    File(Range<usize>),
    /// Bytes made at load time (weights repacked from a format no kernel reads directly).
    Owned(Vec<u8>),
}

impl WeightBytes {
    /// The bytes, given the model file's bytes.
    pub fn get<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match self {
            WeightBytes::File(r) => &file[r.clone()],
            WeightBytes::Owned(v) => v,
        }
    }
}

/// A linear layer `y = scale * (W x) + bias`, with `W` of `rows` outputs × `cols` inputs.
#[derive(Debug, Clone)]
pub struct Linear {
    /// The tensor name (for messages).
    pub name: String,
    /// Storage type of `W`.
    pub ty: TensorType,
    /// Output features (ggml ne1).
    pub rows: usize,
    /// Input features (ggml ne0).
    pub cols: usize,
    /// The bytes of `W`.
    pub bytes: WeightBytes,
    /// A per-tensor factor applied to the product (`blk.N.attn_q.scale` in some `bitnet` files).
    pub out_scale: Option<f32>,
    /// A bias added after the scale.
    pub bias: Option<Vec<f32>>,
}

/// Whether [`matmul`] can multiply weights of type `ty`.
pub fn is_supported(ty: TensorType) -> bool {
    matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::BF16)
        || TERNARY_KERNEL_TYPES.contains(&ty)
}

/// Checks that the weight `name` of type `ty` and shape `[cols, rows]` with bytes `data`
/// can be multiplied (type handled, shape allowed by the type, exact byte size, finite
/// scales), with an error naming the tensor otherwise. Called at load so that eval never
/// fails on it.
pub fn check_supported(
    name: &str,
    ty: TensorType,
    cols: usize,
    rows: usize,
    data: &[u8],
) -> Result<()> {
    if !is_supported(ty) {
        return Err(Error::unsupported(format!(
            "tensor '{name}' has type {ty}, which no matmul kernel handles yet"
        )));
    }
    if ty.is_ternary() {
        TernaryMatrix::new(ty, &[cols as u64, rows as u64], data)
            .map_err(|e| e.context(format!("tensor '{name}'")))?;
    }
    Ok(())
}

/// Buffers for the converted forms of a batch of activations, sized at context creation.
#[derive(Debug, Clone, Default)]
pub struct ActivationScratch {
    quant: Vec<QuantizedActivations>,
    rounded: Vec<f32>,
    cols: usize,
}

impl ActivationScratch {
    /// Room for `rows` rows of up to `cols` activations.
    pub fn new(rows: usize, cols: usize) -> ActivationScratch {
        ActivationScratch {
            quant: (0..rows)
                // Q8_K's buffers (per-256 scales and sums) also cover the per-row format.
                .map(|_| QuantizedActivations::with_capacity(ActivationFormat::Q8K, cols))
                .collect(),
            rounded: vec![0.0; rows * cols],
            cols,
        }
    }

    /// Bytes held (approximately, for the quantized rows).
    pub fn memory_bytes(&self) -> usize {
        self.quant.len() * (self.cols * 2 + self.cols / 8) + self.rounded.len() * 4
    }
}

/// Which rounded copy [`ActivationScratch::rounded`] currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounded {
    None,
    F16,
    Bf16,
}

/// A batch of `n` activation rows of `k` floats, bound to the scratch that caches its
/// int8 quantization and its f16/bf16 roundings, so that matrices sharing an input
/// (Q/K/V, gate/up) convert it once.
pub struct LinearInput<'a> {
    x: &'a [f32],
    n: usize,
    k: usize,
    scratch: &'a mut ActivationScratch,
    quantized: Option<ActivationFormat>,
    rounded: Rounded,
}

impl<'a> LinearInput<'a> {
    /// Binds the first `n * k` floats of `x` as `n` rows of `k`.
    pub fn new(x: &'a [f32], n: usize, k: usize, scratch: &'a mut ActivationScratch) -> Self {
        debug_assert!(x.len() >= n * k && scratch.quant.len() >= n && scratch.cols >= k);
        LinearInput {
            x: &x[..n * k],
            n,
            k,
            scratch,
            quantized: None,
            rounded: Rounded::None,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The rows quantized in `format` (computed on first use).
    fn quantized(&mut self, format: ActivationFormat) -> Result<&[QuantizedActivations]> {
        if self.quantized != Some(format) {
            for (r, q) in self.scratch.quant[..self.n].iter_mut().enumerate() {
                q.quantize_into(format, &self.x[r * self.k..][..self.k])?;
            }
            self.quantized = Some(format);
        }
        Ok(&self.scratch.quant[..self.n])
    }

    fn round(&mut self, to: Rounded) -> &[f32] {
        if self.rounded != to {
            let dst = &mut self.scratch.rounded[..self.n * self.k];
            match to {
                Rounded::F16 => {
                    for (d, &s) in dst.iter_mut().zip(self.x) {
                        *d = f16::from_f32(s).to_f32();
                    }
                }
                Rounded::Bf16 => {
                    for (d, &s) in dst.iter_mut().zip(self.x) {
                        *d = bf16::from_f32(s).to_f32();
                    }
                }
                Rounded::None => dst.copy_from_slice(self.x),
            }
            self.rounded = to;
        }
        &self.scratch.rounded[..self.n * self.k]
    }
}

/// `out[r] = w · input[r]` for every row `r` of the batch (`out` holds `n * w.rows`).
pub fn matmul(w: &Linear, file: &[u8], input: &mut LinearInput<'_>, out: &mut [f32]) -> Result<()> {
    if input.k != w.cols {
        return Err(Error::Internal(format!(
            "matmul with '{}': input has {} columns, the weight {}",
            w.name, input.k, w.cols
        )));
    }
    let (n, k, m) = (input.n, input.k, w.rows);
    let out = &mut out[..n * m];
    let bytes = w.bytes.get(file);
    match w.ty {
        TensorType::F32 => {
            for r in 0..n {
                dense_f32_gemv(bytes, m, k, &input.x[r * k..][..k], &mut out[r * m..][..m]);
            }
        }
        TensorType::F16 => {
            // ggml: llamafile's sgemm (f16 weights x f32 activations) for 2+ rows,
            // vec_dot_f16 on f16-rounded activations for one row.
            let x: &[f32] = if n >= 2 && k % 8 == 0 {
                input.x
            } else {
                input.round(Rounded::F16)
            };
            for r in 0..n {
                dense_f16_gemv(bytes, m, k, &x[r * k..][..k], &mut out[r * m..][..m]);
            }
        }
        TensorType::BF16 => {
            let x = input.round(Rounded::Bf16);
            for r in 0..n {
                dense_bf16_gemv(bytes, m, k, &x[r * k..][..k], &mut out[r * m..][..m]);
            }
        }
        ty if TERNARY_KERNEL_TYPES.contains(&ty) => {
            let acts = input.quantized(ActivationFormat::for_type(ty)?)?;
            let matrix = TernaryMatrix {
                ty,
                rows: m,
                cols: k,
                data: bytes,
            };
            ternary_gemm(&matrix, acts, out)?;
        }
        other => {
            return Err(Error::unsupported(format!(
                "tensor '{}' has type {other}, which no matmul kernel handles yet",
                w.name
            )))
        }
    }
    if let Some(s) = w.out_scale {
        out.iter_mut().for_each(|v| *v *= s);
    }
    if let Some(b) = &w.bias {
        for row in out.chunks_exact_mut(m) {
            row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
        }
    }
    Ok(())
}

/// Row `row` of an embedding-like matrix (`rows × cols` of type `ty`), as f32.
pub fn dequantize_row(w: &Linear, file: &[u8], row: usize, out: &mut [f32]) -> Result<()> {
    let k = w.cols;
    if row >= w.rows || out.len() != k {
        return Err(Error::invalid(format!(
            "row {row} of '{}' ({} rows of {k})",
            w.name, w.rows
        )));
    }
    let bytes = w.bytes.get(file);
    match w.ty {
        TensorType::F32 => {
            for (o, b) in out
                .iter_mut()
                .zip(bytes[row * k * 4..][..k * 4].chunks_exact(4))
            {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        TensorType::F16 => {
            for (o, b) in out
                .iter_mut()
                .zip(bytes[row * k * 2..][..k * 2].chunks_exact(2))
            {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        TensorType::BF16 => {
            for (o, b) in out
                .iter_mut()
                .zip(bytes[row * k * 2..][..k * 2].chunks_exact(2))
            {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        other => {
            return Err(Error::unsupported(format!(
                "embedding '{}' has type {other}, which cannot be read row by row yet",
                w.name
            )))
        }
    }
    Ok(())
}

/// Whether [`dequantize_row`] reads type `ty`.
pub fn is_row_readable(ty: TensorType) -> bool {
    matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::BF16)
}

/// f32 weights × f32 activations.
fn dense_f32_gemv(w: &[u8], m: usize, k: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k * 4)).take(m) {
        *o = dot8(
            x,
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
}

/// f16 weights × f32 activations (exact products, f32 sums).
fn dense_f16_gemv(w: &[u8], m: usize, k: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k * 2)).take(m) {
        *o = dot8(
            x,
            row.chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        );
    }
}

/// bf16 weights × f32 activations.
fn dense_bf16_gemv(w: &[u8], m: usize, k: usize, x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k * 2)).take(m) {
        *o = dot8(
            x,
            row.chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        );
    }
}

/// `x · w` in f32 with eight running sums (the shape of ggml's SIMD dot products).
fn dot8(x: &[f32], w: impl Iterator<Item = f32>) -> f32 {
    let mut acc = [0.0f32; 8];
    for (i, (a, b)) in x.iter().zip(w).enumerate() {
        acc[i % 8] += a * b;
    }
    acc.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(ty: TensorType, rows: usize, cols: usize, bytes: Vec<u8>) -> Linear {
        Linear {
            name: "w".into(),
            ty,
            rows,
            cols,
            bytes: WeightBytes::Owned(bytes),
            out_scale: None,
            bias: None,
        }
    }

    #[test]
    fn dense_types_agree_and_round_as_ggml_does() {
        let (m, k) = (3, 16);
        let wf: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let x: Vec<f32> = (0..2 * k).map(|i| 1.0 + i as f32 * 1e-4).collect();
        let f32b: Vec<u8> = wf.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16b: Vec<u8> = wf
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let mut scratch = ActivationScratch::new(2, k);
        let mut a = vec![0.0; 2 * m];
        let mut b = vec![0.0; 2 * m];
        let w32 = linear(TensorType::F32, m, k, f32b);
        let w16 = linear(TensorType::F16, m, k, f16b);
        matmul(
            &w32,
            &[],
            &mut LinearInput::new(&x, 2, k, &mut scratch),
            &mut a,
        )
        .unwrap();
        matmul(
            &w16,
            &[],
            &mut LinearInput::new(&x, 2, k, &mut scratch),
            &mut b,
        )
        .unwrap();
        assert_eq!(a, b, "two rows: f16 weights see f32 activations");
        // One row: the activations are rounded to f16 first.
        let mut c = vec![0.0; m];
        matmul(
            &w16,
            &[],
            &mut LinearInput::new(&x, 1, k, &mut scratch),
            &mut c,
        )
        .unwrap();
        let xr: Vec<f32> = x[..k].iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        let mut d = vec![0.0; m];
        matmul(
            &w32,
            &[],
            &mut LinearInput::new(&xr, 1, k, &mut scratch),
            &mut d,
        )
        .unwrap();
        assert_eq!(c, d);
        assert_ne!(c[..m], a[..m]);
        // Scale and bias.
        let mut w = w32.clone();
        w.out_scale = Some(2.0);
        w.bias = Some(vec![1.0, 2.0, 3.0]);
        let mut e = vec![0.0; m];
        matmul(
            &w,
            &[],
            &mut LinearInput::new(&xr, 1, k, &mut scratch),
            &mut e,
        )
        .unwrap();
        for i in 0..m {
            assert_eq!(e[i], d[i] * 2.0 + (i + 1) as f32);
        }
    }

    #[test]
    fn rows_and_errors() {
        let w = linear(
            TensorType::F16,
            2,
            3,
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
        );
        let mut r = vec![0.0; 3];
        dequantize_row(&w, &[], 1, &mut r).unwrap();
        assert_eq!(r, vec![4.0, 5.0, 6.0]);
        assert!(dequantize_row(&w, &[], 2, &mut r).is_err());
        assert!(check_supported("t", TensorType::Q4_K, 256, 1, &[0; 144]).is_err());
        assert!(check_supported("t", TensorType::I2_S, 100, 1, &[0; 57]).is_err());
        assert!(check_supported("t", TensorType::I2_S, 256, 1, &[0; 95]).is_err());
        assert!(check_supported("t", TensorType::I2_S, 256, 1, &[0; 96]).is_ok());
        let mut nan = vec![0u8; 96];
        nan[64..68].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(check_supported("t", TensorType::I2_S, 256, 1, &nan).is_err());
    }
}
