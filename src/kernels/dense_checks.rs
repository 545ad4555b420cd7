//! Property checks of the SIMD dense kernels against their scalar twins, bit for bit,
//! shared by every instruction set's tests: random shapes (the 2B4T widths, block
//! multiples, odd tails) and random values (extremes included).

use half::f16;

use super::dense_testing::*;
use crate::kernels::scalar_dense::{dense_gemv_converted, DenseActivations};
use crate::model::numerics;
use crate::quant::float::f16_bits_to_f32;
use crate::quant::q6_k::BlockQ8K;
use crate::quant::q8_0::BlockQ8_0;
use crate::quant::TensorType;

/// Column counts of the float kernels: the 2B4T widths, 64-multiples, odd tails.
const FLOAT_WIDTHS: &[usize] = &[1, 7, 16, 63, 64, 65, 100, 128, 200, 2560, 2561, 6912];
const BLOCK_WIDTHS: &[usize] = &[32, 64, 96, 256, 288, 512, 2560, 6912];
const KQ_WIDTHS: &[usize] = &[256, 512, 768, 2560, 6912];

/// A GEMV over float rows: activations, row bytes, one output per row.
pub type FloatGemv<'a> = &'a dyn Fn(&[f32], &[u8], &mut [f32]);
/// A batched product: F16 weights?, activation rows, k, weight rows, outputs.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub type FloatGemm<'a> = &'a dyn Fn(bool, &[f32], usize, &[u8], &mut [f32]);

fn f16w(w: &[u8], i: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([w[2 * i], w[2 * i + 1]]))
}

fn f32w(w: &[u8], i: usize) -> f32 {
    f32::from_le_bytes(w[4 * i..4 * i + 4].try_into().unwrap())
}

/// A GEMV over F16 rows equals `numerics::dot_exact_products` per row; so does the dot
/// over `half::f16` values.
pub fn check_f16(gemv: FloatGemv<'_>, dot_halves: &dyn Fn(&[f32], &[f16]) -> f32) {
    let mut rng = Rng::new(1);
    for &k in FLOAT_WIDTHS {
        for trial in 0..6 {
            let rows = 3;
            let x = rng.floats(k, if trial % 2 == 0 { 1.0 } else { 300.0 });
            // The forward pass rounds the activations to f16 first; unrounded ones must
            // agree too (the kernels do not rely on exact products).
            let a = if trial < 3 { round_f16(&x) } else { x };
            let w: Vec<u8> = (0..rows).flat_map(|_| f16_row(&mut rng, k)).collect();
            let mut out = vec![0.0; rows];
            gemv(&a, &w, &mut out);
            for (r, &got) in out.iter().enumerate() {
                let row = &w[2 * k * r..][..2 * k];
                let want = numerics::dot_exact_products(&a, |i| f16w(row, i));
                assert!(same(got, want), "k {k} row {r}: {got} vs {want}");
                let h: Vec<f16> = (0..k)
                    .map(|i| f16::from_bits(u16::from_le_bytes([row[2 * i], row[2 * i + 1]])))
                    .collect();
                assert!(same(dot_halves(&a, &h), want));
            }
        }
    }
}

/// A GEMV over F32 rows equals `numerics::dot_fused` per row.
pub fn check_f32(gemv: FloatGemv<'_>) {
    let mut rng = Rng::new(3);
    for &k in FLOAT_WIDTHS {
        for _ in 0..4 {
            let a = rng.floats(k, 1.0);
            let w: Vec<u8> = (0..2).flat_map(|_| f32_row(&mut rng, k)).collect();
            let mut out = vec![0.0; 2];
            gemv(&a, &w, &mut out);
            for (r, &got) in out.iter().enumerate() {
                let row = &w[4 * k * r..][..4 * k];
                let want = numerics::dot_fused(&a, |i| f32w(row, i));
                assert!(same(got, want), "k {k} row {r}: {got} vs {want}");
            }
        }
    }
}

/// Batched F16 (`true`) / F32 products equal `numerics::dot_tinyblas` per pair of rows.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub fn check_tinyblas(gemm: FloatGemm<'_>) {
    let mut rng = Rng::new(4);
    for &k in &[16, 48, 64, 2560, 6912] {
        for (n, m) in [(1, 1), (2, 3), (3, 4), (2, 9), (5, 7)] {
            let x = rng.floats(n * k, 1.0);
            for f16 in [true, false] {
                let w: Vec<u8> = (0..m)
                    .flat_map(|_| {
                        if f16 {
                            f16_row(&mut rng, k)
                        } else {
                            f32_row(&mut rng, k)
                        }
                    })
                    .collect();
                let mut out = vec![0.0; n * m];
                gemm(f16, &x, k, &w, &mut out);
                let rb = w.len() / m;
                for t in 0..n {
                    for r in 0..m {
                        let row = &w[r * rb..][..rb];
                        let xr = &x[t * k..][..k];
                        let want = if f16 {
                            numerics::dot_tinyblas(xr, |i| f16w(row, i))
                        } else {
                            numerics::dot_tinyblas(xr, |i| f32w(row, i))
                        };
                        let got = out[t * m + r];
                        assert!(
                            same(got, want),
                            "f16 {f16} k {k} t {t} r {r}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

fn scalar_gemv(ty: TensorType, w: &[u8], rows: usize, k: usize, x: &[f32], out: &mut [f32]) {
    let mut act = DenseActivations::new();
    act.convert(ty, x).unwrap();
    dense_gemv_converted(ty, w, rows, k, &act, out).unwrap();
}

/// Checks `dot` on random rows of `ty` against `scalar_dense`.
fn check_quantized(
    ty: TensorType,
    widths: &[usize],
    make_rows: fn(&mut Rng, usize, usize) -> Vec<u8>,
    dot: &dyn Fn(&[u8], &[f32]) -> f32,
) {
    let mut rng = Rng::new(ty as u64 + 10);
    for &k in widths {
        for trial in 0..5 {
            let rows = 4;
            let scale = [1.0, 1e-3, 50.0, 1.0, 7.0][trial];
            let mut x = rng.floats(k, scale);
            if trial == 3 {
                // A block of zeros.
                x[..32.min(k)].iter_mut().for_each(|v| *v = 0.0);
            }
            let w = make_rows(&mut rng, rows, k);
            let mut want = vec![0.0; rows];
            scalar_gemv(ty, &w, rows, k, &x, &mut want);
            let rb = w.len() / rows;
            for (r, &want) in want.iter().enumerate() {
                let got = dot(&w[r * rb..][..rb], &x);
                assert!(same(got, want), "{ty} k {k} row {r}: {got} vs {want}");
            }
        }
    }
}

/// Q8_0 rows with Q8_0 activations, including weight quants of -128.
pub fn check_q8_0(dot: fn(&[u8], &[BlockQ8_0]) -> f32) {
    check_quantized(TensorType::Q8_0, BLOCK_WIDTHS, q8_0_rows, &|w, x| {
        dot(w, &q8_0_acts(x))
    });
    let k = 64;
    let mut x = vec![1.0f32; k];
    x[1] = -1.0;
    x[40] = -1.0;
    let mut w = Vec::new();
    for _ in 0..2 {
        w.extend_from_slice(&f16::from_f32(0.5).to_le_bytes());
        w.extend(std::iter::repeat_n(0x80u8, 32));
    }
    let mut want = [0.0];
    scalar_gemv(TensorType::Q8_0, &w, 1, k, &x, &mut want);
    assert!(same(dot(&w, &q8_0_acts(&x)), want[0]));
    assert!(want[0] < 0.0);
}

/// Q4_0 rows with Q8_0 activations.
pub fn check_q4_0(dot: fn(&[u8], &[BlockQ8_0]) -> f32) {
    check_quantized(TensorType::Q4_0, BLOCK_WIDTHS, q4_0_rows, &|w, x| {
        dot(w, &q8_0_acts(x))
    });
}

/// Q6_K rows with Q8_K activations.
pub fn check_q6_k(dot: fn(&[u8], &[BlockQ8K]) -> f32) {
    check_quantized(TensorType::Q6_K, KQ_WIDTHS, q6_k_rows, &|w, x| {
        dot(w, &q8_k_acts(x))
    });
}

/// Several-row Q6_K dots (`rows(w, x, out)`, `out.len()` rows) equal the scalar twin row
/// by row, for row counts around the kernels' row groups (remainders included).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub fn check_q6_k_rows(rows_dot: fn(&[u8], &[BlockQ8K], &mut [f32])) {
    let mut rng = Rng::new(61);
    for &k in KQ_WIDTHS {
        for rows in [1, 2, 3, 4, 5, 7, 8, 9, 13] {
            let x = rng.floats(k, [1.0, 1e-3, 50.0][rows % 3]);
            let w = q6_k_rows(&mut rng, rows, k);
            let mut want = vec![0.0; rows];
            scalar_gemv(TensorType::Q6_K, &w, rows, k, &x, &mut want);
            let mut got = vec![0.0; rows];
            rows_dot(&w, &q8_k_acts(&x), &mut got);
            for (r, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(same(g, w), "Q6_K k {k} rows {rows} row {r}: {g} vs {w}");
            }
        }
    }
}

/// Every path's dense table entries equal the scalar table's, bit for bit (the table is
/// what `model::linear` calls; `TERN_ISA` picks the path).
#[test]
fn every_path_dense_entries_equal_scalar() {
    use crate::kernels::dispatch::Isa;
    use crate::kernels::table::{scalar_table, table_for, FloatRowDotFn};
    let scalar = scalar_table().dense;
    let mut rng = Rng::new(99);
    let isas = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod];
    for t in isas.into_iter().filter_map(table_for) {
        let d = t.dense;
        for k in [256, 2560, 6912] {
            let x = rng.floats(k, 1.0);
            let xr = round_f16(&x);
            let h = f16_row(&mut rng, k);
            let f = f32_row(&mut rng, k);
            let pairs: [(FloatRowDotFn, FloatRowDotFn, &[f32], &[u8]); 4] = [
                (d.f16_exact, scalar.f16_exact, &xr, &h),
                (d.f16_tinyblas, scalar.f16_tinyblas, &x, &h),
                (d.f32_fused, scalar.f32_fused, &x, &f),
                (d.f32_tinyblas, scalar.f32_tinyblas, &x, &f),
            ];
            for (i, (fast, slow, a, w)) in pairs.into_iter().enumerate() {
                assert!(
                    same(fast(a, w), slow(a, w)),
                    "{} float entry {i} k {k}",
                    d.name
                );
            }
            for (ty, w) in [
                (TensorType::Q8_0, q8_0_rows(&mut rng, 1, k)),
                (TensorType::Q4_0, q4_0_rows(&mut rng, 1, k)),
                (TensorType::Q6_K, q6_k_rows(&mut rng, 1, k)),
            ] {
                let mut act = DenseActivations::new();
                act.convert(ty, &x).unwrap();
                let fast = d.converted_dot(ty).unwrap()(&w, &act);
                let slow = scalar.converted_dot(ty).unwrap()(&w, &act);
                assert!(same(fast, slow), "{} {ty} k {k}: {fast} vs {slow}", d.name);
                if let Some(rows_dot) = d.converted_rows(ty) {
                    // Six copies of the row: one group of four and a remainder of two.
                    let w6 = w.repeat(6);
                    let mut out = [0.0; 6];
                    rows_dot(&w6, &act, &mut out);
                    assert!(out.iter().all(|&v| same(v, slow)), "{} {ty} rows", d.name);
                }
            }
        }
    }
}
