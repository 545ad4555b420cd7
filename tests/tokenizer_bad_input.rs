//! Bad tokenizer metadata and bad input text: clear errors or documented behaviour,
//! never a panic. The vocabularies here are small synthetic ones written with
//! `GgufWriter`, so these tests need no reference data.

use tern::gguf::{Array, GgufFile, GgufWriter, Value};
use tern::tokenizer::bpe::byte_to_char_table;
use tern::tokenizer::Tokenizer;
use tern::Error;

/// A byte-level BPE vocabulary: the 256 byte characters, then "he", "ll", "hell",
/// "hello", a control token and a user-defined token; merges build "hello".
fn bpe_metadata() -> Vec<(&'static str, Value)> {
    let mut tokens: Vec<Vec<u8>> = byte_to_char_table()
        .iter()
        .map(|c| c.to_string().into_bytes())
        .collect();
    let mut types = vec![1i32; 256];
    for (t, ty) in [
        ("he", 1),
        ("ll", 1),
        ("hell", 1),
        ("hello", 1),
        ("<|bos|>", 3),
        ("<|user|>", 4),
    ] {
        tokens.push(t.as_bytes().to_vec());
        types.push(ty);
    }
    let merges = ["h e", "l l", "he ll", "hell o"]
        .iter()
        .map(|m| m.as_bytes().to_vec())
        .collect();
    vec![
        ("general.architecture", Value::string("test")),
        ("tokenizer.ggml.model", Value::string("gpt2")),
        ("tokenizer.ggml.pre", Value::string("gpt-2")),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.merges", Value::Array(Array::String(merges))),
        ("tokenizer.ggml.bos_token_id", Value::U32(260)),
        ("tokenizer.ggml.eos_token_id", Value::U32(260)),
    ]
}

/// A SentencePiece vocabulary: unk, bos, eos, the 256 byte tokens, then a few pieces.
fn spm_metadata() -> Vec<(&'static str, Value)> {
    let mut tokens: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
    let mut types = vec![2i32, 3, 3];
    let mut scores = vec![0.0f32, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>").into_bytes());
        types.push(6);
        scores.push(0.0);
    }
    for (i, t) in ["▁", "a", "b", "▁a", "ab", "▁ab"].iter().enumerate() {
        tokens.push(t.as_bytes().to_vec());
        types.push(1);
        scores.push(-(i as f32));
    }
    vec![
        ("general.architecture", Value::string("test")),
        ("tokenizer.ggml.model", Value::string("llama")),
        ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
    ]
}

fn build(meta: &[(&str, Value)]) -> Result<Tokenizer, Error> {
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.set(k, v.clone());
    }
    let file = GgufFile::from_bytes(w.header_bytes().unwrap()).unwrap();
    Tokenizer::from_gguf(&file)
}

fn with(
    mut meta: Vec<(&'static str, Value)>,
    key: &'static str,
    v: Value,
) -> Vec<(&'static str, Value)> {
    meta.retain(|(k, _)| *k != key);
    meta.push((key, v));
    meta
}

fn without(mut meta: Vec<(&'static str, Value)>, key: &str) -> Vec<(&'static str, Value)> {
    meta.retain(|(k, _)| *k != key);
    meta
}

fn err(meta: &[(&str, Value)]) -> Error {
    match build(meta) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn assert_msg(e: &Error, needles: &[&str]) {
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "'{msg}' should mention '{n}'");
    }
}

#[test]
fn synthetic_vocabularies_work() {
    let bpe = build(&bpe_metadata()).unwrap();
    assert_eq!(bpe.tokenize("hello", false, false).unwrap(), vec![259]);
    // User-defined tokens are split out even without parse_special; control ones not.
    let ids = bpe.tokenize("<|user|>hello", false, false).unwrap();
    assert_eq!(ids, vec![261, 259]);
    let ids = bpe.tokenize("<|bos|>", false, false).unwrap();
    assert!(ids.len() > 1 && !ids.contains(&260));
    assert_eq!(bpe.tokenize("<|bos|>", false, true).unwrap(), vec![260]);

    let spm = build(&spm_metadata()).unwrap();
    let ab = spm.token_id("▁ab").unwrap();
    assert_eq!(spm.tokenize("ab", false, false).unwrap(), vec![ab]);
    assert_eq!(spm.tokenize("ab", true, false).unwrap(), vec![1, ab]);
    // Like llama.cpp: the prefix space is dropped from plain text, but not after a BOS
    // that remove_special took away.
    assert_eq!(spm.detokenize(&[ab], false, false).unwrap(), "ab");
    assert_eq!(spm.detokenize(&[1, ab], true, false).unwrap(), " ab");
}

#[test]
fn merges_naming_tokens_outside_the_vocabulary_fail_at_load() {
    let m = |s: &str| Value::Array(Array::String(vec![s.as_bytes().to_vec()]));
    let e = err(&with(bpe_metadata(), "tokenizer.ggml.merges", m("h zz")));
    assert!(matches!(e, Error::Tokenizer(_)), "{e}");
    assert_msg(
        &e,
        &["tokenizer.ggml.merges", "zz", "not in the vocabulary"],
    );
    let e = err(&with(bpe_metadata(), "tokenizer.ggml.merges", m("x y")));
    assert_msg(&e, &["merged token 'xy'"]);
    let e = err(&with(bpe_metadata(), "tokenizer.ggml.merges", m("hello")));
    assert_msg(&e, &["no space"]);
    let e = err(&without(bpe_metadata(), "tokenizer.ggml.merges"));
    assert_msg(&e, &["tokenizer.ggml.merges", "missing"]);
    let e = err(&with(
        bpe_metadata(),
        "tokenizer.ggml.merges",
        Value::Array(Array::U32(vec![1])),
    ));
    assert_msg(&e, &["array of strings"]);
}

#[test]
fn token_arrays_of_different_lengths_fail_at_load() {
    let e = err(&with(
        spm_metadata(),
        "tokenizer.ggml.scores",
        Value::Array(Array::F32(vec![0.0; 10])),
    ));
    assert_msg(&e, &["tokenizer.ggml.scores", "10 entries", "same length"]);
    let e = err(&with(
        bpe_metadata(),
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vec![1; 300])),
    ));
    assert_msg(&e, &["tokenizer.ggml.token_type", "300"]);
    let e = err(&with(
        spm_metadata(),
        "tokenizer.ggml.scores",
        Value::Array(Array::String(vec![])),
    ));
    assert_msg(&e, &["FLOAT32"]);
}

#[test]
fn special_ids_past_the_vocabulary_fail_at_load() {
    for key in [
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.padding_token_id",
    ] {
        let e = err(&with(bpe_metadata(), key, Value::U32(262)));
        assert_msg(&e, &[key, "262", "past the vocabulary"]);
    }
    let e = err(&with(
        bpe_metadata(),
        "tokenizer.ggml.bos_token_id",
        Value::string("1"),
    ));
    assert_msg(&e, &["integer"]);
    // add_bos_token with no BOS at all (BPE's default id 11 is fine here, so drop it via
    // a vocabulary too small for the default).
    let mut small = spm_metadata();
    small = with(
        small,
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(vec![b"a".to_vec()])),
    );
    small = without(
        without(small, "tokenizer.ggml.scores"),
        "tokenizer.ggml.token_type",
    );
    let e = err(&small);
    assert_msg(&e, &["add_bos_token", "no BOS"]);
}

#[test]
fn unknown_kinds_and_pre_tokenizers_are_named() {
    let e = err(&with(
        bpe_metadata(),
        "tokenizer.ggml.pre",
        Value::string("mystery-pre"),
    ));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_msg(&e, &["mystery-pre"]);
    let e = err(&with(
        bpe_metadata(),
        "tokenizer.ggml.model",
        Value::string("wordpiece"),
    ));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_msg(&e, &["wordpiece"]);
    // A missing pre means "default", as in llama.cpp.
    let t = build(&without(bpe_metadata(), "tokenizer.ggml.pre")).unwrap();
    assert_eq!(t.pre_type(), Some("default"));
}

#[test]
fn malformed_vocabularies_fail_at_load() {
    let plain = without(
        without(spm_metadata(), "tokenizer.ggml.scores"),
        "tokenizer.ggml.token_type",
    );
    let e = err(&with(
        plain,
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(vec![b"a".to_vec(), b"a".to_vec()])),
    ));
    assert_msg(&e, &["duplicate", "'a'", "0 and 1"]);
    let e = err(&without(spm_metadata(), "tokenizer.ggml.tokens"));
    assert_msg(&e, &["tokenizer.ggml.tokens", "missing"]);
    let e = err(&with(
        spm_metadata(),
        "tokenizer.ggml.tokens",
        Value::Array(Array::String(vec![])),
    ));
    assert_msg(&e, &["empty"]);
    let mut meta = spm_metadata();
    if let Some((_, Value::Array(Array::String(t)))) =
        meta.iter_mut().find(|(k, _)| *k == "tokenizer.ggml.tokens")
    {
        t[10] = b"<0xZZ>".to_vec();
    }
    assert_msg(&err(&meta), &["BYTE", "<0xHH>"]);
    let e = err(&with(spm_metadata(), "tokenizer.ggml.model", Value::U32(3)));
    assert_msg(&e, &["tokenizer.ggml.model", "string"]);
}

#[test]
fn invalid_utf8_nul_bytes_and_empty_text() {
    let bpe = build(&bpe_metadata()).unwrap();
    // BPE: each byte that does not start a valid sequence becomes U+FFFD.
    let replaced = bpe.tokenize("h\u{FFFD}\u{FFFD}e", false, false).unwrap();
    assert_eq!(
        bpe.tokenize_bytes(b"h\xff\xfee", false, false).unwrap(),
        replaced
    );
    // NUL is ordinary text and round-trips.
    let ids = bpe.tokenize("a\0b", false, false).unwrap();
    assert_eq!(bpe.detokenize(&ids, false, false).unwrap(), "a\0b");
    assert!(bpe.tokenize("", false, false).unwrap().is_empty());

    let spm = build(&spm_metadata()).unwrap();
    // SentencePiece: invalid bytes become byte tokens, so nothing is lost.
    let ids = spm.tokenize_bytes(b"a\xffb", false, false).unwrap();
    assert_eq!(spm.detokenize_bytes(&ids, false, false).unwrap(), b"a\xffb");
    assert_eq!(spm.tokenize("", true, false).unwrap(), vec![1]);
    assert!(spm.tokenize("", false, false).unwrap().is_empty());
}

#[test]
fn ids_out_of_range_are_errors() {
    let bpe = build(&bpe_metadata()).unwrap();
    let n = bpe.n_vocab() as u32;
    for bad in [n, n + 1, u32::MAX] {
        assert!(matches!(
            bpe.detokenize(&[1, bad], false, false),
            Err(Error::InvalidArgument(_))
        ));
        assert!(bpe.token_to_piece(bad, true).is_err());
        assert!(bpe.token_attr(bad).is_err());
        assert!(!bpe.is_eog(bad));
    }
}

#[test]
fn long_runs_of_one_character_are_linear() {
    // 1 MB here (the 10 MB figure is in the benchmark, not in a timed test).
    let bpe = build(&bpe_metadata()).unwrap();
    let text = "l".repeat(1 << 20);
    let ids = bpe.tokenize(&text, false, false).unwrap();
    assert_eq!(ids.len(), 1 << 19, "pairs of 'l' merge into 'll'");
    assert_eq!(bpe.detokenize(&ids, false, false).unwrap(), text);

    let spm = build(&spm_metadata()).unwrap();
    let text = "ab".repeat(1 << 18);
    let ids = spm.tokenize(&text, false, false).unwrap();
    assert_eq!(spm.detokenize(&ids, false, false).unwrap(), text);
}

#[test]
fn a_bad_tokenizer_fails_the_model_load() {
    use tern::model::{LoadParams, Model};
    let dir = std::env::temp_dir();
    let write = |name: &str, meta: &[(&str, Value)]| {
        let mut w = GgufWriter::new();
        for (k, v) in meta {
            w.set(k, v.clone());
        }
        let path = dir.join(format!("tern-tok-{}-{name}.gguf", std::process::id()));
        w.write_file(&path, &[]).unwrap();
        path
    };
    let bad = write(
        "bad",
        &with(
            bpe_metadata(),
            "tokenizer.ggml.bos_token_id",
            Value::U32(9999),
        ),
    );
    let result = Model::load(&bad, &LoadParams::default());
    let _ = std::fs::remove_file(&bad);
    let e = result.err().expect("the load must fail");
    assert!(matches!(e, Error::Tokenizer(_)), "{e}");
    assert_msg(&e, &["tern-tok-", "bos_token_id", "9999"]);

    // No tokenizer (or "none"): the model loads without one.
    let none = write(
        "none",
        &[
            ("general.architecture", Value::string("test")),
            ("tokenizer.ggml.model", Value::string("none")),
        ],
    );
    // These files hold metadata only: load them vocab-only (a full load also checks the
    // architecture and the weights).
    let vocab_only = LoadParams {
        vocab_only: true,
        ..LoadParams::default()
    };
    let model = Model::load(&none, &vocab_only);
    let _ = std::fs::remove_file(&none);
    assert!(model.unwrap().tokenizer().is_none());
    let good = write("good", &bpe_metadata());
    let model = Model::load(&good, &vocab_only);
    let _ = std::fs::remove_file(&good);
    assert_eq!(model.unwrap().tokenizer().unwrap().n_vocab(), 262);
}
