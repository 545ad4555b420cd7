//! Token attributes and vocabulary kinds: the small value types shared by the tokenizer
//! modules.
//!
//! The attribute bits have the same values as llama.cpp's `llama_token_attr`, so a C
//! caller that knows llama.h can read them the same way.

use std::fmt;

/// Which tokenizer algorithm a vocabulary uses (`tokenizer.ggml.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// `"gpt2"`: byte-level BPE with a regex pre-tokenizer chosen by `tokenizer.ggml.pre`.
    Bpe,
    /// `"llama"`: SentencePiece (scores, `▁` for spaces, byte fallback).
    Spm,
}

impl VocabKind {
    /// The `tokenizer.ggml.model` value that selects this kind.
    pub fn gguf_name(self) -> &'static str {
        match self {
            VocabKind::Bpe => "gpt2",
            VocabKind::Spm => "llama",
        }
    }
}

/// A set of token attribute bits (llama.cpp's `llama_token_attr` values).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenAttr(pub u32);

impl TokenAttr {
    /// No attribute (`token_type` 0 or an unknown type).
    pub const UNDEFINED: TokenAttr = TokenAttr(0);
    /// The unknown token (`<unk>`).
    pub const UNKNOWN: TokenAttr = TokenAttr(1 << 0);
    /// A token the model never uses.
    pub const UNUSED: TokenAttr = TokenAttr(1 << 1);
    /// An ordinary piece of text.
    pub const NORMAL: TokenAttr = TokenAttr(1 << 2);
    /// A control token (BOS, EOS, chat markers): only parsed from text when asked.
    pub const CONTROL: TokenAttr = TokenAttr(1 << 3);
    /// A user-defined token: always split out of the text before tokenizing.
    pub const USER_DEFINED: TokenAttr = TokenAttr(1 << 4);
    /// A SentencePiece byte-fallback token `<0xHH>`.
    pub const BYTE: TokenAttr = TokenAttr(1 << 5);
    /// Normalized text (unused here; kept for the numbering).
    pub const NORMALIZED: TokenAttr = TokenAttr(1 << 6);
    /// Whitespace to the left of a matched special token is removed.
    pub const LSTRIP: TokenAttr = TokenAttr(1 << 7);
    /// Whitespace to the right of a matched special token is removed.
    pub const RSTRIP: TokenAttr = TokenAttr(1 << 8);
    /// Matches only whole words (unused here; kept for the numbering).
    pub const SINGLE_WORD: TokenAttr = TokenAttr(1 << 9);

    /// The attribute for a GGUF `tokenizer.ggml.token_type` value (1 normal, 2 unknown,
    /// 3 control, 4 user-defined, 5 unused, 6 byte; anything else is undefined).
    pub fn from_token_type(t: i32) -> TokenAttr {
        match t {
            1 => TokenAttr::NORMAL,
            2 => TokenAttr::UNKNOWN,
            3 => TokenAttr::CONTROL,
            4 => TokenAttr::USER_DEFINED,
            5 => TokenAttr::UNUSED,
            6 => TokenAttr::BYTE,
            _ => TokenAttr::UNDEFINED,
        }
    }

    /// True if any bit of `other` is set in `self`.
    pub fn has(self, other: TokenAttr) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` with the bits of `other` set.
    pub fn with(self, other: TokenAttr) -> TokenAttr {
        TokenAttr(self.0 | other.0)
    }

    /// `self` with the bits of `other` cleared.
    pub fn without(self, other: TokenAttr) -> TokenAttr {
        TokenAttr(self.0 & !other.0)
    }
}

impl fmt::Debug for TokenAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 10] = [
            "UNKNOWN",
            "UNUSED",
            "NORMAL",
            "CONTROL",
            "USER_DEFINED",
            "BYTE",
            "NORMALIZED",
            "LSTRIP",
            "RSTRIP",
            "SINGLE_WORD",
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            write!(f, "UNDEFINED")
        } else {
            write!(f, "{}", names.join("|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_types_map_to_attributes() {
        assert_eq!(TokenAttr::from_token_type(1), TokenAttr::NORMAL);
        assert_eq!(TokenAttr::from_token_type(3), TokenAttr::CONTROL);
        assert_eq!(TokenAttr::from_token_type(6), TokenAttr::BYTE);
        assert_eq!(TokenAttr::from_token_type(99), TokenAttr::UNDEFINED);
        let a = TokenAttr::CONTROL.with(TokenAttr::RSTRIP);
        assert!(a.has(TokenAttr::RSTRIP) && a.has(TokenAttr::CONTROL));
        assert!(!a.without(TokenAttr::RSTRIP).has(TokenAttr::RSTRIP));
        assert_eq!(format!("{a:?}"), "CONTROL|RSTRIP");
    }
}
