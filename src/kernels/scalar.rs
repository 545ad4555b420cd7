//! Scalar reference kernels for the ternary types. They define correctness: every SIMD
//! kernel must give the same integer sums, and (with the same epilogue order) the same
//! floats, bit for bit.
//!
//! They read the packed bytes of a [`TernaryMatrix`] in place (no unpacked copy) and the
//! int8 activations of [`QuantizedActivations`]. Integer sums are exact `i32`.
//!
//! Float epilogues, per type (`sumi` = exact integer sum):
//!
//! - I2_S, bitnet.cpp (ggml.c `ggml_compute_forward_mul_mat`, I2_S branch after
//!   `ggml_gemv_i2_i8_s` / `ggml_gemm_i2_i8_s`):
//!   `out = (((f32)Σ code·q − (f32)act_sum) / act_scale) * w_scale`, every step in f32, in
//!   that order, where `code = value + 1` and `act_sum = Σ q`. bitnet.cpp accumulates
//!   `Σ code·q` in 16-bit lanes over 32 blocks of 128 (it can wrap for extreme activation
//!   rows, e.g. 256 quants of ±127 in one lane); we keep exact i32 — equal whenever
//!   bitnet.cpp's does not overflow, which real activations never approach.
//! - Sherry (ours; I8PerRow activations): `out = ((f32)Σ w·q / act_scale) * w_scale`. For
//!   sums below 2^24 in magnitude this equals the I2_S formula bit for bit (both
//!   subtractions are exact), so an I2_S and a Sherry tensor of the same weights give the
//!   same outputs.
//! - TQ1_0, TQ2_0 (llama.cpp `ggml_vec_dot_tq{1,2}_0_q8_K`, generic path) and STQ1_0
//!   (PR #22836 generic path): per 256-block `b`,
//!   `sumf += (f32)sumi_b * (d_w[b] * d_a[b])` with `d_w` the block's f16 scale as f32,
//!   `d_a` the Q8_K block's `d`, blocks in order from 0, `sumf` starting at 0.0.

use std::ops::Range;

use super::act::{ActivationFormat, QuantizedActivations};
use crate::error::{Error, Result};
use crate::quant::ternary::TernaryMatrix;
use crate::quant::{i2s, sherry, stq1, tq, TensorType};

/// bitnet.cpp's I2_S epilogue: `((sumi_codes as f32 - act_sum as f32) / act_scale) * w_scale`,
/// with `sumi_codes = Σ code·q` (codes 0..2) and `act_sum = Σ q`.
#[inline]
pub fn i2s_epilogue(sumi_codes: i32, act_sum: i32, act_scale: f32, w_scale: f32) -> f32 {
    ((sumi_codes as f32 - act_sum as f32) / act_scale) * w_scale
}

/// Sherry's epilogue: `(sumi as f32 / act_scale) * w_scale`, with `sumi = Σ w·q`.
#[inline]
pub fn sherry_epilogue(sumi: i32, act_scale: f32, w_scale: f32) -> f32 {
    (sumi as f32 / act_scale) * w_scale
}

/// `Σ code·q` over one I2_S row (`row_bytes` = `cols / 4` code bytes) — the integer that
/// bitnet.cpp's `ggml_vec_dot_i2_i8_s` returns (as a float).
pub fn i2s_row_code_dot(row_bytes: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (block, qb) in row_bytes
        .chunks_exact(i2s::BLOCK_BYTES)
        .zip(q.chunks_exact(i2s::BLOCK_WEIGHTS))
    {
        for (j, &b) in block.iter().enumerate() {
            sum += ((b >> 6) & 3) as i32 * qb[j] as i32
                + ((b >> 4) & 3) as i32 * qb[j + 32] as i32
                + ((b >> 2) & 3) as i32 * qb[j + 64] as i32
                + (b & 3) as i32 * qb[j + 96] as i32;
        }
    }
    sum
}

/// Checks a matrix, one activation row and an output length (`m.rows`) against each
/// other: what every row-range entry of the dispatch table assumes of its operands.
pub fn check_operands(
    m: &TernaryMatrix,
    acts: &QuantizedActivations,
    out_len: usize,
) -> Result<()> {
    let want = ActivationFormat::for_type(m.ty)?;
    if acts.format() != want {
        return Err(Error::invalid(format!(
            "{} weights need {want:?} activations, got {:?}",
            m.ty,
            acts.format()
        )));
    }
    if acts.len() != m.cols {
        return Err(Error::invalid(format!(
            "the {}x{} {} matrix needs {} activations, got {}",
            m.rows,
            m.cols,
            m.ty,
            m.cols,
            acts.len()
        )));
    }
    if out_len != m.rows {
        return Err(Error::invalid(format!(
            "the output of a {}-row matrix needs {} values, got {out_len}",
            m.rows, m.rows
        )));
    }
    Ok(())
}

/// `out[r] = Σ_c W[r, c] · x[c]` for one token row, on the packed bytes.
pub fn ternary_gemv(m: &TernaryMatrix, acts: &QuantizedActivations, out: &mut [f32]) -> Result<()> {
    check_operands(m, acts, out.len())?;
    gemm_entry(m.ty)?(m, std::slice::from_ref(acts), 0..m.rows, out);
    Ok(())
}

/// `out[t * rows + r] = Σ_c W[r, c] · x_t[c]` for `acts.len()` token rows: the same numbers
/// as [`ternary_gemv`] on each row.
pub fn ternary_gemm(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    out: &mut [f32],
) -> Result<()> {
    if out.len() != acts.len() * m.rows {
        return Err(Error::invalid(format!(
            "{} token rows of a {}-row matrix need {} outputs, got {}",
            acts.len(),
            m.rows,
            acts.len() * m.rows,
            out.len()
        )));
    }
    for a in acts {
        check_operands(m, a, m.rows)?;
    }
    gemm_entry(m.ty)?(m, acts, 0..m.rows, out);
    Ok(())
}

/// The scalar row-range GEMM of type `ty` (the dispatch table's scalar entries).
pub fn gemm_entry(ty: TensorType) -> Result<super::table::TernaryGemmFn> {
    Ok(match ty {
        TensorType::I2_S => i2s_gemm_rows,
        TensorType::TQ1_0 => tq1_gemm_rows,
        TensorType::TQ2_0 => tq2_gemm_rows,
        TensorType::STQ1_0 => stq1_gemm_rows,
        TensorType::Sherry => sherry_gemm_rows,
        other => {
            return Err(Error::unsupported(format!(
                "no scalar kernel for {other} (its kernels live with its own module)"
            )))
        }
    })
}

/// Calls `f(token, row, out)` for each token of `acts` and each row of `rows`, with `out`
/// laid out token-major (`acts.len() × rows.len()`), as the row-range entries want.
fn for_each_output(
    acts: &[QuantizedActivations],
    rows: &Range<usize>,
    out: &mut [f32],
    mut f: impl FnMut(&QuantizedActivations, usize) -> f32,
) {
    let nr = rows.len();
    assert_eq!(out.len(), acts.len() * nr, "output size");
    if nr == 0 {
        return;
    }
    for (a, o) in acts.iter().zip(out.chunks_exact_mut(nr)) {
        for (r, v) in rows.clone().zip(o.iter_mut()) {
            *v = f(a, r);
        }
    }
}

/// I2_S rows `rows` for every token row of `acts` (scalar twin of the SIMD kernels).
pub fn i2s_gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let w_scale = m.scale().unwrap_or(0.0);
    let row_bytes = m.cols / 4;
    for_each_output(acts, &rows, out, |a, r| {
        let sumi = i2s_row_code_dot(&m.data[r * row_bytes..][..row_bytes], a.qs());
        i2s_epilogue(sumi, a.row_sum(), a.act_scale(), w_scale)
    });
}

/// TQ1_0 rows `rows` for every token row of `acts`.
pub fn tq1_gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    for_each_output(acts, &rows, out, |a, r| {
        block_row_dot(m, a, r, tq::TQ1_BLOCK_BYTES, tq1_block_dot)
    });
}

/// TQ2_0 rows `rows` for every token row of `acts`.
pub fn tq2_gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    for_each_output(acts, &rows, out, |a, r| {
        block_row_dot(m, a, r, tq::TQ2_BLOCK_BYTES, tq2_block_dot)
    });
}

/// STQ1_0 rows `rows` for every token row of `acts`.
pub fn stq1_gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    for_each_output(acts, &rows, out, |a, r| {
        block_row_dot(m, a, r, stq1::BLOCK_BYTES, stq1_block_dot)
    });
}

/// Sherry rows `rows` for every token row of `acts`.
pub fn sherry_gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let w_scale = m.scale().unwrap_or(0.0);
    for_each_output(acts, &rows, out, |a, r| {
        let sumi = sherry_row_dot(m.data, m.cols, r, a.qs());
        sherry_epilogue(sumi, a.act_scale(), w_scale)
    });
}

/// `Σ w·q` over one TQ1_0 block (54 bytes) and its 256 quants.
pub fn tq1_block_dot(block: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (byte, &b) in block[..52].iter().enumerate() {
        let trits = if byte < 48 { 5 } else { 4 };
        for n in 0..trits {
            let w = tq::tq1_trit(b, n) as i32 - 1;
            sum += w * q[tq::tq1_weight_index(byte, n)] as i32;
        }
    }
    sum
}

/// `Σ w·q` over one TQ2_0 block (66 bytes) and its 256 quants.
pub fn tq2_block_dot(block: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (byte, &b) in block[..64].iter().enumerate() {
        for shift in [0u32, 2, 4, 6] {
            let w = ((b >> shift) & 3) as i32 - 1;
            sum += w * q[tq::tq2_weight_index(byte, shift)] as i32;
        }
    }
    sum
}

/// `Σ w·q` over one STQ1_0 block (42 bytes) and its 256 quants.
pub fn stq1_block_dot(block: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for g in 0..64 {
        let slot = (block[g / 2] >> (4 * (g & 1))) & 15;
        let sign = (block[32 + g / 8] >> (g % 8)) & 1;
        let packed = stq1::CODEBOOK[((sign << 4) | slot) as usize];
        let base = stq1::group_base(g);
        for p in 0..4 {
            let w = ((packed >> (2 * p)) & 3) as i32 - 1;
            sum += w * q[base + 16 * p] as i32;
        }
    }
    sum
}

/// Per-256-block types with Q8_K activations, row `r`: `sumf += (f32)sumi_b * (d_w * d_a)`
/// over the blocks in order.
fn block_row_dot(
    m: &TernaryMatrix,
    acts: &QuantizedActivations,
    r: usize,
    block_bytes: usize,
    block_dot: fn(&[u8], &[i8]) -> i32,
) -> f32 {
    let per_row = m.cols / tq::BLOCK_WEIGHTS;
    let row_bytes = per_row * block_bytes;
    let q = acts.qs();
    let d_a = acts.block_scales();
    let row = &m.data[r * row_bytes..][..row_bytes];
    let mut sumf = 0.0f32;
    for (b, block) in row.chunks_exact(block_bytes).enumerate() {
        let sumi = block_dot(block, &q[b * tq::BLOCK_WEIGHTS..][..tq::BLOCK_WEIGHTS]);
        let d_w = tq::f16_at(block, block_bytes - 2);
        sumf += sumi as f32 * (d_w * d_a[b]);
    }
    sumf
}

/// `Σ w·q` over row `r` of a packed Sherry matrix, reading its groups in place.
pub fn sherry_row_dot(data: &[u8], cols: usize, r: usize, q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for g in 0..cols / 4 {
        let (idx, sign) = sherry::group_at(data, cols, r, g);
        let mut part = 0i32;
        for (p, &w) in sherry::PATTERNS[idx as usize].iter().enumerate() {
            part += w as i32 * q[4 * g + p] as i32;
        }
        sum += if sign == 1 { -part } else { part };
    }
    sum
}
