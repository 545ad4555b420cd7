//! The key/value cache: for every layer, the rotated keys and the values of every
//! position seen so far, in f16 (llama.cpp's default, and bitnet.cpp's in the reference
//! runs) or f32. Allocated once at context creation; rewinding only moves the length.

use half::f16;

use super::memory::try_filled_vec;
use crate::error::{Error, Result};

/// Element type of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    /// IEEE half precision (values are rounded to nearest even when stored).
    #[default]
    F16,
    /// Single precision.
    F32,
}

impl KvType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            KvType::F16 => 2,
            KvType::F32 => 4,
        }
    }

    /// Reads `f16` / `f32` (case-insensitive).
    pub fn from_name(name: &str) -> Option<KvType> {
        match name.to_ascii_lowercase().as_str() {
            "f16" => Some(KvType::F16),
            "f32" => Some(KvType::F32),
            _ => None,
        }
    }
}

/// Storage of one cache tensor (all layers).
#[derive(Debug, Clone)]
enum Store {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl Store {
    fn new(ty: KvType, n: usize) -> Result<Store> {
        Ok(match ty {
            KvType::F16 => Store::F16(try_filled_vec(n, f16::ZERO, "the KV cache")?),
            KvType::F32 => Store::F32(try_filled_vec(n, 0.0, "the KV cache")?),
        })
    }

    fn write(&mut self, at: usize, row: &[f32]) {
        match self {
            Store::F16(v) => {
                for (d, &s) in v[at..at + row.len()].iter_mut().zip(row) {
                    *d = f16::from_f32(s);
                }
            }
            Store::F32(v) => v[at..at + row.len()].copy_from_slice(row),
        }
    }

    fn rows(&self, at: usize, len: usize) -> KvRows<'_> {
        match self {
            Store::F16(v) => KvRows::F16(&v[at..at + len]),
            Store::F32(v) => KvRows::F32(&v[at..at + len]),
        }
    }
}

/// A run of cached rows (positions) of one layer, `dim` elements per position.
#[derive(Debug, Clone, Copy)]
pub enum KvRows<'a> {
    /// Half-precision storage.
    F16(&'a [f16]),
    /// Single-precision storage.
    F32(&'a [f32]),
}

/// Keys and values of every layer for up to `n_ctx` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    ty: KvType,
    n_ctx: usize,
    n_layer: usize,
    k_dim: usize,
    v_dim: usize,
    k: Store,
    v: Store,
    len: usize,
}

impl KvCache {
    /// A cache for `n_layer` layers of `n_ctx` positions, `k_dim` / `v_dim` values per
    /// position. Fails (instead of aborting) when the allocation is impossibly large.
    pub fn new(
        ty: KvType,
        n_ctx: usize,
        n_layer: usize,
        k_dim: usize,
        v_dim: usize,
    ) -> Result<KvCache> {
        let elems = |dim: usize| {
            n_ctx
                .checked_mul(n_layer)
                .and_then(|x| x.checked_mul(dim))
                .filter(|&x| {
                    x.checked_mul(ty.size())
                        .is_some_and(|b| b <= isize::MAX as usize)
                })
                .ok_or_else(|| {
                    Error::OutOfMemory(format!(
                        "a KV cache of {n_ctx} positions x {n_layer} layers x {dim} is too large"
                    ))
                })
        };
        let (nk, nv) = (elems(k_dim)?, elems(v_dim)?);
        Ok(KvCache {
            ty,
            n_ctx,
            n_layer,
            k_dim,
            v_dim,
            k: Store::new(ty, nk)?,
            v: Store::new(ty, nv)?,
            len: 0,
        })
    }

    /// Bytes a cache of this shape takes; `None` when the size overflows.
    pub fn bytes_needed(
        ty: KvType,
        n_ctx: usize,
        n_layer: usize,
        k_dim: usize,
        v_dim: usize,
    ) -> Option<usize> {
        n_ctx
            .checked_mul(n_layer)?
            .checked_mul(k_dim.checked_add(v_dim)?)?
            .checked_mul(ty.size())
    }

    /// Element type.
    pub fn kv_type(&self) -> KvType {
        self.ty
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.n_ctx
    }

    /// Positions filled so far (the next token goes to position `len()`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of cache storage.
    pub fn memory_bytes(&self) -> usize {
        self.n_ctx * self.n_layer * (self.k_dim + self.v_dim) * self.ty.size()
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `n` positions (rewind). `n` larger than the length is an error.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n > self.len {
            return Err(Error::invalid(format!(
                "cannot truncate the KV cache to {n} positions: it holds {}",
                self.len
            )));
        }
        self.len = n;
        Ok(())
    }

    /// Stores the key and value rows of position `pos` of `layer`. Positions must be
    /// written in order, for every layer, before [`KvCache::advance`] commits them.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        debug_assert!(layer < self.n_layer && pos < self.n_ctx);
        debug_assert!(k.len() == self.k_dim && v.len() == self.v_dim);
        let slot = layer * self.n_ctx + pos;
        self.k.write(slot * self.k_dim, k);
        self.v.write(slot * self.v_dim, v);
    }

    /// The keys of positions `0..n` of `layer` (`k_dim` per position).
    pub fn keys(&self, layer: usize, n: usize) -> KvRows<'_> {
        self.k.rows(layer * self.n_ctx * self.k_dim, n * self.k_dim)
    }

    /// The values of positions `0..n` of `layer` (`v_dim` per position).
    pub fn values(&self, layer: usize, n: usize) -> KvRows<'_> {
        self.v.rows(layer * self.n_ctx * self.v_dim, n * self.v_dim)
    }

    /// Commits `n` newly stored positions.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.n_ctx);
        self.len += n;
    }

    /// Key row length.
    pub fn k_dim(&self) -> usize {
        self.k_dim
    }

    /// Value row length.
    pub fn v_dim(&self) -> usize {
        self.v_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_read_truncate() {
        let mut c = KvCache::new(KvType::F16, 4, 2, 3, 2).unwrap();
        assert_eq!(c.memory_bytes(), 4 * 2 * 5 * 2);
        c.store(1, 0, &[1.0, 2.0, 1.0 / 3.0], &[4.0, 5.0]);
        c.advance(1);
        let KvRows::F16(k) = c.keys(1, 1) else {
            panic!()
        };
        assert_eq!(k[2], f16::from_f32(1.0 / 3.0));
        assert_eq!(c.len(), 1);
        assert!(c.truncate(2).is_err());
        c.truncate(0).unwrap();
        assert!(c.is_empty());
        let c32 = KvCache::new(KvType::F32, 2, 1, 1, 1).unwrap();
        assert!(matches!(c32.values(0, 2), KvRows::F32(v) if v.len() == 2));
        assert!(KvCache::new(KvType::F32, usize::MAX / 2, 4, 8, 8).is_err());
    }
}
