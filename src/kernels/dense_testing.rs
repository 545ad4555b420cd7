//! Test inputs shared by the property tests of the SIMD dense, attention and element
//! kernels (every instruction set): a seeded generator, random floats that include the
//! extremes, random rows of each dense weight type, and the scalar twins to compare with.

use crate::quant::float::{f16_bits_to_f32, f32_to_f16_bits};
use crate::quant::q6_k::{self, BlockQ8K, BLOCK_Q6_K_BYTES, QK_K};
use crate::quant::q8_0::{self, BlockQ8_0, QK8_0};

/// SplitMix64: small, seeded, good enough to spread test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A finite float of a random kind: mostly ordinary values of one scale, sometimes
    /// zeros, negative zeros, huge or tiny (subnormal) values, exact ties.
    pub fn float(&mut self, scale: f32) -> f32 {
        match self.below(40) {
            0 => 0.0,
            1 => -0.0,
            2 => self.unit() * 6.0e4,
            3 => self.unit() * 1.0e-30,
            4 => f32::from_bits(self.next_u64() as u32 & 0x807f_ffff), // subnormal
            5 => (self.below(64) as f32 - 32.0) * 0.5,                 // halves: ties
            6 => self.unit() * 1.0e6,
            _ => self.unit() * scale,
        }
    }

    pub fn floats(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.float(scale)).collect()
    }

    /// A finite half (bits), ordinary most of the time, with extremes.
    pub fn half(&mut self) -> u16 {
        loop {
            let h = match self.below(20) {
                0 => self.next_u64() as u16,          // anything finite
                1 => 0x7bff,                          // 65504
                2 => self.next_u64() as u16 & 0x83ff, // subnormal
                _ => f32_to_f16_bits(self.unit() * 2.0),
            };
            if h & 0x7c00 != 0x7c00 {
                return h;
            }
        }
    }

    /// A half that is an ordinary scale for quantized blocks (1e-4..1e-1), sometimes 0.
    pub fn block_scale(&mut self) -> [u8; 2] {
        let v = if self.below(30) == 0 {
            0.0
        } else {
            (self.unit().abs() + 0.01) * 0.05
        };
        f32_to_f16_bits(v).to_le_bytes()
    }
}

/// Random F16 row bytes (finite halves).
pub fn f16_row(rng: &mut Rng, k: usize) -> Vec<u8> {
    (0..k).flat_map(|_| rng.half().to_le_bytes()).collect()
}

/// Random F32 row bytes.
pub fn f32_row(rng: &mut Rng, k: usize) -> Vec<u8> {
    (0..k).flat_map(|_| rng.float(2.0).to_le_bytes()).collect()
}

/// `x` rounded to f16 values.
pub fn round_f16(x: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| f16_bits_to_f32(f32_to_f16_bits(v)))
        .collect()
}

/// Random Q8_0 weight rows (any int8 quant, finite scales).
pub fn q8_0_rows(rng: &mut Rng, rows: usize, k: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..rows * k / QK8_0 {
        w.extend_from_slice(&rng.block_scale());
        w.extend(rng.bytes(QK8_0));
    }
    w
}

/// Random Q4_0 weight rows.
pub fn q4_0_rows(rng: &mut Rng, rows: usize, k: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..rows * k / QK8_0 {
        w.extend_from_slice(&rng.block_scale());
        w.extend(rng.bytes(QK8_0 / 2));
    }
    w
}

/// Random Q6_K weight rows (any quants and int8 scales, finite super-block scales).
pub fn q6_k_rows(rng: &mut Rng, rows: usize, k: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..rows * k / QK_K {
        let mut b = rng.bytes(BLOCK_Q6_K_BYTES);
        let d = rng.block_scale();
        b[208] = d[0];
        b[209] = d[1];
        w.extend(b);
    }
    w
}

/// Activations as the Q8_0/Q4_0 dots receive them.
pub fn q8_0_acts(x: &[f32]) -> Vec<BlockQ8_0> {
    x.chunks_exact(QK8_0)
        .map(|c| q8_0::quantize_block_x86(c.try_into().unwrap()))
        .collect()
}

/// Activations as the Q6_K dot receives them.
pub fn q8_k_acts(x: &[f32]) -> Vec<BlockQ8K> {
    x.chunks_exact(QK_K)
        .map(|c| q6_k::quantize_block_q8_k(c.try_into().unwrap()))
        .collect()
}

/// Bitwise float equality (NaNs of any payload count as equal).
pub fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}
