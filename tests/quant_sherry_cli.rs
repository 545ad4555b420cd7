//! `tern quantize --type sherry` end to end: lossless from 3:4 models of every ternary
//! type, the 3:4 projection reported otherwise, and `--latent` from a Sherry training
//! checkpoint (a safetensors file written here) with its Arenas residual dropped.

mod quant_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use quant_common::{reference_dir, Rng};
use tern::gguf::{GgufFile, GgufWriter};
use tern::quant::checkpoint::ternarize_like_training;
use tern::quant::ternary::{pack_ternary, unpack_ternary, TernaryWeights, WeightScale};
use tern::quant::TensorType;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-sherry-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn quantize(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("quantize")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tern quantize {args:?}: {text}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Copies `src` with every I2_S projection replaced by `values(name, rows, cols)` (same
/// scale), written as I2_S; returns the values by tensor name.
fn rewrite_projections(
    src: &Path,
    dst: &Path,
    mut values: impl FnMut(&str, usize, usize) -> Vec<i8>,
) -> Vec<(String, Vec<i8>)> {
    let f = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        w.set(k, v.clone());
    }
    let mut datas = Vec::new();
    let mut replaced = Vec::new();
    for t in f.tensors() {
        w.add_tensor(&t.name, &t.dims, t.ty).unwrap();
        if t.ty == TensorType::I2_S {
            let orig = unpack_ternary(t.ty, &t.dims, f.data_of(t)).unwrap();
            let v = values(&t.name, orig.rows, orig.cols);
            let nw = TernaryWeights::new(orig.rows, orig.cols, v.clone(), orig.scale).unwrap();
            datas.push(pack_ternary(TensorType::I2_S, &nw).unwrap());
            replaced.push((t.name.clone(), v));
        } else {
            datas.push(f.data_of(t).to_vec());
        }
    }
    let parts: Vec<&[u8]> = datas.iter().map(|d| d.as_slice()).collect();
    w.write_file(dst, &parts).unwrap();
    replaced
}

fn values_of(path: &Path, name: &str) -> Vec<i8> {
    let f = GgufFile::open(path).unwrap();
    let t = f.tensor(name).unwrap();
    unpack_ternary(t.info.ty, &t.info.dims, t.data)
        .unwrap()
        .values
}

/// 3:4 weights (in both SHERRY's and STQ1_0's groups) written as `src_types`, each converted
/// to SHERRY: same values, nothing projected.
fn lossless_from(set: &str, src_types: &[&str]) {
    let Some(dir) = reference_dir(set) else {
        return;
    };
    let mut rng = Rng::new(34);
    let base = tmp(&format!("{set}-both34-i2s.gguf"));
    let want = rewrite_projections(&dir.join("ggml-model-i2s.gguf"), &base, |_, r, c| {
        rng.trits_34_both(r * c)
    });
    assert!(!want.is_empty());
    for &src_ty in src_types {
        let src = if src_ty == "i2_s" {
            base.clone()
        } else {
            let p = tmp(&format!("{set}-both34-{src_ty}.gguf"));
            quantize(&[s(&base), s(&p), "--type", src_ty]);
            p
        };
        let out = tmp(&format!("{set}-from-{src_ty}.gguf"));
        let text = quantize(&[s(&src), s(&out), "--type", "sherry"]);
        assert!(!text.contains("projection changed"), "{src_ty}: {text}");
        for (name, v) in &want {
            assert_eq!(&values_of(&out, name), v, "{src_ty} -> sherry: {name}");
        }
        let f = GgufFile::open(&out).unwrap();
        assert!(f.tensor(&want[0].0).unwrap().info.ty == TensorType::Sherry);
    }
}

#[test]
fn sparse34_models_of_every_type_convert_losslessly() {
    lossless_from("bitnet25", &["i2_s", "tq1_0", "tq2_0", "stq1_0"]);
    // TL2 needs shapes bitnet.cpp has presets for.
    lossless_from("bitnet-tl2", &["tl2"]);
}

#[test]
fn non_34_models_are_projected_and_reported() {
    let Some(dir) = reference_dir("bitnet25") else {
        return;
    };
    let out = tmp("projected.gguf");
    let text = quantize(&[
        s(&dir.join("ggml-model-i2s.gguf")),
        s(&out),
        "--type",
        "sherry",
    ]);
    assert!(text.contains("3:4 projection changed"), "{text}");
    assert!(text.contains("output rel. error"), "{text}");
}

/// A safetensors file by hand: u64 header length, JSON header, data.
fn safetensors(entries: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, vals) in entries {
        let start = data.len();
        for v in vals {
            // BF16, as the training code saves: the top half of the f32.
            data.extend_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::Value::Object(header).to_string();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn training_checkpoint_to_sherry() {
    let Some(dir) = reference_dir("bitnet25") else {
        return;
    };
    let base_path = dir.join("ggml-model-i2s.gguf");
    let base = GgufFile::open(&base_path).unwrap();
    let arch = match base.get("general.architecture") {
        Some(tern::gguf::Value::String(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => String::new(),
    };
    let mut rng = Rng::new(7);
    let mut entries = Vec::new();
    let mut expect = Vec::new();
    for t in base.tensors().iter().filter(|t| t.ty == TensorType::I2_S) {
        let (rows, cols) = (t.dims[1] as usize, t.dims[0] as usize);
        let parts: Vec<&str> = t.name.split('.').collect();
        let hf = match parts[2] {
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            other => panic!("unexpected projection {other}"),
        };
        // Values exact in BF16, so the test knows the latents the tool reads.
        let latent: Vec<f32> = (0..rows * cols)
            .map(|_| {
                let v = rng.normal(0.02);
                f32::from_bits(v.to_bits() & 0xffff_0000)
            })
            .collect();
        let name = format!("model.layers.{}.{hf}.weight", parts[1]);
        // q/k rows are not permuted for this architecture (only `llama` is).
        assert_ne!(arch, "llama");
        let (w, _) = ternarize_like_training(rows, cols, &latent, None).unwrap();
        expect.push((t.name.clone(), w));
        entries.push((name, vec![rows, cols], latent));
    }
    entries.push((
        "model.layers.0.self_attn.q_proj.arenas_eps".to_string(),
        vec![1],
        vec![0.25],
    ));
    entries.push((
        "model.layers.0.mlp.up_proj.residual_weight".to_string(),
        vec![2, 2],
        vec![1.0, 2.0, 3.0, 4.0],
    ));
    let ckpt = tmp("sherry-ckpt.safetensors");
    std::fs::write(&ckpt, safetensors(&entries)).unwrap();
    let out = tmp("from-ckpt.gguf");
    let text = quantize(&[
        s(&base_path),
        s(&out),
        "--type",
        "sherry",
        "--latent",
        s(&ckpt),
    ]);
    assert!(
        text.contains("dropped model.layers.0.self_attn.q_proj.arenas_eps"),
        "{text}"
    );
    assert!(
        text.contains("dropped model.layers.0.mlp.up_proj.residual_weight"),
        "{text}"
    );
    assert!(text.contains("2 residual tensors dropped"), "{text}");
    let f = GgufFile::open(&out).unwrap();
    for (name, w) in &expect {
        let t = f.tensor(name).unwrap();
        assert_eq!(t.info.ty, TensorType::Sherry);
        let got = unpack_ternary(t.info.ty, &t.info.dims, t.data).unwrap();
        assert_eq!(&got.values, &w.values, "{name}");
        assert_eq!(got.scale, w.scale, "{name}");
        assert!(matches!(got.scale, WeightScale::PerTensor(_)));
    }
}
