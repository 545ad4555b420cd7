//! The tokenizer's C functions, called from Rust: sizes, NULL pointers, zero capacity,
//! bad ids, bad text, and models without a tokenizer.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use tern::ffi::model::{tern_model, tern_model_default_params, tern_model_free, tern_model_load};
use tern::ffi::tern_status::*;
use tern::ffi::tokenizer::*;
use tern::ffi::{tern_last_error, tern_status};
use tern::tokenizer::Tokenizer;

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TERN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    if dir.join("tokenizer").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("reference data not found at {}", dir.display());
    }
    eprintln!(
        "\n*** SKIPPING tokenizer C API tests: {} not found (set TERN_REFERENCE_DIR) ***\n",
        dir.display()
    );
    None
}

struct Loaded(*mut tern_model);

impl Drop for Loaded {
    fn drop(&mut self) {
        tern_model_free(self.0);
    }
}

/// The Llama 3 vocabulary, loaded once through the C API and shared by the tests (a
/// model is immutable and may be used from many threads).
fn llama_bpe(dir: &Path) -> *const tern_model {
    static MODEL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MODEL.get_or_init(|| {
        let m = load(&dir.join("tokenizer/ggml-vocab-llama-bpe.gguf"));
        let p = m.0 as usize;
        std::mem::forget(m);
        p
    }) as *const tern_model
}

fn load(path: &Path) -> Loaded {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut params = tern_model_default_params();
    params.vocab_only = true;
    let mut m = null_mut();
    let st = tern_model_load(c.as_ptr(), &params, &mut m);
    assert_eq!(st, TERN_OK, "{}", last_error());
    Loaded(m)
}

/// A borrowed handle (not freed).
struct Shared(*const tern_model);

fn last_error() -> String {
    // SAFETY: tern_last_error returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn tokenize(m: *const tern_model, text: &[u8], add: bool, parse: bool) -> (tern_status, Vec<i32>) {
    let mut n = 0usize;
    let st = tern_tokenize(
        m,
        text.as_ptr() as *const c_char,
        text.len(),
        add,
        parse,
        null_mut(),
        0,
        &mut n,
    );
    if st != TERN_ERR_BUFFER_TOO_SMALL {
        return (st, Vec::new());
    }
    let mut ids = vec![0i32; n];
    let mut n2 = 0usize;
    let st = tern_tokenize(
        m,
        text.as_ptr() as *const c_char,
        text.len(),
        add,
        parse,
        ids.as_mut_ptr(),
        ids.len(),
        &mut n2,
    );
    assert_eq!(n2, n);
    (st, ids)
}

#[test]
fn tokenize_reports_sizes_and_matches_the_rust_api() {
    let Some(dir) = reference_dir() else { return };
    let path = dir.join("tokenizer/ggml-vocab-llama-bpe.gguf");
    let m = Shared(llama_bpe(&dir));
    let rust = Tokenizer::from_gguf(&tern::gguf::GgufFile::open(&path).unwrap()).unwrap();
    let text = "Hello world<|eot_id|> 3333 🚀";
    for (add, parse) in [(false, false), (true, false), (true, true)] {
        let (st, ids) = tokenize(m.0, text.as_bytes(), add, parse);
        assert_eq!(st, TERN_OK, "{}", last_error());
        let want: Vec<i32> = rust
            .tokenize(text, add, parse)
            .unwrap()
            .into_iter()
            .map(|x| x as i32)
            .collect();
        assert_eq!(ids, want);
    }
    // Too small a buffer: the size needed is reported, nothing is written.
    let mut ids = [-7i32; 2];
    let mut n = 0;
    let st = tern_tokenize(
        m.0,
        text.as_ptr() as *const c_char,
        text.len(),
        true,
        false,
        ids.as_mut_ptr(),
        2,
        &mut n,
    );
    assert_eq!(st, TERN_ERR_BUFFER_TOO_SMALL);
    assert!(n > 2);
    assert_eq!(ids, [-7, -7]);
    // Text is bytes with a length: what follows is not read.
    let (st, a) = tokenize(m.0, b"Hello worldXXXX", false, false);
    assert_eq!(st, TERN_OK);
    let mut n = 0;
    let mut b = vec![0; 8];
    let st = tern_tokenize(
        m.0,
        b"Hello worldXXXX".as_ptr() as *const c_char,
        11,
        false,
        false,
        b.as_mut_ptr(),
        8,
        &mut n,
    );
    assert_eq!(st, TERN_OK);
    b.truncate(n);
    assert_ne!(a, b);
    assert_eq!(b, vec![9906, 1917]);
}

#[test]
fn tokenize_bad_arguments() {
    let Some(dir) = reference_dir() else { return };
    let m = load(&dir.join("tokenizer/ggml-vocab-llama-spm.gguf"));
    let mut n = 99usize;
    let mut buf = [0i32; 4];
    // NULL n_tokens, NULL model, NULL text with a length, NULL output with a capacity.
    assert_eq!(
        tern_tokenize(
            m.0,
            c"a".as_ptr(),
            1,
            false,
            false,
            buf.as_mut_ptr(),
            4,
            null_mut()
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tern_tokenize(
            null(),
            c"a".as_ptr(),
            1,
            false,
            false,
            buf.as_mut_ptr(),
            4,
            &mut n
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("model is NULL"), "{}", last_error());
    assert_eq!(
        tern_tokenize(m.0, null(), 5, false, false, buf.as_mut_ptr(), 4, &mut n),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tern_tokenize(m.0, c"a".as_ptr(), 1, false, false, null_mut(), 4, &mut n),
        TERN_ERR_INVALID_ARGUMENT
    );
    // Empty text may be NULL; with add_special it is just BOS.
    assert_eq!(
        tern_tokenize(m.0, null(), 0, true, false, buf.as_mut_ptr(), 4, &mut n),
        TERN_OK
    );
    assert_eq!((n, buf[0]), (1, 1));
    assert_eq!(
        tern_tokenize(m.0, null(), 0, false, false, null_mut(), 0, &mut n),
        TERN_OK
    );
    assert_eq!(n, 0);
    // Invalid UTF-8 and NUL bytes are text: SentencePiece gives byte tokens for them.
    let (st, ids) = tokenize(m.0, b"a\xff\0b", false, false);
    assert_eq!(st, TERN_OK);
    assert!(ids.contains(&(3 + 0xff)) && ids.contains(&3), "{ids:?}");
}

#[test]
fn pieces_and_detokenize() {
    let Some(dir) = reference_dir() else { return };
    let m = Shared(llama_bpe(&dir));
    let mut len = 0usize;
    let mut buf = [0 as c_char; 32];
    // " world" is one token.
    assert_eq!(
        tern_token_to_piece(m.0, 1917, false, buf.as_mut_ptr(), buf.len(), &mut len),
        TERN_OK
    );
    assert_eq!(
        &buf[..len].iter().map(|&c| c as u8).collect::<Vec<_>>(),
        b" world"
    );
    // Control tokens are empty unless asked for.
    assert_eq!(
        tern_token_to_piece(m.0, 128009, false, buf.as_mut_ptr(), 32, &mut len),
        TERN_OK
    );
    assert_eq!(len, 0);
    assert_eq!(
        tern_token_to_piece(m.0, 128009, true, null_mut(), 0, &mut len),
        TERN_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, "<|eot_id|>".len());
    // Bad ids, NULL length, NULL buffer with a size.
    for bad in [-1, -1000, 128256, i32::MAX] {
        assert_eq!(
            tern_token_to_piece(m.0, bad, true, buf.as_mut_ptr(), 32, &mut len),
            TERN_ERR_INVALID_ARGUMENT
        );
    }
    assert!(last_error().contains("out of range"), "{}", last_error());
    assert_eq!(
        tern_token_to_piece(m.0, 5, true, buf.as_mut_ptr(), 32, null_mut()),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tern_token_to_piece(m.0, 5, true, null_mut(), 32, &mut len),
        TERN_ERR_INVALID_ARGUMENT
    );

    let ids = [128000, 9906, 1917, 128009];
    let mut needed = 0usize;
    assert_eq!(
        tern_detokenize(
            m.0,
            ids.as_ptr(),
            4,
            false,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_BUFFER_TOO_SMALL
    );
    let want = "<|begin_of_text|>Hello world<|eot_id|>";
    assert_eq!(needed, want.len() + 1);
    let mut text = vec![0 as c_char; needed];
    assert_eq!(
        tern_detokenize(
            m.0,
            ids.as_ptr(),
            4,
            false,
            true,
            text.as_mut_ptr(),
            needed,
            null_mut()
        ),
        TERN_OK
    );
    // SAFETY: the call wrote a NUL-terminated string into `text`.
    assert_eq!(
        unsafe { CStr::from_ptr(text.as_ptr()) }.to_str().unwrap(),
        want
    );
    assert_eq!(
        tern_detokenize(
            m.0,
            ids.as_ptr(),
            4,
            true,
            false,
            text.as_mut_ptr(),
            needed,
            &mut needed
        ),
        TERN_OK
    );
    // SAFETY: as above.
    assert_eq!(
        unsafe { CStr::from_ptr(text.as_ptr()) }.to_str().unwrap(),
        "Hello world"
    );
    // Empty input, NULL tokens with a count, a bad id anywhere.
    assert_eq!(
        tern_detokenize(
            m.0,
            null(),
            0,
            false,
            false,
            text.as_mut_ptr(),
            1,
            &mut needed
        ),
        TERN_OK
    );
    assert_eq!(needed, 1);
    assert_eq!(
        tern_detokenize(
            m.0,
            null(),
            3,
            false,
            false,
            text.as_mut_ptr(),
            1,
            &mut needed
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    let bad = [9906, 999_999];
    assert_eq!(
        tern_detokenize(
            m.0,
            bad.as_ptr(),
            2,
            false,
            false,
            text.as_mut_ptr(),
            64,
            &mut needed
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
}

#[test]
fn special_token_queries() {
    let Some(dir) = reference_dir() else { return };
    let m = Shared(llama_bpe(&dir));
    assert_eq!(tern_token_bos(m.0), 128000);
    assert_eq!(tern_token_eos(m.0), 128001);
    assert_eq!(tern_token_eot(m.0), 128009);
    assert_eq!(tern_token_eom(m.0), -1);
    assert!(tern_token_is_eog(m.0, 128009));
    assert!(tern_token_is_eog(m.0, 128001));
    assert!(!tern_token_is_eog(m.0, 9906));
    assert!(!tern_token_is_eog(m.0, -1));
    assert!(!tern_token_is_eog(m.0, 1 << 30));
    assert!(tern_token_is_control(m.0, 128000));
    assert!(!tern_token_is_control(m.0, 9906));
    assert_eq!(tern_token_get_attr(m.0, 9906), 4);
    assert_eq!(tern_token_get_attr(m.0, 128000), 8);
    assert_eq!(tern_token_get_attr(m.0, -3), -1);
    assert_eq!(tern_token_bos(null()), -1);
    assert!(!tern_token_is_eog(null(), 1));
}

#[test]
fn chat_templates() {
    let Some(dir) = reference_dir() else { return };
    let role = CString::new("user").unwrap();
    let content = CString::new("Hi").unwrap();
    let msgs = [tern_chat_message {
        role: role.as_ptr(),
        content: content.as_ptr(),
    }];
    let mut needed = 0usize;
    // A named format needs no model.
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"llama3".as_ptr(),
            msgs.as_ptr(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_BUFFER_TOO_SMALL
    );
    let want = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(needed, want.len() + 1);
    let mut buf = vec![0 as c_char; needed];
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"llama3".as_ptr(),
            msgs.as_ptr(),
            1,
            true,
            buf.as_mut_ptr(),
            needed,
            null_mut()
        ),
        TERN_OK
    );
    // SAFETY: the call wrote a NUL-terminated string.
    assert_eq!(
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(),
        want
    );
    // The model's own template; none, unknown, bad messages.
    let bitnet = dir.join("bitnet25/ggml-model-i2s.gguf");
    if bitnet.exists() {
        let m = load(&bitnet);
        let mut buf = vec![0 as c_char; 128];
        assert_eq!(
            tern_chat_apply_template(
                m.0,
                null(),
                msgs.as_ptr(),
                1,
                true,
                buf.as_mut_ptr(),
                128,
                null_mut()
            ),
            TERN_OK,
            "{}",
            last_error()
        );
        // SAFETY: as above.
        let got = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(got, "User: Hi<|eot_id|>Assistant: ");
    }
    let m = Shared(llama_bpe(&dir));
    assert_eq!(
        tern_chat_apply_template(
            m.0,
            null(),
            msgs.as_ptr(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_NOT_FOUND
    );
    assert_eq!(
        tern_chat_apply_template(
            null(),
            null(),
            msgs.as_ptr(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"{{ x }}".as_ptr(),
            msgs.as_ptr(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_UNSUPPORTED
    );
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"chatml".as_ptr(),
            null(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    let bad = [tern_chat_message {
        role: null(),
        content: content.as_ptr(),
    }];
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"chatml".as_ptr(),
            bad.as_ptr(),
            1,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("messages[0].role"),
        "{}",
        last_error()
    );
    // No messages at all is fine.
    assert_eq!(
        tern_chat_apply_template(
            null(),
            c"chatml".as_ptr(),
            null(),
            0,
            true,
            null_mut(),
            0,
            &mut needed
        ),
        TERN_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(needed, "<|im_start|>assistant\n".len() + 1);
}

#[test]
fn models_without_a_tokenizer_say_so() {
    let mut w = tern::gguf::GgufWriter::new();
    w.set("general.architecture", tern::gguf::Value::string("llama"));
    let path = std::env::temp_dir().join(format!("tern-no-tokenizer-{}.gguf", std::process::id()));
    w.write_file(&path, &[]).unwrap();
    let m = load(&path);
    let _ = std::fs::remove_file(&path);
    let mut n = 0usize;
    assert_eq!(
        tern_tokenize(m.0, c"hi".as_ptr(), 2, true, false, null_mut(), 0, &mut n),
        TERN_ERR_NOT_FOUND
    );
    assert!(last_error().contains("no tokenizer"), "{}", last_error());
    assert_eq!(tern_token_bos(m.0), -1);
}
