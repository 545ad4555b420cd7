use std::time::Instant;
use tern::kernels::act::{ActivationFormat, QuantizedActivations};
use tern::kernels::lut::build_sherry_tables;
use tern::kernels::stq1_prep::Stq1Activations;
use tern::kernels::x86::{sherry_avx2, stq1_avx2};
use tern::quant::ternary::{pack_ternary, TernaryWeights, WeightScale};
use tern::quant::TensorType;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (rows, cols, ntok) = (args[0], args[1], args[2]);
    let mut s = 1u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut v = Vec::new();
    for _ in 0..rows * cols / 4 {
        let z = (rnd() % 4) as usize;
        for p in 0..4 {
            v.push(if p == z {
                0
            } else if rnd() & 1 == 0 {
                1
            } else {
                -1
            });
        }
    }
    let w = TernaryWeights::new(rows, cols, v.clone(), WeightScale::PerTensor(0.5)).unwrap();
    let data = pack_ternary(TensorType::Sherry, &w).unwrap();
    let qs: Vec<Vec<i8>> = (0..ntok)
        .map(|_| (0..cols).map(|_| (rnd() % 255) as i8).collect())
        .collect();
    let tabs: Vec<Vec<u8>> = qs
        .iter()
        .map(|q| {
            let mut t = Vec::new();
            build_sherry_tables(q, &mut t);
            t
        })
        .collect();
    let tr: Vec<&[u8]> = tabs.iter().map(|t| t.as_slice()).collect();
    let sc = vec![1.0f32; ntok];
    let mut out = vec![0f32; rows * ntok];
    let iters = 20;
    let t = Instant::now();
    for _ in 0..iters {
        sherry_avx2::sherry_gemm(&data, cols, 0.5, &tr, &sc, 0..rows, &mut out);
    }
    let dt = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "sherry {rows}x{cols} x{ntok}: {:.3} ms, {:.2} GB/s weights, {:.2} Gweights*tok/s",
        dt * 1e3,
        data.len() as f64 / dt / 1e9,
        (rows * cols * ntok) as f64 / dt / 1e9
    );
    let t = Instant::now();
    let mut tb = Vec::new();
    for _ in 0..iters {
        build_sherry_tables(&qs[0], &mut tb);
    }
    println!(
        "  table build: {:.3} ms",
        t.elapsed().as_secs_f64() / iters as f64 * 1e3
    );
    if cols % 256 == 0 {
        let w2 =
            TernaryWeights::new(rows, cols, w.values.clone(), WeightScale::PerTensor(0.5)).unwrap();
        // Stride-16 3:4 needed: project.
        let (w2, _) =
            tern::quant::sherry::project_34(&w2, None, tern::quant::sherry::GroupLayout::Stride16)
                .unwrap();
        let d2 = pack_ternary(TensorType::STQ1_0, &w2).unwrap();
        let preps: Vec<Stq1Activations> = (0..ntok)
            .map(|_| {
                let x: Vec<f32> = (0..cols)
                    .map(|_| (rnd() % 1000) as f32 / 500.0 - 1.0)
                    .collect();
                let mut a = QuantizedActivations::new();
                a.quantize_into(ActivationFormat::Q8K, &x).unwrap();
                let mut p = Stq1Activations::default();
                p.prepare(&a).unwrap();
                p
            })
            .collect();
        let t = Instant::now();
        for _ in 0..iters {
            stq1_avx2::stq1_gemm(&d2, cols, ntok, &|i| preps[i].token(), 0..rows, &mut out);
        }
        let dt = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "stq1 {rows}x{cols} x{ntok}: {:.3} ms, {:.2} GB/s weights",
            dt * 1e3,
            d2.len() as f64 / dt / 1e9
        );
    }
}
