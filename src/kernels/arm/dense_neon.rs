//! NEON row dot products for the dense weight types of embeddings and output heads, each
//! giving exactly the float of its scalar twin (the same list as `x86::dense_avx2`):
//! the 4 × 16-lane f32 accumulators of ggml's dot products are sixteen 4-lane registers,
//! combined in the twin's tree order; the quantized dots compute their integer parts
//! exactly (any order) and apply the float epilogue per block in sequence.
//!
//! Half floats are widened with `fcvtl` (base ARMv8, no FP16 extension needed), through
//! inline assembly because the `float16x4_t` intrinsics are not stable in Rust.
//!
//! Every public function is safe: it checks lengths and panics on a mismatch; NEON is
//! part of every aarch64 CPU this crate builds for.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::kernels::scalar_dense::DenseActivations;
use crate::kernels::table::DenseKernels;
use crate::quant::float::f16_bits_to_f32;
use crate::quant::q4_0::BLOCK_Q4_0_BYTES;
use crate::quant::q6_k::{BlockQ8K, BLOCK_Q6_K_BYTES};
use crate::quant::q8_0::{BlockQ8_0, BLOCK_Q8_0_BYTES};

/// Whether this CPU runs the NEON kernels.
#[inline]
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[inline]
#[track_caller]
fn require() {
    assert!(available(), "NEON kernel called on a CPU without NEON");
}

/// `Σ a_i·w_i` for F16 weights (little-endian bytes) in `numerics::dot_exact_products`
/// order: each product rounded to f32, then added.
pub fn dot_f16_exact(a: &[f32], w: &[u8]) -> f32 {
    require();
    assert_eq!(w.len(), 2 * a.len());
    // SAFETY: NEON present; `w` holds `a.len()` halves.
    unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr(), a.len()) }
}

/// [`dot_f16_exact`] over `half::f16` values (the f16 KV cache).
pub fn dot_f16_exact_halves(a: &[f32], w: &[half::f16]) -> f32 {
    require();
    assert_eq!(w.len(), a.len());
    // SAFETY: NEON present; `half::f16` is a `repr(transparent)` u16, so `w` is
    // `2 * a.len()` readable bytes of little-endian halves.
    unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr().cast::<u8>(), a.len()) }
}

/// `out[r] = dot_f16_exact(a, row r of w)`.
pub fn gemv_f16_exact(a: &[f32], w: &[u8], out: &mut [f32]) {
    require();
    let rb = 2 * a.len();
    assert_eq!(w.len(), rb * out.len());
    for (r, o) in out.iter_mut().enumerate() {
        // SAFETY: NEON present; row `r` lies inside `w`.
        *o = unsafe { dot_f16_raw(a.as_ptr(), w.as_ptr().add(r * rb), a.len()) };
    }
}

/// `Σ a_i·w_i` for F32 weights in `numerics::dot_fused` order.
pub fn dot_f32_fused(a: &[f32], w: &[u8]) -> f32 {
    require();
    assert_eq!(w.len(), 4 * a.len());
    // SAFETY: NEON present; `w` holds `a.len()` floats.
    unsafe { dot_f32_raw(a.as_ptr(), w.as_ptr(), a.len()) }
}

/// `out[r] = dot_f32_fused(a, row r of w)`.
pub fn gemv_f32_fused(a: &[f32], w: &[u8], out: &mut [f32]) {
    require();
    let rb = 4 * a.len();
    assert_eq!(w.len(), rb * out.len());
    for (r, o) in out.iter_mut().enumerate() {
        // SAFETY: NEON present; row `r` lies inside `w`.
        *o = unsafe { dot_f32_raw(a.as_ptr(), w.as_ptr().add(r * rb), a.len()) };
    }
}

/// One Q8_0 row with Q8_0 activations (`scalar_dense` order).
pub fn dot_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q8_0_BYTES);
    // SAFETY: NEON present; `w` holds `x.len()` blocks.
    unsafe { dot_q8_0_raw(w, x) }
}

/// One Q4_0 row with Q8_0 activations (`scalar_dense` order).
pub fn dot_q4_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q4_0_BYTES);
    // SAFETY: NEON present; `w` holds `x.len()` blocks.
    unsafe { dot_q4_0_raw(w, x) }
}

/// One Q6_K row with Q8_K activations (`scalar_dense` order: eight integer lanes by
/// element index mod 8, each scaled into its own f32 sum).
pub fn dot_q6_k(w: &[u8], x: &[BlockQ8K]) -> f32 {
    require();
    assert_eq!(w.len(), x.len() * BLOCK_Q6_K_BYTES);
    // SAFETY: NEON present; `w` holds `x.len()` super-blocks.
    unsafe { dot_q6_k_raw(w, x) }
}

/// [`dot_q8_0`] as a dispatch-table entry.
pub fn q8_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q8_0(
        row,
        act.q8_0_blocks().expect("activations converted for Q8_0"),
    )
}

/// [`dot_q4_0`] as a dispatch-table entry.
pub fn q4_0_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q4_0(
        row,
        act.q8_0_blocks().expect("activations converted for Q4_0"),
    )
}

/// [`dot_q6_k`] as a dispatch-table entry.
pub fn q6_k_row_dot(row: &[u8], act: &DenseActivations) -> f32 {
    dot_q6_k(
        row,
        act.q8_k_blocks().expect("activations converted for Q6_K"),
    )
}

/// `base` with the dense entries this file has (the tinyBLAS batch orders and BF16 keep
/// `base`'s).
pub fn table_entries(base: DenseKernels) -> DenseKernels {
    DenseKernels {
        f32_fused: dot_f32_fused,
        f16_exact: dot_f16_exact,
        q8_0: q8_0_row_dot,
        q4_0: q4_0_row_dot,
        q6_k: q6_k_row_dot,
        name: "neon",
        ..base
    }
}

/// Four halves at `p` widened to f32.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load4_f16(p: *const u8) -> float32x4_t {
    let h = vreinterpret_f32_u8(vld1_u8(p));
    let out: float32x4_t;
    // SAFETY (of the asm): fcvtl reads one 64-bit register and writes one 128-bit one.
    asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) h,
         options(pure, nomem, nostack));
    out
}

/// `_mm512_reduce_add_ps`'s tree over 16 lanes in four quads.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn reduce16(q: [float32x4_t; 4]) -> f32 {
    let a_lo = vaddq_f32(q[0], q[2]);
    let a_hi = vaddq_f32(q[1], q[3]);
    let b = vaddq_f32(a_lo, a_hi);
    let c = vaddq_f32(b, vextq_f32(b, b, 2));
    vgetq_lane_f32(c, 0) + vgetq_lane_f32(c, 1)
}

/// ggml's `(acc0 + acc2) + (acc1 + acc3)` then `reduce16`, accumulator `r` in quads
/// `4r..4r + 4`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn combine4x16(acc: &[float32x4_t; 16]) -> f32 {
    let v: [float32x4_t; 4] = std::array::from_fn(|i| {
        vaddq_f32(
            vaddq_f32(acc[i], acc[8 + i]),
            vaddq_f32(acc[4 + i], acc[12 + i]),
        )
    });
    reduce16(v)
}

#[target_feature(enable = "neon")]
unsafe fn dot_f16_raw(a: *const f32, w: *const u8, n: usize) -> f32 {
    let full = n / 64 * 64;
    let mut acc = [vdupq_n_f32(0.0); 16];
    let mut i = 0;
    while i < full {
        for (j, s) in acc.iter_mut().enumerate() {
            let off = i + 4 * j;
            let prod = vmulq_f32(vld1q_f32(a.add(off)), load4_f16(w.add(2 * off)));
            *s = vaddq_f32(*s, prod);
        }
        i += 64;
    }
    let mut sum = f64::from(combine4x16(&acc));
    for j in full..n {
        let wv = f16_bits_to_f32(u16::from_le_bytes([*w.add(2 * j), *w.add(2 * j + 1)]));
        sum += f64::from(*a.add(j) * wv);
    }
    sum as f32
}

#[target_feature(enable = "neon")]
unsafe fn dot_f32_raw(a: *const f32, w: *const u8, n: usize) -> f32 {
    let full = n / 64 * 64;
    let mut acc = [vdupq_n_f32(0.0); 16];
    let mut i = 0;
    while i < full {
        for (j, s) in acc.iter_mut().enumerate() {
            let off = i + 4 * j;
            let wv = vreinterpretq_f32_u8(vld1q_u8(w.add(4 * off)));
            *s = vfmaq_f32(*s, vld1q_f32(a.add(off)), wv);
        }
        i += 64;
    }
    let mut sum = f64::from(combine4x16(&acc));
    for j in full..n {
        let b = std::slice::from_raw_parts(w.add(4 * j), 4);
        sum += f64::from(*a.add(j) * f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    sum as f32
}

#[inline]
fn f16_at(p: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([p[0], p[1]]))
}

/// Exact `Σ w_i x_i` of 32 int8 pairs.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot32_i8(w0: int8x16_t, w1: int8x16_t, x: &[i8; 32]) -> i32 {
    let x0 = vld1q_s8(x.as_ptr());
    let x1 = vld1q_s8(x.as_ptr().add(16));
    let mut acc = vdupq_n_s32(0);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
    acc = vpadalq_s16(acc, vmull_high_s8(w0, x0));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
    acc = vpadalq_s16(acc, vmull_high_s8(w1, x1));
    vaddvq_s32(acc)
}

#[target_feature(enable = "neon")]
unsafe fn dot_q8_0_raw(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (blk, y) in w.chunks_exact(BLOCK_Q8_0_BYTES).zip(x) {
        let q = blk.as_ptr().add(2).cast::<i8>();
        let sumi = dot32_i8(vld1q_s8(q), vld1q_s8(q.add(16)), &y.qs);
        sumf += sumi as f32 * (f16_at(blk) * y.scale());
    }
    sumf
}

#[target_feature(enable = "neon")]
unsafe fn dot_q4_0_raw(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    let low = vdupq_n_u8(0x0f);
    let eight = vdupq_n_s8(8);
    for (blk, y) in w.chunks_exact(BLOCK_Q4_0_BYTES).zip(x) {
        let packed = vld1q_u8(blk.as_ptr().add(2));
        let w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(packed, low)), eight);
        let w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), eight);
        let sumi = dot32_i8(w0, w1, &y.qs);
        sumf += sumi as f32 * f16_at(blk) * y.scale();
    }
    sumf
}

#[target_feature(enable = "neon")]
unsafe fn dot_q6_k_raw(w: &[u8], x: &[BlockQ8K]) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let m3 = vdupq_n_u8(0x03);
    let m32 = vdupq_n_s8(32);
    let mut sums = [vdupq_n_f32(0.0); 2];
    for (blk, y) in w.chunks_exact(BLOCK_Q6_K_BYTES).zip(x) {
        let p = blk.as_ptr();
        let scales = &blk[192..208];
        let mut lanes = [vdupq_n_s32(0); 2];
        for h in 0..2 {
            for half in 0..2 {
                // 16 of the 32 `l` positions of this 128-weight half at a time.
                let o = 16 * half;
                let ql0 = vld1q_u8(p.add(64 * h + o));
                let ql1 = vld1q_u8(p.add(64 * h + 32 + o));
                let qh = vld1q_u8(p.add(128 + 32 * h + o));
                let q = [
                    vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4)),
                    vorrq_u8(
                        vandq_u8(ql1, m4),
                        vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4),
                    ),
                    vorrq_u8(
                        vshrq_n_u8(ql0, 4),
                        vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m3), 4),
                    ),
                    vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)),
                ];
                for (c, qc) in q.into_iter().enumerate() {
                    // Weights 128h + 32c + o .. + 16: one group of 16, one scale.
                    let base = 128 * h + 32 * c + o;
                    let qs = vsubq_s8(vreinterpretq_s8_u8(qc), m32);
                    let ys = vld1q_s8(y.qs.as_ptr().add(base));
                    let lo = vmull_s8(vget_low_s8(qs), vget_low_s8(ys));
                    let hi = vmull_high_s8(qs, ys);
                    // Lane l of the group gets elements l and l + 8: |sum| <= 8192.
                    let g = vaddq_s16(lo, hi);
                    let sc = scales[base / 16] as i8 as i16;
                    lanes[0] = vmlal_n_s16(lanes[0], vget_low_s16(g), sc);
                    lanes[1] = vmlal_high_n_s16(lanes[1], g, sc);
                }
            }
        }
        let d = vdupq_n_f32(f16_at(&blk[208..210]) * y.d);
        for (s, l) in sums.iter_mut().zip(lanes) {
            *s = vaddq_f32(*s, vmulq_f32(d, vcvtq_f32_s32(l)));
        }
    }
    let mut s = [0f32; 8];
    vst1q_f32(s.as_mut_ptr(), sums[0]);
    vst1q_f32(s.as_mut_ptr().add(4), sums[1]);
    s.iter().fold(0f32, |acc, &v| acc + v)
}

#[cfg(test)]
#[path = "dense_neon_tests.rs"]
mod tests;
