//! Evaluation allocates nothing: every buffer is made when the context is created. A
//! counting global allocator (this test binary only) watches the evaluating thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::gguf::GgufFile;
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, KvType, LoadParams, Model};
use tern::quant::TensorType;

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the thread-locals may be gone while a thread shuts down.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn eval_allocates_nothing() {
    // The counter sees allocations.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
    // Mixed weight types: ternary projections (two activation formats), dense ones, and
    // a quantized untied head, so every conversion path runs.
    for (arch, weights, head) in [
        (Architecture::Bitnet25, TensorType::I2_S, TensorType::F16),
        (Architecture::Llama, TensorType::TQ2_0, TensorType::Q6_K),
        (Architecture::Llama, TensorType::F16, TensorType::Q8_0),
    ] {
        let mut spec = SynthSpec::tiny(arch);
        spec.weight_type = weights;
        spec.head_type = head;
        let bytes = SynthModel::new(&spec).unwrap().to_gguf().unwrap();
        let model = Arc::new(
            Model::from_file(GgufFile::from_bytes(bytes).unwrap(), &LoadParams::default()).unwrap(),
        );
        for kv_type in [KvType::F16, KvType::F32] {
            for (logits_all, n_threads) in [(false, 1), (true, 1), (false, 2), (true, 2)] {
                let params = ContextParams {
                    n_ctx: 32,
                    n_batch: 8,
                    kv_type,
                    logits_all,
                    n_threads,
                    n_threads_batch: n_threads,
                };
                let mut ctx = Context::new(model.clone(), &params).unwrap();
                let n = allocations(|| {
                    ctx.eval(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
                    ctx.eval(&[9]).unwrap();
                    ctx.eval(&[10, 11]).unwrap();
                    ctx.kv_truncate(4).unwrap();
                    ctx.eval(&[12]).unwrap();
                });
                assert_eq!(
                    n, 0,
                    "{arch} {weights} head {head} {kv_type:?} logits_all {logits_all} \
                     n_threads {n_threads}"
                );
            }
            // A prompt long enough for attention to split its heads over the threads
            // (64 tokens x 4 heads x 64 positions).
            let params = ContextParams {
                n_ctx: 80,
                n_batch: 64,
                kv_type,
                logits_all: false,
                n_threads: 2,
                n_threads_batch: 2,
            };
            let mut ctx = Context::new(model.clone(), &params).unwrap();
            let prompt: Vec<u32> = (1..=64).collect();
            let n = allocations(|| {
                ctx.eval(&prompt).unwrap();
                ctx.eval(&[7]).unwrap();
            });
            assert_eq!(
                n, 0,
                "{arch} {weights} head {head} {kv_type:?}: long prompt"
            );
        }
    }
}

/// TL2 weights of the 3B shape: the FFN down projection (8640 columns) is repacked into
/// I2_S rows padded to 8704, and its activations are zero-padded in the scratch made at
/// context creation. 124 M weights: debug builds skip it unless `TERN_SLOW_TESTS=1`.
#[test]
fn padded_tl2_eval_allocates_nothing() {
    if cfg!(debug_assertions) && std::env::var_os("TERN_SLOW_TESTS").is_none() {
        eprintln!("!!! SKIPPED in a debug build (set TERN_SLOW_TESTS=1 or use --release)");
        return;
    }
    let mut spec = SynthSpec::tiny(Architecture::Bitnet);
    spec.weight_type = TensorType::TL2;
    (spec.n_embd, spec.n_ff, spec.n_head, spec.n_head_kv) = (3200, 8640, 32, 32);
    spec.n_layer = 1;
    let bytes = SynthModel::new(&spec).unwrap().to_gguf().unwrap();
    let model = Arc::new(
        Model::from_file(GgufFile::from_bytes(bytes).unwrap(), &LoadParams::default()).unwrap(),
    );
    let down = &model.weights().unwrap().layers[0].ffn_down;
    assert_eq!((down.cols, down.padded_cols), (8640, 8704));
    for n_threads in [1, 2] {
        let params = ContextParams {
            n_ctx: 16,
            n_batch: 4,
            kv_type: KvType::F16,
            logits_all: false,
            n_threads,
            n_threads_batch: n_threads,
        };
        let mut ctx = Context::new(model.clone(), &params).unwrap();
        let n = allocations(|| {
            ctx.eval(&[1, 2, 3, 4]).unwrap();
            ctx.eval(&[5]).unwrap();
        });
        assert_eq!(n, 0, "n_threads {n_threads}");
    }
}
