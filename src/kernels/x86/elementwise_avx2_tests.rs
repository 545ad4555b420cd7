//! Property tests: the AVX2 element-wise kernels against their scalar twins, bit for bit.

use super::*;
use crate::kernels::dense_testing::*;
use crate::model::config::{FfnActivation, RopeStyle};
use crate::model::forward::gate_in_place_scalar;
use crate::model::norm;
use crate::model::rope::Rope;

fn skip() -> bool {
    if available() {
        return false;
    }
    eprintln!("skipped: this CPU has no AVX2/FMA/F16C");
    true
}

#[test]
fn rms_norm_equals_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(30);
    for n in [1, 7, 8, 9, 64, 100, 2560, 2563, 6912] {
        for scale in [1e-3, 1.0, 1e3] {
            let x = rng.floats(n, scale);
            let w = rng.floats(n, 1.0);
            let mut a = vec![0.0; n];
            let mut b = vec![0.0; n];
            rms_norm(&x, &w, 1e-5, &mut a);
            norm::rms_norm_scalar(&x, &w, 1e-5, &mut b);
            for i in 0..n {
                assert!(same(a[i], b[i]), "n {n} i {i}: {} vs {}", a[i], b[i]);
            }
        }
    }
    let mut z = vec![9.0; 16];
    rms_norm(&[0.0; 16], &[1.0; 16], 1e-6, &mut z);
    assert!(z.iter().all(|&v| v == 0.0));
}

#[test]
fn rope_equals_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(31);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for (n_rot, head_dim) in [(128, 128), (64, 128), (16, 16), (10, 12), (2, 2), (24, 30)] {
            let factors = (rng.below(2) == 0).then(|| {
                (0..n_rot / 2)
                    .map(|_| 1.0 + rng.unit().abs() * 4.0)
                    .collect::<Vec<f32>>()
            });
            let rope = Rope::new(n_rot, style, 500000.0, 1.0, factors);
            let mut table = vec![0.0; n_rot];
            for pos in [0, 1, 17, 4095, 100_000] {
                rope.fill_table(pos, &mut table);
                let x = rng.floats(head_dim, 3.0);
                let mut a = x.clone();
                let mut b = x.clone();
                match style {
                    RopeStyle::Normal => rope_normal(&mut a, &table),
                    RopeStyle::Neox => rope_neox(&mut a, &table),
                }
                rope.rotate_scalar(&mut b, &table);
                for i in 0..head_dim {
                    assert!(same(a[i], b[i]), "{style:?} n_rot {n_rot} pos {pos} i {i}");
                }
            }
        }
    }
}

#[test]
fn gating_equals_scalar() {
    if skip() {
        return;
    }
    let mut rng = Rng::new(32);
    for n in [1, 5, 8, 13, 64, 6912, 6913] {
        let mut g = rng.floats(n, 6.0);
        g[0] = -0.0;
        if n > 3 {
            g[1] = f32::NAN;
            g[2] = -200.0;
            g[3] = 200.0;
        }
        let u = rng.floats(n, 2.0);
        for act in [FfnActivation::ReluSquared, FfnActivation::Silu] {
            let mut a = g.clone();
            let mut b = g.clone();
            match act {
                FfnActivation::ReluSquared => relu2_gate(&mut a, &u),
                FfnActivation::Silu => silu_gate(&mut a, &u),
            }
            gate_in_place_scalar(act, &mut b, &u);
            for i in 0..n {
                assert!(
                    same(a[i], b[i]),
                    "{act:?} n {n} i {i}: {} vs {}",
                    a[i],
                    b[i]
                );
            }
        }
    }
}
