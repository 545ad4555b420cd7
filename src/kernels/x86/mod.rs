//! x86-64 kernels (AVX2). Each entry is installed into the dispatch table only when the CPU
//! reports the features it was compiled for, which is what makes calling it sound.

#[cfg(target_arch = "x86_64")]
use super::act::prepare_q8k_block_sums;
use super::table::KernelTable;
#[cfg(target_arch = "x86_64")]
use super::table::TernaryKernel;

#[cfg(target_arch = "x86_64")]
pub mod act_avx2;
#[cfg(target_arch = "x86_64")]
pub mod attn_avx2;
#[cfg(target_arch = "x86_64")]
pub mod dense_avx2;
#[cfg(target_arch = "x86_64")]
pub mod elementwise_avx2;
#[cfg(target_arch = "x86_64")]
mod q6k_avx2;

#[cfg(target_arch = "x86_64")]
mod avx2_i2s;
#[cfg(target_arch = "x86_64")]
mod avx2_tq;
#[cfg(target_arch = "x86_64")]
pub mod sherry_avx2;
#[cfg(target_arch = "x86_64")]
pub mod stq1_avx2;

/// Puts the x86 kernels into `t` (the caller has checked that the CPU runs AVX2, FMA and
/// F16C).
pub fn install(t: &mut KernelTable) {
    #[cfg(target_arch = "x86_64")]
    {
        t.i2s = TernaryKernel {
            gemm: avx2_i2s::gemm_rows,
            prepare: None,
            name: "avx2-maddubs",
        };
        t.tq2_0 = TernaryKernel {
            gemm: avx2_tq::gemm_rows_tq2,
            prepare: Some(prepare_q8k_block_sums),
            name: "avx2-maddubs",
        };
        t.tq1_0 = TernaryKernel {
            gemm: avx2_tq::gemm_rows_tq1,
            prepare: Some(prepare_q8k_block_sums),
            name: "avx2-maddubs",
        };
        t.dense = dense_avx2::table_entries();
        t.sherry = TernaryKernel {
            gemm: sherry_avx2::gemm_rows,
            prepare: Some(super::lut::prepare_sherry),
            name: "avx2-vpshufb-lut",
        };
        t.stq1_0 = TernaryKernel {
            gemm: stq1_avx2::gemm_rows,
            prepare: Some(super::stq1_prep::prepare_stq1),
            name: "avx2-vpshufb-maddubs",
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = t;
}
