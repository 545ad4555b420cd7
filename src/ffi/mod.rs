//! The C ABI and nothing else: argument checks, handle checks, status codes, the
//! thread-local last error, and the panic boundary. Every `extern "C"` body runs inside
//! [`guard`], so no entry point can forget to catch a panic.
//!
//! The header `include/tern.h` is generated from this module by cbindgen
//! (`TERN_BLESS=1 cargo test --test c_header` regenerates it).
//!
//! # Threading
//!
//! The contract is written once, in the header's preamble (`cbindgen.toml`), and holds
//! for the Rust API as well: a model is immutable and shared by any number of threads
//! (`Model: Send + Sync`, held in an `Arc`); a context or sampler is changed through
//! `&mut`, so by one thread at a time (both are `Send`); the last-error slot is
//! thread-local. Tested by `tests/concurrency.rs` (N contexts on N threads, outputs
//! identical to single-thread runs) and `tests/ffi_every_function.rs` (bad calls from
//! several threads at once).
#![allow(non_camel_case_types)]
// The entry points take raw pointers from C by design; each one checks what it can
// (null, handle magic) and documents the rest of its contract in the header.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod context;
pub mod model;
pub mod sampling;
pub mod tokenizer;

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{OnceLock, RwLock};

use crate::error::Error;

/// The version of the C ABI. It grows by one whenever a function's signature, a struct's
/// layout or an enum's values change incompatibly.
pub const TERN_ABI_VERSION: u32 = 1;

/// Every fallible function returns one of these. `TERN_OK` is 0; the message of the last
/// failure on the calling thread is in `tern_last_error()`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tern_status {
    /// Success.
    TERN_OK = 0,
    /// A null pointer, an unknown or freed handle, a size or index out of range.
    TERN_ERR_INVALID_ARGUMENT = 1,
    /// The operating system refused a file operation.
    TERN_ERR_IO = 2,
    /// The file is not valid GGUF or is inconsistent (truncated, overlapping tensors, ...).
    TERN_ERR_FORMAT = 3,
    /// A tensor type, file version or architecture this build does not handle.
    TERN_ERR_UNSUPPORTED = 4,
    /// The model's metadata or tensors do not describe a model that can run.
    TERN_ERR_MODEL = 5,
    /// The tokenizer could not be built or could not process the input.
    TERN_ERR_TOKENIZER = 6,
    /// A batch would not fit in the context.
    TERN_ERR_CONTEXT_FULL = 7,
    /// Not enough memory for what was asked.
    TERN_ERR_OUT_OF_MEMORY = 8,
    /// The caller's abort callback stopped the call.
    TERN_ERR_ABORTED = 9,
    /// A caller's buffer is too small; the size needed was reported through the call's
    /// size out-pointer.
    TERN_ERR_BUFFER_TOO_SMALL = 10,
    /// The key, tensor or item asked for does not exist.
    TERN_ERR_NOT_FOUND = 11,
    /// A bug in tern (for instance a Rust panic, caught at the boundary).
    TERN_ERR_INTERNAL = 12,
}

impl From<&Error> for tern_status {
    fn from(e: &Error) -> tern_status {
        use tern_status::*;
        match e {
            Error::InvalidArgument(_) => TERN_ERR_INVALID_ARGUMENT,
            Error::Io(_) => TERN_ERR_IO,
            Error::Format(_) => TERN_ERR_FORMAT,
            Error::Unsupported(_) => TERN_ERR_UNSUPPORTED,
            Error::Model(_) => TERN_ERR_MODEL,
            Error::Tokenizer(_) => TERN_ERR_TOKENIZER,
            Error::ContextFull(_) => TERN_ERR_CONTEXT_FULL,
            Error::OutOfMemory(_) => TERN_ERR_OUT_OF_MEMORY,
            Error::Aborted(_) => TERN_ERR_ABORTED,
            Error::BufferTooSmall { .. } => TERN_ERR_BUFFER_TOO_SMALL,
            Error::NotFound(_) => TERN_ERR_NOT_FOUND,
            Error::Internal(_) => TERN_ERR_INTERNAL,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs an entry point's body: catches panics, records the error message, returns the
/// status. `name` is the C function's name, prefixed to messages.
pub(crate) fn guard(name: &str, body: impl FnOnce() -> Result<(), Error>) -> tern_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => tern_status::TERN_OK,
        Ok(Err(e)) => {
            set_last_error(&format!("{name}: {e}"));
            tern_status::from(&e)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("{name}: internal error (panic): {what}"));
            tern_status::TERN_ERR_INTERNAL
        }
    }
}

/// As [`guard`] for entry points that return a value instead of a status: `fallback` is
/// returned on error or panic, and the message is recorded.
pub(crate) fn guard_value<T: Copy>(
    name: &str,
    fallback: T,
    body: impl FnOnce() -> Result<T, Error>,
) -> T {
    let mut out = fallback;
    let status = guard(name, || {
        out = body()?;
        Ok(())
    });
    if status == tern_status::TERN_OK {
        out
    } else {
        fallback
    }
}

/// The kinds of handle the C API gives out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HandleKind {
    Model,
    Context,
    Sampler,
}

/// The addresses of the live handles, by kind. A handle is checked here before it is
/// read, so a freed handle (or a handle of another kind) is reported without touching
/// freed memory; only a freed handle whose address a new handle of the same kind has
/// taken again goes undetected.
fn live_handles() -> &'static RwLock<HashSet<(usize, HandleKind)>> {
    static LIVE: OnceLock<RwLock<HashSet<(usize, HandleKind)>>> = OnceLock::new();
    LIVE.get_or_init(|| RwLock::new(HashSet::new()))
}

/// Records a new handle as live.
pub(crate) fn register_handle<T>(p: *const T, kind: HandleKind) {
    let mut live = live_handles().write().unwrap_or_else(|e| e.into_inner());
    live.insert((p as usize, kind));
}

/// Records a handle as freed; false if it was not live (a double free or a bad pointer).
pub(crate) fn unregister_handle<T>(p: *const T, kind: HandleKind) -> bool {
    let mut live = live_handles().write().unwrap_or_else(|e| e.into_inner());
    live.remove(&(p as usize, kind))
}

/// Whether `p` is a live handle of `kind`.
pub(crate) fn is_live_handle<T>(p: *const T, kind: HandleKind) -> bool {
    let live = live_handles().read().unwrap_or_else(|e| e.into_inner());
    live.contains(&(p as usize, kind))
}

/// Checks an out-pointer and gives it back as a reference.
pub(crate) fn out_ptr<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: non-null was checked; the caller promises the pointer is valid for writes
    // of one T (the documented contract of every out-parameter).
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// Reads a NUL-terminated UTF-8 string argument.
pub(crate) fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null; the caller promises a NUL-terminated string that outlives the call.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        Error::invalid(format!(
            "{what} is not valid UTF-8 (bad byte at {})",
            e.valid_up_to()
        ))
    })
}

/// Copies `text` plus a NUL into a caller's buffer of `cap` bytes; reports the size needed
/// (including the NUL) through `needed` when it is not null. Fails with
/// `BufferTooSmall` when the text and its NUL do not fit (nothing is written then).
pub(crate) fn copy_text_out(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> Result<(), Error> {
    let need = text.len() + 1;
    if !needed.is_null() {
        // SAFETY: non-null; the caller promises it is valid for one write.
        unsafe { *needed = need };
    }
    if need > cap || buf.is_null() {
        if buf.is_null() && cap > 0 {
            return Err(Error::invalid("buf is NULL but buf_size is not 0"));
        }
        return Err(Error::BufferTooSmall { needed: need });
    }
    // SAFETY: buf is non-null and the caller promises `cap` writable bytes; need <= cap.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// The message of the last failed call on this thread ("" if none). The pointer stays
/// valid until the next tern call on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn tern_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library's version, e.g. "0.1.0". A static string; do not free.
#[no_mangle]
pub extern "C" fn tern_version() -> *const c_char {
    static V: OnceLock<CString> = OnceLock::new();
    V.get_or_init(|| CString::new(crate::VERSION).expect("version has no NUL"))
        .as_ptr()
}

/// The C ABI version this library implements (`TERN_ABI_VERSION` of its header).
#[no_mangle]
pub extern "C" fn tern_abi_version() -> u32 {
    TERN_ABI_VERSION
}

/// One line naming the CPU features found and the kernels chosen. A static string; do
/// not free.
#[no_mangle]
pub extern "C" fn tern_system_info() -> *const c_char {
    static S: OnceLock<CString> = OnceLock::new();
    S.get_or_init(|| CString::new(crate::kernels::system_info()).unwrap_or_default())
        .as_ptr()
}

/// A short English name for a status code ("TERN_ERR_FORMAT"). A static string; do not
/// free. Unknown codes give "TERN_ERR_UNKNOWN".
#[no_mangle]
pub extern "C" fn tern_status_name(status: i32) -> *const c_char {
    let s: &'static CStr = match status {
        0 => c"TERN_OK",
        1 => c"TERN_ERR_INVALID_ARGUMENT",
        2 => c"TERN_ERR_IO",
        3 => c"TERN_ERR_FORMAT",
        4 => c"TERN_ERR_UNSUPPORTED",
        5 => c"TERN_ERR_MODEL",
        6 => c"TERN_ERR_TOKENIZER",
        7 => c"TERN_ERR_CONTEXT_FULL",
        8 => c"TERN_ERR_OUT_OF_MEMORY",
        9 => c"TERN_ERR_ABORTED",
        10 => c"TERN_ERR_BUFFER_TOO_SMALL",
        11 => c"TERN_ERR_NOT_FOUND",
        12 => c"TERN_ERR_INTERNAL",
        _ => c"TERN_ERR_UNKNOWN",
    };
    s.as_ptr()
}
