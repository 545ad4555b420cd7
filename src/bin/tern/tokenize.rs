//! `tern tokenize -m FILE TEXT`: the token ids of a text under a model's tokenizer.

use serde_json::json;
use tern::model::{LoadParams, Model};
use tern::{Error, Result};

use crate::args::Args;

const HELP: &str = "\
usage: tern tokenize -m FILE [--no-bos] [--parse-special] [--json] [--pieces] [--] TEXT
       tern tokenize -m FILE [options] -f TEXT_FILE

  -m, --model FILE   the GGUF file whose tokenizer to use (only its metadata is read)
  -f, --file FILE    read the text from FILE (\"-\" for standard input) instead
  --no-bos           add no special tokens (no BOS/EOS, whatever the model says)
  --parse-special    treat control tokens written in TEXT (e.g. <|eot_id|>) as tokens
  --json             print a JSON array of ids (of {id, piece} objects with --pieces)
  --pieces           print each id with its piece, one per line
  --                 end of options: everything after it is TEXT";

pub fn run(mut args: Args) -> Result<()> {
    if args.flag(&["-h", "--help"]) {
        println!("{HELP}");
        return Ok(());
    }
    let path = args
        .value(&["-m", "--model"])?
        .ok_or_else(|| Error::invalid(format!("-m FILE is required\n\n{HELP}")))?;
    let no_bos = args.flag(&["--no-bos"]);
    let parse_special = args.flag(&["--parse-special"]);
    let as_json = args.flag(&["--json"]);
    let pieces = args.flag(&["--pieces"]);
    let text_file = args.value(&["-f", "--file"])?;
    let pos = args.positionals()?;
    let text: Vec<u8> = match (text_file, pos.as_slice()) {
        (None, [text]) => text.clone().into_bytes(),
        (Some(f), []) => read_text(&f)?,
        (None, _) => {
            return Err(Error::invalid(format!(
                "expected one TEXT argument (quote it), found {}\n\n{HELP}",
                pos.len()
            )))
        }
        (Some(_), _) => {
            return Err(Error::invalid(format!(
                "give the text either as TEXT or with -f, not both\n\n{HELP}"
            )))
        }
    };

    let model = Model::load(
        &path,
        &LoadParams {
            vocab_only: true,
            use_mmap: true,
        },
    )?;
    let tok = model.tokenizer().ok_or_else(|| {
        Error::NotFound(format!(
            "{path}: the file has no tokenizer (tokenizer.ggml.model is absent)"
        ))
    })?;
    let ids = tok.tokenize_bytes(&text, !no_bos, parse_special)?;

    let piece = |id: u32| -> Result<String> {
        Ok(String::from_utf8_lossy(tok.token_to_piece(id, true)?).into_owned())
    };
    match (as_json, pieces) {
        (true, false) => println!("{}", json!(ids)),
        (true, true) => {
            let items = ids
                .iter()
                .map(|&id| Ok(json!({ "id": id, "piece": piece(id)? })))
                .collect::<Result<Vec<_>>>()?;
            println!("{}", json!(items));
        }
        (false, true) => {
            for &id in &ids {
                println!("{id:>7} {:?}", piece(id)?);
            }
        }
        (false, false) => {
            let line: Vec<String> = ids.iter().map(u32::to_string).collect();
            println!("{}", line.join(" "));
        }
    }
    Ok(())
}

/// The bytes of `path`, or of standard input for "-".
fn read_text(path: &str) -> Result<Vec<u8>> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Error::Io(format!("standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))
}
