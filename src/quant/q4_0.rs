//! Q4_0 (ggml type 2): blocks of 32 weights, 18 bytes each.
//!
//! ```text
//! offset 0..2   d      f16, little-endian: the block scale
//! offset 2..18  qs[16] byte j: low nibble = weight j, high nibble = weight j + 16
//! ```
//! Weight value = (nibble - 8) * d. The quantizer is ggml's `quantize_row_q4_0_ref`:
//! `d = max / -8` where `max` is the value of largest magnitude (first one on ties),
//! nibble = `min(15, trunc(x / d + 8.5))`, so the extreme value maps to nibble 0 (-8).
//! Dot products quantize the activations to Q8_0 (see `q8_0::quantize_block_x86`).

use super::float::{f16_bits_to_f32, f32_to_f16_bits};

/// Weights per block.
pub const QK4_0: usize = 32;

/// The block as ggml lays it out (`block_q4_0`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockQ4_0 {
    /// f16 scale, little-endian bits.
    pub d: [u8; 2],
    /// Nibbles: low = weight j, high = weight j + 16.
    pub qs: [u8; QK4_0 / 2],
}

/// Bytes per block.
pub const BLOCK_Q4_0_BYTES: usize = std::mem::size_of::<BlockQ4_0>();
const _: () = assert!(BLOCK_Q4_0_BYTES == 18);
const _: () = assert!(std::mem::offset_of!(BlockQ4_0, qs) == 2);

impl BlockQ4_0 {
    /// Reads a block from its 18 bytes.
    pub fn from_bytes(b: &[u8; BLOCK_Q4_0_BYTES]) -> Self {
        let mut qs = [0u8; QK4_0 / 2];
        qs.copy_from_slice(&b[2..]);
        BlockQ4_0 {
            d: [b[0], b[1]],
            qs,
        }
    }

    /// Writes the block's 18 bytes.
    pub fn to_bytes(&self, out: &mut [u8; BLOCK_Q4_0_BYTES]) {
        out[..2].copy_from_slice(&self.d);
        out[2..].copy_from_slice(&self.qs);
    }

    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        f16_bits_to_f32(u16::from_le_bytes(self.d))
    }

    /// The signed 4-bit value (-8..=7) of weight `j` (0..32).
    pub fn quant(&self, j: usize) -> i8 {
        let byte = self.qs[j % 16];
        let nib = if j < 16 { byte & 0x0f } else { byte >> 4 };
        nib as i8 - 8
    }
}

/// `quantize_row_q4_0_ref` for one block of 32 finite values.
pub fn quantize_block_ref(x: &[f32; QK4_0]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK4_0 / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        // C: (int8_t)(x*id + 8.5f), truncation toward zero; the sum lies in [0, 17).
        let lo = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let hi = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
        *q = lo | (hi << 4);
    }
    BlockQ4_0 {
        d: f32_to_f16_bits(d).to_le_bytes(),
        qs,
    }
}

/// `dequantize_row_q4_0` for one block.
pub fn dequantize_block(b: &BlockQ4_0, out: &mut [f32; QK4_0]) {
    let d = b.scale();
    for (j, o) in out.iter_mut().enumerate() {
        *o = b.quant(j) as f32 * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_block() {
        // max = -16 -> d = 2.0 (f16 0x4000), id = 0.5.
        let mut x = [0f32; QK4_0];
        x[0] = -16.0; // -8 + 8.5 = 0.5 -> nibble 0
        x[1] = 14.0; // 7 + 8.5 -> 15
        x[16] = 3.0; // 1.5 + 8.5 = 10 -> nibble 10
        x[17] = -3.0; // -1.5 + 8.5 = 7 -> nibble 7
        x[2] = 1.0; // 0.5 + 8.5 = 9
        let b = quantize_block_ref(&x);
        let mut bytes = [0u8; BLOCK_Q4_0_BYTES];
        b.to_bytes(&mut bytes);
        assert_eq!(&bytes[..5], &[0x00, 0x40, 0xa0, 0x7f, 0x89]);
        assert_eq!(bytes[5], 0x88); // zeros: nibble 8 in both halves
        let mut y = [0f32; QK4_0];
        dequantize_block(&b, &mut y);
        assert_eq!(
            (y[0], y[1], y[2], y[16], y[17]),
            (-16.0, 14.0, 2.0, 4.0, -2.0)
        );
        assert_eq!(BlockQ4_0::from_bytes(&bytes), b);
    }
}
