//! A GGUF file opened for reading: the parsed header plus the file's bytes, memory-mapped,
//! with tensors handed out as zero-copy views.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::reader::{parse_header, Header, TensorInfo};
use super::value::Value;
use crate::error::{Error, Result};

/// Where the file's bytes live.
enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// An open GGUF file.
pub struct GgufFile {
    storage: Storage,
    header: Header,
    path: Option<PathBuf>,
}

/// A tensor's directory entry and its bytes.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

impl GgufFile {
    /// Opens and memory-maps `path`, parses and validates the header.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let ctx = || path.display().to_string();
        let file = File::open(path).map_err(|e| Error::Io(format!("{}: {e}", ctx())))?;
        let len = file
            .metadata()
            .map_err(|e| Error::Io(format!("{}: {e}", ctx())))?
            .len();
        if len == 0 {
            return Err(Error::format(format!("{}: the file is empty", ctx())));
        }
        // SAFETY: the map is read-only and lives as long as `GgufFile`. Another process
        // truncating or rewriting the file while it is mapped would change the bytes under
        // us (or fault on access); this is the usual contract of mmap-based loaders
        // (llama.cpp has the same one), documented in the C header.
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| Error::Io(format!("{}: mmap: {e}", ctx())))?;
        let header = parse_header(&map).map_err(|e| e.context(ctx()))?;
        Ok(GgufFile {
            storage: Storage::Mapped(map),
            header,
            path: Some(path.to_path_buf()),
        })
    }

    /// Parses a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        let header = parse_header(&bytes)?;
        Ok(GgufFile {
            storage: Storage::Owned(bytes),
            header,
            path: None,
        })
    }

    /// The path the file was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// Metadata pairs in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.header.metadata
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.get(key)
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// Tells the OS that the bytes `range` of the file will not be read again soon (a
    /// tensor copied into memory at load, such as a repacked TL1/TL2 weight), so that the
    /// whole pages inside it can leave the process's resident set; a later read pages them
    /// back in from the file. Advisory: nothing happens for a file held in memory, on
    /// non-Unix systems, or when the OS refuses.
    pub fn release(&self, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        if let Storage::Mapped(map) = &self.storage {
            // Whole 4 KiB units inside the range (the map starts on a page boundary).
            const UNIT: usize = 4096;
            let start = range.start.div_ceil(UNIT) * UNIT;
            let end = range.end.min(map.len()) / UNIT * UNIT;
            if start < end {
                // SAFETY: the map is read-only (MAP_SHARED, PROT_READ) and never written,
                // so MADV_DONTNEED drops clean page-cache pages that the next access maps
                // again from the file: every byte any live borrow sees keeps its value
                // (under the same contract as the map itself, see `open`).
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
        #[cfg(not(unix))]
        let _ = range;
    }

    /// The bytes of the tensor described by `info` (an entry of this file's directory).
    pub fn data_of(&self, info: &TensorInfo) -> &[u8] {
        // Bounds were checked at parse time: offset + nbytes <= data section length.
        let start = (self.header.data_offset + info.offset) as usize;
        &self.bytes()[start..start + info.nbytes as usize]
    }

    /// The tensor named `name`, with its bytes.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let info = self.header.tensor(name)?;
        Some(TensorView {
            info,
            data: self.data_of(info),
        })
    }

    /// The tensor named `name`, or an error that names it.
    pub fn require_tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.tensor(name)
            .ok_or_else(|| Error::model(format!("required tensor '{name}' is missing")))
    }
}
