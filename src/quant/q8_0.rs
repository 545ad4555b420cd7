//! Q8_0 (ggml type 8): blocks of 32 weights, 34 bytes each.
//!
//! ```text
//! offset 0..2   d      f16, little-endian: the block scale
//! offset 2..34  qs[32] i8: weight j = qs[j] * d
//! ```
//!
//! Two quantizers exist in ggml and both are here:
//! - [`quantize_block_ref`] is `quantize_row_q8_0_ref`, used for model files:
//!   `d = amax / 127`, `q = roundf(x * (1/d))` (ties away from zero);
//! - [`quantize_block_x86`] is `quantize_row_q8_0` as x86 builds compile it (the AVX/AVX2
//!   path, taken on every x86 CPU with AVX), used for activations before a Q8_0/Q4_0 dot:
//!   `d = amax / 127`, `q = round_ties_even(x * (127 / amax))`. The two differ in the
//!   last bit of the multiplier and in how ties round, so an activation that must match
//!   bitnet.cpp's logits goes through the x86 one.

use super::float::{f16_bits_to_f32, f32_to_f16_bits};

/// Weights per block.
pub const QK8_0: usize = 32;

/// The block as ggml lays it out (`block_q8_0`); byte arrays only, so no padding.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockQ8_0 {
    /// f16 scale, little-endian bits.
    pub d: [u8; 2],
    /// 32 signed quants.
    pub qs: [i8; QK8_0],
}

/// Bytes per block.
pub const BLOCK_Q8_0_BYTES: usize = std::mem::size_of::<BlockQ8_0>();
const _: () = assert!(BLOCK_Q8_0_BYTES == 34);
const _: () = assert!(std::mem::offset_of!(BlockQ8_0, qs) == 2);

impl BlockQ8_0 {
    /// Reads a block from its 34 bytes.
    pub fn from_bytes(b: &[u8; BLOCK_Q8_0_BYTES]) -> Self {
        let mut qs = [0i8; QK8_0];
        for (q, &v) in qs.iter_mut().zip(&b[2..]) {
            *q = v as i8;
        }
        BlockQ8_0 {
            d: [b[0], b[1]],
            qs,
        }
    }

    /// Writes the block's 34 bytes.
    pub fn to_bytes(&self, out: &mut [u8; BLOCK_Q8_0_BYTES]) {
        out[..2].copy_from_slice(&self.d);
        for (o, &q) in out[2..].iter_mut().zip(&self.qs) {
            *o = q as u8;
        }
    }

    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        f16_bits_to_f32(u16::from_le_bytes(self.d))
    }
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// `quantize_row_q8_0_ref` for one block of 32 finite values.
pub fn quantize_block_ref(x: &[f32; QK8_0]) -> BlockQ8_0 {
    let amax = amax(x);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK8_0];
    for (q, &v) in qs.iter_mut().zip(x) {
        // C `roundf` (ties away from zero), then the implicit int8 conversion; |v*id| <= 127.
        *q = (v * id).round() as i8;
    }
    BlockQ8_0 {
        d: f32_to_f16_bits(d).to_le_bytes(),
        qs,
    }
}

/// x86 `quantize_row_q8_0` for one block (activations): multiplier `127 / amax`, round
/// half to even, saturate to i8.
pub fn quantize_block_x86(x: &[f32; QK8_0]) -> BlockQ8_0 {
    let amax = amax(x);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; QK8_0];
    for (q, &v) in qs.iter_mut().zip(x) {
        // `as i8` saturates like the packs instructions; NaN gives 0.
        *q = (v * id).round_ties_even() as i8;
    }
    BlockQ8_0 {
        d: f32_to_f16_bits(d).to_le_bytes(),
        qs,
    }
}

/// `dequantize_row_q8_0` for one block.
pub fn dequantize_block(b: &BlockQ8_0, out: &mut [f32; QK8_0]) {
    let d = b.scale();
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = q as f32 * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_block() {
        // amax 127 -> d = 1.0 (f16 0x3c00), q = x.
        let mut x = [0f32; QK8_0];
        for (i, v) in x.iter_mut().enumerate() {
            *v = i as f32 * 4.0 - 60.0; // -60 .. 64
        }
        x[31] = 127.0;
        x[0] = -2.5; // roundf: -3 (ties away from zero); x86: -2 (ties to even)
        let b = quantize_block_ref(&x);
        let mut bytes = [0u8; BLOCK_Q8_0_BYTES];
        b.to_bytes(&mut bytes);
        assert_eq!(&bytes[..4], &[0x00, 0x3c, 0xfd, 0xc8]); // d = 1.0, q0 = -3, q1 = -56
        assert_eq!(bytes[33], 127);
        assert_eq!(quantize_block_x86(&x).qs[0], -2);
        assert_eq!(BlockQ8_0::from_bytes(&bytes), b);
        let mut y = [0f32; QK8_0];
        dequantize_block(&b, &mut y);
        assert_eq!(y[1], -56.0);
        assert_eq!(y[31], 127.0);
    }

    #[test]
    fn zero_block() {
        let b = quantize_block_ref(&[0.0; QK8_0]);
        assert_eq!(b.d, [0, 0]);
        assert!(b.qs.iter().all(|&q| q == 0));
        assert_eq!(quantize_block_x86(&[0.0; QK8_0]), b);
    }
}
