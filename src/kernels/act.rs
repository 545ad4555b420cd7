//! Activation quantization: one token row of f32 activations to int8, in the two formats
//! the ternary kernels consume.
//!
//! - [`ActivationFormat::I8PerRow`] — bitnet.cpp's `quantize_row_i8_s` (I2_S, and our
//!   Sherry): one scale for the whole row,
//!   `max = max(1e-5, max_i |x_i|)` (in f64), `scale = (f32)(127 / max)`,
//!   `q_i = clamp(round_half_even(x_i * scale), -128, 127)` (the product in f32; ggml's
//!   `nearest_int` is round-half-to-even), and the row sum `Σ q_i` (i32) that undoes the
//!   +1 offset of the weight codes. Dequantized: `x_i ≈ q_i / scale`.
//! - [`ActivationFormat::Q8K`] — llama.cpp's `quantize_row_q8_K_ref` (TQ1_0, TQ2_0, STQ1_0):
//!   per 256 values, `max` = the value of largest magnitude (first one on ties),
//!   `iscale = -127 / max`, `q_i = min(127, round_half_even(iscale * x_i))`, `d = 1 / iscale`,
//!   and the sum of each 16 quants. An all-zero block gets `d = 0`, quants and sums 0.
//!   Dequantized: `x_i ≈ d * q_i`.
//!
//! [`QuantizedActivations`] keeps its buffers: once sized, quantizing another row of the same
//! length allocates nothing.

use crate::error::{Error, Result};
use crate::kernels::simd;
use crate::quant::TensorType;

/// Values per Q8_K block.
pub const Q8K_BLOCK: usize = 256;

/// The int8 activation format a weight type's kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationFormat {
    /// bitnet.cpp's I8_S: int8 per row, one f32 scale (127 / max|x|) and the row sum.
    I8PerRow,
    /// llama.cpp's Q8_K: int8 per 256, one f32 `d` and 16 block sums per 256.
    Q8K,
}

impl ActivationFormat {
    /// The format the kernels of weight type `ty` consume: I2_S, TL1, TL2 and Sherry read
    /// [`ActivationFormat::I8PerRow`]; TQ1_0, TQ2_0 and STQ1_0 read [`ActivationFormat::Q8K`].
    pub fn for_type(ty: TensorType) -> Result<ActivationFormat> {
        match ty {
            TensorType::I2_S | TensorType::TL1 | TensorType::TL2 | TensorType::Sherry => {
                Ok(ActivationFormat::I8PerRow)
            }
            TensorType::TQ1_0 | TensorType::TQ2_0 | TensorType::STQ1_0 => Ok(ActivationFormat::Q8K),
            other => Err(Error::unsupported(format!(
                "{other} has no int8 activation format (not a ternary weight type)"
            ))),
        }
    }

    /// Whether a row of `len` values can be quantized in this format.
    pub fn check_len(self, len: usize) -> Result<()> {
        if self == ActivationFormat::Q8K && len % Q8K_BLOCK != 0 {
            return Err(Error::invalid(format!(
                "Q8_K activations need a multiple of {Q8K_BLOCK} values, got {len}"
            )));
        }
        Ok(())
    }
}

/// ggml's `nearest_int`: round half to even (exact for |v| < 2^22, which int8 quantization
/// stays far inside).
#[inline]
pub fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// One token row of quantized activations, with reusable buffers.
#[derive(Debug, Clone)]
pub struct QuantizedActivations {
    format: ActivationFormat,
    qs: Vec<i8>,
    /// I8PerRow: `[scale]`; Q8K: one `d` per block.
    scales: Vec<f32>,
    /// I8PerRow: the row sum; Q8K: unused (0).
    row_sum: i32,
    /// Q8K: 16 sums of 16 quants per block; I8PerRow: empty.
    bsums: Vec<i16>,
    /// Tables a kernel's prepare hook derived from this row (LUT kernels); kept, like the
    /// other buffers, across rows.
    lut: Vec<i16>,
}

impl Default for QuantizedActivations {
    fn default() -> Self {
        QuantizedActivations::new()
    }
}

impl QuantizedActivations {
    /// An empty row (format I8PerRow, length 0); the first `quantize_into` sizes it.
    pub fn new() -> Self {
        QuantizedActivations {
            format: ActivationFormat::I8PerRow,
            qs: Vec::new(),
            scales: Vec::new(),
            row_sum: 0,
            bsums: Vec::new(),
            lut: Vec::new(),
        }
    }

    /// A row with buffers reserved for `len` values of `format`, so that quantizing rows of
    /// up to that length never allocates.
    pub fn with_capacity(format: ActivationFormat, len: usize) -> Self {
        let mut a = QuantizedActivations::new();
        a.format = format;
        a.qs.reserve(len);
        a.scales.reserve(len / Q8K_BLOCK + 1);
        a.bsums.reserve(len / 16 + 1);
        a
    }

    /// Quantizes `x` into this row in `format`, reusing the buffers. Errors on a length the
    /// format cannot take and on NaN or infinite inputs (naming the index).
    pub fn quantize_into(&mut self, format: ActivationFormat, x: &[f32]) -> Result<()> {
        self.quantize_with(format, x, true)
    }

    /// Quantizes `x` followed by zeros up to `len` values (I8PerRow only): the quants of
    /// `x` and then `len - x.len()` zero quants. A zero never raises `max|x|` above its
    /// floor nor adds to the row sum, so the scale and the row sum are those of `x` alone
    /// — the same row as quantizing the zero-extended `x` — and a kernel reading `len`
    /// columns of a matrix whose extra columns are zero gives the unpadded product. (For
    /// weights repacked at load into a type whose blocks are wider than the row.)
    pub fn quantize_padded_into(
        &mut self,
        format: ActivationFormat,
        x: &[f32],
        len: usize,
    ) -> Result<()> {
        if len != x.len() && (format != ActivationFormat::I8PerRow || len < x.len()) {
            return Err(Error::invalid(format!(
                "cannot pad {} {format:?} activations to {len}",
                x.len()
            )));
        }
        self.quantize_into(format, x)?;
        self.qs.resize(len, 0);
        Ok(())
    }

    /// [`quantize_into`](Self::quantize_into) without SIMD (the twin the SIMD building
    /// blocks in [`crate::kernels::simd`] are tested against; same results).
    pub fn quantize_into_scalar(&mut self, format: ActivationFormat, x: &[f32]) -> Result<()> {
        self.quantize_with(format, x, false)
    }

    fn quantize_with(&mut self, format: ActivationFormat, x: &[f32], simd: bool) -> Result<()> {
        format.check_len(x.len())?;
        if !(simd && simd::all_finite(x).unwrap_or(false)) {
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "activation {i} is {}, not a finite number",
                    x[i]
                )));
            }
        }
        self.format = format;
        self.qs.clear();
        self.scales.clear();
        self.bsums.clear();
        self.row_sum = 0;
        match format {
            ActivationFormat::I8PerRow => self.quantize_i8_per_row(x, simd),
            ActivationFormat::Q8K => {
                for block in x.chunks_exact(Q8K_BLOCK) {
                    self.quantize_q8k_block(block, simd);
                }
            }
        }
        Ok(())
    }

    fn quantize_i8_per_row(&mut self, x: &[f32], simd: bool) {
        if let Some(amax) = simd.then(|| simd::abs_max(x)).flatten() {
            // The same maximum in f32 (exact), widened: f64::max of the widened values.
            let s = (127.0 / 0.00001f64.max(f64::from(amax))) as f32;
            self.qs.resize(x.len(), 0);
            let sum = simd::quantize_scaled(x, s, &mut self.qs).expect("same family");
            self.scales.push(s);
            self.row_sum = sum;
            return;
        }
        let mut max = 0.00001f64;
        for &v in x {
            max = max.max((v as f64).abs());
        }
        let s = (127.0 / max) as f32;
        let mut sum = 0i32;
        self.qs.extend(x.iter().map(|&v| {
            let q = nearest_int(v * s).clamp(-128, 127);
            sum += q;
            q as i8
        }));
        self.scales.push(s);
        self.row_sum = sum;
    }

    fn quantize_q8k_block(&mut self, x: &[f32], simd: bool) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        if let Some(first) = simd.then(|| simd::first_abs_max_index(x)).flatten() {
            // The first value of largest magnitude is the one the scan below settles on.
            if let Some(i) = first {
                amax = x[i].abs();
                max = x[i];
            }
        } else {
            for &v in x {
                let a = v.abs();
                if a > amax {
                    amax = a;
                    max = v;
                }
            }
        }
        if amax == 0.0 {
            self.scales.push(0.0);
            self.qs.extend(std::iter::repeat_n(0i8, Q8K_BLOCK));
            self.bsums.extend(std::iter::repeat_n(0i16, Q8K_BLOCK / 16));
            return;
        }
        let iscale = -127.0f32 / max;
        let start = self.qs.len();
        self.qs.resize(start + x.len(), 0);
        // |iscale * v| <= 127 (1 + ε): the clamp to -128 never bites, min(127) does.
        let quantized = simd
            .then(|| simd::quantize_scaled(x, iscale, &mut self.qs[start..]))
            .flatten();
        if quantized.is_none() {
            for (q, &v) in self.qs[start..].iter_mut().zip(x) {
                *q = nearest_int(iscale * v).min(127) as i8;
            }
        }
        for g in self.qs[start..].chunks_exact(16) {
            self.bsums.push(g.iter().map(|&q| q as i16).sum());
        }
        self.scales.push(1.0 / iscale);
    }

    /// The format of the row last quantized.
    pub fn format(&self) -> ActivationFormat {
        self.format
    }

    /// Number of values in the row.
    pub fn len(&self) -> usize {
        self.qs.len()
    }

    /// Whether the row is empty.
    pub fn is_empty(&self) -> bool {
        self.qs.is_empty()
    }

    /// The int8 quants, one per input value.
    pub fn qs(&self) -> &[i8] {
        &self.qs
    }

    /// I8PerRow: the row's scale `127 / max|x|` (quant = x * scale). Q8K: the first block's
    /// `d` (use [`QuantizedActivations::block_scales`]).
    pub fn act_scale(&self) -> f32 {
        self.scales.first().copied().unwrap_or(0.0)
    }

    /// I8PerRow: `Σ q_i`, as bitnet.cpp keeps it. Q8K: 0.
    pub fn row_sum(&self) -> i32 {
        self.row_sum
    }

    /// Q8K: one `d` per 256 values (value ≈ d * q). I8PerRow: the one row scale.
    pub fn block_scales(&self) -> &[f32] {
        &self.scales
    }

    /// Q8K: the sum of each 16 consecutive quants. I8PerRow: empty.
    pub fn block_sums(&self) -> &[i16] {
        &self.bsums
    }

    /// The tables the last prepare hook built from this row (see
    /// [`crate::kernels::table::PrepareFn`]); empty unless a LUT kernel prepared it.
    /// Kernels that want bytes may view it as such.
    pub fn lut(&self) -> &[i16] {
        &self.lut
    }

    /// The table buffer, for a prepare hook to fill (its capacity is kept across rows).
    pub fn lut_mut(&mut self) -> &mut Vec<i16> {
        &mut self.lut
    }

    /// The quants and the table buffer together, for a prepare hook that builds the one
    /// from the other.
    pub fn qs_and_lut_mut(&mut self) -> (&[i8], &mut Vec<i16>) {
        (&self.qs, &mut self.lut)
    }

    /// The values the quants stand for, in f64 (I8PerRow: q / scale; Q8K: d * q). For tests
    /// and error measurements.
    pub fn dequantize_f64(&self) -> Vec<f64> {
        match self.format {
            ActivationFormat::I8PerRow => {
                let s = self.act_scale() as f64;
                self.qs.iter().map(|&q| q as f64 / s).collect()
            }
            ActivationFormat::Q8K => self
                .qs
                .iter()
                .enumerate()
                .map(|(i, &q)| self.scales[i / Q8K_BLOCK] as f64 * q as f64)
                .collect(),
        }
    }
}

/// A prepare hook (see [`crate::kernels::table::PrepareFn`]) for Q8_K rows: the sum of
/// each 256-block's quants, one `i16` per block, into the row's table. Q8_K quants lie in
/// ±127, so a block's sum fits. Kernels that multiply codes `value + 1` subtract it.
pub fn prepare_q8k_block_sums(_cols: usize, act: &mut QuantizedActivations) {
    let nb = act.scales.len();
    act.lut.clear();
    act.lut.extend(
        act.bsums
            .chunks_exact(Q8K_BLOCK / 16)
            .take(nb)
            .map(|s| s.iter().map(|&v| v as i32).sum::<i32>() as i16),
    );
}
