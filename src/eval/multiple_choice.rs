//! Multiple-choice tasks (ARC, MMLU, TruthfulQA, HellaSwag...) in llama-perplexity's binary
//! format, all integers little-endian:
//!
//! ```text
//! u32 n_tasks; u32 task_offset[n_tasks]   (byte offset of each task in the file)
//! per task: string question; answers mc1; answers mc2
//! answers:  u32 n (at most 100); string answer[n]; i32 label[n]  (1 = correct)
//! string:   u32 length; bytes
//! ```
//!
//! Only `mc1` (one correct answer) is scored: each `question + " " + answer` by the mean
//! log-likelihood of the answer's tokens (single-precision sum, as the tool), best wins.
//! Errors name the task and its byte offset.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

use super::choice::{self, ChoiceReport, EndingsTask};
use super::rng::Mt19937;
use super::Progress;

/// The most answers a task may have (the tool's limit).
pub const MAX_ANSWERS: u32 = 100;

/// A set of answers with their labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// The answer texts.
    pub answers: Vec<String>,
    /// 1 marks a correct answer.
    pub labels: Vec<i32>,
}

/// One multiple-choice task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChoiceTask {
    /// Position of the task in the file (0-based).
    pub index: usize,
    /// The question (or context to continue).
    pub question: String,
    /// Answers with exactly one correct one: the ones scored.
    pub mc1: Answers,
    /// Answers with several correct ones (read, not scored, as in the tool).
    pub mc2: Answers,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "the file ends at byte {} while reading {what} ({n} bytes at byte {})",
                self.bytes.len(),
                self.pos
            ));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} at byte {at} is not UTF-8"))
    }

    fn answers(&mut self, set: &str) -> std::result::Result<Answers, String> {
        let at = self.pos;
        let n = self.u32(&format!("the {set} answer count"))?;
        if n > MAX_ANSWERS {
            return Err(format!(
                "{set} claims {n} answers at byte {at}; at most {MAX_ANSWERS} are allowed \
                 (not a multiple-choice file?)"
            ));
        }
        let mut answers = Vec::with_capacity(n as usize);
        for i in 0..n {
            answers.push(self.string(&format!("{set} answer {}", i + 1))?);
        }
        let mut labels = Vec::with_capacity(n as usize);
        for i in 0..n {
            let b = self.take(4, &format!("{set} label {}", i + 1))?;
            labels.push(i32::from_le_bytes(b.try_into().expect("4 bytes")));
        }
        Ok(Answers { answers, labels })
    }

    fn task(&mut self, index: usize) -> Result<ChoiceTask> {
        let at = self.pos;
        let inner = |r: &mut Self| -> std::result::Result<ChoiceTask, String> {
            let question = r.string("the question")?;
            let mc1 = r.answers("mc1")?;
            let mc2 = r.answers("mc2")?;
            Ok(ChoiceTask {
                index,
                question,
                mc1,
                mc2,
            })
        };
        inner(self).map_err(|m| Error::format(format!("task {} (byte {at}): {m}", index + 1)))
    }
}

/// Reads the tasks llama-perplexity evaluates: with `n` 0 or at least the number of tasks,
/// all of them read in sequence after the offset table; else `n` tasks drawn at random with
/// the tool's generator and read at their offsets.
pub fn load(bytes: &[u8], n: usize) -> Result<Vec<ChoiceTask>> {
    let mut r = Reader { bytes, pos: 0 };
    let n_tasks = r
        .u32("the task count")
        .map_err(|m| Error::format(format!("header: {m}")))? as usize;
    if n_tasks == 0 {
        return Err(Error::format("the file holds no multiple-choice task"));
    }
    let table = r
        .take(n_tasks.saturating_mul(4), "the task offset table")
        .map_err(|m| Error::format(format!("header ({n_tasks} tasks): {m}")))?;
    let offsets: Vec<usize> = table
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .collect();
    let mut tasks = Vec::new();
    if n == 0 || n >= n_tasks {
        for i in 0..n_tasks {
            tasks.push(r.task(i)?);
        }
    } else {
        let mut rng = Mt19937::new(1);
        let mut aux: Vec<usize> = (0..n_tasks).collect();
        for _ in 0..n {
            let j = rng.scaled_index(aux.len());
            let idx = aux[j];
            aux.swap_remove(j);
            r.pos = offsets[idx];
            tasks.push(r.task(idx)?);
        }
    }
    for t in &tasks {
        check(t)?;
    }
    Ok(tasks)
}

fn check(t: &ChoiceTask) -> Result<()> {
    let bad = |m: &str| Err(Error::format(format!("task {}: {m}", t.index + 1)));
    if t.question.is_empty() {
        return bad("the question is empty");
    }
    if t.mc1.answers.is_empty() {
        return bad("it has no mc1 answer");
    }
    if t.mc1.answers.iter().any(String::is_empty) {
        return bad("an mc1 answer is empty");
    }
    Ok(())
}

/// Writes tasks in the binary format (questions and mc1/mc2 answers), with the offset table.
pub fn write(tasks: &[ChoiceTask]) -> Vec<u8> {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn put_answers(out: &mut Vec<u8>, a: &Answers) {
        out.extend_from_slice(&(a.answers.len() as u32).to_le_bytes());
        for s in &a.answers {
            put_str(out, s);
        }
        for l in &a.labels {
            out.extend_from_slice(&l.to_le_bytes());
        }
    }
    let mut body = Vec::new();
    let mut offsets = Vec::new();
    let header = 4 + 4 * tasks.len();
    for t in tasks {
        offsets.push((header + body.len()) as u32);
        put_str(&mut body, &t.question);
        put_answers(&mut body, &t.mc1);
        put_answers(&mut body, &t.mc2);
    }
    let mut out = (tasks.len() as u32).to_le_bytes().to_vec();
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&body);
    out
}

impl EndingsTask for ChoiceTask {
    type Sum = f32;
    fn index(&self) -> usize {
        self.index
    }
    fn choice_texts(&self) -> Vec<String> {
        self.mc1
            .answers
            .iter()
            .map(|a| format!("{} {a}", self.question))
            .collect()
    }
    fn is_correct(&self, chosen: usize) -> bool {
        self.mc1.labels.get(chosen) == Some(&1)
    }
}

/// Scores `tasks`. `ctx` must compute logits for every position.
pub fn score(
    ctx: &mut Context,
    tok: &Tokenizer,
    tasks: &[ChoiceTask],
    progress: Progress<'_>,
) -> Result<ChoiceReport> {
    choice::score_endings_tasks(ctx, tok, tasks, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(q: &str, answers: &[&str], correct: usize) -> ChoiceTask {
        ChoiceTask {
            index: 0,
            question: q.into(),
            mc1: Answers {
                answers: answers.iter().map(|s| s.to_string()).collect(),
                labels: (0..answers.len())
                    .map(|i| i32::from(i == correct))
                    .collect(),
            },
            mc2: Answers::default(),
        }
    }

    #[test]
    fn round_trip_and_random_selection() {
        let tasks: Vec<ChoiceTask> = (0..7)
            .map(|i| ChoiceTask {
                index: i,
                ..task(&format!("q{i}"), &["a", "b"], i % 2)
            })
            .collect();
        let bytes = write(&tasks);
        assert_eq!(load(&bytes, 0).unwrap(), tasks);
        assert_eq!(load(&bytes, 99).unwrap(), tasks);
        // scaled draws over 7 tasks pick 2, 5, 3, 4 (see winogrande.rs).
        let picked: Vec<usize> = load(&bytes, 4).unwrap().iter().map(|t| t.index).collect();
        assert_eq!(picked, [2, 5, 3, 4]);
    }

    #[test]
    fn bad_files_name_the_task() {
        let bytes = write(&[task("q", &["a", "b"], 0), task("r", &["c"], 0)]);
        let e = load(&bytes[..bytes.len() - 3], 0).unwrap_err().to_string();
        assert!(e.contains("task 2") && e.contains("ends at byte"), "{e}");
        assert!(load(&[], 0).unwrap_err().to_string().contains("header"));
        assert!(load(&0u32.to_le_bytes(), 0)
            .unwrap_err()
            .to_string()
            .contains("no multiple-choice task"));
        let e = load(&write(&[task("", &["a"], 0)]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("question is empty"), "{e}");
        let mut huge = write(&[task("q", &["a"], 0)]);
        // The mc1 count sits after the header (8 bytes) and the question (4 + 1 bytes).
        huge[13..17].copy_from_slice(&1000u32.to_le_bytes());
        let e = load(&huge, 0).unwrap_err().to_string();
        assert!(e.contains("1000 answers"), "{e}");
    }
}
