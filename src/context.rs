//! A context: one sequence being evaluated with a model. It owns the KV cache, the
//! scratch memory of the forward pass and the logits of the last evaluation, all
//! allocated when it is created. A model is shared by any number of contexts; a context
//! is used by one thread at a time.

mod perf;

use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::kernels::Workers;
use crate::model::forward::{forward, ForwardModel, ForwardScratch};
use crate::model::memory::{check_fits, try_filled_vec};
use crate::model::rope::Rope;
use crate::model::{KvCache, KvType, Model, ModelConfig};
pub use perf::Perf;

/// Asked before each block of an evaluation; returning true stops it with
/// [`Error::Aborted`] (the context is left as it was before the evaluation).
pub type AbortCallback = Box<dyn FnMut() -> bool + Send>;

/// How to create a context.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextParams {
    /// Positions the KV cache holds; 0 means the model's training context length.
    pub n_ctx: usize,
    /// The most tokens one [`Context::eval`] accepts; 0 means `min(n_ctx, 512)`.
    pub n_batch: usize,
    /// Element type of the KV cache.
    pub kv_type: KvType,
    /// Compute logits for every token of a batch (else only for its last token).
    pub logits_all: bool,
    /// Threads for one-token evaluations (generation); 0 means one per available CPU.
    pub n_threads: usize,
    /// Threads for batches of several tokens (prompts); 0 means one per available CPU.
    pub n_threads_batch: usize,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 0,
            n_batch: 0,
            kv_type: KvType::F16,
            logits_all: false,
            n_threads: 0,
            n_threads_batch: 0,
        }
    }
}

/// `n`, or the number of CPUs available to the process when `n` is 0.
fn threads_or_available(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// A model plus the state of one sequence.
pub struct Context {
    model: Arc<Model>,
    rope: Rope,
    cache: KvCache,
    scratch: ForwardScratch,
    /// Threads for batches (and for single tokens when `workers_decode` is `None`).
    workers: Workers,
    /// Threads for single tokens when `n_threads` differs from `n_threads_batch`.
    workers_decode: Option<Workers>,
    logits: Vec<f32>,
    n_outputs: usize,
    /// Tokens in the last successful evaluation.
    last_batch_len: usize,
    logits_all: bool,
    n_threads: usize,
    n_threads_batch: usize,
    perf: Perf,
    abort: Option<AbortCallback>,
}

impl Context {
    /// Creates a context, allocating its KV cache and scratch memory.
    pub fn new(model: Arc<Model>, params: &ContextParams) -> Result<Context> {
        let (config, weights) = match (model.config(), model.weights()) {
            (Some(c), Some(w)) => (c, w),
            _ => {
                return Err(Error::invalid(
                    "the model was loaded vocab-only: it has no weights to evaluate",
                ))
            }
        };
        let n_ctx = if params.n_ctx == 0 {
            config.n_ctx_train
        } else {
            params.n_ctx
        };
        if n_ctx == 0 {
            return Err(Error::invalid(
                "n_ctx is 0 and the model gives no context length",
            ));
        }
        let n_batch = if params.n_batch == 0 {
            n_ctx.min(512)
        } else {
            params.n_batch.min(n_ctx)
        };
        let out_rows = if params.logits_all { n_batch } else { 1 };
        // Everything is sized before anything is allocated: an n_ctx (or a trained
        // context length in the file) too large for this machine is an error, not an abort.
        let kv_bytes = KvCache::bytes_needed(
            params.kv_type,
            n_ctx,
            config.n_layer,
            config.k_dim(),
            config.v_dim(),
        );
        // Prompts run on `n_threads_batch` threads, single tokens on `n_threads`: one pool
        // when the two agree, else a second, small one for decoding.
        let (t_decode, t_batch) = (
            threads_or_available(params.n_threads),
            threads_or_available(params.n_threads_batch),
        );
        let total = kv_bytes
            .zip(ForwardScratch::bytes_needed(
                config,
                n_batch,
                n_ctx,
                t_decode.max(t_batch),
            ))
            .and_then(|(a, b)| a.checked_add(b))
            .zip(
                out_rows
                    .checked_mul(config.n_vocab)
                    .and_then(|n| n.checked_mul(4)),
            )
            .and_then(|(a, b)| a.checked_add(b));
        check_fits(
            total,
            &format!("a context of {n_ctx} positions and batches of {n_batch}"),
        )?;
        let cache = KvCache::new(
            params.kv_type,
            n_ctx,
            config.n_layer,
            config.k_dim(),
            config.v_dim(),
        )?;
        let scratch = ForwardScratch::new(config, weights, n_batch, n_ctx, t_decode.max(t_batch))?;
        let workers = Workers::new(t_batch, n_batch)?;
        let workers_decode = if t_decode == t_batch {
            None
        } else {
            Some(Workers::new(t_decode, 1)?)
        };
        let logits = try_filled_vec(out_rows * config.n_vocab, 0.0, "the logits")?;
        let rope = Rope::new(
            config.n_rot,
            config.rope_style,
            config.rope_freq_base,
            config.rope_freq_scale,
            weights.rope_freqs.clone(),
        );
        let load_time = model.load_time();
        Ok(Context {
            model,
            rope,
            cache,
            scratch,
            workers,
            workers_decode,
            logits,
            n_outputs: 0,
            last_batch_len: 0,
            logits_all: params.logits_all,
            n_threads: threads_or_available(params.n_threads),
            n_threads_batch: threads_or_available(params.n_threads_batch),
            perf: Perf {
                load: load_time,
                ..Perf::default()
            },
            abort: None,
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    fn config(&self) -> &ModelConfig {
        self.model.config().expect("checked at creation")
    }

    /// Positions the context holds.
    pub fn n_ctx(&self) -> usize {
        self.cache.capacity()
    }

    /// The most tokens one [`Context::eval`] accepts.
    pub fn n_batch(&self) -> usize {
        self.scratch.n_batch()
    }

    /// Threads for one-token evaluations (the parameter, with 0 resolved).
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Threads for batches of several tokens (the parameter, with 0 resolved).
    pub fn n_threads_batch(&self) -> usize {
        self.n_threads_batch
    }

    /// Whether every token of a batch gets logits (else only the last).
    pub fn logits_all(&self) -> bool {
        self.logits_all
    }

    /// Sets (or, with `None`, removes) the callback asked before each block of an
    /// evaluation; when it returns true, [`Context::eval`] fails with [`Error::Aborted`]
    /// and the context is left as it was before that evaluation.
    pub fn set_abort_callback(&mut self, callback: Option<AbortCallback>) {
        self.abort = callback;
    }

    /// The performance counters.
    pub fn perf(&self) -> Perf {
        self.perf
    }

    /// Zeroes the counters (the model's load time stays).
    pub fn perf_reset(&mut self) {
        self.perf = Perf {
            load: self.perf.load,
            ..Perf::default()
        };
    }

    /// Counts one sampled token that took `time` (for callers that sample from this
    /// context's logits, such as the C API's `tern_sample`).
    pub fn record_sample(&mut self, time: std::time::Duration) {
        self.perf.samples += 1;
        self.perf.sample_time += time;
    }

    /// Tokens evaluated so far (the position of the next token).
    pub fn n_past(&self) -> usize {
        self.cache.len()
    }

    /// Vocabulary size (length of one logits row).
    pub fn n_vocab(&self) -> usize {
        self.config().n_vocab
    }

    /// Bytes of KV cache, scratch and logits memory.
    pub fn memory_bytes(&self) -> usize {
        self.cache.memory_bytes() + self.scratch.memory_bytes() + self.logits.len() * 4
    }

    /// Forgets the sequence.
    pub fn kv_clear(&mut self) {
        self.cache.clear();
        self.n_outputs = 0;
        self.last_batch_len = 0;
    }

    /// Keeps the first `n` positions, so evaluation continues at position `n`.
    pub fn kv_truncate(&mut self, n: usize) -> Result<()> {
        self.cache.truncate(n)
    }

    /// Appends `tokens` to the sequence (a prompt when several, a decoding step when one)
    /// and computes logits: for every token if the context was created with `logits_all`,
    /// else for the last. A batch that would overflow the context is refused and leaves
    /// the context as it was; so does any invalid token id, and so does an evaluation the
    /// abort callback stops.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<()> {
        let started = Instant::now();
        let n = tokens.len();
        if n == 0 {
            return Err(Error::invalid("eval needs at least one token"));
        }
        if n > self.n_batch() {
            return Err(Error::invalid(format!(
                "a batch of {n} tokens exceeds the context's n_batch of {}",
                self.n_batch()
            )));
        }
        let n_vocab = self.n_vocab();
        if let Some((i, &t)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= n_vocab)
        {
            return Err(Error::invalid(format!(
                "token {i} of the batch is {t}, outside the vocabulary of {n_vocab}"
            )));
        }
        if self.cache.len() + n > self.cache.capacity() {
            return Err(Error::ContextFull(format!(
                "{} positions are used and the batch has {n} tokens; the context holds {}",
                self.cache.len(),
                self.cache.capacity()
            )));
        }
        let n_out = if self.logits_all { n } else { 1 };
        self.n_outputs = 0;
        let model = &*self.model;
        let (config, weights) = (
            model.config().expect("checked"),
            model.weights().expect("checked"),
        );
        let fm = ForwardModel {
            config,
            weights,
            file: model.file().bytes(),
            rope: &self.rope,
            workers: match (&self.workers_decode, n) {
                (Some(w), 1) => w,
                _ => &self.workers,
            },
        };
        let len_before = self.cache.len();
        let mut no_abort = || false;
        let should_abort: &mut (dyn FnMut() -> bool + Send) = match self.abort.as_mut() {
            Some(cb) => cb,
            None => &mut no_abort,
        };
        let (cache, scratch) = (&mut self.cache, &mut self.scratch);
        let logits = &mut self.logits[..n_out * n_vocab];
        let result = fm
            .workers
            .run(|| forward(&fm, cache, scratch, tokens, n_out, logits, should_abort));
        if result.is_err() {
            self.cache.truncate(len_before)?;
            self.last_batch_len = 0;
        } else {
            self.n_outputs = n_out;
            self.last_batch_len = n;
            self.perf.record_eval(n, started.elapsed());
        }
        result
    }

    /// Rows of logits the last [`Context::eval`] produced.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// All logits of the last evaluation: `n_outputs() × n_vocab()`, row-major.
    pub fn logits(&self) -> &[f32] {
        &self.logits[..self.n_outputs * self.n_vocab()]
    }

    /// Logits row `i` of the last evaluation (`0..n_outputs()`).
    pub fn logits_row(&self, i: usize) -> Option<&[f32]> {
        let v = self.n_vocab();
        (i < self.n_outputs).then(|| &self.logits[i * v..(i + 1) * v])
    }

    /// Tokens in the last successful evaluation (0 before the first, after a failed one
    /// and after [`Context::kv_clear`]).
    pub fn last_batch_len(&self) -> usize {
        self.last_batch_len
    }

    /// The logits of token `i` of the last evaluated batch, llama.cpp's
    /// `llama_get_logits_ith`: `i` counts from the start of the batch, or from its end
    /// when negative (-1 is the last token). Without `logits_all` only the last token has
    /// logits. `None` when that token has none.
    pub fn logits_of_batch_token(&self, i: isize) -> Option<&[f32]> {
        let n = self.last_batch_len as isize;
        let pos = if i < 0 { n + i } else { i };
        if pos < 0 || pos >= n {
            return None;
        }
        // The output rows are the batch's last n_outputs tokens.
        let first_with_logits = n - self.n_outputs as isize;
        let row = pos - first_with_logits;
        usize::try_from(row).ok().and_then(|r| self.logits_row(r))
    }

    /// The logits of the last token of the last evaluation.
    pub fn last_logits(&self) -> Option<&[f32]> {
        self.n_outputs
            .checked_sub(1)
            .and_then(|i| self.logits_row(i))
    }
}

/// The id of the largest value (ties go to the lowest id), as greedy sampling picks it.
pub fn argmax(logits: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}
