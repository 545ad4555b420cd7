//! HellaSwag in llama-perplexity's text format: six lines per task, the context
//! (`activity_label: ctx`), the index of the gold ending (0-3), then the four endings.
//! Each ending is scored by the mean log-likelihood of its tokens after the context
//! (`acc_norm` as llama-perplexity computes it, in double precision); the best wins.
//! Tasks are drawn in the tool's random order (`std::mt19937` seeded with 1), so `--tasks N`
//! picks the same N tasks.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::choice::{self, ChoiceReport, EndingsTask};
use super::data::{line_error, text_lines};
use super::rng::Mt19937;
use super::Progress;

/// The number of tasks llama-perplexity uses when not told (`--hellaswag-tasks`).
pub const DEFAULT_TASKS: usize = 400;

/// One HellaSwag task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HellaswagTask {
    /// Position of the task in the file (0-based).
    pub index: usize,
    /// The context the endings continue.
    pub context: String,
    /// Index of the gold ending.
    pub gold: usize,
    /// The four candidate endings.
    pub endings: [String; 4],
}

/// Reads a HellaSwag file. Errors name the line: a line count that is not a multiple of six
/// (a truncated file), or a gold label that is not 0-3.
pub fn parse(bytes: &[u8]) -> Result<Vec<HellaswagTask>> {
    let lines = text_lines(bytes)?;
    if lines.is_empty() {
        return Err(Error::format(
            "the file holds no HellaSwag task (it is empty)",
        ));
    }
    if lines.len() % 6 != 0 {
        let start = lines.len() / 6 * 6;
        return Err(line_error(
            start + 1,
            format!(
                "the file has {} lines, not a multiple of 6 (six lines per task: context, \
                 gold index, four endings); the task starting here is incomplete",
                lines.len()
            ),
        ));
    }
    lines
        .chunks_exact(6)
        .enumerate()
        .map(|(index, l)| {
            let label_line = index * 6 + 2;
            let gold = match l[1].trim().parse::<usize>() {
                Ok(g) if g < 4 => g,
                _ => {
                    return Err(line_error(
                        label_line,
                        format!(
                            "the gold ending index must be 0, 1, 2 or 3, not '{}' (is a line \
                             missing above?)",
                            l[1]
                        ),
                    ))
                }
            };
            Ok(HellaswagTask {
                index,
                context: l[0].clone(),
                gold,
                endings: [l[2].clone(), l[3].clone(), l[4].clone(), l[5].clone()],
            })
        })
        .collect()
}

/// The `n` tasks llama-perplexity evaluates, in its order: it always draws at random
/// (without replacement) from the tasks left, even when it uses all of them.
pub fn select(mut tasks: Vec<HellaswagTask>, n: usize) -> Vec<HellaswagTask> {
    let n = n.min(tasks.len());
    let mut rng = Mt19937::new(1);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let idx = rng.uniform_below(tasks.len() as u64) as usize;
        out.push(tasks.remove(idx));
    }
    out
}

impl EndingsTask for HellaswagTask {
    type Sum = f64;
    fn index(&self) -> usize {
        self.index
    }
    fn choice_texts(&self) -> Vec<String> {
        self.endings
            .iter()
            .map(|e| format!("{} {e}", self.context))
            .collect()
    }
    fn is_correct(&self, chosen: usize) -> bool {
        chosen == self.gold
    }
}

/// Scores `tasks` (in the given order). `ctx` must compute logits for every position.
pub fn score(
    ctx: &mut Context,
    tok: &Tokenizer,
    tasks: &[HellaswagTask],
    progress: Progress<'_>,
) -> Result<ChoiceReport> {
    choice::score_endings_tasks(ctx, tok, tasks, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_text(ctx: &str, gold: &str) -> String {
        format!("{ctx}\n{gold}\na\nb\nc\nd\n")
    }

    #[test]
    fn parses_and_names_bad_lines() {
        let text = task_text("one", "2") + &task_text("two", "0");
        let tasks = parse(text.as_bytes()).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].gold, 2);
        assert_eq!(tasks[1].context, "two");
        assert_eq!(tasks[1].endings[3], "d");

        let e = parse(b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let truncated = task_text("one", "1") + "two\n1\na\n";
        let e = parse(truncated.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 7"), "{e}");
        let bad = task_text("one", "1") + &task_text("two", "4");
        let e = parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 8") && e.contains("'4'"), "{e}");
    }

    #[test]
    fn selection_is_the_tools_random_order() {
        let tasks: Vec<HellaswagTask> = (0..10)
            .map(|i| HellaswagTask {
                index: i,
                context: String::new(),
                gold: 0,
                endings: Default::default(),
            })
            .collect();
        // uniform_int_distribution draws 4, 8, 5, 6, 0, 0 over shrinking ranges
        // (see rng.rs): 4; then 8 of [0,1,2,3,5,6,7,8,9] = 9; then 5 of
        // [0,1,2,3,5,6,7,8] = 6; then 6 of [0,1,2,3,5,7,8] = 8; then 0; then 1.
        let order: Vec<usize> = select(tasks, 6).iter().map(|t| t.index).collect();
        assert_eq!(order, [4, 9, 6, 8, 0, 1]);
    }
}
