//! llama-bench's result records: one per (model, threads, test), with the timing samples of
//! its repetitions. We print them in llama-bench's three formats (markdown table, JSON array,
//! CSV) with the same field names, plus our extra fields (peak RSS, ms/token, energy), and
//! read llama-bench's JSON output back.

use serde_json::{json, Value};

use super::stats::{mean, stddev};
use crate::error::{Error, Result};

/// One benchmark test and its measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRecord {
    /// Path of the model file.
    pub model_filename: String,
    /// llama-bench's model description, e.g. `bitnet-b1.58 2B I2_S - 2 bpw ternary`.
    pub model_type: String,
    /// Bytes of tensor data (llama-bench's `model_size`).
    pub model_size: u64,
    /// Parameters.
    pub model_n_params: u64,
    /// `CPU`.
    pub backend: String,
    /// Threads asked for.
    pub n_threads: usize,
    /// Batch size of prompt processing.
    pub n_batch: usize,
    /// Prompt tokens (0 for a generation test).
    pub n_prompt: usize,
    /// Generated tokens (0 for a prompt test).
    pub n_gen: usize,
    /// Tokens already in the KV cache when the timed test starts (llama-bench `-d`).
    pub n_depth: usize,
    /// When the test ran (RFC 3339).
    pub test_time: String,
    /// Wall time of each repetition, nanoseconds.
    pub samples_ns: Vec<u64>,
    /// CPU description.
    pub cpu_info: String,
    /// Build identification.
    pub build_commit: String,
    /// Ours: peak resident memory of the process after the test, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Ours: joules per token over all repetitions.
    pub energy_j_per_token: Option<f64>,
    /// Ours: where the energy figure comes from (`RAPL` or `estimate (...)`).
    pub energy_source: Option<String>,
}

impl BenchRecord {
    /// llama-bench's test name: `pp512`, `tg128` or `pp512+tg128`, followed by
    /// ` @ d1024` when the test ran after 1024 tokens of context.
    pub fn test_name(&self) -> String {
        let base = match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        match self.n_depth {
            0 => base,
            d => format!("{base} @ d{d}"),
        }
    }

    /// Tokens processed per repetition.
    pub fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }

    /// Tokens per second of each repetition.
    pub fn samples_ts(&self) -> Vec<f64> {
        let n = self.n_tokens() as f64;
        self.samples_ns
            .iter()
            .map(|&ns| if ns == 0 { 0.0 } else { n * 1e9 / ns as f64 })
            .collect()
    }

    /// Mean tokens per second (mean of the per-repetition rates, as llama-bench).
    pub fn avg_ts(&self) -> f64 {
        mean(&self.samples_ts())
    }

    /// Sample standard deviation of the per-repetition rates.
    pub fn stddev_ts(&self) -> f64 {
        stddev(&self.samples_ts())
    }

    fn samples_ns_f64(&self) -> Vec<f64> {
        self.samples_ns.iter().map(|&v| v as f64).collect()
    }

    /// Mean wall time of a repetition, nanoseconds.
    pub fn avg_ns(&self) -> f64 {
        mean(&self.samples_ns_f64())
    }

    /// Milliseconds per token (mean over repetitions).
    pub fn ms_per_token(&self) -> f64 {
        if self.n_tokens() == 0 {
            return 0.0;
        }
        self.avg_ns() / self.n_tokens() as f64 / 1e6
    }

    /// The fields of llama-bench's JSON output in its order, then ours (peak RSS and
    /// energy only when known).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut f: Vec<(&'static str, Value)> = vec![
            ("build_commit", json!(self.build_commit)),
            ("build_number", json!(0)),
            ("cpu_info", json!(self.cpu_info)),
            ("gpu_info", json!("")),
            ("backends", json!(self.backend)),
            ("model_filename", json!(self.model_filename)),
            ("model_type", json!(self.model_type)),
            ("model_size", json!(self.model_size)),
            ("model_n_params", json!(self.model_n_params)),
            ("n_batch", json!(self.n_batch)),
            ("n_ubatch", json!(self.n_batch)),
            ("n_threads", json!(self.n_threads)),
            ("type_k", json!("f16")),
            ("type_v", json!("f16")),
            ("n_gpu_layers", json!(0)),
            ("use_mmap", json!(true)),
            ("n_prompt", json!(self.n_prompt)),
            ("n_gen", json!(self.n_gen)),
            ("n_depth", json!(self.n_depth)),
            ("test_time", json!(self.test_time)),
            ("avg_ns", json!(self.avg_ns().round() as u64)),
            (
                "stddev_ns",
                json!(stddev(&self.samples_ns_f64()).round() as u64),
            ),
            ("avg_ts", json!(self.avg_ts())),
            ("stddev_ts", json!(self.stddev_ts())),
            ("ms_per_token", json!(self.ms_per_token())),
        ];
        if let Some(r) = self.peak_rss_bytes {
            f.push(("peak_rss_bytes", json!(r)));
        }
        if let (Some(e), Some(s)) = (self.energy_j_per_token, &self.energy_source) {
            f.push(("energy_j_per_token", json!(e)));
            f.push(("energy_source", json!(s)));
        }
        f.push(("samples_ns", json!(self.samples_ns)));
        f.push(("samples_ts", json!(self.samples_ts())));
        f
    }

    /// Reads one object of llama-bench's JSON output.
    pub fn from_json(v: &Value) -> Result<BenchRecord> {
        let o = v
            .as_object()
            .ok_or_else(|| Error::invalid("llama-bench JSON: a test is not an object"))?;
        let str_of = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let int_of = |k: &str| -> Result<u64> {
            o.get(k)
                .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f as u64)))
                .ok_or_else(|| Error::invalid(format!("llama-bench JSON: no number '{k}'")))
        };
        let samples_ns = o
            .get("samples_ns")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::invalid("llama-bench JSON: no 'samples_ns' array"))?
            .iter()
            .map(|x| {
                x.as_u64()
                    .ok_or_else(|| Error::invalid("llama-bench JSON: a sample is not a count"))
            })
            .collect::<Result<Vec<u64>>>()?;
        let backend = match o.get("backends").and_then(Value::as_str) {
            Some(b) if !b.is_empty() => b.to_string(),
            _ => "CPU".to_string(),
        };
        Ok(BenchRecord {
            model_filename: str_of("model_filename"),
            model_type: str_of("model_type"),
            model_size: int_of("model_size")?,
            model_n_params: int_of("model_n_params")?,
            backend,
            n_threads: int_of("n_threads")? as usize,
            n_batch: int_of("n_batch").unwrap_or(0) as usize,
            n_prompt: int_of("n_prompt")? as usize,
            n_gen: int_of("n_gen")? as usize,
            // Builds older than llama-bench's `-d` (bitnet.cpp's) have no `n_depth`.
            n_depth: int_of("n_depth").unwrap_or(0) as usize,
            test_time: str_of("test_time"),
            samples_ns,
            cpu_info: str_of("cpu_info"),
            build_commit: str_of("build_commit"),
            peak_rss_bytes: o.get("peak_rss_bytes").and_then(Value::as_u64),
            energy_j_per_token: o.get("energy_j_per_token").and_then(Value::as_f64),
            energy_source: o
                .get("energy_source")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// Reads llama-bench's `-o json` output (a JSON array of tests). Text before the array
/// (log lines some builds print to stdout) is skipped.
pub fn parse_llama_bench_json(text: &str) -> Result<Vec<BenchRecord>> {
    let start = text
        .find('[')
        .ok_or_else(|| Error::invalid("llama-bench JSON: no '[' in the output"))?;
    let v: Value = serde_json::from_str(text[start..].trim_end())
        .map_err(|e| Error::invalid(format!("llama-bench JSON: {e}")))?;
    v.as_array()
        .ok_or_else(|| Error::invalid("llama-bench JSON: not an array"))?
        .iter()
        .map(BenchRecord::from_json)
        .collect()
}

/// The records as llama-bench's JSON output: an array of objects, fields in its order.
pub fn format_json(records: &[BenchRecord]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in records.iter().enumerate() {
        out += "  {\n";
        let fields = r.fields();
        for (j, (k, v)) in fields.iter().enumerate() {
            let sep = if j + 1 < fields.len() { "," } else { "" };
            out += &format!("    \"{k}\": {v}{sep}\n");
        }
        out += if i + 1 < records.len() {
            "  },\n"
        } else {
            "  }\n"
        };
    }
    out + "]\n"
}

/// CSV: a header line (every field any record has, in llama-bench's order), then one line
/// per record, every value quoted as llama-bench does.
pub fn format_csv(records: &[BenchRecord]) -> String {
    let rows: Vec<Vec<(&'static str, Value)>> = records
        .iter()
        .map(|r| {
            r.fields()
                .into_iter()
                .filter(|(k, _)| !k.starts_with("samples_"))
                .collect()
        })
        .collect();
    let mut keys: Vec<&'static str> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !keys.contains(k) {
                keys.push(k);
            }
        }
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = keys.join(",") + "\n";
    for row in &rows {
        let vals: Vec<String> = keys
            .iter()
            .map(
                |k| match row.iter().find(|(rk, _)| rk == k).map(|(_, v)| v) {
                    None | Some(Value::Null) => quote(""),
                    Some(Value::String(s)) => quote(s),
                    Some(v) => quote(&v.to_string()),
                },
            )
            .collect();
        out += &(vals.join(",") + "\n");
    }
    out
}

/// llama-bench's size column: MiB below 1 GiB, else GiB.
pub fn size_label(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1 << 30 {
        format!("{:.2} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// llama-bench's params column: M below a billion, else B.
pub fn params_label(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.2} B", n as f64 / 1e9)
    }
}

/// A markdown table: the columns aligned (numbers right, text left).
pub fn markdown_table(header: &[&str], right_aligned: &[bool], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let cell = |s: &str, i: usize| {
        let pad = widths[i].saturating_sub(s.chars().count());
        if right_aligned[i] {
            format!(" {}{} |", " ".repeat(pad), s)
        } else {
            format!(" {}{} |", s, " ".repeat(pad))
        }
    };
    let mut out = String::from("|");
    for (i, h) in header.iter().enumerate() {
        out += &cell(h, i);
    }
    out += "\n|";
    for (i, w) in widths.iter().enumerate() {
        let dashes = "-".repeat(w.saturating_sub(1));
        out += &if right_aligned[i] {
            format!(" {dashes}: |")
        } else {
            format!(" {dashes}- |")
        };
    }
    out += "\n";
    for r in rows {
        out += "|";
        for (i, v) in r.iter().enumerate() {
            out += &cell(v, i);
        }
        out += "\n";
    }
    out
}

/// llama-bench's markdown table (model, size, params, backend, threads, test, t/s) plus
/// our columns: peak RSS, ms/token and J/token (marked `(est.)` when estimated).
pub fn format_markdown(records: &[BenchRecord]) -> String {
    let estimated = records.iter().any(|r| {
        r.energy_source
            .as_deref()
            .is_some_and(|s| s.starts_with("estimate"))
    });
    let energy_header = if estimated {
        "J/token (est.)"
    } else {
        "J/token"
    };
    let header = [
        "model",
        "size",
        "params",
        "backend",
        "threads",
        "test",
        "t/s",
        "peak RSS",
        "ms/token",
        energy_header,
    ];
    let right = [false, true, true, false, true, true, true, true, true, true];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.model_type.clone(),
                size_label(r.model_size),
                params_label(r.model_n_params),
                r.backend.clone(),
                r.n_threads.to_string(),
                r.test_name(),
                format!("{:.2} ± {:.2}", r.avg_ts(), r.stddev_ts()),
                r.peak_rss_bytes
                    .map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0)),
                format!("{:.2}", r.ms_per_token()),
                r.energy_j_per_token
                    .map_or("n/a".into(), |e| format!("{e:.3}")),
            ]
        })
        .collect();
    markdown_table(&header, &right, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tests as printed by bitnet.cpp's llama-bench `-o json` (trimmed fields).
    pub(crate) const FIXTURE: &str = r#"[
  {
    "build_commit": "bitnet-build-standin",
    "build_number": 0,
    "cuda": false,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "model_filename": "m.gguf",
    "model_type": "bitnet-25 ?B I2_S - 2 bpw ternary",
    "model_size": 3229696,
    "model_n_params": 5505280,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "n_prompt": 32,
    "n_gen": 0,
    "test_time": "2026-11-24T01:00:00Z",
    "avg_ns": 3000000,
    "stddev_ns": 1000000,
    "avg_ts": 11111.1,
    "stddev_ts": 3000.0,
    "samples_ns": [ 2000000, 4000000 ],
    "samples_ts": [ 16000, 8000 ]
  },
  {
    "build_commit": "bitnet-build-standin",
    "build_number": 0,
    "cpu_info": "AMD EPYC",
    "gpu_info": "",
    "model_filename": "m.gguf",
    "model_type": "bitnet-25 ?B I2_S - 2 bpw ternary",
    "model_size": 3229696,
    "model_n_params": 5505280,
    "n_batch": 2048,
    "n_threads": 2,
    "n_prompt": 0,
    "n_gen": 8,
    "test_time": "2026-11-24T01:00:01Z",
    "avg_ns": 1000000,
    "stddev_ns": 0,
    "avg_ts": 8000,
    "stddev_ts": 0,
    "samples_ns": [ 1000000, 1000000 ],
    "samples_ts": [ 8000, 8000 ]
  }
]
"#;

    #[test]
    fn reads_llama_bench_json() {
        let text = format!("some log line\n{FIXTURE}");
        let r = parse_llama_bench_json(&text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].test_name(), "pp32");
        assert_eq!(r[1].test_name(), "tg8");
        assert_eq!(r[0].samples_ts(), vec![16000.0, 8000.0]);
        assert_eq!(r[0].avg_ts(), 12000.0);
        assert_eq!(r[1].ms_per_token(), 0.125);
        assert_eq!(r[0].backend, "CPU");
        assert_eq!(r[1].n_depth, 0, "bitnet.cpp's JSON has no n_depth");
        let mut deep = r[1].clone();
        deep.n_depth = 1024;
        assert_eq!(deep.test_name(), "tg8 @ d1024");
        assert_eq!(deep.n_tokens(), 8, "the depth is not timed");
        assert!(parse_llama_bench_json("no json").is_err());
        assert!(parse_llama_bench_json("[{\"model_size\": 1}]").is_err());
    }

    #[test]
    fn formats_round_trip_and_align() {
        let mut r = parse_llama_bench_json(FIXTURE).unwrap();
        r[0].peak_rss_bytes = Some(64 << 20);
        r[0].energy_j_per_token = Some(0.5);
        r[0].energy_source = Some("estimate (15 W/core x CPU time)".into());
        let back = parse_llama_bench_json(&format_json(&r)).unwrap();
        assert_eq!(back, r);
        let md = format_markdown(&r);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].contains("| test |") || lines[0].contains(" test |"));
        assert!(lines[0].contains("J/token (est.)"));
        assert!(lines[2].contains("12000.00 ± 5656.85"), "{}", lines[2]);
        assert!(lines[2].contains("64 MiB") && lines[2].contains("3.08 MiB"));
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{md}");
        let csv = format_csv(&r);
        let csv_lines: Vec<&str> = csv.lines().collect();
        assert_eq!(csv_lines.len(), 3);
        assert!(csv_lines[0].starts_with("build_commit,"));
        let n_fields = csv_lines[0].split(',').count();
        assert!(csv_lines[1].starts_with("\"bitnet-build-standin\""));
        assert_eq!(csv_lines[2].matches("\",\"").count() + 1, n_fields);
        assert_eq!(size_label(2 << 30), "2.00 GiB");
        assert_eq!(params_label(2_410_000_000), "2.41 B");
    }
}
