//! The configuration a forward pass needs, read from GGUF metadata and checked for
//! internal consistency (shapes of the tensors are checked in [`super::weights`]).
//!
//! Four architectures are known, each as bitnet.cpp's llama.cpp fork builds its graph:
//!
//! | `general.architecture` | RoPE | FFN gate | sub-norms | output head |
//! |---|---|---|---|---|
//! | `bitnet-b1.58`, `bitnet-25` | NeoX | ReLU² | yes | `output` if present, else tied |
//! | `bitnet` | NeoX | SiLU | yes | tied |
//! | `llama` | normal (adjacent pairs) | SiLU | no | `output` if present, else tied |

use std::fmt;

use super::hparams::{meta_str, meta_u32};
use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile, Value};

/// The model families we run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `bitnet-b1.58`: the official BitNet b1.58 2B4T GGUF.
    BitnetB158,
    /// `bitnet-25`: the same graph under the name bitnet.cpp's other converter writes.
    Bitnet25,
    /// `bitnet`: 1bitLLM bitnet_b1_58-large / -3B.
    Bitnet,
    /// `llama`: Falcon3-*-1.58bit, Llama3-8B-1.58, Falcon-E (ternary weights, plain llama graph).
    Llama,
}

/// How RoPE pairs the dimensions of a head (ggml's rope `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// ggml's NEOX mode: dimension `i` is rotated with `i + n_rot/2`.
    Neox,
    /// ggml's normal mode: dimension `2i` is rotated with `2i + 1`.
    Normal,
}

/// The activation applied to the gate projection of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfnActivation {
    /// `max(x, 0)²` (BitNet b1.58 2B4T).
    ReluSquared,
    /// `x / (1 + e^-x)` (llama family and 1bitLLM's BitNet).
    Silu,
}

impl Architecture {
    /// Reads a `general.architecture` value.
    pub fn from_name(name: &str) -> Option<Architecture> {
        Some(match name {
            "bitnet-b1.58" => Architecture::BitnetB158,
            "bitnet-25" => Architecture::Bitnet25,
            "bitnet" => Architecture::Bitnet,
            "llama" => Architecture::Llama,
            _ => return None,
        })
    }

    /// The name as written in `general.architecture`.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::BitnetB158 => "bitnet-b1.58",
            Architecture::Bitnet25 => "bitnet-25",
            Architecture::Bitnet => "bitnet",
            Architecture::Llama => "llama",
        }
    }

    /// The RoPE variant llama.cpp's `llama_rope_type` gives this architecture.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Architecture::Llama => RopeStyle::Normal,
            _ => RopeStyle::Neox,
        }
    }

    /// The gate activation of the architecture's graph (`build_bitnet_158` uses ReLU²,
    /// `build_bitnet` and `build_llama` SiLU).
    pub fn activation(self) -> FfnActivation {
        match self {
            Architecture::BitnetB158 | Architecture::Bitnet25 => FfnActivation::ReluSquared,
            Architecture::Bitnet | Architecture::Llama => FfnActivation::Silu,
        }
    }

    /// Whether the graph normalizes the attention output and the gated FFN activation
    /// (`attn_sub_norm`, `ffn_sub_norm`) before the output and down projections.
    pub fn has_sub_norms(self) -> bool {
        !matches!(self, Architecture::Llama)
    }

    /// Whether llama.cpp requires `rope.dimension_count` to equal the head size.
    fn requires_full_rope(self) -> bool {
        !matches!(self, Architecture::Bitnet)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the forward pass needs to know about a model's shape and numerics.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The architecture.
    pub arch: Architecture,
    /// Vocabulary size (rows of the embedding).
    pub n_vocab: usize,
    /// Context length the model was trained with (`context_length`).
    pub n_ctx_train: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (GQA when fewer than `n_head`).
    pub n_head_kv: usize,
    /// Size of one key/query head.
    pub head_dim: usize,
    /// Size of one value head.
    pub head_dim_v: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Epsilon of every RMS norm.
    pub rms_eps: f32,
    /// RoPE base frequency.
    pub rope_freq_base: f32,
    /// RoPE position scale (1 / the linear scaling factor).
    pub rope_freq_scale: f32,
    /// Dimensions of each head that RoPE rotates (even, at most `head_dim`).
    pub n_rot: usize,
    /// RoPE pairing.
    pub rope_style: RopeStyle,
    /// Gate activation of the FFN.
    pub activation: FfnActivation,
    /// Whether `attn_sub_norm` / `ffn_sub_norm` are part of the graph.
    pub sub_norms: bool,
    /// Scale applied to the attention scores (1/sqrt(head_dim) unless the file says otherwise).
    pub attention_scale: f32,
}

impl ModelConfig {
    /// Dimension of the concatenated query heads.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Dimension of the concatenated key heads.
    pub fn k_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Dimension of the concatenated value heads.
    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }

    /// Dimension of the attention output (all heads' values concatenated).
    pub fn attn_out_dim(&self) -> usize {
        self.n_head * self.head_dim_v
    }

    /// Reads and checks the configuration of `file`. Tensor shapes are checked when the
    /// weights are loaded.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig> {
        let arch_name = meta_str(file, "general.architecture")?
            .ok_or_else(|| Error::model("metadata 'general.architecture' is missing"))?;
        let arch = Architecture::from_name(arch_name).ok_or_else(|| {
            Error::unsupported(format!(
                "architecture '{arch_name}' (general.architecture) is not one we run; \
                 known: bitnet-b1.58, bitnet-25, bitnet, llama"
            ))
        })?;
        let key = |suffix: &str| format!("{arch_name}.{suffix}");
        let required = |suffix: &str| -> Result<usize> {
            let k = key(suffix);
            meta_u32(file, &k)?
                .map(|v| v as usize)
                .ok_or_else(|| Error::model(format!("metadata '{k}' is missing")))
        };

        let n_embd = required("embedding_length")?;
        let n_layer = required("block_count")?;
        let n_ctx_train = required("context_length")?;
        let n_ff = per_layer_u32(file, &key("feed_forward_length"), true)?.unwrap_or(0);
        let n_head = per_layer_u32(file, &key("attention.head_count"), true)?.unwrap_or(0);
        let n_head_kv =
            per_layer_u32(file, &key("attention.head_count_kv"), false)?.unwrap_or(n_head);

        if n_embd == 0 {
            return Err(Error::model(format!("{} is 0", key("embedding_length"))));
        }
        if n_layer == 0 {
            return Err(Error::model(format!(
                "{} is 0: a model needs at least one layer",
                key("block_count")
            )));
        }
        // Each block has at least nine tensors (two norms, four attention and three
        // feed-forward projections): a larger count cannot be right, and is refused
        // before anything is sized by it.
        let n_tensors = file.tensors().len();
        if n_layer > n_tensors / 9 {
            return Err(Error::model(format!(
                "{} = {n_layer} but the file holds only {n_tensors} tensors (each block needs at least 9)",
                key("block_count")
            )));
        }
        if n_ff == 0 {
            return Err(Error::model(format!("{} is 0", key("feed_forward_length"))));
        }
        if n_head == 0 {
            return Err(Error::model(format!(
                "{} is 0",
                key("attention.head_count")
            )));
        }
        let head_dim_from = |suffix: &str| -> Result<usize> {
            match meta_u32(file, &key(suffix))? {
                Some(0) => Err(Error::model(format!("{} is 0", key(suffix)))),
                Some(v) => Ok(v as usize),
                None if n_embd % n_head == 0 => Ok(n_embd / n_head),
                None => Err(Error::model(format!(
                    "{} = {n_head} does not divide {} = {n_embd}",
                    key("attention.head_count"),
                    key("embedding_length")
                ))),
            }
        };
        let head_dim = head_dim_from("attention.key_length")?;
        let head_dim_v = head_dim_from("attention.value_length")?;
        if head_dim != head_dim_v {
            return Err(Error::unsupported(format!(
                "key head size {head_dim} differs from value head size {head_dim_v}"
            )));
        }
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::model(format!(
                "{} = {n_head_kv} must be at least 1 and divide {} = {n_head}",
                key("attention.head_count_kv"),
                key("attention.head_count")
            )));
        }

        let rms_eps =
            meta_f32(file, &key("attention.layer_norm_rms_epsilon"))?.ok_or_else(|| {
                Error::model(format!(
                    "metadata '{}' is missing",
                    key("attention.layer_norm_rms_epsilon")
                ))
            })?;
        if !(rms_eps.is_finite() && rms_eps > 0.0) {
            return Err(Error::model(format!(
                "{} = {rms_eps} must be a positive number",
                key("attention.layer_norm_rms_epsilon")
            )));
        }

        let rope_freq_base = meta_f32(file, &key("rope.freq_base"))?.unwrap_or(10000.0);
        if !(rope_freq_base.is_finite() && rope_freq_base > 0.0) {
            return Err(Error::model(format!(
                "{} = {rope_freq_base} must be a positive number",
                key("rope.freq_base")
            )));
        }
        let rope_freq_scale = rope_scale(file, arch_name)?;

        let n_rot = meta_u32(file, &key("rope.dimension_count"))?.map_or(head_dim, |v| v as usize);
        if arch.requires_full_rope() && n_rot != head_dim {
            return Err(Error::model(format!(
                "{} = {n_rot} must equal the head size {head_dim} for {arch_name}",
                key("rope.dimension_count")
            )));
        }
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::model(format!(
                "{} = {n_rot} must be even and at most the head size {head_dim}",
                key("rope.dimension_count")
            )));
        }

        let attention_scale = match meta_f32(file, &key("attention.scale"))? {
            Some(s) if s != 0.0 => {
                if !s.is_finite() {
                    return Err(Error::model(format!(
                        "{} = {s} is not finite",
                        key("attention.scale")
                    )));
                }
                s
            }
            _ => 1.0 / (head_dim as f32).sqrt(),
        };

        let n_vocab = vocab_size(file, arch_name)?;

        Ok(ModelConfig {
            arch,
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ff,
            rms_eps,
            rope_freq_base,
            rope_freq_scale,
            n_rot,
            rope_style: arch.rope_style(),
            activation: arch.activation(),
            sub_norms: arch.has_sub_norms(),
            attention_scale,
        })
    }
}

/// Reads `key` as an f32 (any numeric type), `None` when absent.
pub fn meta_f32(file: &GgufFile, key: &str) -> Result<Option<f32>> {
    match file.get(key) {
        None => Ok(None),
        Some(Value::F32(v)) => Ok(Some(*v)),
        Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| {
            Error::model(format!(
                "metadata '{key}' should be a number, found {}",
                v.display_short(4)
            ))
        }),
    }
}

/// Reads a count that llama.cpp accepts either as one number or as one number per layer
/// (`get_key_or_arr`). Per-layer arrays must hold one value repeated: we do not run
/// models whose layers differ in shape.
fn per_layer_u32(file: &GgufFile, key: &str, required: bool) -> Result<Option<usize>> {
    match file.get(key) {
        None if required => Err(Error::model(format!("metadata '{key}' is missing"))),
        None => Ok(None),
        Some(Value::Array(a)) => {
            let values = a.to_i64_vec().filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::model(format!(
                    "metadata '{key}' should be a non-empty integer array"
                ))
            })?;
            let first = values[0];
            if values.iter().any(|&v| v != first) {
                return Err(Error::unsupported(format!(
                    "metadata '{key}' differs between layers ({}); only uniform layers are supported",
                    Value::Array(a.clone()).display_short(8)
                )));
            }
            u32::try_from(first)
                .map(|v| Some(v as usize))
                .map_err(|_| Error::model(format!("metadata '{key}' holds {first}, not a u32")))
        }
        Some(_) => Ok(meta_u32(file, key)?.map(|v| v as usize)),
    }
}

/// The RoPE position scale: 1 / `rope.scaling.factor` for linear scaling (or none).
fn rope_scale(file: &GgufFile, arch: &str) -> Result<f32> {
    let kind_key = format!("{arch}.rope.scaling.type");
    if let Some(kind) = meta_str(file, &kind_key)? {
        if kind != "linear" && kind != "none" {
            return Err(Error::unsupported(format!(
                "{kind_key} = '{kind}': only linear RoPE scaling is supported"
            )));
        }
    }
    let factor_key = format!("{arch}.rope.scaling.factor");
    let factor = match meta_f32(file, &factor_key)? {
        Some(f) => Some(f),
        None => meta_f32(file, &format!("{arch}.rope.scale_linear"))?,
    };
    match factor {
        None => Ok(1.0),
        Some(0.0) => Ok(1.0),
        Some(f) if f.is_finite() && f > 0.0 => Ok(1.0 / f),
        Some(f) => Err(Error::model(format!(
            "{factor_key} = {f} must be a positive number"
        ))),
    }
}

/// The vocabulary size: `{arch}.vocab_size`, else the tokenizer's token count (both must
/// agree when both are present), else the embedding's row count. The embedding is
/// checked against it when the weights load.
fn vocab_size(file: &GgufFile, arch: &str) -> Result<usize> {
    let key = format!("{arch}.vocab_size");
    let from_key = meta_u32(file, &key)?.map(|v| v as usize);
    let from_tokens = match file.get("tokenizer.ggml.tokens") {
        None => None,
        Some(Value::Array(a @ Array::String(_))) => Some(a.len()),
        Some(_) => {
            return Err(Error::model(
                "metadata 'tokenizer.ggml.tokens' should be an array of strings",
            ))
        }
    };
    match (from_key, from_tokens) {
        (Some(a), Some(b)) if a != b => Err(Error::model(format!(
            "{key} = {a} but tokenizer.ggml.tokens holds {b} tokens"
        ))),
        (Some(0), _) | (None, Some(0)) => Err(Error::model(format!("{key} is 0"))),
        (Some(n), _) | (None, Some(n)) => Ok(n),
        // Neither says: the embedding's row count decides (checked again with the weights).
        (None, None) => file
            .tensor("token_embd.weight")
            .and_then(|t| t.info.dims.get(1).copied())
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Error::model(format!(
                    "the vocabulary size is unknown: none of '{key}', 'tokenizer.ggml.tokens' \
                     and a 2-D 'token_embd.weight' is present"
                ))
            }),
    }
}
