//! GGUF: reading (memory-mapped, validated) and writing (streamed) files.
//!
//! The reader trusts nothing in the file; see [`reader`] for the checks it makes.

pub mod file;
pub mod reader;
pub mod value;
pub mod writer;

pub use file::{GgufFile, TensorView};
pub use reader::{parse_header, Header, TensorInfo, DEFAULT_ALIGNMENT};
pub use value::{Array, Value, ValueType};
pub use writer::{GgufWriter, PlannedTensor, TensorDataWriter};
