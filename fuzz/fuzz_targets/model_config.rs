//! cargo-fuzz target `model_config`: see `tern::fuzz_harness::model_config` for what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern::fuzz_harness::model_config(data));
