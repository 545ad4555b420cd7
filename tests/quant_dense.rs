//! Dense types (F32, F16, BF16, Q8_0, Q4_0, Q6_K): round-trip error bounds, the scalar
//! GEMV against an f64 dot of what it sees, bad sizes, and the reference GGUF files.

use std::path::PathBuf;

use tern::gguf::GgufFile;
use tern::kernels::scalar_dense::{dense_gemv, dense_gemv_converted, DenseActivations};
use tern::quant::dense::{dequantize_row, quantize_row, row_bytes, vec_dot_type};
use tern::quant::float::f32_to_f16_bits;
use tern::quant::TensorType;

/// xorshift64* with a Box-Muller normal; deterministic test data without dependencies.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Normal data with a few outliers and exact zeros, scaled by `scale`.
    fn row(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| match self.below(50) {
                0 => 0.0,
                1 => self.normal() * scale * 8.0,
                _ => self.normal() * scale,
            })
            .collect()
    }
}

const WEIGHT_TYPES: [TensorType; 6] = [
    TensorType::F32,
    TensorType::F16,
    TensorType::BF16,
    TensorType::Q8_0,
    TensorType::Q4_0,
    TensorType::Q6_K,
];

fn block(ty: TensorType) -> usize {
    ty.info().block_size as usize
}

fn roundtrip(ty: TensorType, x: &[f32]) -> Vec<f32> {
    let mut bytes = vec![0u8; row_bytes(ty, x.len()).unwrap()];
    quantize_row(ty, x, &mut bytes).unwrap();
    let mut y = vec![0f32; x.len()];
    dequantize_row(ty, &bytes, &mut y).unwrap();
    // Quantizing the dequantized values again must give the same bytes for the float
    // types and Q8_0 (a fixed point); check it where it holds.
    if matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::BF16) {
        let mut again = vec![0u8; bytes.len()];
        quantize_row(ty, &y, &mut again).unwrap();
        assert_eq!(again, bytes, "{ty} is not idempotent");
    }
    y
}

/// Half the spacing of subnormal f16 values.
const F16_SUB: f32 = 2.98e-8;

#[test]
fn roundtrip_error_bounds() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for trial in 0..20 {
        let scale = [1e-3f32, 0.05, 1.0, 300.0][trial % 4];
        let x = rng.row(512, scale);
        for ty in WEIGHT_TYPES {
            let y = roundtrip(ty, &x);
            let b = block(ty);
            for (bi, (xs, ys)) in x.chunks(b.max(16)).zip(y.chunks(b.max(16))).enumerate() {
                let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (i, (&a, &r)) in xs.iter().zip(ys).enumerate() {
                    let err = (a - r).abs();
                    let bound = match ty {
                        TensorType::F32 => 0.0,
                        TensorType::F16 => a.abs() * 4.9e-4 + 3e-8,
                        TensorType::BF16 => a.abs() * 3.91e-3,
                        // Half a step of amax/127, plus the f16 rounding of the scale
                        // (relative 2^-11, or absolute 2^-25 for a subnormal f16).
                        TensorType::Q8_0 => amax / 127.0 * 0.5 + amax * 5e-4 + 127.0 * F16_SUB,
                        // A whole step on the side opposite the extreme value (clamp at 7).
                        TensorType::Q4_0 => amax / 8.0 * 1.01 + 8.0 * F16_SUB,
                        // 6-bit quants with 8-bit sub-scales over the 256-block.
                        TensorType::Q6_K => amax / 20.0 + 1e-30,
                        _ => unreachable!(),
                    };
                    assert!(
                        err <= bound,
                        "{ty} trial {trial} block {bi} elem {i}: {a} -> {r}, err {err} > {bound}"
                    );
                }
            }
            // Whole-row relative RMS error.
            let num: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, r)| ((a - r) as f64).powi(2))
                .sum();
            let den: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum();
            let rel = (num / den).sqrt();
            let limit = match ty {
                TensorType::F32 => 0.0,
                TensorType::F16 => 3e-4,
                TensorType::BF16 => 3e-3,
                TensorType::Q8_0 => 0.025,
                TensorType::Q4_0 => 0.25,
                TensorType::Q6_K => 0.05,
                _ => unreachable!(),
            };
            assert!(
                rel <= limit,
                "{ty} trial {trial}: relative RMS {rel} > {limit}"
            );
        }
    }
}

#[test]
fn q8_0_is_a_fixed_point() {
    let mut rng = Rng(99);
    let x = rng.row(256, 2.0);
    let mut a = vec![0u8; row_bytes(TensorType::Q8_0, 256).unwrap()];
    quantize_row(TensorType::Q8_0, &x, &mut a).unwrap();
    let mut y = vec![0f32; 256];
    dequantize_row(TensorType::Q8_0, &a, &mut y).unwrap();
    let mut b = vec![0u8; a.len()];
    quantize_row(TensorType::Q8_0, &y, &mut b).unwrap();
    let mut z = vec![0f32; 256];
    dequantize_row(TensorType::Q8_0, &b, &mut z).unwrap();
    assert_eq!(y, z);
}

/// f64 dot of the dequantized weight row with the activations as the kernel sees them,
/// and the sum of |terms| for the tolerance.
fn exact_dot(ty: TensorType, row: &[u8], act: &[f32]) -> (f64, f64) {
    let mut w = vec![0f32; act.len()];
    dequantize_row(ty, row, &mut w).unwrap();
    let dot = w.iter().zip(act).map(|(&a, &b)| a as f64 * b as f64).sum();
    let abs = w
        .iter()
        .zip(act)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    (dot, abs)
}

#[test]
fn gemv_matches_f64_dot_of_what_it_sees() {
    let mut rng = Rng(0xfeed_beef);
    let mut act = DenseActivations::new();
    for trial in 0..24 {
        let ty = WEIGHT_TYPES[trial % WEIGHT_TYPES.len()];
        let b = block(ty).max(1);
        let cols = b * (1 + rng.below(if b == 1 { 300 } else { 2048 / b }));
        let rows = 1 + rng.below(17);
        let rb = row_bytes(ty, cols).unwrap();
        let mut w = vec![0u8; rows * rb];
        for r in 0..rows {
            let vals = rng.row(cols, 0.02);
            quantize_row(ty, &vals, &mut w[r * rb..(r + 1) * rb]).unwrap();
        }
        let x = rng.row(cols, 1.5);
        let mut out = vec![0f32; rows];
        dense_gemv(ty, &w, rows, cols, &x, &mut out).unwrap();

        act.convert(ty, &x).unwrap();
        assert_eq!(act.vec_dot_type(), Some(vec_dot_type(ty).unwrap()));
        let mut seen = vec![0f32; cols];
        act.dequantize(&mut seen).unwrap();
        let mut out2 = vec![0f32; rows];
        dense_gemv_converted(ty, &w, rows, cols, &act, &mut out2).unwrap();
        assert_eq!(out, out2);

        for r in 0..rows {
            let (dot, abs) = exact_dot(ty, &w[r * rb..(r + 1) * rb], &seen);
            // f32 accumulation over at most cols/block + 16 partial sums.
            let steps = (cols / b.max(8)) as f64 + 16.0;
            let tol = steps * f32::EPSILON as f64 * abs + 1e-30;
            assert!(
                (out[r] as f64 - dot).abs() <= tol,
                "{ty} {rows}x{cols} row {r}: {} vs {dot} (tol {tol})",
                out[r]
            );
        }
    }
}

#[test]
fn activation_conversion_follows_ggml() {
    // Q8_0 activations: x86 ggml multiplies by 127/amax and rounds ties to even.
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -3.5;
    let mut act = DenseActivations::new();
    act.convert(TensorType::Q4_0, &x).unwrap();
    let mut seen = vec![0f32; 32];
    act.dequantize(&mut seen).unwrap();
    assert_eq!(&seen[..3], &[127.0, 2.0, -4.0]);
    // F16 activations for F16 weights.
    act.convert(TensorType::F16, &[1.0 + 1.0 / 4096.0, 3.0])
        .unwrap();
    let mut two = [0f32; 2];
    act.dequantize(&mut two).unwrap();
    assert_eq!(two, [1.0, 3.0]);
    // Q8_K for Q6_K.
    let mut y = vec![0f32; 256];
    y[7] = -4.0;
    y[8] = 2.0;
    act.convert(TensorType::Q6_K, &y).unwrap();
    assert_eq!(act.vec_dot_type(), Some(TensorType::Q8_K));
    let mut seen = vec![0f32; 256];
    act.dequantize(&mut seen).unwrap();
    assert_eq!((seen[7], seen[8]), (-4.0, 4.0 / 127.0 * 64.0));
}

#[test]
fn bad_shapes_and_buffers_are_errors() {
    let mut out = vec![0f32; 2];
    let w = vec![0u8; 2 * 34];
    let x = vec![0f32; 32];
    assert!(dense_gemv(TensorType::Q8_0, &w, 2, 32, &x, &mut out).is_ok());
    // Wrong weight length, wrong output length, wrong activation length, bad cols.
    assert!(dense_gemv(TensorType::Q8_0, &w[..67], 2, 32, &x, &mut out).is_err());
    assert!(dense_gemv(TensorType::Q8_0, &w, 2, 32, &x, &mut out[..1]).is_err());
    assert!(dense_gemv(TensorType::Q8_0, &w, 2, 32, &x[..31], &mut out).is_err());
    assert!(dense_gemv(TensorType::Q8_0, &w, 2, 31, &x[..31], &mut out).is_err());
    assert!(dense_gemv(TensorType::Q6_K, &w, 2, 32, &x, &mut out).is_err());
    assert!(dense_gemv(TensorType::I2_S, &w, 2, 32, &x, &mut out).is_err());
    assert!(dense_gemv(TensorType::F32, &w, usize::MAX, 32, &x, &mut out).is_err());
    // Activations converted for another type or size.
    let mut act = DenseActivations::new();
    assert!(dense_gemv_converted(TensorType::Q8_0, &w, 2, 32, &act, &mut out).is_err());
    act.convert(TensorType::F16, &x).unwrap();
    assert!(dense_gemv_converted(TensorType::Q8_0, &w, 2, 32, &act, &mut out).is_err());
    act.convert(TensorType::Q4_0, &x).unwrap(); // Q8_0 activations also serve Q8_0 weights
    assert!(dense_gemv_converted(TensorType::Q8_0, &w, 2, 32, &act, &mut out).is_ok());
    act.convert(TensorType::Q8_0, &[0.0; 64]).unwrap();
    assert!(dense_gemv_converted(TensorType::Q8_0, &w, 2, 32, &act, &mut out).is_err());
    assert!(act.convert(TensorType::Q6_K, &[0.0; 64]).is_err());
    // Zero rows is fine and writes nothing.
    assert!(dense_gemv(TensorType::F16, &[], 0, 4, &[0.0; 4], &mut []).is_ok());
}

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    if dir.join("bitnet25").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("reference data not found at {}", dir.display());
    }
    eprintln!(
        "!!! SKIPPED: reference data not found at {} (set TERN_REFERENCE_DIR)",
        dir.display()
    );
    None
}

fn f32_of(bytes: &[u8]) -> Vec<f32> {
    let mut v = vec![0f32; bytes.len() / 4];
    dequantize_row(TensorType::F32, bytes, &mut v).unwrap();
    v
}

#[test]
fn reference_f16_tensors_are_ggml_roundings_of_the_f32_ones() {
    let Some(dir) = reference_dir() else { return };
    let f32_file = GgufFile::open(dir.join("bitnet25/ggml-model-f32.gguf")).unwrap();
    let f16_file = GgufFile::open(dir.join("bitnet25/ggml-model-f16.gguf")).unwrap();
    let i2s_file = GgufFile::open(dir.join("bitnet25/ggml-model-i2s.gguf")).unwrap();
    let mut checked = 0;
    for (other, what) in [(&f16_file, "f16"), (&i2s_file, "i2s")] {
        for info in other.tensors() {
            if info.ty != TensorType::F16 {
                continue;
            }
            let src = f32_file.require_tensor(&info.name).unwrap();
            assert_eq!(src.info.ty, TensorType::F32, "{}", info.name);
            assert_eq!(src.info.dims, info.dims);
            let x = f32_of(src.data);
            let data = other.data_of(info);
            // Our quantizer gives the same bytes...
            let mut ours = vec![0u8; row_bytes(TensorType::F16, x.len()).unwrap()];
            quantize_row(TensorType::F16, &x, &mut ours).unwrap();
            assert!(ours == data, "{what} {}: F16 bytes differ", info.name);
            // ...and each element is the f16 rounding of the f32 value.
            let mut back = vec![0f32; x.len()];
            dequantize_row(TensorType::F16, data, &mut back).unwrap();
            for (i, (&a, &b)) in x.iter().zip(&back).enumerate() {
                assert_eq!(
                    f32_to_f16_bits(a),
                    f32_to_f16_bits(b),
                    "{} [{i}]",
                    info.name
                );
            }
            // The embedding rows through dense_gemv agree with an f64 dot.
            if info.name == "token_embd.weight" {
                let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
                let mut rng = Rng(7);
                let v = rng.row(cols, 1.0);
                let mut out = vec![0f32; rows];
                dense_gemv(TensorType::F16, data, rows, cols, &v, &mut out).unwrap();
                let mut act = DenseActivations::new();
                act.convert(TensorType::F16, &v).unwrap();
                let mut seen = vec![0f32; cols];
                act.dequantize(&mut seen).unwrap();
                let rb = row_bytes(TensorType::F16, cols).unwrap();
                for r in (0..rows).step_by(37) {
                    let (dot, abs) = exact_dot(TensorType::F16, &data[r * rb..][..rb], &seen);
                    assert!((out[r] as f64 - dot).abs() <= abs * 1e-6, "row {r}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 2, "expected F16 tensors in the reference files");
}
