//! `tern eval`: accuracy tasks. Log-likelihood tasks read llama-perplexity's data files and
//! score them as it does; generation tasks run greedily.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use tern::context::Context;
use tern::eval::generate::Prompting;
use tern::eval::gsm8k::{self, Gsm8kParams};
use tern::eval::humaneval::{self, HumanEvalParams};
use tern::eval::{hellaswag, multiple_choice, winogrande, ChoiceReport};
use tern::model::{LoadParams, Model};
use tern::{Error, Result};

use crate::args::Args;
use crate::perplexity::{common_options, read_file, RunOptions};

const HELP: &str = "\
usage: tern eval --task TASK -m FILE -f DATA [--tasks N] [options]

tasks (data formats: docs/ACCURACY.md):
  hellaswag        llama-perplexity's HellaSwag text file (6 lines per task)
  winogrande       llama-perplexity's Winogrande CSV
  multiple-choice  llama-perplexity's binary multiple-choice file (ARC, MMLU, ...)
  gsm8k            GSM8K test.jsonl; exact match on the final number, greedy
  humaneval        HumanEval problems.jsonl; writes samples.jsonl for the official
                   evaluator (tern never runs the generated code)

  -m, --model FILE    GGUF model
  -f, --file DATA     the data file
  --tasks N           tasks to do: hellaswag default 400 drawn in llama-perplexity's random
                      order; winogrande/multiple-choice default all (N draws at random as
                      llama-perplexity does); gsm8k/humaneval: the first N (file order)
  -c, --ctx-size N    context: 512 for the log-likelihood tasks (as llama-perplexity),
                      else the model's training context capped at 4096
  -b, --batch-size N  tokens per evaluation (default 2048, capped at -c)
  -t, --threads N     worker threads (scores do not depend on it)
  --kv-type T         KV cache element type: f16 (default) or f32
  --json              print per-task results and the summary as JSON
  --drop-last-line    winogrande: ignore the file's last line, as llama-perplexity does
generation tasks:
  --chat              prompt through the model's chat template (for instruct models)
  --chat-template F   prompt through chat format F (bitnet, llama3, falcon3, chatml, ...)
  --shots K           gsm8k: the first K problems are the few-shot examples (default 5)
  --max-tokens N      generation limit (gsm8k 256, humaneval 512)
  -o, --out FILE      humaneval: where to write the samples (default samples.jsonl)

Progress goes to stderr; the final accuracy +/- standard error to stdout.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Task {
    Hellaswag,
    Winogrande,
    MultipleChoice,
    Gsm8k,
    HumanEval,
}

impl Task {
    fn from_name(s: &str) -> Result<Task> {
        Ok(match s {
            "hellaswag" => Task::Hellaswag,
            "winogrande" => Task::Winogrande,
            "multiple-choice" | "mc" => Task::MultipleChoice,
            "gsm8k" => Task::Gsm8k,
            "humaneval" => Task::HumanEval,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown task '{s}': use hellaswag, winogrande, multiple-choice, gsm8k \
                     or humaneval"
                )))
            }
        })
    }

    fn generates(self) -> bool {
        matches!(self, Task::Gsm8k | Task::HumanEval)
    }
}

/// Progress on stderr: a redrawn line on a terminal, one line per task otherwise.
fn progress_printer() -> impl FnMut(usize, usize, &str) {
    let tty = std::io::stderr().is_terminal();
    move |done, total, line| {
        let mut err = std::io::stderr().lock();
        if tty {
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            let _ = write!(
                err,
                "\r[{}{}] {done}/{total}  {}\x1b[K",
                "#".repeat(filled),
                " ".repeat(width - filled),
                line.replace('\t', "  ")
            );
            if done == total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let task_name = args
        .value(&["--task"])?
        .ok_or_else(|| Error::invalid(format!("--task is required\n\n{HELP}")))?;
    let task = Task::from_name(&task_name)?;
    let opts = common_options(&mut args, HELP)?;
    let n_tasks: Option<usize> = args.parsed(&["--tasks"])?;
    let n_ctx: Option<usize> = args.parsed(&["-c", "--ctx-size"])?;
    let n_batch: usize = args.parsed(&["-b", "--batch-size"])?.unwrap_or(2048);
    let drop_last_line = args.flag(&["--drop-last-line"]);
    let chat_flag = args.flag(&["--chat"]);
    let chat_template = args.value(&["--chat-template"])?;
    let shots: Option<usize> = args.parsed(&["--shots"])?;
    let max_tokens: Option<usize> = args.parsed(&["--max-tokens"])?;
    let out_path = args.value(&["-o", "--out"])?;
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    if n_tasks == Some(0) {
        return Err(Error::invalid("--tasks must be at least 1"));
    }
    if n_batch == 0 {
        return Err(Error::invalid("-b must be at least 1"));
    }
    let prompting = match (chat_flag, chat_template) {
        (_, Some(t)) => Prompting::Chat(Some(t)),
        (true, None) => Prompting::Chat(None),
        (false, None) => Prompting::Plain,
    };
    if !task.generates() {
        let misplaced = [
            (prompting != Prompting::Plain, "--chat/--chat-template"),
            (shots.is_some(), "--shots"),
            (max_tokens.is_some(), "--max-tokens"),
            (out_path.is_some(), "--out"),
        ];
        if let Some((_, name)) = misplaced.iter().find(|(set, _)| *set) {
            return Err(Error::invalid(format!(
                "{name} applies to gsm8k and humaneval only: {task_name} is scored by \
                 log-likelihood on the raw text, as llama-perplexity scores it"
            )));
        }
    }
    if drop_last_line && task != Task::Winogrande {
        return Err(Error::invalid(
            "--drop-last-line applies to winogrande only",
        ));
    }

    let bytes = read_file(&opts.data)?;
    let model = Arc::new(Model::load(&opts.model, &LoadParams::default())?);
    let n_ctx = match n_ctx {
        Some(c) => c,
        None if task.generates() => model
            .config()
            .map(|c| c.n_ctx_train)
            .filter(|&c| c > 0)
            .unwrap_or(4096)
            .min(4096),
        None => 512,
    };
    let ctx_params = opts.context_params(n_ctx, n_batch, !task.generates());
    let mut ctx = Context::new(model.clone(), &ctx_params)?;
    let tok = model
        .tokenizer()
        .ok_or_else(|| Error::model("the model file has no tokenizer"))?;
    let data_err = |e: Error| e.context(&opts.data);
    let mut progress = progress_printer();

    match task {
        Task::Hellaswag => {
            let all = hellaswag::parse(&bytes).map_err(data_err)?;
            let n = n_tasks.unwrap_or(hellaswag::DEFAULT_TASKS);
            let tasks = hellaswag::select(all, n);
            eprintln!(
                "hellaswag: {} tasks (random order as llama-perplexity)",
                tasks.len()
            );
            let report =
                hellaswag::score(&mut ctx, tok, &tasks, &mut progress).map_err(data_err)?;
            print_choice_report("HellaSwag", &report, &opts);
        }
        Task::Winogrande => {
            let all = winogrande::parse(&bytes, drop_last_line).map_err(data_err)?;
            let tasks = winogrande::select(all, n_tasks.unwrap_or(0));
            eprintln!("winogrande: {} tasks", tasks.len());
            let report =
                winogrande::score(&mut ctx, tok, &tasks, &mut progress).map_err(data_err)?;
            print_choice_report("Winogrande", &report, &opts);
        }
        Task::MultipleChoice => {
            let tasks = multiple_choice::load(&bytes, n_tasks.unwrap_or(0)).map_err(data_err)?;
            eprintln!("multiple-choice: {} tasks", tasks.len());
            let report =
                multiple_choice::score(&mut ctx, tok, &tasks, &mut progress).map_err(data_err)?;
            print_choice_report("Multiple choice", &report, &opts);
        }
        Task::Gsm8k => {
            let items = gsm8k::parse(&bytes).map_err(data_err)?;
            let defaults = Gsm8kParams::default();
            let params = Gsm8kParams {
                shots: shots.unwrap_or(defaults.shots),
                max_tasks: n_tasks,
                max_tokens: max_tokens.unwrap_or(defaults.max_tokens),
                prompting,
            };
            let report =
                gsm8k::run(&mut ctx, tok, &items, &params, &mut progress).map_err(data_err)?;
            if opts.json {
                let results: Vec<_> = report
                    .results
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "line": r.line, "expected": r.expected, "got": r.got,
                            "correct": r.correct, "completion": r.completion,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "task": "gsm8k",
                        "accuracy": report.accuracy.percent(),
                        "stderr": report.accuracy.stderr_percent(),
                        "correct": report.accuracy.correct,
                        "total": report.accuracy.total,
                        "results": results,
                    })
                );
            } else {
                println!("GSM8K exact match: {}", report.accuracy);
            }
        }
        Task::HumanEval => {
            let problems = humaneval::parse(&bytes).map_err(data_err)?;
            let defaults = HumanEvalParams::default();
            let params = HumanEvalParams {
                max_tasks: n_tasks,
                max_tokens: max_tokens.unwrap_or(defaults.max_tokens),
                prompting,
            };
            let samples = humaneval::run(&mut ctx, tok, &problems, &params, &mut progress)
                .map_err(data_err)?;
            let path = out_path.unwrap_or_else(|| "samples.jsonl".to_string());
            std::fs::write(&path, humaneval::samples_jsonl(&samples))
                .map_err(|e| Error::Io(format!("{path}: {e}")))?;
            println!(
                "wrote {} completions to {path}\nscore them with the official evaluator \
                 (it runs the generated code; tern never does), e.g.\n  \
                 evaluate_functional_correctness {path}",
                samples.len()
            );
        }
    }
    Ok(())
}

fn print_choice_report(name: &str, report: &ChoiceReport, opts: &RunOptions) {
    if opts.json {
        let results: Vec<_> = report
            .results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "task": r.task, "scores": r.scores, "chosen": r.chosen, "correct": r.correct,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "task": name,
                "accuracy": report.accuracy.percent(),
                "stderr": report.accuracy.stderr_percent(),
                "correct": report.accuracy.correct,
                "total": report.accuracy.total,
                "random_chance": report.random_chance_percent(),
                "results": results,
            })
        );
    } else {
        println!("{name} accuracy: {}", report.accuracy);
        println!("Random chance: {:.4} %", report.random_chance_percent());
    }
}
