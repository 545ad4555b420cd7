//! Mean and spread of repeated measurements, computed as llama-bench does.

/// Arithmetic mean; 0 for no samples.
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (divides by n - 1, like llama-bench); 0 for fewer than 2.
pub fn stddev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// The ratio `a / b` of two means and its relative spread, from the relative standard
/// deviations of both (first-order error propagation).
pub fn ratio_with_spread(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (ma, mb) = (mean(a), mean(b));
    if ma == 0.0 || mb == 0.0 {
        return (0.0, 0.0);
    }
    let r = ma / mb;
    let rel = ((stddev(a) / ma).powi(2) + (stddev(b) / mb).powi(2)).sqrt();
    (r, r * rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_stddev_ratio() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(stddev(&[5.0]), 0.0);
        assert!((stddev(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        let (r, s) = ratio_with_spread(&[4.0, 4.0], &[2.0, 2.0]);
        assert_eq!((r, s), (2.0, 0.0));
        let (r, s) = ratio_with_spread(&[3.0, 5.0], &[2.0, 2.0]);
        assert_eq!(r, 2.0);
        assert!(s > 0.0);
    }
}
