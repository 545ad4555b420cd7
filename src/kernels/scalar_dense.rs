//! Scalar reference GEMV for the dense types of embeddings and output heads (F32, F16,
//! BF16, Q8_0, Q4_0, Q6_K), computed the way ggml computes a `mul_mat` on the CPU:
//!
//! 1. the f32 activation row is converted once to the weight type's `vec_dot_type`
//!    ([`DenseActivations::convert`]): F16 for F16 weights (round to nearest even), BF16 for
//!    BF16, Q8_0 for Q8_0 and Q4_0 (x86 `quantize_row_q8_0`: multiplier 127/amax, ties to
//!    even), Q8_K for Q6_K, unchanged f32 for F32;
//! 2. each weight row is dotted with the converted row by the type's `vec_dot`, following
//!    ggml's portable C code: integer sums inside a block, then the block's
//!    `sumi * (d_w * d_x)` accumulated in f32 (Q8_0; Q4_0 as `sumi * d_w * d_x`); Q6_K in
//!    eight i32 lanes `l = element % 8` and eight f32 lanes; F32/F16/BF16 products in f32
//!    summed in f64.
//!
//! The activation conversion is bit-exact with bitnet.cpp on x86, so the integer part of
//! every dot is too; the last f32 rounding of a dot depends on the summation order, which
//! ggml itself varies between its AVX2, AVX-512 and llamafile paths (differences of a few
//! ulp of the result). Fast kernels must match the integer parts exactly.

use crate::error::{Error, Result};
use crate::model::numerics;
use crate::quant::dense::{row_bytes, vec_dot_type};
use crate::quant::float::{bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits};
use crate::quant::q4_0::{BlockQ4_0, BLOCK_Q4_0_BYTES};
use crate::quant::q6_k::{self, BlockQ6K, BlockQ8K, BLOCK_Q6_K_BYTES, QK_K};
use crate::quant::q8_0::{self, BlockQ8_0, BLOCK_Q8_0_BYTES, QK8_0};
use crate::quant::TensorType;

/// The converted activation row, in the form one weight type's dot product wants.
#[derive(Debug, Clone, PartialEq)]
#[allow(non_camel_case_types)]
enum Converted {
    /// Nothing converted yet.
    Empty,
    F32(Vec<f32>),
    /// f16 bits.
    F16(Vec<u16>),
    /// bf16 bits.
    BF16(Vec<u16>),
    Q8_0(Vec<BlockQ8_0>),
    Q8_K(Vec<BlockQ8K>),
}

/// One activation row converted to a weight type's `vec_dot_type`, reusable across
/// calls (its buffers are kept): convert once per token, then dot it with any number of
/// weight rows, from any number of threads (it is only read).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseActivations {
    data: Converted,
    cols: usize,
}

impl Default for DenseActivations {
    fn default() -> Self {
        Self::new()
    }
}

impl DenseActivations {
    /// An empty buffer; [`convert`](Self::convert) fills it.
    pub fn new() -> Self {
        DenseActivations {
            data: Converted::Empty,
            cols: 0,
        }
    }

    /// Converts `x` for a dot product with weights of type `weight_ty`, reusing this
    /// buffer's memory when it already holds the same kind. Errors when `weight_ty` has no
    /// dense dot product or `x.len()` is not a multiple of its block size.
    pub fn convert(&mut self, weight_ty: TensorType, x: &[f32]) -> Result<()> {
        let vt = vec_dot_type(weight_ty)?;
        // Checks the block-size rule for both the weight and the activation type.
        row_bytes(weight_ty, x.len())?;
        row_bytes(vt, x.len())?;
        let old = std::mem::replace(&mut self.data, Converted::Empty);
        self.data = match vt {
            TensorType::F32 => {
                let mut v = match old {
                    Converted::F32(v) => v,
                    _ => Vec::new(),
                };
                v.clear();
                v.extend_from_slice(x);
                Converted::F32(v)
            }
            TensorType::F16 => {
                let mut v = match old {
                    Converted::F16(v) => v,
                    _ => Vec::new(),
                };
                v.clear();
                v.extend(x.iter().map(|&f| f32_to_f16_bits(f)));
                Converted::F16(v)
            }
            TensorType::BF16 => {
                let mut v = match old {
                    Converted::BF16(v) => v,
                    _ => Vec::new(),
                };
                v.clear();
                v.extend(x.iter().map(|&f| f32_to_bf16_bits(f)));
                Converted::BF16(v)
            }
            TensorType::Q8_0 => {
                let mut v = match old {
                    Converted::Q8_0(v) => v,
                    _ => Vec::new(),
                };
                v.clear();
                v.extend(
                    x.chunks_exact(QK8_0)
                        .map(|c| q8_0::quantize_block_x86(c.try_into().expect("chunk size"))),
                );
                Converted::Q8_0(v)
            }
            TensorType::Q8_K => {
                let mut v = match old {
                    Converted::Q8_K(v) => v,
                    _ => Vec::new(),
                };
                v.clear();
                v.extend(
                    x.chunks_exact(QK_K)
                        .map(|c| q6_k::quantize_block_q8_k(c.try_into().expect("chunk size"))),
                );
                Converted::Q8_K(v)
            }
            other => unreachable!("vec_dot_type returned {other}"),
        };
        self.cols = x.len();
        Ok(())
    }

    /// Number of elements converted (0 before the first [`convert`](Self::convert)).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The type the row was converted to, `None` before the first conversion.
    pub fn vec_dot_type(&self) -> Option<TensorType> {
        match self.data {
            Converted::Empty => None,
            Converted::F32(_) => Some(TensorType::F32),
            Converted::F16(_) => Some(TensorType::F16),
            Converted::BF16(_) => Some(TensorType::BF16),
            Converted::Q8_0(_) => Some(TensorType::Q8_0),
            Converted::Q8_K(_) => Some(TensorType::Q8_K),
        }
    }

    /// Writes the converted row back as f32 (what the dot product actually sees).
    /// `out.len()` must equal [`cols`](Self::cols).
    pub fn dequantize(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.cols {
            return Err(Error::invalid(format!(
                "activation row has {} elements, output buffer {}",
                self.cols,
                out.len()
            )));
        }
        match &self.data {
            Converted::Empty => {}
            Converted::F32(v) => out.copy_from_slice(v),
            Converted::F16(v) => {
                for (o, &h) in out.iter_mut().zip(v) {
                    *o = f16_bits_to_f32(h);
                }
            }
            Converted::BF16(v) => {
                for (o, &h) in out.iter_mut().zip(v) {
                    *o = bf16_bits_to_f32(h);
                }
            }
            Converted::Q8_0(v) => {
                for (b, o) in v.iter().zip(out.chunks_exact_mut(QK8_0)) {
                    q8_0::dequantize_block(b, o.try_into().expect("chunk size"));
                }
            }
            Converted::Q8_K(v) => {
                for (b, o) in v.iter().zip(out.chunks_exact_mut(QK_K)) {
                    for (y, &q) in o.iter_mut().zip(&b.qs) {
                        *y = b.d * q as f32;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `out[r] = dot(weight row r, x)` for a row-major `rows × cols` matrix `w` of type `ty`
/// (each row [`row_bytes`]`(ty, cols)` bytes), converting `x` first as ggml does. For
/// many calls with the same `x` (several matrices, several threads), convert once with
/// [`DenseActivations`] and call [`dense_gemv_converted`].
pub fn dense_gemv(
    ty: TensorType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &mut [f32],
) -> Result<()> {
    if x.len() != cols {
        return Err(Error::invalid(format!(
            "activation has {} elements, matrix has {cols} columns",
            x.len()
        )));
    }
    let mut act = DenseActivations::new();
    act.convert(ty, x)?;
    dense_gemv_converted(ty, w, rows, cols, &act, out)
}

/// [`dense_gemv`] with the activation row already converted for `ty`. To split the work
/// across threads, give each one a contiguous range of rows: the matching slice of `w`
/// (`row_bytes` per row) and of `out`.
pub fn dense_gemv_converted(
    ty: TensorType,
    w: &[u8],
    rows: usize,
    cols: usize,
    act: &DenseActivations,
    out: &mut [f32],
) -> Result<()> {
    let rb = row_bytes(ty, cols)?;
    check_converted(ty, cols, act)?;
    let total = rb
        .checked_mul(rows)
        .ok_or_else(|| Error::invalid(format!("{rows} rows of {rb} bytes overflow")))?;
    if w.len() != total {
        return Err(Error::invalid(format!(
            "a {ty} matrix of {rows} x {cols} takes {total} bytes, got {}",
            w.len()
        )));
    }
    if out.len() != rows {
        return Err(Error::invalid(format!(
            "output has {} elements, matrix has {rows} rows",
            out.len()
        )));
    }
    if rows == 0 {
        return Ok(());
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(rb.max(1))) {
        *o = vec_dot_row(ty, row, &act.data);
    }
    Ok(())
}

/// Checks that `act` was converted for `ty` weights of `cols` columns: what the
/// dispatch table's dense row dots assume.
pub fn check_converted(ty: TensorType, cols: usize, act: &DenseActivations) -> Result<()> {
    let want = vec_dot_type(ty)?;
    if act.vec_dot_type() != Some(want) || act.cols != cols {
        return Err(Error::invalid(format!(
            "{ty} weights with {cols} columns need activations converted to {want} with {cols} \
             elements, got {} with {}",
            act.vec_dot_type()
                .map_or("nothing".to_string(), |t| t.to_string()),
            act.cols
        )));
    }
    Ok(())
}

/// One row's dot product; the caller has checked every length.
fn vec_dot_row(ty: TensorType, row: &[u8], act: &Converted) -> f32 {
    match (ty, act) {
        (TensorType::F32, Converted::F32(x)) => {
            let mut sum = 0f64;
            for (c, &y) in row.chunks_exact(4).zip(x) {
                let w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                sum += (w * y) as f64;
            }
            sum as f32
        }
        (TensorType::F16, Converted::F16(x)) => {
            let mut sum = 0f64;
            for (c, &y) in row.chunks_exact(2).zip(x) {
                let w = f16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
                sum += (w * f16_bits_to_f32(y)) as f64;
            }
            sum as f32
        }
        (TensorType::BF16, Converted::BF16(x)) => {
            let mut sum = 0f64;
            for (c, &y) in row.chunks_exact(2).zip(x) {
                let w = bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
                sum += (w * bf16_bits_to_f32(y)) as f64;
            }
            sum as f32
        }
        (TensorType::Q8_0, Converted::Q8_0(x)) => {
            let mut sumf = 0f32;
            for (c, y) in row.chunks_exact(BLOCK_Q8_0_BYTES).zip(x) {
                let b = BlockQ8_0::from_bytes(c.try_into().expect("chunk size"));
                let sumi: i32 =
                    b.qs.iter()
                        .zip(&y.qs)
                        .map(|(&a, &q)| a as i32 * q as i32)
                        .sum();
                sumf += sumi as f32 * (b.scale() * y.scale());
            }
            sumf
        }
        (TensorType::Q4_0, Converted::Q8_0(x)) => {
            let mut sumf = 0f32;
            for (c, y) in row.chunks_exact(BLOCK_Q4_0_BYTES).zip(x) {
                let b = BlockQ4_0::from_bytes(c.try_into().expect("chunk size"));
                let (mut s0, mut s1) = (0i32, 0i32);
                for j in 0..16 {
                    s0 += ((b.qs[j] & 0x0f) as i32 - 8) * y.qs[j] as i32;
                    s1 += ((b.qs[j] >> 4) as i32 - 8) * y.qs[j + 16] as i32;
                }
                sumf += (s0 + s1) as f32 * b.scale() * y.scale();
            }
            sumf
        }
        (TensorType::Q6_K, Converted::Q8_K(x)) => {
            let mut sums = [0f32; 8];
            for (c, y) in row.chunks_exact(BLOCK_Q6_K_BYTES).zip(x) {
                let b = BlockQ6K::from_bytes(c.try_into().expect("chunk size"));
                let q = b.quants();
                let mut lanes = [0i32; 8];
                for (j, &sc) in b.scales.iter().enumerate() {
                    for l in 0..16 {
                        let i = 16 * j + l;
                        lanes[l % 8] += sc as i32 * (q[i] as i32 * y.qs[i] as i32);
                    }
                }
                let d = b.scale() * y.d;
                for (s, &v) in sums.iter_mut().zip(&lanes) {
                    *s += d * v as f32;
                }
            }
            sums.iter().fold(0f32, |acc, &s| acc + s)
        }
        _ => unreachable!("dense_gemv_converted checked the activation type"),
    }
}

/// Scalar row dot of a BF16 weight row with BF16 activations (a dispatch-table entry).
pub fn bf16_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    vec_dot_row(TensorType::BF16, row, &act.data)
}

/// Scalar row dot of a Q8_0 weight row with Q8_0 activations (a dispatch-table entry).
pub fn q8_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    vec_dot_row(TensorType::Q8_0, row, &act.data)
}

/// Scalar row dot of a Q4_0 weight row with Q8_0 activations (a dispatch-table entry).
pub fn q4_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    vec_dot_row(TensorType::Q4_0, row, &act.data)
}

/// Scalar row dot of a Q6_K weight row with Q8_K activations (a dispatch-table entry).
pub fn q6_k_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    vec_dot_row(TensorType::Q6_K, row, &act.data)
}

/// The f32 at element `c` of a little-endian F32 row.
#[inline]
fn f32_at(row: &[u8], c: usize) -> f32 {
    let b = &row[4 * c..4 * c + 4];
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The f16 at element `c` of a little-endian F16 row, as f32.
#[inline]
fn f16_at(row: &[u8], c: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([row[2 * c], row[2 * c + 1]]))
}

/// F32 row, one token: ggml's `ggml_vec_dot_f32` order ([`numerics::dot_fused`]).
pub fn f32_row_dot_fused(x: &[f32], row: &[u8]) -> f32 {
    numerics::dot_fused(x, |c| f32_at(row, c))
}

/// F32 row, batches: llamafile's order ([`numerics::dot_tinyblas`]).
pub fn f32_row_dot_tinyblas(x: &[f32], row: &[u8]) -> f32 {
    numerics::dot_tinyblas(x, |c| f32_at(row, c))
}

/// F16 row, one token, `x` already rounded to f16 values: ggml's `ggml_vec_dot_f16`
/// order ([`numerics::dot_exact_products`]).
pub fn f16_row_dot_exact(x: &[f32], row: &[u8]) -> f32 {
    numerics::dot_exact_products(x, |c| f16_at(row, c))
}

/// F16 row, batches: llamafile's order ([`numerics::dot_tinyblas`]).
pub fn f16_row_dot_tinyblas(x: &[f32], row: &[u8]) -> f32 {
    numerics::dot_tinyblas(x, |c| f16_at(row, c))
}
