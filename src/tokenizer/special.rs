//! Special tokens: BOS/EOS/EOT/... ids from metadata, the end-of-generation set, whether
//! BOS/EOS are added, and the attribute fix-ups llama.cpp applies by token text.
//!
//! llama.cpp finds several special tokens by their text when the metadata does not name
//! them (`<|eot_id|>` is the end-of-turn token, `<|eom_id|>` end-of-message, ...), marks
//! such tokens as control tokens, and builds the end-of-generation set from a list of
//! known texts. tern does the same, in a fixed order (the first text of each list that is
//! in the vocabulary wins), so the result does not depend on hash order.

use std::collections::{BTreeSet, HashMap};

use super::attr::{TokenAttr, VocabKind};
use super::pretok::PreTokenizerSpec;
use super::vocab::{bool_key, str_key};
use crate::error::{Error, Result};
use crate::gguf::GgufFile;

/// Special token ids and the flags that go with them.
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// End of turn (chat).
    pub eot: Option<u32>,
    /// End of message (Llama 3.1 tool calls).
    pub eom: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Separator.
    pub sep: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Mask.
    pub mask: Option<u32>,
    /// Fill-in-the-middle: prefix, suffix, middle, pad, repository, file separator.
    pub fim: [Option<u32>; 6],
    /// BOS is put in front of tokenized text when the caller adds special tokens.
    pub add_bos: bool,
    /// EOS is put after tokenized text when the caller adds special tokens.
    pub add_eos: bool,
    /// Tokens that end generation.
    pub eog: BTreeSet<u32>,
    /// Tokens matched in raw text before tokenizing (control, user-defined, unknown),
    /// longest text first.
    pub split_order: Vec<u32>,
}

const FIM_KEYS: [(&str, &str); 6] = [
    (
        "tokenizer.ggml.fim_pre_token_id",
        "tokenizer.ggml.prefix_token_id",
    ),
    (
        "tokenizer.ggml.fim_suf_token_id",
        "tokenizer.ggml.suffix_token_id",
    ),
    (
        "tokenizer.ggml.fim_mid_token_id",
        "tokenizer.ggml.middle_token_id",
    ),
    ("tokenizer.ggml.fim_pad_token_id", ""),
    ("tokenizer.ggml.fim_rep_token_id", ""),
    ("tokenizer.ggml.fim_sep_token_id", ""),
];

/// Texts that mark an end-of-turn token, in order of preference.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_TEXTS: [&[&str]; 6] = [
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &[
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
    ],
    &["<|file_sep|>"],
];
/// Texts of tokens that end generation.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<｜end▁of▁sentence｜>",
];

/// Reads an id key. Absent or negative: `None`. Past the vocabulary: an error.
fn id_key(file: &GgufFile, key: &str, n_vocab: usize) -> Result<Option<Option<u32>>> {
    let Some(v) = file.get(key) else {
        return Ok(None);
    };
    let id = v.as_i64().ok_or_else(|| {
        Error::Tokenizer(format!(
            "'{key}' should be an integer token id, found {}",
            v.value_type().name()
        ))
    })?;
    if id < 0 {
        return Ok(Some(None));
    }
    if id as u64 >= n_vocab as u64 {
        return Err(Error::Tokenizer(format!(
            "'{key}' = {id} points past the vocabulary ({n_vocab} tokens)"
        )));
    }
    Ok(Some(Some(id as u32)))
}

impl SpecialTokens {
    /// Reads the special tokens of `file` and adjusts `attrs` as llama.cpp does.
    pub fn from_gguf(
        file: &GgufFile,
        kind: VocabKind,
        pre: Option<&PreTokenizerSpec>,
        texts: &[Vec<u8>],
        ids: &HashMap<Vec<u8>, u32>,
        attrs: &mut [TokenAttr],
    ) -> Result<SpecialTokens> {
        let n = texts.len();
        let in_range = |id: u32| (id as usize) < n;
        let mut s = SpecialTokens::default();
        // llama.cpp's defaults, dropped when they fall outside the vocabulary.
        match kind {
            VocabKind::Spm => {
                s.bos = Some(1).filter(|&i| in_range(i));
                s.eos = Some(2).filter(|&i| in_range(i));
                s.unk = Some(0).filter(|&i| in_range(i));
                s.add_bos = true;
            }
            VocabKind::Bpe => {
                let no_bos = pre.is_some_and(|p| p.no_bos);
                s.bos = Some(11).filter(|&i| in_range(i) && !no_bos);
                s.eos = Some(11).filter(|&i| in_range(i));
                s.add_bos = pre.is_some_and(|p| p.add_bos);
            }
        }

        let slots: [(&str, &mut Option<u32>); 8] = [
            ("tokenizer.ggml.bos_token_id", &mut s.bos),
            ("tokenizer.ggml.eos_token_id", &mut s.eos),
            ("tokenizer.ggml.eot_token_id", &mut s.eot),
            ("tokenizer.ggml.eom_token_id", &mut s.eom),
            ("tokenizer.ggml.unknown_token_id", &mut s.unk),
            ("tokenizer.ggml.seperator_token_id", &mut s.sep),
            ("tokenizer.ggml.padding_token_id", &mut s.pad),
            ("tokenizer.ggml.mask_token_id", &mut s.mask),
        ];
        for (key, slot) in slots {
            if let Some(v) = id_key(file, key, n)? {
                *slot = v;
            }
        }
        for (i, (key, old_key)) in FIM_KEYS.iter().enumerate() {
            for k in [old_key, key] {
                if !k.is_empty() {
                    if let Some(v) = id_key(file, k, n)? {
                        s.fim[i] = v;
                    }
                }
            }
        }

        if let Some(v) = bool_key(file, "tokenizer.ggml.add_bos_token")? {
            s.add_bos = v;
        }
        if let Some(v) = bool_key(file, "tokenizer.ggml.add_eos_token")? {
            s.add_eos = v;
        }
        if s.add_bos && s.bos.is_none() {
            return Err(Error::Tokenizer(
                "tokenizer.ggml.add_bos_token is true but there is no BOS token".into(),
            ));
        }
        if s.add_eos && s.eos.is_none() {
            return Err(Error::Tokenizer(
                "tokenizer.ggml.add_eos_token is true but there is no EOS token".into(),
            ));
        }

        s.detect_by_text(ids, attrs);
        s.build_eog(ids, attrs);
        apply_model_name_rules(file, texts, ids, attrs)?;
        s.split_order = split_order(texts, attrs);
        Ok(s)
    }

    /// Finds EOT, EOM and FIM tokens by their text when the metadata does not name them;
    /// marks unused control tokens.
    fn detect_by_text(&mut self, ids: &HashMap<Vec<u8>, u32>, attrs: &mut [TokenAttr]) {
        let mut find = |slot: &mut Option<u32>, texts: &[&str]| {
            if slot.is_some() {
                return;
            }
            if let Some(&id) = texts.iter().find_map(|t| ids.get(t.as_bytes())) {
                *slot = Some(id);
                attrs[id as usize] = attrs[id as usize].with(TokenAttr::CONTROL);
            }
        };
        find(&mut self.eot, EOT_TEXTS);
        find(&mut self.eom, EOM_TEXTS);
        for (slot, texts) in self.fim.iter_mut().zip(FIM_TEXTS) {
            find(slot, texts);
        }
    }

    fn build_eog(&mut self, ids: &HashMap<Vec<u8>, u32>, attrs: &mut [TokenAttr]) {
        let mut eog = BTreeSet::new();
        eog.extend(self.fim[3..].iter().flatten());
        for t in EOG_TEXTS {
            if let Some(&id) = ids.get(t.as_bytes()) {
                eog.insert(id);
                attrs[id as usize] = attrs[id as usize].with(TokenAttr::CONTROL);
            }
        }
        eog.extend([self.eos, self.eot, self.eom].into_iter().flatten());
        self.eog = eog;
    }
}

/// Marks control tokens named "...unused..." as unused (llama.cpp does this by text).
fn mark_unused(texts: &[Vec<u8>], attrs: &mut [TokenAttr]) {
    for (t, a) in texts.iter().zip(attrs.iter_mut()) {
        if a.has(TokenAttr::CONTROL) && t.windows(6).any(|w| w == b"unused") {
            *a = a.with(TokenAttr::UNUSED);
        }
    }
}

/// Per-model attribute rules llama.cpp keys on `general.name`: Phi-3 strips whitespace
/// to the right of its special tokens (except `<unk>`, `<s>`, `<|endoftext|>`).
fn apply_model_name_rules(
    file: &GgufFile,
    texts: &[Vec<u8>],
    ids: &HashMap<Vec<u8>, u32>,
    attrs: &mut [TokenAttr],
) -> Result<()> {
    mark_unused(texts, attrs);
    let name = str_key(file, "general.name")?
        .unwrap_or("")
        .to_ascii_lowercase();
    if name.contains("phi-3") || name.contains("phi3") {
        let special = TokenAttr::CONTROL
            .with(TokenAttr::USER_DEFINED)
            .with(TokenAttr::UNKNOWN);
        for a in attrs.iter_mut().filter(|a| a.has(special)) {
            *a = a.with(TokenAttr::RSTRIP);
        }
        if let Some(&id) = ids.get(b"</s>".as_slice()) {
            attrs[id as usize] = attrs[id as usize].with(TokenAttr::RSTRIP);
        }
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            if let Some(&id) = ids.get(t.as_bytes()) {
                attrs[id as usize] = attrs[id as usize].without(TokenAttr::RSTRIP);
            }
        }
    }
    Ok(())
}

/// The tokens split out of raw text, longest text first (ties: lower id first).
fn split_order(texts: &[Vec<u8>], attrs: &[TokenAttr]) -> Vec<u32> {
    let special = TokenAttr::CONTROL
        .with(TokenAttr::USER_DEFINED)
        .with(TokenAttr::UNKNOWN);
    let mut order: Vec<u32> = (0..texts.len() as u32)
        .filter(|&i| attrs[i as usize].has(special))
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i as usize].len()));
    order
}
