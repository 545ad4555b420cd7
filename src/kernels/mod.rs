//! Compute kernels and the machinery that picks them. This module knows CPUs, not files.

pub mod dispatch;
pub mod scalar_dense;

pub use dispatch::{selection, system_info, CpuFeatures, Isa};
pub mod act;
#[cfg(target_arch = "aarch64")]
pub mod arm;
#[cfg(test)]
pub(crate) mod dense_checks;
#[cfg(test)]
pub(crate) mod dense_testing;
pub mod scalar;
pub mod simd;
#[cfg(target_arch = "x86_64")]
pub mod x86;
