//! The agent loop: a conversation's history, turned into a reply.
//!
//! Today a turn is: append the user's message, ask the engine for a reply,
//! stream it, append it. Memory recall, tools, policy and approvals join the
//! loop here (and only here) as they are built. The agent knows nothing of the
//! channel a message came from, nor of llama.cpp: it holds messages and talks
//! to [`crate::inference::Engine`].

use std::sync::atomic::{AtomicU64, Ordering};

use crate::inference::{
    ChatMessage, Engine, GenerateOptions, GenerateRequest, Generation, GenerationStats, Role,
};

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

    fn request(&self, options: GenerateOptions) -> GenerateRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        if !self.system_prompt.is_empty() {
            messages.push(ChatMessage::new(Role::System, self.system_prompt.clone()));
        }
        messages.extend(self.messages.iter().cloned());
        GenerateRequest {
            conversation: self.id,
            messages,
            tools: None,
            options,
        }
    }

    /// Starts the reply to `user_text`. Stream the returned generation, then
    /// give the full text back with [`Conversation::finish_turn`].
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
        engine.generate(self.request(options))
    }

    /// Records the assistant's reply (also a partial one, after a cancel, so
    /// the history matches what the owner saw).
    pub fn finish_turn(&mut self, reply: &str) {
        if !reply.is_empty() {
            self.messages
                .push(ChatMessage::new(Role::Assistant, reply.trim_end()));
        }
    }

    /// One whole turn, for scripted use.
    pub async fn turn(
        &mut self,
        engine: &Engine,
        user_text: &str,
    ) -> Result<(String, GenerationStats), crate::inference::InferenceError> {
        let result = self.begin_turn(engine, user_text).collect().await;
        if let Ok((text, _)) = &result {
            self.finish_turn(text);
        }
        result
    }
}
