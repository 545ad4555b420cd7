//! The context part of the C ABI, called from Rust as a C program would: the C API gives
//! bitnet.cpp's greedy tokens on the reference model, the same logits as the Rust API,
//! every row with logits_all, rewinds with tern_kv_truncate, counts in tern_perf, stops
//! through the abort callback, and tern_sample agrees with the Rust sampler.

mod common;

use std::ffi::{c_void, CStr, CString};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::Arc;

use tern::context::{Context, ContextParams};
use tern::ffi::context::*;
use tern::ffi::model::{tern_model, tern_model_free, tern_model_load};
use tern::ffi::sampling::*;
use tern::ffi::tern_last_error;
use tern::ffi::tern_status::*;
use tern::model::{LoadParams, Model};
use tern::sampling::{Sampler, SamplerParams};

fn last_error() -> String {
    // SAFETY: tern_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

struct Handles {
    model: *mut tern_model,
    ctx: *mut tern_context,
}

impl Drop for Handles {
    fn drop(&mut self) {
        tern_context_free(self.ctx);
        tern_model_free(self.model);
    }
}

fn model_path(dir: &Path) -> std::path::PathBuf {
    dir.join("bitnet25/ggml-model-i2s.gguf")
}

fn open(path: &Path, params: &tern_context_params) -> Handles {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut model = null_mut();
    assert_eq!(
        tern_model_load(c.as_ptr(), null(), &mut model),
        TERN_OK,
        "{}",
        last_error()
    );
    let mut ctx = null_mut();
    assert_eq!(
        tern_context_new(model, params, &mut ctx),
        TERN_OK,
        "{}",
        last_error()
    );
    Handles { model, ctx }
}

fn row<'a>(p: *const f32, n: usize) -> &'a [f32] {
    assert!(!p.is_null(), "{}", last_error());
    // SAFETY: the library returns n_vocab floats owned by the context, valid until the
    // next eval; each use below ends before that.
    unsafe { std::slice::from_raw_parts(p, n) }
}

fn params(n_ctx: u32, n_batch: u32, logits_all: bool) -> tern_context_params {
    tern_context_params {
        n_ctx,
        n_batch,
        logits_all,
        n_threads: 1,
        n_threads_batch: 1,
        ..tern_context_default_params()
    }
}

#[test]
fn greedy_through_the_c_api_matches_bitnet_cpp() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("bitnet25/greedy_i2s.json")).unwrap(),
    )
    .unwrap();
    let h = open(&model_path(&dir), &params(512, 64, false));
    let mut greedy_params = tern_sampler_default_params();
    greedy_params.temperature = 0.0;
    let mut smpl = null_mut();
    assert_eq!(tern_sampler_new(&greedy_params, &mut smpl), TERN_OK);
    let mut checked = 0;
    for s in json["sequences"].as_array().unwrap() {
        if s["mode"] != "batched" {
            continue;
        }
        let prompt: Vec<i32> = s["prompt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        let want: Vec<i32> = s["greedy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        assert_eq!(tern_kv_clear(h.ctx), TERN_OK);
        assert_eq!(
            tern_eval(h.ctx, prompt.as_ptr(), prompt.len() as i32),
            TERN_OK,
            "{}",
            last_error()
        );
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let mut t = -1;
            assert_eq!(tern_sample(smpl, h.ctx, -1, &mut t), TERN_OK);
            got.push(t);
            assert_eq!(tern_eval(h.ctx, &t, 1), TERN_OK);
        }
        assert_eq!(got, want, "sequence {}", s["seq"]);
        assert_eq!(
            tern_n_past(h.ctx) as usize,
            prompt.len() + want.len(),
            "n_past counts every evaluated token"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
    tern_sampler_free(smpl);
}

#[test]
fn c_logits_equal_rust_logits_and_logits_all_gives_every_row() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let path = model_path(&dir);
    let tokens: Vec<i32> = vec![5, 17, 300, 42, 999, 1];
    let n_vocab = 1024;
    let h = open(&path, &params(32, 8, true));
    assert_eq!(
        tern_eval(h.ctx, tokens.as_ptr(), tokens.len() as i32),
        TERN_OK
    );
    assert_eq!(tern_n_outputs(h.ctx), tokens.len() as i32);
    let all = row(tern_get_logits(h.ctx), n_vocab * tokens.len()).to_vec();
    for i in 0..tokens.len() {
        let r = row(tern_get_logits_ith(h.ctx, i as i32), n_vocab);
        assert_eq!(r, &all[i * n_vocab..(i + 1) * n_vocab], "row {i}");
        let back = row(
            tern_get_logits_ith(h.ctx, i as i32 - tokens.len() as i32),
            n_vocab,
        );
        assert_eq!(r, back, "negative index for row {i}");
    }

    let model = Arc::new(Model::load(&path, &LoadParams::default()).unwrap());
    let mut rust = Context::new(
        model,
        &ContextParams {
            n_ctx: 32,
            n_batch: 8,
            logits_all: true,
            ..ContextParams::default()
        },
    )
    .unwrap();
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    rust.eval(&ids).unwrap();
    assert_eq!(rust.logits(), &all[..], "the C API and the Rust API differ");
}

#[test]
fn truncate_rewinds_and_perf_counts() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let h = open(&model_path(&dir), &params(16, 8, false));
    let prompt = [10, 20, 30, 40];
    assert_eq!(tern_eval(h.ctx, prompt.as_ptr(), 4), TERN_OK);
    assert_eq!(tern_eval(h.ctx, &50, 1), TERN_OK);
    let first = row(tern_get_logits_ith(h.ctx, -1), 1024).to_vec();
    assert_eq!(tern_eval(h.ctx, &60, 1), TERN_OK);
    assert_eq!(tern_n_past(h.ctx), 6);
    // Back to 4 positions, then the same token: the same logits.
    assert_eq!(tern_kv_truncate(h.ctx, 4), TERN_OK);
    assert_eq!(tern_n_past(h.ctx), 4);
    assert_eq!(tern_eval(h.ctx, &50, 1), TERN_OK);
    assert_eq!(row(tern_get_logits_ith(h.ctx, -1), 1024), &first[..]);

    let mut perf = tern_perf_data::default();
    assert_eq!(tern_perf(h.ctx, &mut perf), TERN_OK);
    assert_eq!((perf.n_p_eval, perf.n_eval, perf.n_sample), (4, 3, 0));
    assert!(perf.t_load_ms > 0.0 && perf.t_p_eval_ms > 0.0 && perf.t_eval_ms > 0.0);
    assert_eq!(tern_perf_reset(h.ctx), TERN_OK);
    assert_eq!(tern_perf(h.ctx, &mut perf), TERN_OK);
    assert_eq!((perf.n_p_eval, perf.n_eval), (0, 0));
    assert_eq!(perf.t_eval_ms, 0.0);
    assert!(perf.t_load_ms > 0.0, "the load time stays");
}

extern "C" fn count_and_stop_at_second(user_data: *mut c_void) -> bool {
    // SAFETY: the test passes a pointer to a live u32 and uses it on this thread only.
    let calls = unsafe { &mut *(user_data as *mut u32) };
    *calls += 1;
    *calls >= 2
}

#[test]
fn the_abort_callback_stops_between_blocks_and_keeps_the_cache() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut calls: u32 = 0;
    let mut p = params(16, 8, false);
    p.abort_callback = Some(count_and_stop_at_second);
    p.abort_callback_data = &mut calls as *mut u32 as *mut c_void;
    let h = open(&model_path(&dir), &p);
    let prompt = [1, 2, 3];
    assert_eq!(tern_eval(h.ctx, prompt.as_ptr(), 3), TERN_ERR_ABORTED);
    assert!(last_error().contains("before block 1"), "{}", last_error());
    assert_eq!(calls, 2, "asked before block 0, stopped before block 1");
    assert_eq!(tern_n_past(h.ctx), 0);
    assert!(tern_get_logits(h.ctx).is_null());
    // Without the callback the same batch runs.
    assert_eq!(tern_set_abort_callback(h.ctx, None, null_mut()), TERN_OK);
    assert_eq!(tern_eval(h.ctx, prompt.as_ptr(), 3), TERN_OK);
    assert_eq!(tern_n_past(h.ctx), 3);
    assert_eq!(calls, 2);
}

#[test]
fn tern_sample_agrees_with_the_rust_sampler_and_binds_the_window() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let h = open(&model_path(&dir), &params(24, 8, false));
    let mut cp = tern_sampler_default_params();
    cp.seed = 7;
    cp.penalty_repeat = 1.3;
    cp.penalty_last_n = -1;
    let mut smpl = null_mut();
    assert_eq!(tern_sampler_new(&cp, &mut smpl), TERN_OK);
    let mut rust = Sampler::new(SamplerParams {
        seed: 7,
        penalty_repeat: 1.3,
        penalty_last_n: 24, // the context's size
        ..SamplerParams::default()
    })
    .unwrap();
    let prompt = [100, 200, 300];
    assert_eq!(tern_eval(h.ctx, prompt.as_ptr(), 3), TERN_OK);
    for &t in &prompt {
        assert_eq!(tern_sampler_accept(smpl, t), TERN_OK);
        rust.accept(t as u32);
    }
    for _ in 0..12 {
        let logits = row(tern_get_logits_ith(h.ctx, -1), 1024).to_vec();
        let mut t = -1;
        assert_eq!(tern_sample(smpl, h.ctx, -1, &mut t), TERN_OK);
        assert_eq!(t as u32, rust.sample(&logits).unwrap());
        assert_eq!(tern_sampler_accept(smpl, t), TERN_OK);
        rust.accept(t as u32);
        assert_eq!(tern_eval(h.ctx, &t, 1), TERN_OK);
    }
    assert_eq!(tern_sampler_window_len(smpl), 15);
    let mut perf = tern_perf_data::default();
    assert_eq!(tern_perf(h.ctx, &mut perf), TERN_OK);
    assert_eq!(perf.n_sample, 12);
    tern_sampler_free(smpl);
}

#[test]
fn contexts_report_their_threads_and_memory() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut p = params(64, 16, false);
    p.n_threads = 3;
    p.n_threads_batch = 0; // one per CPU
    let h = open(&model_path(&dir), &p);
    assert_eq!(tern_n_threads(h.ctx), 3);
    assert!(tern_n_threads_batch(h.ctx) >= 1);
    assert_eq!(tern_n_ctx(h.ctx), 64);
    assert_eq!(tern_n_batch(h.ctx), 16);
    let small = tern_context_memory_bytes(h.ctx);
    // The KV cache alone: 64 positions x 2 layers x (128 + 128) x 2 bytes (F16).
    assert!(small >= 64 * 2 * 256 * 2, "{small}");
    // Same threads (the scratch memory of attention grows with them), F32 cache.
    let mut p32 = p;
    p32.kv_type = TERN_KV_F32;
    let h32 = open(&model_path(&dir), &p32);
    assert_eq!(
        tern_context_memory_bytes(h32.ctx) - small,
        64 * 2 * 256 * 2,
        "F32 doubles the cache"
    );
}
