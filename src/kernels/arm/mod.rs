//! aarch64 SIMD kernels.

#[cfg(target_arch = "aarch64")]
pub mod sherry_neon;
#[cfg(target_arch = "aarch64")]
pub mod stq1_neon;
