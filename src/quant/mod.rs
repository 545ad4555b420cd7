//! Tensor types: the registry of every type we know, and (one file per type family) how
//! each one lays out its bytes. This module knows bytes, not CPUs.

pub mod dense;
pub mod float;
pub mod q4_0;
pub mod q6_k;
pub mod q8_0;
pub mod types;

pub use types::{SizeRule, TensorType, TypeClass, TypeInfo, SHERRY_TYPE_ID, TYPES};
pub mod checkpoint;
pub mod i2s;
pub mod sherry;
pub mod stq1;
pub mod ternary;
pub mod tl1;
pub mod tl2;
pub mod tl_params;
pub mod tq;
