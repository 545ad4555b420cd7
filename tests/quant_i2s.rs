//! I2_S against bitnet.cpp's own files: unpack, pack, quantize from F32, scalar GEMV.

mod quant_common;

use quant_common::{f32s, reference_dir, Rng};
use tern::gguf::GgufFile;
use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::scalar::{ternary_gemm, ternary_gemv};
use tern::quant::ternary::{
    pack_ternary, unpack_ternary, TernaryMatrix, TernaryWeights, WeightScale,
};
use tern::quant::{i2s, TensorType};

/// Compares two I2_S tensors' bytes, skipping tail bytes 4..32 (uninitialised in bitnet.cpp).
fn assert_i2s_bytes_eq(name: &str, ours: &[u8], theirs: &[u8]) {
    assert_eq!(ours.len(), theirs.len(), "{name}: length");
    let codes = ours.len() - 32;
    if let Some(i) = (0..codes + 4).find(|&i| ours[i] != theirs[i]) {
        panic!(
            "{name}: byte {i} differs: ours {:#04x}, file {:#04x}",
            ours[i], theirs[i]
        );
    }
    assert!(
        ours[codes + 4..].iter().all(|&b| b == 0),
        "{name}: our tail padding is zero"
    );
}

/// Every I2_S tensor of `i2s_file` unpacks and packs back to the same bytes; with an F32
/// twin, unpacks to exactly its values and quantizes from it to the same bytes.
fn check_reference_pair(dir: &str, f32_file: Option<&str>) -> usize {
    let Some(dir) = reference_dir(dir) else {
        return 0;
    };
    let i2s_gguf = GgufFile::open(dir.join("ggml-model-i2s.gguf")).unwrap();
    let f32_gguf = f32_file.map(|f| GgufFile::open(dir.join(f)).unwrap());
    let mut checked = 0;
    for info in i2s_gguf.tensors() {
        if info.ty != TensorType::I2_S {
            continue;
        }
        let data = i2s_gguf.data_of(info);
        let w = unpack_ternary(TensorType::I2_S, &info.dims, data).unwrap();
        assert_eq!((w.cols as u64, w.rows as u64), (info.dims[0], info.dims[1]));
        let packed = pack_ternary(TensorType::I2_S, &w).unwrap();
        assert_i2s_bytes_eq(&info.name, &packed, data);
        let m = TernaryMatrix::new(TensorType::I2_S, &info.dims, data).unwrap();
        m.check_codes().unwrap();
        let WeightScale::PerTensor(scale) = w.scale else {
            panic!("per-tensor scale")
        };
        assert_eq!(m.scale(), Some(scale));
        assert!(w.values.contains(&0) && w.values.contains(&1));
        if let Some(f) = &f32_gguf {
            let t = f.tensor(&info.name).unwrap();
            assert_eq!(t.info.dims, info.dims, "{}", info.name);
            let x = f32s(t.data);
            let deq = w.dequantize();
            assert!(
                deq == x,
                "{}: unpacked I2_S differs from the F32 file",
                info.name
            );
            let q = i2s::quantize_from_f32(w.rows, w.cols, &x).unwrap();
            assert_i2s_bytes_eq(&info.name, &q, data);
            let t = TernaryWeights::from_ternary_valued(w.rows, w.cols, &x).unwrap();
            assert_eq!(
                t, w,
                "{}: ternary-valued F32 gives the same weights",
                info.name
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no I2_S tensor found");
    checked
}

#[test]
fn bitnet25_i2s_matches_f32_and_round_trips() {
    let n = check_reference_pair("bitnet25", Some("ggml-model-f32.gguf"));
    if n > 0 {
        assert_eq!(n, 14, "2 layers x 7 projections");
    }
}

#[test]
fn llama_ternary_i2s_matches_f32_and_round_trips() {
    check_reference_pair("llama-ternary", Some("ggml-model-f32.gguf"));
}

#[test]
fn bitnet_tl2_set_i2s_round_trips() {
    check_reference_pair("bitnet-tl2", None);
}

/// f64 reference: Σ_c w[r,c] * scale * x̂[c], with x̂ the dequantized activations.
fn reference_gemv(w: &TernaryWeights, acts: &QuantizedActivations) -> Vec<f64> {
    let x = acts.dequantize_f64();
    (0..w.rows)
        .map(|r| {
            (0..w.cols)
                .map(|c| w.values[r * w.cols + c] as f64 * w.scale_at(r, c) as f64 * x[c])
                .sum()
        })
        .collect()
}

fn assert_close(ours: &[f32], want: &[f64], scale_mag: f64, what: &str) {
    for (i, (&o, &w)) in ours.iter().zip(want).enumerate() {
        let tol = 4.0 * f32::EPSILON as f64 * (w.abs() + scale_mag);
        assert!((o as f64 - w).abs() <= tol, "{what}: row {i}: {o} vs {w}");
    }
}

#[test]
fn i2s_gemv_matches_f64_reference_on_random_shapes() {
    let mut rng = Rng::new(7);
    for &(rows, cols) in &[(1, 128), (3, 128), (5, 256), (16, 384), (33, 1024)] {
        let values = rng.trits(rows * cols, 0.4);
        let scale = 0.0123 + rng.unit().abs();
        let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale)).unwrap();
        let bytes = pack_ternary(TensorType::I2_S, &w).unwrap();
        let dims = [cols as u64, rows as u64];
        let m = TernaryMatrix::new(TensorType::I2_S, &dims, &bytes).unwrap();
        let mut acts = QuantizedActivations::new();
        let fmt = ActivationFormat::for_type(TensorType::I2_S).unwrap();
        let x = rng.activations(cols);
        acts.quantize_into(fmt, &x).unwrap();
        let mut out = vec![0.0f32; rows];
        ternary_gemv(&m, &acts, &mut out).unwrap();
        let want = reference_gemv(&w, &acts);
        // The epilogue divides by the act scale then multiplies: a few roundings of the
        // result's magnitude, plus the one of (f32) Σ code·q.
        let mag = scale as f64 * cols as f64 / acts.act_scale() as f64;
        assert_close(&out, &want, mag * 1e-3, &format!("{rows}x{cols}"));

        // Batched: same numbers per row.
        let mut batch = Vec::new();
        for t in 0..3 {
            let mut a = QuantizedActivations::new();
            let xt: Vec<f32> = x.iter().map(|v| v * (t as f32 + 1.0) - 0.1).collect();
            a.quantize_into(fmt, &xt).unwrap();
            batch.push(a);
        }
        let mut outs = vec![0.0f32; 3 * rows];
        ternary_gemm(&m, &batch, &mut outs).unwrap();
        for (t, a) in batch.iter().enumerate() {
            let mut one = vec![0.0f32; rows];
            ternary_gemv(&m, a, &mut one).unwrap();
            assert_eq!(&outs[t * rows..][..rows], &one[..]);
        }
    }
}

#[test]
fn i2s_gemv_follows_bitnet_epilogue_order() {
    // One row, weights all +1: Σ code·q = 2 Σ q, so out = ((2S - S) / s) * w.
    let cols = 128;
    let w = TernaryWeights::new(1, cols, vec![1; cols], WeightScale::PerTensor(0.37)).unwrap();
    let bytes = pack_ternary(TensorType::I2_S, &w).unwrap();
    let m = TernaryMatrix::new(TensorType::I2_S, &[cols as u64, 1], &bytes).unwrap();
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut acts = QuantizedActivations::new();
    acts.quantize_into(ActivationFormat::I8PerRow, &x).unwrap();
    let s: i32 = acts.qs().iter().map(|&q| q as i32).sum();
    assert_eq!(s, acts.row_sum());
    let mut out = [0.0f32];
    ternary_gemv(&m, &acts, &mut out).unwrap();
    let expect = (((2 * s) as f32 - s as f32) / acts.act_scale()) * 0.37f32;
    assert_eq!(out[0].to_bits(), expect.to_bits());
}

#[test]
fn i2s_bad_input_gives_clear_errors() {
    let w = TernaryWeights::new(2, 128, vec![0; 256], WeightScale::PerTensor(1.0)).unwrap();
    let mut bytes = pack_ternary(TensorType::I2_S, &w).unwrap();
    let dims = [128u64, 2];
    // Wrong size.
    let e = TernaryMatrix::new(TensorType::I2_S, &dims, &bytes[..bytes.len() - 1]).unwrap_err();
    assert!(e.to_string().contains("takes 96 bytes, got 95"), "{e}");
    // Columns not a multiple of 128.
    let e = TernaryMatrix::new(TensorType::I2_S, &[64, 4], &bytes).unwrap_err();
    assert!(e.to_string().contains("multiple of 128"), "{e}");
    // NaN / Inf scale.
    for bad in [f32::NAN, f32::INFINITY] {
        let at = bytes.len() - 32;
        bytes[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        let e = TernaryMatrix::new(TensorType::I2_S, &dims, &bytes).unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{e}");
        let e = unpack_ternary(TensorType::I2_S, &dims, &bytes).unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{e}");
    }
    // Code 3.
    let mut b3 = pack_ternary(TensorType::I2_S, &w).unwrap();
    b3[5] = 0x57; // weight 5+96 (bits 1-0) = 3
    let e = unpack_ternary(TensorType::I2_S, &dims, &b3).unwrap_err();
    assert!(e.to_string().contains("row 0, column 101"), "{e}");
    let m = TernaryMatrix::new(TensorType::I2_S, &dims, &b3).unwrap();
    assert!(m.check_codes().is_err());
    // Non-ternary values given to the packer.
    let bad = TernaryWeights {
        rows: 1,
        cols: 128,
        values: vec![2; 128],
        scale: WeightScale::PerTensor(1.0),
    };
    let e = pack_ternary(TensorType::I2_S, &bad).unwrap_err();
    assert!(e.to_string().contains("not ternary"), "{e}");
    // A float tensor that is not ternary-valued.
    let mut x = vec![0.5f32; 128];
    x[7] = 0.25;
    let e = TernaryWeights::from_ternary_valued(1, 128, &x).unwrap_err();
    assert!(e.to_string().contains("column 7"), "{e}");
    x[7] = f32::NAN;
    assert!(i2s::quantize_from_f32(1, 128, &x).is_err());
    // Activations: NaN and the wrong length.
    let mut acts = QuantizedActivations::new();
    let e = acts
        .quantize_into(ActivationFormat::I8PerRow, &[1.0, f32::INFINITY])
        .unwrap_err();
    assert!(e.to_string().contains("activation 1"), "{e}");
    acts.quantize_into(ActivationFormat::I8PerRow, &[1.0; 64])
        .unwrap();
    let good = pack_ternary(TensorType::I2_S, &w).unwrap();
    let m = TernaryMatrix::new(TensorType::I2_S, &dims, &good).unwrap();
    let mut out = [0.0f32; 2];
    assert!(ternary_gemv(&m, &acts, &mut out).is_err());
}
