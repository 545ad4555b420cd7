//! Performance counters of a context, as llama.cpp's `llama_perf_context` keeps them:
//! the model's load time, prompt tokens and time (batches of more than one token),
//! generated tokens and time (batches of one token), and the time spent sampling.

use std::time::Duration;

/// What a context has done since it was created or its counters were reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Perf {
    /// How long loading the model took.
    pub load: Duration,
    /// Tokens evaluated in batches of more than one token (prompt processing).
    pub prompt_tokens: usize,
    /// Time spent evaluating those batches.
    pub prompt_time: Duration,
    /// Tokens evaluated one at a time (generation).
    pub gen_tokens: usize,
    /// Time spent evaluating them.
    pub gen_time: Duration,
    /// Tokens sampled through the context (recorded by callers with
    /// [`super::Context::record_sample`]).
    pub samples: usize,
    /// Time spent sampling them.
    pub sample_time: Duration,
}

impl Perf {
    /// Counts one successful evaluation of `n` tokens that took `time`.
    pub(crate) fn record_eval(&mut self, n: usize, time: Duration) {
        if n > 1 {
            self.prompt_tokens += n;
            self.prompt_time += time;
        } else {
            self.gen_tokens += n;
            self.gen_time += time;
        }
    }

    /// Prompt tokens per second (0 when no prompt was evaluated).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_time)
    }

    /// Generated tokens per second (0 when none were evaluated).
    pub fn gen_tokens_per_second(&self) -> f64 {
        rate(self.gen_tokens, self.gen_time)
    }
}

fn rate(n: usize, t: Duration) -> f64 {
    let s = t.as_secs_f64();
    if n == 0 || s <= 0.0 {
        0.0
    } else {
        n as f64 / s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_one_count_as_generation() {
        let mut p = Perf::default();
        p.record_eval(8, Duration::from_millis(40));
        p.record_eval(1, Duration::from_millis(10));
        p.record_eval(1, Duration::from_millis(10));
        assert_eq!((p.prompt_tokens, p.gen_tokens), (8, 2));
        assert_eq!(p.prompt_time, Duration::from_millis(40));
        assert_eq!(p.gen_time, Duration::from_millis(20));
        assert!((p.prompt_tokens_per_second() - 200.0).abs() < 1e-9);
        assert!((p.gen_tokens_per_second() - 100.0).abs() < 1e-9);
        assert_eq!(Perf::default().gen_tokens_per_second(), 0.0);
    }
}
