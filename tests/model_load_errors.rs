//! Broken models are refused at load with an error that names the key or tensor; bad
//! eval arguments are refused without changing the context.

use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::gguf::{Array, GgufFile, Value};
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, LoadParams, Model};
use tern::quant::ternary::{pack_ternary, TernaryWeights, WeightScale};
use tern::quant::TensorType;
use tern::Error;

fn load(m: &SynthModel) -> Result<Model, Error> {
    let file = GgufFile::from_bytes(m.to_gguf().expect("writes"))?;
    Model::from_file(file, &LoadParams::default())
}

fn tiny() -> SynthModel {
    SynthModel::new(&SynthSpec::tiny(Architecture::Bitnet25)).unwrap()
}

/// Asserts a load error of kind Model/Unsupported/Format whose message contains every needle.
fn assert_refused(m: &SynthModel, needles: &[&str]) {
    let err = match load(m) {
        Ok(_) => panic!("the model loaded; expected an error mentioning {needles:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err,
            Error::Model(_) | Error::Unsupported(_) | Error::Format(_)
        ),
        "unexpected kind: {err}"
    );
    let text = err.to_string();
    for n in needles {
        assert!(text.contains(n), "'{text}' does not mention '{n}'");
    }
}

#[test]
fn a_valid_model_loads() {
    let model = load(&tiny()).unwrap();
    let c = model.config().unwrap();
    assert_eq!(
        (c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim),
        (256, 2, 4, 2, 64)
    );
    assert!(model.weights().unwrap().tied_output);
}

#[test]
fn missing_tensor() {
    let mut m = tiny();
    m.remove_tensor("blk.1.ffn_up.weight");
    assert_refused(&m, &["blk.1.ffn_up.weight", "missing"]);
    let mut m = tiny();
    m.remove_tensor("blk.0.attn_sub_norm.weight");
    assert_refused(&m, &["blk.0.attn_sub_norm.weight"]);
    let mut m = tiny();
    m.remove_tensor("token_embd.weight");
    assert_refused(&m, &["token_embd.weight"]);
}

#[test]
fn wrong_shape() {
    // attn_k as [256, 256] instead of [256, 128] (2 KV heads of 64), validly stored.
    let mut m = tiny();
    let w = TernaryWeights::new(256, 256, vec![0; 256 * 256], WeightScale::PerTensor(1.0)).unwrap();
    let t = m.tensor_mut("blk.0.attn_k.weight").unwrap();
    t.dims = vec![256, 256];
    t.bytes = pack_ternary(TensorType::I2_S, &w).unwrap();
    assert_refused(&m, &["blk.0.attn_k.weight", "[256, 256]", "[256, 128]"]);
    // A norm of the wrong length.
    let mut m = tiny();
    let t = m.tensor_mut("blk.1.ffn_sub_norm.weight").unwrap();
    t.dims = vec![256];
    t.bytes.truncate(256 * 4);
    assert_refused(&m, &["blk.1.ffn_sub_norm.weight", "512"]);
}

#[test]
fn inconsistent_metadata() {
    let mut m = tiny();
    m.set("bitnet-25.attention.head_count", Value::U32(3));
    assert_refused(&m, &["head_count", "does not divide", "embedding_length"]);

    let mut m = tiny();
    m.set("bitnet-25.block_count", Value::U32(0));
    assert_refused(&m, &["block_count", "0"]);

    let mut m = tiny();
    m.set("bitnet-25.attention.head_count_kv", Value::U32(3));
    assert_refused(&m, &["head_count_kv"]);

    let mut m = tiny();
    m.unset("bitnet-25.embedding_length");
    assert_refused(&m, &["bitnet-25.embedding_length", "missing"]);

    let mut m = tiny();
    m.set(
        "bitnet-25.attention.layer_norm_rms_epsilon",
        Value::F32(-1.0),
    );
    assert_refused(&m, &["layer_norm_rms_epsilon"]);

    let mut m = tiny();
    m.set("bitnet-25.rope.dimension_count", Value::U32(32));
    assert_refused(&m, &["rope.dimension_count"]);

    let mut m = tiny();
    m.set("general.architecture", Value::string("gpt2"));
    assert_refused(&m, &["gpt2"]);
}

#[test]
fn vocab_mismatch_between_tokenizer_and_embedding() {
    let mut m = tiny();
    m.unset("bitnet-25.vocab_size");
    let tokens: Vec<Vec<u8>> = (0..500).map(|i| format!("t{i}").into_bytes()).collect();
    m.set(
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(tokens.clone())),
    );
    assert_refused(&m, &["500", "token_embd.weight", "512"]);
    // vocab_size disagreeing with the tokenizer.
    let mut m = tiny();
    m.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    assert_refused(&m, &["vocab_size", "500"]);
}

#[test]
fn unsupported_and_corrupt_weights() {
    let mut m = tiny();
    let t = m.tensor_mut("blk.0.attn_q.weight").unwrap();
    t.ty = TensorType::Q4_K;
    t.bytes = vec![0; 144 * 256];
    assert_refused(&m, &["blk.0.attn_q.weight", "Q4_K"]);
    // A NaN I2_S scale.
    let mut m = tiny();
    let t = m.tensor_mut("blk.0.ffn_gate.weight").unwrap();
    let at = 256 * 512 / 4;
    t.bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_refused(&m, &["blk.0.ffn_gate.weight", "NaN"]);
}

#[test]
fn vocab_only_models_have_no_context() {
    let file = GgufFile::from_bytes(tiny().to_gguf().unwrap()).unwrap();
    let model = Model::from_file(
        file,
        &LoadParams {
            vocab_only: true,
            ..LoadParams::default()
        },
    )
    .unwrap();
    assert!(model.config().is_none());
    assert!(Context::new(Arc::new(model), &ContextParams::default()).is_err());
}

#[test]
fn bad_eval_arguments_leave_the_context_unchanged() {
    let model = Arc::new(load(&tiny()).unwrap());
    let params = ContextParams {
        n_ctx: 8,
        n_batch: 4,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model, &params).unwrap();
    ctx.eval(&[1, 2, 3]).unwrap();
    let before = ctx.last_logits().unwrap().to_vec();
    assert!(matches!(ctx.eval(&[]), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        ctx.eval(&[5, 512]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ctx.eval(&[1, 2, 3, 4, 5]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(ctx.n_past(), 3);
    ctx.eval(&[4, 5, 6, 7]).unwrap();
    assert!(matches!(ctx.eval(&[8, 9]), Err(Error::ContextFull(_))));
    assert_eq!(ctx.n_past(), 7);
    assert!(ctx.kv_truncate(9).is_err());
    // Rewind and replay: the same logits each time, and (one-token path instead of the
    // batched one) close to the first evaluation's.
    ctx.kv_truncate(2).unwrap();
    ctx.eval(&[3]).unwrap();
    let a = ctx.last_logits().unwrap().to_vec();
    ctx.kv_truncate(2).unwrap();
    ctx.eval(&[3]).unwrap();
    assert_eq!(ctx.last_logits().unwrap(), &a[..]);
    let diff = a
        .iter()
        .zip(&before)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 0.2, "{diff}");
    ctx.kv_clear();
    assert_eq!(ctx.n_past(), 0);
}

#[test]
fn models_are_shared_and_contexts_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Model>();
    send::<Context>();
    // One model, two contexts on two threads: the same logits.
    let model = Arc::new(load(&tiny()).unwrap());
    let run = |m: Arc<Model>| {
        std::thread::spawn(move || {
            let mut ctx = Context::new(
                m,
                &ContextParams {
                    n_ctx: 16,
                    ..ContextParams::default()
                },
            )
            .unwrap();
            ctx.eval(&[3, 1, 4, 1, 5]).unwrap();
            ctx.last_logits().unwrap().to_vec()
        })
    };
    let (a, b) = (run(model.clone()), run(model));
    assert_eq!(a.join().unwrap(), b.join().unwrap());
}
