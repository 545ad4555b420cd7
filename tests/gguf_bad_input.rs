//! Hostile and broken GGUF files: each gives a specific error, never a panic and never a
//! huge allocation. The same files through the C API give the matching status and a
//! message from `tern_last_error()`.

use std::ffi::{CStr, CString};

use tern::ffi::model::{tern_model_free, tern_model_load};
use tern::ffi::{tern_last_error, tern_status};
use tern::gguf::{parse_header, Array, GgufFile, GgufWriter, Value};
use tern::quant::TensorType;
use tern::Error;

/// Hand-assembles GGUF bytes field by field, so that any field can be made wrong.
#[derive(Default, Clone)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw::default()
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    /// A u32 metadata pair.
    fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.str(key.as_bytes()).u32(4).u32(v)
    }
    /// A tensor info.
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Pads to 32 and appends `n` data bytes.
    fn data(mut self, n: usize) -> Raw {
        while self.0.len() % 32 != 0 {
            self.0.push(0);
        }
        self.0.extend(std::iter::repeat_n(0u8, n));
        self
    }
}

fn err(bytes: &[u8]) -> Error {
    match parse_header(bytes) {
        Ok(_) => panic!("expected an error for a bad file"),
        Err(e) => e,
    }
}

fn assert_format_err(bytes: &[u8], needle: &str) {
    let e = err(bytes);
    assert!(
        matches!(e, Error::Format(_)),
        "expected a format error, got {e}"
    );
    assert!(
        e.to_string().contains(needle),
        "message '{e}' lacks '{needle}'"
    );
}

/// A valid file exercising every value type, a nested array and three tensors.
fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::string("llama"));
    w.set("a.u8", Value::U8(7));
    w.set("a.i8", Value::I8(-7));
    w.set("a.u16", Value::U16(700));
    w.set("a.i16", Value::I16(-700));
    w.set("a.u32", Value::U32(70000));
    w.set("a.i32", Value::I32(-70000));
    w.set("a.f32", Value::F32(1.5));
    w.set("a.bool", Value::Bool(true));
    w.set("a.u64", Value::U64(1 << 40));
    w.set("a.i64", Value::I64(-(1 << 40)));
    w.set("a.f64", Value::F64(-2.25));
    w.set(
        "a.strs",
        Value::Array(Array::String(vec![b"x".to_vec(), b"yz".to_vec()])),
    );
    w.set(
        "a.nested",
        Value::Array(Array::Array(vec![
            Array::I32(vec![1, 2]),
            Array::String(vec![b"q".to_vec()]),
        ])),
    );
    w.add_tensor("t.f32", &[8, 2], TensorType::F32).unwrap();
    w.add_tensor("t.i2s", &[128, 2], TensorType::I2_S).unwrap();
    w.add_tensor("t.q8", &[32], TensorType::Q8_0).unwrap();
    let sizes: Vec<usize> = w.tensors().iter().map(|t| t.nbytes as usize).collect();
    let data: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0x5a; n]).collect();
    let mut out = Vec::new();
    let mut dw = w.begin(&mut out).unwrap();
    for d in &data {
        dw.write_tensor(d).unwrap();
    }
    dw.finish().unwrap();
    out
}

#[test]
fn the_valid_file_parses() {
    let bytes = valid_file();
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.tensors().len(), 3);
    assert_eq!(f.get("a.i64"), Some(&Value::I64(-(1 << 40))));
    assert_eq!(f.tensor("t.i2s").unwrap().data.len(), 64 + 32);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid_file();
    let h = parse_header(&bytes).unwrap();
    let data_end = h.data_offset + h.tensors.iter().map(|t| t.offset + t.nbytes).max().unwrap();
    for len in 0..data_end as usize {
        let e = err(&bytes[..len]);
        assert!(matches!(e, Error::Format(_)), "prefix {len}: {e}");
    }
}

#[test]
fn wrong_magic_and_versions() {
    assert_format_err(b"GGUX\x03\0\0\0", "not a GGUF file");
    for v in [1u32, 4, 0x0300_0000] {
        let e = err(&Raw::header(v, 0, 0).0);
        assert!(matches!(e, Error::Unsupported(_)), "version {v}: {e}");
    }
    assert!(err(&Raw::header(1, 0, 0).0)
        .to_string()
        .contains("version 1"));
    assert!(err(&Raw::header(4, 0, 0).0)
        .to_string()
        .contains("version 4"));
    assert!(err(&Raw::header(0x0300_0000, 0, 0).0)
        .to_string()
        .contains("big-endian"));
    // Versions 2 and 3 with nothing in them are fine.
    assert!(parse_header(&Raw::header(2, 0, 0).0).is_ok());
    assert!(parse_header(&Raw::header(3, 0, 0).0).is_ok());
}

#[test]
fn absurd_counts_do_not_allocate() {
    let pad = |r: Raw| r.bytes(&[0u8; 60]);
    assert_format_err(&pad(Raw::header(3, 1 << 60, 0)).0, "tensor directory");
    assert_format_err(&pad(Raw::header(3, 0, 1 << 60)).0, "metadata section");
    assert_format_err(&pad(Raw::header(3, u64::MAX, u64::MAX)).0, "claims");
    // An array of 2^60 u64.
    let arr = Raw::header(3, 0, 1).str(b"k").u32(9).u32(10).u64(1 << 60);
    assert_format_err(&pad(arr).0, "claims 1152921504606846976 items");
    // An array of 2^60 strings and of 2^60 arrays.
    let arr = Raw::header(3, 0, 1).str(b"k").u32(9).u32(8).u64(1 << 60);
    assert_format_err(&pad(arr).0, "claims");
    let arr = Raw::header(3, 0, 1).str(b"k").u32(9).u32(9).u64(1 << 60);
    assert_format_err(&pad(arr).0, "claims");
    // A string of 2^60 bytes as a key and as a value.
    assert_format_err(&pad(Raw::header(3, 0, 1).u64(1 << 60)).0, "claims");
    let val = Raw::header(3, 0, 1).str(b"k").u32(8).u64(1 << 60);
    assert_format_err(&pad(val).0, "claims");
    assert_format_err(&pad(Raw::header(3, 0, 1).u64(u64::MAX)).0, "claims");
}

#[test]
fn strings_past_the_end() {
    let r = Raw::header(3, 0, 1).u64(50).bytes(b"short");
    assert_format_err(&r.0, "only 5 remain");
    let r = Raw::header(3, 1, 0).u64(100).bytes(&[b'a'; 30]);
    assert_format_err(&r.0, "tensor #0");
}

#[test]
fn invalid_utf8_key_and_tensor_name() {
    let r = Raw::header(3, 0, 1).str(b"bad\xff\xfekey").u32(4).u32(1);
    assert_format_err(&r.0, "not valid UTF-8");
    let r = Raw::header(3, 1, 0).tensor("x\u{80}", &[4], 0, 0).data(16);
    assert!(
        parse_header(&r.0).is_ok(),
        "a valid multi-byte name is fine"
    );
    let r = Raw::header(3, 1, 0)
        .str(b"\xc3\x28")
        .u32(1)
        .u64(4)
        .u32(0)
        .u64(0)
        .data(16);
    assert_format_err(&r.0, "not valid UTF-8");
}

#[test]
fn invalid_utf8_string_values_are_kept_as_bytes() {
    let r = Raw::header(3, 0, 1).str(b"k").u32(8).str(b"\xff\xfe");
    let h = parse_header(&r.0).unwrap();
    assert_eq!(h.get("k"), Some(&Value::String(vec![0xff, 0xfe])));
    assert_eq!(h.get("k").unwrap().as_str(), None);
}

#[test]
fn unknown_value_types() {
    assert_format_err(
        &Raw::header(3, 0, 1).str(b"k").u32(13).u32(0).0,
        "unknown value type 13",
    );
    // Inside an array too.
    let r = Raw::header(3, 0, 1).str(b"k").u32(9).u32(99).u64(1).u32(0);
    assert_format_err(&r.0, "unknown value type 99");
    // A bool that is neither 0 nor 1.
    let r = Raw::header(3, 0, 1).str(b"k").u32(7).bytes(&[2]);
    assert_format_err(&r.0, "bool with value 2");
}

#[test]
fn deeply_nested_arrays_are_refused() {
    let mut r = Raw::header(3, 0, 1).str(b"k").u32(9);
    for _ in 0..64 {
        r = r.u32(9).u64(1);
    }
    r = r.u32(4).u64(0);
    assert_format_err(&r.0, "nests arrays deeper");
}

#[test]
fn duplicate_keys_and_tensor_names() {
    let r = Raw::header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2);
    assert_format_err(&r.0, "duplicate metadata key 'k'");
    let r = Raw::header(3, 2, 0)
        .tensor("t", &[8], 0, 0)
        .tensor("t", &[8], 0, 32)
        .data(64);
    assert_format_err(&r.0, "duplicate tensor name 't'");
}

#[test]
fn bad_shapes() {
    let r = Raw::header(3, 1, 0)
        .tensor("t", &[1, 1, 1, 1, 1], 0, 0)
        .data(4);
    assert_format_err(&r.0, "5 dimensions");
    let r = Raw::header(3, 1, 0).tensor("t", &[4, 0], 0, 0).data(16);
    assert_format_err(&r.0, "dimension of 0");
    let r = Raw::header(3, 1, 0)
        .tensor("t", &[1 << 32, 1 << 32, 4], 0, 0)
        .data(16);
    assert_format_err(&r.0, "overflows");
    let r = Raw::header(3, 1, 0)
        .tensor("t", &[1 << 31, 1 << 31, 4], 0, 0)
        .data(16);
    assert_format_err(&r.0, "overflows");
    // Fits in u64 elements but the byte size would overflow.
    let r = Raw::header(3, 1, 0).tensor("t", &[1 << 62], 0, 0).data(16);
    let e = err(&r.0);
    assert!(e.to_string().contains("overflows"), "{e}");
    // A block type whose first dimension is not a multiple of its block.
    let r = Raw::header(3, 1, 0).tensor("t", &[33], 8, 0).data(64);
    assert_format_err(&r.0, "multiple of 32");
}

#[test]
fn bad_offsets() {
    // Outside the file.
    let r = Raw::header(3, 1, 0).tensor("t", &[8], 0, 1 << 40).data(32);
    assert_format_err(&r.0, "runs past the end");
    let r = Raw::header(3, 1, 0)
        .tensor("t", &[8], 0, u64::MAX - 31)
        .data(32);
    assert_format_err(&r.0, "runs past the end");
    // Data cut short.
    let r = Raw::header(3, 1, 0).tensor("t", &[64], 0, 0).data(100);
    assert_format_err(&r.0, "runs past the end");
    // Misaligned.
    let r = Raw::header(3, 1, 0).tensor("t", &[8], 0, 4).data(64);
    assert_format_err(&r.0, "not a multiple of the alignment");
    // Overlapping.
    let r = Raw::header(3, 2, 0)
        .tensor("a", &[16], 0, 0)
        .tensor("b", &[16], 0, 32)
        .data(128);
    assert_format_err(&r.0, "overlap");
    // A custom alignment that is not a power of two.
    let r = Raw::header(3, 0, 1).kv_u32("general.alignment", 48);
    assert_format_err(&r.0, "power of two");
    // A custom alignment is honoured.
    let r = Raw::header(3, 1, 1)
        .kv_u32("general.alignment", 64)
        .tensor("a", &[8], 0, 32)
        .data(128);
    assert_format_err(&r.0, "multiple of the alignment 64");
}

#[test]
fn unknown_and_ambiguous_type_ids() {
    let r = Raw::header(3, 1, 0).tensor("w", &[256], 77, 0).data(1024);
    let e = err(&r.0);
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert!(
        e.to_string().contains("unknown type id 77") && e.to_string().contains("'w'"),
        "{e}"
    );
    // Id 42 with 42 bytes per 256 elements is STQ1_0 ...
    let r = Raw::header(3, 1, 0).tensor("s", &[256], 42, 0).data(42);
    let h = parse_header(&r.0).unwrap();
    assert_eq!(h.tensors[0].ty, TensorType::STQ1_0);
    assert!(h.tensors[0]
        .type_note
        .as_deref()
        .unwrap()
        .contains("read as STQ1_0"));
    // ... with 72 bytes per 256 it is mainline Q2_0 ...
    let r = Raw::header(3, 1, 0).tensor("s", &[256], 42, 0).data(72);
    assert_eq!(parse_header(&r.0).unwrap().tensors[0].ty, TensorType::Q2_0);
    // ... and with room for neither it is an error naming both.
    let r = Raw::header(3, 1, 0).tensor("s", &[256], 42, 0).data(200);
    assert_format_err(&r.0, "fit none of its meanings");
}

#[test]
fn c_api_reports_the_same_errors() {
    let dir = std::env::temp_dir().join(format!("tern-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(&str, Vec<u8>, tern_status, &str)> = vec![
        (
            "magic.gguf",
            b"GGUX\x03\0\0\0\0\0\0\0".to_vec(),
            tern_status::TERN_ERR_FORMAT,
            "not a GGUF file",
        ),
        (
            "v1.gguf",
            Raw::header(1, 0, 0).0,
            tern_status::TERN_ERR_UNSUPPORTED,
            "version 1",
        ),
        (
            "trunc.gguf",
            valid_file()[..200].to_vec(),
            tern_status::TERN_ERR_FORMAT,
            "truncated",
        ),
        (
            "type.gguf",
            Raw::header(3, 1, 1)
                .str(b"general.architecture")
                .u32(8)
                .str(b"llama")
                .tensor("w", &[256], 77, 0)
                .data(1024)
                .0,
            tern_status::TERN_ERR_UNSUPPORTED,
            "unknown type id 77",
        ),
        (
            "empty.gguf",
            Vec::new(),
            tern_status::TERN_ERR_FORMAT,
            "empty",
        ),
        (
            "noarch.gguf",
            Raw::header(3, 0, 0).0,
            tern_status::TERN_ERR_MODEL,
            "general.architecture",
        ),
    ];
    for (name, bytes, status, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        let mut model = std::ptr::NonNull::dangling().as_ptr();
        let got = tern_model_load(cpath.as_ptr(), std::ptr::null(), &mut model);
        assert_eq!(got, status, "{name}");
        assert!(
            model.is_null(),
            "{name}: the out-pointer is reset on failure"
        );
        // SAFETY: tern_last_error returns a valid NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(tern_last_error()) }
            .to_string_lossy()
            .into_owned();
        assert!(msg.contains(needle), "{name}: '{msg}' lacks '{needle}'");
        assert!(msg.contains("tern_model_load"), "{msg}");
        tern_model_free(model);
    }
    let missing = CString::new(dir.join("absent.gguf").to_str().unwrap()).unwrap();
    let mut model = std::ptr::null_mut();
    assert_eq!(
        tern_model_load(missing.as_ptr(), std::ptr::null(), &mut model),
        tern_status::TERN_ERR_IO
    );
    std::fs::remove_dir_all(&dir).ok();
}
