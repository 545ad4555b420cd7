//! Once sized, a sampler allocates nothing per token: a counting global allocator (for
//! this test binary only) sees no allocation on the sampling thread during many
//! sample + accept rounds, for every path of the chain.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tern::sampling::rng::Xoshiro256;
use tern::sampling::{LogitBias, Sampler, SamplerParams};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[test]
fn no_allocation_per_token_once_sized() {
    let n_vocab = 8_000;
    let mut r = Xoshiro256::from_seed(1);
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|_| {
            (0..n_vocab)
                .map(|_| (r.next_f64() * 20.0 - 10.0) as f32)
                .collect()
        })
        .collect();
    let configs = [
        SamplerParams {
            seed: 1,
            penalty_repeat: 1.1,
            penalty_freq: 0.1,
            logit_bias: vec![LogitBias {
                token: 5,
                bias: 1.0,
            }],
            ..SamplerParams::default()
        },
        // Full-vocabulary top-p (staged sorting) and typical.
        SamplerParams {
            seed: 2,
            top_k: 0,
            typical_p: 0.9,
            penalty_present: 0.2,
            ..SamplerParams::default()
        },
        SamplerParams {
            seed: 3,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            ..SamplerParams::default()
        },
        SamplerParams {
            penalty_repeat: 1.3,
            ..SamplerParams::greedy()
        },
    ];
    for p in configs {
        let mut s = Sampler::new(p.clone()).unwrap();
        // The first call sizes the buffers; fill the window to its length too.
        for i in 0..p.penalty_last_n {
            s.accept(i as u32 * 7);
        }
        s.sample(&rows[0]).unwrap();
        let before = allocs();
        for i in 0..20 {
            let t = s.sample(&rows[i % rows.len()]).unwrap();
            s.accept(t);
        }
        let during = allocs() - before;
        assert_eq!(during, 0, "{during} allocations while sampling with {p:?}");
    }
}
