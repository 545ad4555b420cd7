//! C entry points for contexts: parameters, create, free, evaluation, logits, the KV
//! cache, the abort callback and the performance counters. The logic is
//! [`crate::context::Context`]'s; this file checks arguments and converts types.

use std::ffi::c_void;

use super::model::{model_ref, tern_model};
use super::tokenizer::tern_token;
use super::{
    guard, guard_value, is_live_handle, out_ptr, register_handle, tern_status, unregister_handle,
    HandleKind,
};
use crate::context::{Context, ContextParams};
use crate::error::{Error, Result};
use crate::model::KvType;

const CONTEXT_MAGIC: u64 = 0x7478_6574_6e6e_7265; // "ernntext"
const FREED_MAGIC: u64 = 0xdead_dead_dead_dead;

/// KV cache element type for `tern_context_params.kv_type`: IEEE half precision (the
/// default, as llama.cpp's).
pub const TERN_KV_F16: i32 = 0;
/// KV cache element type for `tern_context_params.kv_type`: single precision.
pub const TERN_KV_F32: i32 = 1;

/// Called before each transformer block of an evaluation with the `user_data` given
/// with it; returning true stops the evaluation, which then fails with
/// TERN_ERR_ABORTED and leaves the context as it was. It runs on the thread that
/// called `tern_eval` and must not call tern functions on the same context.
pub type tern_abort_callback = Option<extern "C" fn(user_data: *mut c_void) -> bool>;

/// One sequence being evaluated with a model: its KV cache, scratch memory and last
/// logits. Opaque; used by one thread at a time (different contexts may run on
/// different threads at once, sharing one model).
pub struct tern_context {
    magic: u64,
    pub(crate) ctx: Context,
}

/// How to create a context. Get the defaults from `tern_context_default_params()` and
/// change the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tern_context_params {
    /// Positions the KV cache holds (prompt plus generated tokens); 0 means the model's
    /// training context length. Default 0.
    pub n_ctx: u32,
    /// The most tokens one `tern_eval` accepts; 0 means min(n_ctx, 512). Default 0.
    pub n_batch: u32,
    /// Threads for one-token evaluations (generation); 0 means one per available CPU.
    /// Default 0.
    pub n_threads: i32,
    /// Threads for evaluations of several tokens (prompts); 0 means one per available
    /// CPU. Default 0.
    pub n_threads_batch: i32,
    /// Compute logits for every token of a batch (true) or only for its last (false,
    /// the default).
    pub logits_all: bool,
    /// KV cache element type: TERN_KV_F16 (default) or TERN_KV_F32.
    pub kv_type: i32,
    /// Asked before each block of every evaluation (see `tern_abort_callback`); NULL
    /// (the default) for none.
    pub abort_callback: tern_abort_callback,
    /// Passed to `abort_callback`. Default NULL.
    pub abort_callback_data: *mut c_void,
}

/// What a context has done since it was created or `tern_perf_reset` was called, as
/// llama.cpp's `llama_perf_context_data` reports it. Times are in milliseconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct tern_perf_data {
    /// How long loading the model took.
    pub t_load_ms: f64,
    /// Time spent evaluating batches of more than one token (prompts).
    pub t_p_eval_ms: f64,
    /// Time spent evaluating batches of one token (generation).
    pub t_eval_ms: f64,
    /// Time spent in `tern_sample` with this context.
    pub t_sample_ms: f64,
    /// Tokens evaluated in batches of more than one token.
    pub n_p_eval: i64,
    /// Tokens evaluated one at a time.
    pub n_eval: i64,
    /// Tokens chosen by `tern_sample` with this context.
    pub n_sample: i64,
}

/// Checks a context handle: not null, a live handle from `tern_context_new` (the handle
/// registry), with its magic intact.
pub(crate) fn context_mut<'a>(p: *mut tern_context) -> Result<&'a mut tern_context> {
    if p.is_null() {
        return Err(Error::invalid("ctx is NULL"));
    }
    if !is_live_handle(p, HandleKind::Context) {
        return Err(Error::invalid(
            "ctx is not a live tern_context handle (freed, or not from tern_context_new)",
        ));
    }
    // SAFETY: the registry says p came from tern_context_new and was not freed since; the
    // caller promises no other thread uses it during the call.
    let c = unsafe { &mut *p };
    if c.magic != CONTEXT_MAGIC {
        return Err(Error::invalid(
            "ctx is not a live tern_context handle (freed or corrupt)",
        ));
    }
    Ok(c)
}

/// A C abort callback with its data, callable from the context's thread.
struct CAbort {
    callback: extern "C" fn(*mut c_void) -> bool,
    data: *mut c_void,
}

// SAFETY: the callback and its data are the caller's; the header documents that the
// callback runs on whichever thread calls tern_eval, and a context is used by one thread
// at a time, so the pointer is never used from two threads at once.
unsafe impl Send for CAbort {}

impl CAbort {
    fn ask(&self) -> bool {
        (self.callback)(self.data)
    }
}

fn set_abort(ctx: &mut Context, callback: tern_abort_callback, data: *mut c_void) {
    ctx.set_abort_callback(callback.map(|callback| {
        let c = CAbort { callback, data };
        Box::new(move || c.ask()) as crate::context::AbortCallback
    }));
}

fn count(name: &str, v: i32) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid(format!("{name} must be >= 0 (got {v})")))
}

/// The default context parameters: the model's training context, batches of up to
/// min(n_ctx, 512) tokens, one thread per CPU, logits for the last token only, F16 KV
/// cache, no abort callback.
#[no_mangle]
pub extern "C" fn tern_context_default_params() -> tern_context_params {
    tern_context_params {
        n_ctx: 0,
        n_batch: 0,
        n_threads: 0,
        n_threads_batch: 0,
        logits_all: false,
        kv_type: TERN_KV_F16,
        abort_callback: None,
        abort_callback_data: std::ptr::null_mut(),
    }
}

/// Creates a context for `model`, allocating its KV cache and scratch memory (see
/// `tern_context_memory_bytes`). `params` may be NULL for the defaults. On success
/// stores a new handle in `*out_ctx`, which the caller frees with `tern_context_free`;
/// on failure stores NULL. The context keeps its own reference to the model, so the
/// model may be freed first. A model loaded vocab-only gives TERN_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn tern_context_new(
    model: *const tern_model,
    params: *const tern_context_params,
    out_ctx: *mut *mut tern_context,
) -> tern_status {
    guard("tern_context_new", || {
        let out = out_ptr(out_ctx, "out_ctx")?;
        *out = std::ptr::null_mut();
        let m = model_ref(model)?;
        // SAFETY: a non-null params points to a tern_context_params (caller's contract).
        let p = unsafe { params.as_ref() }
            .copied()
            .unwrap_or_else(|| tern_context_default_params());
        let kv_type = match p.kv_type {
            TERN_KV_F16 => KvType::F16,
            TERN_KV_F32 => KvType::F32,
            other => {
                return Err(Error::invalid(format!(
                    "kv_type {other} is neither TERN_KV_F16 (0) nor TERN_KV_F32 (1)"
                )))
            }
        };
        let rust_params = ContextParams {
            n_ctx: p.n_ctx as usize,
            n_batch: p.n_batch as usize,
            kv_type,
            logits_all: p.logits_all,
            n_threads: count("n_threads", p.n_threads)?,
            n_threads_batch: count("n_threads_batch", p.n_threads_batch)?,
        };
        let mut ctx = Context::new(m.model.clone(), &rust_params)?;
        set_abort(&mut ctx, p.abort_callback, p.abort_callback_data);
        let handle = Box::into_raw(Box::new(tern_context {
            magic: CONTEXT_MAGIC,
            ctx,
        }));
        register_handle(handle, HandleKind::Context);
        *out = handle;
        Ok(())
    })
}

/// Frees a context. NULL is accepted and ignored; a handle already freed is detected
/// (where its memory was not reused) and reported rather than freed twice.
#[no_mangle]
pub extern "C" fn tern_context_free(ctx: *mut tern_context) {
    guard("tern_context_free", || {
        if ctx.is_null() {
            return Ok(());
        }
        context_mut(ctx)?;
        unregister_handle(ctx, HandleKind::Context);
        // SAFETY: the handle was live (checked above) and came from Box::into_raw in
        // tern_context_new; it is out of the registry, so a second free is detected.
        unsafe {
            (*ctx).magic = FREED_MAGIC;
            drop(Box::from_raw(ctx));
        }
        Ok(())
    });
}

/// Bytes the context allocated at creation (KV cache, scratch memory, logits); 0 if
/// `ctx` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_context_memory_bytes(ctx: *mut tern_context) -> usize {
    guard_value("tern_context_memory_bytes", 0, || {
        Ok(context_mut(ctx)?.ctx.memory_bytes())
    })
}

fn ctx_i32(name: &str, ctx: *mut tern_context, field: fn(&Context) -> usize) -> i32 {
    guard_value(name, -1, || {
        Ok(i32::try_from(field(&context_mut(ctx)?.ctx)).unwrap_or(i32::MAX))
    })
}

/// Positions the context holds; -1 if `ctx` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_ctx(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_ctx", ctx, Context::n_ctx)
}

/// The most tokens one `tern_eval` accepts; -1 if `ctx` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_batch(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_batch", ctx, Context::n_batch)
}

/// Tokens in the KV cache: the position the next evaluated token takes. -1 if `ctx` is
/// not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_past(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_past", ctx, Context::n_past)
}

/// Threads used for one-token evaluations (the parameter with 0 resolved); -1 if `ctx`
/// is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_threads(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_threads", ctx, Context::n_threads)
}

/// Threads used for evaluations of several tokens (the parameter with 0 resolved); -1
/// if `ctx` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_threads_batch(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_threads_batch", ctx, Context::n_threads_batch)
}

/// Appends `n_tokens` tokens to the sequence and computes their logits (every token's
/// when the context was made with `logits_all`, else the last one's): a prompt when
/// n_tokens > 1, one decoding step when it is 1. `tokens` is read during the call only.
/// Fails, leaving the context as it was (KV cache and n_past unchanged), with
/// TERN_ERR_INVALID_ARGUMENT for n_tokens <= 0 or > n_batch or a token id outside
/// 0 .. n_vocab, TERN_ERR_CONTEXT_FULL when n_past + n_tokens > n_ctx (truncate or clear
/// the cache, or use a bigger context), and TERN_ERR_ABORTED when the abort callback
/// stops it. A batch refused before evaluation (bad arguments, a full context) keeps the
/// previous call's logits; after an evaluation that fails or is aborted no logits are
/// available until the next successful call.
#[no_mangle]
pub extern "C" fn tern_eval(
    ctx: *mut tern_context,
    tokens: *const tern_token,
    n_tokens: i32,
) -> tern_status {
    guard("tern_eval", || {
        let c = context_mut(ctx)?;
        let n = usize::try_from(n_tokens)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::invalid(format!("n_tokens must be > 0 (got {n_tokens})")))?;
        if tokens.is_null() {
            return Err(Error::invalid("tokens is NULL"));
        }
        if n > c.ctx.n_batch() {
            return Err(Error::invalid(format!(
                "a batch of {n} tokens exceeds the context's n_batch of {}",
                c.ctx.n_batch()
            )));
        }
        // SAFETY: non-null, n <= n_batch (a small, checked bound); the caller promises
        // n_tokens readable ids that nothing writes during the call.
        let ids = unsafe { std::slice::from_raw_parts(tokens, n) };
        if let Some((i, &t)) = ids.iter().enumerate().find(|(_, &t)| t < 0) {
            return Err(Error::invalid(format!(
                "token {i} of the batch is {t}, outside the vocabulary of {}",
                c.ctx.n_vocab()
            )));
        }
        // SAFETY: every id is >= 0, so reading the same memory as u32 gives the same
        // values; i32 and u32 have the same size and alignment.
        let ids = unsafe { std::slice::from_raw_parts(tokens as *const u32, n) };
        c.ctx.eval(ids)
    })
}

/// All logits of the last successful `tern_eval`: `tern_n_outputs(ctx)` rows of
/// `tern_model_n_vocab` floats, row-major, in batch order (every token's row with
/// `logits_all`, else one row, the last token's). Owned by the context: valid until
/// the next `tern_eval`, `tern_kv_clear` or `tern_context_free`. NULL if there are none
/// (no evaluation yet, the last one failed, the cache was cleared) or `ctx` is invalid.
#[no_mangle]
pub extern "C" fn tern_get_logits(ctx: *mut tern_context) -> *const f32 {
    guard_value("tern_get_logits", std::ptr::null(), || {
        let c = context_mut(ctx)?;
        let all = c.ctx.logits();
        if all.is_empty() {
            return Err(Error::NotFound(
                "no logits: nothing has been evaluated since the context was made or cleared"
                    .into(),
            ));
        }
        Ok(all.as_ptr())
    })
}

/// The logits of token `i` of the last evaluated batch (`tern_model_n_vocab` floats),
/// as llama.cpp's `llama_get_logits_ith`: `i` counts from the batch's first token, or
/// from its end when negative (-1 is the last token). Without `logits_all` only the last
/// token has logits. Owned by the context: valid until the next `tern_eval`,
/// `tern_kv_clear` or `tern_context_free`. NULL (with `tern_last_error()` saying why)
/// when that token has no logits or `ctx` is invalid.
#[no_mangle]
pub extern "C" fn tern_get_logits_ith(ctx: *mut tern_context, i: i32) -> *const f32 {
    guard_value("tern_get_logits_ith", std::ptr::null(), || {
        Ok(logits_ith(&context_mut(ctx)?.ctx, i)?.as_ptr())
    })
}

/// Row `i` of the last batch (as `tern_get_logits_ith`), or an error saying why not.
pub(crate) fn logits_ith(ctx: &Context, i: i32) -> Result<&[f32]> {
    if let Some(row) = ctx.logits_of_batch_token(i as isize) {
        return Ok(row);
    }
    let n = ctx.last_batch_len() as isize;
    let i = i as isize;
    Err(if n == 0 {
        Error::invalid(
            "no logits: nothing was evaluated since the context was made or cleared, \
             or the last evaluation failed",
        )
    } else if i < n && i >= -n {
        Error::invalid(format!(
            "token {i} of the last batch has no logits: without logits_all only the \
             last token (index {} or -1) has them",
            n - 1
        ))
    } else {
        Error::invalid(format!("index {i} is outside the last batch of {n} tokens"))
    })
}

/// Rows of logits the last successful `tern_eval` produced (the batch's size with
/// `logits_all`, else 1; 0 when there are none); -1 if `ctx` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_n_outputs(ctx: *mut tern_context) -> i32 {
    ctx_i32("tern_n_outputs", ctx, Context::n_outputs)
}

/// Empties the KV cache: the next `tern_eval` starts a new sequence at position 0.
#[no_mangle]
pub extern "C" fn tern_kv_clear(ctx: *mut tern_context) -> tern_status {
    guard("tern_kv_clear", || {
        context_mut(ctx)?.ctx.kv_clear();
        Ok(())
    })
}

/// Keeps the first `n_keep` positions of the KV cache and drops the rest, so the next
/// `tern_eval` continues at position `n_keep` (to regenerate from there, or to drop a
/// previous reply). `n_keep` must be between 0 and `tern_n_past(ctx)`; otherwise
/// TERN_ERR_INVALID_ARGUMENT and nothing changes.
#[no_mangle]
pub extern "C" fn tern_kv_truncate(ctx: *mut tern_context, n_keep: i32) -> tern_status {
    guard("tern_kv_truncate", || {
        let c = context_mut(ctx)?;
        let n = usize::try_from(n_keep)
            .map_err(|_| Error::invalid(format!("n_keep must be >= 0 (got {n_keep})")))?;
        c.ctx.kv_truncate(n)
    })
}

/// Sets, replaces or (with a NULL `callback`) removes the abort callback of `ctx` (see
/// `tern_abort_callback`); `user_data` is passed to it.
#[no_mangle]
pub extern "C" fn tern_set_abort_callback(
    ctx: *mut tern_context,
    callback: tern_abort_callback,
    user_data: *mut c_void,
) -> tern_status {
    guard("tern_set_abort_callback", || {
        set_abort(&mut context_mut(ctx)?.ctx, callback, user_data);
        Ok(())
    })
}

/// Stores the context's performance counters in `*out` (see `tern_perf_data`).
#[no_mangle]
pub extern "C" fn tern_perf(ctx: *mut tern_context, out: *mut tern_perf_data) -> tern_status {
    guard("tern_perf", || {
        let o = out_ptr(out, "out")?;
        let p = context_mut(ctx)?.ctx.perf();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        *o = tern_perf_data {
            t_load_ms: ms(p.load),
            t_p_eval_ms: ms(p.prompt_time),
            t_eval_ms: ms(p.gen_time),
            t_sample_ms: ms(p.sample_time),
            n_p_eval: n(p.prompt_tokens),
            n_eval: n(p.gen_tokens),
            n_sample: n(p.samples),
        };
        Ok(())
    })
}

/// Zeroes the context's counters (the model's load time stays).
#[no_mangle]
pub extern "C" fn tern_perf_reset(ctx: *mut tern_context) -> tern_status {
    guard("tern_perf_reset", || {
        context_mut(ctx)?.ctx.perf_reset();
        Ok(())
    })
}
