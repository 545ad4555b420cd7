//! GSM8K: grade-school math word problems, scored by exact match of the final number.
//!
//! Data: the JSON-lines file of the GSM8K release (`{"question": ..., "answer": ...}` per
//! line, the answer ending in `#### <number>`). The first `shots` records are the few-shot
//! examples (they are not scored); the records after them are the tasks, in file order.
//! The prompt is lm-evaluation-harness's: `Question: q\nAnswer: a\n\n` per example, then
//! `Question: q\nAnswer:`; with a chat template, each example is a user turn and an
//! assistant turn. Generation is greedy and stops at `Question:`, a blank line or an
//! end-of-generation token. The model's answer is the number after its first `####` if it
//! wrote one, else the last number in its text; numbers compare after removing `,` and `$`.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::{ChatMessage, Tokenizer};

use super::data::{json_lines, line_error};
use super::generate::{first_tasks, greedy_each, GreedySettings, Prompting};
use super::{Accuracy, Progress};

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kItem {
    /// 1-based line in the file.
    pub line: usize,
    /// The question.
    pub question: String,
    /// The worked answer, ending in `#### <number>`.
    pub answer: String,
}

/// Reads a GSM8K JSON-lines file (blank lines are skipped). Errors name the line.
pub fn parse(bytes: &[u8]) -> Result<Vec<Gsm8kItem>> {
    let mut items = Vec::new();
    for record in json_lines(bytes)? {
        let item = Gsm8kItem {
            line: record.line,
            question: record.string("question")?,
            answer: record.string("answer")?,
        };
        if gold_answer(&item.answer).is_none() {
            return Err(line_error(
                item.line,
                "the answer has no final number after '####'",
            ));
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(Error::format("the file holds no GSM8K problem"));
    }
    Ok(items)
}

/// The reference answer: the number after the last `####`, normalized.
pub fn gold_answer(answer: &str) -> Option<String> {
    let (_, tail) = answer.rsplit_once("####")?;
    numbers(tail).into_iter().next()
}

/// The model's answer: the number after its first `####`, else its last number.
pub fn extract_answer(completion: &str) -> Option<String> {
    if let Some((_, tail)) = completion.split_once("####") {
        if let Some(n) = numbers(tail).into_iter().next() {
            return Some(n);
        }
    }
    numbers(completion).pop()
}

/// The numbers in `text`, in order: digits with `,` and `.` inside, an optional leading `-`;
/// `,` and a trailing `.` are removed (`$1,234.` gives `1234`).
pub fn numbers(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let negative = i > 0 && b[i - 1] == b'-';
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b',' || b[i] == b'.') {
            i += 1;
        }
        let raw = text[start..i].trim_end_matches([',', '.']);
        let mut n: String = raw.chars().filter(|&c| c != ',').collect();
        if negative {
            n.insert(0, '-');
        }
        out.push(n);
    }
    out
}

/// True if two normalized numbers are equal (as numbers when both parse, `72` = `72.00`).
pub fn same_number(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// How to run GSM8K.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kParams {
    /// Few-shot examples taken from the start of the file.
    pub shots: usize,
    /// Score at most this many problems (after the examples); `None` for all.
    pub max_tasks: Option<usize>,
    /// Generation limit per problem.
    pub max_tokens: usize,
    /// Plain or chat prompts.
    pub prompting: Prompting,
}

impl Default for Gsm8kParams {
    fn default() -> Self {
        Gsm8kParams {
            shots: 5,
            max_tasks: None,
            max_tokens: 256,
            prompting: Prompting::Plain,
        }
    }
}

/// One problem's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kResult {
    /// 1-based line of the problem.
    pub line: usize,
    /// The reference number.
    pub expected: String,
    /// The number found in the model's text.
    pub got: Option<String>,
    /// True on an exact (numeric) match.
    pub correct: bool,
    /// The model's text.
    pub completion: String,
}

/// The outcome of a GSM8K run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gsm8kReport {
    /// Per problem, in file order.
    pub results: Vec<Gsm8kResult>,
    /// Correct out of done.
    pub accuracy: Accuracy,
}

/// The prompt for `question` after the examples `shots`.
pub fn build_prompt(
    tok: &Tokenizer,
    shots: &[Gsm8kItem],
    question: &str,
    prompting: &Prompting,
) -> Result<String> {
    match prompting {
        Prompting::Plain => {
            let mut p = String::new();
            for s in shots {
                p.push_str(&format!(
                    "Question: {}\nAnswer: {}\n\n",
                    s.question, s.answer
                ));
            }
            p.push_str(&format!("Question: {question}\nAnswer:"));
            Ok(p)
        }
        Prompting::Chat(_) => {
            let mut messages = Vec::new();
            for s in shots {
                messages.push(ChatMessage::new(
                    "user",
                    format!("Question: {}", s.question),
                ));
                messages.push(ChatMessage::new("assistant", s.answer.clone()));
            }
            messages.push(ChatMessage::new("user", format!("Question: {question}")));
            prompting.chat_prompt(tok, &messages, "")
        }
    }
}

/// Runs GSM8K on `items` (examples first). The context must not compute all logits.
pub fn run(
    ctx: &mut Context,
    tok: &Tokenizer,
    items: &[Gsm8kItem],
    params: &Gsm8kParams,
    progress: Progress<'_>,
) -> Result<Gsm8kReport> {
    if items.len() <= params.shots {
        return Err(Error::invalid(format!(
            "the file has {} problems and {} are used as examples: none is left to score",
            items.len(),
            params.shots
        )));
    }
    let (shots, tasks) = items.split_at(params.shots);
    let tasks = first_tasks(tasks, params.max_tasks);
    let n = tasks.len();
    let stops: &[&str] = match params.prompting {
        Prompting::Plain => &["Question:", "\n\n"],
        Prompting::Chat(_) => &["Question:"],
    };
    let settings = GreedySettings {
        prompting: &params.prompting,
        max_tokens: params.max_tokens,
        stops,
    };
    let mut report = Gsm8kReport::default();
    greedy_each(
        ctx,
        tok,
        tasks,
        &settings,
        |item| build_prompt(tok, shots, &item.question, &params.prompting),
        |item| format!("problem at line {}", item.line),
        |item, g| {
            let expected = gold_answer(&item.answer).expect("checked when parsed");
            let got = extract_answer(&g.text);
            let correct = got.as_deref().is_some_and(|x| same_number(x, &expected));
            report.accuracy.add(correct);
            let done = report.results.len() + 1;
            progress(
                done,
                n,
                &format!(
                    "{done}\t{:.4}\texpected {expected}, got {}",
                    report.accuracy.percent(),
                    got.as_deref().unwrap_or("nothing")
                ),
            );
            report.results.push(Gsm8kResult {
                line: item.line,
                expected,
                got,
                correct,
                completion: g.text,
            });
        },
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_numbers() {
        assert_eq!(
            gold_answer("48/2 = <<48/2=24>>24\n#### 72").as_deref(),
            Some("72")
        );
        assert_eq!(gold_answer("#### 1,234").as_deref(), Some("1234"));
        assert_eq!(gold_answer("#### -5").as_deref(), Some("-5"));
        assert_eq!(gold_answer("no marker 5"), None);
        assert_eq!(extract_answer(" 3 + 4 = 7. #### 7").as_deref(), Some("7"));
        assert_eq!(
            extract_answer(" She pays $1,200. Then 5 more: $1,205.").as_deref(),
            Some("1205")
        );
        assert_eq!(extract_answer(" no idea"), None);
        assert_eq!(numbers("a 3.5 b -2 c 10,000."), ["3.5", "-2", "10000"]);
        assert!(same_number("72", "72.00"));
        assert!(!same_number("72", "27"));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let ok = r#"{"question": "1+1?", "answer": "2\n#### 2"}"#;
        assert_eq!(
            parse(format!("{ok}\n\n{ok}\n").as_bytes()).unwrap().len(),
            2
        );
        let e = parse(format!("{ok}\n{{\"question\": 1}}\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("question"), "{e}");
        let e = parse(format!("{ok}\n{ok}\nnot json\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = parse(br#"{"question": "q", "answer": "no number"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("####"), "{e}");
        assert!(parse(b"\n").is_err());
    }
}
