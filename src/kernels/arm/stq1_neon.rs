//! STQ1_0 on NEON: one 64-weight chunk (16 groups) per step.
//!
//! The chunk's 16 slot nibbles are spread to 16 bytes, its 16 sign bits to byte masks; for
//! each lane `p` a `tbl` of the lane's value table (`-value` for negated groups, chosen by
//! `bsl`) gives the 16 weights `64c + 16p ..`, multiplied exactly with the reordered quants of
//! [`super::super::stq1_prep`] (`smull`, pairwise-accumulated into int32). Per block the
//! exact `Σ w·q` feeds the scalar epilogue `sumf += sumi · (d_w · d_a)`, blocks in order.

use std::arch::aarch64::*;

use crate::kernels::act::QuantizedActivations;
use crate::kernels::stq1_prep::prepared_token;
use crate::kernels::stq1_prep::Stq1Token;
use crate::quant::stq1::{lane_values, BLOCK_BYTES, BLOCK_WEIGHTS};
use crate::quant::ternary::TernaryMatrix;
use crate::quant::tq::f16_at;
use std::ops::Range;

/// Whether this CPU can run the kernels of this module.
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

const TOKENS_PER_PASS: usize = 4;

const fn value_table(p: usize, negate: bool) -> [i8; 16] {
    let mut t = [0i8; 16];
    let mut s = 0;
    while s < 16 {
        let v = lane_values(0, s as u8)[p];
        t[s] = if negate { -v } else { v };
        s += 1;
    }
    t
}

const POS: [[i8; 16]; 4] = [
    value_table(0, false),
    value_table(1, false),
    value_table(2, false),
    value_table(3, false),
];
const NEG: [[i8; 16]; 4] = [
    value_table(0, true),
    value_table(1, true),
    value_table(2, true),
    value_table(3, true),
];

/// As [`crate::kernels::x86::stq1_avx2::stq1_gemm`], on NEON.
pub fn stq1_gemm<'a>(
    data: &[u8],
    cols: usize,
    n_tokens: usize,
    token: &dyn Fn(usize) -> Stq1Token<'a>,
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert!(
        available(),
        "the STQ1_0 SIMD kernel needs its instruction set"
    );
    assert!(cols % BLOCK_WEIGHTS == 0);
    let row_bytes = cols / BLOCK_WEIGHTS * BLOCK_BYTES;
    assert!(rows.end * row_bytes <= data.len());
    let n = rows.len();
    assert_eq!(out.len(), n_tokens * n);
    let mut t0 = 0;
    while t0 < n_tokens {
        let nt = (n_tokens - t0).min(TOKENS_PER_PASS);
        let empty = Stq1Token {
            qs: &[],
            sums: &[],
            d: &[],
        };
        let mut toks = [empty; TOKENS_PER_PASS];
        for (dt, tok) in toks[..nt].iter_mut().enumerate() {
            *tok = token(t0 + dt);
            assert!(
                tok.qs.len() == cols
                    && tok.d.len() == cols / BLOCK_WEIGHTS
                    && tok.sums.len() == 2 * (cols / BLOCK_WEIGHTS)
            );
        }
        let toks = &toks[..nt];
        for r in rows.clone() {
            let row = &data[r * row_bytes..][..row_bytes];
            let mut res = [0f32; TOKENS_PER_PASS];
            // SAFETY: the instruction set is present (checked above); the row holds
            // `cols / 256` blocks and every token `cols` quants and `cols / 256` scales and
            // sums (checked above), which is all `row_dots` reads.
            unsafe {
                match toks.len() {
                    1 => row_dots::<1>(row, toks, &mut res),
                    2 => row_dots::<2>(row, toks, &mut res),
                    3 => row_dots::<3>(row, toks, &mut res),
                    _ => row_dots::<4>(row, toks, &mut res),
                }
            }
            for (dt, v) in res[..nt].iter().enumerate() {
                out[(t0 + dt) * n + (r - rows.start)] = *v;
            }
        }
        t0 += nt;
    }
}

/// The dispatch-table entry ([`crate::kernels::table::TernaryGemmFn`]) over rows prepared by
/// [`prepare_stq1`](crate::kernels::stq1_prep::prepare_stq1).
pub fn gemm_rows(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    stq1_gemm(
        m.data,
        m.cols,
        acts.len(),
        &|t| prepared_token(&acts[t]),
        rows,
        out,
    );
}

#[target_feature(enable = "neon")]
unsafe fn row_dots<const NT: usize>(row: &[u8], toks: &[Stq1Token], res: &mut [f32]) {
    const PICK: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    const BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    let pick = vld1q_u8(PICK.as_ptr());
    let bits = vld1q_u8(BITS.as_ptr());
    let nib = vdup_n_u8(0x0f);
    let mut pos = [vdupq_n_s8(0); 4];
    let mut neg = [vdupq_n_s8(0); 4];
    for p in 0..4 {
        pos[p] = vld1q_s8(POS[p].as_ptr());
        neg[p] = vld1q_s8(NEG[p].as_ptr());
    }
    let mut sumf = [0f32; NT];
    for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
        let bp = block.as_ptr();
        let mut acc = [vdupq_n_s32(0); NT];
        for c in 0..4 {
            let raw = vld1_u8(bp.add(8 * c));
            let lo = vand_u8(raw, nib);
            let hi = vshr_n_u8::<4>(raw);
            let slot = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
            let sw = std::ptr::read_unaligned(bp.add(32 + 2 * c) as *const u16);
            let s = vreinterpretq_u8_u16(vdupq_n_u16(sw));
            let m = vtstq_u8(vqtbl1q_u8(s, pick), bits);
            for p in 0..4 {
                let w = vbslq_s8(m, vqtbl1q_s8(neg[p], slot), vqtbl1q_s8(pos[p], slot));
                let off = b * BLOCK_WEIGHTS + (c / 2) * 128 + p * 32 + (c % 2) * 16;
                for t in 0..NT {
                    let q = vld1q_s8(toks[t].qs.as_ptr().add(off));
                    let prod_lo = vmull_s8(vget_low_s8(w), vget_low_s8(q));
                    let prod_hi = vmull_high_s8(w, q);
                    acc[t] = vpadalq_s16(acc[t], prod_lo);
                    acc[t] = vpadalq_s16(acc[t], prod_hi);
                }
            }
        }
        let d_w = f16_at(block, BLOCK_BYTES - 2);
        for t in 0..NT {
            let sumi = vaddvq_s32(acc[t]);
            sumf[t] += sumi as f32 * (d_w * toks[t].d[b]);
        }
    }
    res[..NT].copy_from_slice(&sumf);
}
