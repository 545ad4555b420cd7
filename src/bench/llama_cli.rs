//! What `tern compare -d` needs from bitnet.cpp's `llama-cli`: the performance lines it
//! prints on stderr when it exits, and a prompt text that a model's own vocabulary reads as
//! exactly N tokens (so that decoding starts at context depth N).
//!
//! llama.cpp of 2024 prints its timings as
//! `llama_perf_context_print: prompt eval time = 21.09 ms / 123 tokens (...)` and
//! `llama_perf_context_print:        eval time =  3.35 ms /  15 runs   (...)`; older builds
//! print the same numbers after `llama_print_timings:`. Both are read here: the prefix is
//! ignored, and the count may be called `tokens` or `runs`.

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// The prompt and decode timings of one llama-cli run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlamaCliTimings {
    /// Milliseconds spent evaluating the prompt (batches of more than one token).
    pub prompt_ms: f64,
    /// Tokens of the prompt (BOS included), as llama.cpp counted them.
    pub prompt_tokens: usize,
    /// Milliseconds spent in single-token decode calls after the prompt.
    pub eval_ms: f64,
    /// Single-token decode calls.
    pub eval_runs: usize,
}

impl LlamaCliTimings {
    /// Decode time per generated token, nanoseconds.
    pub fn eval_ns_per_token(&self) -> f64 {
        self.eval_ms * 1e6 / self.eval_runs as f64
    }
}

/// Reads `= X ms / N word` after the label; `None` when the line does not have that shape.
fn time_and_count(after_label: &str) -> Option<(f64, usize)> {
    let rest = after_label.trim_start().strip_prefix('=')?;
    let (ms_part, rest) = rest.split_once("ms")?;
    let ms: f64 = ms_part
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let rest = rest.trim_start().strip_prefix('/')?;
    let mut words = rest.split_whitespace();
    let count: usize = words.next()?.parse().ok()?;
    match words.next()? {
        "tokens" | "runs" | "token" | "run" => Some((ms, count)),
        _ => None,
    }
}

/// Finds the last `prompt eval time` and `eval time` lines of llama-cli's stderr. Fails
/// with a message naming the missing line.
pub fn parse_llama_cli_timings(stderr: &str) -> Result<LlamaCliTimings> {
    let mut prompt = None;
    let mut eval = None;
    for line in stderr.lines() {
        if let Some(i) = line.find("prompt eval time") {
            if let Some(v) = time_and_count(&line[i + "prompt eval time".len()..]) {
                prompt = Some(v);
            }
        } else if let Some(i) = line.find("eval time") {
            if let Some(v) = time_and_count(&line[i + "eval time".len()..]) {
                eval = Some(v);
            }
        }
    }
    let missing = |what: &str| {
        Error::invalid(format!(
            "no '{what} = X ms / N ...' line (llama_perf_context_print or llama_print_timings)"
        ))
    };
    let (prompt_ms, prompt_tokens) = prompt.ok_or_else(|| missing("prompt eval time"))?;
    let (eval_ms, eval_runs) = eval.ok_or_else(|| missing("eval time"))?;
    if eval_runs == 0 {
        return Err(Error::invalid(
            "'eval time' counts 0 runs: nothing was decoded",
        ));
    }
    Ok(LlamaCliTimings {
        prompt_ms,
        prompt_tokens,
        eval_ms,
        eval_runs,
    })
}

/// Words tried, in order, as the repeated unit of a depth prompt.
const PROMPT_WORDS: [&str; 6] = ["the", "a", "and", "of", "to", "in"];

/// A text that `tok` reads as exactly `n_tokens` tokens, the special tokens it adds (BOS)
/// included: one word repeated, `the the the ...`. Other words of the vocabulary are tried
/// when those of [`PROMPT_WORDS`] are not single tokens there.
pub fn prompt_of_n_tokens(tok: &Tokenizer, n_tokens: usize) -> Result<String> {
    let added = tok.tokenize("", true, false)?.len();
    if n_tokens <= added {
        return Err(Error::invalid(format!(
            "a depth of {n_tokens} tokens leaves no room for text after the {added} \
             token(s) the vocabulary adds; use a depth of at least {}",
            added + 1
        )));
    }
    let words = n_tokens - added;
    let count = |text: &str| tok.tokenize(text, true, false).map(|t| t.len());
    let repeat = |w: &str, k: usize| {
        let mut s = String::with_capacity((w.len() + 1) * k);
        for i in 0..k {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(w);
        }
        s
    };
    let vocab_words = (0..tok.n_vocab().min(20_000) as u32).filter_map(|id| {
        let text = tok.detokenize(&[id], false, false).ok()?;
        let w = text.trim_start();
        (w.len() >= 2 && w.len() <= 8 && w.bytes().all(|b| b.is_ascii_lowercase()))
            .then(|| w.to_string())
    });
    let candidates = PROMPT_WORDS
        .iter()
        .map(|w| w.to_string())
        .chain(vocab_words);
    for w in candidates {
        // Cheap check first: two copies must be two tokens.
        if count(&repeat(&w, 2))? != added + 2 {
            continue;
        }
        let text = repeat(&w, words);
        if count(&text)? == n_tokens {
            return Ok(text);
        }
    }
    Err(Error::invalid(format!(
        "found no word that this vocabulary reads as one token per repetition, to build a \
         prompt of {n_tokens} tokens"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written after the lines bitnet.cpp's llama-cli (llama.cpp of late 2024) prints.
    const PERF: &str = "\
generate: n_ctx = 512, n_batch = 2048, n_predict = 16, n_keep = 1

llama_perf_sampler_print:    sampling time =       0.02 ms /   139 runs   (    0.00 ms per token, 8687500.00 tokens per second)
llama_perf_context_print:        load time =      48.11 ms
llama_perf_context_print: prompt eval time =      21.09 ms /   123 tokens (    0.17 ms per token,  5831.04 tokens per second)
llama_perf_context_print:        eval time =       3.35 ms /    15 runs   (    0.22 ms per token,  4476.28 tokens per second)
llama_perf_context_print:       total time =      55.89 ms /   138 tokens
";

    // The older spelling (llama.cpp before the perf-print rename, mid 2024).
    const PRINT_TIMINGS: &str = "\
llama_print_timings:        load time =     612.50 ms
llama_print_timings:      sample time =       4.10 ms /    33 runs   (    0.12 ms per token,  8048.78 tokens per second)
llama_print_timings: prompt eval time =    9000.00 ms /  1024 tokens (    8.79 ms per token,   113.78 tokens per second)
llama_print_timings:        eval time =    1600.00 ms /    32 runs   (   50.00 ms per token,    20.00 tokens per second)
llama_print_timings:       total time =   10700.00 ms /  1056 tokens
";

    #[test]
    fn reads_llama_perf_context_print_lines() {
        let t = parse_llama_cli_timings(PERF).unwrap();
        assert_eq!(t.prompt_tokens, 123);
        assert_eq!(t.eval_runs, 15);
        assert!((t.prompt_ms - 21.09).abs() < 1e-9);
        assert!((t.eval_ms - 3.35).abs() < 1e-9);
        assert!((t.eval_ns_per_token() - 3.35e6 / 15.0).abs() < 1e-3);
    }

    #[test]
    fn reads_llama_print_timings_lines() {
        let t = parse_llama_cli_timings(PRINT_TIMINGS).unwrap();
        assert_eq!((t.prompt_tokens, t.eval_runs), (1024, 32));
        assert_eq!(t.eval_ns_per_token(), 50e6);
    }

    #[test]
    fn sampling_and_total_lines_are_not_taken_for_eval() {
        // Only the sampler and total lines: no eval line.
        let text = "llama_perf_sampler_print:    sampling time =  0.02 ms /   139 runs\n\
                    llama_perf_context_print: prompt eval time = 1.0 ms / 8 tokens\n\
                    llama_perf_context_print:       total time =  5.00 ms /   138 tokens\n";
        let e = parse_llama_cli_timings(text).unwrap_err().to_string();
        assert!(e.contains("'eval time"), "{e}");
    }

    #[test]
    fn missing_or_malformed_lines_are_errors() {
        let e = parse_llama_cli_timings("error: unknown argument: --no-warmup\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prompt eval time"), "{e}");
        let e = parse_llama_cli_timings(
            "llama_perf_context_print: prompt eval time = 1.0 ms / 8 tokens\n\
             llama_perf_context_print:        eval time = nan ms / x runs\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'eval time"), "{e}");
        let e = parse_llama_cli_timings(
            "llama_perf_context_print: prompt eval time = 1.0 ms / 8 tokens\n\
             llama_perf_context_print:        eval time = 0.00 ms /     0 runs\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("0 runs"), "{e}");
    }

    #[test]
    fn the_last_timings_win_and_spacing_does_not_matter() {
        let text = format!("{PRINT_TIMINGS}llama_perf_context_print: prompt eval time=2.5 ms/4 tokens\nllama_perf_context_print: eval time=1 ms/1 runs\n");
        let t = parse_llama_cli_timings(&text).unwrap();
        assert_eq!((t.prompt_tokens, t.eval_runs), (4, 1));
        assert_eq!(t.prompt_ms, 2.5);
    }
}
