//! Sherry SIMD kernels against the scalar twin: bit-identical outputs on random shapes
//! (including the 2B4T projection shapes and odd tile counts), row ranges, token counts, and
//! the extreme sums that int8 tables could not hold.

mod quant_common;

use quant_common::Rng;
use std::ops::Range;
use tern::kernels::lut::build_sherry_tables;
use tern::kernels::scalar::{sherry_epilogue, sherry_row_dot};
use tern::quant::ternary::{pack_ternary, TernaryWeights, WeightScale};
use tern::quant::TensorType;

/// Packed Sherry bytes of `rows x cols` weights.
fn sherry_bytes(rows: usize, cols: usize, values: Vec<i8>, scale: f32) -> Vec<u8> {
    let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale)).unwrap();
    pack_ternary(TensorType::Sherry, &w).unwrap()
}

/// The scalar twin: token-major outputs for `rows`.
fn scalar_outputs(
    data: &[u8],
    cols: usize,
    w_scale: f32,
    qs: &[Vec<i8>],
    act_scales: &[f32],
    rows: Range<usize>,
) -> Vec<f32> {
    let mut out = Vec::new();
    for (q, &a) in qs.iter().zip(act_scales) {
        for r in rows.clone() {
            out.push(sherry_epilogue(
                sherry_row_dot(data, cols, r, q),
                a,
                w_scale,
            ));
        }
    }
    out
}

type Kernel = fn(&[u8], usize, f32, &[&[u8]], &[f32], Range<usize>, &mut [f32]);

/// The SIMD paths this machine can run, by name.
fn simd_paths() -> Vec<(&'static str, Kernel)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, Kernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use tern::kernels::x86::sherry_avx2;
        if sherry_avx2::available() {
            v.push(("avx2", sherry_avx2::sherry_gemm));
        } else {
            eprintln!("*** this CPU has no AVX2: the AVX2 Sherry kernel is not tested here ***");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use tern::kernels::arm::sherry_neon;
        v.push(("neon", sherry_neon::sherry_gemm));
    }
    assert!(
        !v.is_empty() || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
        "no SIMD path to test"
    );
    v
}

fn check(
    name: &str,
    data: &[u8],
    cols: usize,
    w_scale: f32,
    qs: &[Vec<i8>],
    rows: Range<usize>,
    kernel: Kernel,
) {
    let act_scales: Vec<f32> = (0..qs.len()).map(|t| 0.37 + t as f32 * 0.11).collect();
    let tables: Vec<Vec<u8>> = qs
        .iter()
        .map(|q| {
            let mut t = Vec::new();
            build_sherry_tables(q, &mut t);
            t
        })
        .collect();
    let tabs: Vec<&[u8]> = tables.iter().map(|t| t.as_slice()).collect();
    let want = scalar_outputs(data, cols, w_scale, qs, &act_scales, rows.clone());
    let mut got = vec![f32::NAN; want.len()];
    kernel(
        data,
        cols,
        w_scale,
        &tabs,
        &act_scales,
        rows.clone(),
        &mut got,
    );
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{name}: cols {cols}, rows {rows:?}, token {}, row {}: {g} != {w}",
            i / rows.len(),
            rows.start + i % rows.len()
        );
    }
}

fn random_q(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| (rng.below(256) as i32 - 128) as i8)
        .collect()
}

#[test]
fn simd_matches_scalar_on_random_shapes() {
    let mut rng = Rng::new(81);
    // (rows, cols, tokens): odd tile counts, one chunk, the 2B4T projections.
    let shapes = [
        (32, 32, 1),
        (96, 64, 3),
        (160, 992, 5),
        (224, 2048, 9),
        (2560, 2560, 1),
        (6912, 2560, 2),
        (2560, 6912, 1),
    ];
    // Under emulation (aarch64 runs in qemu) two tiles of rows: the columns are what the
    // kernels walk.
    let full = cfg!(target_arch = "x86_64");
    for (rows, cols, tokens) in shapes {
        let rows = if full { rows } else { rows.min(64) };
        let data = sherry_bytes(rows, cols, rng.trits_34(rows * cols), 0.013);
        let qs: Vec<Vec<i8>> = (0..tokens).map(|_| random_q(&mut rng, cols)).collect();
        for (name, k) in simd_paths() {
            check(name, &data, cols, 0.013, &qs, 0..rows, k);
        }
    }
}

#[test]
fn simd_matches_scalar_on_row_ranges() {
    let mut rng = Rng::new(5);
    let (rows, cols) = (256, 320);
    let data = sherry_bytes(rows, cols, rng.trits_34(rows * cols), 1.5);
    let qs: Vec<Vec<i8>> = (0..6).map(|_| random_q(&mut rng, cols)).collect();
    for _ in 0..20 {
        let a = rng.below(rows);
        let b = a + 1 + rng.below(rows - a);
        for (name, k) in simd_paths() {
            check(name, &data, cols, 1.5, &qs, a..b, k);
        }
    }
}

/// Every group summing to ±384 (activations -128) or ±381 (±127) over 6912 columns: the
/// int16 partial sums must be widened before they wrap.
#[test]
fn simd_matches_scalar_on_extreme_sums() {
    let (rows, cols) = (64, 6912);
    // Rows alternate [0, -1, -1, -1] (index 0, sign 1) and [1, 1, 1, 0]; the last row mixes.
    let mut values = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for g in 0..cols / 4 {
            let quad: [i8; 4] = match (r % 3, g % 2) {
                (0, _) => [0, -1, -1, -1],
                (1, _) => [1, 1, 1, 0],
                _ if g % 2 == 0 => [-1, 0, -1, -1],
                _ => [1, -1, 0, 1],
            };
            values.extend_from_slice(&quad);
        }
    }
    let data = sherry_bytes(rows, cols, values, 0.5);
    let qs = vec![
        vec![-128i8; cols],
        vec![127i8; cols],
        (0..cols)
            .map(|c| if c % 2 == 0 { 127 } else { -127 })
            .collect(),
    ];
    for (name, k) in simd_paths() {
        check(name, &data, cols, 0.5, &qs, 0..rows, k);
    }
}
