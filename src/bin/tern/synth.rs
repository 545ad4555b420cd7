//! `tern synth`: write a random-weight model of a real shape (with a small real
//! vocabulary), streaming, so speed can be measured without downloading a model.

use std::io::Write;
use std::time::Instant;

use tern::model::synth::SynthSpec;
use tern::model::synth_file::{write_synth_file, SynthShape};
use tern::quant::TensorType;
use tern::{Error, Result};

use crate::args::Args;

const HELP: &str = "\
usage: tern synth OUT.gguf [--shape S] [--type T] [--sparse34] [--head H] [--seed N] [--quiet]

  --shape S    2b4t (default: BitNet b1.58 2B4T, hidden 2560, 30 layers, 20/5 heads,
               FFN 6912, vocab 128256), large, 3b (1bitLLM), 8b (Llama3-8B-1.58), or
               custom(h,ffn,layers,heads,kv_heads,vocab)
  --type T     ternary storage: i2_s (default), tl1, tl2, tq1_0, tq2_0, sherry
  --sparse34   exactly one zero in every group of 4 weights (Sherry requires it; implied)
  --head H     storage of the head (the embedding when tied): f16 (default), q6_k, q8_0, q4_0
  --seed N     seed of the random weights (default 1)
  --quiet      no progress on stderr

The file has the tokenizer metadata of a small byte-level BPE vocabulary padded to the
shape's vocabulary size, so both tern and bitnet.cpp load it.";

/// The ternary types `tern synth` writes.
const WEIGHT_TYPES: &[&str] = &["i2_s", "tl1", "tl2", "tq1_0", "tq2_0", "sherry"];
/// The head types it writes.
const HEAD_TYPES: &[&str] = &["f16", "q6_k", "q8_0", "q4_0"];

/// The spec `tern synth` builds from its options.
pub fn spec_from(shape: &str, ty: &str, head: &str, sparse: bool, seed: u64) -> Result<SynthSpec> {
    let shape = SynthShape::parse(shape)?;
    let pick = |name: &str, allowed: &[&str], what: &str| -> Result<TensorType> {
        let lower = name.to_ascii_lowercase();
        if !allowed.contains(&lower.as_str()) {
            return Err(Error::invalid(format!(
                "{what} '{name}': use one of {}",
                allowed.join(", ")
            )));
        }
        TensorType::from_name(&lower)
            .ok_or_else(|| Error::invalid(format!("{what} '{name}' is not a tensor type")))
    };
    let weight_type = pick(ty, WEIGHT_TYPES, "--type")?;
    let head_type = pick(head, HEAD_TYPES, "--head")?;
    let mut spec = shape.spec(weight_type, head_type, seed);
    spec.sparse_3_4 = sparse || weight_type == TensorType::Sherry;
    Ok(spec)
}

/// Writes `spec` to `out`, with a progress line on stderr unless `quiet`.
pub fn write_with_progress(spec: &SynthSpec, out: &str, quiet: bool) -> Result<u64> {
    let t0 = Instant::now();
    let mut last_pct = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        if quiet || total == 0 {
            return;
        }
        let pct = done * 100 / total;
        if pct != last_pct {
            last_pct = pct;
            eprint!(
                "\rtern synth: {out}: {pct:3}% of {:.0} MiB",
                total as f64 / 1048576.0
            );
            let _ = std::io::stderr().flush();
        }
    };
    let size = write_synth_file(spec, out, &mut progress)?;
    if !quiet {
        eprintln!(
            "\rtern synth: wrote {out}: {:.1} MiB in {:.1} s          ",
            size as f64 / 1048576.0,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(size)
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let shape = args.value(&["--shape"])?.unwrap_or_else(|| "2b4t".into());
    let ty = args.value(&["--type"])?.unwrap_or_else(|| "i2_s".into());
    let head = args.value(&["--head"])?.unwrap_or_else(|| "f16".into());
    let sparse = args.flag(&["--sparse34"]);
    let seed: u64 = args.parsed(&["--seed"])?.unwrap_or(1);
    let quiet = args.flag(&["--quiet", "-q"]);
    let rest = args.positionals()?;
    let [out] = rest.as_slice() else {
        return Err(Error::invalid(format!(
            "give exactly one output file\n\n{HELP}"
        )));
    };
    let spec = spec_from(&shape, &ty, &head, sparse, seed)?;
    write_with_progress(&spec, out, quiet)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let s = spec_from("2b4t", "I2_S", "q6_k", false, 7).unwrap();
        assert_eq!((s.n_embd, s.n_layer, s.n_vocab), (2560, 30, 128256));
        assert_eq!(s.embd_type, TensorType::Q6_K);
        assert!(s.tied_output && s.with_vocab && !s.sparse_3_4);
        assert!(
            spec_from("2b4t", "sherry", "f16", false, 1)
                .unwrap()
                .sparse_3_4
        );
        assert!(spec_from("2b4t", "q4_0", "f16", false, 1).is_err());
        assert!(spec_from("2b4t", "i2_s", "bf16", false, 1).is_err());
        assert!(spec_from("4b", "i2_s", "f16", false, 1).is_err());
    }
}
