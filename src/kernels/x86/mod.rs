//! x86-64 kernels. Each file holds one family for one instruction set, next to (never
//! instead of) its scalar twin.

pub mod act_avx2;
pub mod attn_avx2;
pub mod dense_avx2;
pub mod elementwise_avx2;
