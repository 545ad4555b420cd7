//! The evaluation tasks on the small reference models and the hand-written sample files in
//! `tests/data/eval/`. Expected scores come from independent, deliberately plain
//! computations (each candidate sequence evaluated whole, on its own, from an empty cache,
//! log-softmax in double precision) and, for perplexity, from bitnet.cpp's own logits in the
//! reference folder. The engine, like bitnet.cpp, may round differently when a sequence is
//! fed in other batches (f32 files: ~1e-3 per logit), hence the tolerances where the
//! batching differs; where it is the same, results must be identical.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::eval::perplexity::{perplexity, perplexity_tokens, PerplexityParams};
use tern::eval::{hellaswag, multiple_choice, no_progress, winogrande};
use tern::model::{KvType, LoadParams, Model};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval")
        .join(name)
}

fn model(rel: &str) -> Option<Arc<Model>> {
    let dir = common::reference_dir()?;
    Some(Arc::new(
        Model::load(dir.join(rel), &LoadParams::default()).unwrap(),
    ))
}

fn context(model: &Arc<Model>, n_ctx: usize, n_batch: usize, logits_all: bool) -> Context {
    threaded_context(model, n_ctx, n_batch, logits_all, 0)
}

/// A context on `threads` threads (0: one per CPU).
fn threaded_context(
    model: &Arc<Model>,
    n_ctx: usize,
    n_batch: usize,
    logits_all: bool,
    threads: usize,
) -> Context {
    Context::new(
        model.clone(),
        &ContextParams {
            n_ctx,
            n_batch,
            kv_type: KvType::F16,
            logits_all,
            n_threads: threads,
            n_threads_batch: threads,
        },
    )
    .unwrap()
}

fn log_softmax_f64(row: &[f32], token: u32) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    f64::from(row[token as usize]) - max - sum.ln()
}

/// log p(seq[k] | seq[..k]) for every k >= 1, evaluating the sequence as one batch.
fn token_logprobs(model: &Arc<Model>, seq: &[u32]) -> Vec<f64> {
    let mut ctx = context(model, seq.len(), seq.len(), true);
    ctx.eval(seq).unwrap();
    let mut out = vec![f64::NAN];
    for k in 0..seq.len() - 1 {
        out.push(log_softmax_f64(ctx.logits_row(k).unwrap(), seq[k + 1]));
    }
    out
}

/// Scores from the engine within `tol` of the plain ones, and the same choice wherever the
/// plain best beats the runner-up by more than twice the tolerance.
fn assert_close_scores(task: usize, got: &[f64], chosen: usize, want: &[f64], tol: f64) {
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < tol, "task {task}: {got:?} vs {want:?}");
    }
    let best = argmax(want);
    let runner_up = (0..want.len())
        .filter(|&i| i != best)
        .map(|i| want[i])
        .fold(f64::NEG_INFINITY, f64::max);
    if want[best] - runner_up > 2.0 * tol {
        assert_eq!(chosen, best, "task {task}: {got:?} vs {want:?}");
    }
}

/// Tolerance on mean log-likelihoods between batchings on the f32 model.
const TOL: f64 = 5e-3;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn prefix_len(seqs: &[Vec<u32>]) -> usize {
    let min = seqs.iter().map(Vec::len).min().unwrap();
    (0..min)
        .take_while(|&k| seqs.iter().all(|s| s[k] == seqs[0][k]))
        .count()
}

fn argmax(v: &[f64]) -> usize {
    (1..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

const F32_MODEL: &str = "bitnet25/ggml-model-f32.gguf";
const I2S_MODEL: &str = "bitnet25/ggml-model-i2s.gguf";

#[test]
fn perplexity_agrees_with_bitnet_cpp_logits() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let m = model(F32_MODEL).unwrap();
    let seqs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bitnet25/tokens.json")).unwrap()).unwrap();
    let seq: Vec<u32> = seqs["sequences"][2]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(seq.len(), 32);
    let raw =
        std::fs::read(dir.join("bitnet25/logits/f32/seq2_batched_prompt_logits.f32")).unwrap();
    let rows: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let n_vocab = 1024;
    // Chunk 0 of 16 tokens, no BOS replacement: rows 8..=14 predict tokens 9..=15.
    let nll: Vec<f64> = (8..15)
        .map(|p| -log_softmax_f64(&rows[p * n_vocab..(p + 1) * n_vocab], seq[p + 1]))
        .collect();
    let want = mean(&nll).exp();

    let mut ctx = context(&m, 16, 16, true);
    let params = PerplexityParams {
        n_ctx: 16,
        max_chunks: Some(1),
    };
    let got = perplexity_tokens(&mut ctx, &seq, None, &params, &mut no_progress).unwrap();
    assert_eq!((got.n_chunks, got.count), (1, 7));
    assert!(
        (got.ppl - want).abs() < 1e-3 * want,
        "PPL {} vs {} from bitnet.cpp's logits",
        got.ppl,
        want
    );
    // Both chunks, batches of 5: each chunk on its own from an empty cache.
    let params = PerplexityParams {
        n_ctx: 16,
        max_chunks: None,
    };
    let mut small_batches = context(&m, 16, 5, true);
    let both =
        perplexity_tokens(&mut small_batches, &seq, None, &params, &mut no_progress).unwrap();
    let mut nll = Vec::new();
    for c in 0..2 {
        let lp = token_logprobs(&m, &seq[c * 16..(c + 1) * 16]);
        nll.extend((9..16).map(|k| -lp[k]));
    }
    assert_eq!(both.count, 14);
    assert!(
        (both.mean_nll - mean(&nll)).abs() < TOL,
        "{} vs {}",
        both.mean_nll,
        mean(&nll)
    );
    assert!((both.running[0] - got.ppl).abs() < TOL * got.ppl);
    // A BOS that differs from the first token changes the result.
    let other = (seq[0] + 1) % 1024;
    let with_bos =
        perplexity_tokens(&mut ctx, &seq, Some(other), &params, &mut no_progress).unwrap();
    assert_ne!(with_bos.mean_nll, both.mean_nll);
}

#[test]
fn perplexity_on_text() {
    let Some(m) = model(F32_MODEL) else { return };
    let tok = m.tokenizer().unwrap();
    let text = std::fs::read(data("perplexity.txt")).unwrap();
    let text = tern::eval::data::prompt_bytes(&text);
    let n_ctx = 32;
    let params = PerplexityParams {
        n_ctx,
        max_chunks: Some(2),
    };
    let mut ctx = context(&m, n_ctx, n_ctx, true);
    let mut lines = Vec::new();
    let report = perplexity(&mut ctx, tok, text, &params, &mut |_, _, l| {
        lines.push(l.to_string())
    })
    .unwrap();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("[1]"));
    // Independent: tokenize, swap BOS in, score the second half of each chunk.
    let tokens = tok.tokenize_bytes(text, true, false).unwrap();
    assert!(
        tokens.len() >= 2 * n_ctx,
        "sample text too short: {}",
        tokens.len()
    );
    let mut nll = Vec::new();
    for c in 0..2 {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        if tok.special().add_bos {
            chunk[0] = tok.bos().unwrap();
        }
        let lp = token_logprobs(&m, &chunk);
        nll.extend((n_ctx / 2 + 1..n_ctx).map(|k| -lp[k]));
    }
    assert_eq!(report.count, nll.len());
    let want = mean(&nll).exp();
    assert!(
        (report.ppl - want).abs() < 1e-3 * want,
        "{} vs {want}",
        report.ppl
    );
    let err = report.ppl_error.unwrap();
    assert!(err > 0.0 && err < report.ppl);

    // Too short a text is refused with the numbers.
    let e = perplexity(&mut ctx, tok, b"a few words", &params, &mut no_progress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs at least 64"), "{e}");
}

/// Expected mean log-likelihood of each ending (first token included) the plain way.
fn plain_ending_scores(m: &Arc<Model>, seqs: &[Vec<u32>]) -> Vec<f64> {
    let prefix = prefix_len(seqs);
    seqs.iter()
        .map(|s| mean(&token_logprobs(m, s)[prefix..]))
        .collect()
}

#[test]
fn hellaswag_sample_file() {
    let Some(m) = model(F32_MODEL) else { return };
    let tok = m.tokenizer().unwrap();
    let all = hellaswag::parse(&std::fs::read(data("hellaswag.txt")).unwrap()).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().map(|t| t.gold).collect::<Vec<_>>(), [1, 0, 3, 2]);
    let tasks = hellaswag::select(all.clone(), 400);
    assert_eq!(tasks.len(), 4);
    // The scalar forward pass of a debug build is slow: two tasks there, all in release.
    let tasks = &tasks[..if cfg!(debug_assertions) { 2 } else { 4 }];
    let mut ctx = context(&m, 512, 512, true);
    let report = hellaswag::score(&mut ctx, tok, tasks, &mut no_progress).unwrap();
    let mut correct = 0;
    for (task, r) in tasks.iter().zip(&report.results) {
        let seqs: Vec<Vec<u32>> = task
            .endings
            .iter()
            .map(|e| {
                tok.tokenize(&format!("{} {e}", task.context), true, false)
                    .unwrap()
            })
            .collect();
        let want = plain_ending_scores(&m, &seqs);
        assert_close_scores(task.index, &r.scores, r.chosen, &want, TOL);
        assert_eq!(r.correct, r.chosen == task.gold);
        correct += usize::from(r.correct);
    }
    assert_eq!(report.accuracy.correct, correct);
    assert_eq!(report.accuracy.total, tasks.len());
    assert_eq!(report.random_chance_percent(), 25.0);
}

#[test]
fn winogrande_sample_file() {
    let Some(m) = model(F32_MODEL) else { return };
    let tok = m.tokenizer().unwrap();
    let bytes = std::fs::read(data("winogrande.csv")).unwrap();
    let tasks = winogrande::parse(&bytes, false).unwrap();
    assert_eq!(tasks.len(), 5);
    assert_eq!(winogrande::parse(&bytes, true).unwrap().len(), 4);
    assert_eq!(
        tasks.iter().map(|t| t.answer).collect::<Vec<_>>(),
        [1, 1, 2, 2, 1]
    );
    let tasks = &tasks[..if cfg!(debug_assertions) { 2 } else { 5 }];
    let mut ctx = context(&m, 512, 512, true);
    let report = winogrande::score(&mut ctx, tok, tasks, &mut no_progress).unwrap();
    for (task, r) in tasks.iter().zip(&report.results) {
        let mut want = Vec::new();
        for c in &task.choices {
            let seq = tok
                .tokenize(&format!("{}{c}{}", task.first, task.second), true, false)
                .unwrap();
            let base = tok
                .tokenize(&format!("{}{c}", task.first), true, false)
                .unwrap()
                .len();
            // The words after the choice, without the sentence's last token.
            let lp = token_logprobs(&m, &seq);
            assert!(
                seq.len() - base > 3,
                "sample tasks must score the words after the blank"
            );
            want.push(mean(&lp[base..seq.len() - 1]));
        }
        assert_close_scores(task.index, &r.scores, r.chosen, &want, TOL);
        assert_eq!(r.correct, r.chosen + 1 == task.answer);
    }
}

#[test]
fn multiple_choice_sample_file() {
    let Some(m) = model(F32_MODEL) else { return };
    let tok = m.tokenizer().unwrap();
    let tasks =
        multiple_choice::load(&std::fs::read(data("multiple_choice.bin")).unwrap(), 0).unwrap();
    // The binary file holds what its JSON description says.
    let desc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("multiple_choice.json")).unwrap()).unwrap();
    let desc = desc.as_array().unwrap();
    assert_eq!(tasks.len(), desc.len());
    for (t, d) in tasks.iter().zip(desc) {
        assert_eq!(t.question, d["question"].as_str().unwrap());
        let answers: Vec<&str> = d["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(t.mc1.answers, answers);
        let correct = d["correct"].as_u64().unwrap() as usize;
        let labels: Vec<i32> = (0..answers.len())
            .map(|i| i32::from(i == correct))
            .collect();
        assert_eq!(t.mc1.labels, labels);
        assert!(t.mc2.answers.is_empty());
    }
    let tasks = &tasks[..if cfg!(debug_assertions) { 2 } else { 3 }];
    let mut ctx = context(&m, 512, 512, true);
    let report = multiple_choice::score(&mut ctx, tok, tasks, &mut no_progress).unwrap();
    assert_eq!(
        report.n_choices,
        [4, 4, 3][..tasks.len()].iter().sum::<usize>()
    );
    for (t, r) in tasks.iter().zip(&report.results) {
        let seqs: Vec<Vec<u32>> = t
            .mc1
            .answers
            .iter()
            .map(|a| {
                tok.tokenize(&format!("{} {a}", t.question), true, false)
                    .unwrap()
            })
            .collect();
        let want = plain_ending_scores(&m, &seqs);
        assert_close_scores(t.index, &r.scores, r.chosen, &want, TOL);
        assert_eq!(r.correct, t.mc1.labels[r.chosen] == 1);
    }
}

#[test]
fn scores_do_not_depend_on_runs_or_threads() {
    let Some(m) = model(I2S_MODEL) else { return };
    let tok = m.tokenizer().unwrap();
    let tasks = hellaswag::select(
        hellaswag::parse(&std::fs::read(data("hellaswag.txt")).unwrap()).unwrap(),
        1,
    );
    let text = std::fs::read(data("perplexity.txt")).unwrap();
    let params = PerplexityParams {
        n_ctx: 32,
        max_chunks: Some(1),
    };
    // Each context runs on its own pool of `threads` threads.
    let run = |threads: usize| {
        let mut ctx = threaded_context(&m, 512, 512, true, threads);
        assert_eq!((ctx.n_threads(), ctx.n_threads_batch()), (threads, threads));
        let hs = hellaswag::score(&mut ctx, tok, &tasks, &mut no_progress).unwrap();
        let mut ctx = threaded_context(&m, 32, 32, true, threads);
        let ppl = perplexity(&mut ctx, tok, &text, &params, &mut no_progress).unwrap();
        (hs, ppl)
    };
    let first = run(1);
    assert_eq!(run(1), first, "two runs differ");
    assert_eq!(run(2), first, "1 and 2 threads differ");
}
