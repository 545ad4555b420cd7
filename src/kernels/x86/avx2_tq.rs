//! TQ2_0 and TQ1_0 × Q8_K on AVX2. Each 256-weight block is unpacked into eight 32-byte
//! vectors of codes (value + 1, 0..2; TQ2_0's unused code 3 stays 3), vector `i` lining up
//! with activations `32 i .. 32 i + 32` of the block, and multiplied with them by
//! `vpmaddubsw`. The block's `Σ w·q` is then `Σ code·q − Σ q`, with `Σ q` per block taken
//! from the prepare hook ([`crate::kernels::act::prepare_q8k_block_sums`]), and the float epilogue is the scalar
//! twin's, block by block in order: `sumf += (f32)sumi_b * (d_w * d_a[b])`.
//!
//! Exactness: eight `vpmaddubsw` lanes of at most 2·3·128 = 768 sum to 6144 < 2^15.
//!
//! Unpacking:
//! - TQ2_0: bytes `32 h .. 32 h + 32` hold weights `128 h + 32 k + m` in bits `2k+1..2k`:
//!   shift and mask, as I2_S (other bit order).
//! - TQ1_0: trit `n` of a byte `x` is the top base-3 digit of `y = x·3^n mod 256`, i.e.
//!   `(y ≥ 86) + (y ≥ 171)`; `y` for the next trit is `3y` (byte adds wrap mod 256).
//!   `qs[0..32]` give five vectors (weights `32 n + m`); `qs[32..48]` give trits `n` and
//!   `n+1` side by side in one vector (weights `160 + 16 n + m`, contiguous), and the last
//!   of those (n = 4) shares its vector with the 16 trits of `qh` (weights
//!   `240 + 4 n + j`, lane `4 n + j` holding `qh[j]·3^n`).

use std::arch::x86_64::*;
use std::ops::Range;

use crate::kernels::act::QuantizedActivations;
use crate::quant::ternary::TernaryMatrix;
use crate::quant::tq;

/// The dispatch-table entry for TQ2_0.
pub fn gemm_rows_tq2(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    check(m, acts, &rows, out, tq::TQ2_BLOCK_BYTES);
    // SAFETY: installed only when the CPU has AVX2; sizes checked above.
    unsafe { gemm_rows_avx2::<Tq2>(m, acts, rows, out) }
}

/// The dispatch-table entry for TQ1_0.
pub fn gemm_rows_tq1(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    check(m, acts, &rows, out, tq::TQ1_BLOCK_BYTES);
    // SAFETY: installed only when the CPU has AVX2; sizes checked above.
    unsafe { gemm_rows_avx2::<Tq1>(m, acts, rows, out) }
}

/// The bounds every pointer of the kernel relies on.
fn check(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: &Range<usize>,
    out: &[f32],
    block_bytes: usize,
) {
    let nb = m.cols / tq::BLOCK_WEIGHTS;
    assert!(m.cols % tq::BLOCK_WEIGHTS == 0, "TQ columns");
    assert!(rows.start <= rows.end && rows.end <= m.rows, "row range");
    assert!(m.data.len() >= m.rows * nb * block_bytes, "TQ bytes");
    assert_eq!(out.len(), acts.len() * rows.len(), "output size");
    for a in acts {
        assert_eq!(a.qs().len(), m.cols, "activation length");
        assert!(a.block_scales().len() >= nb, "activation scales");
        assert!(
            a.lut().len() >= nb,
            "TQ activations not prepared (block sums missing)"
        );
    }
}

/// How one type's block is unpacked.
trait BlockCodes {
    const BYTES: usize;
    /// The eight code vectors of the block at `p`.
    ///
    /// # Safety
    /// AVX2; `p` readable for `Self::BYTES` bytes.
    unsafe fn codes(p: *const u8) -> [__m256i; 8];
}

struct Tq2;

impl BlockCodes for Tq2 {
    const BYTES: usize = tq::TQ2_BLOCK_BYTES;

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        let mask = _mm256_set1_epi8(3);
        // SAFETY: bytes 0..64 of the block.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(p as *const __m256i),
                _mm256_loadu_si256(p.add(32) as *const __m256i),
            )
        };
        [
            _mm256_and_si256(lo, mask),
            _mm256_and_si256(_mm256_srli_epi16::<2>(lo), mask),
            _mm256_and_si256(_mm256_srli_epi16::<4>(lo), mask),
            _mm256_and_si256(_mm256_srli_epi16::<6>(lo), mask),
            _mm256_and_si256(hi, mask),
            _mm256_and_si256(_mm256_srli_epi16::<2>(hi), mask),
            _mm256_and_si256(_mm256_srli_epi16::<4>(hi), mask),
            _mm256_and_si256(_mm256_srli_epi16::<6>(hi), mask),
        ]
    }
}

struct Tq1;

/// The top base-3 digit of each byte `y` (`(3 y) >> 8`): `(y ≥ 86) + (y ≥ 171)`.
#[inline]
#[target_feature(enable = "avx2")]
fn top_trit(y: __m256i) -> __m256i {
    let flip = _mm256_xor_si256(y, _mm256_set1_epi8(-128));
    let ge86 = _mm256_cmpgt_epi8(flip, _mm256_set1_epi8((85u8 ^ 0x80) as i8));
    let ge171 = _mm256_cmpgt_epi8(flip, _mm256_set1_epi8((170u8 ^ 0x80) as i8));
    _mm256_sub_epi8(_mm256_setzero_si256(), _mm256_add_epi8(ge86, ge171))
}

/// `3 y` for each byte, mod 256.
#[inline]
#[target_feature(enable = "avx2")]
fn times3(y: __m256i) -> __m256i {
    _mm256_add_epi8(_mm256_add_epi8(y, y), y)
}

impl BlockCodes for Tq1 {
    const BYTES: usize = tq::TQ1_BLOCK_BYTES;

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn codes(p: *const u8) -> [__m256i; 8] {
        // SAFETY: bytes 0..52 of the block (qs then qh).
        let (a, b, h) = unsafe {
            (
                _mm256_loadu_si256(p as *const __m256i),
                _mm_loadu_si128(p.add(32) as *const __m128i),
                (p.add(48) as *const i32).read_unaligned(),
            )
        };
        let a1 = times3(a);
        let a2 = times3(a1);
        let a3 = times3(a2);
        let a4 = times3(a3);
        // qs[32..48]: [x | 3x], [9x | 27x], [81x | qh trits].
        let b01 = _mm256_set_m128i(_mm_add_epi8(_mm_add_epi8(b, b), b), b);
        let b23 = times3(times3(b01));
        let b4 = times3(times3(b23));
        // qh: lane 4n + j holds qh[j] * 3^n.
        let h0 = _mm_set1_epi32(h);
        let h1 = _mm_add_epi8(_mm_add_epi8(h0, h0), h0);
        let h2 = _mm_add_epi8(_mm_add_epi8(h1, h1), h1);
        let h3 = _mm_add_epi8(_mm_add_epi8(h2, h2), h2);
        let hv = _mm_blend_epi32::<0b1000>(
            _mm_blend_epi32::<0b0100>(_mm_blend_epi32::<0b0010>(h0, h1), h2),
            h3,
        );
        let b4h = _mm256_inserti128_si256::<1>(b4, hv);
        [
            top_trit(a),
            top_trit(a1),
            top_trit(a2),
            top_trit(a3),
            top_trit(a4),
            top_trit(b01),
            top_trit(b23),
            top_trit(b4h),
        ]
    }
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_rows_avx2<B: BlockCodes>(
    m: &TernaryMatrix,
    acts: &[QuantizedActivations],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let nr = rows.len();
    let nb = m.cols / tq::BLOCK_WEIGHTS;
    let row_bytes = nb * B::BYTES;
    let mut t = 0;
    while t < acts.len() {
        let tn = (acts.len() - t).min(4);
        for r in rows.clone() {
            let row = &m.data[r * row_bytes..][..row_bytes];
            let sums = match tn {
                // SAFETY: `row` holds nb blocks; each activation row cols quants, nb
                // scales and nb block sums (checked by the entry).
                4 => unsafe { row_dot::<B, 4>(row, &acts[t..t + 4], nb) },
                3 => pad(unsafe { row_dot::<B, 3>(row, &acts[t..t + 3], nb) }),
                2 => pad(unsafe { row_dot::<B, 2>(row, &acts[t..t + 2], nb) }),
                _ => pad(unsafe { row_dot::<B, 1>(row, &acts[t..t + 1], nb) }),
            };
            for (i, &v) in sums[..tn].iter().enumerate() {
                out[(t + i) * nr + (r - rows.start)] = v;
            }
        }
        t += tn;
    }
}

fn pad<const T: usize>(v: [f32; T]) -> [f32; 4] {
    let mut o = [0.0; 4];
    o[..T].copy_from_slice(&v);
    o
}

/// One weight row against `T` activation rows: the scalar twin's float sums.
///
/// # Safety
/// AVX2; `row` holds `nb` blocks of `B::BYTES`; each `acts[t]` has `256 nb` quants, `nb`
/// block scales and `nb` prepared block sums.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn row_dot<B: BlockCodes, const T: usize>(
    row: &[u8],
    acts: &[QuantizedActivations],
    nb: usize,
) -> [f32; T] {
    let ones = _mm256_set1_epi16(1);
    let mut sumf = [0.0f32; T];
    let q: [*const i8; T] = std::array::from_fn(|t| acts[t].qs().as_ptr());
    for b in 0..nb {
        let block = &row[b * B::BYTES..][..B::BYTES];
        // SAFETY: `block` is B::BYTES long.
        let codes = unsafe { B::codes(block.as_ptr()) };
        let d_w = tq::f16_at(block, B::BYTES - 2);
        for t in 0..T {
            // SAFETY: quants b*256 .. b*256+256 of token t exist.
            let p = unsafe { q[t].add(b * 256) } as *const __m256i;
            let mut acc = _mm256_setzero_si256();
            for (i, c) in codes.iter().enumerate() {
                // SAFETY: as above, vector i of the block.
                let a = unsafe { _mm256_loadu_si256(p.add(i)) };
                acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(*c, a));
            }
            let code_dot = hsum_i32(_mm256_madd_epi16(acc, ones));
            let act = &acts[t];
            let sumi = code_dot - act.lut()[b] as i32;
            sumf[t] += sumi as f32 * (d_w * act.block_scales()[b]);
        }
    }
    sumf
}

/// The sum of the eight 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}
