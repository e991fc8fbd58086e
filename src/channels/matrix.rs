//! The Matrix channel: the bot account, end-to-end encrypted, answering its
//! owner (and the members of `matrix.members`) from any Matrix client. A
//! thin adapter: Matrix events become text for the agent, and the agent's
//! replies (and what the scheduler sends, through [`Outbox`]) become
//! Matrix messages. It knows nothing of llama.cpp or of tools.
//!
//! - [`session`]: login (same device, same keys across restarts),
//!   cross-signing, the sync loop, invites, late decryption.
//! - [`inbound`]: an incoming event classified (who, direct or group,
//!   mention, trust command, age, text, voice or reaction), a pure
//!   function; then journaled, or acted on at once.
//! - [`answer`]: one worker per room answers its messages in order, with
//!   the room's own conversation, streaming the reply as edits.
//! - [`commands`]: `!help`, `!new`, `!status`, the reminder commands,
//!   `!stop` / `!resume`.
//! - [`approvals`]: requests posted, decided by reaction or command.
//! - [`outgoing`]: replies streamed and cut to fit, messages sent once.
//! - [`voice`]: voice messages transcribed and answered.
//! - [`journal`]: the journal in `hermit.db`, the channel's only SQL.
//!
//! Delivery is journaled: every incoming message is recorded before it is
//! answered, its reply's event ID when the first part of the reply is
//! sent, and the whole reply when the final edit is sent. The sync token
//! advances only once the events of that sync are recorded, so a crash
//! loses nothing, and a recorded event is answered only while it is
//! pending, so nothing is answered twice. The first part of a reply is sent
//! with a transaction ID derived from the event it answers: after a crash
//! between sending it and recording it, sending it again returns the same
//! event instead of a second message.

mod answer;
mod approvals;
mod commands;
mod inbound;
mod journal;
mod outgoing;
mod session;
mod voice;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room};
use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::config::Config;
use crate::proactive::{Outbound, Outbox, Place};
use crate::trust::Trust;
use journal::Journal;

/// The channel's name in conversation keys ("matrix:!room:box:0").
const CHANNEL: &str = "matrix";

/// What the bot needs from the configuration.
#[derive(Debug, Clone)]
pub struct BotSettings {
    pub homeserver_url: String,
    pub bot_id: String,
    pub owner_id: String,
    pub members: Vec<String>,
    pub max_message_bytes: usize,
    pub edit_interval: Duration,
    pub max_edits: u32,
    pub system_prompt: String,
    /// The owner's timezone (IANA name; empty: the machine's), for `!remind`.
    pub timezone: String,
    /// `<data_dir>/matrix`: the SDK's stores and the session.
    pub dir: PathBuf,
    pub db_path: PathBuf,
}

impl BotSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            homeserver_url: config.homeserver.client_url(),
            bot_id: config.bot_id(),
            owner_id: config.owner_id(),
            members: config.matrix.members.clone(),
            max_message_bytes: config.matrix.max_message_bytes,
            edit_interval: Duration::from_millis(config.matrix.edit_interval_ms),
            max_edits: config.matrix.max_edits,
            system_prompt: config.agent.system_prompt.clone(),
            timezone: config.agent.timezone.clone(),
            dir: config.data_dir().join("matrix"),
            db_path: config.data_dir().join("hermit.db"),
        }
    }
}

/// What a room's worker does, in order.
#[derive(Debug)]
enum Work {
    /// Answer a message (an event ID in the journal).
    Message(OwnedEventId),
    /// A request asked in this room was decided: settle it.
    Decided(String, Asked),
}

/// Where a request was asked.
#[derive(Debug, Clone)]
struct Asked {
    room: OwnedRoomId,
    /// The message whose turn asked.
    event: OwnedEventId,
}

/// The running bot, shared by its tasks.
pub struct Bot {
    client: Client,
    settings: BotSettings,
    agent: Arc<Agent>,
    trust: Arc<Trust>,
    journal: Journal,
    rooms: Mutex<HashMap<OwnedRoomId, mpsc::UnboundedSender<Work>>>,
    /// Requests turns asked the owner about without waiting, by code:
    /// settled in their room once decided ([`Bot::watch_decisions`]).
    deferred: Mutex<HashMap<String, Asked>>,
    started: Instant,
    /// The speech worker, when voice is on and its model present.
    voice: std::sync::OnceLock<Arc<crate::voice::Voice>>,
}

impl Bot {
    /// Voice messages are transcribed by `voice` from now on.
    pub fn set_voice(&self, voice: Arc<crate::voice::Voice>) {
        let _ = self.voice.set(voice);
    }

    pub fn system_prompt(&self) -> &str {
        &self.settings.system_prompt
    }

    pub fn device_id(&self) -> Option<String> {
        self.client.device_id().map(|d| d.to_string())
    }

    /// The exact user ID is the identity: the owner or a member.
    fn allowed(&self, user: &str) -> bool {
        self.trust.principals.of(user).is_some()
    }

    /// Hands an event to its room's worker (starting it if needed).
    fn dispatch(self: &Arc<Self>, room: OwnedRoomId, event: OwnedEventId) {
        self.dispatch_work(room, Work::Message(event));
    }

    /// Hands work to a room's worker (starting it if needed).
    fn dispatch_work(self: &Arc<Self>, room: OwnedRoomId, work: Work) {
        let mut rooms = self.rooms.lock().unwrap();
        let tx = rooms.entry(room.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let bot = self.clone();
            tokio::spawn(async move { bot.room_worker(room, rx).await });
            tx
        });
        let _ = tx.send(work);
    }

    /// Hands each request a turn asked about without waiting to its
    /// room's worker once it is decided: by a reaction or `!approve` in
    /// Matrix, `hermit approvals` at the box, a stop, or its expiry. (The
    /// database is read, so a decision by another process counts.)
    async fn watch_decisions(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let codes: Vec<String> = self.deferred.lock().unwrap().keys().cloned().collect();
            for code in codes {
                let decided = self
                    .trust
                    .approvals
                    .get(&code)
                    .is_none_or(|r| r.status != "pending");
                if !decided {
                    continue;
                }
                let asked = self.deferred.lock().unwrap().remove(&code);
                if let Some(asked) = asked {
                    self.dispatch_work(asked.room.clone(), Work::Decided(code, asked));
                }
            }
        }
    }

    /// The owner's direct chat with the bot: a joined direct room where
    /// the owner is a member.
    pub(super) async fn owner_dm(&self) -> Option<Room> {
        let owner: OwnedUserId = self.trust.owner().try_into().ok()?;
        for room in self.client.joined_rooms() {
            if !room.is_direct().await.unwrap_or(false) {
                continue;
            }
            if let Ok(Some(m)) = room.get_member_no_sync(&owner).await
                && *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
            {
                return Some(room);
            }
        }
        None
    }

    pub(super) fn reminder_store(
        &self,
    ) -> Result<crate::reminders::Reminders, crate::reminders::ReminderError> {
        crate::reminders::Reminders::open(
            self.settings
                .db_path
                .parent()
                .unwrap_or(std::path::Path::new(".")),
        )
    }

    /// The room where `principal` (a principal key) last wrote to the bot.
    fn room_for(&self, principal: &str) -> Option<OwnedRoomId> {
        let sender = if principal == crate::vocab::OWNER {
            self.settings.owner_id.as_str()
        } else {
            principal
        };
        self.journal
            .last_room_of(sender)
            .and_then(|r| OwnedRoomId::try_from(r).ok())
    }

    fn joined(&self, place: &Place) -> anyhow::Result<Room> {
        let id = OwnedRoomId::try_from(place.id.as_str())
            .with_context(|| format!("{} is not a room", place.id))?;
        self.client
            .get_room(&id)
            .with_context(|| format!("the bot is not in {id}"))
    }
}

/// What the scheduler ([`crate::proactive`]) sends goes to rooms.
impl Outbox for Bot {
    /// Its own room, else where its person last wrote to the bot, else
    /// (the owner's) the owner's direct chat.
    async fn place(&self, principal: &str, room: Option<&str>) -> Option<Place> {
        let room = room
            .and_then(|r| OwnedRoomId::try_from(r).ok())
            .or_else(|| self.room_for(principal))
            .and_then(|id| self.client.get_room(&id));
        let room = match room {
            None if principal == crate::vocab::OWNER => self.owner_dm().await,
            room => room,
        };
        room.map(|r| Place::new(CHANNEL, r.room_id().as_str()))
    }

    async fn send(&self, place: &Place, message: Outbound<'_>) -> anyhow::Result<String> {
        let room = self.joined(place)?;
        self.send_once(&room, message.text, message.format, message.key.to_string())
            .await
    }

    async fn ask_owner(&self, place: &Place, for_owner: bool, code: &str, text: &str) {
        match self.joined(place) {
            Ok(room) => {
                let target = self.approval_room(&room, for_owner).await;
                self.post_request(&target, code, text).await;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), %code, "cannot post an approval request; `hermit approvals` can still decide it")
            }
        }
    }
}
