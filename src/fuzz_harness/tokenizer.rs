//! Tokenizer targets: a vocabulary built from fuzzed metadata (kind, pre-tokenizer,
//! tokens, types, scores, merges, special ids, flags), or a reference vocabulary; then
//! arbitrary bytes are tokenized, and the ids (and arbitrary ids) detokenized.

use std::sync::OnceLock;

use crate::gguf::{Array, GgufFile, GgufWriter, Value};
use crate::tokenizer::Tokenizer;

const PRES: &[&str] = &[
    "default",
    "llama3",
    "llama-bpe",
    "gpt2",
    "falcon",
    "qwen2",
    "tekken",
    "bloom",
    "unknown",
];

/// Reference vocabularies (SentencePiece and BPE), read in place.
const REFERENCES: [&str; 4] = [
    "tokenizer/ggml-vocab-llama-spm.gguf",
    "tokenizer/ggml-vocab-llama-bpe.gguf",
    "tokenizer/ggml-vocab-phi-3.gguf",
    "tokenizer/ggml-vocab-falcon.gguf",
];

/// Reference vocabulary `i`, loaded on first use (`None` when the folder is absent).
fn reference(i: usize) -> Option<&'static Tokenizer> {
    static REFS: [OnceLock<Option<Tokenizer>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    REFS[i]
        .get_or_init(|| {
            let file = GgufFile::open(super::reference_dir().join(REFERENCES[i])).ok()?;
            Tokenizer::from_gguf(&file).ok()
        })
        .as_ref()
}

/// Builds a vocabulary file from `spec`: lines separated by `\n`, the first byte of each
/// line its kind (0xFD: a merge, else a token whose type is that byte % 8), the rest its
/// text.
fn synthetic(flags: &[u8], spec: &[u8]) -> Option<Tokenizer> {
    let [kind, pre, bos, eos, bits, ..] = *flags else {
        return None;
    };
    let mut tokens = Vec::new();
    let mut types = Vec::new();
    let mut merges = Vec::new();
    for line in spec.split(|&b| b == b'\n').take(512) {
        let Some((&head, text)) = line.split_first() else {
            continue;
        };
        if head == 0xFD {
            merges.push(text.to_vec());
        } else {
            tokens.push(text.to_vec());
            types.push(i32::from(head % 8));
        }
    }
    let mut w = GgufWriter::new();
    let model = ["llama", "gpt2", "bert", "none", "t5"][kind as usize % 5];
    w.set("tokenizer.ggml.model", Value::string(model));
    if pre as usize % (PRES.len() + 1) < PRES.len() {
        w.set(
            "tokenizer.ggml.pre",
            Value::string(PRES[pre as usize % (PRES.len() + 1)]),
        );
    }
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    w.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    if bits & 1 != 0 {
        w.set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    }
    if bits & 2 != 0 {
        w.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    }
    if bits & 4 != 0 || kind % 5 == 1 {
        w.set("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
    }
    if bits & 8 != 0 {
        w.set("tokenizer.ggml.bos_token_id", Value::U32(u32::from(bos)));
    }
    if bits & 16 != 0 {
        w.set("tokenizer.ggml.eos_token_id", Value::U32(u32::from(eos)));
    }
    w.set("tokenizer.ggml.add_bos_token", Value::Bool(bits & 32 != 0));
    w.set("tokenizer.ggml.add_eos_token", Value::Bool(bits & 64 != 0));
    w.set(
        "tokenizer.ggml.add_space_prefix",
        Value::Bool(bits & 128 != 0),
    );
    let mut out = Vec::new();
    w.begin(&mut out).ok()?.finish().ok()?;
    let file = GgufFile::from_bytes(out).ok()?;
    Tokenizer::from_gguf(&file).ok()
}

/// Tokenizes `text` four ways, detokenizes what comes out, then detokenizes ids read
/// from the text itself (in or out of range) and streams them.
fn exercise(tok: &Tokenizer, text: &[u8]) {
    let n = tok.n_vocab();
    for (add, parse) in [(false, false), (true, true), (true, false), (false, true)] {
        let Ok(ids) = tok.tokenize_bytes(text, add, parse) else {
            continue;
        };
        assert!(
            ids.iter().all(|&id| (id as usize) < n),
            "an id out of the vocabulary of {n}: {ids:?}"
        );
        for (remove, unparse) in [(false, false), (true, true)] {
            tok.detokenize_bytes(&ids, remove, unparse)
                .expect("ids from tokenize detokenize");
        }
    }
    let ids: Vec<u32> = text
        .chunks(2)
        .map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8)
        .map(|v| v % (n as u32 + 2))
        .collect();
    let _ = tok.detokenize_bytes(&ids, true, false);
    let mut stream = tok.stream(true);
    for &id in &ids {
        let _ = stream.push(id);
        let _ = tok.token_to_piece(id, false);
        let _ = tok.is_eog(id);
    }
    let _ = stream.finish();
}

/// Byte 0 < 0x80: a synthetic vocabulary from the next 5 flag bytes and the spec up to the
/// first 0xFF 0xFF; the text follows. Else a reference vocabulary, and the rest is text.
pub fn tokenizer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode >= 0x80 {
        if let Some(tok) = reference(mode as usize % REFERENCES.len()) {
            exercise(tok, rest);
            return;
        }
    }
    if rest.len() < 5 {
        return;
    }
    let (flags, rest) = rest.split_at(5);
    let split = rest
        .windows(2)
        .position(|w| w == [0xFF, 0xFF])
        .unwrap_or(rest.len());
    let (spec, text) = (&rest[..split], rest.get(split + 2..).unwrap_or(&[]));
    if let Some(tok) = synthetic(flags, spec) {
        exercise(&tok, text);
    }
}
