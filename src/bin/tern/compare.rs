//! `tern compare`: bitnet.cpp's llama-bench and ours on the same file, alternately
//! (A B A B ...), each run a separate process measured the same way; a side-by-side table
//! with the ratio and its spread, a JSON file, an SVG bar chart, and the agreement of the
//! two engines' outputs.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tern::bench::llama_bench::{markdown_table, BenchRecord};
use tern::bench::stats::ratio_with_spread;
use tern::bench::svg::{bar_chart, Bar, BarGroup};
use tern::bench::sys::cpu_description;
use tern::{Error, Result};

use crate::args::Args;
use crate::bench::parse_list;
use crate::compare_depth::{run_llama_cli_at_depth, DepthPrompts};
use crate::compare_logits::compare_logits;
use crate::compare_run::{find_build, run_bench_json};

const HELP: &str = "\
usage: tern compare --bitnet-cpp BUILD_DIR -m FILE.gguf [-t 1,2] [-r 5] [-p 512] [-n 128]
                    [-d 1024,4096] [-b 2048] [--json FILE] [--svg FILE] [--no-logits]
                    [--logits-ctx 64] [--logits-chunks 1]

  --bitnet-cpp DIR   a bitnet.cpp build: DIR/bin, DIR/build/bin or DIR holds llama-bench
                     (and llama-perplexity for the output comparison, llama-cli for -d)
  -m FILE            a GGUF file both engines load (e.g. from `tern synth`)
  -t, -p, -n, -b     as llama-bench (lists allowed for -t, -p, -n)
  -d N,..            also decoding at context depth N: for each depth and each -n G, a test
                     `tgG @ dN`. bitnet.cpp's llama-bench has no -d, so its side runs
                     bitnet.cpp's llama-cli on a prompt the model's vocabulary reads as
                     exactly N tokens (BOS included; checked against the count llama-cli
                     prints), generating G+1 tokens greedily, and takes its
                     `eval time = X ms / G runs` (the G decode calls at positions N..N+G-1);
                     tern's side is `tern bench -p 0 -n G -d N`, which times the same
                     positions. -p 0 leaves out the prompt tests; the depth tests alternate
                     with the others in each round
  -r N               alternating rounds: each round runs bitnet.cpp then tern once per
                     thread count, one timed repetition each (default 5)
  --json FILE        results as JSON (default tern-compare.json)
  --svg FILE         bar chart of t/s (default tern-compare.svg)
  --no-logits        skip the output comparison
  --logits-ctx N     context of the output comparison's chunks (default 64)
  --logits-chunks N  chunks compared (default 1)";

/// One test at one thread count, measured on both engines.
pub struct Compared {
    pub bitnet: BenchRecord,
    pub tern: BenchRecord,
}

impl Compared {
    /// tern t/s over bitnet.cpp t/s, and its spread.
    pub fn ratio(&self) -> (f64, f64) {
        ratio_with_spread(&self.tern.samples_ts(), &self.bitnet.samples_ts())
    }
}

/// Merges the records of several runs: same test and threads → samples appended, peak RSS
/// the largest seen.
pub fn merge_runs(runs: &[BenchRecord]) -> Vec<BenchRecord> {
    let mut out: Vec<BenchRecord> = Vec::new();
    for r in runs {
        let key = (r.test_name(), r.n_threads);
        match out.iter_mut().find(|m| (m.test_name(), m.n_threads) == key) {
            Some(m) => {
                m.samples_ns.extend_from_slice(&r.samples_ns);
                m.peak_rss_bytes = m.peak_rss_bytes.max(r.peak_rss_bytes);
            }
            None => out.push(r.clone()),
        }
    }
    out
}

/// Pairs the merged records of both engines by test and threads.
pub fn pair(bitnet: &[BenchRecord], tern: &[BenchRecord]) -> Result<Vec<Compared>> {
    bitnet
        .iter()
        .map(|b| {
            let t = tern
                .iter()
                .find(|t| t.test_name() == b.test_name() && t.n_threads == b.n_threads)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "tern has no result for {} at {} threads",
                        b.test_name(),
                        b.n_threads
                    ))
                })?;
            Ok(Compared {
                bitnet: b.clone(),
                tern: t.clone(),
            })
        })
        .collect()
}

fn mib(b: Option<u64>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

/// The side-by-side markdown table.
pub fn table(rows: &[Compared]) -> String {
    let header = [
        "test",
        "threads",
        "bitnet.cpp t/s",
        "tern t/s",
        "tern / bitnet.cpp",
        "bitnet.cpp peak RSS",
        "tern peak RSS",
    ];
    let right = [false, true, true, true, true, true, true];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            let (r, s) = c.ratio();
            vec![
                c.bitnet.test_name(),
                c.bitnet.n_threads.to_string(),
                format!("{:.2} ± {:.2}", c.bitnet.avg_ts(), c.bitnet.stddev_ts()),
                format!("{:.2} ± {:.2}", c.tern.avg_ts(), c.tern.stddev_ts()),
                format!("{r:.3} ± {s:.3}"),
                mib(c.bitnet.peak_rss_bytes),
                mib(c.tern.peak_rss_bytes),
            ]
        })
        .collect();
    markdown_table(&header, &right, &body)
}

/// The JSON document `tern compare` writes.
pub fn to_json(model: &str, build: &Path, rows: &[Compared], logits: Option<Value>) -> Value {
    let side = |r: &BenchRecord| {
        json!({
            "avg_ts": r.avg_ts(),
            "stddev_ts": r.stddev_ts(),
            "samples_ts": r.samples_ts(),
            "samples_ns": r.samples_ns,
            "peak_rss_bytes": r.peak_rss_bytes,
            "model_type": r.model_type,
        })
    };
    json!({
        "model": model,
        "bitnet_cpp_build": build.display().to_string(),
        "cpu": cpu_description(),
        "tests": rows.iter().map(|c| {
            let (r, s) = c.ratio();
            json!({
                "test": c.bitnet.test_name(),
                "n_threads": c.bitnet.n_threads,
                // Depth rows come from `tern compare -d`, whose bitnet.cpp side is llama-cli.
                "bitnet_cpp_program": if c.bitnet.n_depth > 0 { "llama-cli" } else { "llama-bench" },
                "bitnet_cpp": side(&c.bitnet),
                "tern": side(&c.tern),
                "ratio_tern_over_bitnet_cpp": r,
                "ratio_spread": s,
            })
        }).collect::<Vec<_>>(),
        "logits": logits,
    })
}

/// The bar chart of t/s per test and thread count.
pub fn chart(model: &str, rows: &[Compared]) -> String {
    let groups: Vec<BarGroup> = rows
        .iter()
        .map(|c| BarGroup {
            label: format!("{} @ {} thr", c.bitnet.test_name(), c.bitnet.n_threads),
            bars: [&c.bitnet, &c.tern]
                .iter()
                .map(|r| Bar {
                    value: r.avg_ts(),
                    spread: r.stddev_ts(),
                })
                .collect(),
        })
        .collect();
    let name = Path::new(model)
        .file_name()
        .map_or(model.to_string(), |n| n.to_string_lossy().to_string());
    bar_chart(
        &format!("tokens/s on {name}"),
        "tokens per second (mean ± sample std. dev.)",
        &["bitnet.cpp", "tern"],
        &groups,
    )
}

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let build_dir = args
        .value(&["--bitnet-cpp"])?
        .ok_or_else(|| Error::invalid(format!("--bitnet-cpp DIR is required\n\n{HELP}")))?;
    let model = args
        .value(&["-m", "--model"])?
        .ok_or_else(|| Error::invalid(format!("-m FILE is required\n\n{HELP}")))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match args.value(&["-t", "--threads"])? {
        Some(t) => parse_list(&t, "-t")?,
        None => vec![cores],
    };
    let rounds: usize = args.parsed(&["-r", "--repetitions"])?.unwrap_or(5);
    let p = args
        .value(&["-p", "--n-prompt"])?
        .unwrap_or_else(|| "512".into());
    let n = args
        .value(&["-n", "--n-gen"])?
        .unwrap_or_else(|| "128".into());
    let depths = match args.value(&["-d", "--n-depth"])? {
        Some(d) => parse_list(&d, "-d")?,
        None => Vec::new(),
    };
    let b: usize = args.parsed(&["-b", "--batch-size"])?.unwrap_or(2048);
    let json_path = args
        .value(&["--json"])?
        .unwrap_or_else(|| "tern-compare.json".into());
    let svg_path = args
        .value(&["--svg"])?
        .unwrap_or_else(|| "tern-compare.svg".into());
    let no_logits = args.flag(&["--no-logits"]);
    let logits_ctx: usize = args.parsed(&["--logits-ctx"])?.unwrap_or(64);
    let logits_chunks: usize = args.parsed(&["--logits-chunks"])?.unwrap_or(1);
    let rest = args.positionals()?;
    if !rest.is_empty() {
        return Err(Error::invalid(format!(
            "unexpected arguments {rest:?}\n\n{HELP}"
        )));
    }
    parse_list(&p, "-p")?;
    let n_gens: Vec<usize> = parse_list(&n, "-n")?
        .into_iter()
        .filter(|&g| g > 0)
        .collect();
    let depths: Vec<usize> = depths.into_iter().filter(|&d| d > 0).collect();
    if !depths.is_empty() && n_gens.is_empty() {
        return Err(Error::invalid(
            "-d needs a generation length: -n G with G > 0",
        ));
    }
    if rounds == 0 || threads.contains(&0) {
        return Err(Error::invalid("-r and -t must be at least 1"));
    }
    let build = find_build(&PathBuf::from(&build_dir))?;
    if !Path::new(&model).is_file() {
        return Err(Error::NotFound(format!("-m {model}: no such file")));
    }
    let llama_cli = match (&build.llama_cli, depths.is_empty()) {
        (_, true) => None,
        (Some(cli), false) => Some(cli.clone()),
        (None, false) => {
            return Err(Error::NotFound(format!(
                "-d needs bitnet.cpp's llama-cli next to {} (its llama-bench has no -d); \
                 build the llama-cli target too",
                build.llama_bench.display()
            )))
        }
    };
    let prompts = match &llama_cli {
        Some(_) => Some(DepthPrompts::write(&model, &depths)?),
        None => None,
    };
    let tern_exe = std::env::current_exe()?;
    let mut bitnet_runs = Vec::new();
    let mut tern_runs = Vec::new();
    for round in 0..rounds {
        for &t in &threads {
            let common: Vec<String> = [
                "-m",
                &model,
                "-p",
                &p,
                "-n",
                &n,
                "-t",
                &t.to_string(),
                "-r",
                "1",
                "-b",
                &b.to_string(),
                "-o",
                "json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            eprintln!(
                "tern compare: round {}/{rounds}, {t} threads: bitnet.cpp",
                round + 1
            );
            let a = run_bench_json("bitnet.cpp's llama-bench", &build.llama_bench, &common)
                .map_err(|e| {
                    e.context(format!(
                        "bitnet.cpp could not benchmark {model} (a file it cannot load?)"
                    ))
                })?;
            bitnet_runs.extend(a);
            eprintln!(
                "tern compare: round {}/{rounds}, {t} threads: tern",
                round + 1
            );
            let mut ours = vec!["bench".to_string()];
            ours.extend(common);
            tern_runs.extend(run_bench_json("tern bench", &tern_exe, &ours)?);
            if let (Some(cli), Some(prompts)) = (&llama_cli, &prompts) {
                for (depth, file) in &prompts.files {
                    for &g in &n_gens {
                        eprintln!(
                            "tern compare: round {}/{rounds}, {t} threads, tg{g} @ d{depth}: \
                             bitnet.cpp (llama-cli), then tern",
                            round + 1
                        );
                        bitnet_runs.push(
                            run_llama_cli_at_depth(cli, &model, file, *depth, g, t, b)
                                .map_err(|e| e.context(format!("bitnet.cpp at depth {depth}")))?,
                        );
                        let ours: Vec<String> = [
                            "bench",
                            "-m",
                            &model,
                            "-p",
                            "0",
                            "-n",
                            &g.to_string(),
                            "-d",
                            &depth.to_string(),
                            "-t",
                            &t.to_string(),
                            "-r",
                            "1",
                            "-b",
                            &b.to_string(),
                            "-o",
                            "json",
                        ]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                        tern_runs.extend(run_bench_json("tern bench", &tern_exe, &ours)?);
                    }
                }
            }
        }
    }
    drop(prompts);
    let rows = pair(&merge_runs(&bitnet_runs), &merge_runs(&tern_runs))?;

    let logits = if no_logits {
        None
    } else if let Some(ppl) = &build.llama_perplexity {
        eprintln!("tern compare: comparing outputs (llama-perplexity --kl-divergence-base)");
        let t = *threads.iter().max().unwrap_or(&1);
        match compare_logits(ppl, &model, logits_ctx, logits_chunks, t) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("tern compare: output comparison failed: {e}");
                None
            }
        }
    } else {
        eprintln!("tern compare: no llama-perplexity in the build: outputs not compared");
        None
    };

    println!("model: {model}\ncpu: {}\n", cpu_description());
    print!("{}", table(&rows));
    println!(
        "\nratio = tern t/s / bitnet.cpp t/s (± from both sides' sample std. dev.); \
         {rounds} alternating rounds, 1 timed run each"
    );
    if !depths.is_empty() {
        println!(
            "rows `tgG @ dN`: bitnet.cpp's t/s is llama-cli's eval time (its G decode calls \
             after a prompt of N tokens), tern's is `tern bench -p 0 -n G -d N`"
        );
    }
    if let Some(a) = &logits {
        println!("{}", a.summary());
    }
    let doc = to_json(
        &model,
        &PathBuf::from(&build_dir),
        &rows,
        logits.map(|a| a.to_json()),
    );
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).expect("serializable") + "\n",
    )
    .map_err(|e| Error::Io(format!("{json_path}: {e}")))?;
    std::fs::write(&svg_path, chart(&model, &rows))
        .map_err(|e| Error::Io(format!("{svg_path}: {e}")))?;
    println!("wrote {json_path} and {svg_path}");
    Ok(())
}
