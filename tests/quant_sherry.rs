//! SHERRY's byte layout, its 3:4 checks and projections; STQ1_0 byte positions.

mod quant_common;

use quant_common::Rng;
use tern::quant::sherry::{
    project_34, project_34_from_latent, GroupLayout, CHUNK_BYTES, SIGNS_OFFSET,
};
use tern::quant::ternary::{pack_ternary, unpack_ternary, TernaryWeights, WeightScale};
use tern::quant::TensorType;

/// A 64 x 64 Sherry tensor (2 tiles x 2 chunks) with every group [0, 1, 1, 1] (index 0,
/// sign 0) except two, checked byte by byte against docs/FORMATS.md.
#[test]
fn sherry_bytes_are_where_the_spec_says() {
    let (rows, cols) = (64, 64);
    let mut values = Vec::new();
    for _ in 0..rows * cols / 4 {
        values.extend_from_slice(&[0i8, 1, 1, 1]);
    }
    let set = |v: &mut Vec<i8>, r: usize, g: usize, w: [i8; 4]| {
        v[r * cols + 4 * g..][..4].copy_from_slice(&w);
    };
    // Row 17 (tile 0, high nibble of byte 1), group 9 (chunk 1, group 1 of the chunk):
    // [1, -1, 0, 1] -> zero at 2, nonzeros (+1, -1, +1) -> bit1 = 1, bit0 = 0 -> index 10.
    set(&mut values, 17, 9, [1, -1, 0, 1]);
    // Row 40 (tile 1, row 8 of the tile, low nibble of byte 8), group 0:
    // [-1, 1, 1, 0] -> sign 1, normalised (+1, -1, -1) -> index 12 | 2 | 1 = 15.
    set(&mut values, 40, 0, [-1, 1, 1, 0]);
    let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(0.75)).unwrap();
    let b = pack_ternary(TensorType::Sherry, &w).unwrap();
    assert_eq!(b.len(), rows * cols * 5 / 32 + 32);
    // Chunk (tile 0, chunk 1) starts at 160; its group 1 indices at 160 + 16.
    assert_eq!(
        b[160 + 16 + 1],
        0xA0,
        "row 1 index 0 (low), row 17 index 10 (high)"
    );
    assert_eq!(b[160 + 16], 0x00);
    // Chunk (tile 1, chunk 0) starts at 2 * 160; group 0, byte 8 low nibble = row 40.
    let t1 = 2 * CHUNK_BYTES;
    assert_eq!(b[t1 + 8], 0x0F);
    // Its sign word for group 0: bit 8 set.
    assert_eq!(&b[t1 + SIGNS_OFFSET..][..4], &[0x00, 0x01, 0x00, 0x00]);
    // Every other sign byte is zero, every other index byte 0.
    let nonzero: Vec<usize> = (0..b.len() - 32).filter(|&i| b[i] != 0).collect();
    assert_eq!(nonzero, vec![160 + 16 + 1, t1 + 8, t1 + SIGNS_OFFSET + 1]);
    // Tail: the f32 scale and 28 zeros.
    let tail = &b[b.len() - 32..];
    assert_eq!(&tail[..4], &0.75f32.to_le_bytes());
    assert!(tail[4..].iter().all(|&x| x == 0));
    assert_eq!(
        unpack_ternary(TensorType::Sherry, &[64, 64], &b).unwrap(),
        w
    );
}

#[test]
fn stq1_bytes_are_where_the_spec_says() {
    // One block: group g holds columns (g/16)*64 + g%16 + 16p. Group 5 (columns 5, 21, 37,
    // 53) = [0, -1, +1, -1]: the first non-zero is -1 -> sign 1; normalised (+1, -1, +1):
    // the second non-zero is negative -> bit0 -> slot 0 << 2 | 1 = 1. Every other group is
    // [0, 1, 1, 1] (slot 0, sign 0).
    let mut values = vec![0i8; 256];
    for (i, v) in values.iter_mut().enumerate() {
        *v = if (i % 64) / 16 == 0 { 0 } else { 1 };
    }
    values[5] = 0;
    values[21] = -1;
    values[37] = 1;
    values[53] = -1;
    let w = TernaryWeights::new(1, 256, values, WeightScale::PerTensor(0.5)).unwrap();
    let b = pack_ternary(TensorType::STQ1_0, &w).unwrap();
    assert_eq!(b.len(), 42);
    let mut want = [0u8; 42];
    want[2] = 0x10; // group 5: high nibble of qs[2] = slot 1
    want[32] = 0x20; // sign bit 5 of sign[0]
    want[40..].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    assert_eq!(b, want);
}

#[test]
fn non_34_weights_are_refused_with_the_place() {
    let mut rng = Rng::new(21);
    let mut values = rng.trits_34(32 * 64);
    values[5 * 64 + 12..][..4].copy_from_slice(&[1, 1, -1, 1]);
    let w = TernaryWeights::new(32, 64, values, WeightScale::PerTensor(1.0)).unwrap();
    let e = pack_ternary(TensorType::Sherry, &w).unwrap_err();
    assert!(
        e.to_string().contains("row 5, group 3 (columns 12..15)"),
        "{e}"
    );
    let e = pack_ternary(
        TensorType::STQ1_0,
        &TernaryWeights::new(1, 256, vec![0; 256], WeightScale::PerTensor(1.0)).unwrap(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("row 0, columns 0, 16, 32, 48"),
        "{e}"
    );
    // Shapes Sherry cannot hold.
    let w =
        TernaryWeights::new(16, 64, rng.trits_34(16 * 64), WeightScale::PerTensor(1.0)).unwrap();
    assert!(pack_ternary(TensorType::Sherry, &w).is_err());
}

#[test]
fn projection_without_latents_is_deterministic_and_packs() {
    let mut rng = Rng::new(22);
    for layout in [GroupLayout::Consecutive, GroupLayout::Stride16] {
        let (rows, cols) = (32, 256);
        let w = TernaryWeights::new(
            rows,
            cols,
            rng.trits(rows * cols, 0.3),
            WeightScale::PerTensor(0.5),
        )
        .unwrap();
        let (p, rep) = project_34(&w, None, layout).unwrap();
        let (p2, rep2) = project_34(&w, None, layout).unwrap();
        assert_eq!((&p, rep), (&p2, rep2));
        assert_eq!(rep.groups, rows * cols / 4);
        assert!(rep.groups_without_zero > 0 && rep.groups_with_extra_zeros > 0);
        let ty = match layout {
            GroupLayout::Consecutive => TensorType::Sherry,
            GroupLayout::Stride16 => TensorType::STQ1_0,
        };
        pack_ternary(ty, &p).unwrap();
        let changed = w
            .values
            .iter()
            .zip(&p.values)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, rep.weights_changed);
        // Already 3:4: nothing changes.
        let (q, rep3) = project_34(&p, None, layout).unwrap();
        assert_eq!(q, p);
        assert_eq!(rep3.groups_changed(), 0);
    }
    // The documented rules on one row.
    let w = TernaryWeights::new(
        1,
        8,
        vec![1, -1, 1, 1, 0, 0, 0, -1],
        WeightScale::PerTensor(1.0),
    )
    .unwrap();
    let (p, rep) = project_34(&w, None, GroupLayout::Consecutive).unwrap();
    // Group 0, row 0: zero lane (0 + 0) % 4 = 0. Group 1: fill zeros at columns 4 (even: +1)
    // and 5 (odd: -1), keep column 6 as the zero.
    assert_eq!(p.values, vec![0, -1, 1, 1, 1, -1, 0, -1]);
    assert_eq!(
        (
            rep.groups_without_zero,
            rep.groups_with_extra_zeros,
            rep.weights_changed
        ),
        (1, 1, 3)
    );
}

#[test]
fn projection_with_latents_keeps_the_largest() {
    let latent = [0.9f32, -0.1, 0.5, -0.7, 0.0, -0.3, 0.02, 0.8];
    let w = TernaryWeights::new(
        1,
        8,
        vec![1, -1, 1, -1, 0, 0, 0, 1],
        WeightScale::PerTensor(1.0),
    )
    .unwrap();
    let (p, _) = project_34(&w, Some(&latent), GroupLayout::Consecutive).unwrap();
    // Group 0: smallest |latent| at lane 1. Group 1: keep lanes 7 (0.8), 5 (0.3), 6 (0.02).
    assert_eq!(p.values, vec![1, 0, 1, -1, 0, -1, 1, 1]);

    let t = project_34_from_latent(1, 8, &latent, GroupLayout::Consecutive).unwrap();
    assert_eq!(t.values, vec![1, 0, 1, -1, 0, -1, 1, 1]);
    let kept = (0.9 + 0.5 + 0.7 + 0.3 + 0.02 + 0.8) / 6.0;
    let WeightScale::PerTensor(s) = t.scale else {
        panic!()
    };
    assert!((s as f64 - kept).abs() < 1e-6, "{s} vs {kept}");
    assert!(project_34_from_latent(1, 8, &[f32::NAN; 8], GroupLayout::Consecutive).is_err());
    assert!(project_34(&w, Some(&latent[..4]), GroupLayout::Consecutive).is_err());
}

#[test]
fn docs_worked_examples_hold() {
    // SHERRY, docs/FORMATS.md: 32 x 32, scale 0.75.
    let mut values = Vec::new();
    for _ in 0..32 * 8 {
        values.extend_from_slice(&[0i8, 1, 1, 1]);
    }
    values[..4].copy_from_slice(&[0, 1, -1, 1]);
    values[16 * 32..][..4].copy_from_slice(&[-1, 0, -1, 1]);
    let w = TernaryWeights::new(32, 32, values, WeightScale::PerTensor(0.75)).unwrap();
    let b = pack_ternary(TensorType::Sherry, &w).unwrap();
    let mut want = vec![0u8; 192];
    want[0] = 0x52;
    want[128..132].copy_from_slice(&[0, 0, 1, 0]);
    want[160..164].copy_from_slice(&[0, 0, 0x40, 0x3F]);
    assert_eq!(b, want);
    // I2_S and TQ2_0: weights 0, 32, 64, 96 = +1, 0, -1, +1 (I2_S: w96 via w[96]).
    let mut v = vec![0i8; 256];
    v[0] = 1;
    v[64] = -1;
    v[96] = 1;
    let w = TernaryWeights::new(1, 256, v, WeightScale::PerTensor(0.5)).unwrap();
    let i2s = pack_ternary(TensorType::I2_S, &w).unwrap();
    assert_eq!(i2s[0], 0x92);
    assert!(i2s[1..64].iter().all(|&x| x == 0x55));
    assert_eq!(&i2s[64..68], &[0, 0, 0, 0x3F]);
    let tq2 = pack_ternary(TensorType::TQ2_0, &w).unwrap();
    assert_eq!(tq2[0], 0x86);
    assert_eq!(&tq2[64..66], &[0x00, 0x38]);
    // TQ1_0: weights 0, 32, 64, 96, 128 = +1, 0, -1, +1, +1 -> qs[0] = 0xD0.
    let mut v = w.values.clone();
    v[128] = 1;
    let w = TernaryWeights::new(1, 256, v, WeightScale::PerTensor(0.5)).unwrap();
    let tq1 = pack_ternary(TensorType::TQ1_0, &w).unwrap();
    assert_eq!(tq1[0], 0xD0);
    assert_eq!(tq1[1], 0x80);
    assert_eq!(tq1[48], 0x7F);
}
