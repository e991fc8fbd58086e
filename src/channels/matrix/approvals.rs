//! Approvals in Matrix: a request the agent asks the owner about is posted
//! in the owner's room (a member's in the owner's direct chat with the
//! bot), and decided there by a ✅ / ❌ reaction to it or by `!approve
//! CODE` / `!deny CODE` ([`super::commands`]). Only the owner decides,
//! only in the room of the request, and (if the policy says so) only from
//! a verified device: [`crate::trust::approvals`] checks it all. A ✅ on
//! a delivered reminder marks it done.

use matrix_sdk::Room;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;

use super::Bot;
use super::inbound::{Reaction, Who};
use crate::trust::approvals::Decider;
use crate::trust::audit::sha256_hex;

impl Bot {
    /// A ✅ or ❌ reaction to one of the bot's approval requests (or ✅ to
    /// a delivered reminder).
    pub(super) fn reaction(&self, room: &Room, r: &Reaction, verified: Option<bool>) {
        let sender = r.sender.as_str();
        match r.who {
            Who::Bot => return,
            Who::Stranger => {
                tracing::info!(room = %room.room_id(), %sender, "ignored a reaction from a sender who is not allowed");
                return;
            }
            Who::Allowed => {}
        }
        let Some(approve) = r.vote else {
            return;
        };
        let Some(code) = self.trust.approvals.code_for_event(r.target.as_str()) else {
            // ✅ on a delivered reminder: done (the briefing no longer
            // lists it as open).
            if approve {
                let who = self
                    .trust
                    .principals
                    .of(sender)
                    .map(|p| crate::memory::principal_key(&p));
                if let (Some(who), Ok(store)) = (who, self.reminder_store()) {
                    match store.mark_done_by_event(r.target.as_str(), &who) {
                        Ok(true) => tracing::info!(%sender, "reminder marked done by a reaction"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot mark a reminder done"),
                    }
                }
            }
            return;
        };
        let reply = self.decide(room, sender, &code, approve, verified);
        let room = room.clone();
        let trust = self.trust.clone();
        tokio::spawn(async move {
            let text = trust.outgoing(&reply);
            if let Err(e) = room
                .send(RoomMessageEventContent::notice_markdown(text))
                .await
            {
                tracing::warn!(error = %e, "cannot confirm a decision");
            }
        });
    }

    /// The owner's decision on a request, from this room.
    pub(super) fn decide(
        &self,
        room: &Room,
        sender: &str,
        code: &str,
        approve: bool,
        verified: Option<bool>,
    ) -> String {
        let who = Decider {
            user: sender.to_string(),
            is_owner: sender == self.trust.owner(),
            place: Some(room.room_id().to_string()),
            verified,
        };
        match self.trust.decide(code, &who, approve, "matrix") {
            Ok(row) => {
                tracing::info!(code = %row.code, %sender, approve, "approval decided");
                if approve {
                    format!("Approved `{}`: running `{}` once.", row.code, row.tool)
                } else {
                    format!("Denied `{}`: `{}` will not run.", row.code, row.tool)
                }
            }
            Err(why) => {
                tracing::warn!(%code, %sender, approve, %why, "an approval attempt did nothing");
                format!("That did nothing: {why}.")
            }
        }
    }

    /// Where the owner decides a request of a turn in `room`: there for
    /// the owner's own turn; a member's request goes to the owner's direct
    /// chat with the bot, when there is one.
    pub(super) async fn approval_room(&self, room: &Room, for_owner: bool) -> Room {
        if for_owner {
            room.clone()
        } else {
            self.owner_dm().await.unwrap_or_else(|| room.clone())
        }
    }

    /// Posts an approval request in the room; reactions to it decide it.
    pub(super) async fn post_request(&self, room: &Room, code: &str, text: &str) {
        // Exactly what will run: redacted, but links are not shortened
        // (the arguments are in a code block, which clients do not link).
        let mut shown = crate::trust::redact::redact(text);
        if shown != text {
            shown.push_str(
                "\n\n⚠️ Parts of the arguments match a secret or a token and are shown as [redacted]: \
                 the call would use them as they are.",
            );
        }
        let text = shown;
        match room
            .send(RoomMessageEventContent::text_markdown(&text))
            .await
        {
            Ok(r) => {
                self.trust.approvals.set_request_event(
                    code,
                    r.response.event_id.as_str(),
                    room.room_id().as_str(),
                );
                self.trust.audit.record(
                    crate::vocab::AuditKind::MessageOut,
                    &self.settings.bot_id,
                    serde_json::json!({"room": room.room_id().as_str(), "event": r.response.event_id.as_str(), "approval": code, "sha256": sha256_hex(text.as_bytes())}),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, %code, "cannot post an approval request; `hermit approvals` can still decide it")
            }
        }
    }
}
