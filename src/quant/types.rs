//! The registry of tensor types: one row per type, as ggml's type-traits table.
//!
//! A row says what a GGUF type id means, how many elements a block holds and how many
//! bytes it takes. Types whose size is not "blocks × bytes per block" (bitnet.cpp's
//! I2_S, TL1 and TL2, and our Sherry type, which all carry a per-tensor scale in a 32-byte
//! tail) have a [`SizeRule`] of their own. Adding a type means adding a row here, a file
//! in `quant/` and its kernels.

use std::fmt;

/// The id we give our Sherry type in GGUF tensor infos. Upstream ggml numbers its types
/// densely from 0 (it has reached the low 40s); bitnet.cpp's fork uses 36-39; published
/// Sherry (STQ1_0) files use 42 or 43. 1250 ("1.25 bits") is far from all of them.
pub const SHERRY_TYPE_ID: u32 = 1250;

/// Bytes of the tail that I2_S, TL1, TL2 and Sherry tensors carry after their packed codes:
/// an f32 scale in the first 4 bytes, the rest padding.
pub const SCALE_TAIL_BYTES: u64 = 32;

/// How a type's byte size follows from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    /// `ne0` is a multiple of the block size; bytes = elements / block × bytes per block.
    Blocks,
    /// bitnet.cpp's I2_S and TL1: `elements / 4 + 32` (ggml's integer division).
    QuarterPlusTail,
    /// bitnet.cpp's TL2: `pad32((ne0-256)*ne1/3*5/8 + 256*ne1/2*4/8) + 32` (ggml_nbytes).
    Tl2,
    /// Our Sherry: 5 bits per 4 weights, `elements * 5 / 32 + 32`; ne0 and ne1 multiples of 32.
    Sherry,
}

/// What a type is for; decides which code paths accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// IEEE or brain floats.
    Float,
    /// Plain integers (rare in model files).
    Integer,
    /// Block-quantized types for embeddings and output heads (Q4_0, Q8_0, Q6_K, ...).
    Quantized,
    /// Ternary weight types ({-1, 0, +1} times a scale).
    Ternary,
}

/// Every tensor type this build knows, at least well enough to size it.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TensorType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
    TQ1_0,
    TQ2_0,
    /// bitnet.cpp fork, id 36.
    I2_S,
    /// bitnet.cpp fork, id 38.
    TL1,
    /// bitnet.cpp fork, id 39 (mainline ggml uses 39 for MXFP4).
    TL2,
    /// Mainline ggml id 39: 4-bit microscaling float, 17 bytes per 32 (sized only).
    MXFP4,
    /// Mainline ggml id 42: 2-bit, 18 bytes per 64 (sized only).
    Q2_0,
    /// Sherry's published GGUF type (llama.cpp PR #22836), id 43, or 42 in early files.
    STQ1_0,
    /// Our 1.25-bit 3:4 sparse ternary type, id [`SHERRY_TYPE_ID`].
    Sherry,
}

/// One row of the registry.
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo {
    pub ty: TensorType,
    /// The id this type is written with (for STQ1_0 the PR's 43).
    pub id: u32,
    /// Upper-case name, as gguf-py prints it.
    pub name: &'static str,
    /// Elements per block (1 for the types with a special size rule).
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
    pub rule: SizeRule,
    pub class: TypeClass,
}

const fn row(
    ty: TensorType,
    id: u32,
    name: &'static str,
    block_size: u64,
    type_size: u64,
    rule: SizeRule,
    class: TypeClass,
) -> TypeInfo {
    TypeInfo {
        ty,
        id,
        name,
        block_size,
        type_size,
        rule,
        class,
    }
}

use SizeRule::*;
use TypeClass::*;

/// The table. Order is by id.
pub const TYPES: &[TypeInfo] = &[
    row(TensorType::F32, 0, "F32", 1, 4, Blocks, Float),
    row(TensorType::F16, 1, "F16", 1, 2, Blocks, Float),
    row(TensorType::Q4_0, 2, "Q4_0", 32, 18, Blocks, Quantized),
    row(TensorType::Q4_1, 3, "Q4_1", 32, 20, Blocks, Quantized),
    row(TensorType::Q5_0, 6, "Q5_0", 32, 22, Blocks, Quantized),
    row(TensorType::Q5_1, 7, "Q5_1", 32, 24, Blocks, Quantized),
    row(TensorType::Q8_0, 8, "Q8_0", 32, 34, Blocks, Quantized),
    row(TensorType::Q8_1, 9, "Q8_1", 32, 36, Blocks, Quantized),
    row(TensorType::Q2_K, 10, "Q2_K", 256, 84, Blocks, Quantized),
    row(TensorType::Q3_K, 11, "Q3_K", 256, 110, Blocks, Quantized),
    row(TensorType::Q4_K, 12, "Q4_K", 256, 144, Blocks, Quantized),
    row(TensorType::Q5_K, 13, "Q5_K", 256, 176, Blocks, Quantized),
    row(TensorType::Q6_K, 14, "Q6_K", 256, 210, Blocks, Quantized),
    row(TensorType::Q8_K, 15, "Q8_K", 256, 292, Blocks, Quantized),
    row(TensorType::I8, 24, "I8", 1, 1, Blocks, Integer),
    row(TensorType::I16, 25, "I16", 1, 2, Blocks, Integer),
    row(TensorType::I32, 26, "I32", 1, 4, Blocks, Integer),
    row(TensorType::I64, 27, "I64", 1, 8, Blocks, Integer),
    row(TensorType::F64, 28, "F64", 1, 8, Blocks, Float),
    row(TensorType::BF16, 30, "BF16", 1, 2, Blocks, Float),
    row(TensorType::TQ1_0, 34, "TQ1_0", 256, 54, Blocks, Ternary),
    row(TensorType::TQ2_0, 35, "TQ2_0", 256, 66, Blocks, Ternary),
    row(TensorType::I2_S, 36, "I2_S", 1, 1, QuarterPlusTail, Ternary),
    row(TensorType::TL1, 38, "TL1", 1, 1, QuarterPlusTail, Ternary),
    row(TensorType::TL2, 39, "TL2", 1, 1, Tl2, Ternary),
    row(TensorType::MXFP4, 39, "MXFP4", 32, 17, Blocks, Quantized),
    row(TensorType::Q2_0, 42, "Q2_0", 64, 18, Blocks, Quantized),
    row(TensorType::STQ1_0, 43, "STQ1_0", 256, 42, Blocks, Ternary),
    row(
        TensorType::Sherry,
        SHERRY_TYPE_ID,
        "SHERRY",
        1,
        1,
        SizeRule::Sherry,
        Ternary,
    ),
];

impl TensorType {
    /// This type's row in [`TYPES`].
    pub fn info(self) -> &'static TypeInfo {
        TYPES
            .iter()
            .find(|r| r.ty == self)
            .expect("every TensorType has a row in TYPES")
    }

    /// Upper-case name (`"I2_S"`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The GGUF id our writer uses for this type.
    pub fn id(self) -> u32 {
        self.info().id
    }

    /// Whether the type stores ternary weights.
    pub fn is_ternary(self) -> bool {
        self.info().class == TypeClass::Ternary
    }

    /// Looks a type up by name, ignoring case and accepting `-` for `_` (`i2_s`, `tq2-0`).
    pub fn from_name(name: &str) -> Option<TensorType> {
        let norm = name.trim().to_ascii_uppercase().replace('-', "_");
        let norm = match norm.as_str() {
            "I2S" => "I2_S".to_string(),
            _ => norm,
        };
        TYPES.iter().find(|r| r.name == norm).map(|r| r.ty)
    }

    /// The interpretations a GGUF type id can have, most likely first. Ids that upstream
    /// ggml and bitnet.cpp's fork (or the STQ1_0 files) use for different types give
    /// several; the GGUF reader decides between them by the tensor's byte size.
    pub fn candidates_for_id(id: u32) -> Vec<TensorType> {
        match id {
            42 => vec![TensorType::STQ1_0, TensorType::Q2_0],
            _ => TYPES.iter().filter(|r| r.id == id).map(|r| r.ty).collect(),
        }
    }

    /// Bytes a tensor of this type and shape occupies, computed with checked arithmetic.
    /// `dims` are ggml's ne (ne0 = the contiguous dimension). Errors say why the shape does
    /// not fit the type.
    pub fn nbytes(self, dims: &[u64]) -> Result<u64, String> {
        let info = self.info();
        let n = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("element count of shape {dims:?} overflows"))?;
        let ne0 = dims.first().copied().unwrap_or(1);
        let ne1 = dims.get(1).copied().unwrap_or(1);
        let overflow = || {
            format!(
                "byte size of a {} tensor of shape {dims:?} overflows",
                info.name
            )
        };
        match info.rule {
            Blocks => {
                if ne0 % info.block_size != 0 {
                    return Err(format!(
                        "{} needs the first dimension to be a multiple of {}, got {ne0}",
                        info.name, info.block_size
                    ));
                }
                (n / info.block_size)
                    .checked_mul(info.type_size)
                    .ok_or_else(overflow)
            }
            QuarterPlusTail => (n / 4).checked_add(SCALE_TAIL_BYTES).ok_or_else(overflow),
            Tl2 => {
                if dims.len() > 2 && dims[2..].iter().any(|&d| d != 1) {
                    return Err(format!("TL2 tensors are 2-D, got shape {dims:?}"));
                }
                if ne0 < 256 {
                    return Err(format!("TL2 needs at least 256 columns, got {ne0}"));
                }
                let three = (ne0 - 256)
                    .checked_mul(ne1)
                    .map(|v| v / 3)
                    .and_then(|v| v.checked_mul(5))
                    .map(|v| v / 8)
                    .ok_or_else(overflow)?;
                let two = ne1.checked_mul(256 / 2 * 4 / 8).ok_or_else(overflow)?;
                let raw = three.checked_add(two).ok_or_else(overflow)?;
                let padded = raw.checked_add(31).ok_or_else(overflow)? / 32 * 32;
                padded.checked_add(SCALE_TAIL_BYTES).ok_or_else(overflow)
            }
            SizeRule::Sherry => {
                if ne0 % 32 != 0 || ne1 % 32 != 0 {
                    return Err(format!(
                        "SHERRY needs both dimensions to be multiples of 32, got {ne0} x {ne1}"
                    ));
                }
                (n / 32)
                    .checked_mul(5)
                    .and_then(|v| v.checked_add(SCALE_TAIL_BYTES))
                    .ok_or_else(overflow)
            }
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_one_row() {
        for r in TYPES {
            assert_eq!(
                TYPES.iter().filter(|o| o.ty == r.ty).count(),
                1,
                "{}",
                r.name
            );
            assert_eq!(r.ty.info().name, r.name);
        }
    }

    #[test]
    fn sizes_match_ggml_and_the_reference_files() {
        // I2_S [1024, 512] in bitnet25: 131072 + 32.
        assert_eq!(TensorType::I2_S.nbytes(&[1024, 512]).unwrap(), 131104);
        // TL2 ffn_down [4096, 1536] in bitnet-tl2 advances the offset by 1327136.
        assert_eq!(TensorType::TL2.nbytes(&[4096, 1536]).unwrap(), 1327136);
        assert_eq!(TensorType::TL2.nbytes(&[1536, 4096]).unwrap(), 1354464);
        assert_eq!(TensorType::TL2.nbytes(&[1536, 1536]).unwrap(), 507936);
        assert_eq!(TensorType::TQ2_0.nbytes(&[256, 2]).unwrap(), 132);
        assert_eq!(TensorType::Sherry.nbytes(&[32, 32]).unwrap(), 160 + 32);
        assert!(TensorType::Q8_0.nbytes(&[33]).is_err());
        assert!(TensorType::TL2.nbytes(&[128, 4]).is_err());
        assert!(TensorType::F32.nbytes(&[u64::MAX, 2]).is_err());
        assert!(TensorType::F32.nbytes(&[u64::MAX / 2, 1]).is_err());
    }

    #[test]
    fn ids_and_names() {
        assert_eq!(TensorType::candidates_for_id(36), vec![TensorType::I2_S]);
        assert_eq!(
            TensorType::candidates_for_id(39),
            vec![TensorType::TL2, TensorType::MXFP4]
        );
        assert_eq!(
            TensorType::candidates_for_id(42),
            vec![TensorType::STQ1_0, TensorType::Q2_0]
        );
        assert!(TensorType::candidates_for_id(99).is_empty());
        assert_eq!(TensorType::from_name("i2_s"), Some(TensorType::I2_S));
        assert_eq!(TensorType::from_name("sherry"), Some(TensorType::Sherry));
        assert_eq!(TensorType::from_name("tq2-0"), Some(TensorType::TQ2_0));
    }
}
