//! Splitting special tokens out of raw text before tokenizing, as llama.cpp's
//! `llama_tokenize` does.
//!
//! The special tokens are tried one at a time, longest text first. Each splits every text
//! fragment left so far at all its (non-overlapping, leftmost-first) occurrences. Control
//! and unknown tokens take part only when the caller asks to parse special tokens;
//! user-defined tokens always do. A token with the LSTRIP / RSTRIP attribute also removes
//! the ASCII whitespace next to it.

use super::attr::TokenAttr;
use super::vocab::Vocab;

/// A piece of the input: raw text (a byte range of the input) or a special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Bytes `start..end` of the input, still to be tokenized.
    Text(usize, usize),
    /// A special token matched in the input.
    Token(u32),
}

/// C `isspace` in the "C" locale: the bytes llama.cpp strips next to LSTRIP/RSTRIP tokens.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Finds `needle` in `hay[from..end]`; positions are absolute.
fn find(
    hay: &[u8],
    hay_str: Option<&str>,
    from: usize,
    end: usize,
    needle: &[u8],
) -> Option<usize> {
    if needle.is_empty() || end - from < needle.len() {
        return None;
    }
    // Fast path: both are UTF-8 and the range starts and ends at char boundaries (it does
    // whenever the input is UTF-8: fragments are cut at matches of UTF-8 tokens and at
    // ASCII whitespace).
    if let (Some(s), Ok(n)) = (hay_str, std::str::from_utf8(needle)) {
        if let Some(part) = s.get(from..end) {
            return part.find(n).map(|p| p + from);
        }
    }
    let first = needle[0];
    let last_start = end - needle.len();
    let mut i = from;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                let at = i + p;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
        }
    }
    None
}

/// Splits `text` into raw-text fragments and special tokens.
pub fn partition(vocab: &Vocab, text: &[u8], parse_special: bool) -> Vec<Fragment> {
    if text.is_empty() {
        return Vec::new();
    }
    let text_str = std::str::from_utf8(text).ok();
    // Bytes present in the text: a token whose first byte is absent cannot match.
    let mut present = [false; 256];
    for &b in text {
        present[b as usize] = true;
    }
    let mut fragments = vec![Fragment::Text(0, text.len())];
    let skip_unless_parsing = TokenAttr::CONTROL.with(TokenAttr::UNKNOWN);
    for &id in &vocab.special.split_order {
        let attr = vocab.attrs[id as usize];
        if !parse_special && attr.has(skip_unless_parsing) {
            continue;
        }
        let token = vocab.texts[id as usize].as_slice();
        if !present[token[0] as usize] {
            continue;
        }
        let mut out = Vec::with_capacity(fragments.len());
        for frag in &fragments {
            let Fragment::Text(mut start, end) = *frag else {
                out.push(*frag);
                continue;
            };
            while let Some(at) = find(text, text_str, start, end, token) {
                let mut left_end = at;
                if attr.has(TokenAttr::LSTRIP) {
                    while left_end > start && is_c_space(text[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > start {
                    out.push(Fragment::Text(start, left_end));
                }
                out.push(Fragment::Token(id));
                start = at + token.len();
                if attr.has(TokenAttr::RSTRIP) {
                    while start < end && is_c_space(text[start]) {
                        start += 1;
                    }
                }
            }
            if start < end {
                out.push(Fragment::Text(start, end));
            }
        }
        fragments = out;
    }
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_works_on_bytes_and_text() {
        let hay = b"ab<s>cd<s>";
        assert_eq!(find(hay, None, 0, hay.len(), b"<s>"), Some(2));
        assert_eq!(find(hay, None, 3, hay.len(), b"<s>"), Some(7));
        assert_eq!(find(hay, None, 3, 9, b"<s>"), None);
        let s = std::str::from_utf8(hay).unwrap();
        assert_eq!(find(hay, Some(s), 3, hay.len(), b"<s>"), Some(7));
        let bad = b"\xff<s>";
        assert_eq!(find(bad, None, 0, bad.len(), b"<s>"), Some(1));
    }
}
