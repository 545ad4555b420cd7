//! The front of the SIMD attention, element-wise and activation kernels (the dense row
//! dots of the output head go through the dispatch table, [`crate::kernels::table`]): each
//! function runs the version for the instruction set chosen at start-up
//! ([`crate::kernels::selection`], `TERN_ISA` forces one) and reports whether it did
//! (`Some` / `true`); on `None` / `false` the caller runs the scalar twin, which lives
//! next to the code that calls it (`model::numerics`, `model::attention`, `model::norm`,
//! `model::rope`, `kernels::scalar_dense`, `kernels::act`). Every SIMD version gives the
//! same bits as its twin, so which one ran never shows in the results.

// Kernels without a version for this target's instruction sets leave their arguments
// unused here.
#![cfg_attr(not(target_arch = "x86_64"), allow(unused_variables, unused_imports))]

use std::sync::OnceLock;

use half::f16;

use super::dispatch::{selection, Isa};

/// The kernel family these functions use in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// No SIMD version: callers run the scalar twins.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (also taken when AVX-512 is chosen: no AVX-512 versions
    /// of these kernels exist).
    Avx2,
    /// aarch64 NEON (also for `dotprod`).
    Neon,
}

/// The family picked from the process-wide selection.
pub fn family() -> Family {
    static FAMILY: OnceLock<Family> = OnceLock::new();
    *FAMILY.get_or_init(|| family_for(selection().isa))
}

/// The family that serves instruction set `isa` on this CPU.
pub fn family_for(isa: Isa) -> Family {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 if super::x86::dense_avx2::available() => Family::Avx2,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon | Isa::Dotprod if super::arm::dense_neon::available() => Family::Neon,
        _ => Family::Scalar,
    }
}

/// `Some(result)` of the version for this process's family, `None` when it has none.
macro_rules! on_family {
    ($avx2:expr) => {
        match family() {
            #[cfg(target_arch = "x86_64")]
            Family::Avx2 => Some($avx2),
            _ => None,
        }
    };
    ($avx2:expr, neon: $neon:expr) => {
        match family() {
            #[cfg(target_arch = "x86_64")]
            Family::Avx2 => Some($avx2),
            #[cfg(target_arch = "aarch64")]
            Family::Neon => Some($neon),
            _ => None,
        }
    };
}

/// Whether a version ran (its result is `()`).
fn ran(r: Option<()>) -> bool {
    r.is_some()
}

#[cfg(target_arch = "aarch64")]
use super::arm::dense_neon;
#[cfg(target_arch = "x86_64")]
use super::x86::{act_avx2, attn_avx2, dense_avx2, elementwise_avx2};

/// `Σ a·k` over an f16 key row, `numerics::dot_exact_products` order.
pub fn dot_f16_exact_halves(a: &[f32], k: &[f16]) -> Option<f32> {
    on_family!(dense_avx2::dot_f16_exact_halves(a, k), neon: dense_neon::dot_f16_exact_halves(a, k))
}

/// `attention::dot_f32`.
pub fn dot_f32_8(a: &[f32], b: &[f32]) -> Option<f32> {
    on_family!(attn_avx2::dot_f32_8(a, b))
}

/// `out[i] = x[i]` rounded to the nearest f16.
pub fn round_to_f16(x: &[f32], out: &mut [f32]) -> bool {
    ran(on_family!(attn_avx2::round_to_f16(x, out)))
}

/// `attention::softmax_in_place`.
pub fn softmax_in_place(x: &mut [f32]) -> bool {
    ran(on_family!(attn_avx2::softmax_in_place(x)))
}

/// Row `j` of one head's values: `values[j * stride + offset..][..dim]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadRows {
    pub stride: usize,
    pub offset: usize,
    pub dim: usize,
}

#[cfg(target_arch = "x86_64")]
fn view(h: HeadRows) -> attn_avx2::HeadView {
    attn_avx2::HeadView {
        stride: h.stride,
        offset: h.offset,
        dim: h.dim,
    }
}

/// `attention::value_sum_f16_probs` (`lanes`: 64 floats per output, `tail`: one f64).
pub fn value_sum_f16_probs(
    probs: &[f32],
    values: &[f16],
    head: HeadRows,
    full: usize,
    lanes: &mut [f32],
    tail: &mut [f64],
    out: &mut [f32],
) -> bool {
    ran(on_family!(attn_avx2::value_sum_f16_probs(
        probs,
        values,
        view(head),
        full,
        lanes,
        tail,
        out
    )))
}

/// `attention::value_sum_tinyblas` (`lanes`: 16 floats per output).
pub fn value_sum_tinyblas(
    probs: &[f32],
    values: &[f16],
    head: HeadRows,
    lanes: &mut [f32],
    out: &mut [f32],
) -> bool {
    ran(on_family!(attn_avx2::value_sum_tinyblas(
        probs,
        values,
        view(head),
        lanes,
        out
    )))
}

/// `attention::value_sum_f32`.
pub fn value_sum_f32(probs: &[f32], values: &[f32], head: HeadRows, out: &mut [f32]) -> bool {
    ran(on_family!(attn_avx2::value_sum_f32(
        probs,
        values,
        view(head),
        out
    )))
}

/// `norm::rms_norm`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) -> bool {
    ran(on_family!(elementwise_avx2::rms_norm(x, weight, eps, out)))
}

/// `Rope::rotate`, normal style (adjacent pairs), over `cs.len()` dimensions.
pub fn rope_normal(head: &mut [f32], cs: &[f32]) -> bool {
    ran(on_family!(elementwise_avx2::rope_normal(head, cs)))
}

/// `Rope::rotate`, NeoX style (halves), over `cs.len()` dimensions.
pub fn rope_neox(head: &mut [f32], cs: &[f32]) -> bool {
    ran(on_family!(elementwise_avx2::rope_neox(head, cs)))
}

/// The ReLU² gate `g = max(g, 0)² · u`.
pub fn relu2_gate(gate: &mut [f32], up: &[f32]) -> bool {
    ran(on_family!(elementwise_avx2::relu2_gate(gate, up)))
}

/// The SiLU gate `g = silu(g) · u` with ggml's `exp`.
pub fn silu_gate(gate: &mut [f32], up: &[f32]) -> bool {
    ran(on_family!(elementwise_avx2::silu_gate(gate, up)))
}

/// Whether every value is finite.
pub fn all_finite(x: &[f32]) -> Option<bool> {
    on_family!(act_avx2::all_finite(x))
}

/// `max |x_i|` of finite values.
pub fn abs_max(x: &[f32]) -> Option<f32> {
    on_family!(act_avx2::abs_max(x))
}

/// The index of the first value of largest magnitude.
pub fn first_abs_max_index(x: &[f32]) -> Option<Option<usize>> {
    on_family!(act_avx2::first_abs_max_index(x))
}

/// `out[i] = clamp(round_half_even(x[i] * scale), -128, 127)`, returning the sum.
pub fn quantize_scaled(x: &[f32], scale: f32, out: &mut [i8]) -> Option<i32> {
    on_family!(act_avx2::quantize_scaled(x, scale, out))
}
