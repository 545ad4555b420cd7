//! The tiling parameters of bitnet.cpp's TL1 and TL2 layouts.
//!
//! bitnet.cpp generates its LUT kernels per matrix shape (`utils/codegen_tl1.py`,
//! `utils/codegen_tl2.py`, run by `setup_env.py` with a fixed list of parameters per
//! model family) and its converter tiles each weight with the parameters of its shape,
//! read from the generated `include/kernel_config.ini`. Nothing in the GGUF file records
//! them, so a reader has to know them: this module holds the presets `setup_env.py` uses,
//! as our own table, and looks them up by shape. Shapes are (M, K) = (rows = output
//! features = ggml ne1, columns = input features = ggml ne0), as in the config files.
//!
//! The parameters, in the config file's names:
//! - `bm` ([`TlTiling::block_rows`], "BM"): rows per outer block;
//! - `bk` ([`TlTiling::block_cols`], "BK", "BY" in the converter): columns per outer block;
//! - `bmm` ([`TlTiling::tile_rows`], "bm"): rows per SIMD tile. The tile's column count
//!   follows: 256 / bm for TL1, 192 / bm for TL2 (the converter's `by`).

use crate::error::{Error, Result};

/// One shape's tiling (see the module docs for the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlTiling {
    /// BM: rows per outer block.
    pub block_rows: usize,
    /// BK: columns per outer block (for TL2: of the three-weight part).
    pub block_cols: usize,
    /// bm: rows per tile.
    pub tile_rows: usize,
}

/// A preset: the model family `setup_env.py` generates it for, the matrix shape and its
/// tiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlPreset {
    /// Model family (`codegen_tl*.py --model` name).
    pub model: &'static str,
    /// Rows (M, output features, ggml ne1).
    pub rows: usize,
    /// Columns (K, input features, ggml ne0).
    pub cols: usize,
    /// The tiling for this shape.
    pub tiling: TlTiling,
}

const fn preset(
    model: &'static str,
    rows: usize,
    cols: usize,
    block_rows: usize,
    block_cols: usize,
    tile_rows: usize,
) -> TlPreset {
    TlPreset {
        model,
        rows,
        cols,
        tiling: TlTiling {
            block_rows,
            block_cols,
            tile_rows,
        },
    }
}

const LARGE: &str = "bitnet_b1_58-large";
const B3: &str = "bitnet_b1_58-3B";
const LLAMA3: &str = "Llama3-8B-1.58-100B-tokens (also used for Falcon3)";

/// TL1 presets (what `setup_env.py` runs on ARM): BM, BK, bm per shape.
pub const TL1_PRESETS: &[TlPreset] = &[
    preset(LARGE, 1536, 4096, 256, 128, 32),
    preset(LARGE, 1536, 1536, 128, 64, 64),
    preset(LARGE, 4096, 1536, 256, 128, 32),
    preset(B3, 3200, 8640, 160, 64, 32),
    preset(B3, 3200, 3200, 320, 128, 64),
    preset(B3, 8640, 3200, 320, 64, 32),
    preset(LLAMA3, 14336, 4096, 256, 128, 32),
    preset(LLAMA3, 4096, 14336, 128, 64, 64),
    preset(LLAMA3, 1024, 4096, 256, 128, 32),
    preset(LLAMA3, 4096, 4096, 128, 64, 64),
];

/// TL2 presets (what `setup_env.py` runs on x86): BM, BK, bm per shape.
pub const TL2_PRESETS: &[TlPreset] = &[
    preset(LARGE, 1536, 4096, 256, 96, 32),
    preset(LARGE, 1536, 1536, 128, 192, 32),
    preset(LARGE, 4096, 1536, 256, 96, 32),
    preset(B3, 3200, 8640, 160, 96, 32),
    preset(B3, 3200, 3200, 320, 96, 32),
    preset(B3, 8640, 3200, 320, 96, 32),
    preset(LLAMA3, 14336, 4096, 256, 96, 32),
    preset(LLAMA3, 4096, 14336, 128, 96, 32),
    preset(LLAMA3, 1024, 4096, 256, 96, 32),
    preset(LLAMA3, 4096, 4096, 128, 96, 32),
];

fn lookup(kind: &str, presets: &[TlPreset], rows: usize, cols: usize) -> Result<TlTiling> {
    if let Some(p) = presets.iter().find(|p| p.rows == rows && p.cols == cols) {
        return Ok(p.tiling);
    }
    let mut known = String::new();
    for p in presets {
        if !known.is_empty() {
            known.push_str(", ");
        }
        known.push_str(&format!("{}x{} ({})", p.rows, p.cols, p.model));
    }
    Err(Error::unsupported(format!(
        "no {kind} tiling preset for a matrix of {rows} rows x {cols} columns (ggml shape \
         [{cols}, {rows}]); bitnet.cpp generates {kind} kernels only for the shapes \
         (rows x columns) {known}"
    )))
}

/// The TL1 tiling bitnet.cpp uses for a `rows x cols` matrix; an
/// [`Error::Unsupported`] naming the shape and every preset shape when there is none.
pub fn tl1_tiling(rows: usize, cols: usize) -> Result<TlTiling> {
    lookup("TL1", TL1_PRESETS, rows, cols)
}

/// The TL2 tiling bitnet.cpp uses for a `rows x cols` matrix; an
/// [`Error::Unsupported`] naming the shape and every preset shape when there is none.
pub fn tl2_tiling(rows: usize, cols: usize) -> Result<TlTiling> {
    lookup("TL2", TL2_PRESETS, rows, cols)
}

/// Parses a bitnet.cpp `kernel_config.ini` (sections with keys `m`, `k`, `bm`, `bk`,
/// `bmm`, case-insensitive) into `(rows, cols, tiling)` entries, for files converted with
/// parameters other than the presets.
pub fn parse_kernel_config(text: &str) -> Result<Vec<(usize, usize, TlTiling)>> {
    let mut out = Vec::new();
    let mut cur: Option<(String, [Option<usize>; 5])> = None;
    let finish = |cur: Option<(String, [Option<usize>; 5])>,
                  out: &mut Vec<(usize, usize, TlTiling)>| {
        if let Some((name, v)) = cur {
            match v {
                [Some(m), Some(k), Some(bm), Some(bk), Some(bmm)] => out.push((
                    m,
                    k,
                    TlTiling {
                        block_rows: bm,
                        block_cols: bk,
                        tile_rows: bmm,
                    },
                )),
                _ => {
                    return Err(Error::format(format!(
                        "kernel config section [{name}] lacks one of m, k, bm, bk, bmm"
                    )))
                }
            }
        }
        Ok(())
    };
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            finish(cur.take(), &mut out)?;
            cur = Some((name.to_string(), [None; 5]));
            continue;
        }
        let bad = || Error::format(format!("kernel config line {}: {line:?}", ln + 1));
        let (key, val) = line.split_once('=').ok_or_else(bad)?;
        let val: usize = val.trim().parse().map_err(|_| bad())?;
        let (_, fields) = cur.as_mut().ok_or_else(bad)?;
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "m" => 0,
            "k" => 1,
            "bm" => 2,
            "bk" => 3,
            "bmm" => 4,
            _ => return Err(bad()),
        };
        fields[slot] = Some(val);
    }
    finish(cur, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            tl2_tiling(1536, 1536).unwrap(),
            TlTiling {
                block_rows: 128,
                block_cols: 192,
                tile_rows: 32
            }
        );
        assert_eq!(tl1_tiling(8640, 3200).unwrap().block_rows, 320);
        let e = tl2_tiling(2560, 2560).unwrap_err().to_string();
        assert!(e.contains("2560 rows x 2560 columns"), "{e}");
        assert!(e.contains("1536x4096 (bitnet_b1_58-large)"), "{e}");
        assert!(e.contains("3200x8640"), "{e}");
    }

    #[test]
    fn presets_are_unique_per_shape() {
        for table in [TL1_PRESETS, TL2_PRESETS] {
            for (i, a) in table.iter().enumerate() {
                for b in &table[i + 1..] {
                    assert!((a.rows, a.cols) != (b.rows, b.cols));
                }
            }
        }
    }

    #[test]
    fn parses_a_config() {
        let text = "[Kernels_0]\nm = 1536\nk = 4096\nbm = 256\nbk = 96\nbmm = 32\n\n\
                    [Kernels_1]\nM = 1536\nK = 1536\nBM = 128\nBK = 192\nbmm = 32\n";
        let v = parse_kernel_config(text).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], (1536, 1536, tl2_tiling(1536, 1536).unwrap()));
        assert!(parse_kernel_config("[a]\nm = 1\n").is_err());
        assert!(parse_kernel_config("m = 1\n").is_err());
        assert!(parse_kernel_config("[a]\nm = x\n").is_err());
    }
}
