//! Kernel benchmark: GEMV throughput (GB/s of weight bytes read) per ternary type × kernel
//! path × thread count on the BitNet b1.58 2B4T shapes and its output head, the dense head
//! types through the dispatch table, a prefill GEMM, and — in the same run — the machine's
//! streaming read bandwidth, so every figure can be read as a fraction of the roofline.
//!
//! ```sh
//! cargo bench --bench kernels            # everything (a few minutes)
//! cargo bench --bench kernels -- quick   # fewer repetitions
//! cargo bench --bench kernels -- gemm    # only the prefill GEMM table (add type names,
//!                                        # e.g. `gemm I2_S TQ2_0`, to run only those)
//! cargo bench --bench kernels -- dense   # only the read bandwidth and the dense head
//!                                        # table (add type names, e.g. `dense Q6_K`)
//! ```
//!
//! Weights are random (speed does not depend on the values). Each measured matrix is
//! replicated until the copies exceed 256 MiB and the copies are used in turn, so the
//! weights come from memory, not from the caches, as in a real decode step.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::scalar_dense::DenseActivations;
use tern::kernels::{table_for, Isa, KernelTable, Workers};
use tern::quant::dense::row_bytes;
use tern::quant::ternary::TernaryMatrix;
use tern::quant::TensorType;

/// Bytes the copies of one matrix must exceed (well above the last-level cache).
const COLD_BYTES: usize = 256 << 20;

/// The 2B4T projection shapes (rows × cols) and the head.
const SHAPES: &[(&str, usize, usize)] = &[
    ("attn_q/o 2560x2560", 2560, 2560),
    ("attn_k/v 640x2560", 640, 2560),
    ("ffn_up/gate 6912x2560", 6912, 2560),
    ("ffn_down 2560x6912", 2560, 6912),
    ("head 128256x2560", 128256, 2560),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Random bytes of a `rows × cols` tensor of type `ty`, with every scale set to a small
/// finite value so that the matrix validates.
fn random_tensor(rng: &mut Rng, ty: TensorType, rows: usize, cols: usize) -> Vec<u8> {
    let n = ty.nbytes(&[cols as u64, rows as u64]).unwrap() as usize;
    let mut b = vec![0u8; n];
    rng.fill(&mut b);
    let half = half::f16::from_f32(0.01).to_le_bytes();
    match ty {
        TensorType::I2_S => {
            let at = rows * cols / 4;
            b[at..].fill(0);
            b[at..at + 4].copy_from_slice(&0.5f32.to_le_bytes());
        }
        TensorType::Sherry => {
            // Any index nibble and sign bit is a valid 3:4 group; the tail holds the scale.
            let at = rows * cols * 5 / 32;
            b[at..].fill(0);
            b[at..at + 4].copy_from_slice(&0.5f32.to_le_bytes());
        }
        TensorType::TQ1_0
        | TensorType::TQ2_0
        | TensorType::STQ1_0
        | TensorType::Q6_K
        | TensorType::Q8_0 => {
            let bs = ty.info().type_size as usize;
            // The f16 scale is last in TQ1_0/TQ2_0/Q6_K blocks and first in Q8_0.
            let at = if ty == TensorType::Q8_0 { 0 } else { bs - 2 };
            for blk in b.chunks_exact_mut(bs) {
                blk[at..at + 2].copy_from_slice(&half);
            }
        }
        TensorType::F16 => {
            for v in b.chunks_exact_mut(2) {
                let x = half::f16::from_f32(rng.unit() * 0.1).to_le_bytes();
                v.copy_from_slice(&x);
            }
        }
        _ => unreachable!("no generator for {ty}"),
    }
    b
}

/// Enough copies of a tensor to exceed [`COLD_BYTES`].
fn cold_copies(rng: &mut Rng, ty: TensorType, rows: usize, cols: usize) -> Vec<Vec<u8>> {
    let one = random_tensor(rng, ty, rows, cols);
    let n = COLD_BYTES.div_ceil(one.len()).max(2);
    let mut v = vec![one];
    for _ in 1..n {
        v.push(v[0].clone());
    }
    v
}

/// Best time per call of `f` (called with the copy index) over `reps` rounds of at least
/// `min` each.
fn best_time(reps: usize, min: Duration, copies: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut best = f64::INFINITY;
    let mut i = 0;
    for _ in 0..reps {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < min || calls < 2 {
            f(i % copies);
            i += 1;
            calls += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

/// CPU seconds the process has used so far (all threads).
fn process_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Like [`best_time`], but in CPU seconds of the process per call (the sum over its
/// threads), which a loaded machine disturbs less than wall time.
fn best_cpu_time(reps: usize, min: Duration, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        let cpu = process_cpu_secs();
        let mut calls = 0u32;
        while start.elapsed() < min || calls < 2 {
            f();
            calls += 1;
        }
        best = best.min((process_cpu_secs() - cpu) / calls as f64);
    }
    best
}

/// Streaming read bandwidth in GB/s with `threads` threads over `buf`.
fn read_bandwidth(buf: &[u64], threads: usize, reps: usize) -> f64 {
    let sum_part = |part: &[u64]| {
        let mut acc = [0u64; 8];
        for c in part.chunks_exact(8) {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a = a.wrapping_add(v);
            }
        }
        acc.iter().fold(0u64, |s, &v| s.wrapping_add(v))
    };
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        let total = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(buf.len().div_ceil(threads))
                .map(|part| s.spawn(move || sum_part(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold(0u64, u64::wrapping_add)
        });
        black_box(total);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (buf.len() * 8) as f64 / best / 1e9
}

fn paths() -> Vec<KernelTable> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod]
        .into_iter()
        .filter_map(table_for)
        .collect()
}

fn quantized(rng: &mut Rng, ty: TensorType, n: usize, cols: usize) -> Vec<QuantizedActivations> {
    let fmt = ActivationFormat::for_type(ty).unwrap();
    (0..n)
        .map(|_| {
            let x: Vec<f32> = (0..cols).map(|_| rng.unit()).collect();
            let mut a = QuantizedActivations::new();
            a.quantize_into(fmt, &x).unwrap();
            a
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    let (reps, min) = if quick {
        (3, Duration::from_millis(100))
    } else {
        (5, Duration::from_millis(300))
    };
    let threads = [1usize, 2];
    println!("{}", tern::kernels::system_info());
    let mut rng = Rng(0x5eed);
    if args.iter().any(|a| a == "gemm") {
        let picked: Vec<TensorType> = GEMM_TYPES
            .iter()
            .copied()
            .filter(|ty| args.iter().any(|a| *a == ty.to_string()))
            .collect();
        let types = if picked.is_empty() {
            GEMM_TYPES
        } else {
            &picked
        };
        gemm_table(&mut rng, types, reps, min, &threads);
        return;
    }

    let dense_only = args.iter().any(|a| a == "dense");
    // Streaming read bandwidth, 1 GiB.
    let buf: Vec<u64> = (0..(1usize << 27)).map(|i| i as u64).collect();
    let bw: Vec<f64> = threads
        .iter()
        .map(|&t| read_bandwidth(&buf, t, reps))
        .collect();
    drop(buf);
    println!();
    println!("streaming read bandwidth (1 GiB, best of {reps}):");
    for (t, b) in threads.iter().zip(&bw) {
        println!("  {t} thread(s): {b:.1} GB/s");
    }

    if dense_only {
        let picked: Vec<TensorType> = DENSE_HEAD_TYPES
            .iter()
            .copied()
            .filter(|ty| args.iter().any(|a| *a == ty.to_string()))
            .collect();
        let types = if picked.is_empty() {
            DENSE_HEAD_TYPES
        } else {
            &picked
        };
        dense_head_table(&mut rng, types, reps, min, &threads, &bw);
        return;
    }

    println!();
    println!("ternary GEMV, one token, weights from memory: GB/s of weight bytes (% of the read bandwidth at that thread count)");
    println!("| type | shape | path | 1 thread | 2 threads |");
    println!("|---|---|---|---|---|");
    for ty in [
        TensorType::I2_S,
        TensorType::TQ2_0,
        TensorType::TQ1_0,
        TensorType::Sherry,
        TensorType::STQ1_0,
    ] {
        for &(label, rows, cols) in SHAPES {
            let copies = cold_copies(&mut rng, ty, rows, cols);
            let mats: Vec<TernaryMatrix> = copies
                .iter()
                .map(|b| TernaryMatrix::new(ty, &[cols as u64, rows as u64], b).unwrap())
                .collect();
            let bytes = copies[0].len() as f64;
            for table in paths() {
                let kernel = *table.ternary(ty).unwrap();
                let mut acts = quantized(&mut rng, ty, 1, cols);
                if let Some(p) = kernel.prepare {
                    p(cols, &mut acts[0]);
                }
                let mut out = vec![0.0f32; rows];
                let mut cells = Vec::new();
                for (ti, &t) in threads.iter().enumerate() {
                    if table.isa == Isa::Scalar && (rows > 10_000 || t > 1) {
                        cells.push("-".to_string());
                        continue;
                    }
                    let workers = Workers::new(t, 1).unwrap();
                    let secs = workers.run(|| {
                        best_time(reps, min, mats.len(), |i| {
                            let m = &mats[i];
                            workers.for_row_chunks(rows, 1, &mut out, &|r, o| {
                                (kernel.gemm)(m, &acts, r, o)
                            });
                        })
                    });
                    let gbs = bytes / secs / 1e9;
                    cells.push(format!("{gbs:.1} ({:.0}%)", 100.0 * gbs / bw[ti]));
                }
                println!(
                    "| {ty} | {label} | {} {} | {} | {} |",
                    table.isa, kernel.name, cells[0], cells[1]
                );
            }
        }
    }

    dense_head_table(&mut rng, DENSE_HEAD_TYPES, reps, min, &threads, &bw);
    gemm_table(&mut rng, GEMM_TYPES, reps, min, &threads);
}

/// The dense types of the head table.
const DENSE_HEAD_TYPES: &[TensorType] = &[TensorType::F16, TensorType::Q8_0, TensorType::Q6_K];

/// Head GEMV throughput (128256 × 2560, weights from memory) for `types` through the
/// dispatch table, as GB/s and as a fraction of the read bandwidth `bw` per thread count.
fn dense_head_table(
    rng: &mut Rng,
    types: &[TensorType],
    reps: usize,
    min: Duration,
    threads: &[usize],
    bw: &[f64],
) {
    println!();
    println!("dense head GEMV 128256x2560 through the dispatch table (GB/s, % of read bandwidth)");
    println!("| type | path | 1 thread | 2 threads |");
    println!("|---|---|---|---|");
    let (rows, cols) = (128256, 2560);
    for &ty in types {
        let copies = cold_copies(rng, ty, rows, cols);
        let rb = row_bytes(ty, cols).unwrap();
        let x: Vec<f32> = (0..cols).map(|_| rng.unit()).collect();
        let xr: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        let mut conv = DenseActivations::new();
        if ty != TensorType::F16 {
            conv.convert(ty, &x).unwrap();
        }
        for table in paths().iter().filter(|t| t.isa != Isa::Scalar) {
            let d = table.dense;
            // What `model::linear` calls (the several-row entry when the path has one),
            // then the row dot alone for comparison.
            let mut variants = vec![(d.converted_rows(ty), "")];
            if variants[0].0.is_some() {
                variants.push((None, " (row by row)"));
            }
            for (rows_dot, note) in variants {
                let mut out = vec![0.0f32; rows];
                let mut cells = Vec::new();
                for (ti, &t) in threads.iter().enumerate() {
                    let workers = Workers::new(t, 1).unwrap();
                    let secs = workers.run(|| {
                        best_time(reps, min, copies.len(), |i| {
                            let w = &copies[i];
                            workers.for_row_chunks(rows, 1, &mut out, &|r, o| {
                                if let Some(f) = rows_dot {
                                    return f(&w[r.start * rb..r.end * rb], &conv, o);
                                }
                                for (o, r) in o.iter_mut().zip(r) {
                                    let row = &w[r * rb..][..rb];
                                    *o = match ty {
                                        TensorType::F16 => (d.f16_exact)(&xr, row),
                                        _ => d.converted_dot(ty).unwrap()(row, &conv),
                                    };
                                }
                            });
                        })
                    });
                    let gbs = copies[0].len() as f64 / secs / 1e9;
                    cells.push(format!("{gbs:.1} ({:.0}%)", 100.0 * gbs / bw[ti]));
                }
                println!(
                    "| {ty} | {} {}{note} | {} | {} |",
                    table.isa,
                    d_name(table),
                    cells[0],
                    cells[1]
                );
            }
        }
    }
}

/// The types the prefill GEMM table covers.
const GEMM_TYPES: &[TensorType] = &[
    TensorType::I2_S,
    TensorType::TQ2_0,
    TensorType::TQ1_0,
    TensorType::Sherry,
    TensorType::STQ1_0,
];

/// Prefill GEMM throughput (128 tokens, weights and activations warm) for `types` on the
/// 2B4T FFN shapes.
fn gemm_table(rng: &mut Rng, types: &[TensorType], reps: usize, min: Duration, threads: &[usize]) {
    println!();
    println!("ternary GEMM, 128 tokens (prefill): G weight·token products per second (wall");
    println!("time; in brackets per CPU-second of the process, steadier on a loaded machine)");
    println!("| type | shape | path | 1 thread | 2 threads |");
    println!("|---|---|---|---|---|");
    let n = 128;
    for &ty in types {
        for &(label, rows, cols) in &SHAPES[2..4] {
            let data = random_tensor(rng, ty, rows, cols);
            let m = TernaryMatrix::new(ty, &[cols as u64, rows as u64], &data).unwrap();
            for table in paths().iter().filter(|t| t.isa != Isa::Scalar) {
                let kernel = *table.ternary(ty).unwrap();
                let mut acts = quantized(rng, ty, n, cols);
                if let Some(p) = kernel.prepare {
                    acts.iter_mut().for_each(|a| p(cols, a));
                }
                let mut out = vec![0.0f32; n * rows];
                let mut cells = Vec::new();
                for &t in threads {
                    let workers = Workers::new(t, n).unwrap();
                    let secs = workers.run(|| {
                        best_time(reps.min(3), min, 1, |_| {
                            workers.for_row_chunks(rows, n, &mut out, &|r, o| {
                                (kernel.gemm)(&m, &acts, r, o)
                            });
                        })
                    });
                    let cpu = workers.run(|| {
                        best_cpu_time(reps.min(3), min, || {
                            workers.for_row_chunks(rows, n, &mut out, &|r, o| {
                                (kernel.gemm)(&m, &acts, r, o)
                            });
                        })
                    });
                    let products = (rows * cols * n) as f64;
                    cells.push(format!(
                        "{:.0} ({:.0})",
                        products / secs / 1e9,
                        products / cpu / 1e9
                    ));
                }
                println!(
                    "| {ty} | {label} | {} {} | {} | {} |",
                    table.isa, kernel.name, cells[0], cells[1]
                );
            }
        }
    }
}

fn d_name(t: &KernelTable) -> &'static str {
    t.dense.name
}
