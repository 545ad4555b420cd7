//! Sizes from the caller or the file that the machine cannot hold are errors, never
//! aborts: absurd trained context lengths load (nothing is allocated from them) and fail
//! at context creation with OutOfMemory; an eval past n_ctx is refused and leaves the
//! KV cache exactly as it was.

use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::gguf::{GgufFile, Value};
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, LoadParams, Model};
use tern::Error;

fn load(m: &SynthModel) -> Result<Model, Error> {
    let file = GgufFile::from_bytes(m.to_gguf().unwrap())?;
    Model::from_file(file, &LoadParams::default())
}

fn tiny() -> SynthModel {
    SynthModel::new(&SynthSpec::tiny(Architecture::Bitnet25)).unwrap()
}

fn ctx_params(n_ctx: usize, n_batch: usize) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch,
        ..ContextParams::default()
    }
}

fn assert_oom(r: Result<Context, Error>) {
    match r {
        Err(Error::OutOfMemory(m)) => eprintln!("refused: {m}"),
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("expected OutOfMemory, the context was created"),
    }
}

#[test]
fn an_absurd_trained_context_loads_and_a_default_context_is_refused() {
    let mut m = tiny();
    m.set("bitnet-25.context_length", Value::U32(u32::MAX));
    let model = Arc::new(load(&m).expect("n_ctx_train allocates nothing at load"));
    assert_eq!(model.config().unwrap().n_ctx_train, u32::MAX as usize);
    // n_ctx 0 means the trained length: 4 billion positions of KV cache.
    assert_oom(Context::new(model.clone(), &ContextParams::default()));
    // A small explicit context still works with that model.
    let mut ctx = Context::new(model, &ctx_params(8, 4)).unwrap();
    ctx.eval(&[1, 2]).unwrap();
}

#[test]
fn huge_n_ctx_or_n_batch_are_out_of_memory() {
    let model = Arc::new(load(&tiny()).unwrap());
    for (n_ctx, n_batch) in [
        (1usize << 40, 0),
        (1 << 40, 1 << 40),
        (usize::MAX, 0),
        (usize::MAX, usize::MAX),
        (usize::MAX / 3, 7),
    ] {
        assert_oom(Context::new(model.clone(), &ctx_params(n_ctx, n_batch)));
    }
    let mut p = ctx_params(1 << 30, 1 << 30);
    p.logits_all = true;
    assert_oom(Context::new(model.clone(), &p));
    // Nothing leaked into the model: a normal context afterwards.
    Context::new(model, &ctx_params(16, 8)).unwrap();
}

#[test]
fn eval_past_n_ctx_leaves_the_cache_intact() {
    let model = Arc::new(load(&tiny()).unwrap());
    let mut full = Context::new(model.clone(), &ctx_params(6, 4)).unwrap();
    full.eval(&[5, 6, 7, 8]).unwrap();
    for batch in [&[1u32, 2, 3][..], &[9, 9, 9, 9]] {
        assert!(matches!(full.eval(batch), Err(Error::ContextFull(_))));
        assert_eq!(full.n_past(), 4);
    }
    full.eval(&[10, 11]).unwrap();
    let after_refusals = full.last_logits().unwrap().to_vec();
    assert!(matches!(full.eval(&[12]), Err(Error::ContextFull(_))));
    // Refused before evaluating: the previous logits stay.
    assert_eq!(full.last_logits().unwrap(), &after_refusals[..]);
    assert_eq!(full.n_past(), 6);
    // A context that never saw the refused batches computes the same logits, bit for bit.
    let mut clean = Context::new(model, &ctx_params(6, 4)).unwrap();
    clean.eval(&[5, 6, 7, 8]).unwrap();
    clean.eval(&[10, 11]).unwrap();
    assert_eq!(after_refusals, clean.last_logits().unwrap());
    // Rewinding then works as on a clean context.
    full.kv_truncate(4).unwrap();
    clean.kv_truncate(4).unwrap();
    full.eval(&[3]).unwrap();
    clean.eval(&[3]).unwrap();
    assert_eq!(full.last_logits().unwrap(), clean.last_logits().unwrap());
}

#[test]
fn absurd_counts_in_the_metadata_are_refused_before_anything_is_sized_by_them() {
    // Found by the model_config fuzz target: a block_count of billions made the loader
    // reserve room for that many layers (an abort) before looking for their tensors.
    for n in [u32::MAX, 1 << 24, 3] {
        let mut m = tiny();
        m.set("bitnet-25.block_count", Value::U32(n));
        let err = load(&m).err().expect("refused");
        assert!(matches!(err, Error::Model(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("block_count"), "{text}");
    }
    // A vocabulary size no embedding in the file matches.
    let mut m = tiny();
    m.set("bitnet-25.vocab_size", Value::U32(u32::MAX));
    let err = load(&m).err().expect("refused");
    assert!(err.to_string().contains("token_embd.weight"), "{err}");
}
