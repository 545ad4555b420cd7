//! Compute kernels and the machinery that picks them. This module knows CPUs, not files.

pub mod dispatch;
pub mod scalar_dense;

pub use dispatch::{selection, system_info, CpuFeatures, Isa};
pub mod act;
pub mod arm;
pub mod lut;
pub mod scalar;
pub mod stq1_prep;
pub mod x86;
