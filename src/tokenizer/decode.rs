//! Detokenizing: token -> piece (bytes), ids -> text, and a streaming decoder that only
//! ever emits whole UTF-8 characters.
//!
//! Pieces follow llama.cpp's `llama_token_to_piece`: control and unknown tokens are
//! rendered as their text only when asked; user-defined tokens always are; BPE tokens are
//! mapped back from GPT-2's byte-level characters to bytes; SentencePiece tokens get `▁`
//! turned back into spaces and `<0xHH>` byte tokens into their byte. A piece can be part
//! of a UTF-8 character (a lone byte token), so pieces are bytes, not strings.

use super::attr::{TokenAttr, VocabKind};
use super::bpe::byte_to_char_table;
use super::spm::SPACE_MARKER;
use super::vocab::{parse_byte_token, Vocab};

/// The piece of every token with special tokens rendered (the cache llama.cpp builds).
pub fn build_pieces(vocab: &Vocab) -> Vec<Vec<u8>> {
    // GPT-2's byte-level characters are all below U+0144: a table indexed by code point.
    let mut char_to_byte = [None; 0x144];
    for (b, c) in byte_to_char_table().iter().enumerate() {
        char_to_byte[*c as usize] = Some(b as u8);
    }
    let shown_as_text = TokenAttr::UNKNOWN
        .with(TokenAttr::CONTROL)
        .with(TokenAttr::USER_DEFINED);
    vocab
        .texts
        .iter()
        .zip(&vocab.attrs)
        .map(|(text, &attr)| {
            if attr.has(shown_as_text) {
                text.clone()
            } else if attr.has(TokenAttr::NORMAL) {
                match vocab.kind {
                    VocabKind::Spm => replace_marker(text),
                    VocabKind::Bpe => byte_level_to_bytes(text, &char_to_byte),
                }
            } else if attr.has(TokenAttr::BYTE) {
                parse_byte_token(text).map(|b| vec![b]).unwrap_or_default()
            } else {
                // Unused and undefined tokens render as nothing, as in llama.cpp.
                Vec::new()
            }
        })
        .collect()
}

fn replace_marker(text: &[u8]) -> Vec<u8> {
    let marker = SPACE_MARKER.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(marker) {
            out.push(b' ');
            i += marker.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Maps GPT-2 byte-level characters back to bytes. A character outside the table (a
/// malformed vocabulary) is kept as its own UTF-8 bytes.
fn byte_level_to_bytes(text: &[u8], map: &[Option<u8>; 0x144]) -> Vec<u8> {
    let s = String::from_utf8_lossy(text);
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match map.get(c as usize).copied().flatten() {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// llama.cpp's clean-up of detokenized BPE text: drops the space before `?!.,`, turns
/// `" ' "` into `"'"`, and joins `" 's"`, `" 'm"`, `" 're"`, `" 've"` to the word before.
pub fn clean_up_spaces(text: &mut Vec<u8>) {
    // Pass 1: " ?", " !", " .", " ," lose the space.
    compact(text, |t, i, out| {
        if t[i - 1] == b' ' && matches!(t[i], b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        false
    });
    // Pass 2: a lone apostrophe between spaces keeps neither space.
    compact(text, |t, i, out| {
        if t[i] == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            out.pop();
            return true;
        }
        false
    });
    // Pass 3: contractions " 's", " 'm", " 're", " 've" join the previous word.
    compact(text, |t, i, out| {
        if t[i - 1] == b' ' && t[i] == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let x2 = t.get(i + 2).copied().filter(|_| i + 2 < t.len());
            let joins = matches!(x1, b's' | b'm')
                || (!matches!(x1, b't' | b'd')
                    && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))));
            if joins {
                out.pop();
            }
        }
        false
    });
}

/// One clean-up pass: copies `text` keeping byte 0, calling `step(text, i, out)` before
/// copying byte `i`. `step` may pop from `out`; if it returns true, the byte after `i` is
/// skipped and reads as NUL to the next step (as the in-place C loop leaves it).
fn compact(text: &mut Vec<u8>, mut step: impl FnMut(&[u8], usize, &mut Vec<u8>) -> bool) {
    if text.is_empty() {
        return;
    }
    let mut t = std::mem::take(text);
    let mut out = Vec::with_capacity(t.len());
    out.push(t[0]);
    let mut i = 1;
    while i < t.len() {
        let skip_next = step(&t, i, &mut out);
        out.push(t[i]);
        if skip_next {
            t[i + 1] = 0;
            i += 1;
        }
        i += 1;
    }
    *text = out;
}

/// Turns a stream of pieces into text, emitting only whole UTF-8 characters: bytes of a
/// character split across pieces are held back until the character is complete. Bytes
/// that can never form a character are emitted as U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// A stream with nothing pending.
    pub fn new() -> Utf8Stream {
        Utf8Stream::default()
    }

    /// Adds `bytes`; returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let good = start + e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[start..good]));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            start = good + n;
                        }
                        None => {
                            // An incomplete character at the end: keep it for later.
                            start = good;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }

    /// Bytes held back (the start of an incomplete character).
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_up_spaces(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn space_clean_up_matches_llama_cpp_rules() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("a ' b"), "a'b");
        assert_eq!(clean("it 's I 'm we 're you 've"), "it's I'm we're you've");
        assert_eq!(clean("don 't I 'd we 'll"), "don 't I 'd we 'll");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" ."), ".");
    }

    #[test]
    fn stream_holds_back_partial_characters() {
        let mut s = Utf8Stream::new();
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]), "");
        assert_eq!(s.push(&euro[1..2]), "");
        assert_eq!(s.pending().len(), 2);
        assert_eq!(s.push(&[euro[2], b'x']), "€x");
        assert_eq!(s.push(b"\xffa"), "\u{FFFD}a");
        assert_eq!(s.push(&euro[..2]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn markers_become_spaces() {
        assert_eq!(replace_marker("▁a▁▁b".as_bytes()), b" a  b");
    }
}
