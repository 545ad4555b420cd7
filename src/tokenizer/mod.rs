//! The tokenizer a GGUF file carries in its metadata, built the way llama.cpp builds it,
//! so that text tokenizes to the same ids as in bitnet.cpp and llama.cpp.
//!
//! - [`vocab`]: reading and validating `tokenizer.ggml.*`;
//! - [`pretok`]: the BPE pre-tokenizer regexes for each `tokenizer.ggml.pre` value;
//! - [`bpe`]: byte-level BPE (`gpt2`), merges by the `tokenizers` crate;
//! - [`spm`]: SentencePiece (`llama`), scores and byte fallback;
//! - [`special`] and [`partition`]: special tokens, and splitting them out of raw text;
//! - [`decode`]: pieces, detokenizing, streaming UTF-8;
//! - [`chat`]: chat templates.
//!
//! ```no_run
//! # fn main() -> tern::Result<()> {
//! let file = tern::gguf::GgufFile::open("model.gguf")?;
//! let tok = tern::tokenizer::Tokenizer::from_gguf(&file)?;
//! let ids = tok.tokenize("Hello world", true, false)?;
//! let text = tok.detokenize(&ids, true, false)?;
//! # Ok(()) }
//! ```

pub mod attr;
pub mod bpe;
pub mod chat;
pub mod decode;
pub mod partition;
pub mod pretok;
pub mod special;
pub mod spm;
pub mod vocab;

pub use attr::{TokenAttr, VocabKind};
pub use chat::{ChatFormat, ChatMessage};
pub use decode::Utf8Stream;
pub use special::SpecialTokens;
pub use vocab::Vocab;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use bpe::BpeTokenizer;
use partition::Fragment;

// A model (and so its tokenizer) is shared between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
};

/// A tokenizer: vocabulary, algorithm, special tokens and the piece of every token.
/// Immutable after construction and safe to share between threads.
pub struct Tokenizer {
    vocab: Vocab,
    bpe: Option<BpeTokenizer>,
    pieces: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("pre", &self.vocab.pre.as_ref().map(|p| p.kind))
            .field("n_vocab", &self.vocab.len())
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by `file`'s metadata. Fails with a message naming
    /// the key when the metadata is missing, inconsistent or of a kind tern does not handle.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer> {
        Tokenizer::from_vocab(Vocab::from_gguf(file)?)
    }

    /// As [`Tokenizer::from_gguf`], but `Ok(None)` when the file has no
    /// `tokenizer.ggml.model` key at all.
    pub fn from_gguf_if_present(file: &GgufFile) -> Result<Option<Tokenizer>> {
        Vocab::from_gguf_if_present(file)?
            .map(Tokenizer::from_vocab)
            .transpose()
    }

    /// Builds the tokenizer for a validated vocabulary.
    pub fn from_vocab(vocab: Vocab) -> Result<Tokenizer> {
        let bpe = match vocab.kind {
            VocabKind::Bpe => Some(BpeTokenizer::new(&vocab)?),
            VocabKind::Spm => None,
        };
        let pieces = decode::build_pieces(&vocab);
        Ok(Tokenizer { vocab, bpe, pieces })
    }

    /// The vocabulary (texts, scores, attributes, special tokens).
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Number of tokens.
    pub fn n_vocab(&self) -> usize {
        self.vocab.len()
    }

    /// The tokenizer algorithm.
    pub fn kind(&self) -> VocabKind {
        self.vocab.kind
    }

    /// The BPE pre-tokenizer type (`llama3`, `default`, ...); `None` for SentencePiece.
    pub fn pre_type(&self) -> Option<&'static str> {
        self.vocab.pre.as_ref().map(|p| p.kind)
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS as the metadata says
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`); `parse_special` makes control
    /// tokens written in the text (such as `<|eot_id|>`) count as those tokens instead
    /// of plain text. User-defined tokens are always recognised, as in llama.cpp.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        self.tokenize_bytes(text.as_bytes(), add_special, parse_special)
    }

    /// As [`Tokenizer::tokenize`] for bytes that need not be UTF-8. SentencePiece
    /// vocabularies encode invalid bytes with their byte tokens; BPE vocabularies replace
    /// each byte that does not start a valid UTF-8 sequence by U+FFFD first (llama.cpp's
    /// rule). NUL bytes are ordinary text.
    pub fn tokenize_bytes(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>> {
        let s = &self.vocab.special;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && s.add_bos {
            out.push(
                s.bos
                    .ok_or_else(|| Error::Tokenizer("no BOS token".into()))?,
            );
        }
        match &self.bpe {
            Some(bpe) => {
                let text = bpe::utf8_replacing_each_bad_byte(text);
                for frag in partition::partition(&self.vocab, text.as_bytes(), parse_special) {
                    match frag {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(a, b) => bpe.encode(&text[a..b], &mut out)?,
                    }
                }
            }
            None => {
                // A space goes in front of the text, and again after each special token.
                let mut prev_special = true;
                for frag in partition::partition(&self.vocab, text, parse_special) {
                    match frag {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(a, b) => {
                            let prefix = self.vocab.add_space_prefix && prev_special;
                            let escaped = spm::escape_spaces(&text[a..b], prefix);
                            spm::encode(&self.vocab, &escaped, &mut out)?;
                            prev_special = false;
                        }
                    }
                }
            }
        }
        if add_special && s.add_eos {
            out.push(
                s.eos
                    .ok_or_else(|| Error::Tokenizer("no EOS token".into()))?,
            );
        }
        Ok(out)
    }

    fn check_id(&self, id: u32) -> Result<usize> {
        let i = id as usize;
        if i < self.vocab.len() {
            Ok(i)
        } else {
            Err(Error::invalid(format!(
                "token id {id} is out of range (the vocabulary has {} tokens)",
                self.vocab.len()
            )))
        }
    }

    /// The bytes token `id` stands for (possibly part of a UTF-8 character). Control and
    /// unknown tokens give their text only when `special` is true, else nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<&[u8]> {
        let i = self.check_id(id)?;
        let hidden = TokenAttr::CONTROL.with(TokenAttr::UNKNOWN);
        if !special && self.vocab.attrs[i].has(hidden) {
            return Ok(&[]);
        }
        Ok(&self.pieces[i])
    }

    /// Detokenizes `ids` to bytes, as llama.cpp's `llama_detokenize`: with
    /// `remove_special`, a leading BOS and trailing EOS that the tokenizer would add are
    /// dropped; with `unparse_special`, control tokens are written as their text.
    /// SentencePiece drops the space the tokenizer put in front; BPE vocabularies that ask
    /// for it get llama.cpp's space clean-up. The bytes may end inside a character.
    pub fn detokenize_bytes(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<Vec<u8>> {
        for &id in ids {
            self.check_id(id)?;
        }
        let s = &self.vocab.special;
        let mut ids = ids;
        let mut strip_space = self.vocab.add_space_prefix;
        if remove_special && s.add_bos && s.bos.is_some_and(|b| ids.first() == Some(&b)) {
            strip_space = false;
            ids = &ids[1..];
        }
        if remove_special && s.add_eos && s.eos.is_some_and(|e| ids.last() == Some(&e)) {
            ids = &ids[..ids.len() - 1];
        }
        let mut out = Vec::new();
        for &id in ids {
            let piece = self.token_to_piece(id, unparse_special)?;
            let piece = match (strip_space, piece.first()) {
                (true, Some(b' ')) => &piece[1..],
                _ => piece,
            };
            strip_space = false;
            out.extend_from_slice(piece);
        }
        if self.vocab.clean_spaces {
            decode::clean_up_spaces(&mut out);
        }
        Ok(out)
    }

    /// As [`Tokenizer::detokenize_bytes`], as text (bytes that do not form UTF-8 become
    /// U+FFFD).
    pub fn detokenize(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<String> {
        let bytes = self.detokenize_bytes(ids, remove_special, unparse_special)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// A decoder for generated ids, one at a time, that returns only whole UTF-8
    /// characters (see [`TokenStream`]). `special` renders control tokens as their text.
    pub fn stream(&self, special: bool) -> TokenStream<'_> {
        TokenStream {
            tokenizer: self,
            special,
            utf8: Utf8Stream::new(),
        }
    }

    /// The token's text as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Result<&[u8]> {
        Ok(&self.vocab.texts[self.check_id(id)?])
    }

    /// The token's attributes.
    pub fn token_attr(&self, id: u32) -> Result<TokenAttr> {
        Ok(self.vocab.attrs[self.check_id(id)?])
    }

    /// The token's score (SentencePiece), 0 where the file has none.
    pub fn token_score(&self, id: u32) -> Result<f32> {
        Ok(self.vocab.scores[self.check_id(id)?])
    }

    /// The id of the token whose text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id_of(text.as_bytes())
    }

    /// Special token ids and flags.
    pub fn special(&self) -> &SpecialTokens {
        &self.vocab.special
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.special.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.special.eos
    }

    /// End-of-turn token (found by text when the metadata does not name it).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.special.eot
    }

    /// End-of-message token.
    pub fn eom(&self) -> Option<u32> {
        self.vocab.special.eom
    }

    /// True if generating `id` ends generation (EOS, EOT, EOM and the other known
    /// end-of-generation tokens). False for ids out of range.
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.special.eog.contains(&id)
    }

    /// All end-of-generation tokens, ascending.
    pub fn eog_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.vocab.special.eog.iter().copied()
    }

    /// `tokenizer.chat_template`, if the file has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.vocab.chat_template.as_deref()
    }

    /// Writes the prompt for `messages`. `template` is a format name (`llama3`, `bitnet`,
    /// ...) or a Jinja template to recognise; `None` uses the model's own template.
    pub fn apply_chat_template(
        &self,
        template: Option<&str>,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = match template {
            Some(t) => t,
            None => self.chat_template().ok_or_else(|| {
                Error::NotFound(
                    "the model has no tokenizer.chat_template; name a format instead".into(),
                )
            })?,
        };
        Ok(ChatFormat::resolve(template)?.apply(messages, add_generation_prompt))
    }
}

/// Decodes generated ids one at a time into text, never splitting a UTF-8 character:
/// bytes of a character spread over several tokens are held back until it is complete.
/// Pieces are used as they are (no leading space is removed).
#[derive(Debug)]
pub struct TokenStream<'a> {
    tokenizer: &'a Tokenizer,
    special: bool,
    utf8: Utf8Stream,
}

impl TokenStream<'_> {
    /// Adds token `id`; returns the text now complete (possibly empty). An id out of
    /// range is an error and changes nothing.
    pub fn push(&mut self, id: u32) -> Result<String> {
        let piece = self.tokenizer.token_to_piece(id, self.special)?;
        Ok(self.utf8.push(piece))
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        self.utf8.finish()
    }
}
