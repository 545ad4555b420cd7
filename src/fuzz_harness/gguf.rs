//! GGUF reader targets: whole files of arbitrary bytes, and a valid file whose header
//! fields (counts, lengths, type ids, dimensions, offsets, scalar values) are overwritten
//! with values the fuzzer picks.

use std::sync::OnceLock;

use crate::gguf::{Array, GgufFile, GgufWriter, Value};
use crate::model::{ModelConfig, ModelInfo, ModelWeights};
use crate::quant::TensorType;

/// Any bytes either parse into a header whose tensor views all lie inside the file, or
/// give an error.
pub fn gguf_parse(data: &[u8]) {
    if let Ok(file) = GgufFile::from_bytes(data.to_vec()) {
        check_views(&file);
        for (_, v) in file.metadata() {
            let _ = v.display_short(4);
        }
        let _ = ModelInfo::from_gguf(&file);
    }
}

fn check_views(file: &GgufFile) {
    for t in file.tensors() {
        let view = file
            .tensor(&t.name)
            .expect("every listed tensor can be viewed");
        assert_eq!(view.data.len() as u64, t.nbytes);
    }
}

/// One header field of a valid base file: its byte position and width.
#[derive(Debug, Clone, Copy)]
struct Field {
    pos: usize,
    width: usize,
}

/// A valid file and the positions of its header fields.
struct Base {
    bytes: Vec<u8>,
    fields: Vec<Field>,
}

/// A small file from our writer: every value type, nested arrays, three tensor types.
fn writer_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::string("bitnet-b1.58"));
    w.set("bitnet-b1.58.block_count", Value::U32(1));
    w.set("bitnet-b1.58.embedding_length", Value::U32(128));
    w.set("t.f32", Value::F32(0.5));
    w.set("t.i64", Value::I64(-3));
    w.set("t.bool", Value::Bool(true));
    w.set(
        "t.strs",
        Value::Array(Array::String(vec![b"a".to_vec(), b"bc".to_vec()])),
    );
    w.set(
        "t.nested",
        Value::Array(Array::Array(vec![Array::F32(vec![1.0])])),
    );
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

/// Bases: our writer's file, then (when the reference folder is there) two reference
/// models and a reference vocabulary, read in place.
fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut files = vec![writer_file()];
        for rel in [
            "bitnet25/ggml-model-i2s.gguf",
            "llama-ternary/ggml-model-i2s.gguf",
            "tokenizer/ggml-vocab-llama-spm.gguf",
        ] {
            files.extend(super::reference_file(rel));
        }
        files
            .into_iter()
            .filter_map(|bytes| {
                let fields = header_fields(&bytes)?;
                Some(Base { bytes, fields })
            })
            .collect()
    })
}

/// Walks a valid GGUF header and lists its fields. Long arrays contribute their type and
/// length and their first few elements only.
fn header_fields(b: &[u8]) -> Option<Vec<Field>> {
    let mut f = Vec::new();
    let mut at = 0usize;
    let field = |f: &mut Vec<Field>, at: &mut usize, width: usize| {
        f.push(Field { pos: *at, width });
        *at += width;
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    at += 4; // magic
    field(&mut f, &mut at, 4); // version
    let n_tensors = u64_at(at)?;
    field(&mut f, &mut at, 8);
    let n_kv = u64_at(at)?;
    field(&mut f, &mut at, 8);
    fn skip_value(
        b: &[u8],
        f: &mut Vec<Field>,
        at: &mut usize,
        ty: u32,
        record: bool,
    ) -> Option<()> {
        let width = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                let len = u64::from_le_bytes(b.get(*at..*at + 8)?.try_into().ok()?);
                if record {
                    f.push(Field { pos: *at, width: 8 });
                }
                *at += 8 + usize::try_from(len).ok()?;
                return Some(());
            }
            9 => {
                let ety = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
                let len = u64::from_le_bytes(b.get(*at + 4..*at + 12)?.try_into().ok()?);
                if record {
                    f.push(Field { pos: *at, width: 4 });
                    f.push(Field {
                        pos: *at + 4,
                        width: 8,
                    });
                }
                *at += 12;
                for i in 0..len {
                    skip_value(b, f, at, ety, record && i < 4)?;
                }
                return Some(());
            }
            _ => return None,
        };
        if record {
            f.push(Field { pos: *at, width });
        }
        *at += width;
        Some(())
    }
    for _ in 0..n_kv {
        let klen = usize::try_from(u64_at(at)?).ok()?;
        field(&mut f, &mut at, 8);
        at += klen;
        let ty = u32_at(at)?;
        field(&mut f, &mut at, 4);
        skip_value(b, &mut f, &mut at, ty, true)?;
    }
    for _ in 0..n_tensors {
        let nlen = usize::try_from(u64_at(at)?).ok()?;
        field(&mut f, &mut at, 8);
        at += nlen;
        let n_dims = u32_at(at)?;
        field(&mut f, &mut at, 4);
        for _ in 0..n_dims {
            field(&mut f, &mut at, 8);
        }
        field(&mut f, &mut at, 4); // type
        field(&mut f, &mut at, 8); // offset
    }
    (at <= b.len()).then_some(f)
}

/// Values worth trying in a field of `width` bytes, picked by `mode`; `raw` otherwise.
fn field_value(mode: u8, width: usize, old: u64, raw: u64) -> u64 {
    let max = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    match mode % 8 {
        0 => 0,
        1 => max,
        2 => max >> 1,
        3 => (max >> 1) + 1,
        4 => old.wrapping_add(raw % 17),
        5 => old.wrapping_sub(raw % 17),
        6 => old ^ (1 << (raw % (8 * width as u64))),
        _ => raw,
    }
}

/// Structure-aware: byte 0 picks a base file; each 11-byte record then picks one of its
/// header fields (u16), a mode and a value (u64), and overwrites the field. Whatever
/// parses must give in-file views, and the model checks must return, not panic.
pub fn gguf_header_fields(data: &[u8]) {
    let Some((&pick, records)) = data.split_first() else {
        return;
    };
    let bases = bases();
    let base = &bases[pick as usize % bases.len()];
    let mut file = base.bytes.clone();
    for rec in records.chunks_exact(11).take(16) {
        let field = base.fields[u16::from_le_bytes([rec[0], rec[1]]) as usize % base.fields.len()];
        let mut old = [0u8; 8];
        old[..field.width].copy_from_slice(&file[field.pos..field.pos + field.width]);
        let raw = u64::from_le_bytes(rec[3..11].try_into().unwrap());
        let v = field_value(rec[2], field.width, u64::from_le_bytes(old), raw);
        file[field.pos..field.pos + field.width].copy_from_slice(&v.to_le_bytes()[..field.width]);
    }
    let Ok(f) = GgufFile::from_bytes(file) else {
        return;
    };
    check_views(&f);
    let _ = ModelInfo::from_gguf(&f);
    if let Ok(config) = ModelConfig::from_gguf(&f) {
        let _ = ModelWeights::load(&f, &config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::parse_header;

    #[test]
    fn the_writer_base_has_its_fields_listed() {
        let b = writer_file();
        let fields = header_fields(&b).unwrap();
        // version, 2 counts, 8 pairs (key length, type, value...), 3 tensors.
        assert!(fields.len() > 30, "{}", fields.len());
        let end = parse_header(&b).unwrap().header_end as usize;
        assert!(fields.iter().all(|f| f.pos + f.width <= end));
    }
}
