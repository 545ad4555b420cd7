//! AVX2 (+FMA) element-wise pieces of the forward pass, each giving exactly the floats of
//! its scalar twin:
//!
//! - [`rms_norm`] (`model::norm::rms_norm`): squares in f32, their sum in f64 in element
//!   order (a chain of dependent additions, as the twin — reordering would change the
//!   last bit), the scale, then `(x * scale) * weight` eight at a time;
//! - [`rope_normal`], [`rope_neox`] (`model::rope::Rope::rotate`): the rotation with its
//!   first product fused (`fmaddsub` / `fmsub` / `fmadd`);
//! - [`relu2_gate`], [`silu_gate`] (`model::forward`'s gating): `max(g, 0)² · u` and
//!   `g / (1 + exp(-g)) · u` with ggml's `exp`.

use std::arch::x86_64::*;

use super::attn_avx2::exp8;
use super::dense_avx2::available;

#[inline]
#[track_caller]
fn require() {
    assert!(
        available(),
        "AVX2 kernel called on a CPU without AVX2/FMA/F16C"
    );
}

/// `out[i] = (x[i] * (1 / sqrt(mean(x²) + eps))) * weight[i]`, as `norm::rms_norm`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    require();
    assert!(x.len() == weight.len() && x.len() == out.len());
    // SAFETY: features checked; equal lengths.
    unsafe { rms_norm_raw(x, weight, eps, out) }
}

/// Rotates `head[..2 * cs.len() / 2]` in adjacent pairs with the `(cos, sin)` table `cs`
/// (`Rope::rotate`, normal style).
pub fn rope_normal(head: &mut [f32], cs: &[f32]) {
    require();
    assert!(cs.len() % 2 == 0 && head.len() >= cs.len());
    // SAFETY: features checked; `head` holds the `cs.len()` rotated values.
    unsafe { rope_normal_raw(&mut head[..cs.len()], cs) }
}

/// Rotates `head[..cs.len()]` pairing dimension `i` with `i + cs.len() / 2` (NeoX style).
pub fn rope_neox(head: &mut [f32], cs: &[f32]) {
    require();
    assert!(cs.len() % 2 == 0 && head.len() >= cs.len());
    let (lo, hi) = head[..cs.len()].split_at_mut(cs.len() / 2);
    // SAFETY: features checked; `lo`, `hi` hold `cs.len() / 2` values each.
    unsafe { rope_neox_raw(lo, hi, cs) }
}

/// `gate[i] = max(gate[i], 0)² * up[i]` (NaN gates give 0 · up).
pub fn relu2_gate(gate: &mut [f32], up: &[f32]) {
    require();
    assert_eq!(gate.len(), up.len());
    // SAFETY: features checked; equal lengths.
    unsafe { relu2_gate_raw(gate, up) }
}

/// `gate[i] = (gate[i] / (1 + exp(-gate[i]))) * up[i]` with ggml's `exp`.
pub fn silu_gate(gate: &mut [f32], up: &[f32]) {
    require();
    assert_eq!(gate.len(), up.len());
    // SAFETY: features checked; equal lengths.
    unsafe { silu_gate_raw(gate, up) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rms_norm_raw(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mut sum = 0f64;
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        let v = _mm256_loadu_ps(c.as_ptr());
        let sq = _mm256_mul_ps(v, v);
        let mut s = [0f64; 8];
        _mm256_storeu_pd(s.as_mut_ptr(), _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        _mm256_storeu_pd(
            s.as_mut_ptr().add(4),
            _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)),
        );
        for v in s {
            sum += v;
        }
    }
    for &v in chunks.remainder() {
        sum += f64::from(v * v);
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    let sv = _mm256_set1_ps(scale);
    let n8 = x.len() / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i)), sv);
        let v = _mm256_mul_ps(v, _mm256_loadu_ps(weight.as_ptr().add(i)));
        _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
        i += 8;
    }
    for i in n8..x.len() {
        out[i] = (x[i] * scale) * weight[i];
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rope_normal_raw(head: &mut [f32], cs: &[f32]) {
    let n8 = head.len() / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let v = _mm256_loadu_ps(head.as_ptr().add(i));
        let t = _mm256_loadu_ps(cs.as_ptr().add(i));
        let x0 = _mm256_moveldup_ps(v);
        let x1 = _mm256_movehdup_ps(v);
        // [x1·sin, x1·cos] per pair.
        let m = _mm256_mul_ps(x1, _mm256_permute_ps(t, 0b10_11_00_01));
        // even: x0·cos − x1·sin; odd: x0·sin + x1·cos (first product fused).
        _mm256_storeu_ps(head.as_mut_ptr().add(i), _mm256_fmaddsub_ps(x0, t, m));
        i += 8;
    }
    for (pair, t) in head[n8..].chunks_exact_mut(2).zip(cs[n8..].chunks_exact(2)) {
        let (x0, x1) = (pair[0], pair[1]);
        pair[0] = x0.mul_add(t[0], -(x1 * t[1]));
        pair[1] = x0.mul_add(t[1], x1 * t[0]);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rope_neox_raw(lo: &mut [f32], hi: &mut [f32], cs: &[f32]) {
    let n = lo.len();
    let n8 = n / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let mut c = [0f32; 8];
        let mut s = [0f32; 8];
        for k in 0..8 {
            c[k] = cs[2 * (i + k)];
            s[k] = cs[2 * (i + k) + 1];
        }
        let c = _mm256_loadu_ps(c.as_ptr());
        let s = _mm256_loadu_ps(s.as_ptr());
        let a = _mm256_loadu_ps(lo.as_ptr().add(i));
        let b = _mm256_loadu_ps(hi.as_ptr().add(i));
        let na = _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s));
        let nb = _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c));
        _mm256_storeu_ps(lo.as_mut_ptr().add(i), na);
        _mm256_storeu_ps(hi.as_mut_ptr().add(i), nb);
        i += 8;
    }
    for k in n8..n {
        let (x0, x1) = (lo[k], hi[k]);
        let (c, s) = (cs[2 * k], cs[2 * k + 1]);
        lo[k] = x0.mul_add(c, -(x1 * s));
        hi[k] = x0.mul_add(s, x1 * c);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn relu2_gate_raw(gate: &mut [f32], up: &[f32]) {
    let n8 = gate.len() / 8 * 8;
    let zero = _mm256_setzero_ps();
    let mut i = 0;
    while i < n8 {
        // max_ps(g, 0) is g when g > 0, else 0 (NaN included), as the twin's branch.
        let r = _mm256_max_ps(_mm256_loadu_ps(gate.as_ptr().add(i)), zero);
        let v = _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(up.as_ptr().add(i)));
        _mm256_storeu_ps(gate.as_mut_ptr().add(i), v);
        i += 8;
    }
    for (g, &u) in gate[n8..].iter_mut().zip(&up[n8..]) {
        let r = if *g > 0.0 { *g } else { 0.0 };
        *g = (r * r) * u;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn silu_gate_raw(gate: &mut [f32], up: &[f32]) {
    let one = _mm256_set1_ps(1.0);
    let neg = _mm256_set1_ps(-0.0);
    let silu_mul = |g: __m256, u: __m256| -> __m256 {
        let e = exp8(_mm256_xor_ps(g, neg));
        _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), u)
    };
    let n8 = gate.len() / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let v = silu_mul(
            _mm256_loadu_ps(gate.as_ptr().add(i)),
            _mm256_loadu_ps(up.as_ptr().add(i)),
        );
        _mm256_storeu_ps(gate.as_mut_ptr().add(i), v);
        i += 8;
    }
    let rest = gate.len() - n8;
    if rest > 0 {
        let mut g = [0f32; 8];
        let mut u = [0f32; 8];
        g[..rest].copy_from_slice(&gate[n8..]);
        u[..rest].copy_from_slice(&up[n8..]);
        let v = silu_mul(_mm256_loadu_ps(g.as_ptr()), _mm256_loadu_ps(u.as_ptr()));
        _mm256_storeu_ps(g.as_mut_ptr(), v);
        gate[n8..].copy_from_slice(&g[..rest]);
    }
}

#[cfg(test)]
#[path = "elementwise_avx2_tests.rs"]
mod tests;
