//! Sherry training checkpoints: Hugging Face safetensors files holding the latent
//! (full-precision) weights that Sherry's training code (Tencent AngelSlim, `Sherry/`,
//! arXiv:2601.07892) ternarizes on the fly, and the rule it ternarizes them by.
//!
//! **The reference rule** (`NMQuant` in the training code's `models/utils_quant.py`, used by
//! its `Arenas` linear layer with N = 3, M = 4): the weight `[out, in]` is cut into groups of
//! 4 consecutive input weights of a row; the mask keeps the 3 of largest `|w|` (`topk`); the
//! kept weights become `sign(w)`; the scale is `Σ|kept w| / (kept count)` over a scale group
//! — the whole tensor (`per_tensor`), a row (`per_channel`) or `group_size` consecutive
//! weights (`per_group`, 128 in the published training script).
//!
//! What we do differently, and why: SHERRY stores one scale per tensor, so the scale is the
//! mean `|w|` of all kept weights of the tensor (which is also the mean of equal-sized
//! group scales); [`LatentReport`] gives how far the reference's per-group scales were from
//! it. `topk` does not specify which of two equal `|w|` it keeps; we keep the lower column.
//! A kept weight of exactly 0 has `sign = 0` in the reference, which a 3:4 group cannot
//! hold; we store +1 and count these weights.
//!
//! **Arenas** adds `eps · x Wᵀ` with the latent `W` during training and anneals `eps` to 0;
//! at deployment the residual path is gone. `eps` is not a parameter of the reference
//! layer, but a checkpoint may still carry residual weights or a coefficient (tensors named
//! with `arenas`, `residual`, `eps` or `lambda`): [`is_arenas_residual`] finds them so that
//! conversion drops them and says so.

use crate::error::{Error, Result};
use crate::quant::sherry::{project_34_from_latent, GroupLayout};
use crate::quant::ternary::TernaryWeights;

/// One tensor of a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct SafeTensor {
    pub name: String,
    /// `F32`, `F16` or `BF16` (others are listed but cannot be read as floats).
    pub dtype: String,
    /// Shape, outermost first (`[out, in]` for a linear weight).
    pub shape: Vec<usize>,
    /// Byte range inside the data section.
    pub start: usize,
    pub end: usize,
}

/// A parsed safetensors file (borrowing its bytes).
#[derive(Debug)]
pub struct SafeTensors<'a> {
    pub tensors: Vec<SafeTensor>,
    data: &'a [u8],
}

impl<'a> SafeTensors<'a> {
    /// Parses the header (u64 little-endian length, JSON object of `name: {dtype, shape,
    /// data_offsets}` and an optional `__metadata__`), checking every range and size.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(Error::format(
                "safetensors: shorter than its 8-byte header length",
            ));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        if n > bytes.len() - 8 {
            return Err(Error::format(format!(
                "safetensors: header of {n} bytes in a file of {}",
                bytes.len()
            )));
        }
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])
            .map_err(|e| Error::format(format!("safetensors header: {e}")))?;
        let obj = header
            .as_object()
            .ok_or_else(|| Error::format("safetensors header is not a JSON object"))?;
        let data = &bytes[8 + n..];
        let mut tensors = Vec::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let bad = |what: &str| Error::format(format!("safetensors tensor {name}: {what}"));
            let dtype = v["dtype"]
                .as_str()
                .ok_or_else(|| bad("no dtype"))?
                .to_string();
            let shape = v["shape"]
                .as_array()
                .ok_or_else(|| bad("no shape"))?
                .iter()
                .map(|d| {
                    d.as_u64()
                        .map(|d| d as usize)
                        .ok_or_else(|| bad("bad shape"))
                })
                .collect::<Result<Vec<usize>>>()?;
            let offs = v["data_offsets"]
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad("no data_offsets"))?;
            let start = offs[0].as_u64().ok_or_else(|| bad("bad offset"))? as usize;
            let end = offs[1].as_u64().ok_or_else(|| bad("bad offset"))? as usize;
            if start > end || end > data.len() {
                return Err(bad(&format!(
                    "data {start}..{end} outside the {} data bytes",
                    data.len()
                )));
            }
            let count = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| bad("shape overflows"))?;
            if let Some(size) = dtype_size(&dtype) {
                if count.checked_mul(size) != Some(end - start) {
                    return Err(bad(&format!(
                        "{count} {dtype} values need {} bytes, the range holds {}",
                        count.saturating_mul(size),
                        end - start
                    )));
                }
            }
            tensors.push(SafeTensor {
                name: name.clone(),
                dtype,
                shape,
                start,
                end,
            });
        }
        tensors.sort_by_key(|t| t.start);
        Ok(SafeTensors { tensors, data })
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&SafeTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A tensor's values as f32 (F32, F16, BF16).
    pub fn floats(&self, t: &SafeTensor) -> Result<Vec<f32>> {
        let b = &self.data[t.start..t.end];
        Ok(match t.dtype.as_str() {
            "F32" => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            "F16" => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            "BF16" => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::unsupported(format!(
                    "safetensors tensor {}: dtype {other} is not a float type",
                    t.name
                )))
            }
        })
    }
}

fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// Whether a checkpoint tensor is part of an Arenas residual path (weights or coefficient)
/// rather than the model: its name mentions `arenas`, `residual`, or ends in `eps` /
/// `lambda` (case-insensitive).
pub fn is_arenas_residual(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let last = n.rsplit('.').next().unwrap_or("");
    n.contains("arenas")
        || n.contains("residual")
        || last == "eps"
        || last.ends_with("_eps")
        || last == "lambda"
        || last.ends_with("_lambda")
}

/// How the reference's ternarization of one latent matrix compares with what SHERRY stores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatentReport {
    /// Kept weights whose latent was exactly 0 (stored as +1; the reference gives 0).
    pub kept_zeros: usize,
    /// The largest `|s_g / s − 1|` over the reference's scale groups `g` of
    /// `scale_group` weights (0 when the scale group is the whole tensor).
    pub max_group_scale_deviation: f64,
}

/// Ternarizes a latent `[rows, cols]` matrix with Sherry's training rule (see the module
/// documentation) and reports what the single SHERRY scale changes against the reference's
/// scale groups of `scale_group` consecutive weights (`None`: one per tensor).
pub fn ternarize_like_training(
    rows: usize,
    cols: usize,
    latent: &[f32],
    scale_group: Option<usize>,
) -> Result<(TernaryWeights, LatentReport)> {
    let w = project_34_from_latent(rows, cols, latent, GroupLayout::Consecutive)?;
    let kept_zeros = w
        .values
        .iter()
        .zip(latent)
        .filter(|(&v, &x)| v != 0 && x == 0.0)
        .count();
    let s = w.uniform_scale()? as f64;
    let mut dev = 0.0f64;
    if let Some(g) = scale_group {
        if g == 0 || g % 4 != 0 || latent.len() % g != 0 {
            return Err(Error::invalid(format!(
                "scale groups of {g} weights do not tile a {rows}x{cols} matrix in quads"
            )));
        }
        for (vals, x) in w.values.chunks_exact(g).zip(latent.chunks_exact(g)) {
            let sum: f64 = vals
                .iter()
                .zip(x)
                .filter(|(&v, _)| v != 0)
                .map(|(_, &x)| x.abs() as f64)
                .sum();
            let sg = sum / (g / 4 * 3) as f64;
            if s > 0.0 {
                dev = dev.max((sg / s - 1.0).abs());
            }
        }
    }
    Ok((
        w,
        LatentReport {
            kept_zeros,
            max_group_scale_deviation: dev,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in entries {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let h = serde_json::Value::Object(header).to_string();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn parses_and_checks_sizes() {
        let f32s: Vec<u8> = [1.0f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = file(&[
            ("a", "F32", vec![2], f32s),
            ("b", "BF16", vec![1], vec![0x80, 0x3f]),
        ]);
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(st.floats(st.get("a").unwrap()).unwrap(), vec![1.0, -2.0]);
        assert_eq!(st.floats(st.get("b").unwrap()).unwrap(), vec![1.0]);
        let bad = file(&[("a", "F32", vec![3], vec![0; 8])]);
        assert!(SafeTensors::parse(&bad).is_err());
        assert!(SafeTensors::parse(&[1, 0]).is_err());
    }

    #[test]
    fn training_rule_and_report() {
        // Row 0: |w| ties between columns 1 and 3 (0.5): the lower one is kept.
        let latent = [0.1f32, -0.5, 2.0, 0.5, 0.0, 1.0, -1.0, 0.25];
        let (w, rep) = ternarize_like_training(1, 8, &latent, Some(4)).unwrap();
        assert_eq!(w.values, vec![0, -1, 1, 1, 0, 1, -1, 1]);
        assert_eq!(rep.kept_zeros, 0);
        // Kept: 0.5 + 2 + 0.5 + 1 + 1 + 0.25 = 5.25 over 6.
        assert_eq!(w.uniform_scale().unwrap(), (5.25f64 / 6.0) as f32);
        // Group scales 3/3 = 1 and 2.25/3 = 0.75 against 0.875.
        assert!((rep.max_group_scale_deviation - (1.0 / 0.875 - 1.0)).abs() < 1e-6);
        let (_, rep) = ternarize_like_training(1, 4, &[0.0, 0.0, 0.0, 1.0], None).unwrap();
        assert_eq!(rep.kept_zeros, 2);
    }

    #[test]
    fn arenas_names() {
        assert!(is_arenas_residual(
            "model.layers.0.self_attn.q_proj.arenas_eps"
        ));
        assert!(is_arenas_residual(
            "model.layers.0.mlp.up_proj.residual_weight"
        ));
        assert!(is_arenas_residual("model.layers.3.self_attn.o_proj.eps"));
        assert!(!is_arenas_residual(
            "model.layers.0.self_attn.q_proj.weight"
        ));
        assert!(!is_arenas_residual("model.norm.weight"));
    }
}
