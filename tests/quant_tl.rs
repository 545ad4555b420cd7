//! TL1 and TL2 against bitnet.cpp's own files: every TL tensor in the reference files
//! unpacks to the I2_S file's weights and scale, and packs back to the identical bytes.

use std::path::PathBuf;

use tern::gguf::GgufFile;
use tern::quant::ternary::{pack_ternary, unpack_ternary, TernaryWeights, WeightScale};
use tern::quant::tl_params::{
    parse_kernel_config, tl1_tiling, tl2_tiling, TL1_PRESETS, TL2_PRESETS,
};
use tern::quant::{tl1, tl2, TensorType};

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    let dir = dir.join("bitnet-tl2");
    if dir.is_dir() {
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

/// Checks one TL file against the I2_S file: same tensor names and shapes, unpacked
/// values and scales equal, pack(unpack(x)) == x byte for byte. Returns the count.
fn check_file(dir: &std::path::Path, file: &str, ty: TensorType) -> usize {
    let tl = GgufFile::open(dir.join(file)).unwrap();
    let i2s = GgufFile::open(dir.join("ggml-model-i2s.gguf")).unwrap();
    let mut checked = 0;
    for info in tl.tensors() {
        if info.ty != ty {
            continue;
        }
        let data = tl.data_of(info);
        let reference = i2s.require_tensor(&info.name).unwrap();
        assert_eq!(reference.info.ty, TensorType::I2_S, "{}", info.name);
        assert_eq!(reference.info.dims, info.dims, "{}", info.name);
        let want = unpack_ternary(TensorType::I2_S, &reference.info.dims, reference.data).unwrap();
        let got = unpack_ternary(ty, &info.dims, data).unwrap();
        assert_eq!(
            (got.rows, got.cols),
            (want.rows, want.cols),
            "{}",
            info.name
        );
        assert_eq!(got.scale, want.scale, "{} scale", info.name);
        if got.values != want.values {
            let i = (0..got.values.len())
                .find(|&i| got.values[i] != want.values[i])
                .unwrap();
            panic!(
                "{} {file}: first difference at row {}, column {}: {} vs I2_S {}",
                info.name,
                i / got.cols,
                i % got.cols,
                got.values[i],
                want.values[i]
            );
        }
        let packed = pack_ternary(ty, &got).unwrap();
        assert!(
            packed == data,
            "{} {file}: pack(unpack(x)) differs from x",
            info.name
        );
        checked += 1;
    }
    checked
}

#[test]
fn tl1_reference_tensors_match_i2s_and_round_trip() {
    let Some(dir) = reference_dir() else { return };
    assert_eq!(check_file(&dir, "ggml-model-tl1.gguf", TensorType::TL1), 7);
}

#[test]
fn tl2_reference_tensors_match_i2s_and_round_trip() {
    let Some(dir) = reference_dir() else { return };
    assert_eq!(check_file(&dir, "ggml-model-tl2.gguf", TensorType::TL2), 7);
}

#[test]
fn presets_match_the_reference_kernel_configs() {
    let Some(dir) = reference_dir() else { return };
    for (file, lookup) in [
        (
            "tl1_kernel_config.ini",
            tl1_tiling as fn(usize, usize) -> tern::Result<_>,
        ),
        ("tl2_kernel_config.ini", tl2_tiling),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let entries = parse_kernel_config(&text).unwrap();
        assert_eq!(entries.len(), 3);
        for (m, k, t) in entries {
            assert_eq!(lookup(m, k).unwrap(), t, "{file} {m}x{k}");
        }
    }
}

#[test]
fn every_preset_fits_its_shape_and_the_registry_size() {
    // Packing needs the layout to fit the shape, and the layout's size to be the size
    // ggml (and our registry) gives the tensor.
    for p in TL1_PRESETS {
        tl1::check_tiling(p.rows, p.cols, p.tiling).unwrap();
        let dims = [p.cols as u64, p.rows as u64];
        assert_eq!(
            TensorType::TL1.nbytes(&dims).unwrap(),
            (p.rows * p.cols / 4 + 32) as u64
        );
    }
    for p in TL2_PRESETS {
        let lay = tl2::Tl2Layout::new(p.rows, p.cols, p.tiling).unwrap();
        let dims = [p.cols as u64, p.rows as u64];
        assert_eq!(
            TensorType::TL2.nbytes(&dims).unwrap(),
            lay.total_bytes() as u64,
            "{}x{}",
            p.rows,
            p.cols
        );
    }
}

#[test]
fn random_matrix_with_a_32_column_two_part_round_trips() {
    // The reference files have two_k 0 and 64; the 3B and Llama3 presets give 32. Use
    // their tiling (BM 128/320, BK 96) on a smaller matrix with the same K mod BK.
    let t = tl2_tiling(4096, 4096).unwrap();
    let (rows, cols) = (256, 416); // 416 = 4 * 96 + 32
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<i8> = (0..rows * cols)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            ((s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % 3) as i8 - 1
        })
        .collect();
    let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(0.75)).unwrap();
    let bytes = tl2::pack_with(&w, t).unwrap();
    let lay = tl2::Tl2Layout::new(rows, cols, t).unwrap();
    assert_eq!(lay.two_cols, 32);
    assert_eq!(
        bytes.len() as u64,
        TensorType::TL2.nbytes(&[cols as u64, rows as u64]).unwrap()
    );
    assert_eq!(tl2::unpack_with(rows, cols, t, &bytes).unwrap(), w);
}

#[test]
fn bad_inputs_are_errors() {
    // No preset for the 2B4T shape.
    let w = TernaryWeights::new(
        2560,
        2560,
        vec![0; 2560 * 2560],
        WeightScale::PerTensor(1.0),
    )
    .unwrap();
    for ty in [TensorType::TL1, TensorType::TL2] {
        let e = pack_ternary(ty, &w).unwrap_err().to_string();
        assert!(e.contains("2560 rows x 2560 columns"), "{e}");
    }
    // Wrong byte size.
    let dims = [1536u64, 1536];
    let n = TensorType::TL2.nbytes(&dims).unwrap() as usize;
    assert!(tl2::unpack(&dims, &vec![0u8; n - 1]).is_err());
    assert!(tl1::unpack(&dims, &vec![0u8; n]).is_err());
    // A NaN scale.
    let mut bytes = vec![0u8; n];
    let at = n - 32;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(tl2::unpack(&dims, &bytes).is_err());
    // Per-block scales that differ cannot go into one per-tensor scale.
    let w = TernaryWeights::new(
        1536,
        1536,
        vec![1; 1536 * 1536],
        WeightScale::PerBlock {
            block: 768,
            scales: (0..1536 * 2).map(|i| 1.0 + (i % 2) as f32).collect(),
        },
    )
    .unwrap();
    assert!(pack_ternary(TensorType::TL2, &w).is_err());
}
