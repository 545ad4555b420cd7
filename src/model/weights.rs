//! The tensors of a model, found by name, checked against the configuration (shape,
//! type, presence) and turned into typed views. Every problem is reported here, at load,
//! with the tensor's name; the forward pass never meets a malformed weight.

use super::config::{Architecture, ModelConfig};
use super::linear::{self, Linear, WeightBytes};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::TensorType;

/// The weights of one transformer block.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// RMS norm before attention.
    pub attn_norm: Vec<f32>,
    /// Query projection.
    pub wq: Linear,
    /// Key projection.
    pub wk: Linear,
    /// Value projection.
    pub wv: Linear,
    /// Attention output projection.
    pub wo: Linear,
    /// RMS norm of the attention output before `wo` (BitNet).
    pub attn_sub_norm: Option<Vec<f32>>,
    /// RMS norm before the feed-forward block.
    pub ffn_norm: Vec<f32>,
    /// Gate projection.
    pub ffn_gate: Linear,
    /// Up projection.
    pub ffn_up: Linear,
    /// Down projection.
    pub ffn_down: Linear,
    /// RMS norm of the gated activation before `ffn_down` (BitNet).
    pub ffn_sub_norm: Option<Vec<f32>>,
}

/// All weights of a model.
#[derive(Debug, Clone)]
pub struct ModelWeights {
    /// Token embedding: `n_vocab` rows of `n_embd`.
    pub token_embd: Linear,
    /// The blocks.
    pub layers: Vec<LayerWeights>,
    /// Final RMS norm.
    pub output_norm: Vec<f32>,
    /// Output head: `output.weight`, or the embedding when tied.
    pub output: Linear,
    /// Whether the head is the embedding.
    pub tied_output: bool,
    /// Per-pair RoPE frequency divisors (`rope_freqs.weight`, llama 3 scaling), if present.
    pub rope_freqs: Option<Vec<f32>>,
}

/// Finds tensors and checks them.
struct Loader<'a> {
    file: &'a GgufFile,
}

/// Dimensions without trailing 1s (ggml pads shapes to four dimensions).
fn trimmed(dims: &[u64]) -> &[u64] {
    let mut n = dims.len();
    while n > 1 && dims[n - 1] == 1 {
        n -= 1;
    }
    &dims[..n]
}

impl<'a> Loader<'a> {
    fn info(&self, name: &str) -> Option<&'a TensorInfo> {
        self.file.header().tensor(name)
    }

    /// The tensor `name` with the shape `want` (ggml order), or an error naming both.
    fn shaped(&self, name: &str, want: &[usize], what: &str) -> Result<&'a TensorInfo> {
        let info = self
            .info(name)
            .ok_or_else(|| Error::model(format!("required tensor '{name}' ({what}) is missing")))?;
        self.check_shape(info, want, what)?;
        Ok(info)
    }

    fn check_shape(&self, info: &TensorInfo, want: &[usize], what: &str) -> Result<()> {
        let want64: Vec<u64> = want.iter().map(|&d| d as u64).collect();
        if trimmed(&info.dims) != trimmed(&want64) {
            return Err(Error::model(format!(
                "tensor '{}' has shape {:?}, expected {want:?} ({what})",
                info.name, info.dims
            )));
        }
        Ok(())
    }

    fn byte_range(&self, info: &TensorInfo) -> std::ops::Range<usize> {
        let start = (self.file.header().data_offset + info.offset) as usize;
        start..start + info.nbytes as usize
    }

    /// A float vector (norm weight, bias, frequency factors) of length `n`.
    fn vector(&self, name: &str, n: usize, what: &str) -> Result<Vec<f32>> {
        let info = self.shaped(name, &[n], what)?;
        self.read_vector(info)
    }

    fn optional_vector(&self, name: &str, n: usize, what: &str) -> Result<Option<Vec<f32>>> {
        match self.info(name) {
            None => Ok(None),
            Some(_) => self.vector(name, n, what).map(Some),
        }
    }

    fn read_vector(&self, info: &TensorInfo) -> Result<Vec<f32>> {
        let n = info.n_elements() as usize;
        let lin = Linear {
            name: info.name.clone(),
            ty: info.ty,
            rows: 1,
            cols: n,
            padded_cols: n,
            bytes: WeightBytes::File(self.byte_range(info)),
            out_scale: None,
            bias: None,
        };
        if !linear::is_row_readable(info.ty) {
            return Err(Error::unsupported(format!(
                "tensor '{}' has type {}; vectors must be F32, F16 or BF16",
                info.name, info.ty
            )));
        }
        let mut v = vec![0.0; n];
        linear::dequantize_row(&lin, self.file.bytes(), 0, &mut v)?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::model(format!(
                "tensor '{}' holds a non-finite value at index {i}",
                info.name
            )));
        }
        Ok(v)
    }

    /// A projection `rows × cols` (ggml shape `[cols, rows]`), with its optional scale
    /// and bias tensors (`<base>.scale`, `<base>.bias`).
    fn linear(&self, base: &str, cols: usize, rows: usize, what: &str) -> Result<Linear> {
        let name = format!("{base}.weight");
        let info = self.shaped(&name, &[cols, rows], what)?;
        self.linear_from(info, cols, rows, base)
    }

    fn linear_from(
        &self,
        info: &TensorInfo,
        cols: usize,
        rows: usize,
        base: &str,
    ) -> Result<Linear> {
        let raw = &self.file.bytes()[self.byte_range(info)];
        let (ty, bytes, padded_cols) = if linear::needs_repack(info.ty) {
            // TL1/TL2: no kernel reads their tiled layout; unpack once and keep the same
            // ternary values and scale as I2_S, rows zero-padded to 128 columns.
            let (packed, padded_cols) = linear::repack_to_i2s(info.ty, cols, rows, raw)
                .map_err(|e| e.context(format!("tensor '{}'", info.name)))?;
            // The file's copy is not read again: let its pages go (halves the resident
            // memory of a TL1/TL2 model).
            self.file.release(self.byte_range(info));
            (TensorType::I2_S, WeightBytes::Owned(packed), padded_cols)
        } else {
            (info.ty, WeightBytes::File(self.byte_range(info)), cols)
        };
        let stored = bytes.get(self.file.bytes());
        linear::check_supported(&info.name, ty, padded_cols, rows, stored)?;
        let out_scale = match self.info(&format!("{base}.scale")) {
            None => None,
            Some(s) => {
                let v = self.vector(&s.name, 1, "per-tensor output scale")?;
                Some(v[0])
            }
        };
        let bias = self.optional_vector(&format!("{base}.bias"), rows, "bias")?;
        Ok(Linear {
            name: info.name.clone(),
            ty,
            rows,
            cols,
            padded_cols,
            bytes,
            out_scale,
            bias,
        })
    }
}

impl ModelWeights {
    /// Finds and checks every tensor `config` needs in `file`.
    pub fn load(file: &GgufFile, config: &ModelConfig) -> Result<ModelWeights> {
        let l = Loader { file };
        let c = config;
        let embd_info = l.info("token_embd.weight").ok_or_else(|| {
            Error::model("required tensor 'token_embd.weight' (token embedding) is missing")
        })?;
        let embd_dims = trimmed(&embd_info.dims);
        if embd_dims.len() == 2
            && embd_dims[0] == c.n_embd as u64
            && embd_dims[1] != c.n_vocab as u64
        {
            return Err(Error::model(format!(
                "the vocabulary has {} tokens but 'token_embd.weight' has {} rows",
                c.n_vocab, embd_dims[1]
            )));
        }
        l.check_shape(embd_info, &[c.n_embd, c.n_vocab], "n_embd x n_vocab")?;
        if !linear::is_row_readable(embd_info.ty) {
            return Err(Error::unsupported(format!(
                "tensor 'token_embd.weight' has type {}, which cannot be read row by row yet",
                embd_info.ty
            )));
        }
        let token_embd = Linear {
            name: embd_info.name.clone(),
            ty: embd_info.ty,
            rows: c.n_vocab,
            cols: c.n_embd,
            padded_cols: c.n_embd,
            bytes: WeightBytes::File(l.byte_range(embd_info)),
            out_scale: None,
            bias: None,
        };

        let output_norm = l.vector("output_norm.weight", c.n_embd, "n_embd")?;
        let (output, tied_output) = match l.info("output.weight") {
            Some(info) => {
                l.check_shape(info, &[c.n_embd, c.n_vocab], "n_embd x n_vocab")?;
                (l.linear_from(info, c.n_embd, c.n_vocab, "output")?, false)
            }
            None => {
                let bytes = token_embd.bytes.get(file.bytes());
                linear::check_supported(
                    &token_embd.name,
                    token_embd.ty,
                    c.n_embd,
                    c.n_vocab,
                    bytes,
                )?;
                (token_embd.clone(), true)
            }
        };

        let rope_freqs = match l.info("rope_freqs.weight") {
            None => None,
            Some(_) => {
                let f = l.vector("rope_freqs.weight", c.n_rot / 2, "n_rot / 2")?;
                if let Some(i) = f.iter().position(|&x| x <= 0.0) {
                    return Err(Error::model(format!(
                        "tensor 'rope_freqs.weight' holds a non-positive factor at index {i}"
                    )));
                }
                Some(f)
            }
        };

        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}");
            let sub = |name: &str, n: usize, what: &str| -> Result<Option<Vec<f32>>> {
                if c.sub_norms {
                    l.vector(&p(name), n, what).map(Some)
                } else {
                    Ok(None)
                }
            };
            layers.push(LayerWeights {
                attn_norm: l.vector(&p("attn_norm.weight"), c.n_embd, "n_embd")?,
                wq: l.linear(
                    &p("attn_q"),
                    c.n_embd,
                    c.q_dim(),
                    "n_embd x n_head*head_dim",
                )?,
                wk: l.linear(
                    &p("attn_k"),
                    c.n_embd,
                    c.k_dim(),
                    "n_embd x n_head_kv*head_dim",
                )?,
                wv: l.linear(
                    &p("attn_v"),
                    c.n_embd,
                    c.v_dim(),
                    "n_embd x n_head_kv*head_dim",
                )?,
                wo: l.linear(
                    &p("attn_output"),
                    c.attn_out_dim(),
                    c.n_embd,
                    "n_head*head_dim x n_embd",
                )?,
                attn_sub_norm: sub("attn_sub_norm.weight", c.attn_out_dim(), "n_head*head_dim")?,
                ffn_norm: l.vector(&p("ffn_norm.weight"), c.n_embd, "n_embd")?,
                ffn_gate: l.linear(&p("ffn_gate"), c.n_embd, c.n_ff, "n_embd x n_ff")?,
                ffn_up: l.linear(&p("ffn_up"), c.n_embd, c.n_ff, "n_embd x n_ff")?,
                ffn_down: l.linear(&p("ffn_down"), c.n_ff, c.n_embd, "n_ff x n_embd")?,
                ffn_sub_norm: sub("ffn_sub_norm.weight", c.n_ff, "n_ff")?,
            });
        }
        if c.arch == Architecture::Llama && l.info("blk.0.attn_sub_norm.weight").is_some() {
            return Err(Error::model(
                "a 'llama' model with 'attn_sub_norm' tensors: this looks like a BitNet model \
                 with the wrong general.architecture",
            ));
        }
        Ok(ModelWeights {
            token_embd,
            layers,
            output_norm,
            output,
            tied_output,
            rope_freqs,
        })
    }
}
