//! Whole-file fuzzing of the GGUF reader: any bytes either parse into a header whose
//! tensor views all lie inside the file, or give an error. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = GgufFile::from_bytes(data.to_vec()) {
        for t in file.tensors() {
            let view = file.tensor(&t.name).expect("every listed tensor can be viewed");
            assert_eq!(view.data.len() as u64, t.nbytes);
        }
        for (_, v) in file.metadata() {
            let _ = v.display_short(4);
        }
    }
});
