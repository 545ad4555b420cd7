//! Load-time validation, one violation at a time: every way a file's metadata can
//! disagree with itself or with its tensors is refused at load with an error that names
//! the key or tensor. (tests/model_load_errors.rs has the first cases; this file covers
//! the rest of the list in docs/RELIABILITY.md.) Files are built with our GGUF writer.

use tern::gguf::{Array, GgufFile, Value};
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, LoadParams, Model};
use tern::quant::TensorType;
use tern::Error;

const A: &str = "bitnet-25";

fn tiny() -> SynthModel {
    SynthModel::new(&SynthSpec::tiny(Architecture::Bitnet25)).unwrap()
}

fn key(suffix: &str) -> String {
    format!("{A}.{suffix}")
}

fn load(m: &SynthModel) -> Result<Model, Error> {
    let file = GgufFile::from_bytes(m.to_gguf().unwrap())?;
    Model::from_file(file, &LoadParams::default())
}

/// One broken model and the words its error must contain.
struct Case {
    what: &'static str,
    edit: Box<dyn Fn(&mut SynthModel)>,
    needles: Vec<String>,
}

fn case(what: &'static str, needles: &[&str], edit: impl Fn(&mut SynthModel) + 'static) -> Case {
    Case {
        what,
        edit: Box::new(edit),
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

fn set(k: &'static str, v: Value) -> impl Fn(&mut SynthModel) {
    move |m: &mut SynthModel| m.set(&key(k), v.clone())
}

fn f16_bytes(v: f32, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|_| half::f16::from_f32(v).to_le_bytes())
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        // Metadata: numbers that must be finite / positive / consistent.
        case(
            "rope base NaN",
            &["rope.freq_base"],
            set("rope.freq_base", Value::F32(f32::NAN)),
        ),
        case(
            "rope base infinite",
            &["rope.freq_base"],
            set("rope.freq_base", Value::F32(f32::INFINITY)),
        ),
        case(
            "rope base negative",
            &["rope.freq_base"],
            set("rope.freq_base", Value::F32(-1.0)),
        ),
        case(
            "rope scale NaN",
            &["rope.scaling.factor"],
            set("rope.scaling.factor", Value::F32(f32::NAN)),
        ),
        case(
            "rope scale negative",
            &["rope.scaling.factor"],
            set("rope.scaling.factor", Value::F32(-2.0)),
        ),
        case(
            "rope scaling kind",
            &["rope.scaling.type", "yarn"],
            set("rope.scaling.type", Value::string("yarn")),
        ),
        case(
            "rms eps NaN",
            &["layer_norm_rms_epsilon"],
            set("attention.layer_norm_rms_epsilon", Value::F32(f32::NAN)),
        ),
        case(
            "rms eps zero",
            &["layer_norm_rms_epsilon"],
            set("attention.layer_norm_rms_epsilon", Value::F32(0.0)),
        ),
        case(
            "rms eps missing",
            &["layer_norm_rms_epsilon", "missing"],
            |m| m.unset(&key("attention.layer_norm_rms_epsilon")),
        ),
        case(
            "attention scale infinite",
            &["attention.scale"],
            set("attention.scale", Value::F32(f32::INFINITY)),
        ),
        case(
            "rope dims odd",
            &["rope.dimension_count"],
            set("rope.dimension_count", Value::U32(63)),
        ),
        case(
            "rope dims above head",
            &["rope.dimension_count"],
            set("rope.dimension_count", Value::U32(128)),
        ),
        // Head sizes.
        case(
            "head count 0",
            &["attention.head_count", "0"],
            set("attention.head_count", Value::U32(0)),
        ),
        case(
            "kv heads 0",
            &["head_count_kv"],
            set("attention.head_count_kv", Value::U32(0)),
        ),
        case(
            "kv heads above heads",
            &["head_count_kv"],
            set("attention.head_count_kv", Value::U32(8)),
        ),
        case(
            "key length 0",
            &["attention.key_length", "0"],
            set("attention.key_length", Value::U32(0)),
        ),
        case("key and value lengths differ", &["head size"], |m| {
            m.set(&key("attention.key_length"), Value::U32(64));
            m.set(&key("attention.value_length"), Value::U32(32));
        }),
        case(
            "key length against the tensors",
            &["blk.0.attn_q.weight"],
            |m| {
                for k in [
                    "attention.key_length",
                    "attention.value_length",
                    "rope.dimension_count",
                ] {
                    m.set(&key(k), Value::U32(32));
                }
            },
        ),
        // Sizes against the tensors.
        case("n_embd against the tensors", &["token_embd.weight"], |m| {
            m.set(&key("embedding_length"), Value::U32(128));
            m.set(&key("attention.key_length"), Value::U32(64));
            m.set(&key("attention.value_length"), Value::U32(64));
        }),
        case(
            "n_ff against the tensors",
            &["blk.0.ffn_gate.weight", "n_ff"],
            set("feed_forward_length", Value::U32(256)),
        ),
        case(
            "n_ff zero",
            &["feed_forward_length", "0"],
            set("feed_forward_length", Value::U32(0)),
        ),
        case(
            "n_layer beyond the tensors",
            &["block_count"],
            set("block_count", Value::U32(9)),
        ),
        case("n_layer one more than present", &["blk.2."], |m| {
            // Enough tensors in the file for 3 blocks by count, but no block 2.
            m.set(&key("block_count"), Value::U32(3));
            for i in 0..10 {
                let mut t = m.tensors[0].clone();
                t.name = format!("extra.{i}");
                m.tensors.push(t);
            }
        }),
        case(
            "vocab zero",
            &["vocab_size", "0"],
            set("vocab_size", Value::U32(0)),
        ),
        case(
            "vocab against the embedding",
            &["512", "token_embd.weight"],
            set("vocab_size", Value::U32(500)),
        ),
        case(
            "per-layer counts that differ",
            &["feed_forward_length", "differ"],
            set(
                "feed_forward_length",
                Value::Array(Array::U32(vec![512, 256])),
            ),
        ),
        case(
            "per-layer count empty",
            &["feed_forward_length"],
            set("feed_forward_length", Value::Array(Array::U32(vec![]))),
        ),
        // Metadata of the wrong type.
        case(
            "count as a string",
            &["embedding_length", "unsigned"],
            set("embedding_length", Value::string("256")),
        ),
        case(
            "count negative",
            &["block_count"],
            set("block_count", Value::I32(-2)),
        ),
        case(
            "count above u32",
            &["context_length"],
            set("context_length", Value::U64(1 << 40)),
        ),
        case(
            "architecture not a string",
            &["general.architecture"],
            |m| m.set("general.architecture", Value::U32(1)),
        ),
        case(
            "architecture missing",
            &["general.architecture", "missing"],
            |m| m.unset("general.architecture"),
        ),
        // Tensors: presence, shape, type, values.
        case(
            "output norm missing",
            &["output_norm.weight", "missing"],
            |m| m.remove_tensor("output_norm.weight"),
        ),
        case("attention norm missing", &["blk.1.attn_norm.weight"], |m| {
            m.remove_tensor("blk.1.attn_norm.weight")
        }),
        case("output head of the wrong shape", &["output.weight"], |m| {
            let mut t = m.tensor_mut("token_embd.weight").unwrap().clone();
            t.name = "output.weight".into();
            t.dims = vec![256, 256];
            t.bytes.truncate(256 * 256 * 2);
            m.tensors.push(t);
        }),
        case(
            "norm with a NaN",
            &["blk.0.attn_norm.weight", "non-finite"],
            |m| {
                let t = m.tensor_mut("blk.0.attn_norm.weight").unwrap();
                t.bytes[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
            },
        ),
        case(
            "norm with an infinity",
            &["output_norm.weight", "non-finite"],
            |m| {
                let t = m.tensor_mut("output_norm.weight").unwrap();
                t.bytes[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
            },
        ),
        case(
            "norm stored as ternary",
            &["blk.0.ffn_norm.weight", "I2_S"],
            |m| {
                let t = m.tensor_mut("blk.0.ffn_norm.weight").unwrap();
                t.ty = TensorType::I2_S;
                t.bytes = vec![0; 256 / 4 + 32];
            },
        ),
        case("bias of the wrong length", &["blk.0.attn_q.bias"], |m| {
            m.tensors.push(tern::model::synth::SynthTensor {
                name: "blk.0.attn_q.bias".into(),
                dims: vec![7],
                ty: TensorType::F32,
                bytes: vec![0; 28],
            })
        }),
        case("rope factors not positive", &["rope_freqs.weight"], |m| {
            m.tensors.push(tern::model::synth::SynthTensor {
                name: "rope_freqs.weight".into(),
                dims: vec![32],
                ty: TensorType::F16,
                bytes: f16_bytes(0.0, 32),
            })
        }),
        case(
            "rope factors of the wrong length",
            &["rope_freqs.weight"],
            |m| {
                m.tensors.push(tern::model::synth::SynthTensor {
                    name: "rope_freqs.weight".into(),
                    dims: vec![31],
                    ty: TensorType::F16,
                    bytes: f16_bytes(1.0, 31),
                })
            },
        ),
        case(
            "projection as a 3-D tensor",
            &["blk.0.attn_v.weight"],
            |m| {
                let t = m.tensor_mut("blk.0.attn_v.weight").unwrap();
                t.dims = vec![256, 64, 2];
            },
        ),
        case(
            "embedding of a type rows cannot be read from",
            &["token_embd.weight", "I2_S"],
            |m| {
                let t = m.tensor_mut("token_embd.weight").unwrap();
                t.ty = TensorType::I2_S;
                t.bytes = vec![0x55; 256 * 512 / 4 + 32];
            },
        ),
    ]
}

#[test]
fn every_violation_is_refused_with_a_message_naming_it() {
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        let mut m = tiny();
        (c.edit)(&mut m);
        match load(&m) {
            Ok(_) => failures.push(format!("{}: the model loaded", c.what)),
            Err(e) => {
                let text = e.to_string();
                if !matches!(
                    e,
                    Error::Model(_) | Error::Unsupported(_) | Error::Format(_)
                ) {
                    failures.push(format!("{}: unexpected kind: {text}", c.what));
                }
                for n in &c.needles {
                    if !text.contains(n.as_str()) {
                        failures.push(format!("{}: '{text}' does not mention '{n}'", c.what));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} violations refused, each naming its key or tensor",
        cases.len()
    );
}

#[test]
fn the_unedited_model_loads() {
    load(&tiny()).unwrap();
}
