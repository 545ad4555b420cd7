//! HumanEval (and HumanEval+): writes one greedy completion per problem in the
//! `samples.jsonl` format the official evaluator reads (`{"task_id": ..., "completion":
//! ...}` per line). **tern never runs the generated code**: executing untrusted model output
//! is the evaluator's job (`evaluate_functional_correctness samples.jsonl` from
//! openai/human-eval, or `evalplus.evaluate`), in a sandbox of the user's choosing.
//!
//! Data: the problems JSON-lines file (`task_id`, `prompt`, ... per line). Plain prompting
//! continues the function's prompt and stops at the usual stop strings (`\nclass`, `\ndef`,
//! `\n#`, `\nif`, `\nprint`); chat prompting asks for the function in a user turn and starts
//! the reply with a Python code block holding the prompt, so the completion again continues
//! the prompt (it also stops at the closing fence).

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tokenizer::{ChatMessage, Tokenizer};

use super::data::json_lines;
use super::generate::{first_tasks, greedy_each, GreedySettings, Prompting};
use super::Progress;

/// The stop strings of the HumanEval paper.
pub const STOPS: [&str; 5] = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file.
    pub line: usize,
    /// `HumanEval/0`, ...
    pub task_id: String,
    /// The function signature and docstring to complete.
    pub prompt: String,
}

/// Reads a problems JSON-lines file (blank lines are skipped). Errors name the line.
pub fn parse(bytes: &[u8]) -> Result<Vec<Problem>> {
    let out = json_lines(bytes)?
        .into_iter()
        .map(|record| {
            Ok(Problem {
                line: record.line,
                task_id: record.string("task_id")?,
                prompt: record.string("prompt")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if out.is_empty() {
        return Err(Error::format("the file holds no HumanEval problem"));
    }
    Ok(out)
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The problem's id.
    pub task_id: String,
    /// The text that follows the problem's prompt.
    pub completion: String,
}

/// How to run HumanEval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanEvalParams {
    /// Complete at most this many problems (file order); `None` for all.
    pub max_tasks: Option<usize>,
    /// Generation limit per problem.
    pub max_tokens: usize,
    /// Plain or chat prompts.
    pub prompting: Prompting,
}

impl Default for HumanEvalParams {
    fn default() -> Self {
        HumanEvalParams {
            max_tasks: None,
            max_tokens: 512,
            prompting: Prompting::Plain,
        }
    }
}

/// The prompt text for `problem`.
pub fn build_prompt(tok: &Tokenizer, problem: &Problem, prompting: &Prompting) -> Result<String> {
    match prompting {
        Prompting::Plain => Ok(problem.prompt.clone()),
        Prompting::Chat(_) => {
            let ask = format!(
                "Complete the following Python function. Reply with the whole function in \
                 a Python code block.\n```python\n{}```",
                problem.prompt
            );
            let prefix = format!("```python\n{}", problem.prompt);
            prompting.chat_prompt(tok, &[ChatMessage::new("user", ask)], &prefix)
        }
    }
}

/// Generates a completion for each problem. The context must not compute all logits.
pub fn run(
    ctx: &mut Context,
    tok: &Tokenizer,
    problems: &[Problem],
    params: &HumanEvalParams,
    progress: Progress<'_>,
) -> Result<Vec<Sample>> {
    let problems = first_tasks(problems, params.max_tasks);
    let mut stops: Vec<&str> = STOPS.to_vec();
    if matches!(params.prompting, Prompting::Chat(_)) {
        stops.push("```");
    }
    let settings = GreedySettings {
        prompting: &params.prompting,
        max_tokens: params.max_tokens,
        stops: &stops,
    };
    let mut out = Vec::with_capacity(problems.len());
    greedy_each(
        ctx,
        tok,
        problems,
        &settings,
        |p| build_prompt(tok, p, &params.prompting),
        |p| format!("{} (line {})", p.task_id, p.line),
        |p, g| {
            out.push(Sample {
                task_id: p.task_id.clone(),
                completion: g.text,
            });
            progress(
                out.len(),
                problems.len(),
                &format!("{}\t{} tokens, {:?}", p.task_id, g.n_tokens, g.stop),
            );
        },
    )?;
    Ok(out)
}

/// The samples as JSON lines.
pub fn samples_jsonl(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        let v = serde_json::json!({ "task_id": s.task_id, "completion": s.completion });
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write() {
        let text =
            "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def f():\\n\", \"entry_point\": \"f\"}\n";
        let p = parse(text.as_bytes()).unwrap();
        assert_eq!(p[0].task_id, "HumanEval/0");
        assert_eq!(p[0].prompt, "def f():\n");
        let e = parse(format!("{text}{{\"task_id\": \"x\"}}\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("prompt"), "{e}");
        let s = samples_jsonl(&[Sample {
            task_id: "HumanEval/0".into(),
            completion: "    return \"a\"\n".into(),
        }]);
        assert_eq!(
            s,
            "{\"completion\":\"    return \\\"a\\\"\\n\",\"task_id\":\"HumanEval/0\"}\n"
        );
    }
}
