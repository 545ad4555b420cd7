//! A context: one sequence being evaluated with a model. It owns the KV cache, the
//! scratch memory of the forward pass and the logits of the last evaluation, all
//! allocated when it is created. A model is shared by any number of contexts; a context
//! is used by one thread at a time.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kernels::Workers;
use crate::model::forward::{forward, ForwardModel, ForwardScratch};
use crate::model::rope::Rope;
use crate::model::{KvCache, KvType, Model, ModelConfig};

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
    /// Threads evaluation uses; 0 means every core this process may use.
    pub n_threads: usize,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 0,
            n_batch: 0,
            kv_type: KvType::F16,
            logits_all: false,
            n_threads: 0,
        }
    }
}

/// A model plus the state of one sequence.
pub struct Context {
    model: Arc<Model>,
    rope: Rope,
    cache: KvCache,
    scratch: ForwardScratch,
    workers: Workers,
    logits: Vec<f32>,
    n_outputs: usize,
    logits_all: bool,
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
        let cache = KvCache::new(
            params.kv_type,
            n_ctx,
            config.n_layer,
            config.k_dim(),
            config.v_dim(),
        )?;
        let scratch = ForwardScratch::new(config, weights, n_batch, n_ctx)?;
        let workers = Workers::new(params.n_threads, n_batch)?;
        let out_rows = if params.logits_all { n_batch } else { 1 };
        let logits = vec![0.0; out_rows * config.n_vocab];
        let rope = Rope::new(
            config.n_rot,
            config.rope_style,
            config.rope_freq_base,
            config.rope_freq_scale,
            weights.rope_freqs.clone(),
        );
        Ok(Context {
            model,
            rope,
            cache,
            scratch,
            workers,
            logits,
            n_outputs: 0,
            logits_all: params.logits_all,
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

    /// Tokens evaluated so far (the position of the next token).
    pub fn n_past(&self) -> usize {
        self.cache.len()
    }

    /// Threads evaluation uses.
    pub fn n_threads(&self) -> usize {
        self.workers.n_threads()
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
    }

    /// Keeps the first `n` positions, so evaluation continues at position `n`.
    pub fn kv_truncate(&mut self, n: usize) -> Result<()> {
        self.cache.truncate(n)
    }

    /// Appends `tokens` to the sequence (a prompt when several, a decoding step when one)
    /// and computes logits: for every token if the context was created with `logits_all`,
    /// else for the last. A batch that would overflow the context is refused and leaves
    /// the context as it was; so does any invalid token id.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<()> {
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
            workers: &self.workers,
        };
        let len_before = self.cache.len();
        let (cache, scratch) = (&mut self.cache, &mut self.scratch);
        let logits = &mut self.logits[..n_out * n_vocab];
        let result = self
            .workers
            .run(|| forward(&fm, cache, scratch, tokens, n_out, logits));
        if result.is_err() {
            self.cache.truncate(len_before)?;
        } else {
            self.n_outputs = n_out;
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
