//! GGUF metadata and tensor table → model configuration → weights → a context that
//! evaluates. Starts from a valid synthetic model of one of the four architectures and
//! applies edits the fuzzer picks (metadata values of any type, removed keys, reshaped,
//! retyped, removed or corrupted tensors). A model that loads must evaluate without
//! panicking or reading out of bounds: load-time validation is what makes eval safe.

use std::sync::{Arc, OnceLock};

use crate::context::{Context, ContextParams};
use crate::error::Error;
use crate::gguf::{Array, GgufFile, Value};
use crate::model::synth::{SynthModel, SynthSpec};
use crate::model::{Architecture, LoadParams, Model, ModelConfig, ModelInfo};
use crate::quant::TensorType;

const ARCHS: [Architecture; 4] = [
    Architecture::BitnetB158,
    Architecture::Bitnet25,
    Architecture::Bitnet,
    Architecture::Llama,
];

/// Keys the configuration reads, after `<arch>.`.
const ARCH_KEYS: &[&str] = &[
    "embedding_length",
    "block_count",
    "context_length",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.freq_base",
    "rope.dimension_count",
    "rope.scaling.factor",
    "rope.scale_linear",
    "rope.scaling.type",
    "attention.scale",
    "vocab_size",
];

const TYPES: &[TensorType] = &[
    TensorType::F32,
    TensorType::F16,
    TensorType::BF16,
    TensorType::Q8_0,
    TensorType::Q4_0,
    TensorType::Q6_K,
    TensorType::Q4_K,
    TensorType::I2_S,
    TensorType::TQ1_0,
    TensorType::TQ2_0,
    TensorType::TL1,
    TensorType::TL2,
    TensorType::STQ1_0,
    TensorType::Sherry,
    TensorType::I8,
];

/// Tensors larger than this are not produced by a reshape (keeps executions fast).
const MAX_TENSOR_BYTES: u64 = 1 << 21;

fn base(arch_pick: u8) -> (Architecture, &'static SynthModel) {
    static MODELS: OnceLock<Vec<SynthModel>> = OnceLock::new();
    let models = MODELS.get_or_init(|| {
        ARCHS
            .iter()
            .map(|&a| {
                let mut spec = SynthSpec::tiny(a);
                // Smaller than `tiny` so that an execution stays well under a millisecond.
                spec.n_vocab = 64;
                spec.n_embd = 128;
                spec.n_head = 2;
                spec.n_head_kv = 1;
                spec.n_ff = 256;
                SynthModel::new(&spec).expect("the base models build")
            })
            .collect()
    });
    let i = arch_pick as usize % ARCHS.len();
    (ARCHS[i], &models[i])
}

/// A metadata value built from a record: any GGUF type, including per-layer arrays.
fn value_of(kind: u8, v: u32, n_layer: usize) -> Value {
    match kind % 12 {
        0 | 1 => Value::U32(v % 4096),
        2 => Value::U32(v),
        3 => Value::F32(f32::from_bits(v)),
        4 => Value::F32((v % 1000) as f32 / 100.0),
        5 => Value::I32(v as i32),
        6 => Value::U64(u64::from(v) << 20),
        7 => Value::U8(v as u8),
        8 => Value::Array(Array::U32(vec![v % 4096; n_layer])),
        9 => Value::Array(Array::I32(vec![v as i32, 7])),
        10 => Value::string(if v % 2 == 0 { "linear" } else { "yarn" }),
        _ => Value::Array(Array::F32(vec![])),
    }
}

/// Resizes a tensor's bytes to what its type and shape need, repeating the old bytes;
/// false when the shape has no size or is too large to be worth building.
fn refit(t: &mut crate::model::synth::SynthTensor) -> bool {
    match t.ty.nbytes(&t.dims) {
        Ok(n) if n <= MAX_TENSOR_BYTES => {
            let n = n as usize;
            if t.bytes.is_empty() {
                t.bytes.push(0x55);
            }
            let mut i = 0;
            while t.bytes.len() < n {
                t.bytes.push(t.bytes[i]);
                i += 1;
            }
            t.bytes.truncate(n);
            true
        }
        _ => false,
    }
}

/// Byte 0 picks the architecture; each 8-byte record is one edit:
/// `[op, index, value (u32), extra, extra]`.
pub fn model_config(data: &[u8]) {
    let Some((&pick, records)) = data.split_first() else {
        return;
    };
    let (arch, m) = base(pick);
    let mut m = m.clone();
    let n_layer = 2;
    for rec in records.chunks_exact(8).take(24) {
        let (op, idx, v, x, y) = (
            rec[0],
            rec[1] as usize,
            super::le_u32(&rec[2..6]),
            rec[6],
            rec[7],
        );
        let key = |i: usize| format!("{}.{}", arch.name(), ARCH_KEYS[i % ARCH_KEYS.len()]);
        let nt = m.tensors.len();
        match op % 10 {
            0..=2 => m.set(&key(idx), value_of(x, v, n_layer)),
            3 => m.unset(&key(idx)),
            4 => {
                let names = ["bitnet-b1.58", "bitnet-25", "bitnet", "llama", "gpt2", ""];
                m.set(
                    "general.architecture",
                    Value::string(names[idx % names.len()]),
                );
            }
            5 if nt > 0 => {
                let t = &mut m.tensors[idx % nt];
                let d = x as usize % 4;
                while t.dims.len() <= d {
                    t.dims.push(1);
                }
                t.dims[d] = if y & 1 == 0 {
                    u64::from(v % 1024)
                } else {
                    u64::from(v)
                };
                if !refit(t) {
                    return;
                }
            }
            6 if nt > 0 => {
                let name = m.tensors[idx % nt].name.clone();
                m.remove_tensor(&name);
            }
            7 if nt > 0 => {
                let t = &mut m.tensors[idx % nt];
                t.ty = TYPES[x as usize % TYPES.len()];
                if !refit(t) {
                    return;
                }
            }
            8 if nt > 0 => {
                // Overwrite 4 bytes (a scale, a norm weight, codes) with the value.
                let t = &mut m.tensors[idx % nt];
                if t.bytes.len() >= 4 {
                    let at = if y & 1 == 0 {
                        t.bytes.len() - 32.min(t.bytes.len())
                    } else {
                        (v as usize >> 8) % (t.bytes.len() - 3)
                    };
                    let at = at.min(t.bytes.len() - 4);
                    t.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            9 => {
                let tokens = (0..(v % 130))
                    .map(|i| format!("t{i}").into_bytes())
                    .collect();
                m.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
            }
            _ => {}
        }
    }
    let Ok(bytes) = m.to_gguf() else {
        return;
    };
    let Ok(file) = GgufFile::from_bytes(bytes) else {
        return;
    };
    let _ = ModelInfo::from_gguf(&file);
    let _ = ModelConfig::from_gguf(&file);
    let Ok(model) = Model::from_file(file, &LoadParams::default()) else {
        return;
    };
    let model = Arc::new(model);
    let params = ContextParams {
        n_ctx: 4,
        n_batch: 2,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model, &params).expect("a loaded model gets a 4-token context");
    let last = (ctx.n_vocab() - 1) as u32;
    // Weights that pass the load checks may still overflow to infinities or NaN in
    // eval: that must be an error that leaves the context as it was, never a panic.
    for batch in [&[0, last][..], &[last / 2]] {
        let before = ctx.n_past();
        match ctx.eval(batch) {
            Ok(()) => {
                assert_eq!(ctx.n_past(), before + batch.len());
                assert_eq!(ctx.last_logits().map(<[f32]>::len), Some(ctx.n_vocab()));
            }
            Err(e) => {
                assert!(!matches!(e, Error::Internal(_)), "{e}");
                assert_eq!(ctx.n_past(), before, "a failed eval moved the cache");
                return;
            }
        }
    }
}
