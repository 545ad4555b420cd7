//! Every tensor type's unpacking and kernels on arbitrary bytes: a type, a shape and the
//! data are read from the input; whatever the checks accept must unpack to ternary values
//! that pack back to the same weights, and run through the matrix-vector kernels.

use crate::kernels::act::{ActivationFormat, QuantizedActivations};
use crate::kernels::scalar::ternary_gemv;
use crate::kernels::scalar_dense::dense_gemv;
use crate::quant::dense::{self, is_dense};
use crate::quant::ternary::{pack_ternary, unpack_ternary, TernaryMatrix};
use crate::quant::TensorType;

const TERNARY: &[TensorType] = &[
    TensorType::I2_S,
    TensorType::TQ1_0,
    TensorType::TQ2_0,
    TensorType::STQ1_0,
    TensorType::Sherry,
    TensorType::TL1,
    TensorType::TL2,
];

/// Small shapes most types accept, and odd ones.
const SHAPES: &[[u64; 2]] = &[[128, 1], [256, 1], [256, 32], [512, 64], [128, 32], [3, 5]];

/// The smallest shape TL1/TL2 have a preset for (2.4 M weights: slow, so picked by one
/// byte value only).
const TL_SHAPE: [u64; 2] = [1536, 1536];

/// Byte 0 picks the type, bytes 1..5 the shape (a listed shape or raw numbers), byte 5 how the
/// data is sized (as is, or repeated to the exact size); the rest is the data.
pub fn tensor_unpack(data: &[u8]) {
    if data.len() < 6 {
        return;
    }
    let (head, bytes) = data.split_at(6);
    let all: Vec<TensorType> = TERNARY.iter().chain(dense::DENSE_TYPES).copied().collect();
    let ty = all[head[0] as usize % all.len()];
    let dims: Vec<u64> = if head[1] == 0x7F {
        TL_SHAPE.to_vec()
    } else if head[1] & 0x80 == 0 {
        SHAPES[head[1] as usize % SHAPES.len()].to_vec()
    } else {
        let cols = u64::from(u16::from_le_bytes([head[2], head[3]]));
        match head[4] {
            0 => vec![cols],
            r => vec![cols, u64::from(r)],
        }
    };
    let Ok(need) = ty.nbytes(&dims) else {
        return;
    };
    if need > 1 << 22 {
        return;
    }
    let buf: Vec<u8> = if head[5] & 1 == 0 || bytes.is_empty() {
        bytes.to_vec()
    } else {
        bytes.iter().copied().cycle().take(need as usize).collect()
    };
    if is_dense(ty) {
        dense_case(ty, &dims, &buf);
    } else {
        ternary_case(ty, &dims, &buf);
    }
}

fn ternary_case(ty: TensorType, dims: &[u64], buf: &[u8]) {
    if let Ok(w) = unpack_ternary(ty, dims, buf) {
        w.validate().expect("unpacked weights are ternary");
        assert_eq!(
            (w.cols as u64, w.rows as u64),
            (dims[0], *dims.get(1).unwrap_or(&1))
        );
        if let Ok(again) = pack_ternary(ty, &w) {
            let w2 = unpack_ternary(ty, dims, &again).expect("packed weights unpack");
            assert_eq!(
                w2.values, w.values,
                "{ty}: pack(unpack(x)) changes the values"
            );
        }
    }
    let Ok(m) = TernaryMatrix::new(ty, dims, buf) else {
        return;
    };
    let _ = m.check_codes();
    let Ok(format) = ActivationFormat::for_type(ty) else {
        return;
    };
    let x: Vec<f32> = (0..m.cols).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut acts = QuantizedActivations::new();
    if acts.quantize_into(format, &x).is_err() {
        return;
    }
    let mut out = vec![0.0; m.rows];
    let _ = ternary_gemv(&m, &acts, &mut out);
}

fn dense_case(ty: TensorType, dims: &[u64], buf: &[u8]) {
    let cols = dims[0] as usize;
    let rows = *dims.get(1).unwrap_or(&1) as usize;
    let Ok(rb) = dense::row_bytes(ty, cols) else {
        return;
    };
    let mut row = vec![0.0; cols];
    if let Some(first) = buf.get(..rb) {
        dense::dequantize_row(ty, first, &mut row).expect("a row of the right size decodes");
    }
    let _ = dense::dequantize_row(ty, buf, &mut row);
    let x: Vec<f32> = (0..cols).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
    let mut out = vec![0.0; rows];
    let _ = dense_gemv(ty, buf, rows, cols, &x, &mut out);
}
