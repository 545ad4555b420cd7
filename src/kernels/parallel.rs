//! Threads: one rayon pool per context, made when the context is created, and the split of
//! a matrix product into contiguous row chunks (each thread streams its own run of weight
//! rows). Nothing here allocates after [`Workers::new`]: the staging buffers the chunks of a
//! batched product write into are made up front.
//!
//! Every output row is computed by one kernel call from the same operands whatever the
//! chunking, so results do not depend on the number of threads.
//!
//! The context runs a whole evaluation inside the pool ([`Workers::run`]): one hand-over
//! to the pool per evaluation, and the products inside it split their rows with rayon's
//! work stealing among the pool's threads. (rayon's injector queue allocates one ~1.5 KiB
//! block per 63 hand-overs, i.e. per 63 evaluations; nothing is allocated per product.)

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per chunk of a batched product (several tokens): each chunk's outputs go through
/// a staging buffer of `n_batch × STAGE_ROWS` floats per thread.
pub const STAGE_ROWS: usize = 64;

/// Chunks per thread a product is cut into (for balance between threads).
const CHUNKS_PER_THREAD: usize = 4;

/// The threads of one context and their staging memory.
pub struct Workers {
    pool: Option<rayon::ThreadPool>,
    n_threads: usize,
    n_batch: usize,
    /// One buffer per pool thread, plus one for a caller outside the pool.
    staging: Vec<Mutex<Vec<f32>>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("n_threads", &self.n_threads)
            .field("n_batch", &self.n_batch)
            .finish()
    }
}

/// The number of threads `n_threads = 0` stands for: the cores this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Workers {
    /// `n_threads` threads (0: [`default_threads`]) for products of up to `n_batch` token
    /// rows. One thread means no pool: everything runs on the caller's thread.
    pub fn new(n_threads: usize, n_batch: usize) -> Result<Workers> {
        let n_threads = if n_threads == 0 {
            default_threads()
        } else {
            n_threads
        };
        if n_threads > 1024 {
            return Err(Error::invalid(format!(
                "n_threads = {n_threads} is not a sensible thread count"
            )));
        }
        let pool = if n_threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n_threads)
                    .thread_name(|i| format!("tern-worker-{i}"))
                    .build()
                    .map_err(|e| {
                        Error::Internal(format!("cannot start {n_threads} threads: {e}"))
                    })?,
            )
        } else {
            None
        };
        let staging = match pool {
            Some(_) => (0..=n_threads)
                .map(|_| Mutex::new(vec![0.0; n_batch * STAGE_ROWS]))
                .collect(),
            None => Vec::new(),
        };
        Ok(Workers {
            pool,
            n_threads,
            n_batch,
            staging,
        })
    }

    /// One thread, no pool.
    pub fn single() -> Workers {
        Workers {
            pool: None,
            n_threads: 1,
            n_batch: 0,
            staging: Vec::new(),
        }
    }

    /// Threads used.
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `f` on one of the pool's threads (on this thread without a pool), so that the
    /// products it makes split among the pool's threads without a hand-over each.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) if pool.current_thread_index().is_none() => pool.install(f),
            _ => f(),
        }
    }

    /// Computes an `n`-token product with `rows` output rows into `out` (`n × rows`,
    /// token-major) by calling `f(chunk, chunk_out)` on contiguous chunks of rows, where
    /// `chunk_out` is `n × chunk.len()`, token-major, as the dispatch table's entries
    /// write. The chunks run on the pool's threads.
    pub fn for_row_chunks(
        &self,
        rows: usize,
        n: usize,
        out: &mut [f32],
        f: &(dyn Fn(Range<usize>, &mut [f32]) + Sync),
    ) {
        assert_eq!(out.len(), n * rows, "output size");
        let pool = match &self.pool {
            Some(p) if rows >= 2 * self.n_threads && n > 0 => p,
            _ => return f(0..rows, out),
        };
        if pool.current_thread_index().is_none() {
            return pool.install(|| self.for_row_chunks(rows, n, out, f));
        }
        let pieces = self.n_threads * CHUNKS_PER_THREAD;
        if n == 1 {
            // One token: each chunk writes its own run of `out` directly.
            let chunk = rows.div_ceil(pieces).next_multiple_of(4);
            out.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, o)| f(i * chunk..i * chunk + o.len(), o));
            return;
        }
        assert!(
            n <= self.n_batch,
            "{n} token rows, staging for {}",
            self.n_batch
        );
        let chunk = rows.div_ceil(pieces).next_multiple_of(4).min(STAGE_ROWS);
        let shared = SharedOut::new(out);
        (0..rows.div_ceil(chunk)).into_par_iter().for_each(|i| {
            let range = i * chunk..((i + 1) * chunk).min(rows);
            let len = range.len();
            let slot =
                rayon::current_thread_index().map_or(self.n_threads, |t| t.min(self.n_threads));
            let mut stage = self.staging[slot].lock().unwrap_or_else(|e| e.into_inner());
            let stage = &mut stage[..n * len];
            f(range.clone(), stage);
            for t in 0..n {
                shared.write(t * rows + range.start, &stage[t * len..][..len]);
            }
        });
    }
}

impl Workers {
    /// Cuts `out` into runs of whole units of `unit` floats, one run per scratch at most,
    /// and calls `f(first_unit, run, scratch)` on each, the runs in parallel on the pool
    /// when `parallel` holds (else one run over everything, with `scratches[0]`, on this
    /// thread). Each unit is computed by `f` alone, so the results do not depend on the
    /// cut. For work whose units are independent but need scratch memory (attention heads).
    pub fn for_unit_runs<S: Send>(
        &self,
        out: &mut [f32],
        unit: usize,
        scratches: &mut [S],
        parallel: bool,
        f: &(dyn Fn(usize, &mut [f32], &mut S) + Sync),
    ) {
        assert!(unit > 0 && out.len() % unit == 0, "whole units");
        assert!(!scratches.is_empty(), "at least one scratch");
        let units = out.len() / unit;
        let runs = scratches.len().min(units);
        let pool = match &self.pool {
            Some(p) if parallel && runs >= 2 => p,
            _ => return f(0, out, &mut scratches[0]),
        };
        if pool.current_thread_index().is_none() {
            return pool.install(|| self.for_unit_runs(out, unit, scratches, parallel, f));
        }
        let per_run = units.div_ceil(runs);
        out.par_chunks_mut(per_run * unit)
            .zip(scratches.par_iter_mut())
            .enumerate()
            .for_each(|(i, (o, s))| f(i * per_run, o, s));
    }
}

/// An output buffer that several threads write disjoint parts of.
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `SharedOut` is only a pointer and a length; `for_row_chunks` gives every chunk
// a disjoint set of indices (its rows of each token), so no two threads write the same
// element, and the borrow of `out` it was made from outlives the parallel loop.
unsafe impl Sync for SharedOut {}
// SAFETY: as above.
unsafe impl Send for SharedOut {}

impl SharedOut {
    fn new(out: &mut [f32]) -> SharedOut {
        SharedOut {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }

    /// Copies `src` to elements `at .. at + src.len()`. Callers write disjoint ranges.
    fn write(&self, at: usize, src: &[f32]) {
        assert!(at + src.len() <= self.len, "write outside the output");
        // SAFETY: the range is inside the buffer (asserted) and no other thread writes it
        // (disjoint chunks); `src` is a different allocation (the staging buffer).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) }
    }
}
