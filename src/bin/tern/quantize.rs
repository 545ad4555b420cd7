//! `tern quantize IN OUT --type TYPE [--head TYPE] [--dry-run]`: converts a model's ternary
//! projection weights to another ternary type, and optionally its embedding / output head.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};

use tern::gguf::{GgufFile, GgufWriter, TensorInfo, Value};
use tern::quant::sherry::{project_34, project_34_from_latent, GroupLayout, ProjectionReport};
use tern::quant::ternary::{
    matrix_shape, pack_ternary, ternarize_absmean, unpack_ternary, TernaryWeights,
};
use tern::quant::{dense, TensorType};
use tern::{Error, Result};

use crate::args::Args;
use crate::latent::LatentSource;

const HELP: &str = "\
usage: tern quantize IN.gguf OUT.gguf --type TYPE [--head TYPE] [--dry-run]

Converts the ternary projection weights of a model (attn_q/k/v/output, ffn_gate/up/down)
to TYPE: I2_S, TL1, TL2, TQ1_0, TQ2_0, SHERRY, STQ1_0 (TL1/TL2 for the shapes bitnet.cpp has\npresets for). Sources: any ternary
type, or F32/F16/BF16 weights that are ternary-valued ({-a, 0, +a}: exact) or latent
(BitNet absmean ternarization; for SHERRY/STQ1_0 the 3:4 projection keeps the 3 largest
|w| of each group of 4). Ternary weights that are not 3:4 are projected to 3:4 for
SHERRY/STQ1_0 by a fixed rule (docs/FORMATS.md); the number of groups changed and the
relative error of the layer output on random activations are printed.

  --type TYPE   target type of the ternary weights
  --head TYPE   also convert token_embd.weight / output.weight (F32, F16, BF16, Q8_0, Q4_0, Q6_K)
  --dry-run     print what would change, write nothing (OUT may be omitted)
  --latent CKPT.safetensors
                with --type SHERRY: take every projection from the latent weights of a
                Sherry training checkpoint (Hugging Face names), ternarized with the training
                code's 3:4 mask; IN gives everything else. Arenas residual tensors in the
                checkpoint are dropped (and listed)
  --scale-group N
                with --latent: report how far the training code's per-N scale groups are
                from SHERRY's one scale per tensor (default 128, the published script's)";

/// The projection matrices of BitNet / llama blocks.
const PROJECTIONS: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// What happens to one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Copy,
    Ternary(TensorType),
    Head(TensorType),
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let dry_run = args.flag(&["--dry-run", "-n"]);
    let target = parse_type(args.value(&["--type", "-t"])?, "--type")?
        .ok_or_else(|| Error::invalid(format!("--type is required\n\n{HELP}")))?;
    if !target.is_ternary() {
        return Err(Error::invalid(format!(
            "--type {target}: not a ternary type (I2_S, TQ1_0, TQ2_0, SHERRY, STQ1_0, TL1, TL2)"
        )));
    }
    let head = parse_type(args.value(&["--head"])?, "--head")?;
    let latent_path = args.value(&["--latent"])?;
    let scale_group: usize = args.parsed(&["--scale-group"])?.unwrap_or(128);
    if latent_path.is_some() && target != TensorType::Sherry {
        return Err(Error::invalid(
            "--latent needs --type SHERRY (the training mask groups consecutive weights)",
        ));
    }
    if let Some(h) = head {
        if !dense::is_dense(h) || h == TensorType::Q8_K {
            return Err(Error::invalid(format!(
                "--head {h}: the head can be F32, F16, BF16, Q8_0, Q4_0 or Q6_K"
            )));
        }
    }
    let pos = args.positionals()?;
    let (input, output) = match (pos.as_slice(), dry_run) {
        ([i, o], _) => (i.clone(), Some(o.clone())),
        ([i], true) => (i.clone(), None),
        _ => return Err(Error::invalid(format!("expected IN and OUT\n\n{HELP}"))),
    };
    let file = GgufFile::open(&input)?;
    let mut latent = match &latent_path {
        Some(p) => Some(LatentSource::open(p, &file, Some(scale_group))?),
        None => None,
    };
    let plan: Vec<(usize, Action)> = file
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| (i, action_for(t, target, head)))
        .collect();
    let n_tern = plan
        .iter()
        .filter(|(_, a)| matches!(a, Action::Ternary(_)))
        .count();
    if n_tern == 0 {
        return Err(Error::model(format!(
            "{input}: no ternary projection weights found to convert"
        )));
    }
    println!(
        "{input}: {} tensors, {n_tern} to {target}{}",
        plan.len(),
        head.map(|h| format!(", head to {h}")).unwrap_or_default()
    );

    let mut writer = GgufWriter::new();
    for (k, v) in file.metadata() {
        match file_type_for(target) {
            Some(ft) if k == "general.file_type" => writer.set(k, Value::U32(ft)),
            None if k == "general.file_type" => {}
            _ => writer.set(k, v.clone()),
        }
    }
    for &(i, a) in &plan {
        let t = &file.tensors()[i];
        let ty = match a {
            Action::Copy => t.ty,
            Action::Ternary(ty) | Action::Head(ty) => ty,
        };
        writer
            .add_tensor(&t.name, &t.dims, ty)
            .map_err(|e| e.context(&t.name))?;
    }
    // A conversion that fails half-way removes what it wrote, rather than leave a
    // truncated model behind under the output's name.
    let mut partial = RemoveUnlessDone(None);
    let mut sink = match (&output, dry_run) {
        (Some(out), false) => {
            let f = File::create(out).map_err(|e| Error::Io(format!("{out}: {e}")))?;
            partial.0 = Some(out.clone());
            Some(writer.begin(BufWriter::new(f))?)
        }
        _ => None,
    };

    let progress = std::io::stderr().is_terminal();
    let mut totals = (0u64, 0u64);
    for (done, &(i, a)) in plan.iter().enumerate() {
        let t = &file.tensors()[i];
        let data = file.data_of(t);
        if progress {
            eprint!("\r[{:>4}/{}] {:<48}", done + 1, plan.len(), t.name);
        }
        let bytes: Vec<u8> = match a {
            Action::Copy => data.to_vec(),
            Action::Head(ty) => convert_head(t, data, ty)?,
            Action::Ternary(ty) => {
                let (bytes, note) = match latent.as_mut() {
                    Some(l) => l.convert(t),
                    None => convert_ternary(t, data, ty),
                }
                .map_err(|e| e.context(&t.name))?;
                if progress {
                    eprint!("\r");
                }
                println!(
                    "  {:<40} {:>6} -> {:<7} {}",
                    t.name,
                    t.ty.name(),
                    ty.name(),
                    note
                );
                bytes
            }
        };
        totals.0 += data.len() as u64;
        totals.1 += bytes.len() as u64;
        if let Some(s) = sink.as_mut() {
            s.write_tensor(&bytes).map_err(|e| e.context(&t.name))?;
        }
    }
    if progress {
        eprintln!();
    }
    if let Some(l) = &latent {
        for line in l.leftovers() {
            println!("{line}");
        }
    }
    if let Some(s) = sink {
        s.finish()?.flush()?;
    }
    partial.0 = None;
    println!(
        "tensor data: {:.2} MiB -> {:.2} MiB{}",
        totals.0 as f64 / 1048576.0,
        totals.1 as f64 / 1048576.0,
        match (&output, dry_run) {
            (Some(o), false) => format!(", written to {o}"),
            _ => " (dry run, nothing written)".to_string(),
        }
    );
    Ok(())
}

/// Removes the file it names when dropped, unless its name was taken back (set to None).
struct RemoveUnlessDone(Option<String>);

impl Drop for RemoveUnlessDone {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn parse_type(v: Option<String>, opt: &str) -> Result<Option<TensorType>> {
    v.map(|s| {
        TensorType::from_name(&s)
            .ok_or_else(|| Error::invalid(format!("{opt}: unknown type '{s}'")))
    })
    .transpose()
}

/// llama.cpp's `general.file_type` for a model whose projections are `ty` (None: no
/// established value, the key is dropped).
fn file_type_for(ty: TensorType) -> Option<u32> {
    match ty {
        TensorType::TQ1_0 => Some(36),
        TensorType::TQ2_0 => Some(37),
        TensorType::TL1 => Some(38),
        TensorType::TL2 => Some(39),
        TensorType::I2_S => Some(40),
        _ => None,
    }
}

fn is_projection(name: &str) -> bool {
    let mut parts = name.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("blk"), Some(n), Some(p), Some("weight"), None)
            if n.parse::<u32>().is_ok() && PROJECTIONS.contains(&p)
    )
}

fn action_for(t: &TensorInfo, target: TensorType, head: Option<TensorType>) -> Action {
    let float = matches!(t.ty, TensorType::F32 | TensorType::F16 | TensorType::BF16);
    if t.ty.is_ternary() || (float && t.dims.len() == 2 && is_projection(&t.name)) {
        return Action::Ternary(target);
    }
    match head {
        Some(h)
            if dense::is_dense(t.ty)
                && matches!(t.name.as_str(), "token_embd.weight" | "output.weight") =>
        {
            Action::Head(h)
        }
        _ => Action::Copy,
    }
}

/// The tensor's values as f32, row by row (any dense source type: F32, F16, BF16, Q8_0,
/// Q4_0, Q6_K).
fn floats(t: &TensorInfo, data: &[u8]) -> Result<Vec<f32>> {
    let cols = t.dims[0] as usize;
    let row_bytes = dense::row_bytes(t.ty, cols).map_err(|e| e.context(&t.name))?;
    let rows = (t.n_elements() as usize) / cols;
    let mut out = vec![0f32; rows * cols];
    for (r, dst) in out.chunks_exact_mut(cols).enumerate() {
        let src = &data[r * row_bytes..(r + 1) * row_bytes];
        dense::dequantize_row(t.ty, src, dst).map_err(|e| e.context(&t.name))?;
    }
    Ok(out)
}

/// Converts an embedding / output head to `ty` row by row with ggml's quantizers.
fn convert_head(t: &TensorInfo, data: &[u8], ty: TensorType) -> Result<Vec<u8>> {
    let x = floats(t, data)?;
    let cols = t.dims[0] as usize;
    let row_bytes =
        dense::row_bytes(ty, cols).map_err(|e| e.context(format!("--head {ty} for {}", t.name)))?;
    let mut out = vec![0u8; x.len() / cols * row_bytes];
    for (src, dst) in x.chunks_exact(cols).zip(out.chunks_exact_mut(row_bytes)) {
        dense::quantize_row(ty, src, dst).map_err(|e| e.context(&t.name))?;
    }
    Ok(out)
}

/// Converts one projection matrix; returns its bytes and a note for the report.
fn convert_ternary(t: &TensorInfo, data: &[u8], target: TensorType) -> Result<(Vec<u8>, String)> {
    let layout = match target {
        TensorType::Sherry => Some(GroupLayout::Consecutive),
        TensorType::STQ1_0 => Some(GroupLayout::Stride16),
        _ => None,
    };
    let (w, reference, mut note) = if t.ty.is_ternary() {
        let w = unpack_ternary(t.ty, &t.dims, data)?;
        (w, None, String::from("ternary"))
    } else {
        let x = floats(t, data)?;
        let (rows, cols) = (
            t.dims.get(1).copied().unwrap_or(1) as usize,
            t.dims[0] as usize,
        );
        match TernaryWeights::from_ternary_valued(rows, cols, &x) {
            Ok(w) => (w, None, String::from("ternary-valued, exact")),
            Err(_) => {
                let w = match layout {
                    Some(l) => project_34_from_latent(rows, cols, &x, l)?,
                    None => ternarize_absmean(rows, cols, &x)?,
                };
                let how = if layout.is_some() {
                    "latent, 3:4 absmean"
                } else {
                    "latent, absmean"
                };
                (w, Some(x), String::from(how))
            }
        }
    };
    matrix_shape(target, &[w.cols as u64, w.rows as u64])?;
    let w = match layout {
        Some(l) => {
            let (p, rep) = project_34(&w, reference.as_deref(), l)?;
            if rep.groups_changed() > 0 {
                let err = relative_output_error(&w, &p);
                note = format!("{note}; {}; output rel. error {err:.4}", describe(&rep));
            }
            p
        }
        None => w,
    };
    let bytes = pack_ternary(target, &w)?;
    Ok((bytes, note))
}

fn describe(r: &ProjectionReport) -> String {
    format!(
        "3:4 projection changed {} of {} groups ({:.2}%: {} without a zero, {} with extra zeros)",
        r.groups_changed(),
        r.groups,
        100.0 * r.groups_changed() as f64 / r.groups.max(1) as f64,
        r.groups_without_zero,
        r.groups_with_extra_zeros
    )
}

/// `‖(W' − W) x‖ / ‖W x‖` over 4 fixed pseudo-random activation vectors.
fn relative_output_error(before: &TernaryWeights, after: &TernaryWeights) -> f64 {
    let (a, b) = (before.dequantize(), after.dequantize());
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for _ in 0..4 {
        let x: Vec<f64> = (0..before.cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect();
        for r in 0..before.rows {
            let row = |w: &[f32]| -> f64 {
                w[r * before.cols..][..before.cols]
                    .iter()
                    .zip(&x)
                    .map(|(&w, &x)| w as f64 * x)
                    .sum()
            };
            let (ya, yb) = (row(&a), row(&b));
            num += (yb - ya) * (yb - ya);
            den += ya * ya;
        }
    }
    if den == 0.0 {
        0.0
    } else {
        (num / den).sqrt()
    }
}
