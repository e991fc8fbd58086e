//! What the agent keeps of a conversation in memory, around a turn: what
//! is relevant recalled before it, the message and the reply kept (the
//! conversation's words, in one place), and a conversation rebuilt from
//! them after a restart.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{Agent, ChatMessage, Conversation, InferenceError, Role, TurnEvent, TurnOutcome};
use crate::vocab::{Origin, Principal, fence};

impl Agent {
    /// One turn ([`super::Op::Message`]): the message, tool calls, the reply.
    /// With memory, what is relevant is recalled first, and the message
    /// and the reply are kept. `origin` says where its words come from. A
    /// transcript of a voice note
    /// ([`Origin::Transcript`]) is the sender's message, but the voice may
    /// be someone else's (a television, a visitor): like other untrusted
    /// text, it taints the conversation, so effects beyond reading ask the
    /// owner, and it is kept in memory with its label. `None`: typed by
    /// the conversation's principal.
    pub(super) async fn turn_as(
        &self,
        conv: &mut Conversation,
        user_text: &str,
        origin: Option<Origin>,
        on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        let Some(memory) = self.memory.clone() else {
            return self
                .turn_inner(conv, user_text, origin, on_event, cancel, true)
                .await;
        };
        let label = origin.as_ref().map(Origin::label);
        let principal = self.principal_of(conv);
        let who = crate::memory::principal_key(&principal);
        let (key, place, text) = (
            conv.key.to_string(),
            conv.place.clone(),
            user_text.to_string(),
        );
        let already = conv.recalled.clone();
        // A message kept before a restart cut its turn short is not kept
        // a second time when it is answered again.
        let again = conv
            .unanswered
            .iter()
            .position(|b| b == user_text)
            .map(|i| conv.unanswered.remove(i))
            .is_some();
        let mem = memory.clone();
        let sender = if principal.id.is_empty() {
            crate::vocab::OWNER.to_string()
        } else {
            principal.id.clone()
        };
        let w = who.clone();
        // Off the async runtime: a search embeds the message.
        let before = tokio::task::spawn_blocking(move || {
            let pinned = mem.pinned(&w)?;
            let recall = mem.recall(&w, &text, &key, &already)?;
            if !again {
                mem.record_message(&crate::memory::NewMessage {
                    conversation: &key,
                    principal: &w,
                    sender: &sender,
                    room: (place != "local").then_some(place.as_str()),
                    role: "user",
                    origin: label.as_deref(),
                    body: &text,
                })?;
            }
            Ok::<_, crate::memory::MemoryError>((pinned, recall))
        })
        .await;
        match before {
            Ok(Ok((pinned, recall))) => {
                conv.pinned = pinned
                    .iter()
                    .map(|f| match &f.origin {
                        Some(src) => format!("- {}", fence(&Origin::Memory(src.clone()), &f.text)),
                        None => format!("- {}", f.text),
                    })
                    .collect();
                if let Some(src) = &recall.taint {
                    tracing::info!(source = %src, "recalled an untrusted memory");
                }
                conv.push_recall(recall);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "memory: recall failed; answering without it"),
            Err(e) => tracing::warn!(error = %e, "memory: recall failed; answering without it"),
        }
        let outcome = self
            .turn_inner(conv, user_text, origin, on_event, cancel, true)
            .await?;
        let mut outcome = outcome;
        outcome.kept = self.keep_reply(conv, &principal, &outcome.reply).await;
        Ok(outcome)
    }

    /// Keeps a reply in memory (with the label of the untrusted text the
    /// conversation read, if any), when there is memory; its row.
    pub(super) async fn keep_reply(
        &self,
        conv: &Conversation,
        principal: &Principal,
        reply: &str,
    ) -> Option<i64> {
        let memory = self.memory.clone()?;
        if reply.trim().is_empty() {
            return None;
        }
        let who = crate::memory::principal_key(principal);
        let (key, place, reply) = (
            conv.key.to_string(),
            conv.place.clone(),
            reply.trim().to_string(),
        );
        // Untrusted text this turn read, other people's words in a
        // shared room included.
        let origin = conv.taint_for(&principal.id, &self.owner_id());
        let kept = tokio::task::spawn_blocking(move || {
            memory.record_message(&crate::memory::NewMessage {
                conversation: &key,
                principal: &who,
                sender: "hermit",
                room: (place != "local").then_some(place.as_str()),
                role: "assistant",
                // A reply written after reading untrusted text keeps
                // the label of that source.
                origin: origin.as_deref(),
                body: &reply,
            })
        })
        .await;
        match kept {
            Ok(Ok(id)) => Some(id),
            _ => {
                tracing::warn!("memory: the reply could not be kept");
                None
            }
        }
    }

    /// Rebuilds `conv` from the messages memory kept under its key (each
    /// with its origin: a person's words as typed by them, a transcript
    /// labelled as one, replies as the assistant's). `None` without
    /// memory: the channel then keeps the words itself.
    pub async fn restore(&self, conv: &mut Conversation) -> Option<usize> {
        let memory = self.memory.clone()?;
        let key = conv.key.to_string();
        let said = match tokio::task::spawn_blocking(move || memory.said_in(&key)).await {
            Ok(Ok(said)) => said,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "memory: the conversation could not be read back; it starts afresh");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        // A message whose turn never ended (the process stopped during
        // it) is answered again, and kept again then.
        let mut said = said;
        while said.last().is_some_and(|m| m.role != "assistant") {
            if let Some(m) = said.pop() {
                conv.unanswered.insert(0, m.body);
            }
        }
        let n = said.len();
        for m in said {
            if m.role == "assistant" {
                conv.push_from(ChatMessage::new(Role::Assistant, m.body), Origin::Assistant);
            } else {
                let origin = match &m.origin {
                    Some(label) => Origin::from_label(label),
                    None => Origin::Typed(m.sender),
                };
                conv.push_from(ChatMessage::new(Role::User, m.body), origin);
            }
        }
        Some(n)
    }
}
