//! C entry points for samplers: parameters, create, free, accept, reset, sample from a
//! row of logits. The chain and its semantics are `crate::sampling`'s.

use std::time::Instant;

use super::context::{context_mut, logits_ith, tern_context};
use super::{
    guard, guard_value, is_live_handle, out_ptr, register_handle, tern_status, unregister_handle,
    HandleKind,
};
use crate::error::{Error, Result};
use crate::sampling::{LogitBias, Sampler, SamplerParams, MAX_PENALTY_WINDOW};

const SAMPLER_MAGIC: u64 = 0x6c70_6d61_736e_7265; // "ernsampl"
const FREED_MAGIC: u64 = 0xdead_dead_dead_dead;

/// Pass as `tern_sampler_params.seed` for a seed picked from the clock (the default);
/// `tern_sampler_get_seed` tells which one was used.
pub const TERN_SEED_RANDOM: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// A sampler: parameters, random state, the window of accepted tokens, buffers. Opaque;
/// used by one thread at a time.
pub struct tern_sampler {
    magic: u64,
    pub(crate) sampler: Sampler,
    /// `penalty_last_n` was -1: the window follows the size of the context sampled from.
    window_is_context: bool,
}

/// A fixed amount added to one token's logit before any other step.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tern_logit_bias {
    /// The token id (>= 0).
    pub token: i32,
    /// Added to the logit; -INFINITY makes the token impossible. Not NaN.
    pub bias: f32,
}

/// How a sampler chooses tokens. Get the defaults (llama.cpp's common sampling
/// defaults) from `tern_sampler_default_params()` and change the fields you need. The
/// chain: logit bias, penalties, then greedy if temperature <= 0, else top-k, typical,
/// top-p, min-p, temperature and a seeded random draw.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tern_sampler_params {
    /// Seed of the random draw; TERN_SEED_RANDOM (default) picks one from the clock.
    /// The same seed and logits give the same tokens on every platform.
    pub seed: u64,
    /// Divides the logits before the draw; <= 0 means greedy. Default 0.8.
    pub temperature: f32,
    /// Keep the top_k most probable tokens; <= 0 turns it off. Default 40.
    pub top_k: i32,
    /// Nucleus sampling mass; >= 1 turns it off. Default 0.95.
    pub top_p: f32,
    /// Drop tokens below min_p times the best probability; <= 0 turns it off. Default 0.05.
    pub min_p: f32,
    /// Locally typical sampling mass; >= 1 turns it off. Default 1.0.
    pub typical_p: f32,
    /// top-p, min-p and typical keep at least this many tokens (>= 0). Default 0.
    pub min_keep: i32,
    /// Penalties look at the last penalty_last_n accepted tokens; 0 turns them off; -1
    /// means the context's size (llama.cpp's convention): the window is bound to
    /// `tern_n_ctx` of the context at each `tern_sample` (keeping the newest tokens), and
    /// holds up to 1048576 tokens before the first. Other negative values are refused.
    /// Default 64.
    pub penalty_last_n: i32,
    /// Repetition penalty (> 0): a repeated token's logit is divided by it when positive,
    /// multiplied when not. 1.0 (default) turns it off.
    pub penalty_repeat: f32,
    /// Subtracted from a token's logit once per occurrence in the window. Default 0.
    pub penalty_freq: f32,
    /// Subtracted once from the logit of any token in the window. Default 0.
    pub penalty_present: f32,
    /// `n_logit_bias` biases, or NULL when `n_logit_bias` is 0. Owned by the caller and
    /// copied by `tern_sampler_new`; it need not outlive that call. Default NULL.
    pub logit_bias: *const tern_logit_bias,
    /// Number of entries in `logit_bias` (>= 0). Default 0.
    pub n_logit_bias: i32,
}

/// Checks a sampler handle: not null, a live handle from `tern_sampler_new` (the handle
/// registry), with its magic intact.
pub(crate) fn sampler_mut<'a>(p: *mut tern_sampler) -> Result<&'a mut tern_sampler> {
    if p.is_null() {
        return Err(Error::invalid("sampler is NULL"));
    }
    if !is_live_handle(p, HandleKind::Sampler) {
        return Err(Error::invalid(
            "sampler is not a live tern_sampler handle (freed, or not from tern_sampler_new)",
        ));
    }
    // SAFETY: the registry says p came from tern_sampler_new and was not freed since; the
    // caller promises no other thread uses it during the call.
    let s = unsafe { &mut *p };
    if s.magic != SAMPLER_MAGIC {
        return Err(Error::invalid(
            "sampler is not a live tern_sampler handle (freed or corrupt)",
        ));
    }
    Ok(s)
}

fn non_negative(name: &str, v: i32) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid(format!("{name} must be >= 0 (got {v})")))
}

/// Converts C parameters to Rust ones, copying the bias array. A window of -1 (the
/// context's size) starts at the largest window allowed; `tern_sample` narrows it.
fn params_from_c(p: &tern_sampler_params) -> Result<SamplerParams> {
    let penalty_last_n = match p.penalty_last_n {
        -1 => MAX_PENALTY_WINDOW,
        n => non_negative("penalty_last_n (or -1)", n)?,
    };
    let n_bias = non_negative("n_logit_bias", p.n_logit_bias)?;
    let biases: &[tern_logit_bias] = if n_bias == 0 {
        &[]
    } else if p.logit_bias.is_null() {
        return Err(Error::invalid(
            "logit_bias is NULL but n_logit_bias is not 0",
        ));
    } else {
        // SAFETY: non-null, and the caller promises n_logit_bias readable entries.
        unsafe { std::slice::from_raw_parts(p.logit_bias, n_bias) }
    };
    let logit_bias = biases
        .iter()
        .map(|b| {
            let token = u32::try_from(b.token)
                .map_err(|_| Error::invalid(format!("logit_bias names token {} (< 0)", b.token)))?;
            Ok(LogitBias {
                token,
                bias: b.bias,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SamplerParams {
        seed: p.seed,
        temperature: p.temperature,
        top_k: u32::try_from(p.top_k).unwrap_or(0),
        top_p: p.top_p,
        min_p: p.min_p,
        typical_p: p.typical_p,
        min_keep: non_negative("min_keep", p.min_keep)?,
        penalty_last_n,
        penalty_repeat: p.penalty_repeat,
        penalty_freq: p.penalty_freq,
        penalty_present: p.penalty_present,
        logit_bias,
    })
}

/// The default sampler parameters (llama.cpp's common defaults): temperature 0.8,
/// top_k 40, top_p 0.95, min_p 0.05, typical off, penalties off over a window of 64,
/// random seed, no biases.
#[no_mangle]
pub extern "C" fn tern_sampler_default_params() -> tern_sampler_params {
    let d = SamplerParams::default();
    tern_sampler_params {
        seed: d.seed,
        temperature: d.temperature,
        top_k: d.top_k as i32,
        top_p: d.top_p,
        min_p: d.min_p,
        typical_p: d.typical_p,
        min_keep: d.min_keep as i32,
        penalty_last_n: d.penalty_last_n as i32,
        penalty_repeat: d.penalty_repeat,
        penalty_freq: d.penalty_freq,
        penalty_present: d.penalty_present,
        logit_bias: std::ptr::null(),
        n_logit_bias: 0,
    }
}

/// Creates a sampler. `params` may be NULL for the defaults; it is copied (with its bias
/// array) and need not outlive the call. On success stores a new handle in
/// `*out_sampler`, which the caller frees with `tern_sampler_free`; on failure (a NaN
/// or infinite parameter, a negative count, ...) stores NULL.
#[no_mangle]
pub extern "C" fn tern_sampler_new(
    params: *const tern_sampler_params,
    out_sampler: *mut *mut tern_sampler,
) -> tern_status {
    guard("tern_sampler_new", || {
        let out = out_ptr(out_sampler, "out_sampler")?;
        *out = std::ptr::null_mut();
        // SAFETY: a non-null params points to a tern_sampler_params (caller's contract).
        let p = unsafe { params.as_ref() }
            .copied()
            .unwrap_or_else(|| tern_sampler_default_params());
        let sampler = Sampler::new(params_from_c(&p)?)?;
        let handle = Box::into_raw(Box::new(tern_sampler {
            magic: SAMPLER_MAGIC,
            sampler,
            window_is_context: p.penalty_last_n == -1,
        }));
        register_handle(handle, HandleKind::Sampler);
        *out = handle;
        Ok(())
    })
}

/// Frees a sampler. NULL is accepted and ignored; a handle already freed is detected
/// (where its memory was not reused) and reported rather than freed twice.
#[no_mangle]
pub extern "C" fn tern_sampler_free(sampler: *mut tern_sampler) {
    guard("tern_sampler_free", || {
        if sampler.is_null() {
            return Ok(());
        }
        sampler_mut(sampler)?;
        unregister_handle(sampler, HandleKind::Sampler);
        // SAFETY: the handle was live (checked above) and came from Box::into_raw in
        // tern_sampler_new; it is out of the registry, so a second free is detected.
        unsafe {
            (*sampler).magic = FREED_MAGIC;
            drop(Box::from_raw(sampler));
        }
        Ok(())
    });
}

/// Records `token` (>= 0) as part of the sequence, for the penalties: call it for each
/// prompt token you want penalised and for each sampled token you keep.
/// `tern_sampler_sample_logits` does not record the token it returns.
#[no_mangle]
pub extern "C" fn tern_sampler_accept(sampler: *mut tern_sampler, token: i32) -> tern_status {
    guard("tern_sampler_accept", || {
        let s = sampler_mut(sampler)?;
        let token = u32::try_from(token)
            .map_err(|_| Error::invalid(format!("token {token} is negative")))?;
        s.sampler.accept(token);
        Ok(())
    })
}

/// Forgets the accepted tokens and restarts the random generator from the seed (a new
/// random seed if the parameters asked for TERN_SEED_RANDOM).
#[no_mangle]
pub extern "C" fn tern_sampler_reset(sampler: *mut tern_sampler) -> tern_status {
    guard("tern_sampler_reset", || {
        sampler_mut(sampler)?.sampler.reset();
        Ok(())
    })
}

/// The seed in use (the one picked when the parameters said TERN_SEED_RANDOM), stored in
/// `*out_seed`: passing it back as the seed repeats the run.
#[no_mangle]
pub extern "C" fn tern_sampler_get_seed(
    sampler: *mut tern_sampler,
    out_seed: *mut u64,
) -> tern_status {
    guard("tern_sampler_get_seed", || {
        let s = sampler_mut(sampler)?;
        *out_ptr(out_seed, "out_seed")? = s.sampler.seed();
        Ok(())
    })
}

/// Chooses a token from a row of `n_vocab` (> 0) logits owned by the caller
/// (`logits[i]` is token i's; read during the call only) and stores it in `*out_token`
/// (-1 on failure). NaN and -INFINITY logits mean impossible tokens; a row with no
/// possible token fails. The token is not recorded: call `tern_sampler_accept` to keep it.
#[no_mangle]
pub extern "C" fn tern_sampler_sample_logits(
    sampler: *mut tern_sampler,
    logits: *const f32,
    n_vocab: i32,
    out_token: *mut i32,
) -> tern_status {
    guard("tern_sampler_sample_logits", || {
        let out = out_ptr(out_token, "out_token")?;
        *out = -1;
        let s = sampler_mut(sampler)?;
        if logits.is_null() {
            return Err(Error::invalid("logits is NULL"));
        }
        let n = usize::try_from(n_vocab)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::invalid(format!("n_vocab must be > 0 (got {n_vocab})")))?;
        // SAFETY: non-null, and the caller promises n_vocab readable floats that no one
        // writes during the call.
        let row = unsafe { std::slice::from_raw_parts(logits, n) };
        let token = s.sampler.sample(row)?;
        *out = token as i32; // < n_vocab <= i32::MAX
        Ok(())
    })
}

/// How many accepted tokens the penalties currently look at (at most `penalty_last_n`),
/// or -1 if `sampler` is not a valid handle.
#[no_mangle]
pub extern "C" fn tern_sampler_window_len(sampler: *mut tern_sampler) -> i32 {
    guard_value("tern_sampler_window_len", -1, || {
        let s = sampler_mut(sampler)?;
        Ok(i32::try_from(s.sampler.window().len()).unwrap_or(i32::MAX))
    })
}

/// Chooses a token from the logits of token `idx` of the context's last evaluated batch
/// (as `tern_get_logits_ith`: -1 is the last token) and stores it in `*out_token` (-1 on
/// failure). The token is not recorded: call `tern_sampler_accept` to keep it. The time
/// spent counts in the context's `tern_perf` (`t_sample_ms`, `n_sample`). With the same
/// seed, parameters and logits, the same tokens come out on every platform. A sampler
/// made with penalty_last_n -1 binds its window to this context's size first.
#[no_mangle]
pub extern "C" fn tern_sample(
    sampler: *mut tern_sampler,
    ctx: *mut tern_context,
    idx: i32,
    out_token: *mut i32,
) -> tern_status {
    guard("tern_sample", || {
        let started = Instant::now();
        let out = out_ptr(out_token, "out_token")?;
        *out = -1;
        let s = sampler_mut(sampler)?;
        let c = context_mut(ctx)?;
        if s.window_is_context && s.sampler.params().penalty_last_n != c.ctx.n_ctx() {
            s.sampler.set_penalty_last_n(c.ctx.n_ctx())?;
        }
        let token = s.sampler.sample(logits_ith(&c.ctx, idx)?)?;
        *out = token as i32; // < n_vocab <= i32::MAX
        c.ctx.record_sample(started.elapsed());
        Ok(())
    })
}
