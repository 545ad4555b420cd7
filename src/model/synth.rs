//! Synthetic models: random weights of any of the four architectures, written as GGUF
//! with our writer. The ternary values depend only on the seed and the shapes, not on the
//! storage type, so the same model can be written as I2_S, TQ2_0, Sherry, ... and the
//! outputs compared. Used by tests and benchmarks.

use super::config::Architecture;
use crate::error::{Error, Result};
use crate::gguf::{GgufWriter, Value};
use crate::quant::ternary::{pack_ternary, TernaryWeights, WeightScale};
use crate::quant::TensorType;

/// The shape and storage of a synthetic model.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Architecture (decides the tensor set and metadata prefix).
    pub arch: Architecture,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Training context length written to the metadata.
    pub n_ctx_train: usize,
    /// RoPE base.
    pub rope_freq_base: f32,
    /// Storage of the seven projections of each block (a ternary type, or a dense type
    /// holding the ternary values times the scale).
    pub weight_type: TensorType,
    /// Storage of the embedding: F32, F16, BF16, Q8_0, Q4_0 or Q6_K.
    pub embd_type: TensorType,
    /// Storage of the head when untied (same choices).
    pub head_type: TensorType,
    /// Whether the head is the embedding (no `output.weight`).
    pub tied_output: bool,
    /// Make every group of 4 consecutive weights of a row hold exactly one zero (3:4
    /// sparsity, which Sherry requires).
    pub sparse_3_4: bool,
    /// Seed of the weights.
    pub seed: u64,
    /// Write a small byte-level BPE vocabulary (see [`super::synth_vocab`]) into the
    /// tokenizer metadata, padded to `n_vocab` with reserved control tokens.
    pub with_vocab: bool,
}

impl SynthSpec {
    /// A small model of `arch` (hidden 256, 2 layers, 4 heads over 2 KV heads, FFN 512,
    /// vocab 512) stored as I2_S with an F16 embedding.
    pub fn tiny(arch: Architecture) -> SynthSpec {
        SynthSpec {
            arch,
            n_vocab: 512,
            n_embd: 256,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 512,
            n_ctx_train: 1024,
            rope_freq_base: 10000.0,
            weight_type: TensorType::I2_S,
            embd_type: TensorType::F16,
            head_type: TensorType::F16,
            tied_output: arch != Architecture::Llama,
            sparse_3_4: false,
            seed: 1,
            with_vocab: false,
        }
    }
}

/// One tensor of a synthetic model.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthTensor {
    /// Name.
    pub name: String,
    /// ggml shape.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: TensorType,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// A synthetic model before it is written: metadata and tensors, editable (tests remove
/// or reshape pieces to make broken models).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthModel {
    /// Metadata pairs in order.
    pub metadata: Vec<(String, Value)>,
    /// Tensors in order.
    pub tensors: Vec<SynthTensor>,
}

impl SynthModel {
    /// Builds the model `spec` describes.
    pub fn new(spec: &SynthSpec) -> Result<SynthModel> {
        build(spec)
    }

    /// Sets (or replaces) a metadata value.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Removes a metadata key.
    pub fn unset(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    /// Removes a tensor.
    pub fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    /// The tensor named `name`.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut SynthTensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// The GGUF file's bytes.
    pub fn to_gguf(&self) -> Result<Vec<u8>> {
        let mut w = GgufWriter::new();
        for (k, v) in &self.metadata {
            w.set(k, v.clone());
        }
        for t in &self.tensors {
            w.add_tensor(&t.name, &t.dims, t.ty)?;
        }
        let mut out = Vec::new();
        let mut dw = w.begin(&mut out)?;
        for t in &self.tensors {
            dw.write_tensor(&t.bytes)?;
        }
        dw.finish()?;
        Ok(out)
    }
}

/// splitmix64: a small, portable generator (same stream on every platform).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: &str) -> Rng {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Ternary values of a `rows × cols` matrix: about a third zeros, or with `sparse_3_4`
/// exactly one zero in every group of 4 consecutive weights of a row *and* in every group
/// of 4 weights 16 apart inside a 64-weight chunk (STQ1_0's grouping): weight `(r, c)` is
/// zero iff `c % 4 == (c / 16 + r) % 4`. Signs (and, when dense, values) are random.
fn ternary_values(rng: &mut Rng, rows: usize, cols: usize, sparse_3_4: bool) -> Vec<i8> {
    let mut v = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let x = rng.next_u64();
            let t = if sparse_3_4 {
                if c % 4 == (c / 16 + r) % 4 {
                    0
                } else if x & 1 == 0 {
                    1
                } else {
                    -1
                }
            } else {
                (x % 3) as i8 - 1
            };
            v.push(t);
        }
    }
    v
}

/// `values` (rows of `row_len`) stored as a dense type (F32, F16, BF16, Q8_0, Q4_0, Q6_K).
fn dense_bytes(ty: TensorType, values: &[f32], row_len: usize) -> Result<Vec<u8>> {
    let rb = crate::quant::dense::row_bytes(ty, row_len)?;
    let mut out = vec![0u8; values.len() / row_len * rb];
    for (x, o) in values.chunks_exact(row_len).zip(out.chunks_exact_mut(rb)) {
        crate::quant::dense::quantize_row(ty, x, o)?;
    }
    Ok(out)
}

/// Where the values of one planned tensor come from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// `mean + std * N(0, 1)` from the RNG stream named after the tensor.
    Normal { mean: f32, std: f32 },
    /// Ternary values times a per-tensor scale (both from the tensor's stream).
    Ternary,
}

/// One tensor of a synthetic model before its bytes exist.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSynthTensor {
    /// Name (also the name of its RNG stream).
    pub name: String,
    /// ggml shape: `[cols]` or `[cols, rows]`.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: TensorType,
    /// Name of its RNG stream.
    stream: String,
    source: Source,
}

impl PlannedSynthTensor {
    fn rows_cols(&self) -> (usize, usize) {
        let cols = self.dims[0] as usize;
        let rows = self.dims.get(1).map_or(1, |&r| r as usize);
        (rows, cols)
    }
}

/// The metadata of the model `s` describes (hyperparameters and, with `with_vocab`, the
/// tokenizer), after checking that the shape is consistent.
pub fn synth_metadata(s: &SynthSpec) -> Result<Vec<(String, Value)>> {
    if s.n_head == 0 || s.n_head_kv == 0 || s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0
    {
        return Err(Error::invalid(format!(
            "synthetic model: {} heads over {} KV heads do not fit a hidden size of {}",
            s.n_head, s.n_head_kv, s.n_embd
        )));
    }
    let arch = s.arch.name();
    let head_dim = s.n_embd / s.n_head;
    let mut m = SynthModel {
        metadata: Vec::new(),
        tensors: Vec::new(),
    };
    let u32v = |v: usize| Value::U32(v as u32);
    m.set("general.architecture", Value::string(arch));
    m.set("general.name", Value::string(format!("synthetic {arch}")));
    m.set(&format!("{arch}.vocab_size"), u32v(s.n_vocab));
    m.set(&format!("{arch}.context_length"), u32v(s.n_ctx_train));
    m.set(&format!("{arch}.embedding_length"), u32v(s.n_embd));
    m.set(&format!("{arch}.block_count"), u32v(s.n_layer));
    m.set(&format!("{arch}.feed_forward_length"), u32v(s.n_ff));
    m.set(&format!("{arch}.rope.dimension_count"), u32v(head_dim));
    m.set(&format!("{arch}.attention.head_count"), u32v(s.n_head));
    m.set(
        &format!("{arch}.attention.head_count_kv"),
        u32v(s.n_head_kv),
    );
    m.set(
        &format!("{arch}.attention.layer_norm_rms_epsilon"),
        Value::F32(1e-5),
    );
    m.set(
        &format!("{arch}.rope.freq_base"),
        Value::F32(s.rope_freq_base),
    );
    if s.with_vocab {
        for (k, v) in super::synth_vocab::vocab_metadata(s.n_vocab)? {
            m.set(&k, v);
        }
    }
    Ok(m.metadata)
}

/// The tensors of the model `s` describes, in file order, without their bytes.
pub fn plan_tensors(s: &SynthSpec) -> Vec<PlannedSynthTensor> {
    let head_dim = s.n_embd / s.n_head.max(1);
    let kv_dim = head_dim * s.n_head_kv;
    let mut out = Vec::new();
    let mut push = |name: String, dims: Vec<usize>, ty: TensorType, source: Source| {
        // The streams of the first three tensors keep their historical names.
        let stream = match name.as_str() {
            "token_embd.weight" => "token_embd".to_string(),
            "output_norm.weight" => "output_norm".to_string(),
            "output.weight" => "output".to_string(),
            _ => name.clone(),
        };
        out.push(PlannedSynthTensor {
            name,
            stream,
            dims: dims.into_iter().map(|d| d as u64).collect(),
            ty,
            source,
        })
    };
    let weights = Source::Normal {
        mean: 0.0,
        std: 0.05,
    };
    let norm = Source::Normal {
        mean: 1.0,
        std: 0.1,
    };
    push(
        "token_embd.weight".into(),
        vec![s.n_embd, s.n_vocab],
        s.embd_type,
        weights.clone(),
    );
    push(
        "output_norm.weight".into(),
        vec![s.n_embd],
        TensorType::F32,
        norm.clone(),
    );
    if !s.tied_output {
        push(
            "output.weight".into(),
            vec![s.n_embd, s.n_vocab],
            s.head_type,
            weights,
        );
    }
    let sub_norms = s.arch.has_sub_norms();
    for l in 0..s.n_layer {
        let p = |x: &str| format!("blk.{l}.{x}");
        push(
            p("attn_norm.weight"),
            vec![s.n_embd],
            TensorType::F32,
            norm.clone(),
        );
        push(
            p("ffn_norm.weight"),
            vec![s.n_embd],
            TensorType::F32,
            norm.clone(),
        );
        if sub_norms {
            push(
                p("attn_sub_norm.weight"),
                vec![s.n_embd],
                TensorType::F32,
                norm.clone(),
            );
            push(
                p("ffn_sub_norm.weight"),
                vec![s.n_ff],
                TensorType::F32,
                norm.clone(),
            );
        }
        for (name, cols, rows) in [
            ("attn_q.weight", s.n_embd, s.n_embd),
            ("attn_k.weight", s.n_embd, kv_dim),
            ("attn_v.weight", s.n_embd, kv_dim),
            ("attn_output.weight", s.n_embd, s.n_embd),
            ("ffn_gate.weight", s.n_embd, s.n_ff),
            ("ffn_up.weight", s.n_embd, s.n_ff),
            ("ffn_down.weight", s.n_ff, s.n_embd),
        ] {
            push(p(name), vec![cols, rows], s.weight_type, Source::Ternary);
        }
    }
    out
}

/// Produces the bytes of one planned tensor, handing them to `sink` in pieces of whole
/// rows (dense tensors are generated about `chunk_values` values at a time, so memory
/// stays bounded whatever the tensor's size; ternary tensors are produced whole).
pub fn generate_tensor(
    s: &SynthSpec,
    t: &PlannedSynthTensor,
    chunk_values: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let (rows, cols) = t.rows_cols();
    let mut rng = Rng::new(s.seed, &t.stream);
    match t.source {
        Source::Normal { mean, std } => {
            let rows_per_chunk = (chunk_values / cols).max(1);
            let mut values = Vec::with_capacity(rows_per_chunk.min(rows) * cols);
            let mut done = 0;
            while done < rows {
                let n = rows_per_chunk.min(rows - done);
                values.clear();
                values.extend((0..n * cols).map(|_| mean + std * rng.normal()));
                sink(&dense_bytes(t.ty, &values, cols)?)?;
                done += n;
            }
            Ok(())
        }
        Source::Ternary => {
            let values = ternary_values(&mut rng, rows, cols, s.sparse_3_4);
            // An absmean-like scale for N(0, 0.02) weights, a little different per tensor.
            let scale = 0.016 * (1.0 + 0.25 * rng.uniform() as f32);
            let bytes = if t.ty.is_ternary() {
                let w = TernaryWeights::new(rows, cols, values, WeightScale::PerTensor(scale))?;
                pack_ternary(t.ty, &w).map_err(|e| e.context(t.name.clone()))?
            } else {
                let f: Vec<f32> = values.iter().map(|&v| f32::from(v) * scale).collect();
                dense_bytes(t.ty, &f, cols)?
            };
            sink(&bytes)
        }
    }
}

fn build(s: &SynthSpec) -> Result<SynthModel> {
    let metadata = synth_metadata(s)?;
    let mut tensors = Vec::new();
    for t in plan_tensors(s) {
        let mut bytes = Vec::new();
        generate_tensor(s, &t, usize::MAX, &mut |b| {
            bytes.extend_from_slice(b);
            Ok(())
        })?;
        tensors.push(SynthTensor {
            name: t.name,
            dims: t.dims,
            ty: t.ty,
            bytes,
        });
    }
    Ok(SynthModel { metadata, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_whatever_the_storage() {
        let mut spec = SynthSpec::tiny(Architecture::Bitnet25);
        let a = SynthModel::new(&spec).unwrap();
        spec.weight_type = TensorType::F32;
        let b = SynthModel::new(&spec).unwrap();
        let ta = a
            .tensors
            .iter()
            .find(|t| t.name == "blk.1.ffn_down.weight")
            .unwrap();
        let tb = b
            .tensors
            .iter()
            .find(|t| t.name == "blk.1.ffn_down.weight")
            .unwrap();
        let wa = crate::quant::ternary::unpack_ternary(ta.ty, &ta.dims, &ta.bytes).unwrap();
        let fb: Vec<f32> = tb
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(wa.dequantize(), fb);
        assert!(a.to_gguf().unwrap().starts_with(b"GGUF"));
    }

    #[test]
    fn sparse_groups_hold_one_zero() {
        let mut rng = Rng::new(7, "x");
        let (rows, cols) = (5, 128);
        let v = ternary_values(&mut rng, rows, cols, true);
        for g in v.chunks_exact(4) {
            assert_eq!(g.iter().filter(|&&x| x == 0).count(), 1);
        }
        for r in 0..rows {
            for g in 0..cols / 4 {
                let base = (g / 16) * 64 + g % 16;
                let zeros = (0..4).filter(|p| v[r * cols + base + 16 * p] == 0).count();
                assert_eq!(zeros, 1, "row {r} group {g}");
            }
        }
        assert!(v.contains(&1) && v.contains(&-1));
    }
}
