//! Property tests: every path this CPU runs gives the scalar twin's outputs bit for bit,
//! on random shapes (the BitNet b1.58 2B4T ones included, odd row counts, row ranges that
//! start anywhere) and random weights and activations; and threaded products equal
//! single-threaded ones.

use std::ops::Range;

use super::act::{ActivationFormat, QuantizedActivations};
use super::dispatch::Isa;
use super::parallel::Workers;
use super::table::{scalar_table, table_for, KernelTable, TernaryKernel};
use crate::quant::ternary::{pack_ternary, TernaryMatrix, TernaryWeights, WeightScale};
use crate::quant::TensorType;

/// xorshift64*: deterministic random numbers for the tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// The ternary types whose kernels this module owns.
const TYPES: [TensorType; 3] = [TensorType::I2_S, TensorType::TQ2_0, TensorType::TQ1_0];

/// Every path this CPU runs, with its table.
fn paths() -> Vec<KernelTable> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod]
        .into_iter()
        .filter_map(table_for)
        .collect()
}

/// Random packed weights of type `ty`. `extreme` puts every weight at +1 (the largest
/// I2_S code sums), else a random mix with about a third zeros.
fn weights(rng: &mut Rng, ty: TensorType, rows: usize, cols: usize, extreme: bool) -> Vec<u8> {
    let values: Vec<i8> = (0..rows * cols)
        .map(|_| if extreme { 1 } else { rng.below(3) as i8 - 1 })
        .collect();
    let scale = match ty {
        TensorType::I2_S => WeightScale::PerTensor(0.01 + rng.unit().abs()),
        _ => WeightScale::PerBlock {
            block: 256,
            scales: (0..rows * cols / 256)
                .map(|_| half::f16::from_f32(0.001 + rng.unit().abs()).to_f32())
                .collect(),
        },
    };
    let w = TernaryWeights::new(rows, cols, values, scale).unwrap();
    pack_ternary(ty, &w).unwrap()
}

/// `n` random activation rows of `cols`, in the format of `ty`. `extreme` makes rows of
/// ±max (quants of ±127 and -128), the worst case for 16-bit sums.
fn activations(
    rng: &mut Rng,
    ty: TensorType,
    n: usize,
    cols: usize,
    extreme: bool,
) -> Vec<QuantizedActivations> {
    let fmt = ActivationFormat::for_type(ty).unwrap();
    (0..n)
        .map(|t| {
            let x: Vec<f32> = (0..cols)
                .map(|i| {
                    if extreme {
                        if (i + t) % 3 == 0 {
                            -1.0
                        } else {
                            1.0
                        }
                    } else {
                        rng.unit() * (1.0 + (i % 7) as f32)
                    }
                })
                .collect();
            let mut a = QuantizedActivations::new();
            a.quantize_into(fmt, &x).unwrap();
            a
        })
        .collect()
}

/// The rows as `kernel` wants them (its prepare hook run on copies).
fn prepare(
    kernel: &TernaryKernel,
    cols: usize,
    acts: &[QuantizedActivations],
) -> Vec<QuantizedActivations> {
    let mut v = acts.to_vec();
    if let Some(p) = kernel.prepare {
        v.iter_mut().for_each(|a| p(cols, a));
    }
    v
}

/// Runs `table`'s GEMM of `ty` on rows `rows` and checks it against the scalar entry, bit
/// for bit.
fn check_range(
    table: &KernelTable,
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
) {
    let n = acts.len() * rows.len();
    let mut want = vec![0.0f32; n];
    let mut got = vec![f32::NAN; n];
    (scalar_table().ternary(m.ty).unwrap().gemm)(m, acts, rows.clone(), &mut want);
    let kernel = table.ternary(m.ty).unwrap();
    let prepared = prepare(kernel, m.cols, acts);
    (kernel.gemm)(m, &prepared, rows.clone(), &mut got);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{} {} {}x{} rows {rows:?}, {} tokens: output {i}: {g} vs {w}",
            table.isa,
            m.ty,
            m.rows,
            m.cols,
            acts.len()
        );
    }
}

#[test]
fn every_path_equals_scalar_on_random_shapes() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for table in paths() {
        for ty in TYPES {
            for case in 0..12 {
                let rows = 1 + rng.below(23);
                let cols = match ty {
                    TensorType::I2_S => 128 * (1 + rng.below(20)),
                    _ => 256 * (1 + rng.below(6)),
                };
                let extreme = case % 4 == 3;
                let mut data = weights(&mut rng, ty, rows, cols, extreme);
                if extreme && ty == TensorType::I2_S && case % 8 == 7 {
                    // Code 3 everywhere (no ternary value, but kernels must agree on it).
                    let codes = rows * cols / 4;
                    data[..codes].fill(0xff);
                }
                let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
                let n = 1 + rng.below(9);
                let acts = activations(&mut rng, ty, n, cols, extreme);
                check_range(&table, &m, &acts, 0..rows);
                check_range(&table, &m, &acts[..1], 0..rows);
                let a = rng.below(rows);
                let b = a + rng.below(rows - a + 1);
                check_range(&table, &m, &acts, a..b);
            }
        }
    }
}

#[test]
fn every_path_equals_scalar_on_bitnet_2b4t_shapes() {
    let mut rng = Rng(0x0bad_cafe_f00d_1234);
    // Under emulation (aarch64 runs in qemu) only a slice of the rows: the columns are
    // what the kernels walk.
    let full = cfg!(target_arch = "x86_64");
    for &(rows, cols) in &[(2560, 2560), (640, 2560), (6912, 2560), (2560, 6912)] {
        let rows = if full { rows } else { 37 };
        for ty in TYPES {
            if cols % 256 != 0 && ty != TensorType::I2_S {
                continue;
            }
            let data = weights(&mut rng, ty, rows, cols, false);
            let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
            let one = activations(&mut rng, ty, 1, cols, false);
            let batch = activations(&mut rng, ty, 5, cols, false);
            for table in paths().iter().filter(|t| t.isa != Isa::Scalar) {
                check_range(table, &m, &one, 0..rows);
                check_range(table, &m, &batch, 3..rows.min(70));
            }
        }
    }
}

#[test]
fn threaded_products_equal_single_threaded_ones() {
    let mut rng = Rng(77);
    let (rows, cols) = (333, 512);
    for ty in TYPES {
        let data = weights(&mut rng, ty, rows, cols, false);
        let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
        let kernel = super::table().ternary(ty).unwrap();
        let gemm = kernel.gemm;
        for n in [1, 2, 7] {
            let acts = prepare(kernel, cols, &activations(&mut rng, ty, n, cols, false));
            let mut want = vec![0.0f32; n * rows];
            gemm(&m, &acts, 0..rows, &mut want);
            for threads in [1, 2, 3, 4] {
                let workers = Workers::new(threads, 8).unwrap();
                let mut got = vec![f32::NAN; n * rows];
                workers.for_row_chunks(rows, n, &mut got, &|r, o| gemm(&m, &acts, r, o));
                assert_eq!(got, want, "{ty}, {n} tokens, {threads} threads");
                // From inside the pool as well (how a context runs its evaluations).
                let mut inside = vec![f32::NAN; n * rows];
                workers.run(|| {
                    workers.for_row_chunks(rows, n, &mut inside, &|r, o| gemm(&m, &acts, r, o))
                });
                assert_eq!(inside, want, "{ty}, {n} tokens, {threads} threads, inside");
            }
        }
    }
}
