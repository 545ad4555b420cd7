//! cargo-fuzz target `gguf_parse`: see `tern::fuzz_harness::gguf_parse` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern::fuzz_harness::gguf_parse(data));
