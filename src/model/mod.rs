//! Models: hyper-parameters from metadata and (to come) the forward pass. This module
//! knows typed matrices and `kernels::` entry points, not bytes or CPUs.

pub mod hparams;

use std::path::Path;

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;
pub use hparams::ModelInfo;

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
    tokenizer: Option<Tokenizer>,
}

impl Model {
    /// Opens `path` and reads its description.
    pub fn load(path: impl AsRef<Path>, params: &LoadParams) -> Result<Model> {
        let path = path.as_ref();
        let file = if params.use_mmap {
            GgufFile::open(path)?
        } else {
            let bytes =
                std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            GgufFile::from_bytes(bytes).map_err(|e| e.context(path.display()))?
        };
        let info = ModelInfo::from_gguf(&file).map_err(|e| e.context(path.display()))?;
        // Built when the file has `tokenizer.ggml.model`; a bad tokenizer fails the load.
        let tokenizer =
            Tokenizer::from_gguf_if_present(&file).map_err(|e| e.context(path.display()))?;
        Ok(Model {
            file,
            info,
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

    /// The tokenizer from the file's metadata; `None` if it has no `tokenizer.ggml.model`.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }
}
