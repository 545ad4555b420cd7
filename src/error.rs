//! The one error type of the crate. Each variant maps onto one C status code
//! (`ffi::tern_status`), and carries a message that says what went wrong and where
//! (a tensor name, a metadata key, a byte offset in the file).

use std::fmt;

/// Every failure the library reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A caller passed an argument the library cannot use (null pointer, bad size, id out of range).
    InvalidArgument(String),
    /// The operating system refused a file operation.
    Io(String),
    /// A file is not valid GGUF, or a GGUF structure is inconsistent (truncated, overlapping, ...).
    Format(String),
    /// A tensor type, file version or feature this build does not handle.
    Unsupported(String),
    /// A model's metadata or tensors do not describe a model we can run.
    Model(String),
    /// The tokenizer could not be built or could not process the input.
    Tokenizer(String),
    /// A batch would not fit in the context's remaining positions.
    ContextFull(String),
    /// An allocation the caller asked for is larger than the memory available.
    OutOfMemory(String),
    /// The caller's abort callback asked to stop.
    Aborted(String),
    /// A key, tensor or item the caller asked for does not exist.
    NotFound(String),
    /// A caller-owned buffer is too small; `needed` is the size that would fit.
    BufferTooSmall { needed: usize },
    /// A bug in the library (for instance a panic caught at the C boundary).
    Internal(String),
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds a [`Error::Format`] from anything printable.
    pub fn format(msg: impl Into<String>) -> Self {
        Error::Format(msg.into())
    }
    /// Builds a [`Error::Model`] from anything printable.
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }
    /// Builds a [`Error::InvalidArgument`] from anything printable.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    /// Builds a [`Error::Unsupported`] from anything printable.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }

    /// A short name of the error's kind, as printed by the CLI.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "invalid argument",
            Error::Io(_) => "i/o error",
            Error::Format(_) => "bad file format",
            Error::Unsupported(_) => "unsupported",
            Error::Model(_) => "bad model",
            Error::Tokenizer(_) => "tokenizer error",
            Error::ContextFull(_) => "context full",
            Error::OutOfMemory(_) => "out of memory",
            Error::Aborted(_) => "aborted",
            Error::NotFound(_) => "not found",
            Error::BufferTooSmall { .. } => "buffer too small",
            Error::Internal(_) => "internal error",
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> String {
        match self {
            Error::InvalidArgument(m)
            | Error::Io(m)
            | Error::Format(m)
            | Error::Unsupported(m)
            | Error::Model(m)
            | Error::Tokenizer(m)
            | Error::ContextFull(m)
            | Error::OutOfMemory(m)
            | Error::Aborted(m)
            | Error::NotFound(m)
            | Error::Internal(m) => m.clone(),
            Error::BufferTooSmall { needed } => format!("the buffer must hold at least {needed}"),
        }
    }

    /// Prefixes the message with context (e.g. the file name), keeping the kind.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        let wrap = |m: String| format!("{ctx}: {m}");
        match self {
            Error::InvalidArgument(m) => Error::InvalidArgument(wrap(m)),
            Error::Io(m) => Error::Io(wrap(m)),
            Error::Format(m) => Error::Format(wrap(m)),
            Error::Unsupported(m) => Error::Unsupported(wrap(m)),
            Error::Model(m) => Error::Model(wrap(m)),
            Error::Tokenizer(m) => Error::Tokenizer(wrap(m)),
            Error::ContextFull(m) => Error::ContextFull(wrap(m)),
            Error::OutOfMemory(m) => Error::OutOfMemory(wrap(m)),
            Error::Aborted(m) => Error::Aborted(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
            e @ Error::BufferTooSmall { .. } => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind_name(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
