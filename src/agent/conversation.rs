//! A conversation: its history, each message with the origin it came
//! from (untrusted text reaches the model fenced and labelled, and taints
//! the conversation), the facts its person pinned, and the prompt built
//! from all that for the engine.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::inference::{
    ChatMessage, Engine, GenerateOptions, GenerateRequest, Generation, GenerationStats,
    InferenceError, Role,
};
use crate::vocab::{ConversationKey, Origin, Principal, fence};

static NEXT_CONVERSATION: AtomicU64 = AtomicU64::new(1);

/// One conversation: its history (each message with its origin) and its
/// KV cache in the engine.
pub struct Conversation {
    id: u64,
    system_prompt: String,
    pub(super) messages: Vec<ChatMessage>,
    pub(super) origins: Vec<Origin>,
    /// Who the next turn is for; `None`: the owner at the box.
    pub principal: Option<Principal>,
    /// The conversation's name in approvals and memory.
    pub key: ConversationKey,
    /// Where its approvals may be decided (a room ID, or "local").
    pub place: String,
    /// The first untrusted source that entered this conversation; it
    /// stays tainted until a new conversation starts.
    pub taint: Option<String>,
    /// Facts the principal pinned: in the system prompt, so context
    /// trimming never drops them.
    pub(super) pinned: Vec<String>,
    /// Memories already recalled into this conversation.
    pub(super) recalled: std::collections::HashSet<crate::memory::Key>,
    /// Effects granted to the scheduled task this conversation runs
    /// ([`CallContext::granted`]).
    pub grants: Vec<crate::vocab::Effect>,
    /// The tools offered so far ([`super::route`]): once offered, a tool
    /// stays offered for the rest of the conversation, so its prompt (and
    /// KV cache) does not change at every message.
    pub(super) offered: Vec<String>,
    /// A call that needs the owner's approval does not hold the turn: the
    /// turn ends saying so, the conversation goes on, and the call runs
    /// when the owner approves it ([`super::Op::Decided`]). Off: the
    /// turn waits for the decision (a scheduled task, which no one is
    /// talking to).
    pub defer_approvals: bool,
    /// Messages kept in memory whose turn a restart cut short: answered
    /// again, they are not kept twice ([`super::Agent::restore`]).
    pub(super) unanswered: Vec<String>,
}

impl Conversation {
    pub fn new(system_prompt: impl Into<String>) -> Self {
        let id = NEXT_CONVERSATION.fetch_add(1, Ordering::Relaxed);
        Self {
            id,
            system_prompt: system_prompt.into(),
            messages: Vec::new(),
            origins: Vec::new(),
            principal: None,
            key: ConversationKey::local(id),
            place: "local".into(),
            taint: None,
            pinned: Vec::new(),
            recalled: Default::default(),
            grants: Vec::new(),
            offered: Vec::new(),
            defer_approvals: false,
            unanswered: Vec::new(),
        }
    }

    /// Adds what memory recalled for the next message: Hermit's own
    /// composition (untrusted memories are fenced inside it, and taint the
    /// conversation).
    pub(super) fn push_recall(&mut self, recall: crate::memory::Recall) {
        if recall.text.is_empty() {
            return;
        }
        if self.taint.is_none() {
            self.taint = recall.taint;
        }
        self.recalled.extend(recall.keys);
        self.messages
            .push(ChatMessage::new(Role::User, recall.text));
        self.origins.push(Origin::Assistant);
    }

    /// The untrusted source in this conversation for a turn of
    /// `principal` (another person's words count too), if any.
    pub fn taint_for(&self, principal: &str, owner: &str) -> Option<String> {
        if let Some(t) = &self.taint {
            return Some(t.clone());
        }
        self.origins
            .iter()
            .find(|o| !o.trusted_for(principal, owner))
            .map(|o| o.label())
    }

    /// Adds a message with its origin; untrusted origins other than
    /// people's words taint the conversation.
    pub fn push_from(&mut self, message: ChatMessage, origin: Origin) {
        if self.taint.is_none() && !matches!(origin, Origin::Typed(_) | Origin::Assistant) {
            self.taint = Some(origin.label());
        }
        self.messages.push(message);
        self.origins.push(origin);
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Adds a message to the history without generating (e.g. a
    /// benchmark's fixed history): the user's words are the principal's.
    pub fn push(&mut self, message: ChatMessage) {
        let origin = match message.role {
            Role::User => Origin::Typed(
                self.principal
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_default(),
            ),
            _ => Origin::Assistant,
        };
        self.messages.push(message);
        self.origins.push(origin);
    }

    pub(super) fn request(
        &self,
        options: GenerateOptions,
        tools: Option<&ToolOffer>,
    ) -> GenerateRequest {
        self.request_forced(options, tools, None)
    }

    /// A request whose reply must be a call, constrained by `forced` from
    /// its first token; `None`: the model may answer or call.
    pub(super) fn request_forced(
        &self,
        options: GenerateOptions,
        tools: Option<&ToolOffer>,
        forced: Option<&str>,
    ) -> GenerateRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        let mut system = match tools {
            Some(_) if self.system_prompt.is_empty() => TOOL_GUIDANCE.to_string(),
            Some(_) => format!("{}\n\n{TOOL_GUIDANCE}", self.system_prompt),
            None => self.system_prompt.clone(),
        };
        if !self.pinned.is_empty() {
            system.push_str("\n\nWhat the user asked you to always keep in mind:\n");
            system.push_str(&self.pinned.join("\n"));
        }
        if !system.is_empty() {
            messages.push(ChatMessage::new(Role::System, system));
        }
        // Untrusted text reaches the model fenced and labelled.
        messages.extend(
            self.messages
                .iter()
                .zip(&self.origins)
                .map(|(m, o)| match o {
                    Origin::Typed(_) | Origin::Assistant => m.clone(),
                    untrusted if m.role == Role::User || m.role == Role::Tool => {
                        let mut m = m.clone();
                        m.content = fence(untrusted, &m.content);
                        m
                    }
                    _ => m.clone(),
                }),
        );
        GenerateRequest {
            conversation: self.id,
            messages,
            tools: tools.map(|t| t.list.clone()),
            grammar: forced
                .map(str::to_string)
                .or_else(|| tools.map(|t| t.grammar.clone())),
            force_tool_call: forced.is_some() && tools.is_some(),
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
        self.push(ChatMessage::new(Role::User, user_text));
        engine.generate(self.request(options, None))
    }

    /// Records the assistant's reply (also a partial one, after a cancel, so
    /// the history matches what the owner saw).
    pub fn finish_turn(&mut self, reply: &str) {
        if !reply.is_empty() {
            self.push_from(
                ChatMessage::new(Role::Assistant, reply.trim_end()),
                Origin::Assistant,
            );
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
const TOOL_GUIDANCE: &str = "When the user asks you to do something one of your tools does, \
call that tool instead of explaining how to do it. After a tool result, answer in plain words, \
briefly.";

/// Tools as offered to the model: the template list and its grammar.
#[derive(Clone)]
pub(super) struct ToolOffer {
    pub(super) list: Value,
    pub(super) grammar: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned facts are part of the system message, which context
    /// trimming never drops; recalled memories are Hermit's own words,
    /// tainting only when one came from an untrusted source.
    #[test]
    fn pinned_facts_are_in_the_system_message_and_recall_taints_only_when_untrusted() {
        let mut conv = Conversation::new("You are Hermit.");
        conv.pinned = vec!["- Always answer in French.".into()];
        conv.push_recall(crate::memory::Recall {
            text: "(Hermit's memory) - they said: hello".into(),
            taint: None,
            keys: vec![],
        });
        conv.push(ChatMessage::new(Role::User, "Hi"));
        let req = conv.request(GenerateOptions::default(), None);
        assert_eq!(req.messages[0].role, Role::System);
        assert!(req.messages[0].content.contains("Always answer in French."));
        assert_eq!(
            req.messages
                .iter()
                .filter(|m| m.role == Role::System)
                .count(),
            1
        );
        assert!(conv.taint.is_none());
        conv.push_recall(crate::memory::Recall {
            text: "(Hermit's memory) - <<<untrusted ...>>>".into(),
            taint: Some("web page https://x.example/".into()),
            keys: vec![],
        });
        assert_eq!(conv.taint.as_deref(), Some("web page https://x.example/"));
    }
}
