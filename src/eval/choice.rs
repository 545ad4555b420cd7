//! Evaluation shared by the log-likelihood tasks: a common token prefix followed by several
//! endings. llama-perplexity puts the prefix once in a batch shared by one sequence per
//! ending; here the prefix is evaluated once and each ending continues from it after the
//! KV cache is cut back to the prefix, which computes the same attention. Rows of logits are
//! handed out in the tool's output order, so each task indexes them as the tool does.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::Accuracy;

/// One task's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceResult {
    /// Position of the task in the data file (0-based).
    pub task: usize,
    /// The score of each choice (mean log-likelihood per token; higher is better).
    pub scores: Vec<f64>,
    /// The choice with the best score.
    pub chosen: usize,
    /// True if that choice is a correct one.
    pub correct: bool,
}

/// The outcome of a multiple-choice evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChoiceReport {
    /// Per task, in evaluation order.
    pub results: Vec<ChoiceResult>,
    /// Correct out of done.
    pub accuracy: Accuracy,
    /// Choices offered over all tasks (for the random-chance baseline).
    pub n_choices: usize,
}

impl ChoiceReport {
    pub(crate) fn push(&mut self, result: ChoiceResult) {
        self.accuracy.add(result.correct);
        self.n_choices += result.scores.len();
        self.results.push(result);
    }

    /// Accuracy of guessing uniformly at random, in percent (tasks over choices offered).
    pub fn random_chance_percent(&self) -> f64 {
        if self.n_choices == 0 {
            return 0.0;
        }
        100.0 * self.accuracy.total as f64 / self.n_choices as f64
    }
}

/// Tokenizes as llama-perplexity's `common_tokenize(ctx, text, true)`: BOS/EOS as the model
/// asks, special-token text read as plain text.
pub(crate) fn tokenize(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tok.tokenize(text, true, false)
}

/// The number of leading tokens all sequences share.
pub(crate) fn common_prefix(seqs: &[Vec<u32>]) -> usize {
    let min_len = seqs.iter().map(Vec::len).min().unwrap_or(0);
    (0..min_len)
        .take_while(|&k| seqs.iter().all(|s| s[k] == seqs[0][k]))
        .count()
}

/// Tokens llama-perplexity puts in the batch for a task: the prefix once, each ending once.
pub(crate) fn required_tokens(seqs: &[Vec<u32>], prefix: usize) -> usize {
    prefix + seqs.iter().map(|s| s.len() - prefix).sum::<usize>()
}

/// Checks that a task can be evaluated: a non-empty shared prefix, every ending at least one
/// token past it, and everything within the context window.
pub(crate) fn check_task(
    ctx: &Context,
    task: usize,
    seqs: &[Vec<u32>],
    prefix: usize,
) -> Result<()> {
    if prefix == 0 {
        return Err(Error::invalid(format!(
            "task {}: the choices share no leading token (the model adds no BOS and the \
             texts differ from the first token), which llama-perplexity cannot score either",
            task + 1
        )));
    }
    if let Some(s) = seqs.iter().position(|s| s.len() <= prefix) {
        return Err(Error::invalid(format!(
            "task {}: choice {} adds no token after the text all choices share",
            task + 1,
            s + 1
        )));
    }
    let needed = required_tokens(seqs, prefix);
    if needed > ctx.n_ctx() {
        return Err(Error::invalid(format!(
            "task {} does not fit in the context window: it needs {needed} tokens and the \
             context holds {} (raise -c)",
            task + 1,
            ctx.n_ctx()
        )));
    }
    Ok(())
}

/// Feeds `tokens` in batches of at most `n_batch` and hands every row of logits to `on_row`
/// (the context must compute logits for all positions).
pub(crate) fn feed(
    ctx: &mut Context,
    tokens: &[u32],
    on_row: &mut dyn FnMut(&[f32]),
) -> Result<()> {
    let n_batch = ctx.n_batch();
    for batch in tokens.chunks(n_batch) {
        ctx.eval(batch)?;
        for i in 0..ctx.n_outputs() {
            on_row(ctx.logits_row(i).expect("row within n_outputs"));
        }
    }
    Ok(())
}

/// Evaluates `seqs` sharing their first `prefix` tokens. Row 0 is the logits after the last
/// prefix token; then, for each sequence in turn, the logits after each of its tokens past
/// the prefix, except its last token when `last_token_logits` is false (HellaSwag and
/// multiple choice never need them; Winogrande's layout includes them).
pub(crate) fn eval_shared_prefix(
    ctx: &mut Context,
    seqs: &[Vec<u32>],
    prefix: usize,
    last_token_logits: bool,
    on_row: &mut dyn FnMut(usize, &[f32]),
) -> Result<()> {
    ctx.kv_clear();
    let mut seen = 0usize;
    feed(ctx, &seqs[0][..prefix], &mut |row| {
        seen += 1;
        if seen == prefix {
            on_row(0, row);
        }
    })?;
    let mut next_row = 1usize;
    for seq in seqs {
        ctx.kv_truncate(prefix)?;
        let end = if last_token_logits {
            seq.len()
        } else {
            seq.len() - 1
        };
        if end > prefix {
            feed(ctx, &seq[prefix..end], &mut |row| {
                on_row(next_row, row);
                next_row += 1;
            })?;
        }
    }
    Ok(())
}

/// Index of the largest score; the first one wins ties (a later score must be strictly
/// greater), as in llama-perplexity.
pub(crate) fn best_index<T: PartialOrd + Copy>(scores: &[T]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate().skip(1) {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_required() {
        let seqs = vec![vec![1, 2, 3, 4], vec![1, 2, 5], vec![1, 2, 3, 9, 9]];
        assert_eq!(common_prefix(&seqs), 2);
        assert_eq!(required_tokens(&seqs, 2), 2 + 2 + 1 + 3);
        assert_eq!(common_prefix(&[vec![1, 2], vec![1, 2, 3]]), 2);
        assert_eq!(common_prefix(&[vec![7], vec![8]]), 0);
    }

    #[test]
    fn best_index_first_wins_ties() {
        assert_eq!(best_index(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(best_index(&[-1.0f32]), 0);
        assert_eq!(best_index(&[-2.0, -1.0]), 1);
    }
}
