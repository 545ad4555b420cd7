//! Models: configuration from metadata, weights as typed views of the file, and the
//! forward pass. This module knows typed matrices and kernel entry points, not bytes or
//! CPUs.

pub mod attention;
pub mod config;
pub mod forward;
pub mod hparams;
pub mod kv_cache;
pub mod linear;
pub mod norm;
pub mod numerics;
pub mod rope;
pub mod synth;
pub mod synth_file;
pub mod synth_vocab;
pub mod weights;

use std::path::Path;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;
pub use config::{Architecture, FfnActivation, ModelConfig, RopeStyle};
pub use hparams::ModelInfo;
pub use kv_cache::{KvCache, KvType};
pub use weights::ModelWeights;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadParams {
    /// Read only the metadata and tokenizer (no weights are checked or used).
    pub vocab_only: bool,
    /// Memory-map the file (else read it into memory).
    pub use_mmap: bool,
}

impl Default for LoadParams {
    fn default() -> Self {
        LoadParams {
            vocab_only: false,
            use_mmap: true,
        }
    }
}

/// A loaded model: immutable after load, shareable across threads.
pub struct Model {
    file: GgufFile,
    info: ModelInfo,
    /// Configuration and weights; `None` for a vocab-only load.
    runnable: Option<(ModelConfig, ModelWeights)>,
    tokenizer: Option<Tokenizer>,
}

impl Model {
    /// Opens `path`, reads its description and (unless `vocab_only`) checks and maps
    /// every weight the forward pass needs. Any problem with the model is reported here.
    pub fn load(path: impl AsRef<Path>, params: &LoadParams) -> Result<Model> {
        let path = path.as_ref();
        let file = if params.use_mmap {
            GgufFile::open(path)?
        } else {
            let bytes =
                std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            GgufFile::from_bytes(bytes).map_err(|e| e.context(path.display()))?
        };
        Model::from_file(file, params).map_err(|e| e.context(path.display()))
    }

    /// Builds a model from an opened GGUF file (e.g. one held in memory).
    pub fn from_file(file: GgufFile, params: &LoadParams) -> Result<Model> {
        let info = ModelInfo::from_gguf(&file)?;
        // Built when the file has `tokenizer.ggml.model`; a bad tokenizer fails the load.
        let tokenizer = Tokenizer::from_gguf_if_present(&file)?;
        let runnable = if params.vocab_only {
            None
        } else {
            let config = ModelConfig::from_gguf(&file)?;
            let weights = ModelWeights::load(&file, &config)?;
            Some((config, weights))
        };
        Ok(Model {
            file,
            info,
            runnable,
            tokenizer,
        })
    }

    /// The GGUF file the model was loaded from.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Hyper-parameters.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The checked configuration, or `None` for a vocab-only load.
    pub fn config(&self) -> Option<&ModelConfig> {
        self.runnable.as_ref().map(|(c, _)| c)
    }

    /// The weights, or `None` for a vocab-only load.
    pub fn weights(&self) -> Option<&ModelWeights> {
        self.runnable.as_ref().map(|(_, w)| w)
    }

    /// The tokenizer from the file's metadata; `None` if it has no `tokenizer.ggml.model`.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }
}
