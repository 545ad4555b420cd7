//! Property tests: the AVX2 attention pieces against their scalar twins, bit for bit.

use super::*;
use crate::kernels::dense_testing::*;
use crate::model::attention::{self, ValueHead};
use crate::model::numerics;

fn skip() -> bool {
    if available() {
        return false;
    }
    eprintln!("skipped: this CPU has no AVX2/FMA/F16C");
    true
}

#[test]
fn exp_equals_ggml_exp_everywhere() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(20);
    let mut x: Vec<f32> = (0..5000).map(|_| rng.unit() * 120.0).collect();
    // The edges: two-step scaling, subnormal results, overflow, the 0/∞ cut at |n| > 192.
    x.extend([
        0.0,
        -0.0,
        -87.3,
        -87.4,
        -88.0,
        -100.0,
        -103.9,
        -104.0,
        -132.0,
        -133.1,
        -134.0,
        88.7,
        88.8,
        89.0,
        132.0,
        133.5,
        134.0,
        -1e30,
        1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
    ]);
    for _ in 0..3000 {
        x.push(rng.unit() * 300.0);
    }
    let mut got = x.clone();
    exp_in_place(&mut got);
    for (&v, &g) in x.iter().zip(&got) {
        let want = numerics::exp(v);
        assert!(same(g, want), "exp({v}): {g} vs {want}");
    }
}

#[test]
fn softmax_equals_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(21);
    for n in [1, 2, 7, 8, 15, 16, 17, 33, 64, 100, 257, 1000] {
        for scale in [0.1, 3.0, 40.0] {
            let x: Vec<f32> = (0..n).map(|_| rng.unit() * scale).collect();
            let mut a = x.clone();
            let mut b = x.clone();
            softmax_in_place(&mut a);
            attention::softmax_in_place(&mut b);
            for (i, (g, w)) in a.iter().zip(&b).enumerate() {
                assert!(same(*g, *w), "n {n} i {i}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn f16_rounding_equals_half() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(22);
    let mut x = rng.floats(1001, 10.0);
    x.extend([
        65504.0,
        65519.0,
        65520.0,
        1e9,
        -1e9,
        6e-8,
        3e-8,
        2.9e-8,
        f32::INFINITY,
    ]);
    x.extend([
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
    ]);
    let mut got = vec![0.0; x.len()];
    round_to_f16(&x, &mut got);
    for (&v, &g) in x.iter().zip(&got) {
        let want = f16::from_f32(v).to_f32();
        assert_eq!(g.to_bits(), want.to_bits(), "{v}");
    }
}

/// A random f16 cache of `cells` rows of `stride` values.
fn cache(rng: &mut Rng, cells: usize, stride: usize) -> Vec<f16> {
    (0..cells * stride)
        .map(|_| f16::from_f32(rng.unit() * 3.0))
        .collect()
}

fn probs(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut p: Vec<f32> = (0..n).map(|_| rng.unit() * 8.0).collect();
    attention::softmax_in_place(&mut p);
    p
}

#[test]
fn value_sums_equal_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(23);
    for (dim, heads) in [(128, 2), (64, 3), (8, 1), (12, 2), (80, 1)] {
        let stride = dim * heads;
        for cells in [1, 5, 31, 32, 33, 63, 64, 65, 100, 128, 129, 300] {
            let values = cache(&mut rng, cells, stride);
            let p = probs(&mut rng, cells);
            let kvh = rng.below(heads);
            let head = HeadView {
                stride,
                offset: kvh * dim,
                dim,
            };
            let twin = ValueHead {
                stride,
                offset: kvh * dim,
                dim,
            };
            // Padding to 32 as attention pads, and also a `full` covering fewer cells.
            let padded = cells.div_ceil(32) * 32;
            for full in [padded / 64 * 64, 0, cells / 64 * 64] {
                let (mut l1, mut t1, mut o1) =
                    (vec![1.0; 64 * dim], vec![1.0; dim], vec![0.0; dim]);
                let (mut l2, mut t2, mut o2) =
                    (vec![2.0; 64 * dim], vec![2.0; dim], vec![0.0; dim]);
                value_sum_f16_probs(&p, &values, head, full, &mut l1, &mut t1, &mut o1);
                attention::value_sum_f16_probs(&p, &values, twin, full, &mut l2, &mut t2, &mut o2);
                for d in 0..dim {
                    assert!(
                        same(o1[d], o2[d]),
                        "dim {dim} cells {cells} full {full} d {d}"
                    );
                }
            }
            let (mut l1, mut o1) = (vec![1.0; 64 * dim], vec![0.0; dim]);
            let (mut l2, mut o2) = (vec![2.0; 64 * dim], vec![0.0; dim]);
            value_sum_tinyblas(&p, &values, head, &mut l1, &mut o1);
            attention::value_sum_tinyblas(&p, &values, twin, &mut l2, &mut o2);
            for d in 0..dim {
                assert!(same(o1[d], o2[d]), "tinyblas dim {dim} cells {cells} d {d}");
            }
            let v32: Vec<f32> = values.iter().map(|h| h.to_f32() * 1.37).collect();
            let mut o1 = vec![0.0; dim];
            let mut o2 = vec![0.0; dim];
            value_sum_f32(&p, &v32, head, &mut o1);
            attention::value_sum_f32(&p, &v32, twin, &mut o2);
            for d in 0..dim {
                assert!(same(o1[d], o2[d]), "f32 dim {dim} cells {cells} d {d}");
            }
        }
    }
}

#[test]
fn f32_key_dot_equals_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(24);
    for n in [1, 7, 8, 9, 64, 100, 128, 131] {
        let a = rng.floats(n, 2.0);
        let b = rng.floats(n, 2.0);
        assert!(same(dot_f32_8(&a, &b), attention::dot_f32(&a, &b)), "n {n}");
    }
}
