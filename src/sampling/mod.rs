//! Choosing the next token from a row of logits: a sampler chain like llama.cpp's.
//!
//! [`Sampler::sample`] runs, in this order (llama.cpp's common defaults):
//!
//! 1. **logit bias**: adds a fixed amount to chosen tokens' logits (`-inf` bans a token);
//! 2. **penalties** over the last `penalty_last_n` accepted tokens, llama.cpp's formulas:
//!    a token seen `count` times gets `logit / repeat` if its logit is positive, else
//!    `logit * repeat`, then `- count * freq - present`;
//! 3. then, when `temperature <= 0`, **greedy**: the highest logit, ties to the lowest id;
//! 4. otherwise **top-k** → **typical** → **top-p** → **min-p** → **temperature** → a
//!    seeded random **draw** from the softmax of what is left.
//!
//! Determinism: the same seed and the same logits give the same tokens on every platform
//! and in every run. The random generator is our own (xoshiro256** seeded by SplitMix64,
//! [`rng`]), probabilities are computed in `f64` with our own `exp`/`ln` ([`math`]) and
//! summed in a fixed order, and candidates are ordered by a total order (logit
//! descending, then id ascending), so no result depends on a sort algorithm or a `libm`.
//!
//! Logits that are NaN count as impossible tokens (as do `-inf` ones); a row with no
//! possible token is an error. Once sized (on the first call, to the row's length), a
//! sampler allocates nothing per token.

pub mod math;
pub mod rng;
mod steps;

use std::collections::VecDeque;

use crate::error::{Error, Result};
pub use steps::Candidate;
use steps::Candidates;

/// Ask for a seed from the clock and the OS instead of a fixed one (llama.cpp's
/// `LLAMA_DEFAULT_SEED` plays this role). [`Sampler::seed`] tells the seed that was used.
pub const SEED_RANDOM: u64 = u64::MAX;

/// A window larger than this is refused (it would hold this many tokens in memory).
pub const MAX_PENALTY_WINDOW: usize = 1 << 20;

/// A fixed amount added to one token's logit before any other step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogitBias {
    /// The token id.
    pub token: u32,
    /// Added to the token's logit; `f32::NEG_INFINITY` makes the token impossible.
    pub bias: f32,
}

/// What the sampler does. The defaults are llama.cpp's common sampling defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    /// Seed of the random draw; [`SEED_RANDOM`] picks one from the clock. Default
    /// [`SEED_RANDOM`], as in llama.cpp.
    pub seed: u64,
    /// Divides the logits before the draw; `<= 0` means greedy (no randomness, top-k,
    /// typical, top-p, min-p are skipped). Default 0.8.
    pub temperature: f32,
    /// Keep only the `top_k` best tokens; 0 turns it off. Default 40.
    pub top_k: u32,
    /// Keep the smallest set of best tokens whose probability reaches `top_p`; `>= 1`
    /// turns it off. Default 0.95.
    pub top_p: f32,
    /// Drop tokens less probable than `min_p` times the most probable one; `<= 0` turns
    /// it off. Default 0.05.
    pub min_p: f32,
    /// Locally typical sampling mass; `>= 1` turns it off. Default 1.0 (off).
    pub typical_p: f32,
    /// The filters (top-p, min-p, typical) keep at least this many tokens. Default 0.
    pub min_keep: usize,
    /// Penalties look at the last this many accepted tokens; 0 turns them off. Default 64.
    pub penalty_last_n: usize,
    /// Repetition penalty (> 0); 1.0 turns it off. Default 1.0.
    pub penalty_repeat: f32,
    /// Subtracted once per occurrence in the window; 0 turns it off. Default 0.
    pub penalty_freq: f32,
    /// Subtracted once from any token present in the window; 0 turns it off. Default 0.
    pub penalty_present: f32,
    /// Per-token logit biases, applied first (a token listed twice gets both).
    pub logit_bias: Vec<LogitBias>,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            seed: SEED_RANDOM,
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            min_keep: 0,
            penalty_last_n: 64,
            penalty_repeat: 1.0,
            penalty_freq: 0.0,
            penalty_present: 0.0,
            logit_bias: Vec::new(),
        }
    }
}

impl SamplerParams {
    /// Greedy decoding (temperature 0), everything else at its default.
    pub fn greedy() -> Self {
        SamplerParams {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Checks the parameters: every number finite (temperature, top-p, min-p, typical-p
    /// and the penalties; an infinite value turns nothing on or off that a finite one
    /// cannot), a repetition penalty > 0, a window of at most [`MAX_PENALTY_WINDOW`], no
    /// NaN bias (a bias of `-inf` bans its token).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("min_p", self.min_p),
            ("typical_p", self.typical_p),
            ("penalty_repeat", self.penalty_repeat),
            ("penalty_freq", self.penalty_freq),
            ("penalty_present", self.penalty_present),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(format!(
                    "sampler parameter {name} must be finite (got {v})"
                )));
            }
        }
        if self.penalty_repeat <= 0.0 {
            return Err(Error::invalid(format!(
                "penalty_repeat must be > 0 (got {}; 1.0 turns it off)",
                self.penalty_repeat
            )));
        }
        if self.penalty_last_n > MAX_PENALTY_WINDOW {
            return Err(Error::invalid(format!(
                "penalty_last_n {} is larger than the limit {MAX_PENALTY_WINDOW}",
                self.penalty_last_n
            )));
        }
        if let Some(b) = self.logit_bias.iter().find(|b| b.bias.is_nan()) {
            return Err(Error::invalid(format!(
                "the logit bias of token {} is NaN",
                b.token
            )));
        }
        Ok(())
    }

    fn penalties_on(&self) -> bool {
        self.penalty_last_n > 0
            && (self.penalty_repeat != 1.0
                || self.penalty_freq != 0.0
                || self.penalty_present != 0.0)
    }
}

/// A sampler: parameters, the random generator, the window of accepted tokens, and the
/// buffers it works in. One sampler serves one sequence; it is `Send` but not shared.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    seed: u64,
    rng: rng::Xoshiro256,
    /// The last `penalty_last_n` accepted tokens, oldest first.
    window: VecDeque<u32>,
    /// Candidate buffer, capacity n_vocab once sized.
    cands: Vec<Candidate>,
    /// Per-token occurrence counts for the penalties; all zero between calls.
    counts: Vec<u32>,
    /// Scratch for typical sampling.
    order: Vec<(f64, u32)>,
    tmp: Vec<Candidate>,
}

impl Sampler {
    /// A sampler with `params` (checked by [`SamplerParams::validate`]). Buffers are
    /// sized on the first [`Sampler::sample`].
    pub fn new(params: SamplerParams) -> Result<Self> {
        params.validate()?;
        let seed = resolve_seed(params.seed);
        Ok(Sampler {
            seed,
            rng: rng::Xoshiro256::from_seed(seed),
            window: VecDeque::with_capacity(params.penalty_last_n),
            cands: Vec::new(),
            counts: Vec::new(),
            order: Vec::new(),
            tmp: Vec::new(),
            params,
        })
    }

    /// The parameters the sampler was made with.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// The seed in use: the one asked for, or the one picked for [`SEED_RANDOM`].
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The accepted tokens the penalties currently look at, oldest first.
    pub fn window(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.window.iter().copied()
    }

    /// The candidates of the last [`Sampler::sample`]: after a random draw, the tokens
    /// that survived the filters, with the logits the draw used (after temperature) and
    /// their probabilities; after a greedy choice, every possible token in id order with
    /// its logit after biases and penalties (`p` unset). Empty before the first sample or
    /// after a failed one.
    pub fn candidates(&self) -> &[Candidate] {
        &self.cands
    }

    /// Records a token as part of the sequence (a prompt token or a sampled one), for the
    /// penalties. [`Sampler::sample`] does not do this by itself.
    pub fn accept(&mut self, token: u32) {
        let cap = self.params.penalty_last_n;
        if cap == 0 {
            return;
        }
        if self.window.len() == cap {
            self.window.pop_front();
        }
        self.window.push_back(token);
    }

    /// Changes the penalty window to the last `n` accepted tokens, keeping the newest
    /// ones already accepted (the C API binds a window of "the context's size" this way).
    /// Fails, changing nothing, when `n` exceeds [`MAX_PENALTY_WINDOW`].
    pub fn set_penalty_last_n(&mut self, n: usize) -> Result<()> {
        if n > MAX_PENALTY_WINDOW {
            return Err(Error::invalid(format!(
                "penalty_last_n {n} is larger than the limit {MAX_PENALTY_WINDOW}"
            )));
        }
        while self.window.len() > n {
            self.window.pop_front();
        }
        if n > self.window.capacity() {
            self.window.reserve_exact(n - self.window.len());
        } else {
            self.window.shrink_to(n);
        }
        self.params.penalty_last_n = n;
        Ok(())
    }

    /// Forgets the accepted tokens and restarts the random generator from the seed
    /// (a new random seed when the parameters asked for [`SEED_RANDOM`]).
    pub fn reset(&mut self) {
        self.window.clear();
        self.seed = resolve_seed(self.params.seed);
        self.rng = rng::Xoshiro256::from_seed(self.seed);
    }

    /// Chooses a token from one row of logits (`logits[i]` is token `i`'s). Fails when
    /// the row is empty, when no token is possible (every logit NaN or `-inf` after the
    /// biases and penalties), or when a logit bias names a token beyond the row.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        self.cands.clear();
        let n = logits.len();
        if n == 0 {
            return Err(Error::invalid("cannot sample from an empty row of logits"));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::invalid(format!("{n} logits are too many to sample")));
        }
        if let Some(b) = self
            .params
            .logit_bias
            .iter()
            .find(|b| b.token as usize >= n)
        {
            return Err(Error::invalid(format!(
                "a logit bias names token {} but the row has only {n} logits",
                b.token
            )));
        }
        self.size_buffers(n);

        self.cands
            .extend(logits.iter().enumerate().map(|(i, &logit)| Candidate {
                id: i as u32,
                logit,
                p: 0.0,
            }));
        for b in &self.params.logit_bias {
            self.cands[b.token as usize].logit += b.bias;
        }
        if self.params.penalties_on() {
            steps::apply_penalties(
                &mut self.cands,
                self.window.iter().copied(),
                &mut self.counts,
                self.params.penalty_repeat,
                self.params.penalty_freq,
                self.params.penalty_present,
            );
        }
        // NaN and -inf tokens cannot be chosen: drop them before anything orders them.
        self.cands
            .retain(|c| !c.logit.is_nan() && c.logit != f32::NEG_INFINITY);
        if self.cands.is_empty() {
            return Err(Error::invalid(
                "no token is possible: every logit is NaN or -inf (after biases and penalties)",
            ));
        }

        let p = &self.params;
        if p.temperature <= 0.0 {
            return Ok(steps::argmax(&self.cands));
        }
        let mut c = Candidates {
            items: &mut self.cands,
            sorted: false,
        };
        steps::top_k(&mut c, p.top_k as usize);
        steps::typical(
            &mut c,
            p.typical_p,
            p.min_keep,
            &mut self.order,
            &mut self.tmp,
        );
        steps::top_p(&mut c, p.top_p, p.min_keep);
        steps::min_p(&mut c, p.min_p, p.min_keep);
        steps::temperature(&mut c, p.temperature);
        let u = self.rng.next_f64();
        Ok(steps::draw(&mut c, u))
    }

    /// Gives every buffer room for `n` candidates (allocates only when `n` grows).
    fn size_buffers(&mut self, n: usize) {
        if self.cands.capacity() < n {
            self.cands.reserve_exact(n - self.cands.len());
        }
        if self.params.penalties_on() && self.counts.len() < n {
            self.counts.resize(n, 0);
        }
        if self.params.typical_p < 1.0 && self.params.temperature > 0.0 {
            if self.order.capacity() < n {
                self.order.reserve_exact(n - self.order.len());
            }
            if self.tmp.capacity() < n {
                self.tmp.reserve_exact(n - self.tmp.len());
            }
        }
    }
}

fn resolve_seed(seed: u64) -> u64 {
    if seed == SEED_RANDOM {
        // Never hand back SEED_RANDOM itself, so the reported seed reproduces the run.
        match rng::entropy_seed() {
            SEED_RANDOM => 0,
            s => s,
        }
    } else {
        seed
    }
}
