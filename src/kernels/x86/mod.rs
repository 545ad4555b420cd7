//! x86-64 SIMD kernels.

#[cfg(target_arch = "x86_64")]
pub mod sherry_avx2;
#[cfg(target_arch = "x86_64")]
pub mod stq1_avx2;
