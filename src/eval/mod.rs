//! Accuracy evaluation, compatible with llama.cpp's `llama-perplexity` (which bitnet.cpp
//! ships): perplexity over a text, and HellaSwag, Winogrande and multiple-choice (ARC,
//! MMLU, TruthfulQA) scored by log-likelihood from the same data files, the same way; plus
//! two generation tasks, GSM8K (exact match on the final number) and HumanEval (writes
//! completions for the official evaluator; tern never runs the generated code).
//!
//! - [`perplexity`]: chunked perplexity (first half of each chunk is context only);
//! - [`hellaswag`], [`winogrande`], [`multiple_choice`]: log-likelihood scoring of endings;
//! - [`gsm8k`], [`humaneval`]: greedy generation, see [`generate`];
//! - [`data`]: shared data-file helpers (every parse error names its line);
//! - [`logprob`]: log-probabilities in the tool's exact precision;
//! - [`rng`]: the tool's random task selection (`std::mt19937`).
//!
//! Every function here is deterministic: the same model, data and options give the same
//! scores on every run (no sampling, no thread-dependent summation order).

mod choice;
pub mod data;
pub mod generate;
pub mod gsm8k;
pub mod hellaswag;
pub mod humaneval;
pub mod logprob;
pub mod multiple_choice;
pub mod perplexity;
pub mod rng;
pub mod winogrande;

pub use choice::{ChoiceReport, ChoiceResult};

/// Correct answers out of tasks done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Tasks answered correctly.
    pub correct: usize,
    /// Tasks done.
    pub total: usize,
}

impl Accuracy {
    /// Adds one task's outcome.
    pub fn add(&mut self, correct: bool) {
        self.total += 1;
        self.correct += usize::from(correct);
    }

    /// Accuracy in percent (0 when no task was done).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        100.0 * self.correct as f64 / self.total as f64
    }

    /// Standard error of the accuracy in percent, `100·sqrt(p(1-p)/(n-1))` as
    /// llama-perplexity prints it (single precision); `None` for fewer than two tasks.
    pub fn stderr_percent(&self) -> Option<f64> {
        if self.total < 2 {
            return None;
        }
        let p = self.correct as f32 / self.total as f32;
        let sigma = (p * (1.0 - p) / (self.total - 1) as f32).sqrt();
        Some(f64::from(100.0 * sigma))
    }
}

impl std::fmt::Display for Accuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.4} +/- {} % ({}/{})",
            self.percent(),
            self.stderr_percent()
                .map_or_else(|| "n/a".to_string(), |s| format!("{s:.4}")),
            self.correct,
            self.total
        )
    }
}

/// Called after each task (or perplexity chunk) with the number done, the number to do and
/// a one-line summary, for progress display.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// A progress callback that ignores everything.
pub fn no_progress(_: usize, _: usize, _: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_error() {
        let mut a = Accuracy::default();
        assert_eq!(a.percent(), 0.0);
        assert_eq!(a.stderr_percent(), None);
        a.add(true);
        a.add(false);
        a.add(true);
        a.add(true);
        assert_eq!(a.percent(), 75.0);
        // sqrt(0.75 * 0.25 / 3) = 0.25
        assert!((a.stderr_percent().unwrap() - 25.0).abs() < 1e-4);
        assert_eq!(a.to_string(), "75.0000 +/- 25.0000 % (3/4)");
    }
}
