//! Cross-type properties over random matrices: lossless conversions between the ternary
//! types, scalar GEMV against an f64 reference, bad input.

mod quant_common;

use half::f16;
use quant_common::Rng;
use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::scalar::{ternary_gemm, ternary_gemv};
use tern::quant::ternary::{
    pack_ternary, ternarize_absmean, unpack_ternary, TernaryMatrix, TernaryWeights, WeightScale,
};
use tern::quant::TensorType;

const TYPES: [TensorType; 5] = [
    TensorType::I2_S,
    TensorType::TQ1_0,
    TensorType::TQ2_0,
    TensorType::Sherry,
    TensorType::STQ1_0,
];

/// Which random matrices a type can hold losslessly.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Any,
    Consecutive34,
    Stride34,
    Both34,
}

fn holds(ty: TensorType, kind: Kind) -> bool {
    match ty {
        TensorType::Sherry => matches!(kind, Kind::Consecutive34 | Kind::Both34),
        TensorType::STQ1_0 => matches!(kind, Kind::Stride34 | Kind::Both34),
        _ => true,
    }
}

fn trits(rng: &mut Rng, kind: Kind, n: usize) -> Vec<i8> {
    match kind {
        Kind::Any => rng.trits(n, 0.35),
        Kind::Consecutive34 => rng.trits_34(n),
        Kind::Stride34 => rng.trits_34_stride16(n),
        Kind::Both34 => rng.trits_34_both(n),
    }
}

/// A scale that f16 holds exactly, so per-block types keep it.
fn f16_exact(rng: &mut Rng) -> f32 {
    f16::from_f32(0.001 + rng.unit().abs() * 0.1).to_f32()
}

fn dims(w: &TernaryWeights) -> [u64; 2] {
    [w.cols as u64, w.rows as u64]
}

#[test]
fn conversions_between_types_are_lossless() {
    let mut rng = Rng::new(11);
    for &(rows, cols) in &[(32, 256), (64, 512), (32, 768)] {
        for kind in [Kind::Any, Kind::Consecutive34, Kind::Stride34, Kind::Both34] {
            let values = trits(&mut rng, kind, rows * cols);
            let scale = f16_exact(&mut rng);
            let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale)).unwrap();
            for a in TYPES {
                if !holds(a, kind) {
                    continue;
                }
                let bytes_a = pack_ternary(a, &w).unwrap();
                let wa = unpack_ternary(a, &dims(&w), &bytes_a).unwrap();
                assert_eq!(wa.values, w.values, "{a}: values survive");
                assert_eq!(wa.dequantize(), w.dequantize(), "{a}: weights survive");
                // Unpack then pack: the same bytes.
                assert_eq!(pack_ternary(a, &wa).unwrap(), bytes_a, "{a}: round trip");
                for b in TYPES {
                    if !holds(b, kind) {
                        continue;
                    }
                    let bytes_b = pack_ternary(b, &wa).unwrap();
                    let wb = unpack_ternary(b, &dims(&w), &bytes_b).unwrap();
                    let back = pack_ternary(a, &wb).unwrap();
                    assert_eq!(back, bytes_a, "{a} -> {b} -> {a} ({rows}x{cols})");
                }
            }
        }
    }
}

#[test]
fn per_block_scales_survive_between_block_types_and_refuse_per_tensor_types() {
    let mut rng = Rng::new(12);
    let (rows, cols) = (32, 512);
    let values = rng.trits_34_stride16(rows * cols);
    let scales: Vec<f32> = (0..rows * 2).map(|_| f16_exact(&mut rng)).collect();
    let w = TernaryWeights::new(
        rows,
        cols,
        values,
        WeightScale::PerBlock { block: 256, scales },
    )
    .unwrap();
    for a in [TensorType::TQ1_0, TensorType::TQ2_0, TensorType::STQ1_0] {
        let bytes = pack_ternary(a, &w).unwrap();
        let back = unpack_ternary(a, &dims(&w), &bytes).unwrap();
        assert_eq!(back, w, "{a}");
    }
    for a in [TensorType::I2_S, TensorType::Sherry] {
        let e = pack_ternary(a, &w).unwrap_err();
        assert!(e.to_string().contains("one scale per tensor"), "{a}: {e}");
    }
}

#[test]
fn all_zero_blocks_get_scale_zero_and_still_convert() {
    // llama.cpp writes d = 0 for an all-zero block; converting back to a per-tensor type
    // must ignore that block's scale.
    let (rows, cols) = (1, 512);
    let mut values = vec![0i8; cols];
    values[300] = 1;
    values[301] = -1;
    let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(0.5)).unwrap();
    let tq2 = pack_ternary(TensorType::TQ2_0, &w).unwrap();
    assert_eq!(&tq2[64..66], &[0, 0], "first block: d = 0");
    assert_eq!(&tq2[130..132], &f16::from_f32(0.5).to_le_bytes());
    let back = unpack_ternary(TensorType::TQ2_0, &[512, 1], &tq2).unwrap();
    let i2s = pack_ternary(TensorType::I2_S, &back).unwrap();
    assert_eq!(i2s, pack_ternary(TensorType::I2_S, &w).unwrap());
}

#[test]
fn scales_round_to_f16_for_block_types() {
    let w = TernaryWeights::new(1, 256, vec![1; 256], WeightScale::PerTensor(0.1)).unwrap();
    let b = pack_ternary(TensorType::TQ2_0, &w).unwrap();
    let back = unpack_ternary(TensorType::TQ2_0, &[256, 1], &b).unwrap();
    assert_eq!(back.scale_at(0, 0), f16::from_f32(0.1).to_f32());
    let big = TernaryWeights::new(1, 256, vec![1; 256], WeightScale::PerTensor(1e6)).unwrap();
    let e = pack_ternary(TensorType::TQ1_0, &big).unwrap_err();
    assert!(e.to_string().contains("does not fit an f16"), "{e}");
}

/// f64 reference and the float error bound of our f32 epilogue.
fn reference(w: &TernaryWeights, acts: &QuantizedActivations) -> (Vec<f64>, Vec<f64>) {
    let x = acts.dequantize_f64();
    let mut want = Vec::with_capacity(w.rows);
    let mut mag = Vec::with_capacity(w.rows);
    for r in 0..w.rows {
        let mut s = 0.0f64;
        let mut a = 0.0f64;
        for (c, &xc) in x.iter().enumerate() {
            let t = w.values[r * w.cols + c] as f64 * w.scale_at(r, c) as f64 * xc;
            s += t;
            a += t.abs();
        }
        want.push(s);
        mag.push(a);
    }
    (want, mag)
}

fn random_weights(rng: &mut Rng, ty: TensorType, rows: usize, cols: usize) -> TernaryWeights {
    let kind = match ty {
        TensorType::Sherry => Kind::Consecutive34,
        TensorType::STQ1_0 => Kind::Stride34,
        _ => Kind::Any,
    };
    let values = trits(rng, kind, rows * cols);
    let scale = match ty {
        TensorType::I2_S | TensorType::Sherry => WeightScale::PerTensor(0.003 + rng.unit().abs()),
        _ => WeightScale::PerBlock {
            block: 256,
            scales: (0..rows * cols / 256).map(|_| f16_exact(rng)).collect(),
        },
    };
    TernaryWeights::new(rows, cols, values, scale).unwrap()
}

#[test]
fn scalar_gemv_matches_f64_reference_for_every_type() {
    let mut rng = Rng::new(13);
    let shapes: &[(TensorType, &[(usize, usize)])] = &[
        (TensorType::I2_S, &[(1, 128), (7, 384), (40, 640)]),
        (TensorType::TQ1_0, &[(1, 256), (5, 768)]),
        (TensorType::TQ2_0, &[(1, 256), (9, 512)]),
        (TensorType::STQ1_0, &[(1, 256), (3, 1024)]),
        (TensorType::Sherry, &[(32, 32), (64, 96), (32, 512)]),
    ];
    for &(ty, list) in shapes {
        let fmt = ActivationFormat::for_type(ty).unwrap();
        for &(rows, cols) in list {
            let w = random_weights(&mut rng, ty, rows, cols);
            let bytes = pack_ternary(ty, &w).unwrap();
            let m = TernaryMatrix::new(ty, &dims(&w), &bytes).unwrap();
            let mut acts = QuantizedActivations::with_capacity(fmt, cols);
            let mut batch = Vec::new();
            for t in 0..3 {
                let x = rng.activations(cols);
                acts.quantize_into(fmt, &x).unwrap();
                let mut out = vec![0.0f32; rows];
                ternary_gemv(&m, &acts, &mut out).unwrap();
                let (want, mag) = reference(&w, &acts);
                for r in 0..rows {
                    let tol = 8.0 * f32::EPSILON as f64 * (mag[r] + want[r].abs()) + 1e-30;
                    assert!(
                        (out[r] as f64 - want[r]).abs() <= tol,
                        "{ty} {rows}x{cols} token {t} row {r}: {} vs {} (tol {tol})",
                        out[r],
                        want[r]
                    );
                }
                batch.push(acts.clone());
            }
            let mut outs = vec![0.0f32; 3 * rows];
            ternary_gemm(&m, &batch, &mut outs).unwrap();
            for (t, a) in batch.iter().enumerate() {
                let mut one = vec![0.0f32; rows];
                ternary_gemv(&m, a, &mut one).unwrap();
                assert_eq!(&outs[t * rows..][..rows], &one[..], "{ty}: gemm row {t}");
            }
        }
    }
}

#[test]
fn same_weights_give_identical_outputs_across_sibling_types() {
    // I2_S and Sherry share activations and (below 2^24) the epilogue; TQ1_0, TQ2_0 and
    // STQ1_0 share Q8_K and the per-block epilogue. Same weights: bit-identical outputs.
    let mut rng = Rng::new(14);
    let (rows, cols) = (64, 512);
    let w = TernaryWeights::new(
        rows,
        cols,
        rng.trits_34_both(rows * cols),
        WeightScale::PerTensor(f16::from_f32(0.02).to_f32()),
    )
    .unwrap();
    let x = rng.activations(cols);
    let run = |ty: TensorType| {
        let bytes = pack_ternary(ty, &w).unwrap();
        let m = TernaryMatrix::new(ty, &dims(&w), &bytes).unwrap();
        let mut a = QuantizedActivations::new();
        a.quantize_into(ActivationFormat::for_type(ty).unwrap(), &x)
            .unwrap();
        let mut out = vec![0.0f32; rows];
        ternary_gemv(&m, &a, &mut out).unwrap();
        out
    };
    assert_eq!(run(TensorType::I2_S), run(TensorType::Sherry));
    let tq2 = run(TensorType::TQ2_0);
    assert_eq!(run(TensorType::TQ1_0), tq2);
    assert_eq!(run(TensorType::STQ1_0), tq2);
}

#[test]
fn q8k_activations_follow_llama_cpp() {
    let mut rng = Rng::new(15);
    let mut x = rng.activations(512);
    x[300] = -9.0; // the largest magnitude of block 1 is negative
    for v in &mut x[256..300] {
        *v = v.clamp(-8.0, 8.0);
    }
    for v in &mut x[301..] {
        *v = v.clamp(-8.0, 8.0);
    }
    let mut a = QuantizedActivations::new();
    a.quantize_into(ActivationFormat::Q8K, &x).unwrap();
    assert_eq!(
        a.qs()[300],
        -127,
        "the max maps to -127 (iscale = -127/max)"
    );
    let d = a.block_scales()[1];
    assert_eq!(d, 1.0 / (-127.0f32 / -9.0));
    for (i, s) in a.block_sums().iter().enumerate() {
        let want: i32 = a.qs()[i * 16..][..16].iter().map(|&q| q as i32).sum();
        assert_eq!(*s as i32, want);
    }
    let deq = a.dequantize_f64();
    for (i, (&v, &dq)) in x.iter().zip(&deq).enumerate() {
        let d = a.block_scales()[i / 256].abs() as f64;
        assert!((v as f64 - dq).abs() <= d * 0.5 + 1e-6, "{i}");
    }
    // An all-zero block.
    let mut z = vec![0.0f32; 256];
    a.quantize_into(ActivationFormat::Q8K, &z).unwrap();
    assert_eq!(a.block_scales(), &[0.0]);
    assert!(a.qs().iter().all(|&q| q == 0));
    z[0] = 1.0;
    assert!(a.quantize_into(ActivationFormat::Q8K, &z[..100]).is_err());
}

#[test]
fn i8_activations_follow_bitnet_cpp() {
    // Ties round to even, the scale is computed in f64 and the floor of max is 1e-5.
    let x = [127.0f32, 0.5, 1.5, 2.5, -0.5, -126.6, 0.0];
    let mut a = QuantizedActivations::new();
    a.quantize_into(ActivationFormat::I8PerRow, &x).unwrap();
    assert_eq!(a.act_scale(), 1.0);
    assert_eq!(a.qs(), &[127, 0, 2, 2, 0, -127, 0]);
    assert_eq!(a.row_sum(), 4);
    a.quantize_into(ActivationFormat::I8PerRow, &[0.0; 8])
        .unwrap();
    assert_eq!(a.act_scale(), (127.0f64 / 0.00001) as f32);
    // No allocation once sized: the buffer does not move.
    let mut a = QuantizedActivations::with_capacity(ActivationFormat::I8PerRow, 1024);
    a.quantize_into(ActivationFormat::I8PerRow, &vec![0.25; 1024])
        .unwrap();
    let p = a.qs().as_ptr();
    a.quantize_into(ActivationFormat::I8PerRow, &vec![-3.0; 1024])
        .unwrap();
    assert_eq!(p, a.qs().as_ptr());
}

#[test]
fn bad_input_gives_clear_errors_for_every_type() {
    let mut rng = Rng::new(16);
    for ty in TYPES {
        let (rows, cols) = (32, 256);
        let w = random_weights(&mut rng, ty, rows, cols);
        let mut bytes = pack_ternary(ty, &w).unwrap();
        let d = dims(&w);
        // Wrong byte size, both ways.
        for len in [bytes.len() - 1, bytes.len() + 1] {
            let mut b = bytes.clone();
            b.resize(len, 0);
            let e = TernaryMatrix::new(ty, &d, &b).unwrap_err();
            assert!(e.to_string().contains("bytes, got"), "{ty}: {e}");
            assert!(unpack_ternary(ty, &d, &b).is_err());
        }
        // NaN / Inf scale.
        let (at, nan): (usize, Vec<u8>) = match ty {
            TensorType::I2_S | TensorType::Sherry => {
                (bytes.len() - 32, f32::NAN.to_le_bytes().to_vec())
            }
            _ => {
                let bs = ty.info().type_size as usize;
                (bs - 2, f16::INFINITY.to_le_bytes().to_vec())
            }
        };
        bytes[at..at + nan.len()].copy_from_slice(&nan);
        let e = TernaryMatrix::new(ty, &d, &bytes).unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{ty}: {e}");
        let e = unpack_ternary(ty, &d, &bytes).unwrap_err();
        assert!(e.to_string().contains("not a finite number"), "{ty}: {e}");
        // Non-ternary values.
        let mut bad = w.clone();
        bad.values[5] = 3;
        let e = pack_ternary(ty, &bad).unwrap_err();
        assert!(e.to_string().contains("not ternary"), "{ty}: {e}");
        // Odd shapes.
        let e = TernaryMatrix::new(ty, &[48, 32], &bytes).unwrap_err();
        assert!(e.to_string().contains("multiple of"), "{ty}: {e}");
        assert!(TernaryMatrix::new(ty, &[256, 32, 2], &bytes).is_err());
    }
    assert!(TernaryMatrix::new(TensorType::F32, &[4, 4], &[0; 64]).is_err());
    assert!(ActivationFormat::for_type(TensorType::Q8_0).is_err());
}

#[test]
fn absmean_ternarization_follows_bitnet() {
    // mean |w| = 0.5: w / 0.5 = 2 -> 1, 0.25 -> 0, -1 -> -1, 0.5 (tie, to even) -> 0,
    // -0.75 -> -1, 1.5 -> 1 (clamped from 2), 0 -> 0, 2 -> 1.
    let x = [1.0f32, 0.125, -0.5, 0.25, -0.375, 0.75, 0.0, 1.0];
    let w = ternarize_absmean(1, 8, &x).unwrap();
    assert_eq!(w.scale, WeightScale::PerTensor(0.5));
    assert_eq!(w.values, vec![1, 0, -1, 0, -1, 1, 0, 1]);
    let z = ternarize_absmean(1, 4, &[0.0; 4]).unwrap();
    assert_eq!(z.scale, WeightScale::PerTensor(1e-5));
    assert!(ternarize_absmean(1, 4, &[0.0, f32::NAN, 0.0, 0.0]).is_err());
}
