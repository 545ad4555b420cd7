//! SentencePiece (`tokenizer.ggml.model = "llama"`), the way llama.cpp tokenizes it.
//!
//! The text (spaces already replaced by `▁`) starts as one symbol per UTF-8 character.
//! Repeatedly, the adjacent pair whose concatenation is a vocabulary token with the
//! highest score is merged (ties: the leftmost pair). When no pair forms a token, each
//! symbol becomes its token, or, if it is not one, one byte-fallback token `<0xHH>` per
//! byte. This is llama.cpp's greedy merge, which is what the reference ids come from; it
//! is not SentencePiece's own Viterbi segmentation.
//!
//! Works on bytes: text that is not UTF-8 simply falls back to byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;
use crate::error::{Error, Result};

/// The SentencePiece space marker, U+2581.
pub const SPACE_MARKER: &str = "\u{2581}";

/// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
fn utf8_len(lead: u8) -> usize {
    match lead >> 4 {
        0xc | 0xd => 2,
        0xe => 3,
        0xf => 4,
        _ => 1,
    }
}

/// "No symbol" in a `prev` / `next` link. Positions and indices are u32 to keep the
/// symbol list and the queue small (cache-friendly on long texts).
const NONE: u32 = u32::MAX;

/// A run of the text (`start..start + len`); `len` 0 once merged into its left neighbour.
#[derive(Clone, Copy)]
struct Symbol {
    start: u32,
    len: u32,
    prev: u32,
    next: u32,
}

/// A candidate merge of symbols `left` and `right` into a token of score `score`.
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    len: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// The token for byte `b`: `<0xHH>`, else the one-byte token, else `<unk>`.
fn byte_token(vocab: &Vocab, b: u8) -> Result<u32> {
    let hex = format!("<0x{b:02X}>");
    vocab
        .id_of(hex.as_bytes())
        .or_else(|| vocab.id_of(&[b]))
        .or(vocab.special.unk)
        .ok_or_else(|| {
            Error::Tokenizer(format!(
                "the vocabulary has no token for byte 0x{b:02X} (no {hex}, no unknown token)"
            ))
        })
}

/// Appends the SentencePiece ids of `text` (already `▁`-escaped) to `out`.
pub fn encode(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) -> Result<()> {
    if text.len() >= NONE as usize {
        return Err(Error::invalid(format!(
            "a text fragment of {} bytes is too long to tokenize (the limit is 4 GiB)",
            text.len()
        )));
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let mut offset = 0;
    while offset < text.len() {
        let len = utf8_len(text[offset]).min(text.len() - offset);
        let index = symbols.len() as u32;
        symbols.push(Symbol {
            start: offset as u32,
            len: len as u32,
            prev: if index == 0 { NONE } else { index - 1 },
            next: NONE,
        });
        if index > 0 {
            symbols[index as usize - 1].next = index;
        }
        offset += len;
    }
    if symbols.is_empty() {
        return Ok(());
    }

    let mut queue = BinaryHeap::with_capacity(symbols.len());
    let try_add = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: u32, right: u32| {
        let (l, r) = (symbols[left as usize], symbols[right as usize]);
        let piece = &text[l.start as usize..(r.start + r.len) as usize];
        if let Some(id) = vocab.id_of(piece) {
            let score = vocab.scores[id as usize];
            queue.push(Bigram {
                // -0.0 ties with 0.0, as a C++ `<` comparison treats them.
                score: if score == 0.0 { 0.0 } else { score },
                left,
                right,
                len: piece.len() as u32,
            });
        }
    };
    for i in 1..symbols.len() as u32 {
        try_add(&mut queue, &symbols, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left as usize], symbols[b.right as usize]);
        // Stale: one side was merged away or grew since the bigram was queued.
        if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
            continue;
        }
        let left = &mut symbols[b.left as usize];
        left.len += r.len;
        left.next = r.next;
        let prev = left.prev;
        symbols[b.right as usize].len = 0;
        if r.next != NONE {
            symbols[r.next as usize].prev = b.left;
        }
        if prev != NONE {
            try_add(&mut queue, &symbols, prev, b.left);
        }
        if r.next != NONE {
            try_add(&mut queue, &symbols, b.left, r.next);
        }
    }

    let mut at = 0;
    while at != NONE {
        let s = symbols[at as usize];
        let piece = &text[s.start as usize..(s.start + s.len) as usize];
        match vocab.id_of(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece {
                    out.push(byte_token(vocab, b)?);
                }
            }
        }
        at = s.next;
    }
    Ok(())
}

/// Replaces each space by `▁`, after putting one in front when `prefix_space` is set.
pub fn escape_spaces(text: &[u8], prefix_space: bool) -> Vec<u8> {
    let marker = SPACE_MARKER.as_bytes();
    let mut out = Vec::with_capacity(text.len() + text.len() / 4 + 3);
    if prefix_space {
        out.extend_from_slice(marker);
    }
    for &b in text {
        if b == b' ' {
            out.extend_from_slice(marker);
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_lengths() {
        assert_eq!(utf8_len(b'a'), 1);
        assert_eq!(utf8_len(0xc3), 2);
        assert_eq!(utf8_len(0xe2), 3);
        assert_eq!(utf8_len(0xf0), 4);
        assert_eq!(utf8_len(0x80), 1);
    }

    #[test]
    fn spaces_are_escaped() {
        assert_eq!(escape_spaces(b"a b", true), "▁a▁b".as_bytes());
        assert_eq!(escape_spaces(b"a", false), b"a");
    }

    #[test]
    fn heap_order_prefers_score_then_left() {
        let mut h = BinaryHeap::new();
        for (score, left) in [(1.0, 5), (2.0, 7), (2.0, 3), (-1.0, 0)] {
            h.push(Bigram {
                score,
                left,
                right: left + 1,
                len: 2,
            });
        }
        let order: Vec<u32> = std::iter::from_fn(|| h.pop().map(|b| b.left)).collect();
        assert_eq!(order, vec![3, 7, 5, 0]);
    }
}
