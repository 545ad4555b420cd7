//! The Rust tokenizer API on real vocabularies: special tokens, BOS/EOS, pieces,
//! detokenizing, streaming, chat templates, and the model's tokenizer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tern::bench::llama_cli::prompt_of_n_tokens;
use tern::gguf::GgufFile;
use tern::model::{LoadParams, Model};
use tern::tokenizer::{ChatMessage, Tokenizer, Utf8Stream};

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
        "\n*** SKIPPING tokenizer API tests: {} not found (set TERN_REFERENCE_DIR) ***\n",
        dir.display()
    );
    None
}

/// Each vocabulary is built once per test binary (building Llama 3's takes a while in a
/// debug build).
fn vocab(dir: &Path, name: &str) -> &'static Tokenizer {
    static CACHE: Mutex<Vec<(PathBuf, &'static Tokenizer)>> = Mutex::new(Vec::new());
    let path = dir.join("tokenizer").join(name);
    let mut cache = CACHE.lock().unwrap();
    if let Some((_, t)) = cache.iter().find(|(p, _)| *p == path) {
        return t;
    }
    let file = GgufFile::open(&path).unwrap();
    let t: &'static Tokenizer = Box::leak(Box::new(Tokenizer::from_gguf(&file).unwrap()));
    cache.push((path, t));
    t
}

fn inputs(dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("tokenizer").join(name)).unwrap();
    let mut v: Vec<String> = text
        .split("\n__ggml_vocab_test__\n")
        .map(str::to_string)
        .collect();
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

#[test]
fn llama3_special_tokens() {
    let Some(dir) = reference_dir() else { return };
    let t = vocab(&dir, "ggml-vocab-llama-bpe.gguf");
    assert_eq!(
        (t.bos(), t.eos(), t.eot()),
        (Some(128000), Some(128001), Some(128009))
    );
    assert!(t.is_eog(128001) && t.is_eog(128009) && !t.is_eog(128000) && !t.is_eog(9906));
    // llama3-type vocabularies add BOS by default (the file has no add_bos_token key).
    assert_eq!(
        t.tokenize("Hello", true, false).unwrap(),
        vec![128000, 9906]
    );
    assert_eq!(t.tokenize("Hello", false, false).unwrap(), vec![9906]);
    // Control tokens in text are plain text unless parse_special is set.
    let text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    let plain = t.tokenize(text, false, false).unwrap();
    assert!(!plain.contains(&128006) && !plain.contains(&128009));
    let parsed = t.tokenize(text, false, true).unwrap();
    assert_eq!(parsed[0], 128006);
    assert_eq!(*parsed.last().unwrap(), 128009);
    assert_eq!(parsed.len(), 6, "{parsed:?}");
    // Control tokens render only when asked.
    assert_eq!(t.token_to_piece(128009, false).unwrap(), b"");
    assert_eq!(t.token_to_piece(128009, true).unwrap(), b"<|eot_id|>");
    assert_eq!(t.detokenize(&parsed, false, true).unwrap(), text);
    assert_eq!(t.detokenize(&parsed, false, false).unwrap(), "user\n\nHi");
}

/// For byte-level BPE, the pieces of the ids concatenate to exactly the input bytes.
#[test]
fn bpe_pieces_reassemble_every_reference_input() {
    let Some(dir) = reference_dir() else { return };
    for name in [
        "ggml-vocab-llama-bpe.gguf",
        "ggml-vocab-deepseek-llm.gguf",
        "ggml-vocab-falcon.gguf",
        "ggml-vocab-starcoder.gguf",
    ] {
        let t = vocab(&dir, name);
        for text in inputs(&dir, &format!("{name}.inp")) {
            let ids = t.tokenize(&text, false, false).unwrap();
            let mut bytes = Vec::new();
            for id in ids {
                bytes.extend_from_slice(t.token_to_piece(id, true).unwrap());
            }
            assert_eq!(String::from_utf8(bytes).unwrap(), text, "{name}");
        }
    }
}

#[test]
fn detokenize_round_trips() {
    let Some(dir) = reference_dir() else { return };
    // DeepSeek does no space clean-up, so text comes back exactly.
    let t = vocab(&dir, "ggml-vocab-deepseek-coder.gguf");
    for text in inputs(&dir, "ggml-vocab-deepseek-coder.gguf.inp") {
        let ids = t.tokenize(&text, true, false).unwrap();
        assert_eq!(t.detokenize(&ids, true, false).unwrap(), text);
    }
    // SentencePiece drops the space it put in front.
    let t = vocab(&dir, "ggml-vocab-llama-spm.gguf");
    for text in inputs(&dir, "ggml-vocab-llama-spm.gguf.inp") {
        let ids = t.tokenize(&text, false, false).unwrap();
        assert_eq!(t.detokenize(&ids, false, false).unwrap(), text, "{ids:?}");
    }
    // Llama 3 cleans spaces before punctuation, as llama.cpp does.
    let t = vocab(&dir, "ggml-vocab-llama-bpe.gguf");
    let ids = t.tokenize("Hello , world !", false, false).unwrap();
    assert_eq!(t.detokenize(&ids, false, false).unwrap(), "Hello, world!");
}

#[test]
fn streaming_never_splits_a_character() {
    let Some(dir) = reference_dir() else { return };
    let t = vocab(&dir, "ggml-vocab-llama-spm.gguf");
    let text = "🚀 (normal) 😶‍🌫️ ✅ 我想在apple工作 Cửa Việt ក្រុង";
    let ids = t.tokenize(text, false, false).unwrap();
    // SentencePiece encodes these emoji as byte tokens, one byte at a time.
    assert!(ids
        .iter()
        .any(|&id| t.token_to_piece(id, false).unwrap().len() == 1
            && t.token_to_piece(id, false).unwrap()[0] >= 0x80));
    let mut stream = Utf8Stream::new();
    let mut out = String::new();
    for &id in &ids {
        let chunk = stream.push(t.token_to_piece(id, false).unwrap());
        assert!(!chunk.contains('\u{FFFD}'));
        out.push_str(&chunk);
    }
    out.push_str(&stream.finish());
    assert_eq!(out.trim_start(), text);

    // The same through the tokenizer's own id stream.
    let mut ts = t.stream(false);
    let mut out = String::new();
    for &id in &ids {
        out.push_str(&ts.push(id).unwrap());
    }
    out.push_str(&ts.finish());
    assert_eq!(out.trim_start(), text);
    assert!(ts.push(1 << 30).is_err());
}

#[test]
fn model_load_builds_the_tokenizer_and_its_chat_template() {
    let Some(dir) = reference_dir() else { return };
    let path = dir.join("bitnet25/ggml-model-i2s.gguf");
    if !path.exists() {
        eprintln!("*** no bitnet25 model; skipping ***");
        return;
    }
    let model = Model::load(&path, &LoadParams::default()).unwrap();
    let t = model
        .tokenizer()
        .expect("the BitNet file carries a tokenizer");
    assert_eq!(t.n_vocab(), 1024);
    assert_eq!(t.bos(), Some(1023));
    assert_eq!(t.tokenize("", true, false).unwrap(), vec![1023]);
    let msgs = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Hi"),
    ];
    // The GGUF template is bitnet.cpp's "BITNET" one, applied as bitnet.cpp applies it.
    assert_eq!(
        t.apply_chat_template(None, &msgs, true).unwrap(),
        "System: Be brief.User: Hi<|eot_id|>Assistant: "
    );
    assert_eq!(
        t.apply_chat_template(Some("llama3"), &msgs[1..], false)
            .unwrap(),
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    );
    let e = t
        .apply_chat_template(Some("{{ nope }}"), &msgs, true)
        .unwrap_err();
    assert!(matches!(e, tern::Error::Unsupported(_)));

    // A vocabulary without a chat template says so.
    let v = vocab(&dir, "ggml-vocab-llama-bpe.gguf");
    assert!(matches!(
        v.apply_chat_template(None, &msgs, true),
        Err(tern::Error::NotFound(_))
    ));
}

#[test]
fn phi3_special_tokens_strip_whitespace_to_their_right() {
    let Some(dir) = reference_dir() else { return };
    let t = vocab(&dir, "ggml-vocab-phi-3.gguf");
    let user = t.token_id("<|user|>").unwrap();
    let spaced = t.tokenize("<|user|>  \n Hi", false, true).unwrap();
    let tight = t.tokenize("<|user|>Hi", false, true).unwrap();
    assert_eq!(spaced[0], user);
    assert_eq!(spaced, tight);
    assert!(t.is_eog(t.token_id("<|end|>").unwrap()));
    assert_eq!(t.eot(), t.token_id("<|end|>"));
}

#[test]
fn depth_prompts_have_exactly_the_asked_token_count() {
    let Some(dir) = reference_dir() else { return };
    for name in [
        "ggml-vocab-llama-bpe.gguf",
        "ggml-vocab-llama-spm.gguf",
        "ggml-vocab-gpt-neox.gguf",
        "ggml-vocab-phi-3.gguf",
        "ggml-vocab-falcon.gguf",
    ] {
        let tok = vocab(&dir, name);
        let added = tok.tokenize("", true, false).unwrap().len();
        for n in [added + 1, 128, 1024, 4096] {
            let text = prompt_of_n_tokens(tok, n).unwrap();
            let len = tok.tokenize(&text, true, false).unwrap().len();
            assert_eq!(len, n, "{name}: {n} tokens asked");
        }
        let e = prompt_of_n_tokens(tok, added).unwrap_err().to_string();
        assert!(e.contains("at least"), "{name}: {e}");
    }
}
