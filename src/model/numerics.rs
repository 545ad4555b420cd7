//! Element functions and sums computed the way bitnet.cpp's CPU backend (ggml, x86
//! AVX-512 build) computes them, so that the roundings that follow them (f16 attention
//! probabilities, int8 activations) land on the same side as in the reference.
//!
//! The int8 activation quantization and the f16 rounding of attention probabilities turn
//! a one-ulp difference into a different integer or half-float now and then, which moves
//! the logits by up to ~0.1. Computing these few functions in ggml's order removes those
//! flips on the reference data; everything else (integer dot products, norms) is exact
//! or order-independent already.

/// `e^x` with ggml's vectorized approximation (`ggml_v_expf`, after ARM's optimized
/// routines): `x = n·ln2 + b` with `n = round(x / ln2)` (by adding and subtracting
/// 1.5·2^23) and `ln2` split in two parts, `e^b` by a degree-5 polynomial, the result
/// scaled by `2^n`. Within 1-2 ulp of the true value; 0 below about -133, ∞ above 133.
pub fn exp(x: f32) -> f32 {
    // Coefficients as f32 bit patterns.
    const LOG2_E: u32 = 0x3fb8_aa3b; // 1.442695
    const LN2_HI: u32 = 0x3f31_7200; // 0.69314575
    const LN2_LO: u32 = 0x35bf_be8e; // 1.4286068e-6
    const C5: u32 = 0x3c07_2010; // 0.008247390
    const C4: u32 = 0x3d2b_9f17; // 0.04189977
    const C3: u32 = 0x3e2a_af33; // 0.16668396
    const C2: u32 = 0x3eff_fedb; // 0.49999127
    const C1: u32 = 0x3f7f_fff6; // 0.99999940
    const SHIFTER: f32 = 12_582_912.0; // 1.5 * 2^23
    let f = f32::from_bits;
    let z = x.mul_add(f(LOG2_E), SHIFTER);
    let n = z - SHIFTER;
    let b = (-n).mul_add(f(LN2_LO), (-n).mul_add(f(LN2_HI), x));
    if n.abs() > 192.0 || x.is_nan() {
        return if x.is_nan() {
            x
        } else if n > 0.0 {
            f32::INFINITY
        } else {
            0.0
        };
    }
    let u = b * b;
    let p = f(C5)
        .mul_add(b, f(C4))
        .mul_add(u, f(C3).mul_add(b, f(C2)))
        .mul_add(u, f(C1).mul_add(b, 1.0));
    scale_by_power_of_two(p, n as i32)
}

/// `x · 2^n` without intermediate overflow or underflow (as `vscalefps` does).
fn scale_by_power_of_two(x: f32, n: i32) -> f32 {
    let mut x = x;
    let mut n = n;
    while n > 127 {
        x *= f32::from_bits(0x7f00_0000); // 2^127
        n -= 127;
    }
    while n < -126 {
        x *= f32::from_bits(0x0080_0000); // 2^-126
        n += 126;
    }
    x * f32::from_bits(((n + 127) as u32) << 23)
}

/// `x / (1 + e^-x)` with [`exp`] (ggml's vectorized SiLU).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// Sum of 16 floats in the tree order of `_mm512_reduce_add_ps`: halves, quarters,
/// eighths, then the last pair.
pub fn reduce16(v: &[f32; 16]) -> f32 {
    let mut a = [0.0f32; 8];
    for i in 0..8 {
        a[i] = v[i] + v[i + 8];
    }
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (b[0] + b[2]) + (b[1] + b[3])
}

/// Sum of `e` (padded with zeros to a multiple of 16) as ggml's softmax sums: each run of
/// 16 reduced in f32 by [`reduce16`], the partial sums accumulated in f64.
pub fn softmax_sum(e: &[f32]) -> f64 {
    let mut sum = 0.0f64;
    for chunk in e.chunks(16) {
        let mut v = [0.0f32; 16];
        v[..chunk.len()].copy_from_slice(chunk);
        sum += f64::from(reduce16(&v));
    }
    sum
}

/// `Σ a_i·b_i` for products that are exact in f32 (both factors f16 values), in the order
/// of ggml's AVX-512 `ggml_vec_dot_f16`: runs of 64 into four 16-lane accumulators,
/// combined as `(acc0 + acc2) + (acc1 + acc3)` and reduced by [`reduce16`]; the tail past
/// the last full run of 64 summed in f64.
pub fn dot_exact_products(a: &[f32], b: impl Fn(usize) -> f32) -> f32 {
    let n = a.len();
    let full = n / 64 * 64;
    let mut acc = [[0.0f32; 16]; 4];
    for base in (0..full).step_by(64) {
        for (r, lanes) in acc.iter_mut().enumerate() {
            for (l, s) in lanes.iter_mut().enumerate() {
                let i = base + 16 * r + l;
                *s += a[i] * b(i);
            }
        }
    }
    let mut sum = f64::from(combine_accumulators(&acc));
    for (i, &x) in a.iter().enumerate().skip(full) {
        sum += f64::from(x * b(i));
    }
    sum as f32
}

/// `Σ a_i·b_i` in the order of ggml's AVX-512 `ggml_vec_dot_f32`: as
/// [`dot_exact_products`], with each product fused into its accumulator (FMA).
pub fn dot_fused(a: &[f32], b: impl Fn(usize) -> f32) -> f32 {
    let n = a.len();
    let full = n / 64 * 64;
    let mut acc = [[0.0f32; 16]; 4];
    for base in (0..full).step_by(64) {
        for (r, lanes) in acc.iter_mut().enumerate() {
            for (l, s) in lanes.iter_mut().enumerate() {
                let i = base + 16 * r + l;
                *s = a[i].mul_add(b(i), *s);
            }
        }
    }
    let mut sum = f64::from(combine_accumulators(&acc));
    for (i, &x) in a.iter().enumerate().skip(full) {
        sum += f64::from(x * b(i));
    }
    sum as f32
}

/// `Σ a_i·b_i` (`a.len()` a multiple of 16) in the order of llamafile's `tinyBLAS` with
/// 16-float vectors: one 16-lane accumulator, products fused in, reduced by
/// [`reduce16`].
pub fn dot_tinyblas(a: &[f32], b: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 16];
    for (c, chunk) in a.chunks_exact(16).enumerate() {
        for (l, (s, &x)) in acc.iter_mut().zip(chunk).enumerate() {
            *s = x.mul_add(b(16 * c + l), *s);
        }
    }
    reduce16(&acc)
}

/// ggml's reduction of four 16-lane accumulators to one float.
pub fn combine_accumulators(acc: &[[f32; 16]; 4]) -> f32 {
    let mut v = [0.0f32; 16];
    for l in 0..16 {
        v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    reduce16(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_the_true_exp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(1000.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // Subnormal results are as close as subnormals can be.
        for x in [-90.0f32, -100.0, -103.0] {
            let err = (f64::from(exp(x)) - f64::from(x).exp()).abs();
            assert!(err <= f64::from(f32::from_bits(1)), "exp({x}) off by {err}");
        }
    }

    #[test]
    fn sums_in_ggml_order() {
        let v: Vec<f32> = (0..16).map(|i| 1.0 + i as f32 * 1e-7).collect();
        let r = reduce16(v.as_slice().try_into().unwrap());
        assert!((f64::from(r) - 16.0000120).abs() < 1e-5);
        assert_eq!(softmax_sum(&[1.0; 17]), 17.0);
        let a: Vec<f32> = (0..100).map(|i| (i % 7) as f32 - 3.0).collect();
        let d = dot_exact_products(&a, |i| (i % 5) as f32);
        let want: f32 = a.iter().enumerate().map(|(i, x)| x * (i % 5) as f32).sum();
        assert_eq!(d, want);
        assert_eq!(dot_fused(&a, |i| (i % 5) as f32), want);
        let a64: Vec<f32> = a[..96].to_vec();
        let want64: f32 = a64
            .iter()
            .enumerate()
            .map(|(i, x)| x * (i % 5) as f32)
            .sum();
        assert_eq!(dot_tinyblas(&a64, |i| (i % 5) as f32), want64);
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(2.0) - 2.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    }
}
