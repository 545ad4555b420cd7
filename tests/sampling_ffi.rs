//! The sampling part of the C ABI, called from Rust as a C program would: defaults,
//! the same tokens as the Rust API for the same seed, biases, and bad arguments (NULLs,
//! n_vocab <= 0, negative tokens, freed handles, NaN logits and parameters).

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use tern::ffi::sampling::*;
use tern::ffi::tern_last_error;
use tern::ffi::tern_status::*;
use tern::sampling::{Sampler, SamplerParams};

fn last_error() -> String {
    // SAFETY: tern_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn new_sampler(p: &tern_sampler_params) -> *mut tern_sampler {
    let mut s = null_mut();
    let st = tern_sampler_new(p, &mut s);
    assert_eq!(st, TERN_OK, "{}", last_error());
    assert!(!s.is_null());
    s
}

fn sample(s: *mut tern_sampler, logits: &[f32]) -> i32 {
    let mut tok = -7;
    let st = tern_sampler_sample_logits(s, logits.as_ptr(), logits.len() as i32, &mut tok);
    assert_eq!(st, TERN_OK, "{}", last_error());
    tok
}

fn logits() -> Vec<f32> {
    (0..100u32)
        .map(|i| ((i * 37 + 11) % 100) as f32 * 0.05 - 2.5)
        .collect()
}

#[test]
fn defaults_mirror_the_rust_defaults() {
    let c = tern_sampler_default_params();
    let r = SamplerParams::default();
    assert_eq!(c.seed, TERN_SEED_RANDOM);
    assert_eq!(c.seed, r.seed);
    assert_eq!(c.temperature, r.temperature);
    assert_eq!(c.top_k, 40);
    assert_eq!(c.top_p, r.top_p);
    assert_eq!(c.min_p, r.min_p);
    assert_eq!(c.typical_p, r.typical_p);
    assert_eq!(c.min_keep, 0);
    assert_eq!(c.penalty_last_n, 64);
    assert_eq!(c.penalty_repeat, 1.0);
    assert_eq!(c.penalty_freq, 0.0);
    assert_eq!(c.penalty_present, 0.0);
    assert!(c.logit_bias.is_null());
    assert_eq!(c.n_logit_bias, 0);
}

#[test]
fn same_tokens_as_the_rust_api() {
    let row = logits();
    let mut p = tern_sampler_default_params();
    p.seed = 2024;
    p.penalty_repeat = 1.2;
    p.penalty_last_n = 16;
    let s = new_sampler(&p);
    let mut r = Sampler::new(SamplerParams {
        seed: 2024,
        penalty_repeat: 1.2,
        penalty_last_n: 16,
        ..SamplerParams::default()
    })
    .unwrap();
    let mut from_c = Vec::new();
    let mut from_rust = Vec::new();
    for _ in 0..30 {
        let t = sample(s, &row);
        assert_eq!(tern_sampler_accept(s, t), TERN_OK);
        from_c.push(t as u32);
        let t = r.sample(&row).unwrap();
        r.accept(t);
        from_rust.push(t);
    }
    assert_eq!(from_c, from_rust);
    assert_eq!(tern_sampler_window_len(s), 16);
    let mut seed = 0;
    assert_eq!(tern_sampler_get_seed(s, &mut seed), TERN_OK);
    assert_eq!(seed, 2024);
    // Reset: the window empties and the same tokens come again.
    assert_eq!(tern_sampler_reset(s), TERN_OK);
    assert_eq!(tern_sampler_window_len(s), 0);
    let again: Vec<u32> = (0..30)
        .map(|_| {
            let t = sample(s, &row);
            tern_sampler_accept(s, t);
            t as u32
        })
        .collect();
    assert_eq!(again, from_c);
    tern_sampler_free(s);
}

#[test]
fn null_params_mean_defaults_and_greedy_works() {
    let mut s = null_mut();
    assert_eq!(tern_sampler_new(null(), &mut s), TERN_OK);
    let mut seed = 0;
    assert_eq!(tern_sampler_get_seed(s, &mut seed), TERN_OK);
    assert_ne!(seed, TERN_SEED_RANDOM);
    tern_sampler_free(s);

    let mut p = tern_sampler_default_params();
    p.temperature = 0.0;
    let s = new_sampler(&p);
    assert_eq!(sample(s, &[0.0, 4.0, -1.0, 4.0]), 1);
    tern_sampler_free(s);
}

#[test]
fn logit_biases_are_copied() {
    let mut p = tern_sampler_default_params();
    p.temperature = 0.0;
    let s = {
        let biases = [
            tern_logit_bias {
                token: 1,
                bias: f32::NEG_INFINITY,
            },
            tern_logit_bias {
                token: 2,
                bias: -0.5,
            },
        ];
        p.logit_bias = biases.as_ptr();
        p.n_logit_bias = biases.len() as i32;
        new_sampler(&p)
        // `biases` is dropped here: the sampler keeps its own copy.
    };
    assert_eq!(sample(s, &[0.0, 5.0, 0.4, 0.1]), 3);
    // A bias beyond the row is an error, not a read out of bounds.
    let mut tok = 0;
    assert_eq!(
        tern_sampler_sample_logits(s, [0.0f32, 1.0].as_ptr(), 2, &mut tok),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tok, -1);
    tern_sampler_free(s);
}

#[test]
fn bad_arguments_get_a_status() {
    let row = logits();
    let mut out = null_mut();
    assert_eq!(
        tern_sampler_new(null(), null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    let bad_params: [fn(&mut tern_sampler_params); 14] = [
        |p| p.temperature = f32::NAN,
        |p| p.top_p = f32::NAN,
        |p| p.min_p = f32::NAN,
        |p| p.temperature = f32::INFINITY,
        |p| p.top_p = f32::NEG_INFINITY,
        |p| p.min_p = f32::INFINITY,
        |p| p.typical_p = f32::INFINITY,
        |p| p.penalty_freq = f32::INFINITY,
        |p| p.penalty_present = f32::NEG_INFINITY,
        |p| p.penalty_repeat = 0.0,
        |p| p.penalty_last_n = -2, // -1 means the context size
        |p| p.min_keep = -2,
        |p| p.n_logit_bias = -1,
        |p| p.n_logit_bias = 2, // with logit_bias NULL
    ];
    for (i, f) in bad_params.iter().enumerate() {
        let mut p = tern_sampler_default_params();
        f(&mut p);
        out = std::ptr::dangling_mut(); // must be overwritten with NULL
        assert_eq!(
            tern_sampler_new(&p, &mut out),
            TERN_ERR_INVALID_ARGUMENT,
            "case {i}"
        );
        assert!(out.is_null(), "case {i}");
        assert!(
            last_error().starts_with("tern_sampler_new:"),
            "{}",
            last_error()
        );
    }
    let mut p = tern_sampler_default_params();
    let neg = [tern_logit_bias {
        token: -3,
        bias: 1.0,
    }];
    p.logit_bias = neg.as_ptr();
    p.n_logit_bias = 1;
    assert_eq!(tern_sampler_new(&p, &mut out), TERN_ERR_INVALID_ARGUMENT);

    let mut p = tern_sampler_default_params();
    p.seed = 1;
    let s = new_sampler(&p);
    let mut tok = 0;
    // NULL handle, NULL logits, NULL out, n_vocab <= 0.
    assert_eq!(
        tern_sampler_sample_logits(null_mut(), row.as_ptr(), 100, &mut tok),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tok, -1);
    assert_eq!(
        tern_sampler_sample_logits(s, null(), 100, &mut tok),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tern_sampler_sample_logits(s, row.as_ptr(), 100, null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    for n in [0, -1, i32::MIN] {
        assert_eq!(
            tern_sampler_sample_logits(s, row.as_ptr(), n, &mut tok),
            TERN_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("n_vocab"), "{}", last_error());
    }
    // NaN logits: all NaN fails; some NaN are skipped.
    let nan = [f32::NAN; 10];
    assert_eq!(
        tern_sampler_sample_logits(s, nan.as_ptr(), 10, &mut tok),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tok, -1);
    assert_eq!(sample(s, &[f32::NAN, 1.0, f32::NAN]), 1);
    // Accept / reset / seed / window with bad arguments.
    assert_eq!(tern_sampler_accept(s, -1), TERN_ERR_INVALID_ARGUMENT);
    assert_eq!(
        tern_sampler_accept(null_mut(), 1),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tern_sampler_reset(null_mut()), TERN_ERR_INVALID_ARGUMENT);
    assert_eq!(
        tern_sampler_get_seed(s, null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(tern_sampler_window_len(null_mut()), -1);
    tern_sampler_free(null_mut());
    tern_sampler_free(s);
}

#[test]
fn a_pointer_that_is_not_a_sampler_is_refused() {
    let junk = [0u64; 64];
    let fake = junk.as_ptr() as *mut tern_sampler;
    assert_eq!(tern_sampler_reset(fake), TERN_ERR_INVALID_ARGUMENT);
    assert!(
        last_error().contains("not a live tern_sampler"),
        "{}",
        last_error()
    );
    assert_eq!(tern_sampler_window_len(fake), -1);
}
