//! No panic crosses the C boundary, proven function by function: the list of functions
//! is read from `include/tern.h`, and each one has a case below that calls it with NULL,
//! freed-looking, out-of-range and boundary arguments. A function in the header without
//! a case (or a case without a function) fails the test, so a new entry point cannot be
//! forgotten. A panic escaping an `extern "C"` function aborts the whole test process.
//!
//! Checked for every failing call: a status other than TERN_OK (or the documented
//! failure value: NULL, -1, false) and a `tern_last_error()` message that starts with the
//! function's name. Out-pointers are NULLed / set to -1 on failure where documented.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use tern::ffi::context::*;
use tern::ffi::model::*;
use tern::ffi::sampling::*;
use tern::ffi::tern_status::{self, *};
use tern::ffi::tokenizer::*;
use tern::ffi::*;
use tern::gguf::{Array, Value};
use tern::model::synth::{SynthModel, SynthSpec};
use tern::model::Architecture;

/// Model handles shared by the cases (a model may be used from many threads).
struct Fixture {
    /// A runnable model with a small SentencePiece vocabulary and no chat template.
    model: usize,
    /// The same file loaded vocab-only.
    vocab_only: usize,
    /// A runnable model with no tokenizer at all.
    no_tokenizer: usize,
    /// A file that is not GGUF.
    not_gguf: PathBuf,
    /// The model file.
    path: PathBuf,
}

impl Fixture {
    fn model(&self) -> *const tern_model {
        self.model as *const tern_model
    }
}

fn with_vocab(mut m: SynthModel) -> SynthModel {
    let n = 512;
    let mut tokens = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
    tokens.extend((3..n).map(|i| format!("\u{2581}w{i}").into_bytes()));
    let mut types = vec![2, 3, 3];
    types.extend(std::iter::repeat_n(1, n - 3));
    m.set("tokenizer.ggml.model", Value::string("llama"));
    m.set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    m.set(
        "tokenizer.ggml.scores",
        Value::Array(Array::F32((0..n).map(|i| -(i as f32)).collect())),
    );
    m.set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    m.set("tokenizer.ggml.bos_token_id", Value::U32(1));
    m.set("tokenizer.ggml.eos_token_id", Value::U32(2));
    m.set("tokenizer.ggml.unknown_token_id", Value::U32(0));
    m
}

fn load(path: &Path, vocab_only: bool) -> usize {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut p = tern_model_default_params();
    p.vocab_only = vocab_only;
    let mut m = null_mut();
    assert_eq!(
        tern_model_load(c.as_ptr(), &p, &mut m),
        TERN_OK,
        "{}",
        last_error()
    );
    m as usize
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ffi_every_function");
        std::fs::create_dir_all(&dir).unwrap();
        let base = SynthModel::new(&SynthSpec::tiny(Architecture::Bitnet25)).unwrap();
        let path = dir.join("tiny-vocab.gguf");
        std::fs::write(&path, with_vocab(base.clone()).to_gguf().unwrap()).unwrap();
        let bare = dir.join("tiny-bare.gguf");
        std::fs::write(&bare, base.to_gguf().unwrap()).unwrap();
        let not_gguf = dir.join("not-gguf.bin");
        std::fs::write(&not_gguf, b"GGML this is not a gguf file at all").unwrap();
        Fixture {
            model: load(&path, false),
            vocab_only: load(&path, true),
            no_tokenizer: load(&bare, false),
            not_gguf,
            path,
        }
    })
}

fn last_error() -> String {
    // SAFETY: tern_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts a failed call: `ok` false, and the thread's last error names `func`.
#[track_caller]
fn failed(func: &str, ok: bool) {
    assert!(!ok, "{func} succeeded on a bad argument");
    let e = last_error();
    assert!(
        e.starts_with(&format!("{func}:")),
        "{func}'s error message does not name it: '{e}'"
    );
}

/// Asserts a status: `want`, and when it is a failure, a message naming `func`.
#[track_caller]
fn status(func: &str, got: tern_status, want: tern_status) {
    assert_eq!(got, want, "{func}: {}", last_error());
    if want != TERN_OK {
        failed(func, false);
    }
}

/// Asserts a failure of any kind but INTERNAL (a caught panic is a bug too).
#[track_caller]
fn refused(func: &str, got: tern_status) {
    assert!(
        got != TERN_OK && got != TERN_ERR_INTERNAL,
        "{func}: {got:?} ({})",
        last_error()
    );
    failed(func, false);
}

fn c_string(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: non-null strings from tern are NUL-terminated and static or owned by a live handle.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

const BAD_UTF8: &[u8] = b"\xff\xfe\0";

type Case = fn(&Fixture);

/// Sets one field (or a few) of sampler parameters to a bad value.
type SetSamplerParam = fn(&mut tern_sampler_params);

/// Sets one field (or a few) of context parameters to a bad value.
type SetContextParam = fn(&mut tern_context_params);

/// The case of a function that a helper checks: `checker(name, function, fixture, want)`.
macro_rules! checked_by {
    ($checker:ident, $function:ident, $want:expr) => {
        (stringify!($function), |f| {
            $checker(stringify!($function), $function, f, $want)
        })
    };
}

/// One case per exported function.
fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("tern_last_error", |_| {
            let _ = tern_model_n_vocab(null());
            assert!(!last_error().is_empty());
        }),
        ("tern_version", |_| {
            assert_eq!(c_string(tern_version()), tern::VERSION)
        }),
        ("tern_abi_version", |_| {
            assert_eq!(tern_abi_version(), TERN_ABI_VERSION)
        }),
        ("tern_system_info", |_| {
            assert!(!c_string(tern_system_info()).is_empty())
        }),
        ("tern_status_name", |_| {
            for s in [i32::MIN, -1, 13, 1000, i32::MAX] {
                assert_eq!(c_string(tern_status_name(s)), "TERN_ERR_UNKNOWN");
            }
            for s in 0..=12 {
                assert!(c_string(tern_status_name(s)).starts_with("TERN_"));
            }
        }),
        ("tern_model_default_params", |_| {
            let p = tern_model_default_params();
            assert!(p.use_mmap && !p.vocab_only);
        }),
        ("tern_model_load", |f| {
            let f_name = "tern_model_load";
            let mut out = std::ptr::dangling_mut::<tern_model>(); // a stale value the call must clear
            status(
                f_name,
                tern_model_load(null(), null(), &mut out),
                TERN_ERR_INVALID_ARGUMENT,
            );
            assert!(out.is_null());
            let path = CString::new(f.path.to_str().unwrap()).unwrap();
            status(
                f_name,
                tern_model_load(path.as_ptr(), null(), null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            let bad = BAD_UTF8.as_ptr() as *const c_char;
            status(
                f_name,
                tern_model_load(bad, null(), &mut out),
                TERN_ERR_INVALID_ARGUMENT,
            );
            for (p, want) in [
                ("", TERN_ERR_IO),
                ("/nonexistent/dir/model.gguf", TERN_ERR_IO),
                ("/", TERN_ERR_IO),
                (f.not_gguf.to_str().unwrap(), TERN_ERR_FORMAT),
            ] {
                out = std::ptr::dangling_mut::<tern_model>();
                let c = CString::new(p).unwrap();
                let got = tern_model_load(c.as_ptr(), null(), &mut out);
                assert!(out.is_null(), "{p}");
                if p == "/" {
                    refused(f_name, got);
                } else {
                    status(f_name, got, want);
                }
            }
            // Both load paths (mmap and read) of the same file.
            for use_mmap in [false, true] {
                let mut p = tern_model_default_params();
                p.use_mmap = use_mmap;
                status(
                    f_name,
                    tern_model_load(path.as_ptr(), &p, &mut out),
                    TERN_OK,
                );
                tern_model_free(out);
            }
        }),
        ("tern_model_free", |_| tern_model_free(null_mut())),
        ("tern_model_architecture", |f| {
            assert!(tern_model_architecture(null()).is_null());
            failed("tern_model_architecture", false);
            assert_eq!(c_string(tern_model_architecture(f.model())), "bitnet-25");
        }),
        checked_by!(int_getter, tern_model_n_vocab, 512),
        checked_by!(int_getter, tern_model_n_ctx_train, 1024),
        checked_by!(int_getter, tern_model_n_embd, 256),
        checked_by!(int_getter, tern_model_n_layer, 2),
        checked_by!(int_getter, tern_model_n_head, 4),
        checked_by!(int_getter, tern_model_n_head_kv, 2),
        ("tern_model_meta_count", |f| {
            assert_eq!(tern_model_meta_count(null()), -1);
            failed("tern_model_meta_count", false);
            assert!(tern_model_meta_count(f.model()) > 5);
        }),
        ("tern_model_n_tensors", |f| {
            assert_eq!(tern_model_n_tensors(null()), -1);
            failed("tern_model_n_tensors", false);
            assert!(tern_model_n_tensors(f.model()) > 10);
        }),
        ("tern_model_meta_key_by_index", |f| {
            meta_by_index(
                "tern_model_meta_key_by_index",
                tern_model_meta_key_by_index,
                f,
            )
        }),
        ("tern_model_meta_val_str_by_index", |f| {
            meta_by_index(
                "tern_model_meta_val_str_by_index",
                tern_model_meta_val_str_by_index,
                f,
            )
        }),
        ("tern_model_meta_val_str", |f| {
            let name = "tern_model_meta_val_str";
            let key = c"general.architecture".as_ptr();
            let mut buf = [0 as c_char; 64];
            let mut need = 0usize;
            let m = f.model();
            let (b, n): (*mut c_char, *mut usize) = (buf.as_mut_ptr(), &mut need);
            let bad_key = BAD_UTF8.as_ptr() as *const c_char;
            // (model, key, buffer, size, needed) and the status it gets, in this order.
            for (model, key, buf, size, needed, want) in [
                (null(), key, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, null(), b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, bad_key, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, c"no.such.key".as_ptr(), b, 64, n, TERN_ERR_NOT_FOUND),
                (m, key, null_mut(), 0, n, TERN_ERR_BUFFER_TOO_SMALL),
                (m, key, null_mut(), 5, null_mut(), TERN_ERR_INVALID_ARGUMENT),
            ] {
                status(
                    name,
                    tern_model_meta_val_str(model, key, buf, size, needed),
                    want,
                );
            }
            assert_eq!(need, "bitnet-25".len() + 1);
            for (size, want) in [(need - 1, TERN_ERR_BUFFER_TOO_SMALL), (need, TERN_OK)] {
                status(
                    name,
                    tern_model_meta_val_str(m, key, buf.as_mut_ptr(), size, null_mut()),
                    want,
                );
            }
        }),
        ("tern_sampler_default_params", |_| {
            let p = tern_sampler_default_params();
            assert!(p.logit_bias.is_null() && p.n_logit_bias == 0);
        }),
        ("tern_sampler_new", |_| {
            let name = "tern_sampler_new";
            let mut out = std::ptr::dangling_mut::<tern_sampler>();
            status(
                name,
                tern_sampler_new(null(), null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            static NEGATIVE_TOKEN: tern_logit_bias = tern_logit_bias {
                token: -1,
                bias: 1.0,
            };
            static NAN_BIAS: tern_logit_bias = tern_logit_bias {
                token: 0,
                bias: f32::NAN,
            };
            // Each sets one bad parameter; the second value: it may be accepted.
            let bad: [(SetSamplerParam, bool); 19] = [
                (|p| p.temperature = f32::NAN, false),
                (|p| p.temperature = f32::INFINITY, false),
                (|p| p.top_p = f32::NAN, false),
                (|p| p.top_p = f32::NEG_INFINITY, false),
                (|p| p.min_p = f32::NAN, false),
                (|p| p.min_p = f32::INFINITY, false),
                (|p| p.typical_p = f32::NAN, false),
                (|p| p.typical_p = f32::INFINITY, false),
                (|p| p.min_keep = -1, false),
                (|p| p.penalty_last_n = -2, false),
                // A huge window may be accepted if it fits; then it must work.
                (|p| p.penalty_last_n = i32::MAX, true),
                (|p| p.penalty_repeat = 0.0, false),
                (|p| p.penalty_freq = f32::NAN, false),
                (|p| p.penalty_present = f32::INFINITY, false),
                (|p| p.n_logit_bias = 3, false),
                (|p| p.n_logit_bias = -1, false),
                (
                    |p| {
                        p.logit_bias = &NEGATIVE_TOKEN;
                        p.n_logit_bias = 1;
                    },
                    false,
                ),
                (
                    |p| {
                        p.logit_bias = &NAN_BIAS;
                        p.n_logit_bias = 1;
                    },
                    false,
                ),
                (|p| p.min_p = f32::NEG_INFINITY, false),
            ];
            for (i, (set, may_pass)) in bad.into_iter().enumerate() {
                let mut p = tern_sampler_default_params();
                set(&mut p);
                out = std::ptr::dangling_mut::<tern_sampler>();
                let got = tern_sampler_new(&p, &mut out);
                if may_pass && got == TERN_OK {
                    tern_sampler_free(out);
                    continue;
                }
                assert!(got != TERN_OK, "{name}: parameters {i} accepted: {p:?}");
                refused(name, got);
                assert!(out.is_null(), "case {i}");
            }
            status(name, tern_sampler_new(null(), &mut out), TERN_OK);
            tern_sampler_free(out);
        }),
        ("tern_sampler_free", |_| tern_sampler_free(null_mut())),
        ("tern_sampler_accept", |_| {
            let name = "tern_sampler_accept";
            status(
                name,
                tern_sampler_accept(null_mut(), 0),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_sampler(|s| {
                status(name, tern_sampler_accept(s, -1), TERN_ERR_INVALID_ARGUMENT);
                status(
                    name,
                    tern_sampler_accept(s, i32::MIN),
                    TERN_ERR_INVALID_ARGUMENT,
                );
                status(name, tern_sampler_accept(s, i32::MAX), TERN_OK);
            });
        }),
        ("tern_sampler_reset", |_| {
            status(
                "tern_sampler_reset",
                tern_sampler_reset(null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_sampler(|s| status("tern_sampler_reset", tern_sampler_reset(s), TERN_OK));
        }),
        ("tern_sampler_get_seed", |_| {
            let name = "tern_sampler_get_seed";
            let mut seed = 0u64;
            status(
                name,
                tern_sampler_get_seed(null_mut(), &mut seed),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_sampler(|s| {
                status(
                    name,
                    tern_sampler_get_seed(s, null_mut()),
                    TERN_ERR_INVALID_ARGUMENT,
                );
                status(name, tern_sampler_get_seed(s, &mut seed), TERN_OK);
                assert_eq!(seed, 7);
            });
        }),
        ("tern_sampler_sample_logits", |_| {
            let name = "tern_sampler_sample_logits";
            let logits = [0.5f32, 1.0, -2.0];
            let mut tok = 5;
            status(
                name,
                tern_sampler_sample_logits(null_mut(), logits.as_ptr(), 3, &mut tok),
                TERN_ERR_INVALID_ARGUMENT,
            );
            assert_eq!(tok, -1);
            with_sampler(|s| {
                status(
                    name,
                    tern_sampler_sample_logits(s, null(), 3, &mut tok),
                    TERN_ERR_INVALID_ARGUMENT,
                );
                status(
                    name,
                    tern_sampler_sample_logits(s, logits.as_ptr(), 3, null_mut()),
                    TERN_ERR_INVALID_ARGUMENT,
                );
                for n in [0, -1, i32::MIN] {
                    tok = 5;
                    status(
                        name,
                        tern_sampler_sample_logits(s, logits.as_ptr(), n, &mut tok),
                        TERN_ERR_INVALID_ARGUMENT,
                    );
                    assert_eq!(tok, -1);
                }
                let impossible = [f32::NAN, f32::NEG_INFINITY, f32::NAN];
                refused(
                    name,
                    tern_sampler_sample_logits(s, impossible.as_ptr(), 3, &mut tok),
                );
                assert_eq!(tok, -1);
                let extreme = [f32::MAX, f32::INFINITY, f32::MIN, -0.0];
                let got = tern_sampler_sample_logits(s, extreme.as_ptr(), 4, &mut tok);
                assert!(
                    got == TERN_OK || got != TERN_ERR_INTERNAL,
                    "{}",
                    last_error()
                );
                status(
                    name,
                    tern_sampler_sample_logits(s, logits.as_ptr(), 3, &mut tok),
                    TERN_OK,
                );
                assert!((0..3).contains(&tok));
            });
        }),
        ("tern_sampler_window_len", |_| {
            assert_eq!(tern_sampler_window_len(null_mut()), -1);
            failed("tern_sampler_window_len", false);
            with_sampler(|s| assert_eq!(tern_sampler_window_len(s), 0));
        }),
        ("tern_tokenize", |f| {
            let name = "tern_tokenize";
            let text = b"w3 w4";
            let t = text.as_ptr() as *const c_char;
            let mut ids = [0i32; 8];
            let mut n = 0usize;
            let m = f.model();
            let (i, np): (*mut tern_token, *mut usize) = (ids.as_mut_ptr(), &mut n);
            // (model, text, tokens, capacity, n_tokens) and the status it gets, in this order.
            for (model, text, tokens, capacity, n_tokens, want) in [
                (null(), t, i, 8, np, TERN_ERR_INVALID_ARGUMENT),
                (m, null(), i, 8, np, TERN_ERR_INVALID_ARGUMENT),
                (m, t, i, 8, null_mut(), TERN_ERR_INVALID_ARGUMENT),
                (m, t, null_mut(), 8, np, TERN_ERR_INVALID_ARGUMENT),
                (m, t, null_mut(), 0, np, TERN_ERR_BUFFER_TOO_SMALL),
            ] {
                let got = tern_tokenize(model, text, 5, true, false, tokens, capacity, n_tokens);
                status(name, got, want);
            }
            assert!(n > 0);
            refused(
                name,
                tern_tokenize(
                    f.no_tokenizer as *const _,
                    t,
                    5,
                    true,
                    false,
                    ids.as_mut_ptr(),
                    8,
                    &mut n,
                ),
            );
            status(
                name,
                tern_tokenize(m, null(), 0, false, false, ids.as_mut_ptr(), 8, &mut n),
                TERN_OK,
            );
            assert_eq!(n, 0);
            let odd = b"\xff\x00\xc3 w3";
            let mut many = [0i32; 64];
            status(
                name,
                tern_tokenize(
                    f.vocab_only as *const _,
                    odd.as_ptr() as _,
                    odd.len(),
                    true,
                    true,
                    many.as_mut_ptr(),
                    64,
                    &mut n,
                ),
                TERN_OK,
            );
            assert!(many[..n].iter().all(|&id| (0..512).contains(&id)));
        }),
        ("tern_token_to_piece", |f| {
            let name = "tern_token_to_piece";
            let mut buf = [0 as c_char; 16];
            let mut len = 0usize;
            let m = f.model();
            let (b, l): (*mut c_char, *mut usize) = (buf.as_mut_ptr(), &mut len);
            // (model, token, buffer, size, piece_len) and the status it gets, in this order.
            for (model, token, buf, size, piece_len, want) in [
                (null(), 3, b, 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, -1, b, 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, 512, b, 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, i32::MAX, b, 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, i32::MIN, b, 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, 3, b, 16, null_mut(), TERN_ERR_INVALID_ARGUMENT),
                (m, 3, null_mut(), 16, l, TERN_ERR_INVALID_ARGUMENT),
                (m, 3, b, 0, l, TERN_ERR_BUFFER_TOO_SMALL),
            ] {
                let got = tern_token_to_piece(model, token, false, buf, size, piece_len);
                status(name, got, want);
            }
            let no_tok = f.no_tokenizer as *const _;
            refused(name, tern_token_to_piece(no_tok, 3, false, b, 16, l));
            status(name, tern_token_to_piece(m, 3, true, b, 16, l), TERN_OK);
        }),
        ("tern_detokenize", |f| {
            let name = "tern_detokenize";
            let mut buf = [0 as c_char; 64];
            let mut need = 0usize;
            let m = f.model();
            let ids = [1, 3, 4, 2];
            let bad = [[-1, 3], [3, 512], [i32::MAX, 0], [i32::MIN, 0]];
            let (b, n): (*mut c_char, *mut usize) = (buf.as_mut_ptr(), &mut need);
            let id = ids.as_ptr();
            // (model, tokens, n_tokens, buffer, size, needed) and the status it gets.
            #[rustfmt::skip]
            let cases = [
                (null(), id, 4, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, null(), 4, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, bad[0].as_ptr(), 2, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, bad[1].as_ptr(), 2, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, bad[2].as_ptr(), 2, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, bad[3].as_ptr(), 2, b, 64, n, TERN_ERR_INVALID_ARGUMENT),
                (m, id, 4, null_mut(), 0, n, TERN_ERR_BUFFER_TOO_SMALL),
                (m, id, 4, null_mut(), 3, null_mut(), TERN_ERR_INVALID_ARGUMENT),
                (m, null(), 0, b, 64, n, TERN_OK),
            ];
            for (model, tokens, n_tokens, buf, size, needed, want) in cases {
                let got = tern_detokenize(model, tokens, n_tokens, true, false, buf, size, needed);
                status(name, got, want);
            }
            let no_tok = f.no_tokenizer as *const _;
            refused(name, tern_detokenize(no_tok, id, 4, true, false, b, 64, n));
            status(
                name,
                tern_detokenize(m, id, 4, false, true, b, 64, n),
                TERN_OK,
            );
        }),
        ("tern_chat_apply_template", |f| {
            let name = "tern_chat_apply_template";
            let mut buf = [0 as c_char; 256];
            let mut need = 0usize;
            let message = |role: *const c_char| {
                [tern_chat_message {
                    role,
                    content: c"hi".as_ptr(),
                }]
            };
            let msg = message(c"user".as_ptr());
            let no_role = message(null());
            let bad_role = message(BAD_UTF8.as_ptr() as _);
            let chatml = c"chatml".as_ptr();
            let bad_format = BAD_UTF8.as_ptr() as *const c_char;
            let (b, n): (*mut c_char, *mut usize) = (buf.as_mut_ptr(), &mut need);
            let (m, one) = (f.model(), msg.as_ptr());
            // (model, template, messages, n_messages, buffer, size, needed) and the status
            // it gets; a NULL template means the model's own (this one has none).
            #[rustfmt::skip]
            let cases = [
                (null(), null(), one, 1, b, 256, n, TERN_ERR_INVALID_ARGUMENT),
                (m, null(), one, 1, b, 256, n, TERN_ERR_NOT_FOUND),
                (null(), c"no-such-format".as_ptr(), one, 1, b, 256, n, TERN_ERR_UNSUPPORTED),
                (null(), chatml, null(), 1, b, 256, n, TERN_ERR_INVALID_ARGUMENT),
                (null(), chatml, no_role.as_ptr(), 1, b, 256, n, TERN_ERR_INVALID_ARGUMENT),
                (null(), chatml, bad_role.as_ptr(), 1, b, 256, n, TERN_ERR_INVALID_ARGUMENT),
                (null(), bad_format, one, 1, b, 256, n, TERN_ERR_INVALID_ARGUMENT),
                (null(), chatml, one, 1, null_mut(), 0, n, TERN_ERR_BUFFER_TOO_SMALL),
                (null(), chatml, one, 1, b, 256, null_mut(), TERN_OK),
                (null(), chatml, null(), 0, b, 256, null_mut(), TERN_OK),
            ];
            for (model, tmpl, messages, n_messages, buf, size, needed, want) in cases {
                let got = tern_chat_apply_template(
                    model, tmpl, messages, n_messages, true, buf, size, needed,
                );
                status(name, got, want);
            }
        }),
        checked_by!(special, tern_token_bos, 1),
        checked_by!(special, tern_token_eos, 2),
        checked_by!(special, tern_token_eot, -1),
        checked_by!(special, tern_token_eom, -1),
        checked_by!(token_flag, tern_token_is_eog, 2),
        checked_by!(token_flag, tern_token_is_control, 1),
        ("tern_token_get_attr", |f| {
            assert_eq!(tern_token_get_attr(null(), 1), -1);
            failed("tern_token_get_attr", false);
            for t in [-1, 512, i32::MIN, i32::MAX] {
                assert_eq!(tern_token_get_attr(f.model(), t), -1);
                failed("tern_token_get_attr", false);
            }
            assert_eq!(tern_token_get_attr(f.no_tokenizer as *const _, 1), -1);
            assert_eq!(tern_token_get_attr(f.model(), 1), 8);
        }),
        ("tern_context_default_params", |_| {
            let p = tern_context_default_params();
            assert!(p.n_ctx == 0 && p.kv_type == TERN_KV_F16 && p.abort_callback.is_none());
        }),
        ("tern_context_new", |f| {
            let name = "tern_context_new";
            let mut out = std::ptr::dangling_mut::<tern_context>();
            status(
                name,
                tern_context_new(null(), null(), &mut out),
                TERN_ERR_INVALID_ARGUMENT,
            );
            assert!(out.is_null());
            status(
                name,
                tern_context_new(f.model(), null(), null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            status(
                name,
                tern_context_new(f.vocab_only as *const _, null(), &mut out),
                TERN_ERR_INVALID_ARGUMENT,
            );
            let bad: [(SetContextParam, tern_status); 6] = [
                // Far more KV cache than this machine has: refused, not an abort.
                (|p| p.n_ctx = u32::MAX, TERN_ERR_OUT_OF_MEMORY),
                (
                    |p| {
                        p.n_ctx = 1 << 30;
                        p.n_batch = 1 << 30;
                        p.logits_all = true;
                    },
                    TERN_ERR_OUT_OF_MEMORY,
                ),
                (|p| p.kv_type = 7, TERN_ERR_INVALID_ARGUMENT),
                (|p| p.kv_type = -1, TERN_ERR_INVALID_ARGUMENT),
                (|p| p.n_threads = -1, TERN_ERR_INVALID_ARGUMENT),
                (|p| p.n_threads_batch = i32::MIN, TERN_ERR_INVALID_ARGUMENT),
            ];
            for (set, want) in bad {
                let mut p = tern_context_default_params();
                set(&mut p);
                out = std::ptr::dangling_mut::<tern_context>();
                status(name, tern_context_new(f.model(), &p, &mut out), want);
                assert!(out.is_null());
            }
            // The model's trained length of 1024 positions, then a batch larger than n_ctx.
            let d = tern_context_default_params;
            for p in [
                d(),
                tern_context_params {
                    n_ctx: 4,
                    n_batch: u32::MAX,
                    ..d()
                },
            ] {
                status(name, tern_context_new(f.model(), &p, &mut out), TERN_OK);
                tern_context_free(out);
            }
        }),
        ("tern_context_free", |_| tern_context_free(null_mut())),
        ("tern_context_memory_bytes", |f| {
            assert_eq!(tern_context_memory_bytes(null_mut()), 0);
            failed("tern_context_memory_bytes", false);
            with_context(f, 8, |c| assert!(tern_context_memory_bytes(c) > 0));
        }),
        checked_by!(ctx_getter, tern_n_ctx, 8),
        checked_by!(ctx_getter, tern_n_batch, 4),
        checked_by!(ctx_getter, tern_n_past, 0),
        checked_by!(ctx_getter, tern_n_threads, 1),
        checked_by!(ctx_getter, tern_n_threads_batch, 1),
        checked_by!(ctx_getter, tern_n_outputs, 0),
        ("tern_eval", |f| {
            let name = "tern_eval";
            let toks = [1, 3, 4, 5, 6];
            status(
                name,
                tern_eval(null_mut(), toks.as_ptr(), 1),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| {
                status(name, tern_eval(c, null(), 1), TERN_ERR_INVALID_ARGUMENT);
                for n in [0, -1, i32::MIN, 5, i32::MAX] {
                    status(
                        name,
                        tern_eval(c, toks.as_ptr(), n),
                        TERN_ERR_INVALID_ARGUMENT,
                    );
                }
                for bad in [[-1, 3], [3, 512], [i32::MAX, 0], [i32::MIN, 0]] {
                    status(
                        name,
                        tern_eval(c, bad.as_ptr(), 2),
                        TERN_ERR_INVALID_ARGUMENT,
                    );
                }
                assert_eq!(tern_n_past(c), 0);
                status(name, tern_eval(c, toks.as_ptr(), 4), TERN_OK);
                status(name, tern_eval(c, toks.as_ptr(), 3), TERN_OK);
                // 7 of 8 positions used: two more do not fit, and change nothing.
                status(name, tern_eval(c, toks.as_ptr(), 2), TERN_ERR_CONTEXT_FULL);
                assert_eq!(tern_n_past(c), 7);
                // Refused before evaluating: the previous logits stay (as the C
                // example bad_args.c expects).
                assert!(!tern_get_logits(c).is_null());
                status(name, tern_eval(c, toks.as_ptr(), 1), TERN_OK);
                status(name, tern_eval(c, toks.as_ptr(), 1), TERN_ERR_CONTEXT_FULL);
            });
        }),
        ("tern_get_logits", |f| {
            assert!(tern_get_logits(null_mut()).is_null());
            failed("tern_get_logits", false);
            with_context(f, 8, |c| {
                assert!(tern_get_logits(c).is_null(), "no logits before an eval");
                let t = [3];
                assert_eq!(tern_eval(c, t.as_ptr(), 1), TERN_OK);
                assert!(!tern_get_logits(c).is_null());
                assert_eq!(tern_kv_clear(c), TERN_OK);
                assert!(tern_get_logits(c).is_null(), "no logits after kv_clear");
            });
        }),
        ("tern_get_logits_ith", |f| {
            let name = "tern_get_logits_ith";
            assert!(tern_get_logits_ith(null_mut(), -1).is_null());
            failed(name, false);
            with_context(f, 8, |c| {
                assert!(tern_get_logits_ith(c, -1).is_null());
                failed(name, false);
                let t = [3, 4];
                assert_eq!(tern_eval(c, t.as_ptr(), 2), TERN_OK);
                for i in [0, 2, -3, i32::MIN, i32::MAX] {
                    assert!(tern_get_logits_ith(c, i).is_null(), "row {i}");
                    failed(name, false);
                }
                assert!(!tern_get_logits_ith(c, -1).is_null());
                assert!(!tern_get_logits_ith(c, 1).is_null());
            });
        }),
        ("tern_kv_clear", |f| {
            status(
                "tern_kv_clear",
                tern_kv_clear(null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| status("tern_kv_clear", tern_kv_clear(c), TERN_OK));
        }),
        ("tern_kv_truncate", |f| {
            let name = "tern_kv_truncate";
            status(
                name,
                tern_kv_truncate(null_mut(), 0),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| {
                let t = [3, 4, 5];
                assert_eq!(tern_eval(c, t.as_ptr(), 3), TERN_OK);
                for n in [-1, 4, 9, i32::MAX, i32::MIN] {
                    status(name, tern_kv_truncate(c, n), TERN_ERR_INVALID_ARGUMENT);
                    assert_eq!(tern_n_past(c), 3);
                }
                status(name, tern_kv_truncate(c, 3), TERN_OK);
                status(name, tern_kv_truncate(c, 0), TERN_OK);
            });
        }),
        ("tern_set_abort_callback", |f| {
            let name = "tern_set_abort_callback";
            extern "C" fn stop(_: *mut c_void) -> bool {
                true
            }
            status(
                name,
                tern_set_abort_callback(null_mut(), Some(stop), null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| {
                status(
                    name,
                    tern_set_abort_callback(c, Some(stop), null_mut()),
                    TERN_OK,
                );
                let t = [3, 4];
                status("tern_eval", tern_eval(c, t.as_ptr(), 2), TERN_ERR_ABORTED);
                assert_eq!(tern_n_past(c), 0);
                status(name, tern_set_abort_callback(c, None, null_mut()), TERN_OK);
                status("tern_eval", tern_eval(c, t.as_ptr(), 2), TERN_OK);
            });
        }),
        ("tern_perf", |f| {
            let name = "tern_perf";
            let mut p = std::mem::MaybeUninit::<tern_perf_data>::zeroed();
            status(
                name,
                tern_perf(null_mut(), p.as_mut_ptr()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| {
                status(name, tern_perf(c, null_mut()), TERN_ERR_INVALID_ARGUMENT);
                status(name, tern_perf(c, p.as_mut_ptr()), TERN_OK);
            });
        }),
        ("tern_perf_reset", |f| {
            status(
                "tern_perf_reset",
                tern_perf_reset(null_mut()),
                TERN_ERR_INVALID_ARGUMENT,
            );
            with_context(f, 8, |c| {
                status("tern_perf_reset", tern_perf_reset(c), TERN_OK)
            });
        }),
        ("tern_sample", |f| {
            let name = "tern_sample";
            let mut tok = 5;
            with_context(f, 8, |c| {
                status(
                    name,
                    tern_sample(null_mut(), c, -1, &mut tok),
                    TERN_ERR_INVALID_ARGUMENT,
                );
                assert_eq!(tok, -1);
                with_sampler(|s| {
                    status(
                        name,
                        tern_sample(s, null_mut(), -1, &mut tok),
                        TERN_ERR_INVALID_ARGUMENT,
                    );
                    refused(name, tern_sample(s, c, -1, &mut tok)); // no logits yet
                    let t = [3, 4];
                    assert_eq!(tern_eval(c, t.as_ptr(), 2), TERN_OK);
                    status(
                        name,
                        tern_sample(s, c, -1, null_mut()),
                        TERN_ERR_INVALID_ARGUMENT,
                    );
                    for i in [0, 2, -2, -3, i32::MIN, i32::MAX] {
                        tok = 5;
                        refused(name, tern_sample(s, c, i, &mut tok));
                        assert_eq!(tok, -1);
                    }
                    status(name, tern_sample(s, c, -1, &mut tok), TERN_OK);
                    assert!((0..512).contains(&tok));
                });
            });
        }),
    ]
}

fn int_getter(name: &str, get: extern "C" fn(*const tern_model) -> i32, f: &Fixture, want: i32) {
    assert_eq!(get(null()), -1);
    failed(name, false);
    assert_eq!(get(f.model()), want);
    assert_eq!(get(f.vocab_only as *const _), want);
}

type MetaByIndex =
    extern "C" fn(*const tern_model, i32, *mut c_char, usize, *mut usize) -> tern_status;

fn meta_by_index(name: &str, get: MetaByIndex, f: &Fixture) {
    let mut buf = [0 as c_char; 64];
    let mut need = 0usize;
    let m = f.model();
    let count = tern_model_meta_count(m);
    status(
        name,
        get(null(), 0, buf.as_mut_ptr(), 64, &mut need),
        TERN_ERR_INVALID_ARGUMENT,
    );
    for i in [-1, count, i32::MAX, i32::MIN] {
        refused(name, get(m, i, buf.as_mut_ptr(), 64, &mut need));
    }
    status(
        name,
        get(m, 0, null_mut(), 0, &mut need),
        TERN_ERR_BUFFER_TOO_SMALL,
    );
    assert!(need > 0);
    status(
        name,
        get(m, 0, null_mut(), 7, &mut need),
        TERN_ERR_INVALID_ARGUMENT,
    );
    status(
        name,
        get(m, 0, buf.as_mut_ptr(), 0, null_mut()),
        TERN_ERR_BUFFER_TOO_SMALL,
    );
    for i in 0..count {
        let got = get(m, i, buf.as_mut_ptr(), 64, &mut need);
        assert!(
            got == TERN_OK || got == TERN_ERR_BUFFER_TOO_SMALL,
            "{}",
            last_error()
        );
    }
}

fn special(
    name: &str,
    get: extern "C" fn(*const tern_model) -> tern_token,
    f: &Fixture,
    want: i32,
) {
    assert_eq!(get(null()), -1);
    failed(name, false);
    assert_eq!(get(f.no_tokenizer as *const _), -1);
    assert_eq!(get(f.model()), want);
}

/// A yes/no question about a token: false for a NULL model (with an error) and for ids out
/// of range, true for `yes`.
fn token_flag(
    name: &str,
    ask: extern "C" fn(*const tern_model, tern_token) -> bool,
    f: &Fixture,
    yes: i32,
) {
    assert!(!ask(null(), yes));
    failed(name, false);
    for t in [-1, 512, i32::MIN, i32::MAX] {
        assert!(!ask(f.model(), t));
    }
    assert!(ask(f.model(), yes));
}

/// Runs `body` with a context of `n_ctx` positions, batches of 4, one thread.
fn with_context(f: &Fixture, n_ctx: u32, body: impl FnOnce(*mut tern_context)) {
    let p = tern_context_params {
        n_ctx,
        n_batch: 4,
        n_threads: 1,
        n_threads_batch: 1,
        ..tern_context_default_params()
    };
    let mut c = null_mut();
    assert_eq!(
        tern_context_new(f.model(), &p, &mut c),
        TERN_OK,
        "{}",
        last_error()
    );
    body(c);
    tern_context_free(c);
}

fn ctx_getter(name: &str, get: extern "C" fn(*mut tern_context) -> i32, f: &Fixture, want: i32) {
    assert_eq!(get(null_mut()), -1);
    failed(name, false);
    with_context(f, 8, |c| assert_eq!(get(c), want));
}

fn with_sampler(body: impl FnOnce(*mut tern_sampler)) {
    let p = tern_sampler_params {
        seed: 7,
        ..tern_sampler_default_params()
    };
    let mut s = null_mut();
    assert_eq!(tern_sampler_new(&p, &mut s), TERN_OK);
    body(s);
    tern_sampler_free(s);
}

/// The functions `include/tern.h` declares.
fn header_functions() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/tern.h");
    let text = std::fs::read_to_string(path).unwrap();
    let body = text
        .split_once("extern \"C\" {")
        .expect("the header's extern \"C\" block")
        .1;
    let mut names = BTreeSet::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("//") || line.starts_with('#') {
            continue;
        }
        if let Some(open) = line.find('(') {
            let head = &line[..open];
            let name = head
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap();
            if name.starts_with("tern_") {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn the_header_is_parsed() {
    let names = header_functions();
    assert!(names.contains("tern_model_load") && names.contains("tern_status_name"));
    assert!(names.len() > 30, "{names:?}");
}

#[test]
fn every_exported_function_has_a_case() {
    let header = header_functions();
    let covered: BTreeSet<String> = cases().iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<_> = header.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&header).collect();
    assert!(
        missing.is_empty(),
        "functions in include/tern.h without a bad-argument case in this file: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "cases for functions not in the header: {stale:?}"
    );
}

#[test]
fn every_exported_function_refuses_bad_arguments_without_panicking() {
    let f = fixture();
    for (name, case) in cases() {
        eprintln!("{name}");
        case(f);
    }
}

#[test]
fn bad_arguments_from_many_threads_at_once() {
    // The last-error slot is per thread: concurrent failures do not mix their messages.
    let f = fixture();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..10 {
                    for (_, case) in cases() {
                        case(f);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
