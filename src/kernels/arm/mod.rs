//! aarch64 kernels. Each file holds one family for one instruction set, next to (never
//! instead of) its scalar twin.

pub mod dense_neon;
