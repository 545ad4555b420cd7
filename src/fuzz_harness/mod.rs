//! The bodies of the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs` call these), kept in the
//! library so that every saved corpus replays on stable Rust as an ordinary test
//! (`tests/fuzz_regressions.rs`). Each function takes arbitrary bytes; it returns quietly
//! when the library refuses the input with an error, and panics only when an invariant
//! is broken (which is what the fuzzer reports as a crash).
//!
//! Not part of the stable API.

mod gguf;
mod model;
mod tensor;
mod tokenizer;

use std::path::PathBuf;

pub use gguf::{gguf_header_fields, gguf_parse};
pub use model::model_config;
pub use tensor::tensor_unpack;
pub use tokenizer::tokenizer;

/// A target's body: arbitrary bytes in, a panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// The names of the fuzz targets, each with its corpus under `tests/fuzz_corpus/<name>`.
pub const TARGETS: &[(&str, Target)] = &[
    ("gguf_parse", gguf_parse),
    ("gguf_header_fields", gguf_header_fields),
    ("model_config", model_config),
    ("tokenizer", tokenizer),
    ("tensor_unpack", tensor_unpack),
];

/// The shared reference folder (`TERN_REFERENCE_DIR`, else `../shared/reference` next to
/// the repository). Files there are read in place, never copied.
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("TERN_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
    }
}

/// Reads `rel` under [`reference_dir`], `None` when absent (the targets then run on
/// files our writer builds).
fn reference_file(rel: &str) -> Option<Vec<u8>> {
    std::fs::read(reference_dir().join(rel)).ok()
}

/// A little-endian u32 from up to 4 bytes (missing bytes are 0).
fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    for (d, s) in a.iter_mut().zip(b) {
        *d = *s;
    }
    u32::from_le_bytes(a)
}
