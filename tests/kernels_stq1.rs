//! STQ1_0 SIMD kernels against the scalar twin: bit-identical outputs on random shapes, row
//! ranges and token counts.

mod quant_common;

use quant_common::Rng;
use std::ops::Range;
use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::scalar::ternary_gemv;
use tern::kernels::stq1_prep::{Stq1Activations, Stq1Token};
use tern::quant::ternary::{pack_ternary, TernaryMatrix, TernaryWeights, WeightScale};
use tern::quant::TensorType;

type Kernel =
    for<'a> fn(&[u8], usize, usize, &dyn Fn(usize) -> Stq1Token<'a>, Range<usize>, &mut [f32]);

fn simd_paths() -> Vec<(&'static str, Kernel)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, Kernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use tern::kernels::x86::stq1_avx2;
        if stq1_avx2::available() {
            v.push(("avx2", stq1_avx2::stq1_gemm));
        } else {
            eprintln!("*** this CPU has no AVX2: the AVX2 STQ1_0 kernel is not tested here ***");
        }
    }
    #[cfg(target_arch = "aarch64")]
    v.push(("neon", tern::kernels::arm::stq1_neon::stq1_gemm));
    v
}

fn run(rng: &mut Rng, rows: usize, cols: usize, tokens: usize, ranges: &[Range<usize>]) {
    let values = rng.trits_34_stride16(rows * cols);
    // Per-block scales that differ, as STQ1_0 allows.
    let scales: Vec<f32> = (0..rows * cols / 256)
        .map(|i| 0.01 + (i % 7) as f32 * 0.003)
        .collect();
    let w = TernaryWeights::new(
        rows,
        cols,
        values,
        WeightScale::PerBlock { block: 256, scales },
    )
    .unwrap();
    let data = pack_ternary(TensorType::STQ1_0, &w).unwrap();
    let m = TernaryMatrix::new(TensorType::STQ1_0, &[cols as u64, rows as u64], &data).unwrap();
    let mut acts = Vec::new();
    let mut preps = Vec::new();
    for t in 0..tokens {
        let x: Vec<f32> = (0..cols)
            .map(|c| {
                if t == 1 && c < 256 {
                    0.0 // an all-zero Q8_K block
                } else {
                    rng.normal(1.0)
                }
            })
            .collect();
        let mut a = QuantizedActivations::new();
        a.quantize_into(ActivationFormat::Q8K, &x).unwrap();
        let mut p = Stq1Activations::default();
        p.prepare(&a).unwrap();
        acts.push(a);
        preps.push(p);
    }
    let want: Vec<Vec<f32>> = acts
        .iter()
        .map(|a| {
            let mut o = vec![0f32; rows];
            ternary_gemv(&m, a, &mut o).unwrap();
            o
        })
        .collect();
    for (name, k) in simd_paths() {
        for range in ranges {
            let n = range.len();
            let mut got = vec![f32::NAN; tokens * n];
            k(
                &data,
                cols,
                tokens,
                &|t| preps[t].token(),
                range.clone(),
                &mut got,
            );
            for t in 0..tokens {
                for r in range.clone() {
                    let g = got[t * n + r - range.start];
                    let wv = want[t][r];
                    assert_eq!(
                        g.to_bits(),
                        wv.to_bits(),
                        "{name}: {rows}x{cols}, token {t}, row {r}: {g} != {wv}"
                    );
                }
            }
        }
    }
}

#[test]
fn simd_matches_scalar() {
    let mut rng = Rng::new(3);
    run(&mut rng, 3, 256, 1, &[0..3, 1..2]);
    run(&mut rng, 17, 768, 6, &[0..17, 5..11]);
    run(&mut rng, 64, 2560, 2, &[0..64, 0..1]);
    run(&mut rng, 40, 6912, 3, &[0..40, 39..40]);
}
