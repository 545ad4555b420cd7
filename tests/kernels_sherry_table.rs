//! The dispatch table's Sherry and STQ1_0 entries on every path this CPU runs (each path
//! forced through `table_for`), with their prepare hooks, against the scalar entries bit for
//! bit: random shapes with odd tile counts, the 2B4T projection shapes, row ranges that cut
//! tiles, batches, and threads.

mod quant_common;

use quant_common::Rng;
use std::ops::Range;
use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::table::{scalar_table, table_for, KernelTable, TernaryKernel};
use tern::kernels::{Isa, Workers};
use tern::quant::ternary::{pack_ternary, TernaryMatrix, TernaryWeights, WeightScale};
use tern::quant::TensorType;

const TYPES: [TensorType; 2] = [TensorType::Sherry, TensorType::STQ1_0];

fn simd_paths() -> Vec<KernelTable> {
    let v: Vec<KernelTable> = [Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod]
        .into_iter()
        .filter_map(table_for)
        .collect();
    if v.is_empty() {
        eprintln!("*** no SIMD path on this CPU: only the scalar entries ran ***");
    }
    v
}

fn weights(rng: &mut Rng, ty: TensorType, rows: usize, cols: usize) -> Vec<u8> {
    let (values, scale) = match ty {
        TensorType::Sherry => (rng.trits_34(rows * cols), WeightScale::PerTensor(0.0123)),
        _ => (
            rng.trits_34_stride16(rows * cols),
            WeightScale::PerBlock {
                block: 256,
                scales: (0..rows * cols / 256)
                    .map(|i| half::f16::from_f32(0.002 + (i % 11) as f32 * 0.001).to_f32())
                    .collect(),
            },
        ),
    };
    let w = TernaryWeights::new(rows, cols, values, scale).unwrap();
    pack_ternary(ty, &w).unwrap()
}

fn activations(rng: &mut Rng, ty: TensorType, n: usize, cols: usize) -> Vec<QuantizedActivations> {
    let fmt = ActivationFormat::for_type(ty).unwrap();
    (0..n)
        .map(|t| {
            let x: Vec<f32> = (0..cols)
                .map(|i| match t % 3 {
                    // Rows of ±max: quants of ±127 everywhere, the largest table sums.
                    2 => {
                        if i % 5 == 0 {
                            -3.0
                        } else {
                            3.0
                        }
                    }
                    _ => rng.normal(1.0 + (i % 7) as f32),
                })
                .collect();
            let mut a = QuantizedActivations::new();
            a.quantize_into(fmt, &x).unwrap();
            a
        })
        .collect()
}

fn prepare(
    k: &TernaryKernel,
    cols: usize,
    acts: &[QuantizedActivations],
) -> Vec<QuantizedActivations> {
    let mut v = acts.to_vec();
    if let Some(p) = k.prepare {
        v.iter_mut().for_each(|a| p(cols, a));
    }
    v
}

fn check(
    table: &KernelTable,
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
) {
    let n = acts.len() * rows.len();
    let mut want = vec![0f32; n];
    let mut got = vec![f32::NAN; n];
    let s = scalar_table();
    let sk = s.ternary(m.ty).unwrap();
    (sk.gemm)(m, &prepare(sk, m.cols, acts), rows.clone(), &mut want);
    let k = table.ternary(m.ty).unwrap();
    (k.gemm)(m, &prepare(k, m.cols, acts), rows.clone(), &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{} ({}) {} {}x{} rows {rows:?}, {} tokens: output {i}: {g} vs {w}",
            table.isa,
            k.name,
            m.ty,
            m.rows,
            m.cols,
            acts.len()
        );
    }
}

#[test]
fn every_path_equals_scalar_on_random_shapes() {
    let mut rng = Rng::new(1250);
    for table in simd_paths() {
        for ty in TYPES {
            for _ in 0..8 {
                let (rows, cols) = match ty {
                    // Odd tile counts, columns any multiple of 32.
                    TensorType::Sherry => {
                        let tiles = 1 + 2 * rng.below(5);
                        (32 * tiles, 32 * (1 + rng.below(40)))
                    }
                    _ => (1 + rng.below(40), 256 * (1 + rng.below(6))),
                };
                let data = weights(&mut rng, ty, rows, cols);
                let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
                let n = 1 + rng.below(9);
                let acts = activations(&mut rng, ty, n, cols);
                check(&table, &m, &acts, 0..rows);
                check(&table, &m, &acts[..1], 0..rows);
                let a = rng.below(rows);
                let b = a + rng.below(rows - a + 1);
                check(&table, &m, &acts, a..b);
            }
        }
    }
}

#[test]
fn every_path_equals_scalar_on_bitnet_2b4t_shapes() {
    let mut rng = Rng::new(2560);
    // Under emulation (aarch64 runs in qemu) only two tiles of rows.
    let full = cfg!(target_arch = "x86_64");
    for &(rows, cols) in &[(2560, 2560), (640, 2560), (6912, 2560), (2560, 6912)] {
        let rows = if full { rows } else { 64 };
        for ty in TYPES {
            let data = weights(&mut rng, ty, rows, cols);
            let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
            let one = activations(&mut rng, ty, 1, cols);
            let batch = activations(&mut rng, ty, 5, cols);
            for table in simd_paths() {
                check(&table, &m, &one, 0..rows);
                check(&table, &m, &batch, 3..rows.min(70));
            }
        }
    }
}

#[test]
fn threaded_products_equal_single_threaded_ones() {
    let mut rng = Rng::new(77);
    let (rows, cols) = (352, 768);
    for ty in TYPES {
        let data = weights(&mut rng, ty, rows, cols);
        let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
        let kernel = tern::kernels::table().ternary(ty).unwrap();
        let gemm = kernel.gemm;
        for n in [1, 2, 7] {
            let acts = prepare(kernel, cols, &activations(&mut rng, ty, n, cols));
            let mut want = vec![0.0f32; n * rows];
            gemm(&m, &acts, 0..rows, &mut want);
            for threads in [1, 2, 3] {
                let workers = Workers::new(threads, 8).unwrap();
                let mut got = vec![f32::NAN; n * rows];
                workers.for_row_chunks(rows, n, &mut got, &|r, o| gemm(&m, &acts, r, o));
                assert_eq!(got, want, "{ty}, {n} tokens, {threads} threads");
            }
        }
    }
}
