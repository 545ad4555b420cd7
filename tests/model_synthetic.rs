//! Synthetic models (random weights, written with our GGUF writer) of every architecture
//! run; the same ternary weights give the same model whatever the storage type.

use std::sync::Arc;

use tern::context::{argmax, Context, ContextParams};
use tern::gguf::GgufFile;
use tern::model::linear::is_supported;
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::{Architecture, KvType, LoadParams, Model};
use tern::quant::TensorType;

const PROMPT: &[u32] = &[17, 301, 5, 99, 480, 12, 250, 7];

fn model(spec: &SynthSpec) -> Arc<Model> {
    let bytes = SynthModel::new(spec).unwrap().to_gguf().unwrap();
    Arc::new(
        Model::from_file(GgufFile::from_bytes(bytes).unwrap(), &LoadParams::default()).unwrap(),
    )
}

/// Logits of every prompt position (one batch or one token per eval), then `n_gen`
/// greedy tokens.
fn run(
    model: &Arc<Model>,
    incremental: bool,
    kv_type: KvType,
    n_gen: usize,
) -> (Vec<f32>, Vec<u32>) {
    run_threads(model, incremental, kv_type, n_gen, 1)
}

/// [`run`] with `n_threads` threads.
fn run_threads(
    model: &Arc<Model>,
    incremental: bool,
    kv_type: KvType,
    n_gen: usize,
    n_threads: usize,
) -> (Vec<f32>, Vec<u32>) {
    let params = ContextParams {
        n_ctx: 64,
        n_batch: PROMPT.len(),
        kv_type,
        logits_all: true,
        n_threads,
    };
    let mut ctx = Context::new(model.clone(), &params).unwrap();
    let mut logits = Vec::new();
    if incremental {
        for &t in PROMPT {
            ctx.eval(&[t]).unwrap();
            logits.extend_from_slice(ctx.last_logits().unwrap());
        }
    } else {
        ctx.eval(PROMPT).unwrap();
        logits.extend_from_slice(ctx.logits());
    }
    let mut next = argmax(ctx.last_logits().unwrap()).unwrap() as u32;
    let mut greedy = vec![next];
    while greedy.len() < n_gen {
        ctx.eval(&[next]).unwrap();
        next = argmax(ctx.last_logits().unwrap()).unwrap() as u32;
        greedy.push(next);
    }
    (logits, greedy)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_architecture_runs() {
    for arch in [
        Architecture::BitnetB158,
        Architecture::Bitnet25,
        Architecture::Bitnet,
        Architecture::Llama,
    ] {
        let spec = SynthSpec::tiny(arch);
        let m = model(&spec);
        let cfg = m.config().unwrap();
        assert_eq!(cfg.sub_norms, arch != Architecture::Llama);
        assert_eq!(
            m.weights().unwrap().tied_output,
            arch != Architecture::Llama
        );
        let (batched, greedy_b) = run(&m, false, KvType::F16, 6);
        let (incremental, greedy_i) = run(&m, true, KvType::F16, 6);
        assert_eq!(batched.len(), PROMPT.len() * spec.n_vocab);
        assert!(batched.iter().all(|v| v.is_finite()), "{arch}");
        let spread = batched.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.1, "{arch}: logits are all near zero");
        // The two prompt paths differ only by f16 roundings amplified by the int8
        // activation quantization (bitnet.cpp shows up to ~0.2 between its own paths).
        let d = max_diff(&batched, &incremental);
        assert!(
            d < 0.2,
            "{arch}: batched vs one-token prompt logits differ by {d}"
        );
        assert_eq!(greedy_b, greedy_i, "{arch}");
        // f32 KV cache: close to the f16 one.
        let (b32, _) = run(&m, false, KvType::F32, 1);
        let d = max_diff(&batched, &b32);
        assert!(d < 0.2, "{arch}: f32 vs f16 KV cache differ by {d}");
        // Positions matter: different prompts give different last-row logits.
        let last = &batched[batched.len() - spec.n_vocab..];
        assert!(max_diff(&batched[..spec.n_vocab], last) > 1e-3, "{arch}");
    }
}

#[test]
fn ternary_and_float_storage_compute_the_same_model() {
    // F32 weights holding value * scale skip the int8 activation quantization, so they
    // differ from I2_S by about what bitnet.cpp's f32 and i2s files differ by.
    let mut spec = SynthSpec::tiny(Architecture::Bitnet25);
    let (i2s, _) = run(&model(&spec), false, KvType::F16, 1);
    spec.weight_type = TensorType::F32;
    let (f32s, _) = run(&model(&spec), false, KvType::F16, 1);
    let d = max_diff(&i2s, &f32s);
    assert!(d < 0.3, "I2_S vs F32 storage of the same weights: {d}");
    let mean: f32 = i2s
        .iter()
        .zip(&f32s)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / i2s.len() as f32;
    assert!(mean < 0.03, "mean |diff| {mean}");
}

/// Prompt logits (one batch), then the logits after each of `feed` (one token per eval).
fn run_fed(model: &Arc<Model>, feed: &[u32]) -> Vec<f32> {
    let params = ContextParams {
        n_ctx: 64,
        n_batch: PROMPT.len(),
        logits_all: true,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(model.clone(), &params).unwrap();
    ctx.eval(PROMPT).unwrap();
    let mut logits = ctx.logits().to_vec();
    for &t in feed {
        ctx.eval(&[t]).unwrap();
        logits.extend_from_slice(ctx.last_logits().unwrap());
    }
    logits
}

#[test]
fn every_ternary_storage_gives_the_same_continuation() {
    // 3:4-sparse weights, so that every type (Sherry and STQ1_0 need it) holds the same model.
    let mut spec = SynthSpec::tiny(Architecture::Bitnet25);
    spec.sparse_3_4 = true;
    let n_vocab = spec.n_vocab;
    let base_model = model(&spec);
    let (_, greedy) = run(&base_model, false, KvType::F16, 8);
    let base = run_fed(&base_model, &greedy[..7]);
    let mut checked = vec![TensorType::I2_S];
    let mut skipped = Vec::new();
    for ty in [
        TensorType::Sherry,
        TensorType::TQ2_0,
        TensorType::TQ1_0,
        TensorType::STQ1_0,
    ] {
        spec.weight_type = ty;
        let loaded = SynthModel::new(&spec).and_then(|m| {
            Model::from_file(GgufFile::from_bytes(m.to_gguf()?)?, &LoadParams::default())
        });
        let loaded = match loaded {
            Ok(l) if is_supported(ty) => Arc::new(l),
            Ok(_) | Err(tern::Error::Unsupported(_)) => {
                skipped.push(ty);
                continue;
            }
            Err(e) => panic!("{ty}: {e}"),
        };
        // Fed I2_S's greedy tokens, every row is comparable.
        let logits = run_fed(&loaded, &greedy[..7]);
        // Sherry keeps the f32 per-tensor scale and bitnet.cpp's per-row int8
        // activations: bit for bit the same numbers. (TL2 has its own test: it needs preset shapes.) The TQ types round the scale to f16 per block and
        // (as llama.cpp) quantize activations per 256 (Q8_K) instead of per row: a
        // perturbation the size of the int8 quantization's.
        let tol = if ty == TensorType::Sherry { 1e-5 } else { 0.2 };
        let d = max_diff(&base, &logits);
        assert!(d <= tol, "{ty} vs I2_S: logits differ by {d}");
        // The same greedy pick after every step, except where I2_S's own top two are
        // closer than the difference between the two.
        for (r, (a, b)) in base
            .chunks_exact(n_vocab)
            .zip(logits.chunks_exact(n_vocab))
            .enumerate()
        {
            let (ta, tb) = (argmax(a).unwrap(), argmax(b).unwrap());
            assert!(
                ta == tb || a[ta] - a[tb] <= 2.0 * d,
                "{ty} vs I2_S: row {r} picks {tb} instead of {ta} (margin {})",
                a[ta] - a[tb]
            );
        }
        checked.push(ty);
    }
    println!("same continuation for {checked:?}; not available yet: {skipped:?}");
}

/// `blk.N.attn_q.scale` (some `bitnet` files) multiplies the projection: a scale of 2 on a
/// tensor equals doubling the tensor's own I2_S scale, bit for bit.
#[test]
fn per_tensor_output_scales_and_biases_apply() {
    use tern::gguf::Value;
    use tern::model::synth::SynthTensor;
    let spec = SynthSpec::tiny(Architecture::Bitnet);
    let base = SynthModel::new(&spec).unwrap();
    let load = |m: &SynthModel| {
        Arc::new(
            Model::from_file(
                GgufFile::from_bytes(m.to_gguf().unwrap()).unwrap(),
                &LoadParams::default(),
            )
            .unwrap(),
        )
    };
    let (plain, _) = run(&load(&base), false, KvType::F16, 1);

    let mut scaled = base.clone();
    scaled.tensors.push(SynthTensor {
        name: "blk.0.ffn_up.scale".into(),
        dims: vec![1],
        ty: TensorType::F32,
        bytes: 2.0f32.to_le_bytes().to_vec(),
    });
    let mut doubled = base.clone();
    let t = doubled.tensor_mut("blk.0.ffn_up.weight").unwrap();
    let at = t.bytes.len() - 32;
    let s = f32::from_le_bytes(t.bytes[at..at + 4].try_into().unwrap());
    t.bytes[at..at + 4].copy_from_slice(&(2.0 * s).to_le_bytes());
    let (a, _) = run(&load(&scaled), false, KvType::F16, 1);
    let (b, _) = run(&load(&doubled), false, KvType::F16, 1);
    assert_eq!(a, b);
    assert!(max_diff(&a, &plain) > 1e-3);

    // A zero bias changes nothing; a non-zero one changes the logits.
    let bias = |v: f32| SynthTensor {
        name: "blk.1.attn_output.bias".into(),
        dims: vec![spec.n_embd as u64],
        ty: TensorType::F32,
        bytes: (0..spec.n_embd).flat_map(|_| v.to_le_bytes()).collect(),
    };
    let mut zero = base.clone();
    zero.tensors.push(bias(0.0));
    let (z, _) = run(&load(&zero), false, KvType::F16, 1);
    assert_eq!(z, plain);
    let mut one = base.clone();
    one.tensors.push(bias(0.5));
    let (o, _) = run(&load(&one), false, KvType::F16, 1);
    assert!(max_diff(&o, &plain) > 1e-3);
    // A bias of the wrong length is refused at load.
    let mut bad = base;
    let mut b = bias(0.5);
    b.dims = vec![8];
    b.bytes.truncate(32);
    bad.tensors.push(b);
    bad.set("general.name", Value::string("bad bias"));
    let err = Model::from_file(
        GgufFile::from_bytes(bad.to_gguf().unwrap()).unwrap(),
        &LoadParams::default(),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("blk.1.attn_output.bias"), "{err}");
}

/// Quantized embeddings and heads (Q8_0, Q4_0, Q6_K, BF16) load and give logits close to
/// the F32 ones: the quantization error of the table, not a different model.
#[test]
fn quantized_embeddings_and_heads() {
    let mut spec = SynthSpec::tiny(Architecture::Llama);
    spec.embd_type = TensorType::F32;
    spec.head_type = TensorType::F32;
    let (reference, greedy_ref) = run(&model(&spec), false, KvType::F16, 4);
    for (embd, head, tol) in [
        (TensorType::BF16, TensorType::BF16, 0.08),
        (TensorType::Q8_0, TensorType::Q8_0, 0.08),
        (TensorType::Q6_K, TensorType::Q6_K, 0.15),
        (TensorType::Q4_0, TensorType::Q6_K, 0.4),
    ] {
        spec.embd_type = embd;
        spec.head_type = head;
        let m = model(&spec);
        let (logits, greedy) = run(&m, false, KvType::F16, 4);
        let d = max_diff(&reference, &logits);
        println!("embedding {embd}, head {head}: max |diff| {d}");
        assert!(d < tol, "embedding {embd}, head {head}: {d}");
        assert!(
            d > 0.0,
            "embedding {embd}, head {head}: no difference at all"
        );
        if tol < 0.1 {
            assert_eq!(greedy, greedy_ref, "embedding {embd}, head {head}");
        }
    }
}

/// TL2 exists only for bitnet.cpp's preset shapes: a one-layer model of
/// bitnet_b1_58-large's shapes holds the same weights as I2_S and as TL2. (TL1 and the
/// real TL1/TL2 files are checked by the reference test.)
#[test]
fn tl2_storage_of_preset_shapes_gives_the_same_logits() {
    let mut spec = SynthSpec::tiny(Architecture::Bitnet);
    spec.n_embd = 1536;
    spec.n_head = 16;
    spec.n_head_kv = 16;
    spec.n_ff = 4096;
    spec.n_layer = 1;
    let (base, greedy) = run(&model(&spec), false, KvType::F16, 2);
    spec.weight_type = TensorType::TL2;
    let (logits, g) = run(&model(&spec), false, KvType::F16, 2);
    assert_eq!(max_diff(&base, &logits), 0.0, "TL2 vs I2_S");
    assert_eq!(g, greedy);
}

#[test]
fn logits_do_not_depend_on_the_thread_count() {
    for (arch, weights, head) in [
        (Architecture::Bitnet25, TensorType::I2_S, TensorType::F16),
        (Architecture::Llama, TensorType::TQ2_0, TensorType::Q6_K),
        (Architecture::Llama, TensorType::TQ1_0, TensorType::Q8_0),
    ] {
        let mut spec = SynthSpec::tiny(arch);
        spec.weight_type = weights;
        spec.head_type = head;
        let m = model(&spec);
        for incremental in [false, true] {
            let one = run_threads(&m, incremental, KvType::F16, 4, 1);
            for n_threads in [2, 3] {
                let many = run_threads(&m, incremental, KvType::F16, 4, n_threads);
                assert_eq!(
                    one, many,
                    "{arch} {weights} head {head}, incremental {incremental}, {n_threads} threads"
                );
            }
        }
    }
}
