//! `tern inspect FILE`: version, metadata, the tensor table and a size summary.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};
use tern::gguf::{Array, GgufFile, Value};
use tern::quant::TensorType;
use tern::Result;

use crate::args::Args;

const HELP: &str = "\
usage: tern inspect FILE [--json] [--full-arrays]
       tern inspect --system

  --json          print JSON for scripts (arrays shortened unless --full-arrays)
  --full-arrays   print every element of every metadata array
  --system        print the CPU features found and the kernels chosen";

/// Array elements shown by default.
const SHORT_ITEMS: usize = 8;

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let system = args.flag(&["--system"]);
    let as_json = args.flag(&["--json"]);
    let full = args.flag(&["--full-arrays"]);
    let pos = args.positionals()?;
    if system {
        println!("{}", tern::kernels::system_info());
        if pos.is_empty() {
            return Ok(());
        }
    }
    let [path] = pos.as_slice() else {
        return Err(tern::Error::invalid(format!("expected one FILE\n\n{HELP}")));
    };
    let file = GgufFile::open(path)?;
    let items = if full { usize::MAX } else { SHORT_ITEMS };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(path, &file, items)).expect("JSON")
        );
    } else {
        print_text(path, &file, items);
    }
    Ok(())
}

/// Per-type totals.
#[derive(Default)]
struct TypeTotals {
    tensors: u64,
    params: u64,
    bytes: u64,
}

fn totals(file: &GgufFile) -> BTreeMap<TensorType, TypeTotals> {
    let mut m: BTreeMap<TensorType, TypeTotals> = BTreeMap::new();
    for t in file.tensors() {
        let e = m.entry(t.ty).or_default();
        e.tensors += 1;
        e.params += t.n_elements();
        e.bytes += t.nbytes;
    }
    m
}

fn bits_per_weight(bytes: u64, params: u64) -> f64 {
    if params == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / params as f64
    }
}

fn print_text(path: &str, file: &GgufFile, items: usize) {
    let h = file.header();
    println!("file: {path}");
    println!(
        "GGUF version {}, alignment {}, {} metadata pairs, {} tensors, data at offset {}, {} bytes",
        h.version,
        h.alignment,
        h.metadata.len(),
        h.tensors.len(),
        h.data_offset,
        file.bytes().len()
    );
    println!("\nmetadata:");
    for (k, v) in &h.metadata {
        let ty = match v {
            Value::Array(a) => format!("[{}; {}]", a.elem_type().name(), a.len()),
            other => other.value_type().name().to_string(),
        };
        println!("  {k:<45} {ty:<18} {}", v.display_short(items));
    }
    println!("\ntensors:");
    println!(
        "  {:>4}  {:<36} {:<7} {:<22} {:>12} {:>12}",
        "#", "name", "type", "shape", "bytes", "offset"
    );
    for (i, t) in h.tensors.iter().enumerate() {
        let shape = format!("{:?}", t.dims);
        println!(
            "  {:>4}  {:<36} {:<7} {:<22} {:>12} {:>12}",
            i,
            t.name,
            t.ty.name(),
            shape,
            t.nbytes,
            t.offset
        );
        if let Some(n) = &t.type_note {
            println!("        note: {n}");
        }
    }
    println!("\nsummary:");
    let tot = totals(file);
    let (mut all_params, mut all_bytes) = (0u64, 0u64);
    let (mut tern_params, mut tern_bytes) = (0u64, 0u64);
    for (ty, t) in &tot {
        println!(
            "  {:<7} {:>4} tensors {:>14} params {:>14} bytes  {:>7.4} bits/weight",
            ty.name(),
            t.tensors,
            t.params,
            t.bytes,
            bits_per_weight(t.bytes, t.params)
        );
        all_params += t.params;
        all_bytes += t.bytes;
        if ty.is_ternary() {
            tern_params += t.params;
            tern_bytes += t.bytes;
        }
    }
    println!("  total   {all_params} params, {all_bytes} bytes of tensor data");
    if tern_params > 0 {
        println!(
            "  ternary {tern_params} params, {tern_bytes} bytes, {:.4} bits/weight",
            bits_per_weight(tern_bytes, tern_params)
        );
    }
}

fn scalar_json(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::String(b) => json!(String::from_utf8_lossy(b)),
        Value::Array(a) => array_json(a, usize::MAX),
    }
}

fn array_json(a: &Array, items: usize) -> Json {
    Json::Array(
        (0..a.len().min(items))
            .map(|i| scalar_json(&a.get(i).expect("index below len")))
            .collect(),
    )
}

fn to_json(path: &str, file: &GgufFile, items: usize) -> Json {
    let h = file.header();
    let mut md = Map::new();
    for (k, v) in &h.metadata {
        let entry = match v {
            Value::Array(a) => json!({
                "type": "ARRAY",
                "elem_type": a.elem_type().name(),
                "len": a.len(),
                "value": array_json(a, items),
            }),
            other => json!({"type": other.value_type().name(), "value": scalar_json(other)}),
        };
        md.insert(k.clone(), entry);
    }
    let tensors: Vec<Json> = h
        .tensors
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "type": t.ty.name(),
                "type_id": t.type_id,
                "shape": t.dims,
                "bytes": t.nbytes,
                "offset": t.offset,
                "type_note": t.type_note,
            })
        })
        .collect();
    let summary: Vec<Json> = totals(file)
        .iter()
        .map(|(ty, t)| {
            json!({
                "type": ty.name(),
                "tensors": t.tensors,
                "params": t.params,
                "bytes": t.bytes,
                "bits_per_weight": bits_per_weight(t.bytes, t.params),
            })
        })
        .collect();
    json!({
        "file": path,
        "version": h.version,
        "alignment": h.alignment,
        "data_offset": h.data_offset,
        "file_size": file.bytes().len(),
        "metadata": md,
        "tensors": tensors,
        "summary": summary,
    })
}
