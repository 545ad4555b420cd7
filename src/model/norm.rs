//! RMS normalization, computed as ggml computes it (`ggml_rms_norm` followed by the
//! element-wise `ggml_mul` with the weight), so that the int8 activation quantization
//! that follows sees the same floats bitnet.cpp does.

/// `out[i] = x[i] * (1 / sqrt(mean(x²) + eps)) * weight[i]`.
///
/// The squares are formed in f32 and summed in f64; the mean is rounded to f32 before
/// `eps` is added, and the scale is applied before the weight (ggml's order).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), weight.len());
    debug_assert_eq!(x.len(), out.len());
    if crate::kernels::simd::rms_norm(x, weight, eps, out) {
        return;
    }
    rms_norm_scalar(x, weight, eps, out);
}

/// [`rms_norm`] without SIMD (the twin the SIMD versions are tested against).
pub fn rms_norm_scalar(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let scale = rms_scale(x, eps);
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = (v * scale) * w;
    }
}

/// [`rms_norm`] applied to each of the `n` rows of `x` (row length `weight.len()`).
pub fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32], n: usize) {
    let d = weight.len();
    for (xr, or) in x[..n * d]
        .chunks_exact(d)
        .zip(out[..n * d].chunks_exact_mut(d))
    {
        rms_norm(xr, weight, eps, or);
    }
}

/// The factor `1 / sqrt(mean(x²) + eps)` with ggml's rounding steps.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_after_norm() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let w = vec![1.0f32; 64];
        let mut y = vec![0.0; 64];
        rms_norm(&x, &w, 1e-6, &mut y);
        let ms: f64 = y.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / 64.0;
        assert!((ms - 1.0).abs() < 1e-5, "{ms}");
        // The weight multiplies element-wise.
        let w2: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let mut y2 = vec![0.0; 64];
        rms_norm(&x, &w2, 1e-6, &mut y2);
        for i in 0..64 {
            assert_eq!(y2[i], y[i] * i as f32);
        }
    }

    #[test]
    fn zero_input_stays_finite() {
        let x = vec![0.0f32; 16];
        let mut y = vec![1.0; 16];
        rms_norm(&x, &[2.0; 16], 1e-5, &mut y);
        assert!(y.iter().all(|&v| v == 0.0));
    }
}
