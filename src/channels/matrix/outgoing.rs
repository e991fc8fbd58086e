//! What the bot sends: a reply streamed as edits of one message
//! ([`Outgoing`]), cut into parts that fit in an event ([`chunks`]),
//! notices, and messages sent once whatever the retries (a transaction ID
//! derived from what they are for). Every text passes the trust layer's
//! redaction filter and link check ([`crate::trust::Trust::outgoing`]) and
//! is audited as a hash.

use anyhow::Context;
use matrix_sdk::Room;
use matrix_sdk::ruma::events::relation::{InReplyTo, Reply};
use matrix_sdk::ruma::events::room::message::{
    Relation, ReplacementMetadata, RoomMessageEventContent, RoomMessageEventContentWithoutRelation,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedTransactionId};

use super::Bot;
use super::journal::Journal;
use crate::proactive::Format;
use crate::trust::Trust;
use crate::trust::audit::sha256_hex;

/// Text per message: an edit carries it four times (plain and HTML, new
/// content and fallback) and encryption adds a third, within Synapse's
/// 64 KiB event limit.
pub(super) const MAX_MESSAGE_TEXT: usize = 8000;

/// One reply being streamed: the first send creates the message (answering
/// the event), later sends replace its content.
pub(super) struct Outgoing<'a> {
    pub room: &'a Room,
    pub answers: OwnedEventId,
    /// The reply's message, once sent (also by an earlier run).
    pub first: Option<OwnedEventId>,
    pub journal: &'a Journal,
    /// Every text passes its redaction filter and link check.
    pub trust: &'a Trust,
}

impl Outgoing<'_> {
    /// The final text: the first part in the reply message, and what does
    /// not fit in one event as further messages.
    pub(crate) async fn finish(&mut self, text: &str) -> anyhow::Result<()> {
        let text = self.trust.outgoing(text);
        let parts = chunks(&text, MAX_MESSAGE_TEXT);
        self.send(parts[0]).await?;
        for (n, part) in parts.iter().enumerate().skip(1) {
            let txn: OwnedTransactionId =
                format!("hermit-reply-{}-{n}", txn_part(&self.answers)).into();
            self.room
                .send(RoomMessageEventContent::text_markdown(*part))
                .with_transaction_id(txn)
                .await
                .context("cannot send the rest of the reply")?;
        }
        Ok(())
    }

    /// The reply as it stands: sent the first time (with a transaction ID
    /// derived from the event it answers, so a retry after a crash returns
    /// the same message), an edit of it after that.
    pub(crate) async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        let text = &self.trust.outgoing(text);
        match &self.first {
            None => {
                let mut content = RoomMessageEventContent::text_markdown(text);
                content.relates_to = Some(Relation::Reply(Reply::new(InReplyTo::new(
                    self.answers.clone(),
                ))));
                let txn: OwnedTransactionId =
                    format!("hermit-reply-{}", txn_part(&self.answers)).into();
                let response = self
                    .room
                    .send(content)
                    .with_transaction_id(txn)
                    .await
                    .context("cannot send the reply")?;
                self.journal
                    .set_reply_event(self.answers.as_str(), response.response.event_id.as_str())?;
                self.first = Some(response.response.event_id);
            }
            Some(first) => {
                let content = RoomMessageEventContentWithoutRelation::text_markdown(text)
                    .make_replacement(ReplacementMetadata::new(first.clone(), None));
                self.room
                    .send(content)
                    .await
                    .context("cannot edit the reply")?;
            }
        }
        Ok(())
    }
}

impl Bot {
    /// Sends a message with a transaction ID (sent once, whatever the
    /// retries), audited; its event ID.
    pub(super) async fn send_once(
        &self,
        room: &Room,
        text: &str,
        format: Format,
        txn: String,
    ) -> anyhow::Result<String> {
        let text = self.trust.outgoing(text);
        let content = match format {
            Format::Plain => RoomMessageEventContent::text_plain(&text),
            Format::Markdown => RoomMessageEventContent::text_markdown(&text),
        };
        let r = room
            .send(content)
            .with_transaction_id(OwnedTransactionId::from(txn))
            .await?;
        let event = r.response.event_id.to_string();
        self.trust.audit.record(
            crate::vocab::AuditKind::MessageOut,
            &self.settings.bot_id,
            serde_json::json!({"room": room.room_id().as_str(), "event": event, "sha256": sha256_hex(text.as_bytes())}),
        );
        Ok(event)
    }

    /// A short notice from the bot (a confirmation, a refusal).
    pub(super) async fn notice(&self, room: &Room, text: &str) {
        let text = self.trust.outgoing(text);
        match room.send(RoomMessageEventContent::notice_markdown(&text)).await {
            Ok(r) => self.trust.audit.record(
                crate::vocab::AuditKind::MessageOut,
                &self.settings.bot_id,
                serde_json::json!({"room": room.room_id().as_str(), "event": r.response.event_id.as_str(), "sha256": sha256_hex(text.as_bytes())}),
            ),
            Err(e) => tracing::warn!(error = %e, "cannot send a notice"),
        }
    }
}

/// `text` cut into parts of at most `max` bytes, at a line break when there
/// is one, else at a character boundary. Never empty.
pub(super) fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = rest[..cut].rfind('\n')
            && nl > max / 2
        {
            cut = nl + 1;
        }
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    parts.push(rest);
    parts
}

/// A transaction-ID-safe form of an event ID.
pub(super) fn txn_part(id: &OwnedEventId) -> String {
    id.as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_replies_are_cut_into_messages_that_fit() {
        assert_eq!(chunks("short", 10), vec!["short"]);
        let text = "é".repeat(10);
        let parts = chunks(&text, 5);
        assert!(parts.iter().all(|p| p.len() <= 5 && !p.is_empty()));
        assert_eq!(parts.concat(), text);
        let lines = "line one\nline two\nline three";
        assert_eq!(
            chunks(lines, 12),
            vec!["line one\n", "line two\n", "line three"]
        );
    }

    #[test]
    fn transaction_ids_keep_only_safe_characters() {
        let id: OwnedEventId = "$abc-DEF_1:box.example".try_into().unwrap();
        assert_eq!(txn_part(&id), "abcDEF1boxexample");
    }
}
