//! C entry points for the tokenizer: tokenize, token -> piece, detokenize, chat
//! templates, and special-token queries. Each checks its arguments and calls
//! [`crate::tokenizer::Tokenizer`]; none holds logic of its own.

use std::ffi::c_char;

use super::model::{model_ref, tern_model};
use super::{c_str, copy_text_out, guard, guard_value, out_ptr, tern_status};
use crate::error::{Error, Result};
use crate::tokenizer::{ChatFormat, ChatMessage, TokenAttr, Tokenizer};

/// A token id. Valid ids are `0 .. tern_model_n_vocab(model)`; -1 means "none".
pub type tern_token = i32;

/// One chat message for `tern_chat_apply_template`: two NUL-terminated UTF-8 strings
/// owned by the caller.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tern_chat_message {
    /// "system", "user" or "assistant".
    pub role: *const c_char,
    /// The message text.
    pub content: *const c_char,
}

fn tokenizer_of<'a>(model: *const tern_model) -> Result<&'a Tokenizer> {
    model_ref(model)?.model.tokenizer().ok_or_else(|| {
        Error::NotFound("the model has no tokenizer (tokenizer.ggml.model is absent)".into())
    })
}

/// A caller's array of `len` items, or an error if it is NULL while `len` > 0.
fn in_slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::invalid(format!("{what}: length {len} is too large")));
    }
    // SAFETY: non-null, length bounded; the caller promises `len` readable items that
    // stay valid and unmodified for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Copies `bytes` into a caller's buffer of `cap` bytes (no NUL added). Fails with
/// BufferTooSmall (writing nothing) when they do not fit.
fn copy_bytes_out(bytes: &[u8], buf: *mut c_char, cap: usize) -> Result<()> {
    if buf.is_null() && cap > 0 {
        return Err(Error::invalid("buf is NULL but buf_size is not 0"));
    }
    if bytes.len() > cap {
        return Err(Error::BufferTooSmall {
            needed: bytes.len(),
        });
    }
    if !bytes.is_empty() {
        // SAFETY: buf is non-null (cap >= len > 0) and the caller promises `cap` writable
        // bytes that do not overlap the tokenizer's memory.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, bytes.len()) };
    }
    Ok(())
}

fn token_id(t: &Tokenizer, token: tern_token) -> Result<u32> {
    u32::try_from(token)
        .ok()
        .filter(|&id| (id as usize) < t.n_vocab())
        .ok_or_else(|| {
            Error::invalid(format!(
                "token {token} is out of range (the vocabulary has {} tokens)",
                t.n_vocab()
            ))
        })
}

/// Tokenizes `text_len` bytes at `text` (not NUL-terminated; may be NULL when
/// `text_len` is 0) into `out_tokens`, a caller-owned array of `capacity` ids.
/// `add_special` adds BOS/EOS as the model's metadata says; `parse_special` makes control
/// tokens written in the text (such as `<|eot_id|>`) count as those tokens.
/// `*n_tokens` (required) receives the number of ids; when it exceeds `capacity` the call
/// fails with TERN_ERR_BUFFER_TOO_SMALL and writes no id, so a first call with
/// `capacity` 0 asks for the size. Text that is not UTF-8 is accepted: SentencePiece
/// models encode such bytes with byte tokens; BPE models replace each byte that does not
/// start a valid UTF-8 sequence by U+FFFD (as llama.cpp does).
#[no_mangle]
pub extern "C" fn tern_tokenize(
    model: *const tern_model,
    text: *const c_char,
    text_len: usize,
    add_special: bool,
    parse_special: bool,
    out_tokens: *mut tern_token,
    capacity: usize,
    n_tokens: *mut usize,
) -> tern_status {
    guard("tern_tokenize", || {
        let n_out = out_ptr(n_tokens, "n_tokens")?;
        *n_out = 0;
        let tok = tokenizer_of(model)?;
        let bytes = in_slice(text as *const u8, text_len, "text")?;
        if out_tokens.is_null() && capacity > 0 {
            return Err(Error::invalid("out_tokens is NULL but capacity is not 0"));
        }
        let ids = tok.tokenize_bytes(bytes, add_special, parse_special)?;
        *n_out = ids.len();
        if ids.len() > capacity {
            return Err(Error::BufferTooSmall { needed: ids.len() });
        }
        for (i, &id) in ids.iter().enumerate() {
            // SAFETY: out_tokens is non-null (capacity >= len > 0 here) and the caller
            // promises `capacity` writable ids; i < len <= capacity.
            unsafe { *out_tokens.add(i) = id as tern_token };
        }
        Ok(())
    })
}

/// Writes the bytes token `token` stands for into `buf` (caller-owned, `buf_size`
/// bytes; no NUL is added, and the piece may be part of a UTF-8 character).
/// `*piece_len` (required) receives the piece's length; when it exceeds `buf_size` the
/// call fails with TERN_ERR_BUFFER_TOO_SMALL and writes nothing. Control and unknown
/// tokens give an empty piece unless `special` is true. An id out of range is
/// TERN_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn tern_token_to_piece(
    model: *const tern_model,
    token: tern_token,
    special: bool,
    buf: *mut c_char,
    buf_size: usize,
    piece_len: *mut usize,
) -> tern_status {
    guard("tern_token_to_piece", || {
        let len_out = out_ptr(piece_len, "piece_len")?;
        *len_out = 0;
        let tok = tokenizer_of(model)?;
        let piece = tok.token_to_piece(token_id(tok, token)?, special)?;
        *len_out = piece.len();
        copy_bytes_out(piece, buf, buf_size)
    })
}

/// Detokenizes `n_tokens` ids at `tokens` (may be NULL when `n_tokens` is 0) into
/// `buf` (caller-owned, `buf_size` bytes) as NUL-terminated text. `remove_special` drops
/// a leading BOS / trailing EOS the tokenizer would add; `unparse_special` writes
/// control tokens as their text. `*needed` (if not NULL) receives the bytes needed
/// including the NUL; when `buf_size` is smaller the call fails with
/// TERN_ERR_BUFFER_TOO_SMALL and writes nothing. The text is the tokens' bytes as they
/// are: it may end inside a UTF-8 character. An id out of range is
/// TERN_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn tern_detokenize(
    model: *const tern_model,
    tokens: *const tern_token,
    n_tokens: usize,
    remove_special: bool,
    unparse_special: bool,
    buf: *mut c_char,
    buf_size: usize,
    needed: *mut usize,
) -> tern_status {
    guard("tern_detokenize", || {
        let tok = tokenizer_of(model)?;
        let ids = in_slice(tokens, n_tokens, "tokens")?
            .iter()
            .map(|&t| token_id(tok, t))
            .collect::<Result<Vec<u32>>>()?;
        let mut bytes = tok.detokenize_bytes(&ids, remove_special, unparse_special)?;
        bytes.push(0);
        if !needed.is_null() {
            // SAFETY: non-null; the caller promises it is valid for one write.
            unsafe { *needed = bytes.len() };
        }
        copy_bytes_out(&bytes, buf, buf_size)
    })
}

/// Writes the chat prompt for `n_messages` messages at `messages` into `buf`
/// (caller-owned, `buf_size` bytes, NUL-terminated). `tmpl` is a format name
/// ("llama3", "bitnet", "bitnet-hf", "falcon3", "chatml", "phi3") or a Jinja template to
/// recognise; NULL uses the model's `tokenizer.chat_template` (then `model` is required;
/// otherwise it may be NULL). `add_generation_prompt` ends the prompt where the
/// assistant's reply begins. `*needed` (if not NULL) receives the bytes needed including
/// the NUL; when `buf_size` is smaller the call fails with TERN_ERR_BUFFER_TOO_SMALL and
/// writes nothing. An unrecognised template is TERN_ERR_UNSUPPORTED; a model without a
/// template (and `tmpl` NULL) is TERN_ERR_NOT_FOUND. No BOS is written: tokenize the
/// prompt with `add_special` true.
#[no_mangle]
pub extern "C" fn tern_chat_apply_template(
    model: *const tern_model,
    tmpl: *const c_char,
    messages: *const tern_chat_message,
    n_messages: usize,
    add_generation_prompt: bool,
    buf: *mut c_char,
    buf_size: usize,
    needed: *mut usize,
) -> tern_status {
    guard("tern_chat_apply_template", || {
        let msgs = in_slice(messages, n_messages, "messages")?
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(ChatMessage::new(
                    c_str(m.role, &format!("messages[{i}].role"))?,
                    c_str(m.content, &format!("messages[{i}].content"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let prompt = if tmpl.is_null() {
            tokenizer_of(model)?.apply_chat_template(None, &msgs, add_generation_prompt)?
        } else {
            ChatFormat::resolve(c_str(tmpl, "tmpl")?)?.apply(&msgs, add_generation_prompt)
        };
        copy_text_out(&prompt, buf, buf_size, needed)
    })
}

fn special_id(
    name: &str,
    model: *const tern_model,
    pick: fn(&Tokenizer) -> Option<u32>,
) -> tern_token {
    guard_value(name, -1, || {
        Ok(pick(tokenizer_of(model)?).map_or(-1, |id| id as tern_token))
    })
}

/// The beginning-of-sequence token; -1 if there is none or `model` is not a valid handle
/// with a tokenizer.
#[no_mangle]
pub extern "C" fn tern_token_bos(model: *const tern_model) -> tern_token {
    special_id("tern_token_bos", model, Tokenizer::bos)
}

/// The end-of-sequence token; -1 if there is none or `model` is not a valid handle with a
/// tokenizer.
#[no_mangle]
pub extern "C" fn tern_token_eos(model: *const tern_model) -> tern_token {
    special_id("tern_token_eos", model, Tokenizer::eos)
}

/// The end-of-turn token (e.g. `<|eot_id|>`); -1 if there is none or `model` is not a
/// valid handle with a tokenizer.
#[no_mangle]
pub extern "C" fn tern_token_eot(model: *const tern_model) -> tern_token {
    special_id("tern_token_eot", model, Tokenizer::eot)
}

/// The end-of-message token (e.g. `<|eom_id|>`); -1 if there is none or `model` is not
/// a valid handle with a tokenizer.
#[no_mangle]
pub extern "C" fn tern_token_eom(model: *const tern_model) -> tern_token {
    special_id("tern_token_eom", model, Tokenizer::eom)
}

/// True if `token` ends generation (EOS, EOT, EOM, ...). False for ids out of range and
/// for an invalid `model` (then `tern_last_error()` says why).
#[no_mangle]
pub extern "C" fn tern_token_is_eog(model: *const tern_model, token: tern_token) -> bool {
    guard_value("tern_token_is_eog", false, || {
        let tok = tokenizer_of(model)?;
        Ok(u32::try_from(token).is_ok_and(|id| tok.is_eog(id)))
    })
}

/// True if `token` is a control token (BOS, EOS, chat markers). False for ids out of
/// range and for an invalid `model`.
#[no_mangle]
pub extern "C" fn tern_token_is_control(model: *const tern_model, token: tern_token) -> bool {
    guard_value("tern_token_is_control", false, || {
        let tok = tokenizer_of(model)?;
        Ok(tok
            .token_attr(token_id(tok, token)?)?
            .has(TokenAttr::CONTROL))
    })
}

/// The token's attribute bits (the values of llama.cpp's `llama_token_attr`: 1 unknown,
/// 2 unused, 4 normal, 8 control, 16 user-defined, 32 byte, 128 lstrip, 256 rstrip);
/// -1 for an id out of range or an invalid `model`.
#[no_mangle]
pub extern "C" fn tern_token_get_attr(model: *const tern_model, token: tern_token) -> i32 {
    guard_value("tern_token_get_attr", -1, || {
        let tok = tokenizer_of(model)?;
        Ok(tok.token_attr(token_id(tok, token)?)?.0 as i32)
    })
}
