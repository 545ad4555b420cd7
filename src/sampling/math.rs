//! `exp` and `ln` on `f64` written with `+ - * /` only, so that their results are the same
//! bits on every platform (the system `libm` differs between glibc, musl, macOS and
//! Windows in the last place, which could move a top-p cut-off or a random draw across a
//! boundary). Accuracy is a few ulp, far more than sampling needs.

/// ln 2 rounded to 32 significant bits, so that `k * LN2_HI` is exact for |k| < 2^21.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// ln 2 - LN2_HI.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// Multiplies `y` by 2^`k` exactly (up to the final rounding of a subnormal result).
fn scale_by_pow2(mut y: f64, mut k: i64) -> f64 {
    let two_pow = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    while k > 1023 {
        y *= two_pow(1023);
        k -= 1023;
    }
    while k < -1022 {
        y *= two_pow(-1022);
        k += 1022;
    }
    y * two_pow(k)
}

/// e^`x`. NaN gives NaN, -inf gives 0, +inf gives +inf.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.8 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    // x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite: k*LN2_HI is exact).
    let k = (x * LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series of e^r to degree 14 in Horner form; the remainder is below 2^-60.
    let mut p = 1.0;
    let mut n = 14.0;
    while n >= 1.0 {
        p = 1.0 + r * p / n;
        n -= 1.0;
    }
    scale_by_pow2(p, k as i64)
}

/// The natural logarithm of `x`. NaN and negative values give NaN, 0 gives -inf.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // x = m 2^e with m in [sqrt(1/2), sqrt(2)).
    let (mut bits, mut e) = (x.to_bits(), 0i64);
    if bits >> 52 == 0 {
        // Subnormal: make it normal first.
        bits = (x * 18_014_398_509_481_984.0).to_bits(); // 2^54
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m >= std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172: odd series to s^27.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut sum = 0.0;
    let mut n = 27.0;
    while n >= 1.0 {
        sum = 1.0 / n + s2 * sum;
        n -= 2.0;
    }
    let ln_m = 2.0 * s * sum;
    let e = e as f64;
    e * LN2_HI + (e * LN2_LO + ln_m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            ((a - b) / b).abs()
        }
    }

    #[test]
    fn exp_matches_std() {
        let mut x: f64 = -708.0; // normal results; subnormal ones are checked below
        while x < 709.0 {
            assert!(
                rel(exp(x), x.exp()) < 1e-15,
                "exp({x}) = {} vs {}",
                exp(x),
                x.exp()
            );
            x += 0.37;
        }
        for x in [
            0.0f64, 1e-300, -1e-300, 1.0, -1.0, 0.5, -0.5, 88.7, -103.9, -0.3466,
        ] {
            assert!(rel(exp(x), x.exp()) < 1e-15, "exp({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        // Subnormal results still come out within an ulp or two of the subnormal grid.
        let mut x: f64 = -744.9;
        while x < -708.0 {
            assert!(
                (exp(x) - x.exp()).abs() <= 2.0 * f64::from_bits(1),
                "exp({x})"
            );
            x += 0.173;
        }
    }

    #[test]
    fn ln_matches_std() {
        let mut x: f64 = 1e-310;
        while x < 1e300 {
            let want = x.ln();
            let got = ln(x);
            assert!(
                (got - want).abs() <= 1e-15 * want.abs().max(1.0),
                "ln({x}) = {got} vs {want}"
            );
            x *= 1.731;
        }
        for x in [
            1.0f64,
            2.0,
            0.5,
            std::f64::consts::E,
            0.05,
            0.95,
            1.0 + 1e-12,
        ] {
            assert!((ln(x) - x.ln()).abs() <= 1e-15 * x.ln().abs().max(1e-300) + 1e-300);
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
    }
}
