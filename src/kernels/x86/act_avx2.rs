//! AVX2 building blocks of activation quantization (`kernels::act`), exact by
//! construction: maxima and integer rounding do not depend on the order of operations,
//! and each `x * scale` is one f32 product as in the twin, rounded half to even by
//! `vcvtps2dq` (the default rounding mode) and saturated to int8 by the pack
//! instructions (the twin's clamp; products stay within ±127·(1 + ε) anyway).

use std::arch::x86_64::*;

use super::dense_avx2::available;

#[inline]
#[track_caller]
fn require() {
    assert!(
        available(),
        "AVX2 kernel called on a CPU without AVX2/FMA/F16C"
    );
}

/// Whether every value is finite.
pub fn all_finite(x: &[f32]) -> bool {
    require();
    // SAFETY: features checked; reads stay within `x`.
    unsafe { all_finite_raw(x) }
}

/// `max_i |x_i|` (0 for an empty row; the values must be finite).
pub fn abs_max(x: &[f32]) -> f32 {
    require();
    // SAFETY: features checked; reads stay within `x`.
    unsafe { abs_max_raw(x) }
}

/// The index of the first value of largest magnitude (`None` for an empty row).
pub fn first_abs_max_index(x: &[f32]) -> Option<usize> {
    if x.is_empty() {
        return None;
    }
    let m = abs_max(x);
    x.iter().position(|v| v.abs() == m)
}

/// `out[i] = clamp(round_half_even(x[i] * scale), -128, 127)`; returns `Σ out[i]`.
/// `|x[i] * scale|` must stay below 2^31 (it does when `scale` comes from the row's
/// maximum).
pub fn quantize_scaled(x: &[f32], scale: f32, out: &mut [i8]) -> i32 {
    require();
    assert_eq!(x.len(), out.len());
    // SAFETY: features checked; equal lengths.
    unsafe { quantize_scaled_raw(x, scale, out) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn all_finite_raw(x: &[f32]) -> bool {
    let exp = _mm256_set1_epi32(0x7f80_0000);
    let mut bad = _mm256_setzero_si256();
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        let v = _mm256_and_si256(_mm256_loadu_si256(c.as_ptr().cast()), exp);
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(v, exp));
    }
    _mm256_testz_si256(bad, bad) == 1 && chunks.remainder().iter().all(|v| v.is_finite())
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn abs_max_raw(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    lanes
        .iter()
        .copied()
        .chain(chunks.remainder().iter().map(|v| v.abs()))
        .fold(0.0, f32::max)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_scaled_raw(x: &[f32], scale: f32, out: &mut [i8]) -> i32 {
    let s = _mm256_set1_ps(scale);
    let (lo, hi) = (_mm256_set1_epi32(-128), _mm256_set1_epi32(127));
    let mut sum = _mm256_setzero_si256();
    let n32 = x.len() / 32 * 32;
    let mut i = 0;
    while i < n32 {
        let p = x.as_ptr().add(i);
        let q: [__m256i; 4] = std::array::from_fn(|k| {
            let r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p.add(8 * k)), s));
            _mm256_max_epi32(_mm256_min_epi32(r, hi), lo)
        });
        for v in q {
            sum = _mm256_add_epi32(sum, v);
        }
        // packs work within 128-bit lanes; the permute restores element order.
        let a = _mm256_packs_epi32(q[0], q[1]);
        let b = _mm256_packs_epi32(q[2], q[3]);
        let c = _mm256_packs_epi16(a, b);
        let c = _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), c);
        i += 32;
    }
    let mut lanes = [0i32; 8];
    _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum);
    let mut total: i32 = lanes.iter().sum();
    for (o, &v) in out[n32..].iter_mut().zip(&x[n32..]) {
        let q = ((v * scale).round_ties_even() as i32).clamp(-128, 127);
        *o = q as i8;
        total += q;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::act::{ActivationFormat, QuantizedActivations};
    use crate::kernels::dense_testing::Rng;

    #[test]
    fn quantizing_equals_scalar() {
        if !available() {
            return;
        }
        let mut rng = Rng::new(40);
        for n in [1, 31, 32, 33, 256, 2560, 2561, 6912] {
            for scale in [1e-4, 1.0, 1e4] {
                let x = rng.floats(n, scale);
                assert!(all_finite(&x));
                let m = abs_max(&x);
                assert_eq!(m, x.iter().fold(0.0f32, |a, v| a.max(v.abs())));
                let s = (127.0 / f64::from(m).max(1e-5)) as f32;
                let mut q = vec![0i8; n];
                let sum = quantize_scaled(&x, s, &mut q);
                let mut twin = QuantizedActivations::new();
                twin.quantize_into_scalar(ActivationFormat::I8PerRow, &x)
                    .unwrap();
                assert_eq!(twin.act_scale(), s);
                assert_eq!(twin.qs(), &q[..], "n {n}");
                assert_eq!(twin.row_sum(), sum);
                // The whole quantizer, both formats, with and without SIMD.
                for format in [ActivationFormat::I8PerRow, ActivationFormat::Q8K] {
                    if format.check_len(n).is_err() {
                        continue;
                    }
                    let mut a = QuantizedActivations::new();
                    let mut b = QuantizedActivations::new();
                    a.quantize_into(format, &x).unwrap();
                    b.quantize_into_scalar(format, &x).unwrap();
                    assert_eq!(a.qs(), b.qs());
                    assert_eq!(a.block_scales(), b.block_scales());
                    assert_eq!(a.block_sums(), b.block_sums());
                    assert_eq!(a.row_sum(), b.row_sum());
                }
            }
        }
        let mut x = vec![1.0f32; 40];
        x[37] = f32::INFINITY;
        assert!(!all_finite(&x));
        x[37] = 0.0;
        x[3] = f32::NAN;
        assert!(!all_finite(&x));
        assert_eq!(first_abs_max_index(&[1.0, -3.0, 3.0, 2.0]), Some(1));
        // Out-of-range products saturate like the twin's clamp.
        let mut q = vec![0i8; 64];
        let big: Vec<f32> = (0..64)
            .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
            .collect();
        assert_eq!(quantize_scaled(&big, 1.0, &mut q), 32 * 127 - 32 * 128);
        assert!(q
            .iter()
            .enumerate()
            .all(|(i, &v)| v == if i % 2 == 0 { 127 } else { -128 }));
    }
}
