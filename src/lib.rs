//! # tern
//!
//! Runs 1-bit / ternary LLMs (BitNet b1.58 and its kin) on CPUs. The crate is a Rust
//! library, a C library (`cdylib` + `staticlib`, header `include/tern.h`) and the `tern`
//! command-line tool.
//!
//! Rooms (see `docs/ARCHITECTURE.md`):
//! - [`gguf`]: read and write GGUF files (memory-mapped, validated, zero-copy views);
//! - [`quant`]: tensor types and their byte layouts;
//! - [`kernels`]: CPU feature detection and compute kernels;
//! - [`model`]: hyper-parameters and the forward pass;
//! - [`context`]: a model plus one sequence's KV cache: eval and logits;
//! - [`bench`]: benchmark records (llama-bench formats), energy, memory, charts;
//! - [`ffi`]: the C ABI and nothing else.

pub mod bench;
pub mod context;
pub mod error;
pub mod ffi;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod sampling;
pub mod tokenizer;

pub use error::{Error, Result};

/// The crate version, as `tern_version()` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
