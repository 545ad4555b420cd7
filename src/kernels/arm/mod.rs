//! aarch64 kernels (NEON, NEON + dotprod). Each entry is installed into the dispatch table
//! only when the CPU reports the features it was compiled for.

use super::dispatch::Isa;
use super::table::KernelTable;

#[cfg(target_arch = "aarch64")]
pub mod dense_neon;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "aarch64")]
pub mod sherry_neon;
#[cfg(target_arch = "aarch64")]
pub mod stq1_neon;

/// Puts the aarch64 kernels of path `isa` (Neon or Dotprod) into `t` (the caller has
/// checked that the CPU runs it).
pub fn install(t: &mut KernelTable, isa: Isa) {
    #[cfg(target_arch = "aarch64")]
    {
        use super::act::prepare_q8k_block_sums;
        use super::table::TernaryKernel;
        let k = |gemm, prepare, name| TernaryKernel {
            gemm,
            prepare,
            name,
        };
        t.dense = dense_neon::table_entries(t.dense);
        let tq_prep = Some(prepare_q8k_block_sums as super::table::PrepareFn);
        if isa == Isa::Dotprod {
            t.i2s = k(neon::i2s_dotprod, None, "neon-sdot");
            t.tq2_0 = k(neon::tq2_dotprod, tq_prep, "neon-sdot");
            t.tq1_0 = k(neon::tq1_dotprod, tq_prep, "neon-sdot");
        } else {
            t.i2s = k(neon::i2s_neon, None, "neon-smlal");
            t.tq2_0 = k(neon::tq2_neon, tq_prep, "neon-smlal");
            t.tq1_0 = k(neon::tq1_neon, tq_prep, "neon-smlal");
        }
        // The Sherry and STQ1_0 kernels use plain NEON on both paths.
        t.sherry = k(
            sherry_neon::gemm_rows,
            Some(super::lut::prepare_sherry as super::table::PrepareFn),
            "neon-tbl-lut",
        );
        t.stq1_0 = k(
            stq1_neon::gemm_rows,
            Some(super::stq1_prep::prepare_stq1 as super::table::PrepareFn),
            "neon-tbl-smull",
        );
    }
    #[cfg(not(target_arch = "aarch64"))]
    let _ = (t, isa);
}
