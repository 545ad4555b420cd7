//! The measurements behind `tern bench`, run the way llama-bench runs them: for each thread
//! count and test, one warm-up run, then `reps` timed runs. A test at depth `d` (`-d`) first
//! fills the KV cache with `d` random tokens (untimed, once per test: every run then cuts
//! the cache back to those `d` positions); at depth 0 every run starts from an empty cache.
//! A prompt test evaluates `n_prompt` random tokens in batches of `n_batch` (the first one
//! BOS when the model adds it and the cache is empty); a generation test evaluates `n_gen`
//! tokens one at a time.

use std::sync::Arc;
use std::time::Instant;

use tern::bench::energy::EnergyMeter;
use tern::bench::llama_bench::BenchRecord;
use tern::bench::sys::{cpu_description, peak_rss_bytes};
use tern::context::{Context, ContextParams};
use tern::model::{KvType, LoadParams, Model};
use tern::{Error, Result};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPlan {
    pub n_prompt: Vec<usize>,
    pub n_gen: Vec<usize>,
    /// KV-cache depths: tokens already in the context when a test starts (llama-bench `-d`).
    pub n_depth: Vec<usize>,
    /// Prompt-then-generation tests (llama-bench `-pg pp,tg`): both timed together.
    pub n_pg: Vec<(usize, usize)>,
    pub threads: Vec<usize>,
    pub reps: usize,
    pub n_batch: usize,
    pub watts_per_core: f64,
    pub progress: bool,
}

/// One test: prompt processing or generation, after `n_depth` tokens of context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub n_depth: usize,
}

impl Test {
    /// Context positions the test needs: depth, prompt and generated tokens.
    pub fn n_ctx(&self) -> usize {
        (self.n_depth + self.n_prompt + self.n_gen).max(1)
    }
}

impl BenchPlan {
    /// The tests in llama-bench's order: for each depth, prompt tests, generation tests,
    /// then prompt-then-generation tests.
    pub fn tests(&self) -> Vec<Test> {
        let mut out = Vec::new();
        for &n_depth in &self.n_depth {
            let pp = self.n_prompt.iter().filter(|&&p| p > 0).map(|&p| Test {
                n_prompt: p,
                n_gen: 0,
                n_depth,
            });
            let tg = self.n_gen.iter().filter(|&&g| g > 0).map(|&g| Test {
                n_prompt: 0,
                n_gen: g,
                n_depth,
            });
            let pg = self.n_pg.iter().map(|&(p, g)| Test {
                n_prompt: p,
                n_gen: g,
                n_depth,
            });
            out.extend(pp.chain(tg).chain(pg));
        }
        out
    }
}

/// What llama-bench prints about a model: description, tensor bytes, parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    pub model_type: String,
    pub size: u64,
    pub n_params: u64,
}

/// `arch SIZE TYPE` (e.g. `bitnet-b1.58 2B I2_S`), tensor bytes and element count.
pub fn summarize(model: &Model) -> ModelSummary {
    let tensors = model.file().tensors();
    let size = tensors.iter().map(|t| t.nbytes).sum();
    let n_params: u64 = tensors.iter().map(|t| t.dims.iter().product::<u64>()).sum();
    // The type holding most parameters names the model, as llama.cpp's file type does.
    let mut by_type: Vec<(String, u64)> = Vec::new();
    for t in tensors {
        let n: u64 = t.dims.iter().product();
        match by_type.iter_mut().find(|(k, _)| k == t.ty.name()) {
            Some(e) => e.1 += n,
            None => by_type.push((t.ty.name().to_string(), n)),
        }
    }
    let ty = by_type
        .iter()
        .max_by_key(|e| e.1)
        .map_or("?".to_string(), |e| e.0.clone());
    let scale = if n_params >= 1_000_000_000 {
        format!("{:.0}B", n_params as f64 / 1e9)
    } else {
        format!("{:.0}M", n_params as f64 / 1e6)
    };
    ModelSummary {
        model_type: format!("{} {scale} {ty}", model.info().architecture),
        size,
        n_params,
    }
}

/// splitmix64 for the random token ids (llama-bench draws them with `rand()`).
struct TokenRng(u64);

impl TokenRng {
    fn next(&mut self, n_vocab: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n_vocab as u64) as u32
    }
}

struct Runner {
    ctx: Context,
    bos: Option<u32>,
    n_vocab: usize,
    n_batch: usize,
    rng: TokenRng,
}

impl Runner {
    fn prompt(&mut self, n: usize) -> Result<()> {
        let mut done = 0;
        let mut batch = Vec::with_capacity(self.n_batch);
        while done < n {
            let k = self.n_batch.min(n - done);
            batch.clear();
            for i in 0..k {
                let t = match self.bos {
                    Some(b) if done == 0 && i == 0 && self.ctx.n_past() == 0 => b,
                    _ => self.rng.next(self.n_vocab),
                };
                batch.push(t);
            }
            self.ctx.eval(&batch)?;
            done += k;
        }
        Ok(())
    }

    fn generate(&mut self, n: usize) -> Result<()> {
        let mut t = match self.bos {
            Some(b) if self.ctx.n_past() == 0 => b,
            _ => self.rng.next(self.n_vocab),
        };
        for _ in 0..n {
            self.ctx.eval(&[t])?;
            t = self.rng.next(self.n_vocab);
        }
        Ok(())
    }

    fn run(&mut self, test: Test) -> Result<()> {
        if test.n_prompt > 0 {
            self.prompt(test.n_prompt)?;
        }
        if test.n_gen > 0 {
            self.generate(test.n_gen)?;
        }
        Ok(())
    }
}

/// Loads `path` and runs `plan`; `on_record` gets each record as soon as it is measured.
pub fn run_plan(
    path: &str,
    plan: &BenchPlan,
    on_record: &mut dyn FnMut(&BenchRecord),
) -> Result<Vec<BenchRecord>> {
    let model = Arc::new(Model::load(path, &LoadParams::default())?);
    let summary = summarize(&model);
    let bos = model
        .tokenizer()
        .filter(|t| t.special().add_bos)
        .and_then(|t| t.bos());
    let tests = plan.tests();
    if tests.is_empty() {
        return Err(Error::invalid(
            "no tests: every -p and -n value is 0 and no -pg",
        ));
    }
    let mut out = Vec::new();
    for &threads in &plan.threads {
        for &test in &tests {
            // The context made for the test runs on its own pool of `threads` threads.
            let record = measure(&model, &summary, path, bos, plan, threads, test)?;
            on_record(&record);
            out.push(record);
        }
    }
    Ok(out)
}

fn measure(
    model: &Arc<Model>,
    summary: &ModelSummary,
    path: &str,
    bos: Option<u32>,
    plan: &BenchPlan,
    threads: usize,
    test: Test,
) -> Result<BenchRecord> {
    let n_ctx = test.n_ctx();
    let n_batch = plan
        .n_batch
        .clamp(1, test.n_prompt.max(test.n_depth).max(1));
    let params = ContextParams {
        n_ctx,
        n_batch,
        kv_type: KvType::F16,
        logits_all: false,
        n_threads: threads,
        n_threads_batch: threads,
    };
    let ctx = Context::new(model.clone(), &params)?;
    let n_vocab = ctx.n_vocab();
    let mut r = Runner {
        ctx,
        bos,
        n_vocab,
        n_batch,
        rng: TokenRng(0x5eed),
    };
    let say = |what: &str| {
        if plan.progress {
            eprintln!("tern bench: {threads} threads, {test:?}: {what}");
        }
    };
    if test.n_depth > 0 {
        say(&format!(
            "filling {} tokens of context (untimed)",
            test.n_depth
        ));
        r.prompt(test.n_depth)?;
    }
    say("warmup");
    if test.n_prompt > 0 {
        r.prompt(test.n_prompt)?;
    }
    if test.n_gen > 0 {
        r.ctx.kv_truncate(test.n_depth)?;
        r.generate(1)?;
    }
    let meter = EnergyMeter::start(plan.watts_per_core);
    let mut samples_ns = Vec::with_capacity(plan.reps);
    for i in 0..plan.reps {
        say(&format!("run {}/{}", i + 1, plan.reps));
        r.ctx.kv_truncate(test.n_depth)?;
        let t0 = Instant::now();
        r.run(test)?;
        samples_ns.push(t0.elapsed().as_nanos() as u64);
    }
    let energy = meter.stop();
    let tokens = (plan.reps * (test.n_prompt + test.n_gen)).max(1) as f64;
    Ok(BenchRecord {
        model_filename: path.to_string(),
        model_type: summary.model_type.clone(),
        model_size: summary.size,
        model_n_params: summary.n_params,
        backend: "CPU".to_string(),
        n_threads: threads,
        n_batch: plan.n_batch,
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        n_depth: test.n_depth,
        test_time: now_rfc3339(),
        samples_ns,
        cpu_info: cpu_description(),
        build_commit: format!("tern {}", tern::VERSION),
        peak_rss_bytes: peak_rss_bytes(),
        energy_j_per_token: energy.as_ref().map(|e| e.joules / tokens),
        energy_source: energy.map(|e| e.source.label()),
    })
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_in_llama_bench_order() {
        let plan = BenchPlan {
            n_prompt: vec![0, 64],
            n_gen: vec![16, 0],
            n_depth: vec![0, 100],
            n_pg: vec![(8, 2)],
            threads: vec![1],
            reps: 1,
            n_batch: 2048,
            watts_per_core: 1.0,
            progress: false,
        };
        let test = |n_prompt, n_gen, n_depth| Test {
            n_prompt,
            n_gen,
            n_depth,
        };
        assert_eq!(
            plan.tests(),
            vec![
                test(64, 0, 0),
                test(0, 16, 0),
                test(8, 2, 0),
                test(64, 0, 100),
                test(0, 16, 100),
                test(8, 2, 100)
            ]
        );
        // The context covers the depth and the test's own tokens.
        assert_eq!(test(0, 16, 100).n_ctx(), 116);
        assert_eq!(test(64, 0, 0).n_ctx(), 64);
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
