//! The bot's Matrix session: logging in (or restoring the saved session:
//! same device, same keys), cross-signing, and the sync loop. The sync
//! token kept in the journal advances only once the events of that sync
//! are recorded, so a crash loses nothing (the events are synced again and
//! found recorded); a gap in a room's timeline is fetched; invites from
//! allowed people are joined, others refused without a word; events that
//! could not be decrypted are fetched again as their keys arrive. Each
//! event is classified ([`super::inbound`]) and recorded for its room's
//! worker ([`Bot::record`]), or acted on at once: approvals, stops and
//! reactions (the worker may be busy with the very turn that waits for
//! them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::TimelineEvent;
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room};

use super::inbound::{Ignored, Inbound, Route, classify, route};
use super::journal::{Journal, NewMessage, RoomEvent};
use super::{Bot, BotSettings};
use crate::agent::Agent;
use crate::secrets::{Secrets, names};
use crate::trust::Trust;
use crate::trust::audit::sha256_hex;

impl Bot {
    /// Logs in (or restores the saved session: same device, same keys),
    /// bootstraps cross-signing for the bot's device, and returns the bot.
    pub async fn connect(
        settings: BotSettings,
        secrets: &Secrets,
        agent: Arc<Agent>,
        trust: Arc<Trust>,
    ) -> anyhow::Result<Arc<Self>> {
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&settings.dir)
                .with_context(|| format!("cannot create {}", settings.dir.display()))?;
        }
        let (passphrase, _) = secrets.get_or_create(names::STORE_PASSPHRASE)?;
        let password = secrets.get(names::BOT_PASSWORD)?.context(
            "the bot has no password in the secrets directory: run `hermit init` (or `hermit up`) first",
        )?;
        let client = Client::builder()
            .homeserver_url(&settings.homeserver_url)
            .sqlite_store(settings.dir.join("store"), Some(passphrase.expose()))
            .build()
            .await
            .context("cannot open the Matrix stores")?;
        let session_path = settings.dir.join("session.json");
        let saved = std::fs::read_to_string(&session_path).ok().and_then(|t| {
            serde_json::from_str::<matrix_sdk::authentication::matrix::MatrixSession>(&t).ok()
        });
        let bot_id: OwnedUserId = settings.bot_id.as_str().try_into().context("bad bot ID")?;
        match saved {
            Some(session) => {
                client
                    .restore_session(session)
                    .await
                    .context("cannot restore the bot's Matrix session")?;
                tracing::info!(device = ?client.device_id(), "Matrix session restored");
            }
            None => {
                let response = client
                    .matrix_auth()
                    .login_username(bot_id.localpart(), password.expose())
                    .initial_device_display_name("Hermit")
                    .send()
                    .await
                    .with_context(|| {
                        format!(
                            "the bot {} cannot log in at {}",
                            settings.bot_id, settings.homeserver_url
                        )
                    })?;
                tracing::info!(device = %response.device_id, "bot logged in, new device");
                let session = client
                    .matrix_auth()
                    .session()
                    .context("no session after login")?;
                crate::homeserver::write_private(&session_path, &serde_json::to_string(&session)?)?;
            }
        }
        // Cross-signing, so clients can verify the bot's device.
        if let Err(e) = client
            .encryption()
            .bootstrap_cross_signing_if_needed(None)
            .await
        {
            match e.as_uiaa_response() {
                Some(info) => {
                    let mut auth = uiaa::Password::new(
                        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(
                            bot_id.localpart().to_owned(),
                        )),
                        password.expose().to_owned(),
                    );
                    auth.session = info.session.clone();
                    if let Err(e) = client
                        .encryption()
                        .bootstrap_cross_signing(Some(uiaa::AuthData::Password(auth)))
                        .await
                    {
                        tracing::warn!(error = %e, "cross-signing bootstrap failed");
                    } else {
                        tracing::info!("cross-signing keys created for the bot");
                    }
                }
                None => tracing::warn!(error = %e, "cross-signing bootstrap failed"),
            }
        }
        let journal = Journal::open(&settings.db_path)?;
        Ok(Arc::new(Self {
            client,
            settings,
            agent,
            trust,
            journal,
            rooms: Mutex::new(HashMap::new()),
            deferred: Mutex::new(HashMap::new()),
            started: Instant::now(),
            voice: std::sync::OnceLock::new(),
        }))
    }

    /// Runs the sync loop until an unrecoverable error. Pending events from
    /// before a restart are answered first.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let pending = self.journal.pending()?;
        if !pending.is_empty() {
            tracing::info!(
                count = pending.len(),
                "answering events left pending by the last run"
            );
        }
        for RoomEvent { room_id, event_id } in pending {
            if let (Ok(room), Ok(event)) = (room_id.try_into(), event_id.try_into()) {
                self.dispatch(room, event);
            }
        }
        let keys = self.clone();
        tokio::spawn(async move { keys.retry_undecryptable().await });
        let decisions = self.clone();
        tokio::spawn(async move { decisions.watch_decisions().await });
        let mut backoff = Duration::from_secs(1);
        'sync: loop {
            let token = self.journal.sync_token()?;
            let mut sync = SyncSettings::default()
                .timeout(Duration::from_secs(30))
                .filter(sync_filter());
            let initial = token.is_none();
            if let Some(t) = token {
                sync = sync.token(t);
            }
            let response = match self.client.sync_once(sync).await {
                Ok(r) => {
                    backoff = Duration::from_secs(1);
                    r
                }
                Err(e) => {
                    if matches!(
                        e.client_api_error_kind(),
                        Some(matrix_sdk::ruma::api::error::ErrorKind::UnknownToken { .. })
                    ) {
                        anyhow::bail!(
                            "the homeserver no longer accepts the bot's session (its device was \
                             deleted or logged out). Remove {} and restart: the bot logs in as a \
                             new device",
                            self.settings.dir.display()
                        );
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "sync failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            for room_id in response.rooms.invited.keys() {
                if let Some(room) = self.client.get_room(room_id) {
                    self.handle_invite(room).await;
                }
            }
            for room_id in response.rooms.left.keys() {
                tracing::info!(room = %room_id, "the bot left or was removed from a room");
                self.rooms.lock().unwrap().remove(room_id);
            }
            let mut new_events = Vec::new();
            for (room_id, update) in &response.rooms.joined {
                let Some(room) = self.client.get_room(room_id) else {
                    continue;
                };
                let mut events: Vec<TimelineEvent> = Vec::new();
                // More happened than the sync returned: fetch the gap, so
                // that nothing said while the bot was away is lost.
                if update.timeline.limited
                    && !initial
                    && let Some(prev) = &update.timeline.prev_batch
                {
                    let mut options =
                        matrix_sdk::room::MessagesOptions::backward().from(prev.as_str());
                    options.limit = 100u32.into();
                    match room.messages(options).await {
                        Ok(page) => {
                            tracing::info!(room = %room_id, events = page.chunk.len(), "fetched a gap in the timeline");
                            events.extend(page.chunk.into_iter().rev());
                        }
                        Err(e) => {
                            tracing::warn!(room = %room_id, error = %e, "cannot fetch a gap in the timeline; syncing again");
                            tokio::time::sleep(backoff).await;
                            continue 'sync;
                        }
                    }
                }
                events.extend(update.timeline.events.iter().cloned());
                for event in &events {
                    match self.record(&room, event, initial).await {
                        Ok(Some(id)) => new_events.push((room_id.clone(), id)),
                        Ok(None) => {}
                        Err(e) => {
                            // The token must not pass an event not recorded.
                            tracing::error!(error = %format!("{e:#}"), "cannot record an incoming event; syncing again");
                            tokio::time::sleep(backoff).await;
                            continue 'sync;
                        }
                    }
                }
            }
            // Everything in this sync is recorded: the token may advance.
            self.journal.set_sync_token(&response.next_batch)?;
            for (room, event) in new_events {
                self.dispatch(room, event);
            }
        }
    }

    async fn handle_invite(&self, room: Room) {
        let inviter = match room.invite_details().await {
            Ok(invite) => invite.inviter_id.to_string(),
            Err(e) => {
                tracing::warn!(room = %room.room_id(), error = %e, "cannot read an invite");
                return;
            }
        };
        if self.allowed(&inviter) {
            tracing::info!(room = %room.room_id(), %inviter, "joining on invite");
            // Joining can race the invite's federation of state; retry briefly.
            let direct = room.is_direct().await.unwrap_or(false);
            for attempt in 0..3 {
                match room.join().await {
                    Ok(()) => {
                        // Remembered in the bot's `m.direct`, so the room
                        // stays a direct chat when others join later.
                        if direct && let Err(e) = room.set_is_direct(true).await {
                            tracing::debug!(error = %e, "cannot mark the room as direct");
                        }
                        return;
                    }
                    Err(e) if attempt < 2 => {
                        tracing::debug!(error = %e, "join failed, retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => tracing::warn!(room = %room.room_id(), error = %e, "cannot join"),
                }
            }
        } else {
            // Refused without a word: a stranger learns nothing about the box.
            tracing::warn!(room = %room.room_id(), %inviter, "refused an invite from a sender who is not allowed");
            if let Err(e) = room.leave().await {
                tracing::warn!(error = %e, "cannot reject the invite");
            }
        }
    }

    /// Events that could not be decrypted (kept in the journal as
    /// `undecryptable`) are fetched again, as their keys may have arrived
    /// (the SDK asks the sender's devices for them): every 5 seconds during
    /// the two minutes after they arrived, and once after each start.
    pub(super) async fn retry_undecryptable(self: Arc<Self>) {
        let mut first = true;
        loop {
            let waiting = self.journal.undecryptable(first);
            first = false;
            for RoomEvent { room_id, event_id } in waiting {
                let (Ok(room_id), Ok(event_id)) = (
                    OwnedRoomId::try_from(room_id),
                    OwnedEventId::try_from(event_id),
                ) else {
                    continue;
                };
                let Some(room) = self.client.get_room(&room_id) else {
                    continue;
                };
                if let Ok(event) = room.event(&event_id, None).await
                    && !event.kind.is_utd()
                {
                    tracing::info!(event = %event_id, "decrypted after its keys arrived");
                    let _ = self.journal.forget_undecryptable(event_id.as_str());
                    match self.record(&room, &event, false).await {
                        Ok(Some(id)) => self.dispatch(room_id, id),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "cannot record a decrypted event"),
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// A direct chat: invited as one (`is_direct`), or a room with only the bot
/// and one other person in it.
pub(super) async fn is_direct(room: &Room) -> bool {
    if room.is_direct().await.unwrap_or(false) {
        return true;
    }
    // The summary's counts are not sent without lazy loading: ask for the
    // member list (fetched once, then kept up to date by the sync).
    match room
        .members(matrix_sdk::RoomMemberships::JOIN | matrix_sdk::RoomMemberships::INVITE)
        .await
    {
        Ok(members) => members.len() <= 2,
        Err(e) => {
            tracing::warn!(room = %room.room_id(), error = %e, "cannot list the room's members");
            false
        }
    }
}

impl Bot {
    /// Records an incoming event in the journal if it is a message the bot
    /// must answer. Returns its ID when it was newly recorded as pending.
    /// In the first sync of a journal (`initial`), old messages are
    /// recorded as skipped.
    pub(super) async fn record(
        &self,
        room: &Room,
        event: &TimelineEvent,
        initial: bool,
    ) -> anyhow::Result<Option<OwnedEventId>> {
        let room_id = room.room_id().as_str();
        if event.kind.is_utd() {
            let (Some(id), Some(sender)) = (event.event_id(), event.sender()) else {
                return Ok(None);
            };
            if sender.as_str() == self.settings.bot_id || !self.allowed(sender.as_str()) {
                return Ok(None);
            }
            tracing::warn!(room = %room_id, event = %id, "cannot decrypt an event yet; keys requested, will retry");
            // Kept in the journal, so that a restart retries it too.
            self.journal
                .record_undecryptable(id.as_str(), room_id, sender.as_str())?;
            return Ok(None);
        }
        let parsed = match event.raw().deserialize() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(room = %room_id, error = %e, "ignored a malformed event");
                return Ok(None);
            }
        };
        let verified = event.encryption_info().map(|info| {
            matches!(
                info.verification_state,
                matrix_sdk::deserialized_responses::VerificationState::Verified
            )
        });
        let now = crate::vocab::system_now_ms();
        let m = match classify(&parsed, &self.settings.bot_id, |u| self.allowed(u), now) {
            Inbound::Message(m) => m,
            Inbound::Reaction(r) => {
                // Journaled like a message, so that a reaction synced
                // again (a gap fetched, a restart) acts only once.
                let first = self.journal.record_handled(
                    r.event_id.as_str(),
                    room_id,
                    &r.sender,
                    &format!("\u{0}reaction:{}", r.key),
                    r.origin_ts,
                )?;
                if first && r.too_old {
                    tracing::warn!(event = %r.event_id, "an old reaction does nothing");
                } else if first {
                    self.reaction(room, &r, verified);
                }
                return Ok(None);
            }
            Inbound::EditedTrustCommand { event_id, sender } => {
                tracing::warn!(room = %room_id, %sender, event = %event_id, "an edited message does not approve, deny, stop or resume anything");
                self.trust.audit.record(
                    crate::vocab::AuditKind::ApprovalIgnored,
                    &sender,
                    serde_json::json!({"room": room_id, "event": event_id.as_str(), "why": "edited message"}),
                );
                return Ok(None);
            }
            Inbound::Ignored(why) => {
                match why {
                    Ignored::RedactedReaction(e) => {
                        tracing::debug!(event = %e, "a redacted reaction does nothing")
                    }
                    Ignored::RedactedMessage { event_id, sender } => {
                        tracing::debug!(event = %event_id, %sender, "a redacted message does nothing")
                    }
                    Ignored::NotHandled(kind) => {
                        tracing::trace!(room = %room_id, %kind, "event type not handled")
                    }
                    Ignored::Own => {}
                    Ignored::Edit(e) => {
                        tracing::debug!(event = %e, "edits of earlier messages are not answered")
                    }
                    Ignored::Stranger(sender) => {
                        tracing::info!(room = %room_id, %sender, "ignored a message from a sender who is not allowed")
                    }
                }
                return Ok(None);
            }
        };
        let direct = is_direct(room).await;
        tracing::debug!(room = %room_id, direct, "message");
        let (body, too_old, stale) = match route(&m, direct, &self.settings.bot_id, initial) {
            Route::NotAddressed => {
                tracing::debug!(room = %room_id, "group message without a mention: not answered");
                return Ok(None);
            }
            Route::TrustCommand { body, too_old } => (body, Some(too_old), false),
            Route::Answer { body, stale } => (body, None, stale),
        };
        self.trust.audit.record(
            crate::vocab::AuditKind::MessageIn,
            &m.sender,
            serde_json::json!({
                "room": room_id, "event": m.event_id.as_str(),
                "bytes": body.len(), "sha256": sha256_hex(body.as_bytes()),
            }),
        );
        if let Some(too_old) = too_old {
            let first = self.journal.record_handled(
                m.event_id.as_str(),
                room_id,
                &m.sender,
                &body,
                m.origin_ts,
            )?;
            if first && too_old {
                tracing::warn!(event = %m.event_id, age_s = m.age_ms / 1000, "an old approval or stop command does nothing");
                self.trust.audit.record(
                    crate::vocab::AuditKind::ApprovalIgnored,
                    &m.sender,
                    serde_json::json!({"room": room_id, "event": m.event_id.as_str(), "why": "too old"}),
                );
            } else if first {
                let reply = self.trust_command(room, &m.sender, body.trim(), verified);
                self.notice(room, &reply).await;
            }
            return Ok(None);
        }
        if stale {
            tracing::info!(event = %m.event_id, "an old message in the first sync: recorded, not answered");
        }
        let new = self.journal.record(&NewMessage {
            event_id: m.event_id.as_str(),
            room_id,
            sender: &m.sender,
            body: &body,
            origin_ts: m.origin_ts,
            skip: stale,
        })?;
        Ok((new && !stale).then_some(m.event_id))
    }
}

/// Up to 50 timeline events per room and sync (Synapse's default is 10);
/// a longer gap is fetched with `/messages`.
fn sync_filter() -> matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter {
    let mut def = matrix_sdk::ruma::api::client::filter::FilterDefinition::default();
    def.room.timeline.limit = Some(50u32.into());
    matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter::FilterDefinition(def)
}
