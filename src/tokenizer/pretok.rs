//! The BPE pre-tokenizers: which split regexes a `tokenizer.ggml.pre` value selects, and
//! the splitting itself.
//!
//! A pre-tokenizer is a list of regexes applied one after another, the way llama.cpp
//! applies them: each regex splits every piece produced so far into the matches and the
//! text between them ("isolated" splitting: nothing is dropped). The regexes are the ones
//! llama.cpp uses for each `pre` value (its "adapted" forms: case-insensitive contractions
//! spelled out as `'[sS]`, which matches llama.cpp's own tokenizer rather than Python's
//! full Unicode case folding). They run on tokenizers' fancy-regex engine.
//!
//! Besides the regexes, a `pre` value sets a few flags that llama.cpp ties to it:
//! whether merges are skipped for pre-tokens that already are vocabulary entries
//! (`ignore_merges`), whether detokenized text gets its spaces cleaned up, and whether a
//! BOS token is added by default.

use tokenizers::utils::SysRegex;

use crate::error::{Error, Result};

/// GPT-2's split pattern.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's split pattern (digits in groups of up to three).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split pattern (single digits).
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 3.5's split pattern (marks join letters).
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Bloom / Poro / GPT-3 Finnish: split at whitespace and a few punctuation marks.
const BLOOM: &str = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+";
/// Tekken (Mistral NeMo): upper-case runs followed by lower-case runs.
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-4o / Llama 4: Tekken's word rule plus contractions and digit triples.
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// DeepSeek LLM's letter classes (Latin, Greek, Cyrillic, ... spelled out as ranges).
/// (Written with escapes: several of these characters change under Unicode normalization.)
const DEEPSEEK_LLM_LETTERS: &str = concat!(
    "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-",
    "\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}",
    "\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-",
    "\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}",
    "\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-",
    "\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}",
    "\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}",
    "\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}",
    "\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}",
    "\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}",
    "\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}",
    "\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}",
    "\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-",
    "\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}",
    "\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}",
    "\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}",
    "\u{1E900}-\u{1E943}]+",
);
/// CJK ideographs and Hangul, as DeepSeek groups them.
const DEEPSEEK_CJK: &str = "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+";

/// What a `tokenizer.ggml.pre` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTokenizerSpec {
    /// The canonical name of the pre-tokenizer type (e.g. `llama3` for `llama-bpe`).
    pub kind: &'static str,
    /// The split regexes, applied in order.
    pub regexes: &'static [&'static str],
    /// A pre-token that is already a vocabulary entry becomes that token, unmerged.
    pub ignore_merges: bool,
    /// Detokenized text gets llama.cpp's space clean-up (`" ,"` -> `","`, ...).
    pub clean_spaces: bool,
    /// A BOS token is added by default (before `tokenizer.ggml.add_bos_token` is read).
    pub add_bos: bool,
    /// The default BOS id is dropped (ChatGLM has none).
    pub no_bos: bool,
}

impl PreTokenizerSpec {
    const fn new(kind: &'static str, regexes: &'static [&'static str]) -> Self {
        PreTokenizerSpec {
            kind,
            regexes,
            ignore_merges: false,
            clean_spaces: true,
            add_bos: false,
            no_bos: false,
        }
    }
    const fn ignore_merges(mut self) -> Self {
        self.ignore_merges = true;
        self
    }
    const fn keep_spaces(mut self) -> Self {
        self.clean_spaces = false;
        self
    }
    const fn add_bos(mut self) -> Self {
        self.add_bos = true;
        self
    }
    const fn no_bos(mut self) -> Self {
        self.no_bos = true;
        self
    }
}

const DEFAULT: PreTokenizerSpec = PreTokenizerSpec::new(
    "default",
    &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
);
const LLAMA3_SPEC: PreTokenizerSpec = PreTokenizerSpec::new("llama3", &[LLAMA3])
    .ignore_merges()
    .add_bos();
const GPT2_SPEC: PreTokenizerSpec = PreTokenizerSpec::new("gpt2", &[GPT2]);
const STARCODER_SPEC: PreTokenizerSpec = PreTokenizerSpec::new("starcoder", &[r"\p{N}", GPT2]);
const QWEN2_SPEC: PreTokenizerSpec = PreTokenizerSpec::new("qwen2", &[QWEN2]);
const BLOOM_SPEC: PreTokenizerSpec = PreTokenizerSpec::new("bloom", &[BLOOM]);

/// Every `pre` value this build understands, with what it selects. Aliases that llama.cpp
/// maps to the same type share a row's regexes; flags follow llama.cpp per name.
const TABLE: &[(&str, PreTokenizerSpec)] = &[
    ("default", DEFAULT),
    ("llama3", LLAMA3_SPEC),
    ("llama-v3", LLAMA3_SPEC),
    ("llama-bpe", LLAMA3_SPEC),
    ("falcon3", LLAMA3_SPEC),
    ("falcon-h1", LLAMA3_SPEC),
    ("pixtral", LLAMA3_SPEC),
    ("midm-2.0", LLAMA3_SPEC),
    ("lfm2", LLAMA3_SPEC),
    ("dbrx", PreTokenizerSpec::new("dbrx", &[LLAMA3])),
    ("smaug-bpe", PreTokenizerSpec::new("smaug", &[LLAMA3])),
    (
        "chatglm-bpe",
        PreTokenizerSpec::new("chatglm4", &[LLAMA3]).no_bos(),
    ),
    (
        "glm4",
        PreTokenizerSpec::new("chatglm4", &[LLAMA3]).no_bos(),
    ),
    (
        "deepseek-llm",
        PreTokenizerSpec::new(
            "deepseek-llm",
            &[
                "[\r\n]",
                DEEPSEEK_LLM_LETTERS,
                "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
                r"\s+$",
                DEEPSEEK_CJK,
                r"\p{N}+",
            ],
        )
        .keep_spaces(),
    ),
    (
        "deepseek-coder",
        PreTokenizerSpec::new(
            "deepseek-coder",
            &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"],
        )
        .keep_spaces(),
    ),
    (
        "falcon",
        PreTokenizerSpec::new(
            "falcon",
            &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
        ),
    ),
    ("mpt", PreTokenizerSpec::new("mpt", &[GPT2])),
    ("gpt-2", GPT2_SPEC),
    ("phi-2", GPT2_SPEC),
    ("jina-es", GPT2_SPEC),
    ("jina-de", GPT2_SPEC),
    ("jina-v2-es", GPT2_SPEC),
    ("jina-v2-de", GPT2_SPEC),
    ("gigachat", GPT2_SPEC),
    ("a.x-4.0", GPT2_SPEC),
    ("mellum", GPT2_SPEC),
    ("exaone4", GPT2_SPEC),
    ("olmo", PreTokenizerSpec::new("olmo", &[GPT2])),
    ("jais", PreTokenizerSpec::new("jais", &[GPT2])),
    (
        "trillion",
        PreTokenizerSpec::new("trillion", &[GPT2]).keep_spaces(),
    ),
    ("starcoder", STARCODER_SPEC),
    ("refact", PreTokenizerSpec::new("refact", &[r"\p{N}", GPT2])),
    (
        "command-r",
        PreTokenizerSpec::new("command-r", &[r"\p{N}", GPT2]).keep_spaces(),
    ),
    (
        "smollm",
        PreTokenizerSpec::new("smollm", &[r"\p{N}", GPT2]).keep_spaces(),
    ),
    (
        "codeshell",
        PreTokenizerSpec::new("codeshell", &[r"\p{N}", GPT2]),
    ),
    ("exaone", PreTokenizerSpec::new("exaone", &[r"\p{N}", GPT2])),
    (
        "minerva-7b",
        PreTokenizerSpec::new("minerva", &[r"\p{N}", GPT2]),
    ),
    ("qwen2", QWEN2_SPEC.keep_spaces()),
    ("deepseek-r1-qwen", QWEN2_SPEC.keep_spaces()),
    ("megrez", QWEN2_SPEC),
    ("stablelm2", PreTokenizerSpec::new("stablelm2", &[QWEN2])),
    (
        "qwen35",
        PreTokenizerSpec::new("qwen35", &[QWEN35]).keep_spaces(),
    ),
    ("poro-chat", BLOOM_SPEC.keep_spaces()),
    ("bloom", BLOOM_SPEC),
    ("gpt3-finnish", BLOOM_SPEC),
    (
        "viking",
        PreTokenizerSpec::new("viking", &[BLOOM, r"\p{N}"]).keep_spaces(),
    ),
    (
        "tekken",
        PreTokenizerSpec::new("tekken", &[TEKKEN])
            .ignore_merges()
            .keep_spaces()
            .add_bos(),
    ),
    (
        "gpt-4o",
        PreTokenizerSpec::new("gpt-4o", &[GPT4O]).keep_spaces(),
    ),
    (
        "llama4",
        PreTokenizerSpec::new("gpt-4o", &[GPT4O]).keep_spaces(),
    ),
];

/// The pre-tokenizer for a `tokenizer.ggml.pre` value; `None` (key absent) means
/// `default`, as in llama.cpp. An unknown value is an error that names it.
pub fn lookup(pre: Option<&str>) -> Result<PreTokenizerSpec> {
    let name = pre.unwrap_or("default");
    TABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, spec)| spec.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
            Error::unsupported(format!(
                "tokenizer.ggml.pre = '{name}' is not a pre-tokenizer tern knows (known: {})",
                known.join(", ")
            ))
        })
}

/// A compiled pre-tokenizer: splits text into the pieces BPE runs on.
pub struct PreTokenizer {
    regexes: Vec<SysRegex>,
}

impl std::fmt::Debug for PreTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreTokenizer({} regexes)", self.regexes.len())
    }
}

impl PreTokenizer {
    /// Compiles the regexes of `spec`.
    pub fn new(spec: &PreTokenizerSpec) -> Result<PreTokenizer> {
        let regexes = spec
            .regexes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                SysRegex::new(r).map_err(|e| {
                    Error::Internal(format!(
                        "pre-tokenizer '{}': regex {i} does not compile: {e:?}",
                        spec.kind
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PreTokenizer { regexes })
    }

    /// Splits `text` into pieces, as byte ranges of `text` in order. Every byte of the text
    /// belongs to exactly one piece; no piece is empty.
    pub fn split(&self, text: &str) -> Vec<(usize, usize)> {
        let mut pieces = if text.is_empty() {
            Vec::new()
        } else {
            vec![(0, text.len())]
        };
        for re in &self.regexes {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for &(start, end) in &pieces {
                let part = &text[start..end];
                let mut prev = 0;
                for (m_start, m_end) in re.find_iter(part) {
                    if m_start > prev {
                        next.push((start + prev, start + m_start));
                    }
                    if m_end > m_start {
                        next.push((start + m_start, start + m_end));
                    }
                    prev = prev.max(m_end);
                }
                if prev < part.len() {
                    next.push((start + prev, end));
                }
            }
            pieces = next;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::new(&lookup(Some(pre)).unwrap()).unwrap();
        p.split(text)
            .into_iter()
            .map(|(a, b)| text[a..b].to_string())
            .collect()
    }

    #[test]
    fn every_table_entry_compiles() {
        for (name, spec) in TABLE {
            PreTokenizer::new(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn llama3_splits() {
        assert_eq!(
            split("llama-bpe", "Hello world's 12345\n\n  x"),
            vec!["Hello", " world", "'s", " ", "123", "45", "\n\n", " ", " x"]
        );
        assert_eq!(split("llama3", "I'VE"), vec!["I", "'VE"]);
    }

    #[test]
    fn gpt2_splits_and_keeps_unmatched_text() {
        assert_eq!(split("gpt-2", "\ta b  c"), vec!["\t", "a", " b", " ", " c"]);
    }

    #[test]
    fn missing_pre_is_default_and_unknown_pre_is_an_error() {
        assert_eq!(lookup(None).unwrap().kind, "default");
        let e = lookup(Some("no-such-pre")).unwrap_err();
        assert!(e.to_string().contains("no-such-pre"), "{e}");
        assert!(lookup(Some("falcon3")).unwrap().ignore_merges);
    }

    #[test]
    fn empty_text_has_no_pieces() {
        assert!(split("default", "").is_empty());
    }
}
