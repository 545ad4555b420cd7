//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): pre-tokenize with the regexes of the
//! `pre` type, map each byte to its GPT-2 "byte-level" character, and merge with the
//! `tokenizers` crate's BPE model (which also implements `ignore_merges`).
//!
//! Text that is not valid UTF-8 is first made valid the way llama.cpp does it: every byte
//! that does not start a valid UTF-8 sequence becomes U+FFFD.

use std::collections::HashMap;

use tokenizers::models::bpe::{Vocab as BpeVocab, BPE};
use tokenizers::Model;

use super::pretok::PreTokenizer;
use super::vocab::Vocab;
use crate::error::{Error, Result};

/// GPT-2's byte -> character table: printable Latin-1 bytes map to themselves, the others
/// to U+0100 onwards, in byte order.
pub fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).expect("byte-level code points are below U+0200");
    }
    table
}

/// The inverse of [`byte_to_char_table`].
pub fn char_to_byte_map() -> HashMap<char, u8> {
    byte_to_char_table()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// Makes `bytes` valid UTF-8, replacing each byte that does not begin a valid sequence by
/// U+FFFD (llama.cpp's rule; it differs from `String::from_utf8_lossy`, which replaces a
/// whole broken sequence by one U+FFFD).
pub fn utf8_replacing_each_bad_byte(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            let mut rest = bytes;
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let good = e.valid_up_to();
                        // The prefix was just validated.
                        out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                        out.push('\u{FFFD}');
                        rest = &rest[good + 1..];
                    }
                }
            }
            std::borrow::Cow::Owned(out)
        }
    }
}

/// A byte-level BPE tokenizer for one vocabulary.
pub struct BpeTokenizer {
    pre: PreTokenizer,
    model: BPE,
    byte_chars: [char; 256],
}

impl std::fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BpeTokenizer({:?})", self.pre)
    }
}

impl BpeTokenizer {
    /// Builds the tokenizer; the vocabulary's merges were validated when it was read.
    pub fn new(vocab: &Vocab) -> Result<BpeTokenizer> {
        let spec = vocab
            .pre
            .as_ref()
            .ok_or_else(|| Error::Internal("a BPE vocabulary without a pre-tokenizer".into()))?;
        let pre = PreTokenizer::new(spec)?;
        // Tokens that are not UTF-8 can never come out of byte-level text; leave them out.
        let map: BpeVocab = vocab
            .texts
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((String::from_utf8(t.clone()).ok()?, i as u32)))
            .collect();
        let model = BPE::builder()
            .vocab_and_merges(map, vocab.merges.clone())
            .ignore_merges(spec.ignore_merges)
            .build()
            .map_err(|e| Error::Tokenizer(format!("building the BPE model: {e}")))?;
        Ok(BpeTokenizer {
            pre,
            model,
            byte_chars: byte_to_char_table(),
        })
    }

    /// Appends the ids of `text` (a fragment without special tokens) to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let mut word = String::new();
        for (start, end) in self.pre.split(text) {
            word.clear();
            word.extend(
                text[start..end]
                    .bytes()
                    .map(|b| self.byte_chars[b as usize]),
            );
            let tokens = self
                .model
                .tokenize(&word)
                .map_err(|e| Error::Tokenizer(format!("BPE: {e}")))?;
            out.extend(tokens.iter().map(|t| t.id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char_table();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xad], '\u{143}');
        let inv = char_to_byte_map();
        assert_eq!(inv.len(), 256);
        for (b, c) in t.iter().enumerate() {
            assert_eq!(inv[c] as usize, b);
        }
    }

    #[test]
    fn invalid_utf8_bytes_become_replacement_characters() {
        assert_eq!(utf8_replacing_each_bad_byte(b"ok"), "ok");
        assert_eq!(utf8_replacing_each_bad_byte(b"a\xffb"), "a\u{FFFD}b");
        // A truncated 3-byte sequence: each of its bytes is replaced.
        assert_eq!(
            utf8_replacing_each_bad_byte(b"\xe2\x82"),
            "\u{FFFD}\u{FFFD}"
        );
    }
}
