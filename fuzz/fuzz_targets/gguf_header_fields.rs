//! Structure-aware fuzzing: builds a valid GGUF file with our writer, then overwrites one
//! of its header fields (counts, lengths, dims, type ids, offsets) with a value chosen by
//! the fuzzer. Reaches deep into the reader with inputs that are almost right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::gguf::{parse_header, Array, GgufFile, GgufWriter, Value};
use tern::quant::TensorType;

fn base_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::string("bitnet-b1.58"));
    w.set("bitnet-b1.58.block_count", Value::U32(1));
    w.set("t.strs", Value::Array(Array::String(vec![b"a".to_vec(), b"bc".to_vec()])));
    w.set("t.nested", Value::Array(Array::Array(vec![Array::F32(vec![1.0])])));
    w.add_tensor("a", &[128, 2], TensorType::I2_S).unwrap();
    w.add_tensor("b", &[256, 1], TensorType::TQ2_0).unwrap();
    w.add_tensor("c", &[32], TensorType::F32).unwrap();
    let sizes: Vec<usize> = w.tensors().iter().map(|t| t.nbytes as usize).collect();
    let mut out = Vec::new();
    let mut dw = w.begin(&mut out).unwrap();
    for n in sizes {
        dw.write_tensor(&vec![1u8; n]).unwrap();
    }
    dw.finish().unwrap();
    out
}

fuzz_target!(|data: &[u8]| {
    let mut file = base_file();
    let header_end = parse_header(&file).unwrap().header_end as usize;
    // Each 9-byte record: a position in the header (u16), a width (1/2/4/8), a value.
    for rec in data.chunks_exact(11) {
        let pos = u16::from_le_bytes([rec[0], rec[1]]) as usize % header_end;
        let width = [1usize, 2, 4, 8][rec[2] as usize % 4];
        let value = &rec[3..11];
        let end = (pos + width).min(file.len());
        file[pos..end].copy_from_slice(&value[..end - pos]);
    }
    if let Ok(f) = GgufFile::from_bytes(file) {
        for t in f.tensors() {
            assert_eq!(f.tensor(&t.name).unwrap().data.len() as u64, t.nbytes);
        }
    }
});
