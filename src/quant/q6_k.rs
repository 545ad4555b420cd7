//! Q6_K (ggml type 14): super-blocks of 256 weights in 210 bytes, and Q8_K (type 15), the
//! activation type Q6_K dots with (292 bytes per 256; never stored in model files).
//!
//! Q6_K:
//! ```text
//! offset   0..128  ql[128]    low 4 bits of the 6-bit quants
//! offset 128..192  qh[64]     high 2 bits
//! offset 192..208  scales[16] i8, one per 16 weights
//! offset 208..210  d          f16 super-block scale
//! ```
//! Weights are in two halves of 128; in half `h` (ql from `64h`, qh from `32h`), for
//! l in 0..32:
//! - weight `128h + l`      = ql[l] low nibble  | (qh[l] bits 0-1) << 4
//! - weight `128h + l + 32` = ql[l+32] low      | (qh[l] bits 2-3) << 4
//! - weight `128h + l + 64` = ql[l] high nibble | (qh[l] bits 4-5) << 4
//! - weight `128h + l + 96` = ql[l+32] high     | (qh[l] bits 6-7) << 4
//!
//! and value = d * scales[w / 16] * (q - 32).
//!
//! Q8_K: `d` f32 at 0..4, `qs[256]` i8 at 4..260, `bsums[16]` i16 LE at 260..292 (sum of
//! each 16 quants); value = d * q.

use super::float::{f16_bits_to_f32, f32_to_f16_bits};

/// Weights per super-block (ggml `QK_K`).
pub const QK_K: usize = 256;

/// The Q6_K super-block as ggml lays it out (`block_q6_K`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockQ6K {
    /// Low 4 bits of each quant.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of each quant.
    pub qh: [u8; QK_K / 4],
    /// 8-bit scale per 16 weights.
    pub scales: [i8; QK_K / 16],
    /// f16 super-block scale, little-endian bits.
    pub d: [u8; 2],
}

/// Bytes per Q6_K block.
pub const BLOCK_Q6_K_BYTES: usize = std::mem::size_of::<BlockQ6K>();
const _: () = assert!(BLOCK_Q6_K_BYTES == 210);
const _: () = assert!(std::mem::offset_of!(BlockQ6K, qh) == 128);
const _: () = assert!(std::mem::offset_of!(BlockQ6K, scales) == 192);
const _: () = assert!(std::mem::offset_of!(BlockQ6K, d) == 208);

/// Bytes per Q8_K block: f32 d, 256 i8, 16 i16.
pub const BLOCK_Q8_K_BYTES: usize = 4 + QK_K + 2 * (QK_K / 16);
const _: () = assert!(BLOCK_Q8_K_BYTES == 292);

impl BlockQ6K {
    /// Reads a block from its 210 bytes.
    pub fn from_bytes(b: &[u8; BLOCK_Q6_K_BYTES]) -> Self {
        let mut blk = BlockQ6K {
            ql: [0; QK_K / 2],
            qh: [0; QK_K / 4],
            scales: [0; QK_K / 16],
            d: [b[208], b[209]],
        };
        blk.ql.copy_from_slice(&b[..128]);
        blk.qh.copy_from_slice(&b[128..192]);
        for (s, &v) in blk.scales.iter_mut().zip(&b[192..208]) {
            *s = v as i8;
        }
        blk
    }

    /// Writes the block's 210 bytes.
    pub fn to_bytes(&self, out: &mut [u8; BLOCK_Q6_K_BYTES]) {
        out[..128].copy_from_slice(&self.ql);
        out[128..192].copy_from_slice(&self.qh);
        for (o, &s) in out[192..208].iter_mut().zip(&self.scales) {
            *o = s as u8;
        }
        out[208..].copy_from_slice(&self.d);
    }

    /// The super-block scale as f32.
    pub fn scale(&self) -> f32 {
        f16_bits_to_f32(u16::from_le_bytes(self.d))
    }

    /// The signed 6-bit quants (q - 32, in -32..=31) in weight order.
    pub fn quants(&self) -> [i8; QK_K] {
        let mut q = [0i8; QK_K];
        for h in 0..2 {
            let (ql, qh) = (&self.ql[64 * h..], &self.qh[32 * h..]);
            let base = 128 * h;
            for l in 0..32 {
                q[base + l] = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                q[base + l + 32] = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                q[base + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                q[base + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        q
    }
}

/// ggml's `nearest_int`: round to nearest, ties to even, through the 1.5 * 2^23 trick
/// (valid for |x| <= 4194303, which every caller here guarantees by construction or clamps).
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

const GROUP_MAX_EPS: f32 = 1e-15;

/// One element's contribution to make_qx_quants' two sums `sumlx += w*x*l` and
/// `suml2 += w*l*l` (w = x²), either rounded after every operation (the C source as
/// written) or with the final multiply-add fused, as clang (`-ffp-contract=on`) and gcc
/// (`-ffp-contract=fast`) compile it whenever the target has FMA.
#[inline]
fn terms<const FMA: bool>(v: f32, l: i32, sumlx: f32, suml2: f32) -> (f32, f32) {
    let w = v * v;
    let l = l as f32;
    if FMA {
        ((w * v).mul_add(l, sumlx), (w * l).mul_add(l, suml2))
    } else {
        (sumlx + w * v * l, suml2 + w * l * l)
    }
}

/// ggml's `make_qx_quants(n = 16, nmax = 32, rmse_type = 1, qw = NULL)`: picks the scale
/// of one 16-weight group by a search over 19 candidate inverse scales, weighting errors
/// by x². Writes `L[i]` in 0..64 and returns the scale.
fn make_qx_quants_16<const FMA: bool>(x: &[f32], l_out: &mut [i8]) -> f32 {
    const NMAX: i32 = 32;
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-NMAX, NMAX - 1);
    let mut iscale = -(NMAX as f32) / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (i, &v) in x.iter().enumerate() {
        let l = clamp(nearest_int(iscale * v));
        l_out[i] = (l + NMAX) as i8;
        let (lx, ll) = terms::<FMA>(v, l, sumlx, suml2);
        sumlx = lx;
        suml2 = ll;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        // `nmax + 0.1f*is` is the same whether contracted or not for nmax = 32
        // (checked for every is in -9..=9), so one expression serves both variants.
        iscale = -(NMAX as f32 + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = clamp(nearest_int(iscale * v));
            let (lx, ll) = terms::<FMA>(v, l, sumlx, suml2);
            sumlx = lx;
            suml2 = ll;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &v) in x.iter().enumerate() {
                l_out[i] = (NMAX + clamp(nearest_int(iscale * v))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `quantize_row_q6_K_ref` for one super-block of 256 finite values, as the C source
/// reads with every operation rounded (what a build without FMA contraction produces:
/// MSVC, or gcc/clang for a baseline x86-64 without `-mfma`).
pub fn quantize_block_ref(x: &[f32; QK_K]) -> BlockQ6K {
    quantize_block::<false>(x)
}

/// `quantize_row_q6_K_ref` for one super-block as compiled with FMA contraction: what
/// llama-quantize produces when built by clang or gcc for a CPU with FMA (bitnet.cpp's
/// and llama.cpp's default `-march=native` builds on x86, and every aarch64 build). The
/// choice of scale inside a 16-weight group compares sums that differ in their last bits
/// between the two variants, so on random data about 0.3% of the bytes differ.
pub fn quantize_block_ref_fma(x: &[f32; QK_K]) -> BlockQ6K {
    quantize_block::<true>(x)
}

fn quantize_block<const FMA: bool>(x: &[f32; QK_K]) -> BlockQ6K {
    let mut l_all = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..QK_K / 16 {
        let s =
            make_qx_quants_16::<FMA>(&x[16 * ib..16 * ib + 16], &mut l_all[16 * ib..16 * ib + 16]);
        scales[ib] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    let mut blk = BlockQ6K {
        ql: [0; QK_K / 2],
        qh: [0; QK_K / 4],
        scales: [0; QK_K / 16],
        d: [0; 2],
    };
    if max_abs_scale < GROUP_MAX_EPS {
        blk.d = f32_to_f16_bits(0.0).to_le_bytes();
        return blk;
    }
    let iscale = -128.0f32 / max_scale;
    blk.d = f32_to_f16_bits(1.0 / iscale).to_le_bytes();
    for (sc, &s) in blk.scales.iter_mut().zip(&scales) {
        // nearest_int(iscale * s) lies in [-128, 128]; ggml clamps only the top.
        *sc = nearest_int(iscale * s).min(127) as i8;
    }
    let dsuper = blk.scale();
    for j in 0..QK_K / 16 {
        let d = dsuper * blk.scales[j] as f32;
        if d == 0.0 {
            // ggml keeps the quants make_qx_quants chose for this group.
            continue;
        }
        for ii in 0..16 {
            let l = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l_all[16 * j + ii] = (l + 32) as i8;
        }
    }
    let l_u: [u8; QK_K] = l_all.map(|v| v as u8);
    for h in 0..2 {
        let src = &l_u[128 * h..128 * h + 128];
        let ql = &mut blk.ql[64 * h..64 * h + 64];
        for l in 0..32 {
            let (q1, q2, q3, q4) = (src[l], src[l + 32], src[l + 64], src[l + 96]);
            ql[l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
            ql[l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        }
        let qh = &mut blk.qh[32 * h..32 * h + 32];
        for l in 0..32 {
            qh[l] = (src[l] >> 4)
                | ((src[l + 32] >> 4) << 2)
                | ((src[l + 64] >> 4) << 4)
                | ((src[l + 96] >> 4) << 6);
        }
    }
    blk
}

/// `dequantize_row_q6_K` for one super-block: `d * scale * q`, evaluated as ggml does
/// (`(d * scale) * q` in f32).
pub fn dequantize_block(b: &BlockQ6K, out: &mut [f32; QK_K]) {
    let d = b.scale();
    let q = b.quants();
    for (i, o) in out.iter_mut().enumerate() {
        *o = d * b.scales[i / 16] as f32 * q[i] as f32;
    }
}

/// A Q8_K activation block (ggml `block_q8_K`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ8K {
    /// Scale (f32).
    pub d: f32,
    /// Quants, -128..=127 (in practice -127..=127).
    pub qs: [i8; QK_K],
    /// Sum of each 16 consecutive quants.
    pub bsums: [i16; QK_K / 16],
}

impl BlockQ8K {
    /// Reads a block from its 292 bytes.
    pub fn from_bytes(b: &[u8; BLOCK_Q8_K_BYTES]) -> Self {
        let mut blk = BlockQ8K {
            d: f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
        };
        for (q, &v) in blk.qs.iter_mut().zip(&b[4..4 + QK_K]) {
            *q = v as i8;
        }
        for (j, s) in blk.bsums.iter_mut().enumerate() {
            let o = 4 + QK_K + 2 * j;
            *s = i16::from_le_bytes([b[o], b[o + 1]]);
        }
        blk
    }

    /// Writes the block's 292 bytes.
    pub fn to_bytes(&self, out: &mut [u8; BLOCK_Q8_K_BYTES]) {
        out[..4].copy_from_slice(&self.d.to_le_bytes());
        for (o, &q) in out[4..4 + QK_K].iter_mut().zip(&self.qs) {
            *o = q as u8;
        }
        for (j, s) in self.bsums.iter().enumerate() {
            let o = 4 + QK_K + 2 * j;
            out[o..o + 2].copy_from_slice(&s.to_le_bytes());
        }
    }
}

/// `quantize_row_q8_K` (= `quantize_row_q8_K_ref` on every CPU in this ggml) for one
/// block: `iscale = -127 / max` with `max` the value of largest magnitude,
/// `q = min(127, nearest_int(iscale * x))`, `d = 1 / iscale`.
pub fn quantize_block_q8_k(x: &[f32; QK_K]) -> BlockQ8K {
    let mut blk = BlockQ8K {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; QK_K / 16],
    };
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    // NaN inputs never win the comparison above, as in ggml.
    if amax == 0.0 {
        return blk;
    }
    let iscale = -127.0f32 / max;
    for (q, &v) in blk.qs.iter_mut().zip(x) {
        let p = iscale * v;
        // Finite inputs give |p| <= 127; the clamp keeps non-finite ones in nearest_int's range.
        *q = nearest_int(p.clamp(-128.0, 127.0)).min(127) as i8;
    }
    for (j, s) in blk.bsums.iter_mut().enumerate() {
        *s = blk.qs[16 * j..16 * j + 16].iter().map(|&q| q as i16).sum();
    }
    blk.d = 1.0 / iscale;
    blk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_ties_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-2.6), -3);
        assert_eq!(nearest_int(31.49), 31);
    }

    #[test]
    fn known_block_all_equal() {
        // Every group is 16 copies of 1.0: make_qx_quants gives iscale = -32, l = -32
        // (clamped to [-32, 31]) for every weight, scale = sumlx/suml2 = -1/32; the
        // search never beats it. max_scale = -1/32 -> iscale = 4096, d = 1/4096
        // (f16 0x0c00), scales = nearest_int(4096 * -1/32) = -128.
        // Requantized: d*sc = -1/32, l = nearest_int(1 / (-1/32)) = -32 -> stored 0.
        let b = quantize_block_ref(&[1.0; QK_K]);
        assert_eq!(quantize_block_ref_fma(&[1.0; QK_K]), b);
        let mut bytes = [0u8; BLOCK_Q6_K_BYTES];
        b.to_bytes(&mut bytes);
        assert!(bytes[..192].iter().all(|&v| v == 0));
        assert!(bytes[192..208].iter().all(|&v| v == 0x80));
        assert_eq!(&bytes[208..], &[0x00, 0x0c]);
        let mut y = [0f32; QK_K];
        dequantize_block(&b, &mut y);
        assert!(y.iter().all(|&v| v == 1.0));
        assert_eq!(BlockQ6K::from_bytes(&bytes), b);
    }

    #[test]
    fn both_variants_quantize_well() {
        // A smooth ramp with one outlier: both variants stay within half a quant step
        // (d * |scale| / 2) of every value, except values clamped to the 6-bit range,
        // which must lie beyond their reconstruction.
        let mut x = [0f32; QK_K];
        for (i, v) in x.iter_mut().enumerate() {
            *v = ((i as f32) * 0.37).sin() * (1.0 + (i / 16) as f32);
        }
        x[100] = -40.0;
        for b in [quantize_block_ref(&x), quantize_block_ref_fma(&x)] {
            let mut y = [0f32; QK_K];
            dequantize_block(&b, &mut y);
            let q = b.quants();
            for (i, (&a, &r)) in x.iter().zip(&y).enumerate() {
                let step = (b.scale() * b.scales[i / 16] as f32).abs();
                let near = (a - r).abs() <= step * 0.5 + 1e-6;
                let clamped = (q[i] == -32 || q[i] == 31) && a.abs() >= r.abs() && a * r >= 0.0;
                assert!(near || clamped, "{i}: {a} vs {r}");
            }
        }
    }

    #[test]
    fn q8_k_known_block() {
        let mut x = [0f32; QK_K];
        x[0] = -2.0; // max: iscale = 63.5, d = 1/63.5
        x[1] = 1.0; // 63.5 -> 64 (ties to even)
        x[17] = 0.5; // 31.75 -> 32
        let b = quantize_block_q8_k(&x);
        assert_eq!((b.qs[0], b.qs[1], b.qs[17]), (-127, 64, 32));
        assert_eq!(b.bsums[0], -63);
        assert_eq!(b.bsums[1], 32);
        assert_eq!(b.d, 1.0 / 63.5);
        let mut bytes = [0u8; BLOCK_Q8_K_BYTES];
        b.to_bytes(&mut bytes);
        assert_eq!(BlockQ8K::from_bytes(&bytes), b);
    }
}
