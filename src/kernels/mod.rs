//! Compute kernels and the machinery that picks them. This module knows CPUs, not files.
//!
//! - [`dispatch`]: CPU features and the instruction-set path, chosen once (`TERN_ISA`).
//! - [`table`]: the dispatch table of function pointers per type, filled from that path.
//! - [`scalar`], [`scalar_dense`]: the reference kernels every path must match.
//! - `x86/`, `arm/`: the SIMD kernels.
//! - [`simd`]: the front of the SIMD attention, element-wise and activation kernels
//!   (their scalar twins live with their callers in `model/` and [`act`]).
//! - [`lut`]: Sherry's lookup tables and tile driver; [`stq1_prep`]: STQ1_0's reordered
//!   activations (both shared by the x86 and arm kernels).
//! - [`parallel`]: the per-context thread pool and the row split of a product.

pub mod act;
pub mod arm;
pub mod dispatch;
pub mod lut;
pub mod parallel;
pub mod scalar;
pub mod scalar_dense;
pub mod simd;
pub mod stq1_prep;
pub mod table;
pub mod x86;

#[cfg(test)]
pub(crate) mod dense_checks;
#[cfg(test)]
pub(crate) mod dense_testing;
#[cfg(test)]
mod tests;

pub use dispatch::{selection, system_info, CpuFeatures, Isa};
pub use parallel::Workers;
pub use table::{table, table_for, KernelTable};
