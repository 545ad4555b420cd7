//! cargo-fuzz target `tensor_unpack`: see `tern::fuzz_harness::tensor_unpack` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern::fuzz_harness::tensor_unpack(data));
