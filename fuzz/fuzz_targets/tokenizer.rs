//! cargo-fuzz target `tokenizer`: see `tern::fuzz_harness::tokenizer` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern::fuzz_harness::tokenizer(data));
