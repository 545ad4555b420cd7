//! Ternary weights in two forms: unpacked ([`TernaryWeights`], one `i8` per weight, the
//! common currency of conversions and tests) and packed ([`TernaryMatrix`], a typed,
//! validated, zero-copy view of a tensor's bytes that the kernels read directly).
//!
//! [`unpack_ternary`] and [`pack_ternary`] dispatch on the tensor type to the type's own
//! module (`i2s`, `tq`, `stq1`, `sherry`, `tl1`, `tl2`).
//!
//! Shapes follow ggml: `dims[0]` = ne0 = columns (input features, K), `dims[1]` = ne1 = rows
//! (output features, M). Values are stored row-major: weight (r, c) is `values[r * cols + c]`.

use super::types::{TensorType, SCALE_TAIL_BYTES};
use super::{i2s, sherry, stq1, tl1, tl2, tq};
use crate::error::{Error, Result};

/// How the real weight is recovered from a ternary value: `w = value * scale`.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightScale {
    /// One scale for the whole tensor (I2_S, TL1, TL2, Sherry).
    PerTensor(f32),
    /// One scale per `block` consecutive weights of a row (TQ1_0, TQ2_0, STQ1_0: 256).
    /// `scales[r * (cols / block) + c / block]` is the scale of weight (r, c).
    PerBlock { block: usize, scales: Vec<f32> },
}

/// A ternary matrix, unpacked: values in {-1, 0, +1} and their scale.
#[derive(Debug, Clone, PartialEq)]
pub struct TernaryWeights {
    /// Output features (ggml ne1).
    pub rows: usize,
    /// Input features (ggml ne0).
    pub cols: usize,
    /// Row-major, `rows * cols` values, each -1, 0 or +1.
    pub values: Vec<i8>,
    /// The scale(s) the values are multiplied by.
    pub scale: WeightScale,
}

impl TernaryWeights {
    /// Builds and checks a matrix: value count, values in {-1, 0, 1}, scale layout, finite
    /// scales. Errors name the first offending element.
    pub fn new(rows: usize, cols: usize, values: Vec<i8>, scale: WeightScale) -> Result<Self> {
        let w = TernaryWeights {
            rows,
            cols,
            values,
            scale,
        };
        w.validate()?;
        Ok(w)
    }

    /// Checks the invariants [`TernaryWeights::new`] establishes (fields are public, so a
    /// packer calls this again before trusting them).
    pub fn validate(&self) -> Result<()> {
        let n = self
            .rows
            .checked_mul(self.cols)
            .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
        if self.values.len() != n {
            return Err(Error::invalid(format!(
                "a {}x{} ternary matrix needs {n} values, got {}",
                self.rows,
                self.cols,
                self.values.len()
            )));
        }
        if let Some(i) = self.values.iter().position(|&v| !(-1..=1).contains(&v)) {
            return Err(Error::invalid(format!(
                "value {} at row {}, column {} is not ternary (-1, 0 or 1)",
                self.values[i],
                i / self.cols.max(1),
                i % self.cols.max(1)
            )));
        }
        match &self.scale {
            WeightScale::PerTensor(s) => check_scale(*s, "the tensor scale")?,
            WeightScale::PerBlock { block, scales } => {
                if *block == 0 || self.cols % block != 0 {
                    return Err(Error::invalid(format!(
                        "scale block of {block} does not divide the {} columns",
                        self.cols
                    )));
                }
                let want = self.rows * (self.cols / block);
                if scales.len() != want {
                    return Err(Error::invalid(format!(
                        "{want} block scales expected, got {}",
                        scales.len()
                    )));
                }
                for (i, &s) in scales.iter().enumerate() {
                    check_scale(s, &format!("block scale {i}"))?;
                }
            }
        }
        Ok(())
    }

    /// The scale of weight (`row`, `col`).
    pub fn scale_at(&self, row: usize, col: usize) -> f32 {
        match &self.scale {
            WeightScale::PerTensor(s) => *s,
            WeightScale::PerBlock { block, scales } => {
                scales[row * (self.cols / block) + col / block]
            }
        }
    }

    /// The one scale shared by the non-zero weights of columns `col0 .. col0 + len` of `row`:
    /// `Ok(None)` when they are all zero (any scale represents them), an error when two
    /// non-zero weights there have different scales.
    pub fn span_scale(&self, row: usize, col0: usize, len: usize) -> Result<Option<f32>> {
        if let WeightScale::PerTensor(s) = self.scale {
            let vals = &self.values[row * self.cols + col0..][..len];
            return Ok(vals.iter().any(|&v| v != 0).then_some(s));
        }
        let mut found: Option<f32> = None;
        for c in col0..col0 + len {
            if self.values[row * self.cols + c] == 0 {
                continue;
            }
            let s = self.scale_at(row, c);
            match found {
                None => found = Some(s),
                Some(f) if f.to_bits() == s.to_bits() => {}
                Some(f) => {
                    return Err(Error::invalid(format!(
                    "row {row}, columns {col0}..{}: weights carry different scales ({f} and {s}) \
                         but the target type has one scale for them",
                    col0 + len
                )))
                }
            }
        }
        Ok(found)
    }

    /// The one scale of the whole tensor (for per-tensor target types). Blocks whose weights
    /// are all zero do not count; an all-zero tensor gives the first scale (or 0).
    pub fn uniform_scale(&self) -> Result<f32> {
        match &self.scale {
            WeightScale::PerTensor(s) => Ok(*s),
            WeightScale::PerBlock { block, scales } => {
                let per_row = self.cols / block;
                let mut found: Option<f32> = None;
                for (i, &s) in scales.iter().enumerate() {
                    let (r, b) = (i / per_row, i % per_row);
                    let vals = &self.values[r * self.cols + b * block..][..*block];
                    if vals.iter().all(|&v| v == 0) {
                        continue;
                    }
                    match found {
                        None => found = Some(s),
                        Some(f) if f.to_bits() == s.to_bits() => {}
                        Some(f) => {
                            return Err(Error::invalid(format!(
                                "the blocks carry different scales ({f} and {s}, block {i}) \
                                 but the target type has one scale per tensor"
                            )))
                        }
                    }
                }
                Ok(found.unwrap_or_else(|| scales.first().copied().unwrap_or(0.0)))
            }
        }
    }

    /// The real weights, `value * scale`, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.values.len());
        for r in 0..self.rows {
            for c in 0..self.cols {
                out.push(self.values[r * self.cols + c] as f32 * self.scale_at(r, c));
            }
        }
        out
    }

    /// The same matrix with zero columns appended to every row up to `cols` (at least the
    /// current count). Only for a per-tensor scale: a per-block scale's blocks would move.
    pub fn with_zero_columns(&self, cols: usize) -> Result<TernaryWeights> {
        if cols < self.cols {
            return Err(Error::invalid(format!(
                "cannot pad {} columns to {cols}",
                self.cols
            )));
        }
        let WeightScale::PerTensor(s) = self.scale else {
            return Err(Error::invalid(
                "zero columns can only be added to a matrix with one scale per tensor",
            ));
        };
        let n = self
            .rows
            .checked_mul(cols)
            .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
        let mut values = vec![0i8; n];
        if self.cols > 0 {
            for (dst, src) in values
                .chunks_exact_mut(cols)
                .zip(self.values.chunks_exact(self.cols))
            {
                dst[..self.cols].copy_from_slice(src);
            }
        }
        TernaryWeights::new(self.rows, cols, values, WeightScale::PerTensor(s))
    }

    /// Recognises a float tensor whose values are already ternary, `{-a, 0, +a}` for one
    /// `a > 0` (what bitnet.cpp's converters write to F32/F16 files). Errors name the first
    /// value that is neither 0 nor ±a, or a non-finite value.
    pub fn from_ternary_valued(rows: usize, cols: usize, x: &[f32]) -> Result<Self> {
        let n = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
        if x.len() != n {
            return Err(Error::invalid(format!(
                "a {rows}x{cols} matrix needs {n} values, got {}",
                x.len()
            )));
        }
        let mut a = 0.0f32;
        for (i, &v) in x.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::invalid(format!(
                    "value {v} at row {}, column {} is not finite",
                    i / cols.max(1),
                    i % cols.max(1)
                )));
            }
            if v != 0.0 {
                a = v.abs();
                break;
            }
        }
        let mut values = Vec::with_capacity(n);
        for (i, &v) in x.iter().enumerate() {
            let t = if v == 0.0 {
                0
            } else if v == a {
                1
            } else if v == -a {
                -1
            } else {
                return Err(Error::invalid(format!(
                    "value {v} at row {}, column {} is not ternary-valued: the tensor's \
                     non-zero magnitude is {a}",
                    i / cols.max(1),
                    i % cols.max(1)
                )));
            };
            values.push(t);
        }
        TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(a))
    }
}

/// BitNet b1.58's absmean ternarization of latent float weights (as bitnet.cpp's
/// converters apply it per tensor): `scale = max(mean |w|, 1e-5)` (mean in f64),
/// `value = clamp(round_half_even(w / scale), -1, 1)`.
pub fn ternarize_absmean(rows: usize, cols: usize, x: &[f32]) -> Result<TernaryWeights> {
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid("rows * cols overflows"))?;
    if x.len() != n || n == 0 {
        return Err(Error::invalid(format!(
            "a {rows}x{cols} matrix needs {n} values, got {}",
            x.len()
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "value {} at row {}, column {} is not finite",
            x[i],
            i / cols,
            i % cols
        )));
    }
    let mean = x.iter().map(|&v| (v as f64).abs()).sum::<f64>() / n as f64;
    let scale = mean.max(1e-5);
    let values = x
        .iter()
        .map(|&v| (v as f64 / scale).round_ties_even().clamp(-1.0, 1.0) as i8)
        .collect();
    TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale as f32))
}

/// Rejects NaN and infinite scales.
pub(crate) fn check_scale(s: f32, what: &str) -> Result<()> {
    if s.is_finite() {
        Ok(())
    } else {
        Err(Error::format(format!("{what} is {s}, not a finite number")))
    }
}

/// (rows, cols) of a tensor of type `ty` and shape `dims`, after checking the shape is a
/// matrix (higher dimensions must be 1) that the type can hold.
pub fn matrix_shape(ty: TensorType, dims: &[u64]) -> Result<(usize, usize)> {
    if dims.is_empty() || dims.len() > 4 {
        return Err(Error::format(format!(
            "a {ty} tensor needs 1 to 4 dimensions, got {dims:?}"
        )));
    }
    if dims.len() > 2 && dims[2..].iter().any(|&d| d != 1) {
        return Err(Error::unsupported(format!(
            "{ty} tensors are matrices; shape {dims:?} has more than two dimensions"
        )));
    }
    let to_usize = |d: u64| {
        usize::try_from(d).map_err(|_| Error::format(format!("dimension {d} is too large")))
    };
    let cols = to_usize(dims[0])?;
    let rows = to_usize(dims.get(1).copied().unwrap_or(1))?;
    if rows == 0 || cols == 0 {
        return Err(Error::format(format!(
            "a {ty} tensor of shape {dims:?} is empty"
        )));
    }
    let need = |what: &str, n: usize, m: usize| {
        if n % m != 0 {
            Err(Error::format(format!(
                "{ty} needs the {what} to be a multiple of {m}, got {n} (shape {dims:?})"
            )))
        } else {
            Ok(())
        }
    };
    match ty {
        TensorType::I2_S => need("column count (ne0)", cols, i2s::BLOCK_WEIGHTS)?,
        TensorType::TQ1_0 | TensorType::TQ2_0 | TensorType::STQ1_0 => {
            need("column count (ne0)", cols, 256)?
        }
        TensorType::Sherry => {
            need("column count (ne0)", cols, sherry::CHUNK_COLS)?;
            need("row count (ne1)", rows, sherry::TILE_ROWS)?;
        }
        TensorType::TL1 | TensorType::TL2 => {}
        other => {
            return Err(Error::unsupported(format!(
                "{other} is not a ternary weight type"
            )))
        }
    }
    rows.checked_mul(cols)
        .ok_or_else(|| Error::format(format!("shape {dims:?} overflows")))?;
    Ok((rows, cols))
}

/// Checks that `data` has exactly the byte size the registry gives for `ty` and `dims`.
pub fn check_byte_size(ty: TensorType, dims: &[u64], data: &[u8]) -> Result<()> {
    let want = ty.nbytes(dims).map_err(Error::format)?;
    if data.len() as u64 != want {
        return Err(Error::format(format!(
            "a {ty} tensor of shape {dims:?} takes {want} bytes, got {}",
            data.len()
        )));
    }
    Ok(())
}

/// Unpacks a ternary tensor to values and scale(s). Checks the byte size and shape first.
///
/// TL1 and TL2 derive their tiling from the shape (`quant::tl_params`); a shape without a
/// bitnet.cpp preset gives [`Error::Unsupported`] naming the shapes that have one.
pub fn unpack_ternary(ty: TensorType, dims: &[u64], data: &[u8]) -> Result<TernaryWeights> {
    let (rows, cols) = matrix_shape(ty, dims)?;
    check_byte_size(ty, dims, data)?;
    match ty {
        TensorType::I2_S => i2s::unpack(rows, cols, data),
        TensorType::TQ1_0 => tq::unpack_tq1(rows, cols, data),
        TensorType::TQ2_0 => tq::unpack_tq2(rows, cols, data),
        TensorType::STQ1_0 => stq1::unpack(rows, cols, data),
        TensorType::Sherry => sherry::unpack(rows, cols, data),
        TensorType::TL1 => tl1::unpack(dims, data),
        TensorType::TL2 => tl2::unpack(dims, data),
        other => Err(Error::unsupported(format!(
            "{other} is not a ternary weight type"
        ))),
    }
}

/// Packs ternary weights into the bytes of a `ty` tensor of shape `[w.cols, w.rows]`.
/// Errors when the weights are not ternary, the shape does not fit the type, the type
/// cannot represent the scales (e.g. several scales into a per-tensor type), or (Sherry,
/// STQ1_0) a group of 4 is not 3:4 sparse.
///
/// TL1 and TL2 use the tiling bitnet.cpp's presets give the shape (`quant::tl_params`); a
/// shape without one gives [`Error::Unsupported`].
pub fn pack_ternary(ty: TensorType, w: &TernaryWeights) -> Result<Vec<u8>> {
    w.validate()?;
    matrix_shape(ty, &[w.cols as u64, w.rows as u64])?;
    match ty {
        TensorType::I2_S => i2s::pack(w),
        TensorType::TQ1_0 => tq::pack_tq1(w),
        TensorType::TQ2_0 => tq::pack_tq2(w),
        TensorType::STQ1_0 => stq1::pack(w),
        TensorType::Sherry => sherry::pack(w),
        TensorType::TL1 => tl1::pack(w),
        TensorType::TL2 => tl2::pack(w),
        other => Err(Error::unsupported(format!(
            "{other} is not a ternary weight type"
        ))),
    }
}

/// A packed ternary matrix: the tensor's bytes, checked once, read in place by the kernels.
#[derive(Debug, Clone, Copy)]
pub struct TernaryMatrix<'a> {
    /// The tensor type, one of the ternary types.
    pub ty: TensorType,
    /// Output features (ggml ne1).
    pub rows: usize,
    /// Input features (ggml ne0).
    pub cols: usize,
    /// The tensor's bytes, exactly `ty.nbytes([cols, rows])` long.
    pub data: &'a [u8],
}

impl<'a> TernaryMatrix<'a> {
    /// Wraps a tensor's bytes after checking: the type is ternary, the shape is a matrix the
    /// type can hold (I2_S: cols % 128 == 0; TQ1_0/TQ2_0/STQ1_0: cols % 256 == 0; Sherry:
    /// rows and cols % 32 == 0), the byte size is exact, and every scale is finite.
    pub fn new(ty: TensorType, dims: &[u64], data: &'a [u8]) -> Result<Self> {
        let (rows, cols) = matrix_shape(ty, dims)?;
        check_byte_size(ty, dims, data)?;
        let m = TernaryMatrix {
            ty,
            rows,
            cols,
            data,
        };
        match ty {
            TensorType::TQ1_0 | TensorType::TQ2_0 | TensorType::STQ1_0 => {
                let bs = ty.info().type_size as usize;
                for (i, block) in data.chunks_exact(bs).enumerate() {
                    let d = tq::f16_at(block, bs - 2);
                    check_scale(d, &format!("the scale of block {i}"))?;
                }
            }
            _ => {
                if let Some(s) = m.scale() {
                    check_scale(s, "the tensor scale")?;
                }
            }
        }
        Ok(m)
    }

    /// The per-tensor scale of types that have one (I2_S, TL1, TL2, Sherry): the f32 in the
    /// first 4 bytes of the 32-byte tail. `None` for the per-block types.
    pub fn scale(&self) -> Option<f32> {
        match self.ty {
            TensorType::I2_S | TensorType::TL1 | TensorType::TL2 | TensorType::Sherry => {
                let at = self.data.len() - SCALE_TAIL_BYTES as usize;
                Some(read_f32(self.data, at))
            }
            _ => None,
        }
    }

    /// Scans the codes for values no ternary weight has (I2_S and TQ2_0 code 3). Kernels
    /// treat such a code as `code - 1` = +2, as bitnet.cpp's do; unpacking rejects it.
    pub fn check_codes(&self) -> Result<()> {
        let bad = |what: &str, byte: usize| {
            Err(Error::format(format!(
                "{} byte {byte} holds the code 3, which is no ternary value ({what})",
                self.ty
            )))
        };
        match self.ty {
            TensorType::I2_S => {
                let n = self.rows * self.cols / 4;
                if let Some(i) = self.data[..n].iter().position(|&b| has_code3(b)) {
                    return bad("I2_S codes are 0, 1, 2", i);
                }
            }
            TensorType::TQ2_0 => {
                for (bi, block) in self.data.chunks_exact(tq::TQ2_BLOCK_BYTES).enumerate() {
                    if let Some(i) = block[..64].iter().position(|&b| has_code3(b)) {
                        return bad("TQ2_0 codes are 0, 1, 2", bi * tq::TQ2_BLOCK_BYTES + i);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether any of the four 2-bit fields of `b` is 3.
pub(crate) fn has_code3(b: u8) -> bool {
    (b & (b >> 1) & 0x55) != 0
}

/// Little-endian f32 at byte `at`.
pub(crate) fn read_f32(data: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Appends the 32-byte scale tail: the f32 scale, then 28 zero bytes.
pub(crate) fn push_scale_tail(out: &mut Vec<u8>, scale: f32) {
    out.extend_from_slice(&scale.to_le_bytes());
    out.extend_from_slice(&[0u8; SCALE_TAIL_BYTES as usize - 4]);
}
