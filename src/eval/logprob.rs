//! Log-probabilities of a token from a row of logits, each in the precision llama-perplexity
//! uses at that place (single or double sums), so that scores agree to the last digit it
//! prints. `f32::exp`/`f32::ln` are the C library's `expf`/`logf`, as in the C++ tool.

fn max_of(logits: &[f32]) -> f32 {
    // std::max(m, v) keeps m unless m < v.
    logits[1..]
        .iter()
        .fold(logits[0], |m, &v| if m < v { v } else { m })
}

/// Negative log-likelihood of `token` as the perplexity run computes it: maximum in single
/// precision, the sum of `expf` in double.
pub fn perplexity_nll(logits: &[f32], token: usize) -> f64 {
    let max = max_of(logits);
    let mut sum = 0.0f64;
    for &l in logits {
        sum += f64::from((l - max).exp());
    }
    -(f64::from(logits[token] - max) - sum.ln())
}

/// Log-probability of `token` as the multiple-choice scorers compute it for every ending
/// token after the first: everything in single precision.
pub fn choice_logprob(logits: &[f32], token: usize) -> f32 {
    let max = max_of(logits);
    let mut sum = 0.0f32;
    for &l in logits {
        sum += (l - max).exp();
    }
    logits[token] - max - sum.ln()
}

/// Log-probability of `token` through llama-perplexity's `softmax` (double sum, single
/// precision probabilities) and a single-precision log: how the first token of each ending
/// is scored.
pub fn softmax_logprob(logits: &[f32], token: usize) -> f32 {
    let max = max_of(logits);
    let mut sum = 0.0f64;
    for &l in logits {
        sum += f64::from((l - max).exp());
    }
    let prob = (f64::from((logits[token] - max).exp()) / sum) as f32;
    prob.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_row_gives_log_of_one_over_n() {
        let row = [0.25f32; 8];
        let want = -(8.0f64).ln();
        assert!((perplexity_nll(&row, 3) + want).abs() < 1e-12);
        assert!((f64::from(choice_logprob(&row, 3)) - want).abs() < 1e-6);
        assert!((f64::from(softmax_logprob(&row, 3)) - want).abs() < 1e-6);
    }

    #[test]
    fn two_way_row() {
        // p(0) = e^2 / (e^2 + 1)
        let row = [2.0f32, 0.0];
        let p0 = (2.0f64).exp() / ((2.0f64).exp() + 1.0);
        assert!((perplexity_nll(&row, 0) + p0.ln()).abs() < 1e-7);
        assert!((f64::from(choice_logprob(&row, 1)) - (1.0 - p0).ln()).abs() < 1e-6);
        assert!((f64::from(softmax_logprob(&row, 0)) - p0.ln()).abs() < 1e-6);
    }
}
