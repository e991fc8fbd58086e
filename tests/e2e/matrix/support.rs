//! What the Matrix tests share: `hermit up` in a data directory of its own,
//! matrix-sdk clients acting as people, and waits on what they see.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::EncryptionInfo;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
};
use matrix_sdk::ruma::{OwnedEventId, OwnedUserId, UserId};
use matrix_sdk::{Client, Room};

pub const TIMEOUT: Duration = Duration::from_secs(240);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hermit up` in a data directory of its own.
pub struct Daemon {
    pub child: Option<Child>,
    pub data: PathBuf,
    pub port: u16,
}

impl Daemon {
    /// With settings of its own (`HERMIT_*` variables) over the tests'.
    pub fn start_with(data: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("log"))
            .unwrap();
        let child = common::hermit()
            .arg("up")
            .env("HERMIT_DATA", data)
            .env("HERMIT_HOMESERVER__PORT", port.to_string())
            .env("HERMIT_INFERENCE__MODEL", common::SMALL_MODEL)
            .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "200")
            .env("HERMIT_AGENT__TOOLS", "false")
            .env(
                "HERMIT_LOG",
                "info,hermit=debug,matrix_sdk=warn,matrix_sdk_crypto=warn",
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("hermit up starts");
        let mut d = Self {
            child: Some(child),
            data: data.to_path_buf(),
            port,
        };
        d.wait_ready();
        d
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default()
    }

    /// Ready when the control socket answers.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "hermit up exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if std::os::unix::net::UnixStream::connect(self.data.join("hermit.sock")).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hermit up not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        // Synapse gets SIGTERM from the kernel when its parent dies; wait
        // until the port is free again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "Synapse outlived hermit");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn secret(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.join("secrets").join(name))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data.join("hermit.db")).unwrap()
    }

    /// (status, reply) of the journal's row for an event. The reply's
    /// words are where Hermit keeps them: in the journal when Hermit said
    /// them itself (a command's answer), else in memory, at the rows the
    /// journal points to.
    pub fn journal(&self, event: &OwnedEventId) -> Option<(String, Option<String>)> {
        let db = self.db();
        let (status, reply, rows): (String, Option<String>, Option<String>) = db
            .query_row(
                "SELECT status, reply, reply_rows FROM matrix_events WHERE event_id = ?1",
                [event.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok()?;
        let rows: Vec<i64> = rows
            .map(|r| serde_json::from_str(&r).unwrap())
            .unwrap_or_default();
        if rows.is_empty() {
            return Some((status, reply));
        }
        let mut parts: Vec<String> = reply.into_iter().collect();
        for row in rows {
            parts.push(
                db.query_row("SELECT body FROM messages WHERE id = ?1", [row], |r| {
                    r.get(0)
                })
                .expect("a reply's row in memory"),
            );
        }
        Some((status, Some(parts.join("\n\n"))))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: hermit stops Synapse on its way out.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A message the user's client saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: OwnedEventId,
    pub sender: OwnedUserId,
    pub body: String,
    pub encrypted: bool,
    pub reply_to: Option<OwnedEventId>,
    /// For an edit: the message it replaces and its new body.
    pub replaces: Option<(OwnedEventId, String)>,
}

/// A matrix-sdk client acting as a person, syncing in the background.
pub struct Person {
    pub client: Client,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub _store: tempfile::TempDir,
}

impl Person {
    pub async fn login(url: &str, user: &str, password: &str) -> Self {
        let store = tempfile::tempdir().unwrap();
        let client = Client::builder()
            .homeserver_url(url)
            .sqlite_store(store.path(), None)
            .build()
            .await
            .unwrap();
        client
            .matrix_auth()
            .login_username(user, password)
            .send()
            .await
            .expect("login");
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let log = seen.clone();
        client.add_event_handler(
            move |ev: OriginalSyncRoomMessageEvent, enc: Option<EncryptionInfo>| {
                let log = log.clone();
                async move {
                    let body = match &ev.content.msgtype {
                        MessageType::Text(t) => t.body.clone(),
                        MessageType::Notice(t) => t.body.clone(),
                        _ => String::new(),
                    };
                    let (reply_to, replaces) = match &ev.content.relates_to {
                        Some(Relation::Reply(r)) => (Some(r.in_reply_to.event_id.clone()), None),
                        Some(Relation::Replacement(r)) => {
                            let new = match &r.new_content.msgtype {
                                MessageType::Text(t) => t.body.clone(),
                                _ => String::new(),
                            };
                            (None, Some((r.event_id.clone(), new)))
                        }
                        _ => (None, None),
                    };
                    log.lock().unwrap().push(Seen {
                        id: ev.event_id.clone(),
                        sender: ev.sender.clone(),
                        body,
                        encrypted: enc.is_some(),
                        reply_to,
                        replaces,
                    });
                }
            },
        );
        client.sync_once(SyncSettings::default()).await.unwrap();
        let c = client.clone();
        // `sync` returns on an error (Synapse restarting): sync again.
        tokio::spawn(async move {
            loop {
                let _ = c
                    .sync(SyncSettings::default().timeout(Duration::from_secs(5)))
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Self {
            client,
            seen,
            _store: store,
        }
    }

    /// Waits until `f` finds something in what was seen.
    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&[Seen]) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // A copy: `f` may look at `self.seen` itself.
            let seen = self.seen.lock().unwrap().clone();
            if let Some(t) = f(&seen) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:#?}",
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The bot's reply messages (not edits) to `question`.
    pub fn replies_to(&self, question: &OwnedEventId, bot: &UserId) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.sender == bot && s.reply_to.as_ref() == Some(question))
            .cloned()
            .collect()
    }

    /// The latest body of message `id` (its last edit, or itself).
    pub fn latest(&self, id: &OwnedEventId) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .rev()
            .find_map(|s| match &s.replaces {
                Some((orig, body)) if orig == id => Some(body.clone()),
                _ => None,
            })
            .or_else(|| seen.iter().find(|s| &s.id == id).map(|s| s.body.clone()))
    }
}

/// Another account on the daemon's homeserver (registered with the shared
/// secret, as `hermit up` registers its own).
pub async fn register(daemon: &Daemon, name: &'static str, password: &'static str) {
    let shared = daemon.secret("synapse-registration");
    let url = daemon.url();
    tokio::task::spawn_blocking(move || {
        hermit::homeserver::register(&url, &shared, name, password, false)
    })
    .await
    .unwrap()
    .unwrap();
}

/// A group room of the owner's with the bot (joined) and a third person
/// (invited): with two members a room counts as a direct chat.
pub async fn group_room(owner: &Person, bot: &UserId, third: &UserId) -> Room {
    let group = owner
        .client
        .create_room(matrix_sdk::ruma::api::client::room::create_room::v3::Request::new())
        .await
        .unwrap();
    group.invite_user_by_id(bot).await.unwrap();
    group.invite_user_by_id(third).await.unwrap();
    wait_joined(&group, bot).await;
    group
}

pub async fn wait_joined(room: &Room, user: &UserId) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(m)) = room.get_member(user).await
            && *m.membership() == MembershipState::Join
        {
            return;
        }
        assert!(Instant::now() < deadline, "{user} did not join");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the journal says the event was answered; returns the reply.
pub async fn wait_answered(daemon: &Daemon, event: &OwnedEventId) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some((status, reply)) = daemon.journal(event) {
            if status == "answered" {
                return reply.unwrap_or_default();
            }
            assert_ne!(status, "failed", "answer failed:\n{}", daemon.log());
        }
        assert!(Instant::now() < deadline, "no answer:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the request asked in answer to `event` to be settled: what
/// came of it (the approved call's follow-up, or why it did not run) is
/// added to that answer in the journal. Returns what was added.
pub async fn wait_settled(daemon: &Daemon, event: &OwnedEventId) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some((status, Some(reply))) = daemon.journal(event)
            && status == "answered"
            && let Some((_, after)) = reply.split_once("ask me anything else.\n\n")
        {
            return after.to_string();
        }
        assert!(Instant::now() < deadline, "not settled:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn send_text(room: &Room, text: &str) -> OwnedEventId {
    room.send(RoomMessageEventContent::text_plain(text))
        .await
        .expect("message sent")
        .response
        .event_id
}

/// How many messages (not edits) of the bot contain `needle`, if any.
pub fn bot_said(bot: &UserId, needle: &'static str) -> impl Fn(&[Seen]) -> Option<usize> {
    let bot = bot.to_owned();
    move |seen: &[Seen]| {
        let n = seen
            .iter()
            .filter(|s| s.sender == bot && s.body.contains(needle) && s.replaces.is_none())
            .count();
        (n > 0).then_some(n)
    }
}

/// The text after `code \`` in an approval request.
pub fn approval_code(body: &str) -> String {
    let start = body.find("code `").expect("the request shows a code") + 6;
    body[start..].split('`').next().unwrap().to_string()
}

pub async fn react(room: &Room, to: &OwnedEventId, key: &str) {
    use matrix_sdk::ruma::events::reaction::ReactionEventContent;
    use matrix_sdk::ruma::events::relation::Annotation;
    room.send(ReactionEventContent::new(Annotation::new(
        to.clone(),
        key.to_string(),
    )))
    .await
    .expect("reaction sent");
}

/// `hermit up` with the default model and its tools, plus `extra` settings.
pub fn start_with_tools(data: &Path, extra: &[(&str, &str)]) -> Daemon {
    common::model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let mut env = vec![
        ("HERMIT_INFERENCE__MODEL", common::DEFAULT_MODEL),
        ("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "300"),
        ("HERMIT_AGENT__TOOLS", "true"),
    ];
    env.extend_from_slice(extra);
    Daemon::start_with(data, free_port(), &env)
}

/// Waits for the bot's approval request among what `person` saw.
pub async fn approval_request(person: &Person, bot: &UserId, needle: &str) -> Seen {
    person
        .wait_for("an approval request", |seen| {
            seen.iter()
                .find(|s| {
                    s.sender == bot && s.body.contains("Approval needed") && s.body.contains(needle)
                })
                .cloned()
        })
        .await
}
