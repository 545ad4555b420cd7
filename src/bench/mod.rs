//! Benchmark support for `tern bench` / `tern compare`: llama-bench's result records and
//! output formats (so scripts written for llama-bench read ours), statistics, energy
//! (RAPL when readable, else a labelled estimate), process memory, llama-perplexity's
//! saved log-probabilities, llama-cli's timing lines and depth prompts, and an SVG bar chart.

pub mod energy;
pub mod llama_bench;
pub mod llama_cli;
pub mod logprobs;
pub mod stats;
pub mod svg;
pub mod sys;
