//! Winogrande in the CSV llama-perplexity reads: `index,sentence,choice1,choice2,answer`,
//! the sentence holding one `_` where a choice goes and the answer 1 or 2 (the sentence may
//! be quoted; the other fields are taken as they are). Each filled-in sentence is scored by
//! the mean log-likelihood of the tokens after the choice (or of the choice and what follows
//! when fewer than four tokens follow), exactly as llama-perplexity does it, including its
//! single-precision sums and its indexing of the second sentence's first row.
//!
//! Two departures from the C++ reader, both about bad input: a malformed line is an error
//! naming the line (the tool logs it and skips it), except a first-line header
//! (`index,sentence,...`), which is skipped; and the file's last line is read (the tool's
//! read loop stops before a last line that has no newline after it, and `-f` always strips
//! the final newline, so it never scores the last task of a file). [`parse`] with
//! `drop_last_line` reproduces the latter for side-by-side comparisons.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::choice::{self, ChoiceReport, ChoiceResult};
use super::data::{line_error, text_lines};
use super::logprob::choice_logprob;
use super::rng::Mt19937;
use super::Progress;

/// Fewer tokens than this after the choice word and the choice word is scored too.
const MIN_TRAILING_TOKENS: usize = 3;

/// One Winogrande task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinograndeTask {
    /// Position of the task among the file's tasks (0-based).
    pub index: usize,
    /// 1-based line in the file.
    pub line: usize,
    /// The sentence before the blank.
    pub first: String,
    /// The sentence after the blank.
    pub second: String,
    /// The two candidates for the blank.
    pub choices: [String; 2],
    /// The correct choice, 1 or 2.
    pub answer: usize,
}

/// Reads a Winogrande CSV. With `drop_last_line`, the last line is ignored as
/// llama-perplexity ignores it (see the module notes).
pub fn parse(bytes: &[u8], drop_last_line: bool) -> Result<Vec<WinograndeTask>> {
    let mut lines = text_lines(bytes)?;
    if drop_last_line {
        lines.pop();
    }
    let mut tasks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match parse_line(line) {
            Ok((first, second, choices, answer)) => tasks.push(WinograndeTask {
                index: tasks.len(),
                line: i + 1,
                first,
                second,
                choices,
                answer,
            }),
            Err(_) if i == 0 && line.to_ascii_lowercase().contains("sentence") => {}
            Err(msg) => return Err(line_error(i + 1, msg)),
        }
    }
    if tasks.is_empty() {
        return Err(Error::format("the file holds no Winogrande task"));
    }
    Ok(tasks)
}

type Fields = (String, String, [String; 2], usize);

fn parse_line(line: &str) -> std::result::Result<Fields, String> {
    // The first four commas outside double quotes.
    let mut commas = Vec::with_capacity(4);
    let mut quoted = false;
    for (i, b) in line.bytes().enumerate() {
        match (quoted, b) {
            (false, b',') => {
                commas.push(i);
                if commas.len() == 4 {
                    break;
                }
            }
            (_, b'"') => quoted = !quoted,
            _ => {}
        }
    }
    if commas.len() != 4 {
        return Err(format!(
            "expected 5 comma-separated fields (index,sentence,choice1,choice2,answer), \
             found {}",
            commas.len() + 1
        ));
    }
    let field = |a: usize, b: usize| line.get(a..b).unwrap_or("").to_string();
    let sentence = if line.as_bytes().get(commas[0] + 1) == Some(&b'"') {
        if commas[1] < commas[0] + 3 {
            return Err("the quoted sentence is empty".into());
        }
        field(commas[0] + 2, commas[1] - 1)
    } else {
        field(commas[0] + 1, commas[1])
    };
    let choice1 = field(commas[1] + 1, commas[2]);
    let choice2 = field(commas[2] + 1, commas[3]);
    let answer_text = &line[commas[3] + 1..];
    let Some(blank) = sentence.find('_') else {
        return Err(format!(
            "the sentence has no '_' for the blank: '{sentence}'"
        ));
    };
    // `istream >> int`: leading spaces, then digits; anything after them is ignored.
    let digits: String = answer_text
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let answer = match digits.parse::<usize>() {
        Ok(a @ (1 | 2)) => a,
        _ => return Err(format!("the answer must be 1 or 2, not '{answer_text}'")),
    };
    Ok((
        sentence[..blank].to_string(),
        sentence[blank + 1..].to_string(),
        [choice1, choice2],
        answer,
    ))
}

/// The tasks llama-perplexity evaluates: all of them in file order when `n` is 0 or at
/// least their number, else `n` drawn at random with its generator.
pub fn select(tasks: Vec<WinograndeTask>, n: usize) -> Vec<WinograndeTask> {
    if n == 0 || n >= tasks.len() {
        return tasks;
    }
    let mut rng = Mt19937::new(1);
    let mut aux: Vec<usize> = (0..tasks.len()).collect();
    let mut slots: Vec<Option<WinograndeTask>> = tasks.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let j = rng.scaled_index(aux.len());
        out.push(slots[aux[j]].take().expect("each task drawn once"));
        aux.swap_remove(j);
    }
    out
}

/// Scores `tasks`. `ctx` must compute logits for every position.
pub fn score(
    ctx: &mut Context,
    tok: &Tokenizer,
    tasks: &[WinograndeTask],
    progress: Progress<'_>,
) -> Result<ChoiceReport> {
    let mut report = ChoiceReport::default();
    for task in tasks {
        let seqs: Vec<Vec<u32>> = task
            .choices
            .iter()
            .map(|c| choice::tokenize(tok, &format!("{}{c}{}", task.first, task.second)))
            .collect::<Result<_>>()?;
        let n_base: Vec<usize> = task
            .choices
            .iter()
            .map(|c| Ok(choice::tokenize(tok, &format!("{}{c}", task.first))?.len()))
            .collect::<Result<_>>()?;
        let prefix = choice::common_prefix(&seqs);
        choice::check_task(ctx, task.index, &seqs, prefix)?;
        let scores = score_pair(ctx, &seqs, &n_base, prefix, task)?;
        let chosen = if scores[0] > scores[1] { 0 } else { 1 };
        report.push(ChoiceResult {
            task: task.index,
            scores: scores.iter().map(|&s| f64::from(s)).collect(),
            chosen,
            correct: chosen + 1 == task.answer,
        });
        let done = report.results.len();
        progress(
            done,
            tasks.len(),
            &format!(
                "{done}\t{:.4}\t{:10.6}  {:10.6}  {}  {}",
                report.accuracy.percent(),
                scores[0],
                scores[1],
                chosen + 1,
                task.answer
            ),
        );
    }
    Ok(report)
}

fn score_pair(
    ctx: &mut Context,
    seqs: &[Vec<u32>],
    n_base: &[usize],
    prefix: usize,
    task: &WinograndeTask,
) -> Result<[f32; 2]> {
    let skip_choice = seqs.iter().all(|s| s.len() - prefix > MIN_TRAILING_TOKENS);
    // The (row, token) pairs llama-perplexity reads, with its row arithmetic.
    let mut pairs: Vec<Vec<(usize, u32)>> = vec![Vec::new(), Vec::new()];
    for s in 0..2 {
        let seq = &seqs[s];
        let base = if skip_choice { n_base[s] } else { prefix };
        if base == 0 || base > seq.len() {
            return Err(Error::invalid(format!(
                "task {} (line {}): choice {} changes the tokens before it, so the \
                 sentence cannot be scored after it",
                task.index + 1,
                task.line,
                s + 1
            )));
        }
        let last = usize::from(seq.len() - base > 1);
        let mut row = if s == 0 {
            base - prefix
        } else {
            // For the second sentence the tool starts here even when this is not the row
            // before its first scored token (when the choice word itself is scored).
            (seqs[0].len() - prefix + base).wrapping_sub(prefix)
        };
        for j in base - 1..seq.len() - 1 - last {
            pairs[s].push((row, seq[j + 1]));
            row = row.wrapping_add(1);
        }
    }
    let n_rows = 1 + seqs.iter().map(|s| s.len() - prefix).sum::<usize>();
    if let Some(&(r, _)) = pairs.iter().flatten().find(|(r, _)| *r >= n_rows) {
        return Err(Error::invalid(format!(
            "task {} (line {}): row {r} is outside the {n_rows} rows evaluated",
            task.index + 1,
            task.line
        )));
    }
    let mut values: Vec<Vec<f32>> = pairs.iter().map(|p| vec![0.0; p.len()]).collect();
    choice::eval_shared_prefix(ctx, seqs, prefix, true, &mut |r, row| {
        for (s, list) in pairs.iter().enumerate() {
            for (k, &(pr, token)) in list.iter().enumerate() {
                if pr == r {
                    values[s][k] = choice_logprob(row, token as usize);
                }
            }
        }
    })?;
    let mut scores = [0.0f32; 2];
    for s in 0..2 {
        let sum = values[s].iter().fold(0.0f32, |acc, &v| acc + v);
        scores[s] = sum / values[s].len() as f32;
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_like_the_tool() {
        let text = "index,sentence,option1,option2,answer\n\
                    0,Sarah was a better surgeon than Maria so _ got the easy cases.,Sarah,Maria,2\n\
                    1,\"Quoted, with a comma _ here.\",A,B,1\r\n";
        let tasks = parse(text.as_bytes(), false).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].first, "Sarah was a better surgeon than Maria so ");
        assert_eq!(tasks[0].second, " got the easy cases.");
        assert_eq!(tasks[0].choices, ["Sarah".to_string(), "Maria".to_string()]);
        assert_eq!(tasks[0].answer, 2);
        assert_eq!(tasks[0].line, 2);
        assert_eq!(tasks[1].first, "Quoted, with a comma ");
        assert_eq!(tasks[1].second, " here.");
        assert_eq!(tasks[1].answer, 1);
        assert_eq!(parse(text.as_bytes(), true).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let e = |t: &str| parse(t.as_bytes(), false).unwrap_err().to_string();
        let s = e("0,a _ b,x,y,1\n1,no blank,x,y,1\n");
        assert!(s.contains("line 2") && s.contains("'_'"), "{s}");
        let s = e("0,a _ b,x,y,1\n1,a _ b,x,y,3\n");
        assert!(s.contains("line 2") && s.contains("1 or 2"), "{s}");
        let s = e("0,a _ b,x,y,1\n1,a _ b,x\n");
        assert!(s.contains("line 2") && s.contains("found 3"), "{s}");
        assert!(e("").contains("no Winogrande task"));
        assert!(e("index,sentence,option1,option2,answer\n").contains("no Winogrande task"));
    }

    #[test]
    fn random_selection_order() {
        let text: String = (0..7).map(|i| format!("{i},a _ b,x,y,1\n")).collect();
        let tasks = parse(text.as_bytes(), false).unwrap();
        // scaled draws 2, 5, 3, 3 (rng.rs) over aux = 0..7 with swap-remove:
        // 2 -> [0,1,6,3,4,5]; 5 -> [0,1,6,3,4]; 3 -> [0,1,6,4]; 3 -> 4.
        let order: Vec<usize> = select(tasks.clone(), 4).iter().map(|t| t.index).collect();
        assert_eq!(order, [2, 5, 3, 4]);
        assert_eq!(select(tasks, 0).len(), 7);
    }
}
