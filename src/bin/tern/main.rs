//! `tern`: the command-line tool. Each subcommand lives in its own file.

mod args;
mod bench;
mod bench_run;
mod compare;
mod compare_depth;
mod compare_logits;
mod compare_run;
mod eval;
mod generate;
mod inspect;
mod latent;
mod logits;
mod perplexity;
mod quantize;
mod synth;
mod tokenize;

use args::Args;
use std::process::ExitCode;

const USAGE: &str = "\
tern: run 1-bit / ternary LLMs on CPUs

usage: tern <command> [options]

commands:
  bench [-m FILE] [-p N] [-n N] [-t N,..]  llama-bench-style speed table (+ RSS, energy);
                                          without -m: a cached synthetic 2B4T I2_S model
  compare --bitnet-cpp DIR -m FILE        bitnet.cpp vs tern side by side (table, JSON, SVG)
  inspect FILE [--json] [--full-arrays]   describe a GGUF file: metadata, tensors, sizes
  inspect --system                        CPU features found and kernels chosen
  eval --task TASK -m FILE -f DATA        accuracy: hellaswag, winogrande, multiple-choice, gsm8k, humaneval
  generate -m FILE -p TEXT [-n N] [...]   generate text from a prompt (streamed)
  logits -m FILE --tokens IDS [...]       run token ids through a model, write logits
  perplexity -m FILE -f TEXT [-c 512]     perplexity over a text, as llama-perplexity
  quantize IN OUT --type TYPE [--head T]  convert ternary weights between types
  synth OUT [--shape S] [--type T]        write a random-weight model of a real shape
  tokenize -m FILE [--json] [--pieces] TEXT   the token ids of TEXT
  version                                 print the version

Run `tern <command> --help` for a command's options.";

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || matches!(argv[0].as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = argv.remove(0);
    let args = Args::new(argv);
    let result = match command.as_str() {
        "bench" => bench::run(args),
        "compare" => compare::run(args),
        "generate" => generate::run(args),
        "inspect" => inspect::run(args),
        "eval" => eval::run(args),
        "logits" => logits::run(args),
        "perplexity" => perplexity::run(args),
        "quantize" => quantize::run(args),
        "synth" => synth::run(args),
        "tokenize" => tokenize::run(args),
        "version" | "--version" | "-V" => {
            println!("tern {}", tern::VERSION);
            Ok(())
        }
        other => Err(tern::Error::invalid(format!(
            "unknown command '{other}'\n\n{USAGE}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
