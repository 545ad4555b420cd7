//! I2_S, TQ2_0 and TQ1_0 × int8 on aarch64, in two flavours: plain NEON (widening
//! multiply-accumulate `smlal` into 16-bit lanes, widened into 32-bit ones before they can
//! overflow) and NEON + dotprod (`sdot`, four products into each 32-bit lane; written as
//! inline assembly because the `vdotq_s32` intrinsic is not stable Rust).
//!
//! Every type's block is unpacked into 16-byte vectors of codes (`value + 1`, 0..3),
//! vector `i` lining up with activations `16 i .. 16 i + 16` of the block:
//! - I2_S (128 weights, 8 vectors): bytes `16 h + j` (h = 0, 1) hold weights
//!   `32 k + 16 h + j` at bits `7 - 2k .. 6 - 2k`;
//! - TQ2_0 (256, 16 vectors): bytes `32 g + 16 h + j` hold weights `128 g + 32 k + 16 h + j`
//!   at bits `2k + 1 .. 2k`;
//! - TQ1_0 (256, 16 vectors): trit `n` of a byte `x` is the top base-3 digit of
//!   `y = x·3^n mod 256` (`(y ≥ 86) + (y ≥ 171)`); `qs[16 h + j]` (h = 0, 1) gives weights
//!   `32 n + 16 h + j`, `qs[32 + j]` weights `160 + 16 n + j`, and `qh[j]` weights
//!   `240 + 4 n + j` (lane `4 n + j` of one vector holding `qh[j]·3^n`).
//!
//! The integer sums are the scalar twins' exactly (16-bit lanes hold at most 64 products of
//! at most 3·128), and the float epilogues are theirs, in the same order.

use std::arch::aarch64::*;
use std::ops::Range;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::scalar::i2s_epilogue;
use crate::quant::ternary::TernaryMatrix;
use crate::quant::{i2s, tq};

/// How products of codes and activations are accumulated.
trait Dot {
    type Acc: Copy;
    /// Vectors (of 16 products) an accumulator takes before [`Dot::widen`].
    const VECTORS_PER_WIDEN: usize;
    fn zero() -> Self::Acc;
    /// `acc + Σ c·a` over 16 byte pairs (`c` 0..3, `a` int8).
    fn add(acc: Self::Acc, c: int8x16_t, a: int8x16_t) -> Self::Acc;
    /// Adds the accumulator's lanes into 32-bit lanes.
    fn widen(acc: Self::Acc, into: int32x4_t) -> int32x4_t;
}

/// Plain NEON: `smlal`/`smlal2` into eight 16-bit lanes (two products per lane per call).
struct Mlal;

impl Dot for Mlal {
    type Acc = int16x8_t;
    // 32 calls put 64 products of |x| <= 384 into a lane: 24576 < 2^15.
    const VECTORS_PER_WIDEN: usize = 32;
    #[inline(always)]
    fn zero() -> int16x8_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vdupq_n_s16(0) }
    }
    #[inline(always)]
    fn add(acc: int16x8_t, c: int8x16_t, a: int8x16_t) -> int16x8_t {
        // SAFETY: as above.
        unsafe { vmlal_high_s8(vmlal_s8(acc, vget_low_s8(c), vget_low_s8(a)), c, a) }
    }
    #[inline(always)]
    fn widen(acc: int16x8_t, into: int32x4_t) -> int32x4_t {
        // SAFETY: as above.
        unsafe { vpadalq_s16(into, acc) }
    }
}

/// NEON + dotprod: `sdot` into four 32-bit lanes.
struct Sdot;

impl Dot for Sdot {
    type Acc = int32x4_t;
    const VECTORS_PER_WIDEN: usize = usize::MAX;
    #[inline(always)]
    fn zero() -> int32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vdupq_n_s32(0) }
    }
    #[inline(always)]
    fn add(acc: int32x4_t, c: int8x16_t, a: int8x16_t) -> int32x4_t {
        // SAFETY: the dotprod entries that reach this are installed only when the CPU
        // reports dotprod; the instruction only reads and writes registers.
        unsafe { sdot(acc, c, a) }
    }
    #[inline(always)]
    fn widen(acc: int32x4_t, into: int32x4_t) -> int32x4_t {
        // SAFETY: as above.
        unsafe { vaddq_s32(into, acc) }
    }
}

/// `acc + sdot(c, a)`.
///
/// # Safety
/// The CPU must have the dotprod extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(mut acc: int32x4_t, c: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: register-only instruction; the caller guarantees the extension.
    unsafe {
        std::arch::asm!(
            "sdot {acc:v}.4s, {c:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            c = in(vreg) c,
            a = in(vreg) a,
            options(pure, nomem, nostack)
        );
    }
    acc
}

/// One type's block: its size and how it unpacks.
trait Block {
    const BYTES: usize;
    const WEIGHTS: usize;
    /// The block's code vectors (`WEIGHTS / 16` of them) into `out`.
    ///
    /// # Safety
    /// `p` readable for `BYTES` bytes.
    unsafe fn codes(p: *const u8, out: &mut [int8x16_t; 16]);
}

struct I2s;

impl Block for I2s {
    const BYTES: usize = i2s::BLOCK_BYTES;
    const WEIGHTS: usize = i2s::BLOCK_WEIGHTS;
    #[inline(always)]
    unsafe fn codes(p: *const u8, out: &mut [int8x16_t; 16]) {
        // SAFETY: bytes 0..32 of the block.
        unsafe {
            let m = vdupq_n_u8(3);
            for h in 0..2 {
                let w = vld1q_u8(p.add(16 * h));
                out[h] = vreinterpretq_s8_u8(vshrq_n_u8::<6>(w));
                out[2 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<4>(w), m));
                out[4 + h] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<2>(w), m));
                out[6 + h] = vreinterpretq_s8_u8(vandq_u8(w, m));
            }
        }
    }
}

struct Tq2;

impl Block for Tq2 {
    const BYTES: usize = tq::TQ2_BLOCK_BYTES;
    const WEIGHTS: usize = tq::BLOCK_WEIGHTS;
    #[inline(always)]
    unsafe fn codes(p: *const u8, out: &mut [int8x16_t; 16]) {
        // SAFETY: bytes 0..64 of the block.
        unsafe {
            let m = vdupq_n_u8(3);
            for g in 0..2 {
                for h in 0..2 {
                    let w = vld1q_u8(p.add(32 * g + 16 * h));
                    let base = 8 * g + h;
                    out[base] = vreinterpretq_s8_u8(vandq_u8(w, m));
                    out[base + 2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<2>(w), m));
                    out[base + 4] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8::<4>(w), m));
                    out[base + 6] = vreinterpretq_s8_u8(vshrq_n_u8::<6>(w));
                }
            }
        }
    }
}

struct Tq1;

/// The top base-3 digit of each byte: `(y ≥ 86) + (y ≥ 171)`.
#[inline(always)]
fn top_trit(y: uint8x16_t) -> int8x16_t {
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe {
        let a = vcgeq_u8(y, vdupq_n_u8(86));
        let b = vcgeq_u8(y, vdupq_n_u8(171));
        // Each mask is 0 or -1: the digit is -(a + b).
        vnegq_s8(vaddq_s8(vreinterpretq_s8_u8(a), vreinterpretq_s8_u8(b)))
    }
}

impl Block for Tq1 {
    const BYTES: usize = tq::TQ1_BLOCK_BYTES;
    const WEIGHTS: usize = tq::BLOCK_WEIGHTS;
    #[inline(always)]
    unsafe fn codes(p: *const u8, out: &mut [int8x16_t; 16]) {
        const POW3: [u8; 5] = [1, 3, 9, 27, 81];
        const QH_POW: [u8; 16] = [1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27];
        // SAFETY: bytes 0..52 of the block.
        unsafe {
            let x0 = vld1q_u8(p);
            let x1 = vld1q_u8(p.add(16));
            let x2 = vld1q_u8(p.add(32));
            let qh = vreinterpretq_u8_u32(vdupq_n_u32((p.add(48) as *const u32).read_unaligned()));
            for (n, &pw) in POW3.iter().enumerate() {
                let k = vdupq_n_u8(pw);
                out[2 * n] = top_trit(vmulq_u8(x0, k));
                out[2 * n + 1] = top_trit(vmulq_u8(x1, k));
                out[10 + n] = top_trit(vmulq_u8(x2, k));
            }
            out[15] = top_trit(vmulq_u8(qh, vld1q_u8(QH_POW.as_ptr())));
        }
    }
}

/// `Σ code·q` over block `b` of a row (codes already unpacked) with one activation row.
///
/// # Safety
/// `q` readable for the block's `B::WEIGHTS` quants.
#[inline(always)]
unsafe fn block_code_dot<B: Block, D: Dot>(codes: &[int8x16_t; 16], q: *const i8) -> int32x4_t {
    let mut acc32 = unsafe { vdupq_n_s32(0) };
    let mut acc = D::zero();
    for (i, c) in codes[..B::WEIGHTS / 16].iter().enumerate() {
        if i > 0 && i % D::VECTORS_PER_WIDEN == 0 {
            acc32 = D::widen(acc, acc32);
            acc = D::zero();
        }
        // SAFETY: quants 16 i .. 16 i + 16 of the block.
        let a = unsafe { vld1q_s8(q.add(16 * i)) };
        acc = D::add(acc, *c, a);
    }
    D::widen(acc, acc32)
}

/// I2_S rows: `Σ code·q` over the whole row, then bitnet.cpp's epilogue.
#[inline(always)]
fn i2s_rows<D: Dot>(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let row_bytes = m.cols / 4;
    assert!(m.cols % i2s::BLOCK_WEIGHTS == 0, "I2_S columns");
    assert!(rows.start <= rows.end && rows.end <= m.rows, "row range");
    assert!(m.data.len() >= m.rows * row_bytes, "I2_S bytes");
    assert_eq!(out.len(), acts.len() * rows.len(), "output size");
    for a in acts {
        assert_eq!(a.qs().len(), m.cols, "activation length");
    }
    let nb = m.cols / i2s::BLOCK_WEIGHTS;
    let nr = rows.len();
    let w_scale = m.scale().unwrap_or(0.0);
    // Blocks per 32-bit widening of the per-token sums (8 vectors a block).
    let mut codes = [unsafe { vdupq_n_s8(0) }; 16];
    for t0 in (0..acts.len()).step_by(4) {
        let tn = (acts.len() - t0).min(4);
        for r in rows.clone() {
            let row = &m.data[r * row_bytes..][..row_bytes];
            let mut sums = [unsafe { vdupq_n_s32(0) }; 4];
            for b in 0..nb {
                // SAFETY: block b of the row is inside `row`.
                unsafe { I2s::codes(row[b * i2s::BLOCK_BYTES..].as_ptr(), &mut codes) };
                for (t, s) in sums[..tn].iter_mut().enumerate() {
                    let q = acts[t0 + t].qs()[b * i2s::BLOCK_WEIGHTS..].as_ptr();
                    // SAFETY: the block's 128 quants are inside the row.
                    *s = unsafe { vaddq_s32(*s, block_code_dot::<I2s, D>(&codes, q)) };
                }
            }
            for (t, s) in sums[..tn].iter().enumerate() {
                let a = &acts[t0 + t];
                // SAFETY: NEON baseline.
                let sumi = unsafe { vaddvq_s32(*s) };
                out[(t0 + t) * nr + (r - rows.start)] =
                    i2s_epilogue(sumi, a.row_sum(), a.act_scale(), w_scale);
            }
        }
    }
}

/// TQ rows: per block `Σ code·q − Σ q`, accumulated in f32 as the scalar twin does.
#[inline(always)]
fn tq_rows<B: Block, D: Dot>(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let nb = m.cols / tq::BLOCK_WEIGHTS;
    let row_bytes = nb * B::BYTES;
    assert!(m.cols % tq::BLOCK_WEIGHTS == 0, "TQ columns");
    assert!(rows.start <= rows.end && rows.end <= m.rows, "row range");
    assert!(m.data.len() >= m.rows * row_bytes, "TQ bytes");
    assert_eq!(out.len(), acts.len() * rows.len(), "output size");
    for a in acts {
        assert_eq!(a.qs().len(), m.cols, "activation length");
        assert!(a.block_scales().len() >= nb, "activation scales");
        assert!(a.lut().len() >= nb, "TQ activations not prepared");
    }
    let nr = rows.len();
    let mut codes = [unsafe { vdupq_n_s8(0) }; 16];
    for t0 in (0..acts.len()).step_by(4) {
        let tn = (acts.len() - t0).min(4);
        for r in rows.clone() {
            let row = &m.data[r * row_bytes..][..row_bytes];
            let mut sumf = [0.0f32; 4];
            for b in 0..nb {
                let block = &row[b * B::BYTES..][..B::BYTES];
                // SAFETY: `block` is B::BYTES long.
                unsafe { B::codes(block.as_ptr(), &mut codes) };
                let d_w = tq::f16_at(block, B::BYTES - 2);
                for (t, s) in sumf[..tn].iter_mut().enumerate() {
                    let a = &acts[t0 + t];
                    let q = a.qs()[b * tq::BLOCK_WEIGHTS..].as_ptr();
                    // SAFETY: the block's 256 quants are inside the row.
                    let v = unsafe { block_code_dot::<B, D>(&codes, q) };
                    // SAFETY: NEON baseline.
                    let sumi = unsafe { vaddvq_s32(v) } - a.lut()[b] as i32;
                    *s += sumi as f32 * (d_w * a.block_scales()[b]);
                }
            }
            for (t, &s) in sumf[..tn].iter().enumerate() {
                out[(t0 + t) * nr + (r - rows.start)] = s;
            }
        }
    }
}

/// Dispatch-table entries, plain NEON.
pub fn i2s_neon(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    i2s_rows::<Mlal>(m, a, r, o)
}

/// Dispatch-table entries, plain NEON.
pub fn tq2_neon(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    tq_rows::<Tq2, Mlal>(m, a, r, o)
}

/// Dispatch-table entries, plain NEON.
pub fn tq1_neon(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    tq_rows::<Tq1, Mlal>(m, a, r, o)
}

/// Dispatch-table entry, NEON + dotprod (installed only when the CPU has it).
pub fn i2s_dotprod(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    // SAFETY: installed only when the CPU reports dotprod.
    unsafe { i2s_dotprod_impl(m, a, r, o) }
}

/// Dispatch-table entry, NEON + dotprod (installed only when the CPU has it).
pub fn tq2_dotprod(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    // SAFETY: installed only when the CPU reports dotprod.
    unsafe { tq2_dotprod_impl(m, a, r, o) }
}

/// Dispatch-table entry, NEON + dotprod (installed only when the CPU has it).
pub fn tq1_dotprod(m: &TernaryMatrix, a: &[QuantizedActivations], r: Range<usize>, o: &mut [f32]) {
    // SAFETY: installed only when the CPU reports dotprod.
    unsafe { tq1_dotprod_impl(m, a, r, o) }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn i2s_dotprod_impl(
    m: &TernaryMatrix,
    a: &[QuantizedActivations],
    r: Range<usize>,
    o: &mut [f32],
) {
    i2s_rows::<Sdot>(m, a, r, o)
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tq2_dotprod_impl(
    m: &TernaryMatrix,
    a: &[QuantizedActivations],
    r: Range<usize>,
    o: &mut [f32],
) {
    tq_rows::<Tq2, Sdot>(m, a, r, o)
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tq1_dotprod_impl(
    m: &TernaryMatrix,
    a: &[QuantizedActivations],
    r: Range<usize>,
    o: &mut [f32],
) {
    tq_rows::<Tq1, Sdot>(m, a, r, o)
}
