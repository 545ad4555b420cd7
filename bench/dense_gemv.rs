//! Output-head GEMV throughput, scalar twin vs AVX2, one thread, in GB/s of weight bytes.
//!
//! ```text
//! cargo bench --bench dense_gemv                 # 128256 x 2560, F16 and Q6_K
//! cargo bench --bench dense_gemv -- 32000 4096   # other rows x cols
//! ```
//!
//! Random weights, one random activation row; each kernel runs `REPS` times over the whole
//! matrix and the best time counts. The AVX2 result is checked bit for bit against the
//! scalar one before anything is printed. Not a test: nothing here asserts a time.

use std::hint::black_box;
use std::time::Instant;

use tern::kernels::scalar_dense::{dense_gemv_converted, DenseActivations};
use tern::model::numerics;
use tern::quant::float::{f16_bits_to_f32, f32_to_f16_bits};
use tern::quant::q6_k::{quantize_block_q8_k, BlockQ8K, BLOCK_Q6_K_BYTES, QK_K};
use tern::quant::TensorType;

const REPS: usize = 3;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Best wall time of `REPS` runs of `f`, in seconds.
fn best(mut f: impl FnMut()) -> f64 {
    (0..REPS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(ty: &str, path: &str, bytes: usize, secs: f64) {
    println!(
        "| {ty} | {path} | {:.1} | {:.2} |",
        secs * 1e3,
        bytes as f64 / secs / 1e9
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(128_256);
    let cols = args.get(1).copied().unwrap_or(2560);
    assert!(cols % QK_K == 0, "cols must be a multiple of 256");
    let mut rng = Rng(7);
    let x: Vec<f32> = (0..cols).map(|_| rng.unit()).collect();
    let mut out_s = vec![0f32; rows];
    let mut out_v = vec![0f32; rows];
    println!("head {rows} x {cols}, one thread, best of {REPS}");
    println!("| weights | kernel | ms per GEMV | GB/s |");
    println!("|---|---|---|---|");

    // F16, one token: activations rounded to f16, `dot_exact_products` order.
    {
        let w: Vec<u8> = (0..rows * cols)
            .flat_map(|_| f32_to_f16_bits(rng.unit() * 0.1).to_le_bytes())
            .collect();
        let xr: Vec<f32> = x
            .iter()
            .map(|&v| f16_bits_to_f32(f32_to_f16_bits(v)))
            .collect();
        let rb = 2 * cols;
        let t = best(|| {
            for (o, row) in out_s.iter_mut().zip(w.chunks_exact(rb)) {
                *o = numerics::dot_exact_products(&xr, |c| {
                    f16_bits_to_f32(u16::from_le_bytes([row[2 * c], row[2 * c + 1]]))
                });
            }
            black_box(&out_s);
        });
        report("F16", "scalar", w.len(), t);
        avx2_f16(&xr, &w, &mut out_v, &out_s);
    }

    // Q6_K with Q8_K activations.
    {
        let nb = rows * cols / QK_K;
        let mut w = Vec::with_capacity(nb * BLOCK_Q6_K_BYTES);
        for _ in 0..nb {
            for i in 0..BLOCK_Q6_K_BYTES - 2 {
                w.push((rng.next() >> (i % 8)) as u8);
            }
            w.extend_from_slice(&f32_to_f16_bits(0.001 + rng.unit().abs() * 0.01).to_le_bytes());
        }
        let mut act = DenseActivations::new();
        act.convert(TensorType::Q6_K, &x).unwrap();
        let t = best(|| {
            dense_gemv_converted(TensorType::Q6_K, &w, rows, cols, &act, &mut out_s).unwrap();
            black_box(&out_s);
        });
        report("Q6_K", "scalar", w.len(), t);
        let blocks: Vec<BlockQ8K> = x
            .chunks_exact(QK_K)
            .map(|c| quantize_block_q8_k(c.try_into().unwrap()))
            .collect();
        avx2_q6_k(&blocks, &w, &mut out_v, &out_s);
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_f16(xr: &[f32], w: &[u8], out: &mut [f32], want: &[f32]) {
    use tern::kernels::x86::dense_avx2;
    if !dense_avx2::available() {
        return;
    }
    let t = best(|| {
        dense_avx2::gemv_f16_exact(xr, w, out);
        black_box(&out);
    });
    check(out, want);
    report("F16", "AVX2", w.len(), t);
}

#[cfg(target_arch = "x86_64")]
fn avx2_q6_k(x: &[BlockQ8K], w: &[u8], out: &mut [f32], want: &[f32]) {
    use tern::kernels::x86::dense_avx2;
    if !dense_avx2::available() {
        return;
    }
    let rb = x.len() * BLOCK_Q6_K_BYTES;
    let t = best(|| {
        for (o, row) in out.iter_mut().zip(w.chunks_exact(rb)) {
            *o = dense_avx2::dot_q6_k(row, x);
        }
        black_box(&out);
    });
    check(out, want);
    report("Q6_K", "AVX2", w.len(), t);
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_f16(_: &[f32], _: &[u8], _: &mut [f32], _: &[f32]) {}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_q6_k(_: &[BlockQ8K], _: &[u8], _: &mut [f32], _: &[f32]) {}

fn check(got: &[f32], want: &[f32]) {
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "row {r}: {g} vs {w}");
    }
}
