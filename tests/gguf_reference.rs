//! Every GGUF file in the reference folder reads the same through our reader, through
//! `tern inspect --json`, and through gguf-py (or, for the bitnet.cpp type ids gguf-py
//! rejects, an independent header walk in tests/tools/gguf_dump.py). A file written by our
//! writer round-trips through gguf-py and our reader with identical metadata and bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value as Json};
use tern::gguf::{Array, GgufFile, GgufWriter, Value};
use tern::quant::TensorType;

fn dump_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/gguf_dump.py")
}

/// Runs the Python dumper; `None` (after a loud message) when Python or gguf-py is missing
/// outside CI.
fn python_dump(path: &Path) -> Option<Json> {
    let out = Command::new("python3")
        .arg(dump_script())
        .arg(path)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            Some(serde_json::from_slice(&o.stdout).expect("dumper JSON"))
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            common::skip_or_fail(&format!("gguf_dump.py failed on {}: {err}", path.display()));
            None
        }
        Err(e) => {
            common::skip_or_fail(&format!("python3 not runnable: {e}"));
            None
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Our value in the dumper's JSON shape.
fn value_json(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(*x as f64),
        Value::Bool(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::String(b) => json!({"hex": hex(b)}),
        Value::Array(a) => array_json(a),
    }
}

/// Arrays longer than this are compared by length, first and last items (as the dumper
/// emits them: see FULL_ITEMS in tests/tools/gguf_dump.py).
const FULL_ITEMS: usize = 4096;
const EDGE_ITEMS: usize = 64;

fn array_json(a: &Array) -> Json {
    let n = a.len();
    let item = |i: usize| value_json(&a.get(i).unwrap());
    if n > FULL_ITEMS {
        let items: Vec<Json> = (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).map(item).collect();
        return json!({"elem_type": a.elem_type().name(), "items": items, "len": n});
    }
    let items: Vec<Json> = (0..n).map(item).collect();
    json!({"elem_type": a.elem_type().name(), "items": items})
}

/// Numbers compare as f64 (the dumper's JSON has no integer widths).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        // gguf-py does not report the element type of an empty array.
        (Json::Object(x), Json::Object(y)) if x.get("items").is_some_and(|i| i == &json!([])) => {
            y.get("items") == x.get("items")
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn compare_with_python(path: &Path, file: &GgufFile, py: &Json) {
    let name = path.display();
    assert_eq!(
        py["version"].as_u64(),
        Some(file.version() as u64),
        "{name}: version"
    );
    let md = py["metadata"].as_object().unwrap();
    let ours: Vec<&str> = file.metadata().iter().map(|(k, _)| k.as_str()).collect();
    let theirs: Vec<&str> = md.keys().map(String::as_str).collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut theirs_sorted = theirs.clone();
    theirs_sorted.sort();
    assert_eq!(ours_sorted, theirs_sorted, "{name}: metadata keys");
    for (k, v) in file.metadata() {
        let entry = &md[k];
        assert_eq!(
            entry["type"].as_str(),
            Some(v.value_type().name()),
            "{name}: type of {k}"
        );
        assert!(
            same(&value_json(v), &entry["value"]),
            "{name}: value of {k}"
        );
    }
    let tensors = py["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), file.tensors().len(), "{name}: tensor count");
    for (t, p) in file.tensors().iter().zip(tensors) {
        assert_eq!(
            p["name"].as_str(),
            Some(t.name.as_str()),
            "{name}: tensor order"
        );
        assert_eq!(p["shape"], json!(t.dims), "{name}: shape of {}", t.name);
        assert_eq!(
            p["type_id"].as_u64(),
            Some(t.type_id as u64),
            "{name}: type of {}",
            t.name
        );
        if let Some(ty) = p["type"].as_str() {
            assert_eq!(ty, t.ty.name(), "{name}: type name of {}", t.name);
        }
        assert_eq!(
            p["offset"].as_u64(),
            Some(t.offset),
            "{name}: offset of {}",
            t.name
        );
    }
}

fn compare_with_cli(path: &Path, file: &GgufFile) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Json = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = j["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), file.metadata().len());
    for (k, v) in file.metadata() {
        let e = &j["metadata"][k];
        match v {
            Value::Array(a) => assert_eq!(e["len"].as_u64(), Some(a.len() as u64), "{k}"),
            Value::String(_) => assert_eq!(e["value"].as_str(), Some(v.to_text().as_str()), "{k}"),
            other => assert!(same(&e["value"], &value_json(other)), "{k}"),
        }
    }
    let tensors = j["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), file.tensors().len());
    for (t, c) in file.tensors().iter().zip(tensors) {
        assert_eq!(c["name"].as_str(), Some(t.name.as_str()));
        assert_eq!(c["type"].as_str(), Some(t.ty.name()));
        assert_eq!(c["shape"], json!(t.dims));
        assert_eq!(c["bytes"].as_u64(), Some(t.nbytes));
    }
}

#[test]
fn reference_files_read_the_same_everywhere() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let files = common::gguf_files(&dir);
    assert!(!files.is_empty(), "no GGUF files under {}", dir.display());
    let mut via_python = 0;
    let mut via_walk = 0;
    // The Python side is the slow one: run two dumps at a time beside the Rust checks.
    let (tx, rx) = std::sync::mpsc::channel();
    let queue = std::sync::Mutex::new(files.clone().into_iter().enumerate());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().unwrap().next();
                let Some((i, path)) = next else { break };
                tx.send((i, python_dump(&path))).unwrap();
            });
        }
    });
    drop(tx);
    let mut dumps: Vec<Option<Json>> = vec![None; files.len()];
    for (i, d) in rx {
        dumps[i] = d;
    }
    for (path, py) in files.iter().zip(dumps) {
        let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        compare_with_cli(path, &file);
        let Some(py) = py else { return };
        compare_with_python(path, &file, &py);
        match py["reader"].as_str() {
            Some("gguf-py") => via_python += 1,
            _ => via_walk += 1,
        }
    }
    eprintln!(
        "{} reference GGUF files: {via_python} compared with gguf-py, {via_walk} with the header walk",
        files.len()
    );
    assert!(via_python > 0, "gguf-py read none of the files");
}

#[test]
fn the_bitnet_type_ids_are_recognised() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let i2s = GgufFile::open(dir.join("bitnet25/ggml-model-i2s.gguf")).unwrap();
    assert_eq!(
        i2s.tensor("blk.0.attn_q.weight").unwrap().info.ty,
        TensorType::I2_S
    );
    let tl1 = GgufFile::open(dir.join("bitnet-tl2/ggml-model-tl1.gguf")).unwrap();
    assert_eq!(
        tl1.tensor("blk.0.ffn_up.weight").unwrap().info.ty,
        TensorType::TL1
    );
    let tl2 = GgufFile::open(dir.join("bitnet-tl2/ggml-model-tl2.gguf")).unwrap();
    let down = tl2.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(down.info.ty, TensorType::TL2);
    assert_eq!(down.data.len(), 1_327_136);
}

#[test]
fn our_writer_round_trips_through_gguf_py() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::string("llama"));
    w.set("general.name", Value::string("round trip ü"));
    w.set("t.u8", Value::U8(250));
    w.set("t.i8", Value::I8(-100));
    w.set("t.u16", Value::U16(65000));
    w.set("t.i16", Value::I16(-32000));
    w.set("t.u32", Value::U32(4_000_000_000));
    w.set("t.i32", Value::I32(-2_000_000_000));
    w.set("t.f32", Value::F32(0.1));
    w.set("t.bool", Value::Bool(false));
    w.set("t.u64", Value::U64(u64::MAX));
    w.set("t.i64", Value::I64(i64::MIN));
    w.set("t.f64", Value::F64(1e-300));
    w.set("t.bytes", Value::String(vec![0xff, 0x00, 0x41]));
    w.set("t.arr_f32", Value::Array(Array::F32(vec![1.0, -2.5, 3.25])));
    w.set("t.arr_i64", Value::Array(Array::I64(vec![-1, 0, 1])));
    w.set("t.arr_bool", Value::Array(Array::Bool(vec![true, false])));
    w.set(
        "t.arr_str",
        Value::Array(Array::String(vec![
            b"a".to_vec(),
            vec![],
            "ĠHello".as_bytes().to_vec(),
        ])),
    );
    w.set("t.empty", Value::Array(Array::U32(vec![])));
    let shapes: [(&str, &[u64], TensorType); 4] = [
        ("a.f32", &[3, 5], TensorType::F32),
        ("b.f16", &[64], TensorType::F16),
        ("c.q8_0", &[64, 2], TensorType::Q8_0),
        ("d.bf16", &[2, 3, 4], TensorType::BF16),
    ];
    let mut datas = Vec::new();
    for (i, (name, dims, ty)) in shapes.iter().enumerate() {
        w.add_tensor(name, dims, *ty).unwrap();
        let n = ty.nbytes(dims).unwrap() as usize;
        datas.push((0..n).map(|b| (b * 31 + i * 7) as u8).collect::<Vec<u8>>());
    }
    let expected_md = w.metadata().to_vec();
    let dir = std::env::temp_dir().join(format!("tern-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rt.gguf");
    let refs: Vec<&[u8]> = datas.iter().map(Vec::as_slice).collect();
    w.write_file(&path, &refs).unwrap();

    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.metadata(), expected_md.as_slice());
    for ((name, dims, ty), data) in shapes.iter().zip(&datas) {
        let t = file.tensor(name).unwrap();
        assert_eq!(t.info.dims, dims.to_vec());
        assert_eq!(t.info.ty, *ty);
        assert_eq!(t.data, data.as_slice());
    }
    if let Some(py) = python_dump(&path) {
        assert_eq!(
            py["reader"],
            "gguf-py",
            "gguf-py must read our file: {:?}",
            py.get("gguf_py_error")
        );
        compare_with_python(&path, &file, &py);
        // gguf-py also sees the same tensor bytes.
        let script = "import gguf,sys\nr=gguf.GGUFReader(sys.argv[1])\nfor t in r.tensors: print(t.name, bytes(t.data.tobytes()).hex())";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for ((name, _, _), data) in shapes.iter().zip(&datas) {
            assert!(
                text.contains(&format!("{name} {}", hex(data))),
                "tensor {name} bytes differ in gguf-py"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
