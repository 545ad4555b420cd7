//! `tern quantize BASE.gguf OUT.gguf --type sherry --latent CKPT.safetensors`: the projection
//! weights come from a Sherry training checkpoint's latent weights, ternarized with the
//! training code's rule (`tern::quant::checkpoint`); everything else (metadata, norms,
//! embeddings, head) comes from BASE, a GGUF of the same model (for example the checkpoint's
//! base model converted by llama.cpp's `convert_hf_to_gguf.py`, or a `tern synth` model of the
//! same shapes).

use std::collections::HashSet;

use tern::gguf::{GgufFile, TensorInfo, Value};
use tern::quant::checkpoint::{is_arenas_residual, ternarize_like_training, SafeTensors};
use tern::quant::ternary::pack_ternary;
use tern::quant::TensorType;
use tern::{Error, Result};

/// The Hugging Face name of a GGUF projection tensor (`blk.N.attn_q.weight` ->
/// `model.layers.N.self_attn.q_proj.weight`).
pub fn hf_name(gguf: &str) -> Option<String> {
    let mut p = gguf.split('.');
    let (blk, n, kind, w) = (p.next()?, p.next()?, p.next()?, p.next()?);
    if blk != "blk" || w != "weight" || p.next().is_some() || n.parse::<u32>().is_err() {
        return None;
    }
    let hf = match kind {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{n}.{hf}.weight"))
}

/// llama.cpp's converter reorders the rows of `q_proj` / `k_proj` for the `llama`
/// architecture (each head's two rotary halves interleaved); rows `h·2·half + a·half + i`
/// move to `h·2·half + 2i + a`. The 3:4 mask is per row, so permuting the latent rows first
/// gives the same ternary rows in the GGUF order.
pub fn permute_rows_like_llama_cpp(
    x: &[f32],
    rows: usize,
    cols: usize,
    heads: usize,
) -> Result<Vec<f32>> {
    if heads == 0 || rows % (2 * heads) != 0 {
        return Err(Error::invalid(format!(
            "cannot split {rows} rows into {heads} heads of two rotary halves"
        )));
    }
    let half = rows / heads / 2;
    let mut out = vec![0f32; x.len()];
    for h in 0..heads {
        for a in 0..2 {
            for i in 0..half {
                let src = h * 2 * half + a * half + i;
                let dst = h * 2 * half + 2 * i + a;
                out[dst * cols..][..cols].copy_from_slice(&x[src * cols..][..cols]);
            }
        }
    }
    Ok(out)
}

/// A loaded checkpoint and what it takes from BASE's metadata.
pub struct LatentSource {
    bytes: Vec<u8>,
    path: String,
    /// Rotary heads of q and k when BASE is a `llama` model (rows to permute), else None.
    heads: Option<(usize, usize)>,
    /// The scale groups the report compares with (the published script: 128).
    scale_group: Option<usize>,
    used: HashSet<String>,
}

fn meta_u32(file: &GgufFile, key: &str) -> Option<usize> {
    match file.get(key)? {
        Value::U32(v) => Some(*v as usize),
        Value::I32(v) => Some(*v as usize),
        Value::U64(v) => Some(*v as usize),
        _ => None,
    }
}

impl LatentSource {
    /// Reads `path` and checks it parses.
    pub fn open(path: &str, base: &GgufFile, scale_group: Option<usize>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
        SafeTensors::parse(&bytes).map_err(|e| e.context(path))?;
        let arch = match base.get("general.architecture") {
            Some(Value::String(s)) => String::from_utf8_lossy(s).into_owned(),
            _ => String::new(),
        };
        let heads = if arch == "llama" {
            let h = meta_u32(base, "llama.attention.head_count")
                .ok_or_else(|| Error::model("llama.attention.head_count is missing"))?;
            let kv = meta_u32(base, "llama.attention.head_count_kv").unwrap_or(h);
            Some((h, kv))
        } else {
            None
        };
        Ok(LatentSource {
            bytes,
            path: path.to_string(),
            heads,
            scale_group,
            used: HashSet::new(),
        })
    }

    /// The Sherry bytes of projection `t` from its latent weights, and a note.
    pub fn convert(&mut self, t: &TensorInfo) -> Result<(Vec<u8>, String)> {
        let st = SafeTensors::parse(&self.bytes)?;
        let name = hf_name(&t.name)
            .ok_or_else(|| Error::model(format!("{} is not a projection", t.name)))?;
        let ct = st.get(&name).ok_or_else(|| {
            Error::model(format!(
                "{}: the checkpoint has no tensor {name}",
                self.path
            ))
        })?;
        let (rows, cols) = (t.dims[1] as usize, t.dims[0] as usize);
        if ct.shape != [rows, cols] {
            return Err(Error::model(format!(
                "{name} is {:?} in the checkpoint, {} is [{rows}, {cols}] in BASE",
                ct.shape, t.name
            )));
        }
        let mut x = st.floats(ct)?;
        let mut note = format!("latent {name} ({})", ct.dtype);
        if let Some((h, kv)) = self.heads {
            let heads = match t.name.rsplit('.').nth(1) {
                Some("attn_q") => Some(h),
                Some("attn_k") => Some(kv),
                _ => None,
            };
            if let Some(n) = heads {
                x = permute_rows_like_llama_cpp(&x, rows, cols, n)?;
                note.push_str(", rows permuted as llama.cpp");
            }
        }
        self.used.insert(name);
        let (w, rep) = ternarize_like_training(rows, cols, &x, self.scale_group)?;
        note.push_str(&format!(
            ", training 3:4 mask, scale {:.6}",
            w.uniform_scale()?
        ));
        if let Some(g) = self.scale_group {
            note.push_str(&format!(
                "; per-{g} training scales differ by up to {:.2}%",
                100.0 * rep.max_group_scale_deviation
            ));
        }
        if rep.kept_zeros > 0 {
            note.push_str(&format!(
                "; {} kept latents of exactly 0 stored as +1",
                rep.kept_zeros
            ));
        }
        Ok((pack_ternary(TensorType::Sherry, &w)?, note))
    }

    /// Lines about the checkpoint tensors not used: Arenas residual tensors are dropped
    /// (one line each); the others (norms, embeddings, head: BASE's are kept) are counted.
    pub fn leftovers(&self) -> Vec<String> {
        let Ok(st) = SafeTensors::parse(&self.bytes) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut unused = 0;
        for t in &st.tensors {
            if self.used.contains(&t.name) {
                continue;
            }
            if is_arenas_residual(&t.name) {
                out.push(format!(
                    "  dropped {} ({:?} {}): Arenas residual path, annealed away at deployment",
                    t.name, t.shape, t.dtype
                ));
            } else {
                unused += 1;
            }
        }
        out.push(format!(
            "  {}: {} projections taken, {} residual tensors dropped, {unused} other tensors \
             not used (BASE's are kept)",
            self.path,
            self.used.len(),
            out.len()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permutation() {
        assert_eq!(
            hf_name("blk.3.ffn_down.weight").as_deref(),
            Some("model.layers.3.mlp.down_proj.weight")
        );
        assert_eq!(hf_name("blk.3.attn_norm.weight"), None);
        // 1 head, 4 rows: halves [0, 1] and [2, 3] interleave to 0, 2, 1, 3.
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let p = permute_rows_like_llama_cpp(&x, 4, 2, 1).unwrap();
        assert_eq!(p, vec![0., 1., 4., 5., 2., 3., 6., 7.]);
    }
}
