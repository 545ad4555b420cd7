//! Helpers shared by the data-file readers. Errors name the (1-based) line, or the task and
//! byte offset for binary files.

use crate::error::{Error, Result};

/// A format error at `line` (1-based).
pub fn line_error(line: usize, msg: impl std::fmt::Display) -> Error {
    Error::format(format!("line {line}: {msg}"))
}

/// The lines of a text file read the way llama-perplexity reads `-f`: one trailing newline
/// is dropped, the rest is split at `\n` (a `\r` stays part of its line), and a final empty
/// piece after a newline is not a line. Each line must be UTF-8.
pub fn text_lines(bytes: &[u8]) -> Result<Vec<String>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            String::from_utf8(p.to_vec()).map_err(|e| {
                line_error(
                    i + 1,
                    format!(
                        "not UTF-8 (byte {} of the line)",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })
        })
        .collect()
}

/// The text of a file read as llama-perplexity reads `-f` (one trailing newline dropped).
pub fn prompt_bytes(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_like_getline() {
        assert!(text_lines(b"").unwrap().is_empty());
        assert!(text_lines(b"\n").unwrap().is_empty());
        assert_eq!(text_lines(b"a\nb").unwrap(), ["a", "b"]);
        assert_eq!(text_lines(b"a\nb\n").unwrap(), ["a", "b"]);
        assert_eq!(text_lines(b"a\n\n").unwrap(), ["a"]);
        assert_eq!(text_lines(b"a\n\nb\r\n").unwrap(), ["a", "", "b\r"]);
        let e = text_lines(b"ok\n\xff\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
