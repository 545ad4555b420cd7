//! Evaluation shared by the log-likelihood tasks: a common token prefix followed by several
//! endings. llama-perplexity puts the prefix once in a batch shared by one sequence per
//! ending; here the prefix is evaluated once and each ending continues from it after the
//! KV cache is cut back to the prefix, which computes the same attention. Rows of logits are
//! handed out in the tool's output order, so each task indexes them as the tool does.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::logprob::{choice_logprob, softmax_logprob};
use super::{Accuracy, Progress};

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

/// A task scored by the mean log-likelihood of each ending's tokens after the text all
/// choices share, the best score winning (HellaSwag and multiple choice).
pub(crate) trait EndingsTask {
    /// The precision llama-perplexity sums the log-likelihoods in.
    type Sum: LogSum;
    /// Position of the task in the data file (0-based).
    fn index(&self) -> usize;
    /// The whole text of each choice (the shared context and the ending).
    fn choice_texts(&self) -> Vec<String>;
    /// True if choice `chosen` is a correct one.
    fn is_correct(&self, chosen: usize) -> bool;
}

/// A floating-point type log-likelihoods are summed in: llama-perplexity sums HellaSwag in
/// double precision and multiple choice in single precision.
pub(crate) trait LogSum: Copy + std::ops::AddAssign + Into<f64> {
    /// The value of a single-precision log-likelihood.
    fn from_f32(x: f32) -> Self;
    /// `self / n` in this precision.
    fn mean(self, n: usize) -> Self;
}

impl LogSum for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn mean(self, n: usize) -> Self {
        self / n as f32
    }
}

impl LogSum for f64 {
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn mean(self, n: usize) -> Self {
        self / n as f64
    }
}

/// Scores `tasks` (in the given order) by the mean log-likelihood of each ending. `ctx` must
/// compute logits for every position. Progress lines are `done<TAB>accuracy`.
pub(crate) fn score_endings_tasks<T: EndingsTask>(
    ctx: &mut Context,
    tok: &Tokenizer,
    tasks: &[T],
    progress: Progress<'_>,
) -> Result<ChoiceReport> {
    let mut report = ChoiceReport::default();
    for task in tasks {
        let seqs: Vec<Vec<u32>> = task
            .choice_texts()
            .iter()
            .map(|text| tokenize(tok, text))
            .collect::<Result<_>>()?;
        let prefix = common_prefix(&seqs);
        check_task(ctx, task.index(), &seqs, prefix)?;
        let scores: Vec<f64> = mean_ending_logprobs::<T::Sum>(ctx, &seqs, prefix)?
            .into_iter()
            .map(Into::into)
            .collect();
        // Widening to f64 keeps order and ties, so the choice is the one the tool makes.
        let chosen = best_index(&scores);
        report.push(ChoiceResult {
            task: task.index(),
            scores,
            chosen,
            correct: task.is_correct(chosen),
        });
        let done = report.results.len();
        progress(
            done,
            tasks.len(),
            &format!("{done}\t{:.8}", report.accuracy.percent()),
        );
    }
    Ok(report)
}

/// Mean log-likelihood of each ending in precision `S`: the first ending token through the
/// softmax of the prefix's last row, the others from their own rows.
fn mean_ending_logprobs<S: LogSum>(
    ctx: &mut Context,
    seqs: &[Vec<u32>],
    prefix: usize,
) -> Result<Vec<S>> {
    // Row r of the layout belongs to ending owner[r] and predicts token target[r].
    let mut owner = vec![usize::MAX];
    let mut target = vec![0u32];
    for (s, seq) in seqs.iter().enumerate() {
        for j in prefix..seq.len() - 1 {
            owner.push(s);
            target.push(seq[j + 1]);
        }
    }
    let mut sums = vec![S::from_f32(0.0); seqs.len()];
    let mut counts = vec![1usize; seqs.len()];
    eval_shared_prefix(ctx, seqs, prefix, false, &mut |r, row| {
        if r == 0 {
            for (s, seq) in seqs.iter().enumerate() {
                sums[s] = S::from_f32(softmax_logprob(row, seq[prefix] as usize));
            }
        } else {
            let s = owner[r];
            sums[s] += S::from_f32(choice_logprob(row, target[r] as usize));
            counts[s] += 1;
        }
    })?;
    Ok(sums
        .iter()
        .zip(&counts)
        .map(|(&sum, &n)| sum.mean(n))
        .collect())
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
    fn sums_in_either_precision() {
        assert_eq!(<f32 as LogSum>::from_f32(1.5).mean(2), 0.75f32);
        assert_eq!(<f64 as LogSum>::from_f32(1.5).mean(2), 0.75f64);
        // Single precision rounds where double does not, as the tool's two sums do.
        let tiny = 1e-8f32;
        let mut single = <f32 as LogSum>::from_f32(1.0);
        single += <f32 as LogSum>::from_f32(tiny);
        let mut double = <f64 as LogSum>::from_f32(1.0);
        double += <f64 as LogSum>::from_f32(tiny);
        assert_eq!(single, 1.0f32);
        assert!(double > 1.0);
    }

    #[test]
    fn best_index_first_wins_ties() {
        assert_eq!(best_index(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(best_index(&[-1.0f32]), 0);
        assert_eq!(best_index(&[-2.0, -1.0]), 1);
    }
}
