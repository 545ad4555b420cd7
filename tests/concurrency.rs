//! One model, many contexts generating at once: every thread's tokens and logits must
//! be exactly those of the same job run alone, and the model is freed once the last
//! context is gone. `TERN_STRESS_ITERS` raises the number of rounds (default 3) for long
//! runs (docs/RELIABILITY.md records one).

use std::sync::{Arc, Barrier};

use tern::context::{Context, ContextParams};
use tern::gguf::GgufFile;
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, LoadParams, Model};
use tern::sampling::{Sampler, SamplerParams};

const THREADS: usize = 4;
const TOKENS: usize = 24;

fn model() -> Model {
    let m = SynthModel::new(&SynthSpec::tiny(Architecture::Bitnet25)).unwrap();
    let file = GgufFile::from_bytes(m.to_gguf().unwrap()).unwrap();
    Model::from_file(file, &LoadParams::default()).unwrap()
}

/// What one job produced: the generated tokens and the bits of the last logits.
#[derive(Debug, PartialEq)]
struct Output {
    tokens: Vec<u32>,
    last_logits: Vec<u32>,
}

/// Job `j`: a prompt of its own, then `TOKENS` tokens sampled with seed `j` (temperature
/// and top-k/top-p on, so that any difference in the logits would show in the draw).
fn job(model: Arc<Model>, j: usize) -> Output {
    let params = ContextParams {
        n_ctx: 64,
        n_batch: 8,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model, &params).unwrap();
    let mut sampler = Sampler::new(SamplerParams {
        seed: j as u64,
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        ..SamplerParams::default()
    })
    .unwrap();
    let prompt: Vec<u32> = (0..6).map(|i| ((j * 37 + i * 11) % 512) as u32).collect();
    ctx.eval(&prompt).unwrap();
    let mut tokens = Vec::with_capacity(TOKENS);
    for _ in 0..TOKENS {
        let t = sampler.sample(ctx.last_logits().unwrap()).unwrap();
        sampler.accept(t);
        tokens.push(t);
        ctx.eval(&[t]).unwrap();
    }
    Output {
        tokens,
        last_logits: ctx
            .last_logits()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    }
}

#[test]
fn contexts_on_many_threads_match_their_single_thread_runs() {
    let model = Arc::new(model());
    let weak = Arc::downgrade(&model);
    let alone: Vec<Output> = (0..THREADS).map(|j| job(model.clone(), j)).collect();
    // The jobs differ from each other, so a mix-up between threads would show.
    assert!(alone.windows(2).all(|w| w[0].tokens != w[1].tokens));
    let rounds: usize = std::env::var("TERN_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for round in 0..rounds {
        let start = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|j| {
                let (m, start) = (model.clone(), start.clone());
                // Rotate the jobs over the threads from round to round.
                let j = (j + round) % THREADS;
                std::thread::spawn(move || {
                    start.wait();
                    (j, job(m, j))
                })
            })
            .collect();
        for h in handles {
            let (j, out) = h.join().unwrap();
            assert_eq!(
                out, alone[j],
                "round {round}, job {j} differs from its lone run"
            );
        }
    }
    eprintln!(
        "{rounds} rounds x {THREADS} threads x {TOKENS} tokens: identical to single-thread runs"
    );
    assert_eq!(
        Arc::strong_count(&model),
        1,
        "every context released the model"
    );
    drop(model);
    assert!(
        weak.upgrade().is_none(),
        "the model is freed with its last user"
    );
}
