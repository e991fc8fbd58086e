//! The agent loop: a conversation's history turned into a reply, calling
//! tools on the way.
//!
//! A turn: append the user's message; generate (tools offered through the
//! chat template, a tool call constrained by a grammar); if the model calls
//! a tool, run it through [`Toolbox::call`] (the one decision point) on a
//! blocking thread, append the call and its result, and generate again;
//! within a bound on tool steps and on the turn's time. Memory recall,
//! provenance and approvals join here as they are built. The agent knows
//! nothing of the channel a message came from, nor of llama.cpp.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::inference::{
    ChatMessage, Engine, GenerateOptions, GenerateRequest, Generation, GenerationEvent,
    GenerationStats, InferenceError, Role, TOOL_CALL_CLOSE, TOOL_CALL_OPEN, TemplateToolCall,
};
use crate::tools::{ToolCall, Toolbox};

static NEXT_CONVERSATION: AtomicU64 = AtomicU64::new(1);

/// One conversation: its history and its KV cache in the engine.
pub struct Conversation {
    id: u64,
    system_prompt: String,
    messages: Vec<ChatMessage>,
}

impl Conversation {
    pub fn new(system_prompt: impl Into<String>) -> Self {
        Self {
            id: NEXT_CONVERSATION.fetch_add(1, Ordering::Relaxed),
            system_prompt: system_prompt.into(),
            messages: Vec::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Adds a message to the history without generating (e.g. history
    /// restored from storage, or a benchmark's fixed history).
    pub fn push(&mut self, message: ChatMessage) {
        self.messages.push(message);
    }

    fn request(&self, options: GenerateOptions, tools: Option<&ToolOffer>) -> GenerateRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        let system = match tools {
            Some(_) if self.system_prompt.is_empty() => TOOL_GUIDANCE.to_string(),
            Some(_) => format!("{}\n\n{TOOL_GUIDANCE}", self.system_prompt),
            None => self.system_prompt.clone(),
        };
        if !system.is_empty() {
            messages.push(ChatMessage::new(Role::System, system));
        }
        messages.extend(self.messages.iter().cloned());
        GenerateRequest {
            conversation: self.id,
            messages,
            tools: tools.map(|t| t.list.clone()),
            grammar: tools.map(|t| t.grammar.clone()),
            options,
        }
    }

    /// Starts the reply to `user_text`, without tools. Stream the returned
    /// generation, then give the full text back with [`Conversation::finish_turn`].
    pub fn begin_turn(&mut self, engine: &Engine, user_text: &str) -> Generation {
        self.begin_turn_with(engine, user_text, GenerateOptions::default())
    }

    pub fn begin_turn_with(
        &mut self,
        engine: &Engine,
        user_text: &str,
        options: GenerateOptions,
    ) -> Generation {
        self.messages.push(ChatMessage::new(Role::User, user_text));
        engine.generate(self.request(options, None))
    }

    /// Records the assistant's reply (also a partial one, after a cancel, so
    /// the history matches what the owner saw).
    pub fn finish_turn(&mut self, reply: &str) {
        if !reply.is_empty() {
            self.messages
                .push(ChatMessage::new(Role::Assistant, reply.trim_end()));
        }
    }

    /// One whole turn without tools, for scripted use.
    pub async fn turn(
        &mut self,
        engine: &Engine,
        user_text: &str,
    ) -> Result<(String, GenerationStats), InferenceError> {
        let result = self.begin_turn(engine, user_text).collect().await;
        if let Ok((text, _)) = &result {
            self.finish_turn(text);
        }
        result
    }
}

/// Added to the system prompt when tools are offered: small models tend to
/// explain how to do a thing instead of doing it.
const TOOL_GUIDANCE: &str = "You can act on the owner's workspace with the tools you are given. \
When the owner asks you to do something (create, read, list, move or delete files; run a \
command; tell the time), do it by calling the tool, instead of explaining how to do it. \
After a tool result, answer in plain words.";

/// The tools as offered to the model: the template list and its grammar.
struct ToolOffer {
    list: Value,
    grammar: String,
}

/// What a turn reports while it runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum TurnEvent {
    /// A piece of the reply to show.
    Token(String),
    /// The model called a tool.
    ToolCall(ToolCall),
    /// The tool's result (or why it did not run).
    ToolResult {
        name: String,
        ok: bool,
        content: String,
    },
}

/// How a turn ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TurnOutcome {
    pub reply: String,
    pub tool_calls: usize,
    /// The last generation's figures.
    pub stats: Option<GenerationStats>,
    /// Stopped by the caller.
    pub cancelled: bool,
    /// Stopped by the bound on tool steps or on time.
    pub limited: Option<String>,
}

/// The agent: the engine, the tools, and the bounds of a turn.
pub struct Agent {
    pub engine: Engine,
    toolbox: Option<Arc<Toolbox>>,
    offer: Option<ToolOffer>,
    pub max_tool_steps: u32,
    pub turn_timeout: Duration,
}

impl Agent {
    /// An agent; with a toolbox its tools are offered to the model.
    pub fn new(
        engine: Engine,
        toolbox: Option<Toolbox>,
        max_tool_steps: u32,
        turn_timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let offer = match &toolbox {
            Some(tb) => {
                let list = tb.template_tools();
                let grammar = crate::inference::tool_call_grammar(&list)?;
                tracing::trace!(%grammar, "tool-call grammar");
                Some(ToolOffer { list, grammar })
            }
            None => None,
        };
        Ok(Self {
            engine,
            toolbox: toolbox.map(Arc::new),
            offer,
            max_tool_steps,
            turn_timeout,
        })
    }

    /// Runs one turn: the user's message, tool calls, the reply.
    /// `cancel` stops it (the current generation ends at its next token).
    pub async fn turn(
        &self,
        conv: &mut Conversation,
        user_text: &str,
        mut on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        let started = Instant::now();
        conv.messages.push(ChatMessage::new(Role::User, user_text));
        let mut tool_calls = 0usize;
        loop {
            let mut generation = self.engine.generate_with_cancel(
                conv.request(GenerateOptions::default(), self.offer.as_ref()),
                cancel.clone(),
            );
            let mut text = String::new();
            let mut shown = 0usize;
            let stats = loop {
                let remaining = self.turn_timeout.saturating_sub(started.elapsed());
                match tokio::time::timeout(remaining, generation.events.recv()).await {
                    Err(_) => {
                        generation.cancel();
                        conv.finish_turn(&text);
                        return Ok(TurnOutcome {
                            reply: text,
                            tool_calls,
                            stats: None,
                            cancelled: false,
                            limited: Some(format!(
                                "the turn took longer than {} s",
                                self.turn_timeout.as_secs()
                            )),
                        });
                    }
                    Ok(Some(GenerationEvent::Token(t))) => {
                        text.push_str(&t);
                        // Show the reply, but not a tool call being written.
                        let visible = visible_len(&text);
                        if visible > shown {
                            on_event(TurnEvent::Token(text[shown..visible].to_string()));
                            shown = visible;
                        }
                    }
                    Ok(Some(GenerationEvent::Done(stats))) => break stats,
                    Ok(Some(GenerationEvent::Failed(e))) => return Err(e),
                    Ok(None) => return Err(InferenceError::EngineStopped),
                }
            };
            tracing::debug!(%text, ?stats.finish, "model output");
            let cancelled = stats.finish == crate::inference::FinishReason::Cancelled;
            let call = match (&self.toolbox, cancelled) {
                (Some(_), false) => parse_tool_call(&text),
                _ => None,
            };
            let Some((before, call)) = call else {
                conv.finish_turn(&text);
                return Ok(TurnOutcome {
                    reply: text,
                    tool_calls,
                    stats: Some(stats),
                    cancelled,
                    limited: None,
                });
            };
            if tool_calls as u32 >= self.max_tool_steps {
                conv.finish_turn(before.trim());
                return Ok(TurnOutcome {
                    reply: before,
                    tool_calls,
                    stats: Some(stats),
                    cancelled: false,
                    limited: Some(format!(
                        "stopped after {} tool calls in one turn",
                        self.max_tool_steps
                    )),
                });
            }
            // Small models tend to repeat a call whose result they already
            // have; the repeat is not run again, and the model is told so.
            let repeated = conv.messages.iter().any(|m| {
                m.tool_calls
                    .iter()
                    .any(|c| c.name == call.name && c.arguments == call.arguments)
            });
            tool_calls += 1;
            on_event(TurnEvent::ToolCall(call.clone()));
            conv.messages.push(ChatMessage::tool_call(
                before.trim(),
                TemplateToolCall {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            ));
            let (ok, content) = if repeated {
                (
                    false,
                    "This exact call was already made in this conversation; its result is above. \
                     Use it and answer the user now, in plain words."
                        .to_string(),
                )
            } else {
                let toolbox = self.toolbox.clone().expect("checked above");
                let for_tool = call.clone();
                let result = tokio::task::spawn_blocking(move || toolbox.call(&for_tool))
                    .await
                    .map_err(|_| InferenceError::EngineStopped)?;
                match result {
                    Ok(out) => (out.ok, out.content),
                    Err(e) => (false, format!("error: {e}")),
                }
            };
            tracing::debug!(tool = %call.name, ok, %content, "tool result");
            on_event(TurnEvent::ToolResult {
                name: call.name.clone(),
                ok,
                content: content.clone(),
            });
            conv.messages.push(ChatMessage::new(Role::Tool, content));
        }
    }
}

/// How much of `text` is reply rather than (the start of) a tool call.
fn visible_len(text: &str) -> usize {
    if let Some(i) = text.find(TOOL_CALL_OPEN) {
        return i;
    }
    // Hold back a tail that could be the beginning of the tag.
    for k in (1..TOOL_CALL_OPEN.len()).rev() {
        if text.len() >= k
            && text.is_char_boundary(text.len() - k)
            && TOOL_CALL_OPEN.starts_with(&text[text.len() - k..])
        {
            return text.len() - k;
        }
    }
    text.len()
}

/// Finds a tool call in the model's output: tagged (`<tool_call>{...}`),
/// fenced (```json {...} ```), or a bare JSON object with `name` and
/// `arguments`. Returns the text before it and the call.
pub fn parse_tool_call(text: &str) -> Option<(String, ToolCall)> {
    let (before, json) = if let Some(i) = text.find(TOOL_CALL_OPEN) {
        let rest = &text[i + TOOL_CALL_OPEN.len()..];
        let end = rest.find(TOOL_CALL_CLOSE).unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else if let Some(i) = text.find("```json") {
        let rest = &text[i + 7..];
        let end = rest.find("```").unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else {
        let t = text.trim();
        if !t.starts_with('{') {
            return None;
        }
        ("", t)
    };
    let v: Value = serde_json::from_str(json).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
        None => Value::Object(Default::default()),
    };
    Some((before.to_string(), ToolCall { name, arguments }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_found_in_every_form() {
        let (b, c) = parse_tool_call(
            "Let me look.<tool_call>\n{\"name\": \"files\", \"arguments\": {\"op\": \"list\"}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(b, "Let me look.");
        assert_eq!(c.name, "files");
        assert_eq!(c.arguments["op"], "list");
        let (_, c) =
            parse_tool_call("```json\n{\"name\": \"time\", \"arguments\": {}}\n```").unwrap();
        assert_eq!(c.name, "time");
        let (_, c) = parse_tool_call(
            "{\"name\": \"shell\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}",
        )
        .unwrap();
        assert_eq!(c.arguments["command"], "ls");
        assert!(parse_tool_call("Paris is the capital of France.").is_none());
        assert!(parse_tool_call("{not json").is_none());
    }

    #[test]
    fn a_tool_call_being_written_is_not_shown() {
        assert_eq!(visible_len("Hello <tool"), 6);
        assert_eq!(visible_len("Hello <tool_call>{\"na"), 6);
        assert_eq!(visible_len("a < b"), 5);
    }
}
