//! The model part of the C ABI, called from Rust as a C program would: accessors, the
//! caller-owned buffer protocol, and bad arguments (null pointers, freed handles).

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use tern::ffi::model::*;
use tern::ffi::tern_status::*;
use tern::ffi::{
    tern_abi_version, tern_last_error, tern_status, tern_status_name, tern_system_info,
    tern_version,
};

fn last_error() -> String {
    // SAFETY: tern_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: the library returns NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn load(path: &std::path::Path) -> *mut tern_model {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut m = null_mut();
    let st = tern_model_load(c.as_ptr(), null(), &mut m);
    assert_eq!(st, TERN_OK, "{}", last_error());
    m
}

#[test]
fn static_strings() {
    assert_eq!(text(tern_version()), tern::VERSION);
    assert!(text(tern_system_info()).contains("kernels:"));
    assert_eq!(tern_abi_version(), tern::ffi::TERN_ABI_VERSION);
    assert_eq!(
        text(tern_status_name(TERN_ERR_CONTEXT_FULL as i32)),
        "TERN_ERR_CONTEXT_FULL"
    );
    assert_eq!(text(tern_status_name(-5)), "TERN_ERR_UNKNOWN");
}

#[test]
fn accessors_on_a_reference_model() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let m = load(&dir.join("bitnet25/ggml-model-i2s.gguf"));
    assert_eq!(text(tern_model_architecture(m)), "bitnet-25");
    assert_eq!(tern_model_n_vocab(m), 1024);
    assert_eq!(tern_model_n_embd(m), 512);
    assert_eq!(tern_model_n_layer(m), 2);
    assert_eq!(tern_model_n_head(m), 4);
    assert_eq!(tern_model_n_head_kv(m), 1);
    assert_eq!(tern_model_n_ctx_train(m), 4096);
    assert_eq!(tern_model_n_tensors(m), 24);
    assert_eq!(tern_model_meta_count(m), 23);

    // Size query, then a fitting buffer.
    let key = CString::new("general.architecture").unwrap();
    let mut needed = 0usize;
    let st = tern_model_meta_val_str(m, key.as_ptr(), null_mut(), 0, &mut needed);
    assert_eq!(st, TERN_ERR_BUFFER_TOO_SMALL);
    assert_eq!(needed, "bitnet-25".len() + 1);
    let mut buf = vec![0 as c_char; needed];
    assert_eq!(
        tern_model_meta_val_str(m, key.as_ptr(), buf.as_mut_ptr(), needed, null_mut()),
        TERN_OK
    );
    assert_eq!(text(buf.as_ptr()), "bitnet-25");
    // One byte short: refused, nothing written.
    let mut short = vec![7 as c_char; needed - 1];
    let st = tern_model_meta_val_str(m, key.as_ptr(), short.as_mut_ptr(), needed - 1, &mut needed);
    assert_eq!(st, TERN_ERR_BUFFER_TOO_SMALL);
    assert!(short.iter().all(|&c| c == 7));
    // Numbers and shortened arrays as text.
    let mut big = vec![0 as c_char; 4096];
    let k = CString::new("bitnet-25.rope.freq_base").unwrap();
    assert_eq!(
        tern_model_meta_val_str(m, k.as_ptr(), big.as_mut_ptr(), 4096, null_mut()),
        TERN_OK
    );
    assert_eq!(text(big.as_ptr()), "500000");
    let k = CString::new("tokenizer.ggml.token_type").unwrap();
    assert_eq!(
        tern_model_meta_val_str(m, k.as_ptr(), big.as_mut_ptr(), 4096, null_mut()),
        TERN_OK
    );
    assert!(text(big.as_ptr()).ends_with("... (1024 items)]"));
    // Missing key.
    let k = CString::new("no.such.key").unwrap();
    assert_eq!(
        tern_model_meta_val_str(m, k.as_ptr(), big.as_mut_ptr(), 4096, null_mut()),
        TERN_ERR_NOT_FOUND
    );
    assert!(last_error().contains("no.such.key"));
    // By index.
    assert_eq!(
        tern_model_meta_key_by_index(m, 0, big.as_mut_ptr(), 4096, null_mut()),
        TERN_OK
    );
    assert_eq!(text(big.as_ptr()), "general.architecture");
    assert_eq!(
        tern_model_meta_val_str_by_index(m, 22, big.as_mut_ptr(), 4096, null_mut()),
        TERN_OK
    );
    for bad in [-1, 23, i32::MAX] {
        assert_eq!(
            tern_model_meta_key_by_index(m, bad, big.as_mut_ptr(), 4096, null_mut()),
            TERN_ERR_INVALID_ARGUMENT
        );
    }
    tern_model_free(m);
}

#[test]
fn bad_arguments_give_statuses() {
    let mut m = null_mut();
    assert_eq!(
        tern_model_load(null(), null(), &mut m),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("path is NULL"));
    let p = CString::new("/nonexistent").unwrap();
    assert_eq!(
        tern_model_load(p.as_ptr(), null(), null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    let bad_utf8 = [0xffu8, 0xfe, 0];
    assert_eq!(
        tern_model_load(bad_utf8.as_ptr() as *const c_char, null(), &mut m),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("UTF-8"));

    assert!(tern_model_architecture(null()).is_null());
    assert_eq!(tern_model_n_vocab(null()), -1);
    assert_eq!(tern_model_meta_count(null()), -1);
    let k = CString::new("k").unwrap();
    let mut buf = [0 as c_char; 8];
    assert_eq!(
        tern_model_meta_val_str(null(), k.as_ptr(), buf.as_mut_ptr(), 8, null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    tern_model_free(null_mut());

    // A pointer that is not a model handle is refused by its magic.
    let junk = [0u64; 8];
    let fake = junk.as_ptr() as *const tern_model;
    assert_eq!(tern_model_n_layer(fake), -1);
    assert!(last_error().contains("not a live tern_model"));
}

#[test]
fn null_buffer_with_capacity_is_refused() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let m = load(&dir.join("llama-ternary/ggml-model-i2s.gguf"));
    let k = CString::new("general.architecture").unwrap();
    let mut needed = 0;
    let st: tern_status = tern_model_meta_val_str(m, k.as_ptr(), null_mut(), 16, &mut needed);
    assert_eq!(st, TERN_ERR_INVALID_ARGUMENT);
    assert_eq!(tern_model_n_head_kv(m), 2);
    tern_model_free(m);
}
