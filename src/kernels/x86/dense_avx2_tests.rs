//! Property tests: every AVX2 dense kernel against its scalar twin, bit for bit
//! (the checks are shared with the other instruction sets: `kernels::dense_checks`).

use super::*;
use crate::kernels::dense_checks::*;

fn skip() -> bool {
    if available() {
        return false;
    }
    eprintln!("skipped: this CPU has no AVX2/FMA/F16C");
    true
}

#[test]
fn f16_dot_equals_dot_exact_products() {
    if !skip() {
        check_f16(&gemv_f16_exact, &dot_f16_exact_halves);
        let a = [1.5f32; 70];
        let w: Vec<u8> = (0..70)
            .flat_map(|i| half::f16::from_f32(i as f32).to_le_bytes())
            .collect();
        let mut out = [0.0];
        gemv_f16_exact(&a, &w, &mut out);
        assert_eq!(out[0], dot_f16_exact(&a, &w));
    }
}

#[test]
fn f32_dot_equals_dot_fused() {
    if !skip() {
        check_f32(&gemv_f32_fused);
        let a = [0.25f32; 70];
        let w: Vec<u8> = (0..70).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let mut out = [0.0];
        gemv_f32_fused(&a, &w, &mut out);
        assert_eq!(out[0], dot_f32_fused(&a, &w));
    }
}

#[test]
fn tinyblas_equals_dot_tinyblas() {
    if !skip() {
        check_tinyblas(&|f16, x, k, w, out| {
            let ty = if f16 {
                FloatWeights::F16
            } else {
                FloatWeights::F32
            };
            gemm_tinyblas(ty, x, k, w, out)
        });
    }
}

#[test]
fn q8_0_dot_equals_scalar() {
    if !skip() {
        check_q8_0(dot_q8_0);
    }
}

#[test]
fn q4_0_dot_equals_scalar() {
    if !skip() {
        check_q4_0(dot_q4_0);
    }
}

#[test]
fn q6_k_dot_equals_scalar() {
    if !skip() {
        check_q6_k(dot_q6_k);
    }
}

#[test]
fn q6_k_rows_equal_scalar() {
    if !skip() {
        check_q6_k_rows(dot_q6_k_rows);
    }
}
