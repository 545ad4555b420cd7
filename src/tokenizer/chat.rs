//! Chat templates: turning a list of `{role, content}` messages into the prompt text a
//! model was trained on.
//!
//! Like llama.cpp's `llama_chat_apply_template`, tern does not run Jinja: it recognises the
//! template a model ships (`tokenizer.chat_template`) by telltale substrings, or takes a
//! format by name, and writes the prompt with code. This gives exactly the prompts
//! bitnet.cpp and llama.cpp build for the same model. A template that is not recognised
//! is an error that lists the formats tern knows; the caller can then pick one by name.
//!
//! No BOS token is written: the tokenizer adds it (`add_special`).

use crate::error::{Error, Result};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (other roles are written as given where the format
    /// has a place for a role name).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role` saying `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The prompt formats tern can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// The format bitnet.cpp uses for the BitNet b1.58 2B4T GGUF (whose template contains
    /// `BITNET`): `System: ...`, `User: ...<|eot_id|>Assistant: ...`.
    Bitnet,
    /// The Hugging Face template of BitNet b1.58 2B4T: `Role: content<|eot_id|>` per
    /// message, then `Assistant: `.
    BitnetHf,
    /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3,
    /// Falcon 3: `<|role|>\ncontent\n`, then `<|assistant|>\n`.
    Falcon3,
    /// ChatML: `<|im_start|>role\ncontent<|im_end|>\n`.
    ChatMl,
    /// Phi 3: `<|role|>\ncontent<|end|>\n`.
    Phi3,
}

const NAMES: &[(&str, ChatFormat)] = &[
    ("bitnet", ChatFormat::Bitnet),
    ("bitnet-hf", ChatFormat::BitnetHf),
    ("llama3", ChatFormat::Llama3),
    ("falcon3", ChatFormat::Falcon3),
    ("chatml", ChatFormat::ChatMl),
    ("phi3", ChatFormat::Phi3),
];

impl ChatFormat {
    /// The format's name, as accepted by [`ChatFormat::from_name`].
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The format called `name` (`bitnet`, `bitnet-hf`, `llama3`, `falcon3`, `chatml`,
    /// `phi3`).
    pub fn from_name(name: &str) -> Option<ChatFormat> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Recognises a Jinja template by its telltale substrings (llama.cpp's heuristics for
    /// the families tern supports).
    pub fn detect(template: &str) -> Option<ChatFormat> {
        let has = |s: &str| template.contains(s);
        if has("<|im_start|>") {
            Some(ChatFormat::ChatMl)
        } else if has("<|assistant|>") && has("<|end|>") {
            Some(ChatFormat::Phi3)
        } else if has("<|assistant|>") && has("<|user|>") && !has("[gMASK]") {
            Some(ChatFormat::Falcon3)
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            Some(ChatFormat::Llama3)
        } else if has("BITNET") {
            Some(ChatFormat::Bitnet)
        } else if has("<|eot_id|>") && (has("| capitalize") || has("|capitalize")) {
            Some(ChatFormat::BitnetHf)
        } else {
            None
        }
    }

    /// A name or a Jinja template: the name if it is one, else detection.
    pub fn resolve(name_or_template: &str) -> Result<ChatFormat> {
        ChatFormat::from_name(name_or_template)
            .or_else(|| ChatFormat::detect(name_or_template))
            .ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                Error::unsupported(format!(
                    "the chat template is not one tern recognises; pass one of these format \
                     names instead: {}",
                    names.join(", ")
                ))
            })
    }

    /// Writes the prompt for `messages`; with `add_generation_prompt` it ends where the
    /// assistant's reply begins.
    pub fn apply(self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        match self {
            ChatFormat::Bitnet => {
                for m in messages {
                    match m.role.as_str() {
                        "system" => {
                            out.push_str("System: ");
                            out.push_str(&m.content);
                        }
                        "user" => {
                            out.push_str("User: ");
                            out.push_str(&m.content);
                            out.push_str("<|eot_id|>Assistant: ");
                        }
                        _ => out.push_str(&m.content),
                    }
                }
            }
            ChatFormat::BitnetHf => {
                for m in messages {
                    out.push_str(&capitalize(&m.role));
                    out.push_str(": ");
                    out.push_str(trim(&m.content));
                    out.push_str("<|eot_id|>");
                }
                if add_generation_prompt {
                    out.push_str("Assistant: ");
                }
            }
            ChatFormat::Llama3 => {
                for m in messages {
                    out.push_str("<|start_header_id|>");
                    out.push_str(&m.role);
                    out.push_str("<|end_header_id|>\n\n");
                    out.push_str(trim(&m.content));
                    out.push_str("<|eot_id|>");
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
            ChatFormat::Falcon3 => {
                for m in messages {
                    out.push_str("<|");
                    out.push_str(&m.role);
                    out.push_str("|>\n");
                    out.push_str(&m.content);
                    out.push('\n');
                }
                if add_generation_prompt {
                    out.push_str("<|assistant|>\n");
                }
            }
            ChatFormat::ChatMl => {
                for m in messages {
                    out.push_str("<|im_start|>");
                    out.push_str(&m.role);
                    out.push('\n');
                    out.push_str(&m.content);
                    out.push_str("<|im_end|>\n");
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            ChatFormat::Phi3 => {
                for m in messages {
                    out.push_str("<|");
                    out.push_str(&m.role);
                    out.push_str("|>\n");
                    out.push_str(&m.content);
                    out.push_str("<|end|>\n");
                }
                if add_generation_prompt {
                    out.push_str("<|assistant|>\n");
                }
            }
        }
        out
    }
}

/// Trims ASCII whitespace (C `isspace`) from both ends, as llama.cpp's templates do.
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
}

/// Jinja's `capitalize`: first character upper case, the rest lower case.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", " Hi "),
            ChatMessage::new("assistant", "Hello."),
            ChatMessage::new("user", "Why?"),
        ]
    }

    #[test]
    fn llama3_prompt() {
        assert_eq!(
            ChatFormat::Llama3.apply(&chat()[1..2], true),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn bitnet_prompts() {
        assert_eq!(
            ChatFormat::Bitnet.apply(&chat(), true),
            "System: Be brief.User:  Hi <|eot_id|>Assistant: Hello.User: Why?<|eot_id|>Assistant: "
        );
        assert_eq!(
            ChatFormat::BitnetHf.apply(&chat(), true),
            "System: Be brief.<|eot_id|>User: Hi<|eot_id|>Assistant: Hello.<|eot_id|>\
             User: Why?<|eot_id|>Assistant: "
        );
    }

    #[test]
    fn falcon3_prompt() {
        assert_eq!(
            ChatFormat::Falcon3.apply(&chat()[..2], true),
            "<|system|>\nBe brief.\n<|user|>\n Hi \n<|assistant|>\n"
        );
        assert_eq!(
            ChatFormat::Falcon3.apply(&chat()[..1], false),
            "<|system|>\nBe brief.\n"
        );
    }

    #[test]
    fn detection_and_names() {
        let gguf_bitnet = "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}\
            {% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' \
            + eos_token }}{% endif %}{% endfor %}";
        assert_eq!(ChatFormat::detect(gguf_bitnet), Some(ChatFormat::Bitnet));
        let hf_bitnet = "{% for message in messages %}{{ message['role'] | capitalize + ': ' + \
            message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
        assert_eq!(ChatFormat::detect(hf_bitnet), Some(ChatFormat::BitnetHf));
        assert_eq!(
            ChatFormat::detect("{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}"),
            Some(ChatFormat::Llama3)
        );
        assert_eq!(
            ChatFormat::detect("{{ '<|user|>\\n' }}{{ '<|assistant|>\\n' }}"),
            Some(ChatFormat::Falcon3)
        );
        assert_eq!(ChatFormat::resolve("chatml").unwrap(), ChatFormat::ChatMl);
        let e = ChatFormat::resolve("{{ unknown }}").unwrap_err();
        assert!(e.to_string().contains("llama3"), "{e}");
        for (n, f) in NAMES {
            assert_eq!(f.name(), *n);
        }
    }

    #[test]
    fn capitalize_and_trim() {
        assert_eq!(capitalize("aSSISTANT"), "Assistant");
        assert_eq!(capitalize(""), "");
        assert_eq!(trim("\t x \n"), "x");
    }
}
