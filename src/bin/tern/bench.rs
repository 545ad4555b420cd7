//! `tern bench`: llama-bench's flags, table and output formats, plus peak RSS, ms/token and
//! energy per token. Without `-m` it benchmarks a cached synthetic 2B4T-shape I2_S model.

use std::path::PathBuf;

use tern::bench::energy::DEFAULT_WATTS_PER_CORE;
use tern::bench::llama_bench::{format_csv, format_json, format_markdown, BenchRecord};
use tern::gguf::GgufFile;
use tern::model::synth::plan_tensors;
use tern::{Error, Result};

use crate::args::Args;
use crate::bench_run::{run_plan, BenchPlan};
use crate::synth::{spec_from, write_with_progress};

const HELP: &str = "\
usage: tern bench [-m FILE] [-p N,..] [-n N,..] [-pg P,G] [-d N,..] [-t N,..] [-r N] [-b N] [-o md|json|csv]
                  [--watts-per-core W] [--progress] [--cache-dir DIR]

  -m, --model FILE     GGUF model (default: a synthetic BitNet b1.58 2B4T-shape I2_S model,
                       written once to the cache directory, ~1.2 GB)
  -p, --n-prompt N     prompt lengths, comma list or a-b range (default 512; 0 = none)
  -n, --n-gen N        generation lengths (default 128; 0 = none)
  -pg P,G              also a test of P prompt tokens then G generated ones, timed
                       together (t/s over P+G tokens), shown as `pp1024+tg32`
  -d, --n-depth N      context depths (default 0): each test first fills the KV cache
                       with N tokens, untimed, then is timed; shown as `tg128 @ d1024`
  -t, --threads N      thread counts (default: available cores)
  -r, --repetitions N  timed runs per test (default 5)
  -b, --batch-size N   prompt batch size (default 2048)
  -o, --output FMT     md (default), json or csv, as llama-bench prints them
  --watts-per-core W   power per busy core for the energy estimate used when RAPL is not
                       readable (default 15); estimates are labelled as such
  --progress           progress lines on stderr
  --cache-dir DIR      where the default model is cached (default $TERN_CACHE_DIR,
                       else $XDG_CACHE_HOME/tern, else ~/.cache/tern)

Columns: llama-bench's (model, size, params, backend, threads, test, t/s = mean ± sample
standard deviation over the runs) and ours: peak RSS of the process, ms/token, J/token.";

/// Parses a llama-bench list: `1,2,4`, `1-4` (every value) or a mix.
pub fn parse_list(text: &str, what: &str) -> Result<Vec<usize>> {
    let bad = || Error::invalid(format!("{what}: cannot read '{text}' as a list of counts"));
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Parses llama-bench's `-pg pp,tg` value: two positive counts.
pub fn parse_pg(text: &str) -> Result<(usize, usize)> {
    let bad = || Error::invalid(format!("-pg: expected two counts 'pp,tg', not '{text}'"));
    let (p, g) = text.split_once(',').ok_or_else(bad)?;
    let (p, g): (usize, usize) = (
        p.trim().parse().map_err(|_| bad())?,
        g.trim().parse().map_err(|_| bad())?,
    );
    if p == 0 || g == 0 {
        return Err(bad());
    }
    Ok((p, g))
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Markdown,
    Json,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(Error::invalid(format!(
                "-o must be md, json or csv, not '{s}'"
            ))),
        }
    }

    pub fn render(self, records: &[BenchRecord]) -> String {
        match self {
            Format::Markdown => format_markdown(records),
            Format::Json => format_json(records),
            Format::Csv => format_csv(records),
        }
    }
}

/// The options of `tern bench`: -p -n -d -t -r -b --watts-per-core --progress.
pub fn plan_from(args: &mut Args) -> Result<BenchPlan> {
    let list = |args: &mut Args, names: &[&str], default: Vec<usize>| -> Result<Vec<usize>> {
        Ok(match args.value(names)? {
            Some(v) => parse_list(&v, names[0])?,
            None => default,
        })
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n_prompt = list(args, &["-p", "--n-prompt"], vec![512])?;
    let n_gen = list(args, &["-n", "--n-gen"], vec![128])?;
    let n_depth = list(args, &["-d", "--n-depth"], vec![0])?;
    let n_pg = match args.value(&["-pg"])? {
        Some(v) => vec![parse_pg(&v)?],
        None => Vec::new(),
    };
    let threads = list(args, &["-t", "--threads"], vec![cores])?;
    if threads.contains(&0) {
        return Err(Error::invalid("-t: thread counts must be at least 1"));
    }
    let reps: usize = args.parsed(&["-r", "--repetitions"])?.unwrap_or(5);
    if reps == 0 {
        return Err(Error::invalid("-r must be at least 1"));
    }
    let n_batch: usize = args.parsed(&["-b", "--batch-size"])?.unwrap_or(2048);
    let watts_per_core: f64 = args
        .parsed(&["--watts-per-core"])?
        .unwrap_or(DEFAULT_WATTS_PER_CORE);
    if !(watts_per_core.is_finite() && watts_per_core > 0.0) {
        return Err(Error::invalid("--watts-per-core must be a positive number"));
    }
    Ok(BenchPlan {
        n_prompt,
        n_gen,
        n_depth,
        n_pg,
        threads,
        reps,
        n_batch: n_batch.max(1),
        watts_per_core,
        progress: args.flag(&["--progress"]),
    })
}

/// The cache directory for the default model.
fn cache_dir(explicit: Option<String>) -> Result<PathBuf> {
    if let Some(d) = explicit.or_else(|| std::env::var("TERN_CACHE_DIR").ok()) {
        return Ok(PathBuf::from(d));
    }
    if let Ok(x) = std::env::var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(x).join("tern"));
    }
    std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("tern"))
        .map_err(|_| Error::invalid("no cache directory: set TERN_CACHE_DIR or pass -m"))
}

/// The default model: a synthetic 2B4T-shape I2_S file with an F16 head, written once.
/// A cached file is reused when it holds the tensors the generator plans.
pub fn default_model(explicit_cache: Option<String>) -> Result<String> {
    let spec = spec_from("2b4t", "i2_s", "f16", false, 1)?;
    let dir = cache_dir(explicit_cache)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    let path = dir.join("synth-2b4t-i2_s-f16-seed1.gguf");
    let text = path.to_string_lossy().to_string();
    let planned = plan_tensors(&spec);
    let valid = GgufFile::open(&path).is_ok_and(|f| {
        f.tensors().len() == planned.len()
            && f.tensors()
                .iter()
                .zip(&planned)
                .all(|(a, b)| a.name == b.name && a.dims == b.dims && a.ty == b.ty)
    });
    if valid {
        return Ok(text);
    }
    eprintln!("tern bench: no cached model; writing a synthetic 2B4T-shape I2_S model to {text}");
    let partial = dir.join("synth-2b4t-i2_s-f16-seed1.gguf.partial");
    write_with_progress(&spec, &partial.to_string_lossy(), false)?;
    std::fs::rename(&partial, &path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(text)
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let model = args.value(&["-m", "--model"])?;
    let format = Format::parse(
        &args
            .value(&["-o", "--output"])?
            .unwrap_or_else(|| "md".into()),
    )?;
    let cache = args.value(&["--cache-dir"])?;
    let plan = plan_from(&mut args)?;
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    let model = match model {
        Some(m) => m,
        None => default_model(cache)?,
    };
    let records = run_plan(&model, &plan, &mut |r| {
        if plan.progress {
            eprintln!(
                "tern bench: {} @ {} threads: {:.2} t/s",
                r.test_name(),
                r.n_threads,
                r.avg_ts()
            );
        }
    })?;
    print!("{}", format.render(&records));
    if format == Format::Markdown {
        if let Some(src) = records.iter().find_map(|r| r.energy_source.clone()) {
            println!("\nenergy: {src}");
        }
        println!("build: tern {}", tern::VERSION);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("1,2", "-t").unwrap(), vec![1, 2]);
        assert_eq!(parse_list("1-3,8", "-t").unwrap(), vec![1, 2, 3, 8]);
        assert_eq!(parse_list("0", "-p").unwrap(), vec![0]);
        for bad in ["", "x", "3-1", "1,,y", "-2"] {
            assert!(parse_list(bad, "-t").is_err(), "{bad}");
        }
        assert_eq!(parse_pg("1024,32").unwrap(), (1024, 32));
        for bad in ["1024", "0,32", "8,0", "a,b", "1,2,3"] {
            assert!(parse_pg(bad).is_err(), "{bad}");
        }
        assert!(Format::parse("md").is_ok() && Format::parse("jsonl").is_err());
    }
}
