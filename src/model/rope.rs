//! Rotary position embedding, computed as ggml's `ggml_rope_ext` computes it on the CPU
//! (no YaRN extrapolation): the angle of pair `i` at position `p` is
//! `freq_scale * p * base^(-2i/n_rot)`, where the powers are formed by repeated f32
//! multiplication with `theta_scale = base^(-2/n_rot)` exactly as ggml's rope cache does,
//! and divided by an optional per-pair frequency factor (llama 3's `rope_freqs`).
//!
//! The rotation `x0·cos − x1·sin`, `x0·sin + x1·cos` fuses the first product into the
//! addition, as clang (which builds bitnet.cpp) contracts ggml's C expression by default.

use super::config::RopeStyle;
use crate::kernels::simd;

/// RoPE parameters of a model.
#[derive(Debug, Clone)]
pub struct Rope {
    n_rot: usize,
    style: RopeStyle,
    freq_scale: f32,
    theta_scale: f32,
    freq_factors: Option<Vec<f32>>,
}

impl Rope {
    /// RoPE over the first `n_rot` dimensions of each head (`n_rot` even).
    /// `freq_factors`, when given, holds `n_rot / 2` divisors of the angles.
    pub fn new(
        n_rot: usize,
        style: RopeStyle,
        freq_base: f32,
        freq_scale: f32,
        freq_factors: Option<Vec<f32>>,
    ) -> Rope {
        debug_assert!(n_rot % 2 == 0);
        debug_assert!(freq_factors.as_ref().is_none_or(|f| f.len() >= n_rot / 2));
        let theta_scale = if n_rot == 0 {
            1.0
        } else {
            freq_base.powf(-2.0 / n_rot as f32)
        };
        Rope {
            n_rot,
            style,
            freq_scale,
            theta_scale,
            freq_factors,
        }
    }

    /// Floats in the table [`Rope::fill_table`] writes.
    pub fn table_len(&self) -> usize {
        self.n_rot
    }

    /// Writes `(cos, sin)` of every pair's angle at position `pos` into `table`.
    pub fn fill_table(&self, pos: usize, table: &mut [f32]) {
        let mut theta = pos as f32;
        for (i, cs) in table[..self.n_rot].chunks_exact_mut(2).enumerate() {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let angle = self.freq_scale * (theta / ff);
            cs[0] = angle.cos();
            cs[1] = angle.sin();
            theta *= self.theta_scale;
        }
    }

    /// Rotates one head (`head.len()` ≥ n_rot) in place with a table from [`Rope::fill_table`].
    pub fn rotate(&self, head: &mut [f32], table: &[f32]) {
        let n = self.n_rot;
        let done = match self.style {
            RopeStyle::Normal => simd::rope_normal(head, &table[..n]),
            RopeStyle::Neox => simd::rope_neox(head, &table[..n]),
        };
        if !done {
            self.rotate_scalar(head, table);
        }
    }

    /// [`Rope::rotate`] without SIMD (the twin the SIMD versions are tested against).
    pub fn rotate_scalar(&self, head: &mut [f32], table: &[f32]) {
        let n = self.n_rot;
        match self.style {
            RopeStyle::Normal => {
                for (pair, cs) in head[..n].chunks_exact_mut(2).zip(table.chunks_exact(2)) {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0.mul_add(cs[0], -(x1 * cs[1]));
                    pair[1] = x0.mul_add(cs[1], x1 * cs[0]);
                }
            }
            RopeStyle::Neox => {
                let half = n / 2;
                let (lo, hi) = head[..n].split_at_mut(half);
                for ((a, b), cs) in lo.iter_mut().zip(hi.iter_mut()).zip(table.chunks_exact(2)) {
                    let (x0, x1) = (*a, *b);
                    *a = x0.mul_add(cs[0], -(x1 * cs[1]));
                    *b = x0.mul_add(cs[1], x1 * cs[0]);
                }
            }
        }
    }

    /// Rotates every head of `row` (heads of `head_dim` floats laid end to end).
    pub fn rotate_heads(&self, row: &mut [f32], head_dim: usize, table: &[f32]) {
        for head in row.chunks_exact_mut(head_dim) {
            self.rotate(head, table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn position_zero_is_identity_and_norm_is_kept() {
        for style in [RopeStyle::Neox, RopeStyle::Normal] {
            let rope = Rope::new(8, style, 10000.0, 1.0, None);
            let mut t = vec![0.0; 8];
            rope.fill_table(0, &mut t);
            let x: Vec<f32> = (0..10).map(|i| i as f32 * 0.5 - 1.0).collect();
            let mut y = x.clone();
            rope.rotate(&mut y, &t);
            assert_eq!(x, y);
            rope.fill_table(37, &mut t);
            rope.rotate(&mut y, &t);
            assert!((norm(&x[..8]) - norm(&y[..8])).abs() < 1e-5);
            // Dimensions past n_rot pass through.
            assert_eq!(&x[8..], &y[8..]);
        }
    }

    #[test]
    fn pairing_differs_between_styles() {
        let mut t = vec![0.0; 4];
        // Pair 0 rotates by pos radians; pair 1 by pos * base^(-1/2) = pos / 100.
        let neox = Rope::new(4, RopeStyle::Neox, 10000.0, 1.0, None);
        neox.fill_table(1, &mut t);
        assert!((t[0] - 1f32.cos()).abs() < 1e-7 && (t[1] - 1f32.sin()).abs() < 1e-7);
        assert!((t[2] - 0.01f32.cos()).abs() < 1e-7);
        let mut h = vec![1.0, 0.0, 0.0, 0.0];
        neox.rotate(&mut h, &t);
        // NeoX pairs dimension 0 with dimension 2.
        assert!((h[0] - 1f32.cos()).abs() < 1e-6 && (h[2] - 1f32.sin()).abs() < 1e-6);
        assert_eq!(h[1], 0.0);
        let normal = Rope::new(4, RopeStyle::Normal, 10000.0, 1.0, None);
        let mut h = vec![1.0, 0.0, 0.0, 0.0];
        normal.rotate(&mut h, &t);
        // Normal mode pairs dimension 0 with dimension 1.
        assert!((h[1] - 1f32.sin()).abs() < 1e-6);
        assert_eq!(h[2], 0.0);
    }

    #[test]
    fn freq_factors_and_scale_slow_the_rotation() {
        let mut a = vec![0.0; 4];
        let mut b = vec![0.0; 4];
        Rope::new(4, RopeStyle::Neox, 10000.0, 0.5, None).fill_table(10, &mut a);
        Rope::new(4, RopeStyle::Neox, 10000.0, 1.0, Some(vec![2.0, 2.0])).fill_table(10, &mut b);
        for i in 0..4 {
            assert!((a[i] - b[i]).abs() < 1e-6);
        }
        assert!((a[0] - 5f32.cos()).abs() < 1e-6);
    }
}
