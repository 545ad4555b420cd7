//! Synthetic models of real shapes, written straight to a file: the named shapes of the
//! BitNet family (2B4T, 1bitLLM large / 3B, Llama3-8B-1.58) and a streaming writer whose
//! memory stays bounded (dense tensors are generated a few rows at a time, ternary ones one
//! matrix at a time) whatever the model's size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::config::Architecture;
use super::synth::{generate_tensor, plan_tensors, synth_metadata, SynthSpec};
use crate::error::{Error, Result};
use crate::gguf::GgufWriter;
use crate::quant::TensorType;

/// A model shape: the sizes that make a synthetic model look like a real one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthShape {
    /// Architecture name written to the file.
    pub arch: Architecture,
    /// Hidden size.
    pub n_embd: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Training context length.
    pub n_ctx_train: usize,
    /// RoPE base.
    pub rope_freq_base: f32,
    /// Whether the head is the embedding.
    pub tied_output: bool,
}

impl SynthShape {
    /// BitNet b1.58 2B4T: hidden 2560, 30 layers, 20 heads over 5 KV heads, FFN 6912,
    /// vocab 128256, tied head.
    pub const BITNET_2B4T: SynthShape = SynthShape {
        arch: Architecture::BitnetB158,
        n_embd: 2560,
        n_ff: 6912,
        n_layer: 30,
        n_head: 20,
        n_head_kv: 5,
        n_vocab: 128256,
        n_ctx_train: 4096,
        rope_freq_base: 500000.0,
        tied_output: true,
    };

    /// A shape by name: `2b4t`, `large` (1bitLLM bitnet_b1_58-large), `3b` (1bitLLM
    /// bitnet_b1_58-3B), `8b` (Llama3-8B-1.58), or `custom(h,ffn,layers,heads,kv_heads,vocab)`
    /// (a `bitnet-b1.58` model).
    pub fn parse(text: &str) -> Result<SynthShape> {
        let bitnet_1bitllm = |n_embd, n_ff, n_layer, n_head| SynthShape {
            arch: Architecture::Bitnet,
            n_embd,
            n_ff,
            n_layer,
            n_head,
            n_head_kv: n_head,
            n_vocab: 32002,
            n_ctx_train: 2048,
            rope_freq_base: 10000.0,
            // bitnet.cpp's `bitnet` architecture has no `output.weight`: it always reads the
            // head from `token_embd` (and refuses a file with an extra tensor).
            tied_output: true,
        };
        let t = text.trim().to_ascii_lowercase();
        let shape = match t.as_str() {
            "2b4t" | "2b" => Self::BITNET_2B4T,
            "large" | "700m" => bitnet_1bitllm(1536, 4096, 24, 16),
            "3b" => bitnet_1bitllm(3200, 8640, 26, 32),
            "8b" => SynthShape {
                arch: Architecture::Llama,
                n_embd: 4096,
                n_ff: 14336,
                n_layer: 32,
                n_head: 32,
                n_head_kv: 8,
                n_vocab: 128256,
                n_ctx_train: 8192,
                rope_freq_base: 500000.0,
                tied_output: false,
            },
            _ => {
                let inner = t
                    .strip_prefix("custom(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "unknown shape '{text}': use 2b4t, large, 3b, 8b or \
                             custom(h,ffn,layers,heads,kv_heads,vocab)"
                        ))
                    })?;
                let v: Vec<usize> = inner
                    .split(',')
                    .map(|x| x.trim().parse::<usize>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| Error::invalid(format!("shape '{text}': six whole numbers")))?;
                if v.len() != 6 || v.contains(&0) {
                    return Err(Error::invalid(format!(
                        "shape '{text}': custom(h,ffn,layers,heads,kv_heads,vocab) takes six \
                         positive numbers"
                    )));
                }
                SynthShape {
                    arch: Architecture::BitnetB158,
                    n_embd: v[0],
                    n_ff: v[1],
                    n_layer: v[2],
                    n_head: v[3],
                    n_head_kv: v[4],
                    n_vocab: v[5],
                    n_ctx_train: 4096,
                    rope_freq_base: 500000.0,
                    tied_output: true,
                }
            }
        };
        Ok(shape)
    }

    /// A spec of this shape with ternary weights of type `weight_type` and the head (the
    /// embedding when tied) stored as `head_type`; with the small vocabulary.
    pub fn spec(&self, weight_type: TensorType, head_type: TensorType, seed: u64) -> SynthSpec {
        SynthSpec {
            arch: self.arch,
            n_vocab: self.n_vocab,
            n_embd: self.n_embd,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            n_ff: self.n_ff,
            n_ctx_train: self.n_ctx_train,
            rope_freq_base: self.rope_freq_base,
            weight_type,
            embd_type: if self.tied_output {
                head_type
            } else {
                TensorType::F16
            },
            head_type,
            tied_output: self.tied_output,
            sparse_3_4: false,
            seed,
            with_vocab: true,
        }
    }
}

/// Dense values generated per piece when streaming (about 4 MiB of f32).
const CHUNK_VALUES: usize = 1 << 20;

/// Writes the model `spec` describes to `path`, streaming: memory stays around the size of
/// the largest ternary matrix. `progress(done, total)` is called with bytes of tensor data.
/// Returns the file's size. A partly written file is removed on error.
pub fn write_synth_file(
    spec: &SynthSpec,
    path: impl AsRef<Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    write_chunked(spec, path.as_ref(), CHUNK_VALUES, progress)
}

fn write_chunked(
    spec: &SynthSpec,
    path: &Path,
    chunk_values: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    let result = write_inner(spec, path, chunk_values, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn write_inner(
    spec: &SynthSpec,
    path: &Path,
    chunk_values: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64> {
    let mut w = GgufWriter::new();
    for (k, v) in synth_metadata(spec)? {
        w.set(&k, v);
    }
    let plan = plan_tensors(spec);
    for t in &plan {
        w.add_tensor(&t.name, &t.dims, t.ty)
            .map_err(|e| e.context(t.name.clone()))?;
    }
    let total: u64 = w.tensors().iter().map(|t| t.nbytes).sum();
    let file = File::create(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let mut dw = w.begin(BufWriter::with_capacity(1 << 20, file))?;
    let mut done = 0u64;
    progress(0, total);
    for t in &plan {
        dw.write_tensor_streamed(&mut |sink| {
            generate_tensor(spec, t, chunk_values, &mut |bytes| {
                sink(bytes)?;
                done += bytes.len() as u64;
                progress(done, total);
                Ok(())
            })
        })?;
    }
    let mut out = dw.finish()?;
    out.flush()?;
    let file = out
        .into_inner()
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::synth::SynthModel;

    #[test]
    fn shapes() {
        assert_eq!(SynthShape::parse("2B4T").unwrap(), SynthShape::BITNET_2B4T);
        let c = SynthShape::parse("custom(256, 512, 2, 4, 2, 600)").unwrap();
        assert_eq!(
            (
                c.n_embd,
                c.n_ff,
                c.n_layer,
                c.n_head,
                c.n_head_kv,
                c.n_vocab
            ),
            (256, 512, 2, 4, 2, 600)
        );
        assert_eq!(SynthShape::parse("8b").unwrap().arch, Architecture::Llama);
        // bitnet.cpp's `bitnet` architecture reads the head from the embedding and refuses a
        // file that also has `output.weight` ("wrong number of tensors").
        for name in ["large", "3b"] {
            let s = SynthShape::parse(name).unwrap();
            assert_eq!(s.arch, Architecture::Bitnet);
            assert!(s.tied_output, "{name}");
        }
        for bad in [
            "9b",
            "custom(1,2,3)",
            "custom(1,2,3,4,5,x)",
            "custom(0,2,3,4,5,6)",
        ] {
            assert!(SynthShape::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn streamed_file_equals_the_in_memory_model() {
        let shape = SynthShape::parse("custom(256,512,2,4,2,600)").unwrap();
        let spec = shape.spec(TensorType::I2_S, TensorType::Q6_K, 3);
        let dir = std::env::temp_dir().join(format!("tern-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.gguf");
        let mut calls = 0;
        // Small pieces: the embedding is generated a few rows at a time.
        let size = write_chunked(&spec, &path, 1000, &mut |d, t| {
            assert!(d <= t);
            calls += 1;
        })
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert!(calls > 2);
        assert_eq!(bytes, SynthModel::new(&spec).unwrap().to_gguf().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
