//! Linear layers: a weight matrix (any supported tensor type) with its optional output
//! scale and bias, and the one entry point per weight kind that multiplies it with a
//! batch of activations. The kernels behind these entry points can be swapped for faster
//! ones without touching the forward pass.
//!
//! The arithmetic follows what ggml does on the CPU for each weight type, because the
//! goal is to reproduce bitnet.cpp's logits:
//!
//! - ternary weights: activations quantized to int8 in the format the weight type's
//!   kernels read (bitnet.cpp's per-row int8 for I2_S and Sherry, llama.cpp's Q8_K for
//!   the TQ types), exact integer dot products, the type's epilogue
//!   ([`crate::kernels::scalar`]);
//! - dense weights (F32, F16, BF16, Q8_0, Q4_0, Q6_K): activations converted to the
//!   type's `vec_dot_type` first ([`crate::kernels::scalar_dense`]), except where
//!   bitnet.cpp's x86 build hands the product to llamafile's sgemm (F32 and F16 weights,
//!   two or more rows, a column count that is a multiple of 16), which multiplies the f32
//!   activations as they are. F32 and F16 sums run in ggml's order
//!   ([`super::numerics::dot_fused`], [`super::numerics::dot_exact_products`],
//!   [`super::numerics::dot_tinyblas`]): the f16 rounding of the next one-token activation
//!   depends on their last bit.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::kernels::act::{ActivationFormat, QuantizedActivations};
use crate::kernels::scalar::check_operands;
use crate::kernels::scalar_dense::{check_converted, DenseActivations};
use crate::kernels::table::{FloatRowDotFn, PrepareFn};
use crate::kernels::{self, Workers};
use crate::quant::dense::{self, row_bytes, vec_dot_type};
use crate::quant::float::{f16_bits_to_f32, f32_to_f16_bits};
use crate::quant::i2s;
use crate::quant::ternary::{pack_ternary, unpack_ternary, TernaryMatrix};
use crate::quant::TensorType;

/// Ternary types a matmul kernel exists for. (TL1/TL2 weights are repacked at load.)
const TERNARY_KERNEL_TYPES: &[TensorType] = &[
    TensorType::I2_S,
    TensorType::TQ1_0,
    TensorType::TQ2_0,
    TensorType::STQ1_0,
    TensorType::Sherry,
];

/// Dense weight types a matmul kernel exists for.
const DENSE_KERNEL_TYPES: &[TensorType] = &[
    TensorType::F32,
    TensorType::F16,
    TensorType::BF16,
    TensorType::Q8_0,
    TensorType::Q4_0,
    TensorType::Q6_K,
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
    /// Columns of the matrix as stored in `bytes`, which the kernels read: `cols`, except
    /// for weights repacked at load whose rows were zero-padded to the new type's block
    /// ([`repack_to_i2s`]); their activations are zero-padded to the same length before
    /// the kernels see them, which leaves every product unchanged.
    pub padded_cols: usize,
    /// The bytes of `W`.
    pub bytes: WeightBytes,
    /// A per-tensor factor applied to the product (`blk.N.attn_q.scale` in some `bitnet` files).
    pub out_scale: Option<f32>,
    /// A bias added after the scale.
    pub bias: Option<Vec<f32>>,
}

/// Whether weights of type `ty` are repacked at load (into I2_S) because no kernel reads
/// their layout: bitnet.cpp's TL1 and TL2, whose tiling depends on codegen parameters.
pub fn needs_repack(ty: TensorType) -> bool {
    matches!(ty, TensorType::TL1 | TensorType::TL2)
}

/// Repacks `rows x cols` weights of type `ty` (TL1 or TL2, see [`needs_repack`]) into
/// I2_S with the same ternary values and scale, each row padded with zero weights to a
/// multiple of I2_S's 128-column block. Returns the I2_S bytes and the padded column
/// count (`cols` when it is already a multiple of 128, as in every shape but the 3B
/// model's FFN down projection, 8640 columns).
///
/// bitnet.cpp's TL2 and I2_S results are bitwise equal (both use per-row int8
/// activations and one f32 scale), and zero weights against zero activations add nothing
/// to the exact integer sums, so the padded product is the unpadded one.
pub fn repack_to_i2s(
    ty: TensorType,
    cols: usize,
    rows: usize,
    raw: &[u8],
) -> Result<(Vec<u8>, usize)> {
    if !needs_repack(ty) {
        return Err(Error::Internal(format!("{ty} weights are not repacked")));
    }
    let w = unpack_ternary(ty, &[cols as u64, rows as u64], raw)?;
    let padded_cols = cols.div_ceil(i2s::BLOCK_WEIGHTS) * i2s::BLOCK_WEIGHTS;
    let packed = if padded_cols == cols {
        pack_ternary(TensorType::I2_S, &w)?
    } else {
        pack_ternary(TensorType::I2_S, &w.with_zero_columns(padded_cols)?)?
    };
    Ok((packed, padded_cols))
}

/// Whether [`matmul`] can multiply weights of type `ty`.
pub fn is_supported(ty: TensorType) -> bool {
    DENSE_KERNEL_TYPES.contains(&ty) || TERNARY_KERNEL_TYPES.contains(&ty)
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
    let ctx = || format!("tensor '{name}'");
    if ty.is_ternary() {
        TernaryMatrix::new(ty, &[cols as u64, rows as u64], data).map_err(|e| e.context(ctx()))?;
    } else {
        let want = row_bytes(ty, cols).map_err(|e| e.context(ctx()))? as u64 * rows as u64;
        if data.len() as u64 != want {
            return Err(Error::format(format!(
                "tensor '{name}': {rows} rows of {cols} {ty} take {want} bytes, got {}",
                data.len()
            )));
        }
    }
    Ok(())
}

/// Buffers for the converted forms of a batch of activations, sized at context creation
/// so that evaluation allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct ActivationScratch {
    /// Per row, int8 activations for the ternary kernels.
    quant: Vec<QuantizedActivations>,
    /// Per `vec_dot_type` in use, per row, activations converted for the dense kernels.
    dense: Vec<(TensorType, Vec<DenseActivations>)>,
    /// The rows rounded to f16 (as f32), for F16 weights.
    rounded_f16: Vec<f32>,
    rows: usize,
    cols: usize,
    /// The widest quantized row (`cols`, or more for zero-padded weights).
    quant_cols: usize,
}

impl ActivationScratch {
    /// Room for `rows` rows of up to `cols` activations, multiplied with the weights
    /// `linears` (their dense types decide which converted forms are kept; the quantized
    /// rows also have room for their padded column counts).
    pub fn new<'a>(
        rows: usize,
        cols: usize,
        linears: impl Iterator<Item = &'a Linear>,
    ) -> Result<ActivationScratch> {
        let mut dense: Vec<(TensorType, Vec<DenseActivations>)> = Vec::new();
        let linears: Vec<&Linear> = linears.collect();
        let quant_cols = linears
            .iter()
            .filter(|w| w.ty.is_ternary())
            .map(|w| w.padded_cols)
            .fold(cols, usize::max);
        // Q8_K's buffers (per-256 scales and sums) also cover the per-row format.
        let mut quant: Vec<QuantizedActivations> = (0..rows)
            .map(|_| QuantizedActivations::with_capacity(ActivationFormat::Q8K, quant_cols))
            .collect();
        for w in linears.iter().filter(|w| w.ty.is_ternary()) {
            // Let the kernels' prepare hooks size their tables for the widest row.
            if let Some(p) = kernels::table().ternary(w.ty).and_then(|k| k.prepare) {
                let zeros = vec![0.0f32; w.cols];
                let format = ActivationFormat::for_type(w.ty)?;
                for q in quant.iter_mut() {
                    q.quantize_padded_into(format, &zeros, w.padded_cols)?;
                    p(w.padded_cols, q);
                }
            }
        }
        for w in linears.into_iter().filter(|w| !w.ty.is_ternary()) {
            let vt = vec_dot_type(w.ty)?;
            let slot = match dense.iter().position(|(t, _)| *t == vt) {
                Some(i) => i,
                None => {
                    dense.push((vt, (0..rows).map(|_| DenseActivations::new()).collect()));
                    dense.len() - 1
                }
            };
            // Size each buffer for the widest row it will hold.
            let zeros = vec![0.0f32; w.cols];
            for a in dense[slot].1.iter_mut() {
                if a.cols() < w.cols {
                    a.convert(w.ty, &zeros)?;
                }
            }
        }
        Ok(ActivationScratch {
            quant,
            dense,
            rounded_f16: vec![0.0; rows * cols],
            rows,
            cols,
            quant_cols,
        })
    }

    /// Bytes held (approximately).
    pub fn memory_bytes(&self) -> usize {
        self.quant.len() * (self.quant_cols * 2 + self.quant_cols / 8)
            + self.dense.len() * self.rows * self.cols * 4
    }
}

/// A batch of `n` activation rows of `k` floats, bound to the scratch that caches their
/// converted forms, so that matrices sharing an input (Q/K/V, gate/up) convert it once.
pub struct LinearInput<'a> {
    x: &'a [f32],
    n: usize,
    k: usize,
    scratch: &'a mut ActivationScratch,
    /// The format and (padded) length the quantized rows hold this input in.
    quantized: Option<(ActivationFormat, usize)>,
    /// The type whose prepare hook last ran on the quantized rows.
    prepared: Option<TensorType>,
    /// Bit `i` set: `scratch.dense[i]` holds this input.
    converted: u32,
    rounded_f16: bool,
}

impl<'a> LinearInput<'a> {
    /// Binds the first `n * k` floats of `x` as `n` rows of `k`.
    pub fn new(x: &'a [f32], n: usize, k: usize, scratch: &'a mut ActivationScratch) -> Self {
        debug_assert!(x.len() >= n * k && n <= scratch.rows && k <= scratch.cols);
        LinearInput {
            x: &x[..n * k],
            n,
            k,
            scratch,
            quantized: None,
            prepared: None,
            converted: 0,
            rounded_f16: false,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The rows quantized in `format`, zero-padded to `len` values (computed on first
    /// use).
    fn quantized(
        &mut self,
        format: ActivationFormat,
        len: usize,
    ) -> Result<&[QuantizedActivations]> {
        if self.quantized != Some((format, len)) {
            if len > self.scratch.quant_cols {
                return Err(Error::Internal(format!(
                    "activation rows of {len} values exceed the scratch's {}",
                    self.scratch.quant_cols
                )));
            }
            for (r, q) in self.scratch.quant[..self.n].iter_mut().enumerate() {
                q.quantize_padded_into(format, &self.x[r * self.k..][..self.k], len)?;
            }
            self.quantized = Some((format, len));
            self.prepared = None;
        }
        Ok(&self.scratch.quant[..self.n])
    }

    /// The rows quantized for weights of type `ty` with `cols` (padded) columns and, when
    /// its kernel has a prepare hook, prepared for it (each computed on first use).
    fn prepared(
        &mut self,
        ty: TensorType,
        cols: usize,
        prepare: Option<PrepareFn>,
    ) -> Result<&[QuantizedActivations]> {
        self.quantized(ActivationFormat::for_type(ty)?, cols)?;
        if let Some(p) = prepare {
            if self.prepared != Some(ty) {
                for q in self.scratch.quant[..self.n].iter_mut() {
                    p(cols, q);
                }
                self.prepared = Some(ty);
            }
        }
        Ok(&self.scratch.quant[..self.n])
    }

    /// The rows rounded to f16 values (computed on first use).
    fn rounded_f16(&mut self) -> &[f32] {
        let dst = &mut self.scratch.rounded_f16[..self.n * self.k];
        if !self.rounded_f16 {
            if !kernels::simd::round_to_f16(self.x, dst) {
                for (d, &x) in dst.iter_mut().zip(self.x) {
                    *d = f16_bits_to_f32(f32_to_f16_bits(x));
                }
            }
            self.rounded_f16 = true;
        }
        dst
    }

    /// The rows converted for weights of type `ty` (computed on first use).
    fn converted(&mut self, ty: TensorType) -> Result<&[DenseActivations]> {
        let vt = vec_dot_type(ty)?;
        let slot = self
            .scratch
            .dense
            .iter()
            .position(|(t, _)| *t == vt)
            .ok_or_else(|| Error::Internal(format!("no activation buffers for {vt}")))?;
        let rows = &mut self.scratch.dense[slot].1[..self.n];
        if self.converted & (1 << slot) == 0 {
            for (r, a) in rows.iter_mut().enumerate() {
                a.convert(ty, &self.x[r * self.k..][..self.k])?;
            }
            self.converted |= 1 << slot;
        }
        Ok(&self.scratch.dense[slot].1[..self.n])
    }
}

/// `out[r] = w · input[r]` for every row `r` of the batch (`out` holds `n * w.rows`),
/// through the dispatch table's kernels, split by rows among `workers`' threads.
pub fn matmul(
    w: &Linear,
    file: &[u8],
    input: &mut LinearInput<'_>,
    workers: &Workers,
    out: &mut [f32],
) -> Result<()> {
    if input.k != w.cols {
        return Err(Error::Internal(format!(
            "matmul with '{}': input has {} columns, the weight {}",
            w.name, input.k, w.cols
        )));
    }
    let (n, k, m) = (input.n, input.k, w.rows);
    let out = &mut out[..n * m];
    let bytes = w.bytes.get(file);
    let table = kernels::table();
    match w.ty {
        TensorType::F32 | TensorType::F16 => {
            let f16 = w.ty == TensorType::F16;
            let rb = if f16 { 2 * k } else { 4 * k };
            check_dense_bytes(w, bytes, rb)?;
            let d = &table.dense;
            // llamafile's sgemm multiplies batches with the f32 activations as they are;
            // one-token F16 products see activations rounded to f16 (exact products).
            let (dot, xs): (FloatRowDotFn, &[f32]) = match (n >= 2 && k % 16 == 0, f16) {
                (true, true) => (d.f16_tinyblas, input.x),
                (true, false) => (d.f32_tinyblas, input.x),
                (false, true) => (d.f16_exact, input.rounded_f16()),
                (false, false) => (d.f32_fused, input.x),
            };
            workers.for_row_chunks(m, n, out, &|rows, o| {
                let nr = rows.len();
                for (x, o) in xs.chunks_exact(k).zip(o.chunks_exact_mut(nr)) {
                    for (o, r) in o.iter_mut().zip(rows.clone()) {
                        *o = dot(x, &bytes[r * rb..][..rb]);
                    }
                }
            });
        }
        ty if DENSE_KERNEL_TYPES.contains(&ty) => {
            let rb = row_bytes(ty, k)?;
            check_dense_bytes(w, bytes, rb)?;
            let dot = table.dense.converted_dot(ty).ok_or_else(|| {
                Error::Internal(format!("no dense row dot for {ty} in the dispatch table"))
            })?;
            let acts = input.converted(ty)?;
            for a in acts {
                check_converted(ty, k, a)?;
            }
            workers.for_row_chunks(m, n, out, &|rows, o| {
                let nr = rows.len();
                for (a, o) in acts.iter().zip(o.chunks_exact_mut(nr)) {
                    for (o, r) in o.iter_mut().zip(rows.clone()) {
                        *o = dot(&bytes[r * rb..][..rb], a);
                    }
                }
            });
        }
        ty if TERNARY_KERNEL_TYPES.contains(&ty) => {
            let kernel = table
                .ternary(ty)
                .ok_or_else(|| Error::Internal(format!("no {ty} kernel in the dispatch table")))?;
            let acts = input.prepared(ty, w.padded_cols, kernel.prepare)?;
            // Shape, size and scales were validated at load (`check_supported`);
            // validating again would read every block scale of the matrix per product.
            let matrix = TernaryMatrix {
                ty,
                rows: m,
                cols: w.padded_cols,
                data: bytes,
            };
            for a in acts {
                check_operands(&matrix, a, m)?;
            }
            let gemm = kernel.gemm;
            workers.for_row_chunks(m, n, out, &|rows, o| gemm(&matrix, acts, rows, o));
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

/// Checks that a dense weight holds `rows` rows of `rb` bytes.
fn check_dense_bytes(w: &Linear, bytes: &[u8], rb: usize) -> Result<()> {
    if bytes.len() != rb * w.rows {
        return Err(Error::Internal(format!(
            "tensor '{}': {} bytes for {} rows of {rb}",
            w.name,
            bytes.len(),
            w.rows
        )));
    }
    Ok(())
}

/// Row `row` of an embedding-like matrix (`rows × cols` of a dense type), as f32.
pub fn dequantize_row(w: &Linear, file: &[u8], row: usize, out: &mut [f32]) -> Result<()> {
    let k = w.cols;
    if row >= w.rows || out.len() != k {
        return Err(Error::invalid(format!(
            "row {row} of '{}' ({} rows of {k})",
            w.name, w.rows
        )));
    }
    let rb = row_bytes(w.ty, k)?;
    dense::dequantize_row(w.ty, &w.bytes.get(file)[row * rb..][..rb], out)
}

/// Whether [`dequantize_row`] reads type `ty`.
pub fn is_row_readable(ty: TensorType) -> bool {
    DENSE_KERNEL_TYPES.contains(&ty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    fn linear(ty: TensorType, rows: usize, cols: usize, bytes: Vec<u8>) -> Linear {
        Linear {
            name: "w".into(),
            ty,
            rows,
            cols,
            padded_cols: cols,
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
        let w32 = linear(TensorType::F32, m, k, f32b);
        let w16 = linear(TensorType::F16, m, k, f16b);
        let mut scratch = ActivationScratch::new(2, k, [&w32, &w16].into_iter()).unwrap();
        let mut a = vec![0.0; 2 * m];
        let mut b = vec![0.0; 2 * m];
        matmul(
            &w32,
            &[],
            &mut LinearInput::new(&x, 2, k, &mut scratch),
            &Workers::single(),
            &mut a,
        )
        .unwrap();
        matmul(
            &w16,
            &[],
            &mut LinearInput::new(&x, 2, k, &mut scratch),
            &Workers::single(),
            &mut b,
        )
        .unwrap();
        // Two rows: f16 weights see the f32 activations (sums in another order).
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{a:?} vs {b:?}");
        }
        // One row: the activations are rounded to f16 first.
        let mut c = vec![0.0; m];
        matmul(
            &w16,
            &[],
            &mut LinearInput::new(&x, 1, k, &mut scratch),
            &Workers::single(),
            &mut c,
        )
        .unwrap();
        let xr: Vec<f32> = x[..k].iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        let mut d = vec![0.0; m];
        matmul(
            &w32,
            &[],
            &mut LinearInput::new(&xr, 1, k, &mut scratch),
            &Workers::single(),
            &mut d,
        )
        .unwrap();
        assert_eq!(c, d);
        assert!(
            (c[0] - a[0]).abs() > 1e-4,
            "rounding to f16 shows: {c:?} vs {a:?}"
        );
        // Scale and bias.
        let mut w = w32.clone();
        w.out_scale = Some(2.0);
        w.bias = Some(vec![1.0, 2.0, 3.0]);
        let mut e = vec![0.0; m];
        matmul(
            &w,
            &[],
            &mut LinearInput::new(&xr, 1, k, &mut scratch),
            &Workers::single(),
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
