//! The dispatch table: one function pointer per (operation, tensor type), filled once per
//! process from the instruction set [`selection`](super::selection) chose (`TERN_ISA`
//! forces one). Callers check operands once ([`super::scalar::check_operands`]) and then
//! call through the table; every entry of every path gives the same numbers as the scalar
//! entry, bit for bit (the property tests in `kernels::tests` hold them to it).
//!
//! Ternary entries are row-range GEMMs so that threads can split a matrix by contiguous
//! rows: `gemm(m, acts, rows, out)` computes output rows `rows` of `m` for every token row
//! in `acts`, into `out` laid out token-major (`acts.len() × rows.len()`,
//! `out[t * rows.len() + (r - rows.start)]`). A type may also have a `prepare` hook, run
//! once per activation row after quantization and before any thread calls `gemm`: LUT
//! kernels build their tables there (into [`QuantizedActivations::lut_mut`]), so the
//! tables are built once and shared by every thread.
//!
//! Dense entries are row dots (one weight row with one activation row), in the sum orders
//! [`crate::model::linear`] picks to match ggml.

use std::ops::Range;
use std::sync::OnceLock;

use super::act::QuantizedActivations;
use super::dispatch::{selection, Isa};
use super::scalar_dense::{self, DenseActivations};
use super::{scalar, x86};
use crate::quant::ternary::TernaryMatrix;
use crate::quant::TensorType;

/// Output rows `rows` of `m` for every token row of `acts`, token-major into `out`
/// (`acts.len() × rows.len()` values). The operands satisfy
/// [`scalar::check_operands`] and `rows.end <= m.rows`; entries may panic otherwise but
/// never read or write out of bounds.
pub type TernaryGemmFn =
    fn(m: &TernaryMatrix, acts: &[QuantizedActivations], rows: Range<usize>, out: &mut [f32]);

/// Work done once per activation row of a matrix's type before its `gemm` runs (e.g.
/// building lookup tables into [`QuantizedActivations::lut_mut`]). Given the number of
/// columns; must not allocate once the row's buffers have reached their size for that
/// column count.
pub type PrepareFn = fn(cols: usize, act: &mut QuantizedActivations);

/// `Σ w·x` of one dense weight row (its bytes) with one activation row converted to the
/// weight type's `vec_dot_type` ([`DenseActivations`]).
pub type DenseRowDotFn = fn(row: &[u8], act: &DenseActivations) -> f32;

/// `out[i] = Σ w·x` of `out.len()` consecutive dense weight rows (`rows`: their bytes)
/// with one activation row converted to the weight type's `vec_dot_type`: the row dot of
/// the type, row after row, with work shared among rows.
pub type DenseRowsDotFn = fn(rows: &[u8], act: &DenseActivations, out: &mut [f32]);

/// `Σ w·x` of one F32 or F16 weight row (its bytes) with f32 activations, in one of
/// ggml's summation orders.
pub type FloatRowDotFn = fn(x: &[f32], row: &[u8]) -> f32;

/// The kernels of one ternary type.
#[derive(Clone, Copy)]
pub struct TernaryKernel {
    /// The row-range GEMM (also the GEMV: one token row).
    pub gemm: TernaryGemmFn,
    /// Optional per-activation-row preparation (LUT building).
    pub prepare: Option<PrepareFn>,
    /// Which implementation this is, for `tern_system_info` and benchmarks.
    pub name: &'static str,
}

/// Row dots of the dense types.
#[derive(Clone, Copy)]
pub struct DenseKernels {
    /// F32 weights, one token: ggml's `ggml_vec_dot_f32` order (products fused).
    pub f32_fused: FloatRowDotFn,
    /// F32 weights, batches with `cols % 16 == 0`: llamafile's tinyBLAS order.
    pub f32_tinyblas: FloatRowDotFn,
    /// F16 weights, one token, activations already rounded to f16 values: ggml's
    /// `ggml_vec_dot_f16` order (exact products).
    pub f16_exact: FloatRowDotFn,
    /// F16 weights, batches with `cols % 16 == 0`: llamafile's tinyBLAS order.
    pub f16_tinyblas: FloatRowDotFn,
    /// BF16 weights with BF16 activations.
    pub bf16: DenseRowDotFn,
    /// Q8_0 weights with Q8_0 activations.
    pub q8_0: DenseRowDotFn,
    /// Q4_0 weights with Q8_0 activations.
    pub q4_0: DenseRowDotFn,
    /// Q6_K weights with Q8_K activations.
    pub q6_k: DenseRowDotFn,
    /// Q6_K over several rows at once, when the path has such a kernel (giving what
    /// `q6_k` gives row by row); `None` means `q6_k` row by row.
    pub q6_k_rows: Option<DenseRowsDotFn>,
    /// Which implementation this is.
    pub name: &'static str,
}

impl DenseKernels {
    /// The row dot of a quantized or BF16 dense type (`None` for F32/F16, which use the
    /// float entries, and for other types).
    pub fn converted_dot(&self, ty: TensorType) -> Option<DenseRowDotFn> {
        Some(match ty {
            TensorType::BF16 => self.bf16,
            TensorType::Q8_0 => self.q8_0,
            TensorType::Q4_0 => self.q4_0,
            TensorType::Q6_K => self.q6_k,
            _ => return None,
        })
    }

    /// The several-row dot of a converted dense type, when the path has one.
    pub fn converted_rows(&self, ty: TensorType) -> Option<DenseRowsDotFn> {
        match ty {
            TensorType::Q6_K => self.q6_k_rows,
            _ => None,
        }
    }
}

/// Every kernel of one instruction-set path.
#[derive(Clone, Copy)]
pub struct KernelTable {
    /// The path these kernels belong to.
    pub isa: Isa,
    pub i2s: TernaryKernel,
    pub tq1_0: TernaryKernel,
    pub tq2_0: TernaryKernel,
    pub stq1_0: TernaryKernel,
    pub sherry: TernaryKernel,
    pub dense: DenseKernels,
}

impl KernelTable {
    /// The kernels of ternary type `ty` (`None` for types without kernels: TL1/TL2 are
    /// repacked to I2_S at load).
    pub fn ternary(&self, ty: TensorType) -> Option<&TernaryKernel> {
        Some(match ty {
            TensorType::I2_S => &self.i2s,
            TensorType::TQ1_0 => &self.tq1_0,
            TensorType::TQ2_0 => &self.tq2_0,
            TensorType::STQ1_0 => &self.stq1_0,
            TensorType::Sherry => &self.sherry,
            _ => return None,
        })
    }

    /// One line naming the implementation behind each entry.
    pub fn describe(&self) -> String {
        format!(
            "I2_S {}, TQ1_0 {}, TQ2_0 {}, STQ1_0 {}, Sherry {}, dense {}",
            self.i2s.name,
            self.tq1_0.name,
            self.tq2_0.name,
            self.stq1_0.name,
            self.sherry.name,
            self.dense.name
        )
    }
}

/// The scalar reference entries.
pub fn scalar_table() -> KernelTable {
    let t = |gemm: TernaryGemmFn| TernaryKernel {
        gemm,
        prepare: None,
        name: "scalar",
    };
    KernelTable {
        isa: Isa::Scalar,
        i2s: t(scalar::i2s_gemm_rows),
        tq1_0: t(scalar::tq1_gemm_rows),
        tq2_0: t(scalar::tq2_gemm_rows),
        stq1_0: t(scalar::stq1_gemm_rows),
        sherry: t(scalar::sherry_gemm_rows),
        dense: DenseKernels {
            f32_fused: scalar_dense::f32_row_dot_fused,
            f32_tinyblas: scalar_dense::f32_row_dot_tinyblas,
            f16_exact: scalar_dense::f16_row_dot_exact,
            f16_tinyblas: scalar_dense::f16_row_dot_tinyblas,
            bf16: scalar_dense::bf16_row_dot,
            q8_0: scalar_dense::q8_0_row_dot,
            q4_0: scalar_dense::q4_0_row_dot,
            q6_k: scalar_dense::q6_k_row_dot,
            q6_k_rows: None,
            name: "scalar",
        },
    }
}

/// The table of path `isa`, or `None` when this CPU cannot run it (tests and benchmarks
/// use this to run every path the machine has, side by side).
pub fn table_for(isa: Isa) -> Option<KernelTable> {
    if !selection().features.supported_isas().contains(&isa) {
        return None;
    }
    let mut t = scalar_table();
    t.isa = isa;
    match isa {
        Isa::Scalar => {}
        // AVX-512 has no kernels of its own yet: it runs the AVX2 ones.
        Isa::Avx2 | Isa::Avx512 => x86::install(&mut t),
        Isa::Neon | Isa::Dotprod => super::arm::install(&mut t, isa),
    }
    Some(t)
}

/// The process-wide table, for the path [`selection`] chose.
pub fn table() -> &'static KernelTable {
    static TABLE: OnceLock<KernelTable> = OnceLock::new();
    TABLE.get_or_init(|| table_for(selection().isa).unwrap_or_else(scalar_table))
}
