//! `tern quantize` end to end on bitnet.cpp's reference model.

mod quant_common;

use std::path::PathBuf;
use std::process::Command;

use quant_common::reference_dir;
use tern::gguf::GgufFile;
use tern::quant::ternary::{unpack_ternary, TernaryMatrix};
use tern::quant::TensorType;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-quant-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tern(args: &[&str]) -> (bool, String) {
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
    (out.status.success(), text)
}

fn f32_to_i2s_matches(set: &str, n_i2s: usize) {
    let Some(dir) = reference_dir(set) else {
        return;
    };
    let out = tmp(&format!("{set}-i2s.gguf"));
    let f32_path = dir.join("ggml-model-f32.gguf");
    let (ok, text) = tern(&[
        f32_path.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "i2_s",
        "--head",
        "f16",
    ]);
    assert!(ok, "{text}");
    let ours = GgufFile::open(&out).unwrap();
    let theirs = GgufFile::open(dir.join("ggml-model-i2s.gguf")).unwrap();
    assert_eq!(ours.tensors().len(), theirs.tensors().len());
    assert_eq!(
        ours.get("general.file_type").and_then(|v| v.as_u64()),
        Some(40)
    );
    let mut i2s = 0;
    for t in theirs.tensors() {
        let o = ours
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((o.info.ty, &o.info.dims), (t.ty, &t.dims), "{}", t.name);
        let (a, b) = (o.data, theirs.data_of(t));
        assert_eq!(a.len(), b.len(), "{}", t.name);
        let checked = if t.ty == TensorType::I2_S {
            i2s += 1;
            a.len() - 28 // codes and the f32 scale; bitnet.cpp's 28 padding bytes are garbage
        } else {
            a.len()
        };
        assert!(a[..checked] == b[..checked], "{}: bytes differ", t.name);
    }
    assert_eq!(i2s, n_i2s);
    std::fs::remove_file(&out).ok();
}

#[test]
fn f32_reference_to_i2s_matches_bitnet_cpp_byte_for_byte() {
    f32_to_i2s_matches("bitnet25", 14);
    f32_to_i2s_matches("llama-ternary", 14);
}

#[test]
fn i2s_to_every_ternary_type_and_back() {
    let Some(dir) = reference_dir("bitnet25") else {
        return;
    };
    let src = dir.join("ggml-model-i2s.gguf");
    let original = GgufFile::open(&src).unwrap();
    for (ty, lossless) in [
        ("tq2_0", true),
        ("tq1_0", true),
        ("sherry", false),
        ("stq1_0", false),
    ] {
        let mid = tmp(&format!("mid-{ty}.gguf"));
        let back = tmp(&format!("back-{ty}.gguf"));
        let (ok, text) = tern(&[src.to_str().unwrap(), mid.to_str().unwrap(), "--type", ty]);
        assert!(ok, "{ty}: {text}");
        if !lossless {
            assert!(text.contains("3:4 projection changed"), "{ty}: {text}");
            assert!(text.contains("output rel. error"), "{ty}: {text}");
        }
        let m = GgufFile::open(&mid).unwrap();
        for t in m.tensors().iter().filter(|t| t.ty.is_ternary()) {
            TernaryMatrix::new(t.ty, &t.dims, m.data_of(t)).unwrap();
        }
        let (ok, text) = tern(&[
            mid.to_str().unwrap(),
            back.to_str().unwrap(),
            "--type",
            "i2_s",
        ]);
        assert!(ok, "{ty} -> i2_s: {text}");
        let b = GgufFile::open(&back).unwrap();
        for t in original
            .tensors()
            .iter()
            .filter(|t| t.ty == TensorType::I2_S)
        {
            let ours = b.tensor(&t.name).unwrap();
            let w0 = unpack_ternary(t.ty, &t.dims, original.data_of(t)).unwrap();
            let w1 = unpack_ternary(ours.info.ty, &ours.info.dims, ours.data).unwrap();
            if lossless {
                // The scale went through f16; the values must be identical.
                assert_eq!(w0.values, w1.values, "{ty}: {}", t.name);
            } else {
                assert_ne!(w0.values, w1.values, "{ty}: {} was projected", t.name);
            }
        }
        std::fs::remove_file(&mid).ok();
        std::fs::remove_file(&back).ok();
    }
}

#[test]
fn dry_run_and_bad_arguments() {
    let Some(dir) = reference_dir("bitnet25") else {
        return;
    };
    let src = dir.join("ggml-model-i2s.gguf");
    let (ok, text) = tern(&[src.to_str().unwrap(), "--dry-run", "--type", "tq2_0"]);
    assert!(ok, "{text}");
    assert!(text.contains("dry run, nothing written"), "{text}");
    let (ok, text) = tern(&[src.to_str().unwrap(), "x.gguf", "--type", "q8_0"]);
    assert!(!ok && text.contains("not a ternary type"), "{text}");
    let (ok, text) = tern(&[src.to_str().unwrap(), "x.gguf"]);
    assert!(!ok && text.contains("--type is required"), "{text}");
    let (ok, text) = tern(&[src.to_str().unwrap(), "x.gguf", "--type", "bogus"]);
    assert!(!ok && text.contains("unknown type"), "{text}");
}

#[test]
fn head_to_every_dense_type() {
    let Some(dir) = reference_dir("llama-ternary") else {
        return;
    };
    let src = dir.join("ggml-model-i2s.gguf");
    let original = GgufFile::open(&src).unwrap();
    let head = original.tensor("output.weight").unwrap();
    let cols = head.info.dims[0] as usize;
    let mut want = vec![0f32; head.info.n_elements() as usize];
    for (r, row) in want.chunks_exact_mut(cols).enumerate() {
        let rb = tern::quant::dense::row_bytes(TensorType::F16, cols).unwrap();
        tern::quant::dense::dequantize_row(TensorType::F16, &head.data[r * rb..(r + 1) * rb], row)
            .unwrap();
    }
    let amax = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    // Worst-case error per element relative to the largest weight, per type.
    for (name, ty, tol) in [
        ("q8_0", TensorType::Q8_0, 0.01),
        ("q6_k", TensorType::Q6_K, 0.04),
        ("q4_0", TensorType::Q4_0, 0.15),
        ("bf16", TensorType::BF16, 0.01),
    ] {
        let out = tmp(&format!("head-{name}.gguf"));
        let (ok, text) = tern(&[
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--type",
            "i2_s",
            "--head",
            name,
        ]);
        assert!(ok, "{text}");
        let f = GgufFile::open(&out).unwrap();
        for t in ["output.weight", "token_embd.weight"] {
            let v = f.tensor(t).unwrap();
            assert_eq!(v.info.ty, ty, "{t}");
            let rb = tern::quant::dense::row_bytes(ty, cols).unwrap();
            let mut row = vec![0f32; cols];
            if t == "output.weight" {
                for (r, w) in want.chunks_exact(cols).enumerate() {
                    tern::quant::dense::dequantize_row(ty, &v.data[r * rb..(r + 1) * rb], &mut row)
                        .unwrap();
                    let err = row
                        .iter()
                        .zip(w)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        err <= tol * amax,
                        "{name}: row {r} error {err} vs amax {amax}"
                    );
                }
            }
        }
        // The ternary projections keep their codes and scale (the tail's 28 padding bytes,
        // uninitialised in bitnet.cpp's file, are written as zeros).
        let q = f.tensor("blk.0.attn_q.weight").unwrap().data;
        let o = original.tensor("blk.0.attn_q.weight").unwrap().data;
        assert!(
            q.len() == o.len() && q[..q.len() - 28] == o[..o.len() - 28],
            "{name}: attn_q changed"
        );
    }
    let (ok, text) = tern(&[
        src.to_str().unwrap(),
        "x.gguf",
        "--type",
        "i2_s",
        "--head",
        "q5_k",
    ]);
    assert!(!ok && text.contains("the head can be"), "{text}");
}

#[test]
fn a_conversion_that_fails_half_way_leaves_no_output() {
    // FFN 288 columns: SHERRY holds them (multiples of 32), I2_S does not (128-column
    // blocks), so converting to I2_S fails at the first ffn_down, after the output file was
    // begun and earlier tensors were written.
    let src = tmp("halfway-sherry.gguf");
    let dst = tmp("halfway-i2s.gguf");
    let synth = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "synth",
            src.to_str().unwrap(),
            "--shape",
            "custom(256,288,2,4,4,600)",
        ])
        .args(["--type", "sherry", "--quiet"])
        .output()
        .unwrap();
    assert!(synth.status.success(), "{synth:?}");
    let (ok, msg) = tern(&[
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--type",
        "i2_s",
    ]);
    assert!(!ok, "{msg}");
    assert!(msg.contains("multiple of 128"), "{msg}");
    assert!(
        !dst.exists(),
        "a truncated {} was left behind",
        dst.display()
    );
    let _ = std::fs::remove_file(src);
}
