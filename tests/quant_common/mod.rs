//! Helpers shared by the quant_* integration tests: reference data location, a small PRNG,
//! random ternary matrices.
#![allow(dead_code)]

use std::path::PathBuf;

/// The reference folder, or `None` after a loud skip message (a panic when `CI=true`).
pub fn reference_dir(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    let dir = base.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("reference data {} is missing (CI=true)", dir.display());
    }
    eprintln!(
        "\n*** SKIPPED: reference data {} not found (set TERN_REFERENCE_DIR) ***\n",
        dir.display()
    );
    None
}

/// Little-endian f32s of a byte slice.
pub fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// xorshift64* — small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Roughly normal (sum of 4 uniforms), scaled.
    pub fn normal(&mut self, sd: f32) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit()) * 0.866 * sd
    }
    /// A ternary value, zero with probability `p_zero`.
    pub fn trit(&mut self, p_zero: f64) -> i8 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if u < p_zero {
            0
        } else if self.next_u64() & 1 == 0 {
            1
        } else {
            -1
        }
    }
    /// `n` ternary values.
    pub fn trits(&mut self, n: usize, p_zero: f64) -> Vec<i8> {
        (0..n).map(|_| self.trit(p_zero)).collect()
    }
    /// `n` ternary values where each group of 4 has exactly one zero (3:4 sparse).
    pub fn trits_34(&mut self, n: usize) -> Vec<i8> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n / 4 {
            let z = self.below(4);
            for p in 0..4 {
                v.push(if p == z {
                    0
                } else if self.next_u64() & 1 == 0 {
                    1
                } else {
                    -1
                });
            }
        }
        v
    }
    fn sign(&mut self) -> i8 {
        if self.next_u64() & 1 == 0 {
            1
        } else {
            -1
        }
    }
    /// `n` ternary values, 3:4 sparse in STQ1_0's groups (columns m, m+16, m+32, m+48 of
    /// each 64); `n` a multiple of 64.
    pub fn trits_34_stride16(&mut self, n: usize) -> Vec<i8> {
        let mut v: Vec<i8> = (0..n).map(|_| self.sign()).collect();
        for chunk in v.chunks_exact_mut(64) {
            for m in 0..16 {
                chunk[m + 16 * self.below(4)] = 0;
            }
        }
        v
    }
    /// `n` ternary values that are 3:4 both in consecutive quads and in STQ1_0's stride-16
    /// quads: in each 64-chunk, seen as 4 lanes x 16, every segment of 4 columns gets its
    /// zeros on a permutation of the lanes.
    pub fn trits_34_both(&mut self, n: usize) -> Vec<i8> {
        let mut v: Vec<i8> = (0..n).map(|_| self.sign()).collect();
        for chunk in v.chunks_exact_mut(64) {
            for k in 0..4 {
                let mut perm = [0usize, 1, 2, 3];
                for i in (1..4).rev() {
                    perm.swap(i, self.below(i + 1));
                }
                for (j, &p) in perm.iter().enumerate() {
                    chunk[16 * p + 4 * k + j] = 0;
                }
            }
        }
        v
    }
    /// `n` activations with a few outliers, as real hidden states have.
    pub fn activations(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v = self.normal(1.0);
                if self.below(64) == 0 {
                    v * 12.0
                } else {
                    v
                }
            })
            .collect()
    }
}
