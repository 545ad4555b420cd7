//! The committed header `include/tern.h` must equal a fresh cbindgen generation from
//! src/ffi/. Run with `TERN_BLESS=1` to rewrite it.

use std::path::Path;

#[test]
fn committed_header_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generation");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let path = root.join("include/tern.h");
    if std::env::var("TERN_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/tern.h is stale: regenerate it with `TERN_BLESS=1 cargo test --test c_header` and commit it"
    );
}

/// Every function, type, constant and struct field of the header has a doc comment (the
/// `///` comments of src/ffi/ become `//` comments above each declaration).
#[test]
fn every_declaration_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/tern.h")).unwrap();
    let lines: Vec<&str> = header.lines().collect();
    let body = lines
        .iter()
        .position(|l| l.starts_with("#include"))
        .expect("the header includes system headers");
    let mut undocumented = Vec::new();
    let mut in_struct = false;
    for (i, line) in lines.iter().enumerate().skip(body) {
        let t = line.trim();
        if t.starts_with("typedef struct {") || t.starts_with("enum ") {
            in_struct = true;
        } else if t.starts_with('}') {
            in_struct = false;
        }
        let declares = t.starts_with("#define TERN")
            || t.starts_with("typedef")
            || t.starts_with("enum ")
            || (!t.starts_with("//") && t.contains(" tern_") && t.contains('('))
            || (!t.starts_with("//") && t.contains("*tern_") && t.contains('('))
            || (in_struct && !t.starts_with("//") && (t.ends_with(';') || t.ends_with(',')));
        if !declares
            || t.starts_with("typedef enum tern_status")
            || t == "typedef int32_t tern_status;"
        {
            continue;
        }
        let prev = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        if !prev.starts_with("//") {
            undocumented.push(format!("{}: {t}", i + 1));
        }
    }
    assert!(
        undocumented.is_empty(),
        "declarations without a doc comment:\n{}",
        undocumented.join("\n")
    );
}
