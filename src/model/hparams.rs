//! Model hyper-parameters read from GGUF metadata (`{arch}.embedding_length`, ...).
//!
//! This is the lenient reading used to describe a file (vocab-only files have no
//! layers); the forward pass validates what it needs against the tensors.

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, Value};

/// What the metadata says about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if present.
    pub name: Option<String>,
    /// Vocabulary size (tokenizer tokens, else `{arch}.vocab_size`, else embedding rows).
    pub n_vocab: u32,
    /// `{arch}.context_length` (0 when absent).
    pub n_ctx_train: u32,
    /// `{arch}.embedding_length` (0 when absent).
    pub n_embd: u32,
    /// `{arch}.block_count` (0 when absent).
    pub n_layer: u32,
    /// `{arch}.attention.head_count` (0 when absent).
    pub n_head: u32,
    /// `{arch}.attention.head_count_kv` (defaults to `n_head`).
    pub n_head_kv: u32,
    /// `{arch}.feed_forward_length` (0 when absent).
    pub n_ff: u32,
}

/// Reads `key` as a u32, or `None` when absent; an error when present but not a u32.
pub fn meta_u32(file: &GgufFile, key: &str) -> Result<Option<u32>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::model(format!(
                    "metadata '{key}' should be an unsigned 32-bit integer, found {}",
                    v.display_short(4)
                ))
            }),
    }
}

/// Reads `key` as text, or `None` when absent; an error when present but not UTF-8 text.
pub fn meta_str<'a>(file: &'a GgufFile, key: &str) -> Result<Option<&'a str>> {
    match file.get(key) {
        None => Ok(None),
        Some(v @ Value::String(_)) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| Error::model(format!("metadata '{key}' is not valid UTF-8"))),
        Some(v) => Err(Error::model(format!(
            "metadata '{key}' should be a string, found {}",
            v.value_type().name()
        ))),
    }
}

impl ModelInfo {
    /// Reads the hyper-parameters present in `file`. Only `general.architecture` is
    /// required; absent numbers are 0.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelInfo> {
        let architecture = meta_str(file, "general.architecture")?
            .ok_or_else(|| Error::model("metadata 'general.architecture' is missing"))?
            .to_string();
        let arch_u32 = |suffix: &str| -> Result<u32> {
            Ok(meta_u32(file, &format!("{architecture}.{suffix}"))?.unwrap_or(0))
        };
        // Counts llama.cpp also accepts per layer (an array): the first layer's value.
        let per_layer = |suffix: &str| -> Result<Option<u32>> {
            let key = format!("{architecture}.{suffix}");
            match file.get(&key) {
                Some(Value::Array(a)) => a
                    .get(0)
                    .and_then(|v| v.as_u64())
                    .and_then(|v| u32::try_from(v).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        Error::model(format!(
                            "metadata '{key}' should hold unsigned 32-bit integers"
                        ))
                    }),
                _ => meta_u32(file, &key),
            }
        };
        let n_head = per_layer("attention.head_count")?.unwrap_or(0);
        let n_head_kv = match per_layer("attention.head_count_kv")? {
            Some(v) => v,
            None => n_head,
        };
        let n_vocab = match file.get("tokenizer.ggml.tokens").and_then(Value::as_array) {
            Some(tokens) => u32::try_from(tokens.len())
                .map_err(|_| Error::model("tokenizer.ggml.tokens has more than 2^32 entries"))?,
            None => match meta_u32(file, &format!("{architecture}.vocab_size"))? {
                Some(v) => v,
                None => file
                    .tensor("token_embd.weight")
                    .and_then(|t| t.info.dims.get(1).copied())
                    .and_then(|d| u32::try_from(d).ok())
                    .unwrap_or(0),
            },
        };
        Ok(ModelInfo {
            name: meta_str(file, "general.name")?.map(str::to_string),
            n_vocab,
            n_ctx_train: arch_u32("context_length")?,
            n_embd: arch_u32("embedding_length")?,
            n_layer: arch_u32("block_count")?,
            n_head,
            n_head_kv,
            n_ff: per_layer("feed_forward_length")?.unwrap_or(0),
            architecture,
        })
    }
}
