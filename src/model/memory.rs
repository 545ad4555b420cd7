//! Fallible allocation for the large buffers of a context (KV cache, scratch, logits).
//! Their sizes come from the caller (`n_ctx`, `n_batch`) and the model file, so a size
//! that cannot be allocated must be an [`Error::OutOfMemory`], never an abort: sizes are
//! computed with checked arithmetic, compared with the machine's physical memory before
//! anything is allocated, and allocated with `try_reserve`.

use crate::error::{Error, Result};

/// Bytes of physical memory (`MemTotal` of `/proc/meminfo`); `None` where it cannot be
/// read (then only the allocator can refuse).
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Refuses `bytes` (`None`: the size overflowed) when it exceeds the physical memory.
pub fn check_fits(bytes: Option<usize>, what: &str) -> Result<usize> {
    let bytes = bytes.ok_or_else(|| {
        Error::OutOfMemory(format!("{what}: the size overflows the address space"))
    })?;
    if let Some(total) = physical_memory() {
        if bytes as u64 > total {
            return Err(Error::OutOfMemory(format!(
                "{what} needs {bytes} bytes, more than the {total} bytes of physical memory"
            )));
        }
    }
    Ok(bytes)
}

/// A vector of `n` copies of `fill`, or [`Error::OutOfMemory`] naming `what` when the
/// allocator refuses.
pub fn try_filled_vec<T: Clone>(n: usize, fill: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| {
        Error::OutOfMemory(format!(
            "{what}: cannot allocate {n} elements of {} bytes ({e})",
            std::mem::size_of::<T>()
        ))
    })?;
    v.resize(n, fill);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(matches!(
            check_fits(None, "x"),
            Err(Error::OutOfMemory(m)) if m.contains("overflows")
        ));
        if physical_memory().is_some() {
            assert!(check_fits(Some(usize::MAX / 2), "x").is_err());
        }
        assert_eq!(check_fits(Some(1024), "x").unwrap(), 1024);
        assert!(try_filled_vec(usize::MAX / 4, 0u32, "x").is_err());
        assert_eq!(try_filled_vec(3, 7u8, "x").unwrap(), vec![7, 7, 7]);
    }
}
