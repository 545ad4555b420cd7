//! Property tests: every NEON dense kernel against its scalar twin, bit for bit (run
//! under qemu on x86 hosts: `../shared/NEON.md`).

use super::*;
use crate::kernels::dense_checks::*;

#[test]
fn f16_dot_equals_dot_exact_products() {
    check_f16(&gemv_f16_exact, &dot_f16_exact_halves);
    let a = [1.5f32; 70];
    let w: Vec<u8> = (0..70)
        .flat_map(|i| half::f16::from_f32(i as f32).to_le_bytes())
        .collect();
    let mut out = [0.0];
    gemv_f16_exact(&a, &w, &mut out);
    assert_eq!(out[0], dot_f16_exact(&a, &w));
}

#[test]
fn f32_dot_equals_dot_fused() {
    check_f32(&gemv_f32_fused);
    let a = [0.25f32; 70];
    let w: Vec<u8> = (0..70).flat_map(|i| (i as f32).to_le_bytes()).collect();
    assert_eq!(dot_f32_fused(&a, &w), {
        let mut out = [0.0];
        gemv_f32_fused(&a, &w, &mut out);
        out[0]
    });
}

#[test]
fn q8_0_dot_equals_scalar() {
    check_q8_0(dot_q8_0);
}

#[test]
fn q4_0_dot_equals_scalar() {
    check_q4_0(dot_q4_0);
}

#[test]
fn q6_k_dot_equals_scalar() {
    check_q6_k(dot_q6_k);
}
