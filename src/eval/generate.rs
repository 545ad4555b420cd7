//! Greedy generation for the generation tasks, and how their prompts are written (plain
//! text or through the model's chat template).

use crate::context::Context;
use crate::error::{Error, Result};
use crate::sampling::{Sampler, SamplerParams};
use crate::tokenizer::{ChatMessage, Tokenizer};

/// How a task's prompt is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prompting {
    /// Plain text, as for base models (and lm-evaluation-harness's default).
    #[default]
    Plain,
    /// Through a chat template, for instruct models: `None` uses the model's own
    /// (`tokenizer.chat_template`), `Some(name)` a format tern knows (`bitnet`, `llama3`...).
    Chat(Option<String>),
}

impl Prompting {
    /// The prompt text for `messages` followed by `assistant_prefix` (text the assistant's
    /// reply starts with), and whether special-token text in it must be parsed as tokens.
    /// `Plain` joins nothing: it is only for callers that build plain prompts themselves.
    pub fn chat_prompt(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        assistant_prefix: &str,
    ) -> Result<String> {
        match self {
            Prompting::Plain => Err(Error::invalid("plain prompting has no chat template")),
            Prompting::Chat(template) => {
                let mut text = tok.apply_chat_template(template.as_deref(), messages, true)?;
                text.push_str(assistant_prefix);
                Ok(text)
            }
        }
    }

    /// Tokenizes a prompt written this way: BOS as the model asks; special tokens written
    /// in the text count as tokens only for chat prompts (the template writes them).
    pub fn tokenize(&self, tok: &Tokenizer, prompt: &str) -> Result<Vec<u32>> {
        tok.tokenize(prompt, true, matches!(self, Prompting::Chat(_)))
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop string appeared (it is not part of the text).
    StopString,
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// The token limit was reached.
    MaxTokens,
    /// The context is full.
    ContextFull,
}

/// Generated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The text, cut before the first stop string.
    pub text: String,
    /// Tokens generated.
    pub n_tokens: usize,
    /// Why it ended.
    pub stop: StopReason,
}

/// Generates greedily (the highest logit, ties to the lowest id) after `prompt`, from an
/// empty cache, until a stop string, an end-of-generation token, `max_tokens` tokens or a
/// full context. The context must be created without `logits_all`.
pub fn greedy(
    ctx: &mut Context,
    tok: &Tokenizer,
    prompt: &[u32],
    max_tokens: usize,
    stops: &[&str],
) -> Result<Generation> {
    if prompt.is_empty() {
        return Err(Error::invalid("the prompt is empty"));
    }
    if prompt.len() >= ctx.n_ctx() {
        return Err(Error::invalid(format!(
            "the prompt has {} tokens and the context holds {}: nothing can be generated \
             (raise -c)",
            prompt.len(),
            ctx.n_ctx()
        )));
    }
    ctx.kv_clear();
    for batch in prompt.chunks(ctx.n_batch()) {
        ctx.eval(batch)?;
    }
    let mut sampler = Sampler::new(SamplerParams::greedy())?;
    let mut stream = tok.stream(false);
    let mut text = String::new();
    let mut n_tokens = 0;
    let stop = loop {
        if n_tokens == max_tokens {
            break StopReason::MaxTokens;
        }
        let logits = ctx
            .last_logits()
            .ok_or_else(|| Error::Internal("no logits after eval".into()))?;
        let token = sampler.sample(logits)?;
        n_tokens += 1;
        if tok.is_eog(token) {
            break StopReason::EndOfGeneration;
        }
        text.push_str(&stream.push(token)?);
        if let Some(cut) = first_stop(&text, stops) {
            text.truncate(cut);
            break StopReason::StopString;
        }
        if ctx.n_past() == ctx.n_ctx() {
            break StopReason::ContextFull;
        }
        ctx.eval(&[token])?;
    };
    if stop != StopReason::StopString {
        text.push_str(&stream.finish());
        if let Some(cut) = first_stop(&text, stops) {
            text.truncate(cut);
        }
    }
    Ok(Generation {
        text,
        n_tokens,
        stop,
    })
}

/// How each task of a generation run is generated: its prompt is tokenized as `prompting`
/// says, then generated greedily up to `max_tokens` tokens or a stop string.
pub(crate) struct GreedySettings<'a> {
    pub prompting: &'a Prompting,
    pub max_tokens: usize,
    pub stops: &'a [&'a str],
}

/// The first `max` items (all of them for `None`).
pub(crate) fn first_tasks<T>(items: &[T], max: Option<usize>) -> &[T] {
    &items[..max.map_or(items.len(), |m| m.min(items.len()))]
}

/// Generates for each of `tasks` in turn, from an empty cache: `prompt` writes the task's
/// prompt text and `done` receives the task and its generation. A generation error names
/// the task as `name` writes it.
pub(crate) fn greedy_each<T>(
    ctx: &mut Context,
    tok: &Tokenizer,
    tasks: &[T],
    settings: &GreedySettings<'_>,
    prompt: impl Fn(&T) -> Result<String>,
    name: impl Fn(&T) -> String,
    mut done: impl FnMut(&T, Generation),
) -> Result<()> {
    for task in tasks {
        let text = prompt(task)?;
        let tokens = settings.prompting.tokenize(tok, &text)?;
        let generation = greedy(ctx, tok, &tokens, settings.max_tokens, settings.stops)
            .map_err(|e| e.context(name(task)))?;
        done(task, generation);
    }
    Ok(())
}

/// The byte position of the earliest stop string in `text`.
pub fn first_stop(text: &str, stops: &[&str]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_tasks_limits() {
        assert_eq!(first_tasks(&[1, 2, 3], None), [1, 2, 3]);
        assert_eq!(first_tasks(&[1, 2, 3], Some(2)), [1, 2]);
        assert_eq!(first_tasks(&[1, 2, 3], Some(9)), [1, 2, 3]);
    }

    #[test]
    fn earliest_stop() {
        assert_eq!(
            first_stop("abc\ndef\nclass", &["\nclass", "\ndef"]),
            Some(3)
        );
        assert_eq!(first_stop("abc", &["x", ""]), None);
    }
}
