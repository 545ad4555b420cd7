//! Activations of one token reordered for the STQ1_0 SIMD kernels.
//!
//! An STQ1_0 block's group `16c + m` (chunk `c` = 0..4, `m` = 0..16) holds weights
//! `64c + m + 16p`, lanes `p` = 0..4. Decoded 16 groups at a time, lane `p` of chunk `c`
//! gives the 16 consecutive weights `64c + 16p .. 64c + 16p + 16`; the kernels decode two
//! chunks together (one per 128-bit half, or two 16-byte registers) and multiply lane by
//! lane, so the quants are stored in that order: per 256-block, for chunk pair `cp` (0, 1),
//! for lane `p`, the 16 quants of chunk `2cp` then the 16 of chunk `2cp + 1`.
//!
//! Also kept per block: the Q8_K `d` and `Σ q` (the kernels multiply the weight codes
//! `value + 1` and subtract it).

use super::act::{ActivationFormat, QuantizedActivations, Q8K_BLOCK};
use crate::error::{Error, Result};

/// One token's activations for the STQ1_0 kernels, with reusable buffers.
#[derive(Debug, Clone, Default)]
pub struct Stq1Activations {
    /// The quants, reordered (see the module documentation).
    pub qs: Vec<i8>,
    /// Per 256-block: Q8_K `d`.
    pub d: Vec<f32>,
    /// Per 256-block: `Σ q` as an i32 in two i16 (low half first; see [`block_sum`]).
    pub sums: Vec<i16>,
}

/// One token as the STQ1_0 kernels read it.
#[derive(Debug, Clone, Copy)]
pub struct Stq1Token<'a> {
    /// The reordered quants.
    pub qs: &'a [i8],
    /// Per block `Σ q`, two i16 each ([`block_sum`]).
    pub sums: &'a [i16],
    /// Per block Q8_K `d`.
    pub d: &'a [f32],
}

/// `Σ q` of block `b` from the i16 pairs of [`Stq1Token::sums`].
#[inline]
pub fn block_sum(sums: &[i16], b: usize) -> i32 {
    (sums[2 * b] as u16 as i32) | ((sums[2 * b + 1] as i32) << 16)
}

/// Writes the reordered quants of `q` into `qs` and each block's `Σ q` into `sums` (two
/// i16 per block); the shared step of [`Stq1Activations::prepare`] and the dispatch
/// table's prepare hook.
pub fn reorder_into(q: &[i8], qs: &mut [i8], sums: &mut [i16]) {
    for ((src, dst), s) in q
        .chunks_exact(Q8K_BLOCK)
        .zip(qs.chunks_exact_mut(Q8K_BLOCK))
        .zip(sums.chunks_exact_mut(2))
    {
        let mut sum = 0i32;
        for (i, &v) in src.iter().enumerate() {
            dst[reordered_index(i)] = v;
            sum += v as i32;
        }
        s[0] = sum as u16 as i16;
        s[1] = (sum >> 16) as i16;
    }
}

/// Index into the reordered quants of original quant `i` of a block.
#[inline]
pub fn reordered_index(i: usize) -> usize {
    let (c, p, m) = (i / 64, (i % 64) / 16, i % 16);
    (c / 2) * 128 + p * 32 + (c % 2) * 16 + m
}

impl Stq1Activations {
    /// Fills these buffers from a Q8_K row.
    pub fn prepare(&mut self, acts: &QuantizedActivations) -> Result<()> {
        if acts.format() != ActivationFormat::Q8K {
            return Err(Error::invalid(format!(
                "STQ1_0 kernels need Q8K activations, got {:?}",
                acts.format()
            )));
        }
        let q = acts.qs();
        self.qs.clear();
        self.qs.resize(q.len(), 0);
        self.sums.clear();
        self.sums.resize(q.len() / Q8K_BLOCK * 2, 0);
        reorder_into(q, &mut self.qs, &mut self.sums);
        self.d.clear();
        self.d.extend_from_slice(acts.block_scales());
        Ok(())
    }

    /// The view the kernels read.
    pub fn token(&self) -> Stq1Token<'_> {
        Stq1Token {
            qs: &self.qs,
            sums: &self.sums,
            d: &self.d,
        }
    }

    /// Number of activations.
    pub fn len(&self) -> usize {
        self.qs.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.qs.is_empty()
    }
}

/// The dispatch table's prepare hook for STQ1_0: the row's table buffer gets the reordered
/// quants (`cols` bytes) and then each block's `Σ q` (two i16 per block).
pub fn prepare_stq1(cols: usize, act: &mut QuantizedActivations) {
    let (q, lut) = act.qs_and_lut_mut();
    assert_eq!(
        q.len(),
        cols,
        "STQ1_0 activations for {cols} columns from {} quants",
        q.len()
    );
    lut.clear();
    lut.resize(cols / 2 + 2 * (cols / Q8K_BLOCK), 0);
    let (qs, sums) = lut.split_at_mut(cols / 2);
    let qs = super::lut::i16_bytes_mut(qs);
    // Same bytes, as i8.
    let qs: &mut [i8] = bytes_as_i8_mut(qs);
    reorder_into(q, qs, sums);
}

fn bytes_as_i8_mut(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity; the borrow is handed on.
    unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut i8, b.len()) }
}

/// The view of a row prepared by [`prepare_stq1`].
pub fn prepared_token(act: &QuantizedActivations) -> Stq1Token<'_> {
    let cols = act.len();
    let lut = act.lut();
    assert_eq!(
        lut.len(),
        cols / 2 + 2 * (cols / Q8K_BLOCK),
        "row not prepared for STQ1_0"
    );
    let b = super::lut::i16_bytes(&lut[..cols / 2]);
    // SAFETY: i8 and u8 have the same size, alignment and validity.
    let qs = unsafe { std::slice::from_raw_parts(b.as_ptr() as *const i8, b.len()) };
    Stq1Token {
        qs,
        sums: &lut[cols / 2..],
        d: act.block_scales(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_is_a_permutation() {
        let mut seen = [false; 256];
        for i in 0..256 {
            let j = reordered_index(i);
            assert!(!seen[j]);
            seen[j] = true;
        }
        assert_eq!(reordered_index(64 + 16 + 3), 32 + 16 + 3);
        assert_eq!(reordered_index(128 + 48 + 15), 128 + 96 + 15);
    }
}
