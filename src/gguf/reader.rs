//! Parsing a GGUF header (metadata and tensor infos) out of a byte slice.
//!
//! Nothing read from the file is trusted: every count is checked against the bytes that
//! remain before anything is allocated for it, every size is computed with checked
//! arithmetic, and every error names what was being read and at which byte offset.

use std::collections::HashMap;

use super::value::{Array, Value, ValueType};
use crate::error::{Error, Result};
use crate::quant::TensorType;

/// `"GGUF"` read as a little-endian u32.
pub const GGUF_MAGIC: u32 = 0x4655_4747;
/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
pub const MAX_DIMS: usize = 4;
/// Arrays nest at most this deep (a guard against stack exhaustion from hostile files).
const MAX_ARRAY_DEPTH: usize = 8;

/// One entry of the tensor directory, with its type resolved and its size computed.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml's ne: `dims[0]` is the contiguous dimension (columns of a weight matrix).
    pub dims: Vec<u64>,
    /// The type id as written in the file.
    pub type_id: u32,
    /// What we read the id as.
    pub ty: TensorType,
    /// Offset of the tensor's bytes from the start of the data section.
    pub offset: u64,
    /// Bytes the tensor occupies, from its type and shape.
    pub nbytes: u64,
    /// Set when the id could mean several types and the size decided which one.
    pub type_note: Option<String>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    pub alignment: u64,
    /// Absolute file offset where the tensor data section starts.
    pub data_offset: u64,
    /// Absolute file offset where the header (before padding) ends.
    pub header_end: u64,
}

impl Header {
    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor info named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }
}

/// A bounds-checked reader over the file's bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::format(format!(
                "truncated file: {} needs {n} bytes at offset {}, but the file has {} bytes",
                what(),
                self.pos,
                self.buf.len()
            )));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        Ok(b.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length, then bytes.
    fn bytes(&mut self, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let at = self.pos;
        let len = self.u64(&|| format!("the length of {}", what()))?;
        if len > self.remaining() {
            return Err(Error::format(format!(
                "{} at offset {at} claims {len} bytes, but only {} remain in the file",
                what(),
                self.remaining()
            )));
        }
        self.take(len, what)
    }

    fn utf8(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let at = self.pos;
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|e| {
            Error::format(format!(
                "{} at offset {at} is not valid UTF-8 (bad byte at {})",
                what(),
                e.utf8_error().valid_up_to()
            ))
        })
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit in what remains.
    fn check_count(&self, count: u64, min_size: u64, what: &dyn Fn() -> String) -> Result<()> {
        match count.checked_mul(min_size) {
            Some(bytes) if bytes <= self.remaining() => Ok(()),
            _ => Err(Error::format(format!(
                "{} at offset {} claims {count} items, but only {} bytes remain in the file (truncated or corrupt)",
                what(),
                self.pos,
                self.remaining()
            ))),
        }
    }

    fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType> {
        let at = self.pos;
        let id = self.u32(&|| format!("the value type of {}", what()))?;
        ValueType::from_id(id).ok_or_else(|| {
            Error::format(format!(
                "{} has unknown value type {id} at offset {at}",
                what()
            ))
        })
    }

    fn value(&mut self, ty: ValueType, what: &dyn Fn() -> String, depth: usize) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.array::<1>(what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(Error::format(format!(
                            "{} at offset {at} is a bool with value {b} (must be 0 or 1)",
                            what()
                        )))
                    }
                }
            }
            ValueType::String => Value::String(self.bytes(what)?.to_vec()),
            ValueType::Array => Value::Array(self.array_value(what, depth + 1)?),
        })
    }

    fn array_value(&mut self, what: &dyn Fn() -> String, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(Error::format(format!(
                "{} nests arrays deeper than {MAX_ARRAY_DEPTH} levels (offset {})",
                what(),
                self.pos
            )));
        }
        let elem = self.value_type(what)?;
        let count = self.u64(&|| format!("the element count of {}", what()))?;
        self.check_count(count, elem.min_size(), &|| format!("array {}", what()))?;
        let n = count as usize; // fits: bounded by the remaining bytes
        let item = |i: usize| move || format!("{} element {i}", what());
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let raw = self.take(count * std::mem::size_of::<$t>() as u64, what)?;
                Array::$variant(
                    raw.chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("exact chunk")))
                        .collect(),
                )
            }};
        }
        Ok(match elem {
            ValueType::U8 => Array::U8(self.take(count, what)?.to_vec()),
            ValueType::I8 => Array::I8(self.take(count, what)?.iter().map(|&b| b as i8).collect()),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    match self.value(ValueType::Bool, &item(i), depth)? {
                        Value::Bool(b) => v.push(b),
                        _ => unreachable!("a bool read gives a bool"),
                    }
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(self.bytes(&item(i))?.to_vec());
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(self.array_value(&item(i), depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

/// Rounds `x` up to a multiple of `align` (a power of two), or `None` on overflow.
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// A tensor info as read, before its type is resolved.
struct RawTensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    offset: u64,
    info_at: usize,
}

/// Parses the header of a GGUF file held in `buf` (the whole file) and checks that every
/// tensor lies inside the file, aligned and without overlap.
pub fn parse_header(buf: &[u8]) -> Result<Header> {
    let mut c = Cursor { buf, pos: 0 };
    let magic = c.u32(&|| "the magic number".into())?;
    if magic != GGUF_MAGIC {
        return Err(Error::format(format!(
            "not a GGUF file: the magic number is {:02x?}, expected \"GGUF\"",
            magic.to_le_bytes()
        )));
    }
    let version = c.u32(&|| "the version".into())?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Error::unsupported(
                "GGUF version 1 is not supported (it predates 64-bit counts); convert the file with a current llama.cpp",
            ))
        }
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(Error::unsupported(
                "big-endian GGUF files are not supported; convert with gguf-py's gguf_convert_endian.py",
            ))
        }
        v => {
            return Err(Error::unsupported(format!(
                "GGUF version {v} is not supported (this build reads versions 2 and 3)"
            )))
        }
    }
    let n_tensors = c.u64(&|| "the tensor count".into())?;
    let n_kv = c.u64(&|| "the metadata count".into())?;
    // A metadata pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info
    // at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    c.check_count(n_kv, 13, &|| "the metadata section".into())?;
    c.check_count(n_tensors, 24, &|| "the tensor directory".into())?;

    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut key_index = HashMap::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = c.utf8(&|| format!("metadata key #{i}"))?;
        let what = || format!("metadata value of '{key}'");
        let ty = c.value_type(&what)?;
        let value = c.value(ty, &what, 0)?;
        if key_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(Error::format(format!(
                "duplicate metadata key '{key}' (pair #{i}, ending at offset {})",
                c.pos
            )));
        }
        metadata.push((key, value));
    }

    let alignment = match key_index.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(&i) => {
            let v = &metadata[i].1;
            match v.as_u64() {
                Some(a) if a.is_power_of_two() && a <= 1 << 30 => a,
                _ => {
                    return Err(Error::format(format!(
                        "general.alignment must be a power of two up to 2^30, got {v}"
                    )))
                }
            }
        }
    };

    let mut raw = Vec::with_capacity(n_tensors as usize);
    let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let info_at = c.pos;
        let name = c.utf8(&|| format!("the name of tensor #{i}"))?;
        let what = || format!("tensor '{name}'");
        let n_dims = c.u32(&|| format!("the dimension count of {}", what()))?;
        if n_dims as usize > MAX_DIMS {
            return Err(Error::format(format!(
                "{} has {n_dims} dimensions; at most {MAX_DIMS} are allowed (offset {info_at})",
                what()
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(c.u64(&|| format!("dimension {d} of {}", what()))?);
        }
        if let Some(d) = dims.iter().position(|&d| d == 0) {
            return Err(Error::format(format!(
                "{} has a dimension of 0 (dimension {d}, shape {dims:?})",
                what()
            )));
        }
        let n_elements = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if n_elements.is_none_or(|n| n > i64::MAX as u64) {
            return Err(Error::format(format!(
                "{} has shape {dims:?}, whose element count overflows",
                what()
            )));
        }
        let type_id = c.u32(&|| format!("the type of {}", what()))?;
        let offset = c.u64(&|| format!("the data offset of {}", what()))?;
        if offset % alignment != 0 {
            return Err(Error::format(format!(
                "{} has data offset {offset}, which is not a multiple of the alignment {alignment}",
                what()
            )));
        }
        if tensor_index.insert(name.clone(), raw.len()).is_some() {
            return Err(Error::format(format!(
                "duplicate tensor name '{name}' (tensor #{i} at offset {info_at})"
            )));
        }
        raw.push(RawTensor {
            name,
            dims,
            type_id,
            offset,
            info_at,
        });
    }
    let header_end = c.pos as u64;
    let data_offset = align_up(header_end, alignment).expect("header end is small");
    let file_len = buf.len() as u64;
    let data_len = file_len.saturating_sub(data_offset);
    if !raw.is_empty() && data_offset > file_len {
        return Err(Error::format(format!(
            "truncated file: the tensor data should start at offset {data_offset}, but the file has {file_len} bytes"
        )));
    }

    let tensors = resolve_tensors(raw, data_len, alignment)?;
    Ok(Header {
        version,
        metadata,
        key_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
        header_end,
    })
}

/// Resolves each tensor's type from its id (using its stored size where the id is
/// ambiguous), computes its byte size and checks bounds and overlaps.
fn resolve_tensors(raw: Vec<RawTensor>, data_len: u64, alignment: u64) -> Result<Vec<TensorInfo>> {
    // Space available to each tensor: up to the next tensor's offset or the end of the data.
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by_key(|&i| raw[i].offset);
    let mut room = vec![0u64; raw.len()];
    for (k, &i) in order.iter().enumerate() {
        let end = order.get(k + 1).map_or(data_len, |&j| raw[j].offset);
        room[i] = end.saturating_sub(raw[i].offset);
    }

    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let (ty, nbytes, note) = resolve_type(&r, room[i], alignment)?;
        let end = r.offset.checked_add(nbytes).filter(|&e| e <= data_len);
        if end.is_none() {
            return Err(Error::format(format!(
                "tensor '{}' ({} {:?}, {nbytes} bytes at data offset {}) runs past the end of the file (the data section holds {data_len} bytes)",
                r.name, ty, r.dims, r.offset
            )));
        }
        out.push(TensorInfo {
            name: r.name,
            dims: r.dims,
            type_id: r.type_id,
            ty,
            offset: r.offset,
            nbytes,
            type_note: note,
        });
    }
    for w in order.windows(2) {
        let (a, b) = (&out[w[0]], &out[w[1]]);
        if a.offset + a.nbytes > b.offset {
            return Err(Error::format(format!(
                "tensors '{}' (data offset {}, {} bytes) and '{}' (data offset {}) overlap",
                a.name, a.offset, a.nbytes, b.name, b.offset
            )));
        }
    }
    Ok(out)
}

fn resolve_type(
    r: &RawTensor,
    room: u64,
    alignment: u64,
) -> Result<(TensorType, u64, Option<String>)> {
    let candidates = TensorType::candidates_for_id(r.type_id);
    let sized = |ty: TensorType| {
        ty.nbytes(&r.dims).map_err(|why| {
            Error::format(format!(
                "tensor '{}' of type {ty} has shape {:?} that the type cannot hold: {why}",
                r.name, r.dims
            ))
        })
    };
    match candidates.as_slice() {
        [] => Err(Error::unsupported(format!(
            "tensor '{}' has unknown type id {} (tensor info at offset {})",
            r.name, r.type_id, r.info_at
        ))),
        [only] => Ok((*only, sized(*only)?, None)),
        several => {
            // A writer places the next tensor at the next aligned offset, so the room of
            // the right interpretation lies between its size and its aligned size.
            let fits: Vec<(TensorType, u64)> = several
                .iter()
                .filter_map(|&ty| ty.nbytes(&r.dims).ok().map(|n| (ty, n)))
                .filter(|&(_, n)| n <= room && align_up(n, alignment).is_some_and(|a| room <= a))
                .collect();
            let sizes = several
                .iter()
                .map(|&ty| match ty.nbytes(&r.dims) {
                    Ok(n) => format!("{ty} needs {n}"),
                    Err(_) => format!("{ty} cannot hold the shape"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            match fits.as_slice() {
                [(ty, n)] => Ok((
                    *ty,
                    *n,
                    Some(format!(
                        "type id {} read as {ty}: the tensor has {room} bytes of room ({sizes})",
                        r.type_id
                    )),
                )),
                [] => Err(Error::format(format!(
                    "tensor '{}' has type id {}, but its {room} bytes of room fit none of its meanings ({sizes})",
                    r.name, r.type_id
                ))),
                _ => Err(Error::format(format!(
                    "tensor '{}' has type id {}, and its {room} bytes of room fit several meanings ({sizes}); refusing to guess",
                    r.name, r.type_id
                ))),
            }
        }
    }
}
