//! Reading and validating the vocabulary from GGUF metadata: `tokenizer.ggml.model`,
//! `.tokens`, `.scores`, `.token_type`, `.merges` and the tokenizer flags.
//!
//! Everything is checked before use: array types and lengths, duplicate tokens, merges
//! that name tokens outside the vocabulary, byte tokens that are not `<0xHH>`. Problems
//! are errors that name the key and the index.

use std::collections::HashMap;

use super::attr::{TokenAttr, VocabKind};
use super::pretok::{self, PreTokenizerSpec};
use super::special::SpecialTokens;
use crate::error::{Error, Result};
use crate::gguf::{Array, GgufFile, Value};

/// GGUF key of the tokenizer type.
pub const KEY_MODEL: &str = "tokenizer.ggml.model";
/// GGUF key of the BPE pre-tokenizer type.
pub const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// A vocabulary read from a GGUF file, validated.
#[derive(Debug)]
pub struct Vocab {
    /// The tokenizer algorithm.
    pub kind: VocabKind,
    /// The BPE pre-tokenizer (None for SentencePiece).
    pub pre: Option<PreTokenizerSpec>,
    /// Token texts as stored (bytes: GGUF does not promise UTF-8).
    pub texts: Vec<Vec<u8>>,
    /// Token scores (SentencePiece merge priorities; 0 where absent).
    pub scores: Vec<f32>,
    /// Token attributes (from `token_type`, then adjusted as llama.cpp adjusts them).
    pub attrs: Vec<TokenAttr>,
    /// Text -> id.
    pub ids: HashMap<Vec<u8>, u32>,
    /// BPE merges in rank order (first occurrence of each pair kept), as token texts.
    pub merges: Vec<(String, String)>,
    /// Special token ids, end-of-generation set, add-BOS/EOS flags.
    pub special: SpecialTokens,
    /// SentencePiece: a space is put in front of text (`add_space_prefix`).
    pub add_space_prefix: bool,
    /// Detokenized text gets llama.cpp's space clean-up.
    pub clean_spaces: bool,
    /// `tokenizer.chat_template`, if present.
    pub chat_template: Option<String>,
}

impl Vocab {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True if the vocabulary has no token (never for a loaded vocabulary).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The id of the token whose text is exactly `text`.
    pub fn id_of(&self, text: &[u8]) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// Reads and validates the vocabulary of `file`. Fails if `tokenizer.ggml.model` is
    /// absent; see [`Vocab::from_gguf_if_present`].
    pub fn from_gguf(file: &GgufFile) -> Result<Vocab> {
        let model = str_key(file, KEY_MODEL)?
            .ok_or_else(|| Error::NotFound(format!("the file has no '{KEY_MODEL}' key")))?;
        let kind = match model {
            "gpt2" => VocabKind::Bpe,
            "llama" => VocabKind::Spm,
            other => {
                return Err(Error::unsupported(format!(
                    "{KEY_MODEL} = '{other}' is not supported (tern handles 'gpt2' byte-level \
                     BPE and 'llama' SentencePiece)"
                )))
            }
        };
        let pre = match kind {
            VocabKind::Bpe => Some(pretok::lookup(str_key(file, KEY_PRE)?)?),
            VocabKind::Spm => None,
        };

        let texts = read_tokens(file)?;
        let n = texts.len();
        let scores = read_scores(file, n)?;
        let mut attrs = read_token_types(file, n)?;
        let ids = index_tokens(&texts)?;
        if kind == VocabKind::Spm {
            check_byte_tokens(&texts, &attrs)?;
        }
        let merges = match kind {
            VocabKind::Bpe => read_merges(file, &ids)?,
            VocabKind::Spm => Vec::new(),
        };

        let add_space_prefix = match bool_key(file, KEY_ADD_SPACE_PREFIX)? {
            Some(v) => v,
            None => kind == VocabKind::Spm,
        };
        let clean_spaces = pre.as_ref().is_some_and(|p| p.clean_spaces);
        let special = SpecialTokens::from_gguf(file, kind, pre.as_ref(), &texts, &ids, &mut attrs)?;
        let chat_template = str_key(file, KEY_CHAT_TEMPLATE)?.map(str::to_string);

        Ok(Vocab {
            kind,
            pre,
            texts,
            scores,
            attrs,
            ids,
            merges,
            special,
            add_space_prefix,
            clean_spaces,
            chat_template,
        })
    }

    /// As [`Vocab::from_gguf`], but `Ok(None)` when the file has no tokenizer at all:
    /// no `tokenizer.ggml.model` key, or the value `none` / `no_vocab` that converters
    /// write for models without a vocabulary.
    pub fn from_gguf_if_present(file: &GgufFile) -> Result<Option<Vocab>> {
        match str_key(file, KEY_MODEL)? {
            None | Some("none") | Some("no_vocab") => Ok(None),
            Some(_) => Vocab::from_gguf(file).map(Some),
        }
    }
}

/// Reads `key` as UTF-8 text; `None` when absent.
pub(crate) fn str_key<'a>(file: &'a GgufFile, key: &str) -> Result<Option<&'a str>> {
    match file.get(key) {
        None => Ok(None),
        Some(v @ Value::String(_)) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| Error::Tokenizer(format!("'{key}' is not valid UTF-8"))),
        Some(v) => Err(Error::Tokenizer(format!(
            "'{key}' should be a string, found {}",
            v.value_type().name()
        ))),
    }
}

/// Reads `key` as a bool; `None` when absent.
pub(crate) fn bool_key(file: &GgufFile, key: &str) -> Result<Option<bool>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| {
            Error::Tokenizer(format!(
                "'{key}' should be a bool, found {}",
                v.value_type().name()
            ))
        }),
    }
}

fn array_key<'a>(file: &'a GgufFile, key: &str) -> Result<Option<&'a Array>> {
    match file.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(Error::Tokenizer(format!(
            "'{key}' should be an array, found {}",
            v.value_type().name()
        ))),
    }
}

fn check_len(key: &str, found: usize, n_tokens: usize) -> Result<()> {
    if found != n_tokens {
        return Err(Error::Tokenizer(format!(
            "'{key}' has {found} entries but '{KEY_TOKENS}' has {n_tokens}: the token arrays \
             must have the same length"
        )));
    }
    Ok(())
}

fn read_tokens(file: &GgufFile) -> Result<Vec<Vec<u8>>> {
    let arr = array_key(file, KEY_TOKENS)?
        .ok_or_else(|| Error::Tokenizer(format!("the vocabulary '{KEY_TOKENS}' is missing")))?;
    let strings = arr.as_strings().ok_or_else(|| {
        Error::Tokenizer(format!(
            "'{KEY_TOKENS}' should be an array of strings, found an array of {}",
            arr.elem_type().name()
        ))
    })?;
    if strings.is_empty() {
        return Err(Error::Tokenizer(format!("'{KEY_TOKENS}' is empty")));
    }
    if strings.len() > i32::MAX as usize {
        return Err(Error::Tokenizer(format!(
            "'{KEY_TOKENS}' has {} entries, more than token ids can number",
            strings.len()
        )));
    }
    // An empty token can never be produced or matched; llama.cpp renames it the same way.
    Ok(strings
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.is_empty() {
                format!("[EMPTY_{i}]").into_bytes()
            } else {
                t.clone()
            }
        })
        .collect())
}

fn read_scores(file: &GgufFile, n: usize) -> Result<Vec<f32>> {
    let Some(arr) = array_key(file, KEY_SCORES)? else {
        return Ok(vec![0.0; n]);
    };
    let scores = match arr {
        Array::F32(v) => v.clone(),
        Array::I32(v) => v.iter().map(|&x| x as f32).collect(),
        other => {
            return Err(Error::Tokenizer(format!(
                "'{KEY_SCORES}' should be an array of FLOAT32 (or INT32), found {}",
                other.elem_type().name()
            )))
        }
    };
    check_len(KEY_SCORES, scores.len(), n)?;
    Ok(scores)
}

fn read_token_types(file: &GgufFile, n: usize) -> Result<Vec<TokenAttr>> {
    let Some(arr) = array_key(file, KEY_TOKEN_TYPE)? else {
        return Ok(vec![TokenAttr::NORMAL; n]);
    };
    let Array::I32(types) = arr else {
        return Err(Error::Tokenizer(format!(
            "'{KEY_TOKEN_TYPE}' should be an array of INT32, found {}",
            arr.elem_type().name()
        )));
    };
    check_len(KEY_TOKEN_TYPE, types.len(), n)?;
    Ok(types
        .iter()
        .map(|&t| TokenAttr::from_token_type(t))
        .collect())
}

fn index_tokens(texts: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, u32>> {
    let mut ids = HashMap::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        if let Some(prev) = ids.insert(t.clone(), i as u32) {
            return Err(Error::Tokenizer(format!(
                "duplicate token in '{KEY_TOKENS}': '{}' has ids {prev} and {i}",
                String::from_utf8_lossy(t)
            )));
        }
    }
    Ok(ids)
}

/// The byte a SentencePiece byte token `<0xHH>` stands for.
pub fn parse_byte_token(text: &[u8]) -> Option<u8> {
    let hex = text.strip_prefix(b"<0x")?.strip_suffix(b">")?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

fn check_byte_tokens(texts: &[Vec<u8>], attrs: &[TokenAttr]) -> Result<()> {
    for (i, (t, a)) in texts.iter().zip(attrs).enumerate() {
        if a.has(TokenAttr::BYTE) && parse_byte_token(t).is_none() {
            return Err(Error::Tokenizer(format!(
                "token {i} '{}' has token_type BYTE but is not of the form <0xHH>",
                String::from_utf8_lossy(t)
            )));
        }
    }
    Ok(())
}

fn read_merges(file: &GgufFile, ids: &HashMap<Vec<u8>, u32>) -> Result<Vec<(String, String)>> {
    let arr = array_key(file, KEY_MERGES)?.ok_or_else(|| {
        Error::Tokenizer(format!(
            "'{KEY_MERGES}' is missing (a 'gpt2' BPE vocabulary needs its merges)"
        ))
    })?;
    let strings = arr.as_strings().ok_or_else(|| {
        Error::Tokenizer(format!(
            "'{KEY_MERGES}' should be an array of strings, found an array of {}",
            arr.elem_type().name()
        ))
    })?;
    let mut seen = std::collections::HashSet::with_capacity(strings.len());
    let mut merges = Vec::with_capacity(strings.len());
    let mut joined = Vec::new();
    for (i, m) in strings.iter().enumerate() {
        let bad = |why: String| {
            Error::Tokenizer(format!(
                "'{KEY_MERGES}'[{i}] = '{}': {why}",
                String::from_utf8_lossy(m)
            ))
        };
        // The separator is the first space after the first byte (a token may be a space).
        let sep = m
            .iter()
            .skip(1)
            .position(|&b| b == b' ')
            .map(|p| p + 1)
            .ok_or_else(|| bad("no space separates the two tokens".into()))?;
        let (left, right) = (&m[..sep], &m[sep + 1..]);
        if right.is_empty() {
            return Err(bad("the right token is empty".into()));
        }
        let id_of = |part: &[u8]| {
            ids.get(part).copied().ok_or_else(|| {
                bad(format!(
                    "'{}' is not in the vocabulary",
                    String::from_utf8_lossy(part)
                ))
            })
        };
        let pair = (id_of(left)?, id_of(right)?);
        joined.clear();
        joined.extend_from_slice(left);
        joined.extend_from_slice(right);
        if !ids.contains_key(&joined) {
            return Err(bad(format!(
                "the merged token '{}' is not in the vocabulary",
                String::from_utf8_lossy(&joined)
            )));
        }
        // llama.cpp keeps the first rank of a pair listed twice.
        if !seen.insert(pair) {
            continue;
        }
        let (Ok(l), Ok(r)) = (std::str::from_utf8(left), std::str::from_utf8(right)) else {
            return Err(bad("not valid UTF-8".into()));
        };
        merges.push((l.to_string(), r.to_string()));
    }
    Ok(merges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token(b"<0x0A>"), Some(10));
        assert_eq!(parse_byte_token(b"<0xff>"), Some(255));
        assert_eq!(parse_byte_token(b"<0x0A"), None);
        assert_eq!(parse_byte_token(b"<0x1234>"), None);
        assert_eq!(parse_byte_token(b"<0xZZ>"), None);
    }
}
