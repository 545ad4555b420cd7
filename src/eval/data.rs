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

/// One record of a JSON-lines file.
#[derive(Debug)]
pub(crate) struct JsonRecord {
    /// 1-based line in the file.
    pub line: usize,
    value: serde_json::Value,
}

impl JsonRecord {
    /// The string field `key`; the error names the line and the field.
    pub fn string(&self, key: &str) -> Result<String> {
        self.value
            .get(key)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| line_error(self.line, format!("no string field \"{key}\"")))
    }
}

/// The records of a JSON-lines file, blank lines skipped; a line that is not JSON is an
/// error that names it.
pub(crate) fn json_lines(bytes: &[u8]) -> Result<Vec<JsonRecord>> {
    let mut out = Vec::new();
    for (i, line) in text_lines(bytes)?.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line)
            .map_err(|e| line_error(i + 1, format!("not a JSON object: {e}")))?;
        out.push(JsonRecord { line: i + 1, value });
    }
    Ok(out)
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

    #[test]
    fn json_lines_skip_blanks_and_name_lines() {
        let records = json_lines(b"{\"a\": \"x\"}\n\n  \n{\"a\": 1}\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line, 1);
        assert_eq!(records[0].string("a").unwrap(), "x");
        assert_eq!(records[1].line, 4);
        let e = records[1].string("a").unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("\"a\""), "{e}");
        let e = json_lines(b"{}\nnot json\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("JSON"), "{e}");
    }
}
