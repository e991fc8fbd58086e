//! Answering: one worker task per room answers that room's messages in
//! order, each with the room's own conversation (rebuilt from the journal
//! after a restart; `!new` starts a fresh one) and so its own KV cache. A
//! message is answered only while it is pending in the journal, so nothing
//! is answered twice; the reply is streamed as edits of one message (at
//! most one per interval, a bounded number of them, never half a word) and
//! the final text recorded with its timings.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use matrix_sdk::RoomState;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId};
use tokio::sync::mpsc;

use super::inbound::Body;
use super::journal::{Entry, Exchange, Reply, Status, Timings};
use super::outgoing::{MAX_MESSAGE_TEXT, Outgoing, chunks};
use super::{Asked, Bot, Work};
use crate::agent::{ChatMessage, Role};
use crate::agent::{Conversation, Op, TurnEvent};
use crate::trust::audit::sha256_hex;
use crate::vocab::now_ms;
use crate::vocab::{ConversationKey, Origin};

impl Bot {
    pub(super) async fn room_worker(
        self: Arc<Self>,
        room_id: OwnedRoomId,
        mut work: mpsc::UnboundedReceiver<Work>,
    ) {
        let mut conversation: Option<(i64, Conversation)> = None;
        while let Some(work) = work.recv().await {
            let event_id = match work {
                Work::Message(event_id) => event_id,
                Work::Decided(code, asked) => {
                    if let Err(e) = self
                        .settle(&room_id, &code, &asked, &mut conversation)
                        .await
                    {
                        tracing::error!(room = %room_id, %code, error = %format!("{e:#}"), "could not settle an approval request");
                    }
                    continue;
                }
            };
            if let Err(e) = self.answer(&room_id, &event_id, &mut conversation).await {
                let joined = self
                    .client
                    .get_room(&room_id)
                    .is_some_and(|r| r.state() == RoomState::Joined);
                if joined {
                    // A transport error (Synapse restarting, Hermit
                    // stopping): left pending, answered at the next start.
                    tracing::error!(room = %room_id, event = %event_id, error = %format!("{e:#}"), "could not answer; it stays pending");
                } else {
                    tracing::error!(room = %room_id, event = %event_id, error = %format!("{e:#}"), "could not answer: the bot is not in the room");
                    let _ = self.journal.mark_failed(event_id.as_str());
                }
            }
        }
    }

    async fn answer(
        &self,
        room_id: &OwnedRoomId,
        event_id: &OwnedEventId,
        conversation: &mut Option<(i64, Conversation)>,
    ) -> anyhow::Result<()> {
        let Some(Entry {
            body,
            epoch,
            status,
            reply_event_id,
            received_at,
            sender,
        }) = self.journal.entry(event_id.as_str())?
        else {
            return Ok(());
        };
        if status != Some(Status::Pending) {
            // Never answered twice.
            return Ok(());
        }
        let Some(room) = self.client.get_room(room_id) else {
            anyhow::bail!("the bot is not in this room");
        };
        if room.state() != RoomState::Joined {
            anyhow::bail!("the bot is no longer in this room (left or kicked)");
        }
        let received =
            Instant::now() - Duration::from_millis((now_ms() - received_at).max(0) as u64);
        let mut reply = Outgoing {
            room: &room,
            answers: event_id.clone(),
            first: reply_event_id.and_then(|s| s.try_into().ok()),
            journal: &self.journal,
            trust: &self.trust,
        };
        let Some(principal) = self.trust.principals.of(&sender) else {
            // No longer allowed (removed from the configuration since).
            tracing::info!(%sender, event = %event_id, "not answered: the sender is no longer allowed");
            self.journal.mark_skipped(event_id.as_str())?;
            return Ok(());
        };
        // A voice message: transcribed, the transcript shown back (so the
        // person sees what was understood), kept, then answered as their
        // words.
        let (body, heard, unsupported, spoken) = match Body::decode(&body) {
            Body::Audio(json) => match self.hear(&room, event_id, &sender, json).await {
                Ok(text) => (text, None, None, true),
                Err(why) => (String::new(), Some(why), None, true),
            },
            Body::Unsupported(kind) => (String::new(), None, Some(kind.to_string()), false),
            Body::Text(_) => (body, None, None, false),
        };
        // A transcript is labelled as one: the voice may not be the
        // sender's (see `Op::Message`).
        let origin = spoken.then(|| crate::vocab::Origin::Transcript(sender.clone()));
        // Commands and what the model is not given.
        let canned = if let Some(why) = heard {
            Some(why)
        } else if let Some(kind) = unsupported {
            Some(format!(
                "I can only read text and voice messages for now (this was {kind})."
            ))
        } else if body.len() > self.settings.max_message_bytes {
            Some(format!(
                "That message is too long for me ({} KB; the limit is {} KB). Could you shorten it?",
                body.len() / 1024,
                self.settings.max_message_bytes / 1024
            ))
        } else if let Some(by) = self.trust.halt.halted_by() {
            Some(format!(
                "I am stopped (by {by}): nothing runs until the owner sends `!resume`."
            ))
        } else if spoken {
            // Spoken words are never a command.
            None
        } else {
            let shared = if body.trim_start().starts_with("!new") {
                Some(!super::session::is_direct(&room).await)
            } else {
                None
            };
            self.command(
                room_id,
                &crate::memory::principal_key(&principal),
                body.trim(),
                conversation,
                shared,
            )
        };
        if let Some(text) = canned {
            reply.finish(&text).await?;
            self.finish(
                event_id,
                &text,
                Reply::Text(&text),
                received,
                received,
                None,
            )?;
            return Ok(());
        }
        // The room's conversation in force now (a `!new` may have come
        // after this message arrived), rebuilt from the journal if needed.
        let epoch = self
            .journal
            .move_to_current(event_id.as_str(), room_id.as_str(), epoch)?;
        if conversation.as_ref().map(|(e, _)| *e) != Some(epoch) {
            *conversation = Some((epoch, self.restore(room_id, epoch).await?));
        }
        let conv = &mut conversation.as_mut().expect("set above").1;
        let for_owner = principal.is_owner();
        conv.principal = Some(principal);
        // Not awaited: the turn need not wait for the typing notice.
        let typing = room.clone();
        tokio::spawn(async move {
            let _ = typing.typing_notice(true).await;
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<TurnEvent>();
        let cancel = Arc::new(AtomicBool::new(false));
        let agent = self.agent.clone();
        let mut text = String::new();
        let mut edits = 0u32;
        let mut last_edit: Option<Instant> = None;
        let mut first_edit_at: Option<Instant> = None;
        // In a block: the turn holds the conversation until it is dropped.
        let outcome = {
            let op = match &origin {
                Some(o) => Op::labelled(&body, o),
                None => Op::typed(&body),
            };
            let turn = agent.submit(
                conv,
                op,
                move |ev| {
                    if matches!(ev, TurnEvent::Token(_) | TurnEvent::Approval { .. }) {
                        let _ = tx.send(ev);
                    }
                },
                cancel,
            );
            tokio::pin!(turn);
            let outcome = loop {
                tokio::select! {
                    outcome = &mut turn => break outcome,
                    Some(ev) = rx.recv() => match ev {
                        TurnEvent::Token(t) => text.push_str(&t),
                        TurnEvent::Approval { code, text: request } => {
                            // The owner decides in the owner's room: a
                            // member's request goes to the owner's direct
                            // chat with the bot, when there is one.
                            // (The reply says it waits: the conversation
                            // goes on meanwhile.)
                            let target = self.approval_room(&room, for_owner).await;
                            self.post_request(&target, &code, &request).await;
                            continue;
                        }
                        _ => {}
                    }
                }
                // At most one edit per interval, and a bounded number of them.
                let due = last_edit.is_none_or(|t| t.elapsed() >= self.settings.edit_interval);
                // Up to the last whitespace only: a token or secret still
                // being written is never streamed half-way, where the
                // redaction filter could not recognise it (edits stay in
                // the room's history).
                let streamable = &text[..text.rfind(char::is_whitespace).unwrap_or(0)];
                if due && edits < self.settings.max_edits && !streamable.trim().is_empty() {
                    let shown = chunks(streamable.trim_end(), MAX_MESSAGE_TEXT)[0];
                    // A failed edit is not the end of the answer: the next one,
                    // or the final one, carries the text.
                    if let Err(e) = reply.send(&format!("{shown} …")).await {
                        tracing::warn!(error = %format!("{e:#}"), "a streamed edit failed");
                    }
                    edits += 1;
                    last_edit = Some(Instant::now());
                    first_edit_at.get_or_insert_with(Instant::now);
                }
            };
            // What the turn said as it ended (a request it asked last).
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    TurnEvent::Token(t) => text.push_str(&t),
                    TurnEvent::Approval {
                        code,
                        text: request,
                    } => {
                        let target = self.approval_room(&room, for_owner).await;
                        self.post_request(&target, &code, &request).await;
                    }
                    _ => {}
                }
            }
            outcome
        };
        // The taint outlives a restart: kept with the room's conversation.
        if let Some((e, c)) = conversation.as_ref()
            && let Some(t) = &c.taint
        {
            let _ = self.journal.keep_taint(room_id.as_str(), *e, t);
        }
        let typing = room.clone();
        tokio::spawn(async move {
            let _ = typing.typing_notice(false).await;
        });
        let (final_text, stats, kept) = match outcome {
            Ok(o) => {
                if let Some(code) = &o.awaiting {
                    // Settled in this room once decided.
                    self.deferred.lock().unwrap().insert(
                        code.clone(),
                        Asked {
                            room: room_id.clone(),
                            event: event_id.clone(),
                        },
                    );
                }
                let mut t = o.reply.trim().to_string();
                if t.is_empty() {
                    t = text.trim().to_string();
                }
                if let Some(why) = o.limited {
                    t.push_str(&format!("\n\n_({why})_"));
                }
                if t.is_empty() {
                    t = "(no answer)".into();
                }
                (t, o.stats, o.kept)
            }
            Err(e) => (format!("Sorry, I could not answer: {e}"), None, None),
        };
        reply.finish(&final_text).await?;
        let first = first_edit_at.unwrap_or_else(Instant::now);
        // The words once: in memory when it kept them (the message too),
        // else in the journal.
        let kept = match kept {
            Some(row) => Reply::Kept(row),
            None => Reply::Text(&final_text),
        };
        self.finish(event_id, &final_text, kept, received, first, stats.as_ref())?;
        Ok(())
    }

    /// A request a turn in this room asked about, now decided: the
    /// approved call runs and the follow-up is posted here (a denied,
    /// expired or cancelled one is said not to have run), and added to
    /// the room's conversation and to the reply it belongs to.
    async fn settle(
        &self,
        room_id: &OwnedRoomId,
        code: &str,
        asked: &Asked,
        conversation: &mut Option<(i64, Conversation)>,
    ) -> anyhow::Result<()> {
        let Some(room) = self.client.get_room(room_id) else {
            anyhow::bail!("the bot is not in this room");
        };
        let Some(row) = self.trust.approvals.get(code) else {
            return Ok(());
        };
        let current = conversation
            .as_mut()
            .map(|(_, c)| c)
            .filter(|c| c.key == *row.conversation.as_str());
        let mut kept = None;
        let text = match current {
            // A `!new` came since: the request belonged to a conversation
            // set aside, and does not run.
            None => {
                if self.trust.approvals.cancel(code) {
                    format!(
                        "Request `{code}` was asked before a `!new`: `{}` did not run.",
                        row.tool
                    )
                } else {
                    return Ok(());
                }
            }
            Some(conv) => {
                let typing = room.clone();
                tokio::spawn(async move {
                    let _ = typing.typing_notice(true).await;
                });
                let cancel = Arc::new(AtomicBool::new(false));
                let outcome = self
                    .agent
                    .submit(conv, Op::Decided { code }, |_| {}, cancel)
                    .await;
                let typing = room.clone();
                tokio::spawn(async move {
                    let _ = typing.typing_notice(false).await;
                });
                match outcome {
                    Ok(o) => {
                        kept = o.kept;
                        let mut t = o.reply.trim().to_string();
                        if let Some(why) = o.limited {
                            t.push_str(&format!("\n\n_({why})_"));
                        }
                        if t.is_empty() {
                            t = format!("(`{}` ran; no answer)", row.tool);
                        }
                        t
                    }
                    Err(e) => format!("Sorry, I could not go on after `{code}`: {e}"),
                }
            }
        };
        // The taint outlives a restart (the result may be untrusted text).
        if let Some((e, c)) = conversation.as_ref()
            && let Some(t) = &c.taint
        {
            let _ = self.journal.keep_taint(room_id.as_str(), *e, t);
        }
        self.send_once(
            &room,
            &text,
            crate::proactive::Format::Markdown,
            format!("hermit-settled-{code}"),
        )
        .await?;
        let more = match kept {
            Some(row) => Reply::Kept(row),
            None => Reply::Text(&text),
        };
        self.journal.append_reply(asked.event.as_str(), more)?;
        Ok(())
    }

    fn finish(
        &self,
        event_id: &OwnedEventId,
        reply: &str,
        kept: Reply,
        received: Instant,
        first: Instant,
        stats: Option<&crate::agent::GenerationStats>,
    ) -> anyhow::Result<()> {
        let since = |t: Instant| t.saturating_duration_since(received).as_millis() as i64;
        self.trust.audit.record(
            crate::vocab::AuditKind::MessageOut,
            &self.settings.bot_id,
            serde_json::json!({"answers": event_id.as_str(), "bytes": reply.len(), "sha256": sha256_hex(reply.as_bytes())}),
        );
        self.journal.finish(
            event_id.as_str(),
            kept,
            &Timings {
                first_edit_ms: since(first),
                final_edit_ms: since(Instant::now()),
                model_ttft_ms: stats.map(|s| s.ttft_ms),
                model_total_ms: stats.map(|s| s.prompt_ms.max(s.ttft_ms) + s.generation_ms),
            },
        )?;
        Ok(())
    }

    /// The room's conversation of `epoch`: from memory, which keeps its
    /// words; from the journal with memory off (or for a conversation held
    /// before memory was on).
    async fn restore(&self, room_id: &OwnedRoomId, epoch: i64) -> anyhow::Result<Conversation> {
        let mut conv = Conversation::new(self.settings.system_prompt.clone());
        conv.key = ConversationKey::matrix(room_id.as_str(), epoch);
        conv.place = room_id.to_string();
        // A request for the owner does not hold the room.
        conv.defer_approvals = true;
        conv.taint = self.journal.taint(room_id.as_str(), epoch)?;
        if let Some(n) = self.agent.restore(&mut conv).await.filter(|n| *n > 0) {
            tracing::info!(room = %room_id, epoch, messages = n, "conversation restored from memory");
            return Ok(conv);
        }
        for Exchange {
            body,
            reply,
            sender,
        } in self.journal.history(room_id.as_str(), epoch)?
        {
            // Each message keeps its author: another person's words are
            // untrusted in the owner's turns.
            conv.push_from(ChatMessage::new(Role::User, body), Origin::Typed(sender));
            if let Some(reply) = reply {
                conv.push_from(ChatMessage::new(Role::Assistant, reply), Origin::Assistant);
            }
        }
        Ok(conv)
    }
}
