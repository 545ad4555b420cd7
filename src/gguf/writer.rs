//! Writing GGUF v3 files: metadata, tensor directory, then tensor data streamed in order,
//! so a multi-gigabyte model can be written in constant memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::reader::{align_up, DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS};
use super::value::{Array, Value};
use crate::error::{Error, Result};
use crate::quant::TensorType;

/// A tensor announced in the directory.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: TensorType,
    /// The id written into the file (normally `ty.id()`).
    pub type_id: u32,
    pub offset: u64,
    pub nbytes: u64,
}

/// Builds the header of a GGUF file: metadata and tensor directory.
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<PlannedTensor>,
    next_offset: u64,
}

impl GgufWriter {
    /// An empty file description.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Sets `key` (replacing an earlier value under the same key, keeping its position).
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.metadata.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.metadata.push((key.to_string(), value));
        }
    }

    /// Metadata in the order it will be written.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The directory as planned.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    fn alignment(&self) -> Result<u64> {
        match self.metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some((_, v)) => match v {
                Value::U32(a) if a.is_power_of_two() => Ok(*a as u64),
                _ => Err(Error::invalid(
                    "general.alignment must be a u32 power of two",
                )),
            },
        }
    }

    /// Announces a tensor of type `ty`; its data must later be written in announce order.
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: TensorType) -> Result<()> {
        self.add_tensor_with_id(name, dims, ty, ty.id())
    }

    /// As [`add_tensor`](Self::add_tensor), writing `type_id` as the id (for producing
    /// files that use another producer's numbering, e.g. STQ1_0 as 42).
    pub fn add_tensor_with_id(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: TensorType,
        type_id: u32,
    ) -> Result<()> {
        if dims.is_empty() || dims.len() > MAX_DIMS || dims.contains(&0) {
            return Err(Error::invalid(format!(
                "tensor '{name}': shape {dims:?} must have 1 to {MAX_DIMS} non-zero dimensions"
            )));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(Error::invalid(format!(
                "tensor '{name}' is already in the file"
            )));
        }
        let nbytes = ty
            .nbytes(dims)
            .map_err(|why| Error::invalid(format!("tensor '{name}': {why}")))?;
        let align = self.alignment()?;
        let offset = self.next_offset;
        self.next_offset = offset
            .checked_add(nbytes)
            .and_then(|e| align_up(e, align))
            .ok_or_else(|| Error::invalid("the file would exceed 2^64 bytes"))?;
        self.tensors.push(PlannedTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            type_id,
            offset,
            nbytes,
        });
        Ok(())
    }

    /// Serializes the header (up to and including the padding before the data section).
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let align = self.alignment()?;
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_bytes(&mut out, k.as_bytes());
            out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut out, v);
        }
        for t in &self.tensors {
            put_bytes(&mut out, t.name.as_bytes());
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        let padded = align_up(out.len() as u64, align).expect("header is small") as usize;
        out.resize(padded, 0);
        Ok(out)
    }

    /// Writes the header to `sink` and returns a writer for the tensor data.
    pub fn begin<W: Write>(self, mut sink: W) -> Result<TensorDataWriter<W>> {
        let header = self.header_bytes()?;
        sink.write_all(&header)?;
        let align = self.alignment()?;
        Ok(TensorDataWriter {
            sink,
            tensors: self.tensors,
            next: 0,
            written: 0,
            align,
        })
    }

    /// Writes a whole file whose tensor data is in memory, in directory order.
    pub fn write_file(self, path: impl AsRef<Path>, data: &[&[u8]]) -> Result<()> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let mut w = self.begin(BufWriter::new(file))?;
        for d in data {
            w.write_tensor(d)?;
        }
        w.finish()?.flush()?;
        Ok(())
    }
}

/// Where [`TensorDataWriter::write_tensor_streamed`]'s producer hands its pieces.
pub type PieceSink<'a> = dyn FnMut(&[u8]) -> Result<()> + 'a;

/// Streams tensor data after the header, in the directory's order, with padding.
pub struct TensorDataWriter<W: Write> {
    sink: W,
    tensors: Vec<PlannedTensor>,
    next: usize,
    written: u64,
    align: u64,
}

impl<W: Write> TensorDataWriter<W> {
    /// The tensor whose data comes next, if any.
    pub fn next_tensor(&self) -> Option<&PlannedTensor> {
        self.tensors.get(self.next)
    }

    /// Writes the whole data of the next tensor.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<()> {
        self.write_tensor_parts(&[data])
    }

    /// Writes the next tensor's data given in pieces (their lengths must add up to its size).
    pub fn write_tensor_parts(&mut self, parts: &[&[u8]]) -> Result<()> {
        let t = self
            .tensors
            .get(self.next)
            .ok_or_else(|| Error::invalid("more tensor data than tensors announced"))?;
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if len != t.nbytes {
            return Err(Error::invalid(format!(
                "tensor '{}' ({} {:?}) needs {} bytes, got {len}",
                t.name, t.ty, t.dims, t.nbytes
            )));
        }
        debug_assert_eq!(self.written, t.offset);
        for p in parts {
            self.sink.write_all(p)?;
        }
        let end = t.offset + t.nbytes;
        let padded = align_up(end, self.align).expect("checked when planned");
        self.sink.write_all(&vec![0u8; (padded - end) as usize])?;
        self.written = padded;
        self.next += 1;
        Ok(())
    }

    /// Writes the next tensor's data as `produce` hands it over, piece by piece (so a
    /// tensor larger than memory can be streamed); the pieces must add up to its size.
    pub fn write_tensor_streamed(
        &mut self,
        produce: &mut dyn FnMut(&mut PieceSink<'_>) -> Result<()>,
    ) -> Result<()> {
        let t = self
            .tensors
            .get(self.next)
            .ok_or_else(|| Error::invalid("more tensor data than tensors announced"))?
            .clone();
        debug_assert_eq!(self.written, t.offset);
        let mut len = 0u64;
        let sink = &mut self.sink;
        produce(&mut |piece: &[u8]| {
            len += piece.len() as u64;
            if len > t.nbytes {
                return Err(Error::invalid(format!(
                    "tensor '{}' needs {} bytes, got more",
                    t.name, t.nbytes
                )));
            }
            sink.write_all(piece)?;
            Ok(())
        })?;
        if len != t.nbytes {
            return Err(Error::invalid(format!(
                "tensor '{}' ({} {:?}) needs {} bytes, got {len}",
                t.name, t.ty, t.dims, t.nbytes
            )));
        }
        let end = t.offset + t.nbytes;
        let padded = align_up(end, self.align).expect("checked when planned");
        self.sink.write_all(&vec![0u8; (padded - end) as usize])?;
        self.written = padded;
        self.next += 1;
        Ok(())
    }

    /// Checks that every announced tensor was written and returns the sink.
    pub fn finish(self) -> Result<W> {
        if self.next != self.tensors.len() {
            return Err(Error::invalid(format!(
                "only {} of {} tensors were written",
                self.next,
                self.tensors.len()
            )));
        }
        Ok(self.sink)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::String(b) => put_bytes(out, b),
        Value::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::String(v) => {
            for s in v {
                put_bytes(out, s);
            }
        }
        Array::Array(v) => {
            for inner in v {
                put_array(out, inner);
            }
        }
    }
}
