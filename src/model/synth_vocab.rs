//! A small real vocabulary for synthetic models: byte-level BPE (`gpt2` model, `llama-bpe`
//! pre-tokenizer) with the 256 byte tokens, the pieces of a few hundred common English
//! words built by left-to-right merges, `<|begin_of_text|>` / `<|end_of_text|>`, and
//! reserved control tokens up to the model's vocabulary size. Both our tokenizer and
//! llama.cpp's load it, so a synthetic model can be driven with text.

use crate::error::{Error, Result};
use crate::gguf::value::Array;
use crate::gguf::Value;

/// Common English words; each becomes a token (with and without a leading space) when the
/// vocabulary has room, built from its characters by merges.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "about", "some", "time", "them", "into", "only", "than", "out", "then", "first",
    "any", "like", "what", "also", "two", "over", "such", "our", "new", "most", "made", "after",
    "people", "world", "model", "language", "water", "light", "small",
];

const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;

/// GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the others
/// are moved to U+0100 and up in byte order.
pub fn byte_to_char(b: u8) -> char {
    let printable = |c: u8| matches!(c, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let shift = (0..b).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + shift).expect("below U+0200")
}

/// The tokens (as text) and merges of the vocabulary, before padding: byte tokens first,
/// then word pieces in merge order; at most `max_tokens` tokens.
fn pieces(max_tokens: usize) -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_to_char(b).to_string()).collect();
    let mut merges = Vec::new();
    let mut known: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    'words: for word in WORDS {
        for text in [format!(" {word}"), word.to_string()] {
            let chars: Vec<String> = text.bytes().map(|b| byte_to_char(b).to_string()).collect();
            let new_count = (1..chars.len())
                .filter(|&i| !known.contains(&chars[..=i].concat()))
                .count();
            if tokens.len() + new_count > max_tokens {
                break 'words;
            }
            let mut left = chars[0].clone();
            for right in &chars[1..] {
                let joined = format!("{left}{right}");
                if known.insert(joined.clone()) {
                    merges.push(format!("{left} {right}"));
                    tokens.push(joined.clone());
                }
                left = joined;
            }
        }
    }
    (tokens, merges)
}

/// The `tokenizer.ggml.*` metadata of the vocabulary, padded to `n_vocab` tokens.
pub fn vocab_metadata(n_vocab: usize) -> Result<Vec<(String, Value)>> {
    const SPECIALS: [&str; 2] = ["<|begin_of_text|>", "<|end_of_text|>"];
    if n_vocab < 256 + SPECIALS.len() {
        return Err(Error::invalid(format!(
            "a vocabulary of {n_vocab} tokens cannot hold the 256 byte tokens and 2 specials"
        )));
    }
    let (mut tokens, merges) = pieces(n_vocab - SPECIALS.len());
    let mut types = vec![TOKEN_NORMAL; tokens.len()];
    let bos = tokens.len() as u32;
    for s in SPECIALS {
        tokens.push(s.to_string());
        types.push(TOKEN_CONTROL);
    }
    let mut reserved = 0;
    while tokens.len() < n_vocab {
        tokens.push(format!("<|reserved_special_token_{reserved}|>"));
        types.push(TOKEN_CONTROL);
        reserved += 1;
    }
    let strings = |v: Vec<String>| {
        Value::Array(Array::String(
            v.into_iter().map(String::into_bytes).collect(),
        ))
    };
    Ok(vec![
        ("tokenizer.ggml.model".into(), Value::string("gpt2")),
        ("tokenizer.ggml.pre".into(), Value::string("llama-bpe")),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(Array::I32(types)),
        ),
        ("tokenizer.ggml.merges".into(), strings(merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(bos)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(bos + 1)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_gpt2s() {
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(b' '), '\u{120}'); // Ġ
        assert_eq!(byte_to_char(b'\n'), '\u{10A}'); // Ċ
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_to_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn padded_to_size_and_merges_are_closed() {
        let md = vocab_metadata(600).unwrap();
        let get = |k: &str| md.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let Some(Value::Array(Array::String(tokens))) = get("tokenizer.ggml.tokens") else {
            panic!("no tokens")
        };
        assert_eq!(tokens.len(), 600);
        let set: std::collections::HashSet<&[u8]> = tokens.iter().map(Vec::as_slice).collect();
        assert_eq!(set.len(), 600, "tokens are distinct");
        let Some(Value::Array(Array::String(merges))) = get("tokenizer.ggml.merges") else {
            panic!("no merges")
        };
        assert!(merges.len() > 50);
        for m in merges {
            let m = String::from_utf8(m).unwrap();
            let (a, b) = m.split_once(' ').unwrap();
            assert!(set.contains(a.as_bytes()) && set.contains(b.as_bytes()));
            assert!(set.contains(format!("{a}{b}").as_bytes()));
        }
        assert!(vocab_metadata(200).is_err());
    }
}
