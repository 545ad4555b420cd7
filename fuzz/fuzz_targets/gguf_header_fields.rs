//! cargo-fuzz target `gguf_header_fields`: see `tern::fuzz_harness::gguf_header_fields` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern::fuzz_harness::gguf_header_fields(data));
