//! The Matrix channel against a real Synapse and the real model: `hermit up`
//! runs the homeserver (managed, on a free loopback port, in a temporary data
//! directory) and the bot; a second matrix-sdk client logs in as the owner
//! with the password `hermit up` generated. No part of Matrix is mocked.

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

const TIMEOUT: Duration = Duration::from_secs(240);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hermit up` in a data directory of its own.
struct Daemon {
    child: Option<Child>,
    data: PathBuf,
    port: u16,
}

impl Daemon {
    fn start(data: &Path, port: u16) -> Self {
        Self::start_with(data, port, &[])
    }

    /// With settings of its own (`HERMIT_*` variables) over the tests'.
    fn start_with(data: &Path, port: u16, env: &[(&str, &str)]) -> Self {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default()
    }

    /// Ready when the control socket answers.
    fn wait_ready(&mut self) {
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
    fn kill(&mut self) {
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

    fn secret(&self, name: &str) -> String {
        std::fs::read_to_string(self.data.join("secrets").join(name))
            .unwrap()
            .trim()
            .to_string()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data.join("hermit.db")).unwrap()
    }

    /// (status, reply) of the journal's row for an event.
    fn journal(&self, event: &OwnedEventId) -> Option<(String, Option<String>)> {
        self.db()
            .query_row(
                "SELECT status, reply FROM matrix_events WHERE event_id = ?1",
                [event.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
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
struct Seen {
    id: OwnedEventId,
    sender: OwnedUserId,
    body: String,
    encrypted: bool,
    reply_to: Option<OwnedEventId>,
    /// For an edit: the message it replaces and its new body.
    replaces: Option<(OwnedEventId, String)>,
}

/// A matrix-sdk client acting as a person, syncing in the background.
struct Person {
    client: Client,
    seen: Arc<Mutex<Vec<Seen>>>,
    _store: tempfile::TempDir,
}

impl Person {
    async fn login(url: &str, user: &str, password: &str) -> Self {
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
    async fn wait_for<T>(&self, what: &str, f: impl Fn(&[Seen]) -> Option<T>) -> T {
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
    fn replies_to(&self, question: &OwnedEventId, bot: &UserId) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.sender == bot && s.reply_to.as_ref() == Some(question))
            .cloned()
            .collect()
    }

    /// The latest body of message `id` (its last edit, or itself).
    fn latest(&self, id: &OwnedEventId) -> Option<String> {
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
async fn register(daemon: &Daemon, name: &'static str, password: &'static str) {
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
async fn group_room(owner: &Person, bot: &UserId, third: &UserId) -> Room {
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

async fn wait_joined(room: &Room, user: &UserId) {
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
async fn wait_answered(daemon: &Daemon, event: &OwnedEventId) -> String {
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

async fn send_text(room: &Room, text: &str) -> OwnedEventId {
    room.send(RoomMessageEventContent::text_plain(text))
        .await
        .expect("message sent")
        .response
        .event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_gets_a_streamed_encrypted_answer_and_strangers_get_nothing() {
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data, free_port());
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();

    // Secrets: private, and never in the log.
    for name in [
        "owner-password",
        "bot-password",
        "matrix-store-passphrase",
        "synapse-registration",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secrets").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        assert!(
            !daemon.log().contains(&daemon.secret(name)),
            "{name} leaked into the log"
        );
    }
    let yaml = std::fs::read_to_string(data.join("synapse/homeserver.yaml")).unwrap();
    assert!(
        yaml.contains("\"bind_addresses\": [\n        \"127.0.0.1\"") || yaml.contains("127.0.0.1")
    );
    assert!(yaml.contains("\"enable_registration\": false"));
    assert!(yaml.contains("\"federation_domain_whitelist\": []"));

    // The owner: an encrypted direct chat with the bot.
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.expect("DM created");
    wait_joined(&room, &bot).await;
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());
    // The bot made cross-signing keys, and signed its device with them, so
    // clients can verify it.
    let identity = owner
        .client
        .encryption()
        .request_user_identity(&bot)
        .await
        .unwrap();
    assert!(identity.is_some(), "the bot has no cross-signing identity");
    let device = std::fs::read_to_string(data.join("matrix/session.json")).unwrap();
    let device: serde_json::Value = serde_json::from_str(&device).unwrap();
    let device_id: matrix_sdk::ruma::OwnedDeviceId = device["device_id"].as_str().unwrap().into();
    let bot_device = owner
        .client
        .encryption()
        .get_device(&bot, &device_id)
        .await
        .unwrap()
        .expect("the bot's device is known");
    assert!(
        bot_device.is_cross_signed_by_owner(),
        "the bot's device is not cross-signed"
    );
    let question = send_text(&room, "What is the capital of France?").await;
    let reply = wait_answered(&daemon, &question).await;
    assert!(!reply.trim().is_empty());
    let first = owner
        .wait_for("the bot's reply", |seen| {
            seen.iter()
                .find(|s| s.sender == bot && s.reply_to.as_ref() == Some(&question))
                .cloned()
        })
        .await;
    assert!(first.encrypted, "the reply was not encrypted");
    // Streamed: the first message is sent while the answer is being written,
    // and the final edit holds the whole answer.
    let final_body = owner
        .wait_for("the final edit", |_| {
            owner.latest(&first.id).filter(|b| b.trim() == reply.trim())
        })
        .await;
    assert_eq!(final_body.trim(), reply.trim());
    assert_ne!(
        first.body.trim(),
        reply.trim(),
        "the first message already held the whole answer: not streamed"
    );
    assert_eq!(owner.replies_to(&question, &bot).len(), 1);

    // Commands.
    let help = send_text(&room, "!status").await;
    let status = wait_answered(&daemon, &help).await;
    assert!(
        status.contains(common::SMALL_MODEL) || status.contains("Model"),
        "{status}"
    );

    // A stranger: an account on the same server, not allowed.
    register(&daemon, "stranger", "stranger-password-1").await;
    // Bad input gets a short answer without the model, and the bot goes on.
    let long = send_text(&room, &"word ".repeat(5000)).await;
    let answer = wait_answered(&daemon, &long).await;
    assert!(answer.contains("too long"), "{answer}");
    let image = room
        .send(RoomMessageEventContent::new(MessageType::Image(
            matrix_sdk::ruma::events::room::message::ImageMessageEventContent::plain(
                "cat.png".into(),
                "mxc://hermit.local/nothing".into(),
            ),
        )))
        .await
        .unwrap()
        .response
        .event_id;
    let answer = wait_answered(&daemon, &image).await;
    assert!(answer.contains("only read text"), "{answer}");
    let new = send_text(&room, "!new").await;
    assert!(
        wait_answered(&daemon, &new)
            .await
            .contains("fresh conversation")
    );

    // A group room: answered only when mentioned; removed from it, the bot
    // notes it and goes on.
    let third: OwnedUserId = "@stranger:hermit.local".try_into().unwrap();
    let group = group_room(&owner, &bot, &third).await;
    let unmentioned = send_text(&group, "Just talking among ourselves.").await;
    let mentioned = send_text(&group, "hermit: what is one plus one?").await;
    wait_answered(&daemon, &mentioned).await;
    assert!(
        daemon.journal(&unmentioned).is_none(),
        "answered without a mention:\n{}",
        daemon.log()
    );
    // An event the bot cannot decrypt (a megolm session it never received):
    // kept in the journal to retry as keys arrive; the bot goes on.
    let utd = group
        .send_raw(
            "m.room.encrypted",
            serde_json::json!({
                "algorithm": "m.megolm.v1.aes-sha2",
                "sender_key": "W3ZkX0Wx2dWzTqQ5r8cO1ihUzF3DqYl6lH5nPm8Xv1s",
                "session_id": "t3SjVw0pYdMxAz5iLk2Qf8NcUoHb7RgEe9Z1JyWq4Xo",
                "device_id": "NOSUCHDEVICE",
                "ciphertext": "AwgAEnAC8cQfEn0lgAQ1dJ6S3m2b8ydQUmB7c3ZpR5Ne1nRbD0RSk3YhVfa5IaWcCJxGm7Lz"
            }),
        )
        .await
        .unwrap()
        .response
        .event_id;
    let deadline = Instant::now() + TIMEOUT;
    while daemon.journal(&utd).map(|(s, _)| s).as_deref() != Some("undecryptable") {
        assert!(
            Instant::now() < deadline,
            "undecryptable event not kept:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = send_text(&group, "hermit: and two plus two?").await;
    wait_answered(&daemon, &after).await;
    group.kick_user(&bot, None).await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !daemon.log().contains("removed from a room") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // `hermit status` and `hermit chat` go through the control socket.
    let out = common::hermit()
        .args(["status", "--json"])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["bot"], "@hermit:hermit.local");
    let out = common::run_with_stdin(
        {
            let mut c = common::hermit();
            c.arg("chat").env("HERMIT_DATA", &data);
            c
        },
        "Say hello.\n",
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(!common::stdout(&out).trim().is_empty());

    let stranger = Person::login(&daemon.url(), "stranger", "stranger-password-1").await;
    let sroom = stranger.client.create_dm(&bot).await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let _ = sroom.sync_members().await;
        if let Ok(Some(m)) = sroom.get_member(&bot).await
            && *m.membership() == MembershipState::Leave
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bot did not refuse the stranger's invite"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        stranger
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.sender != bot),
        "the bot said something to a stranger"
    );
    assert!(
        daemon.log().contains("refused an invite"),
        "{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_answer_it_answers_exactly_once_and_keeps_its_device() {
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let mut daemon = Daemon::start(&data, port);
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let session = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("matrix/session.json")).unwrap())
            .unwrap()
    };
    let device = session(&data)["device_id"].clone();
    assert!(device.is_string(), "{device}");

    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.unwrap();
    wait_joined(&room, &bot).await;
    let question = send_text(
        &room,
        "Write a long story about a lighthouse keeper and a storm, with many details.",
    )
    .await;
    // Killed once the answer has begun: recorded, partly sent, not finished.
    let first = owner
        .wait_for("the start of the answer", |seen| {
            seen.iter()
                .find(|s| s.sender == bot && s.reply_to.as_ref() == Some(&question))
                .cloned()
        })
        .await;
    assert_eq!(
        daemon.journal(&question).unwrap().0,
        "pending",
        "answered before the kill"
    );
    daemon.kill();

    let daemon = Daemon::start(&data, port);
    assert_eq!(session(&data)["device_id"], device, "the device changed");
    let reply = wait_answered(&daemon, &question).await;
    owner
        .wait_for("the final edit after the restart", |_| {
            owner.latest(&first.id).filter(|b| b.trim() == reply.trim())
        })
        .await;
    assert_eq!(
        owner.replies_to(&question, &bot).len(),
        1,
        "answered more than once: {:#?}",
        owner.seen.lock().unwrap()
    );
    let rows: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM matrix_events WHERE event_id = ?1",
            [question.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);

    // The same device decrypts what is sent after the restart.
    let again = send_text(&room, "Thank you. What is two plus two?").await;
    let reply = wait_answered(&daemon, &again).await;
    assert!(!reply.trim().is_empty());
    let r = owner
        .wait_for("the reply after the restart", |seen| {
            seen.iter()
                .find(|s| s.sender == bot && s.reply_to.as_ref() == Some(&again))
                .cloned()
        })
        .await;
    assert!(r.encrypted);
    assert!(!daemon.log().contains("cannot decrypt"), "{}", daemon.log());
}

#[test]
fn init_creates_accounts_once_and_secrets_stay_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port().to_string();
    let run = || {
        common::hermit()
            .arg("init")
            .env("HERMIT_DATA", &data)
            .env("HERMIT_HOMESERVER__PORT", &port)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", common::stderr(&first));
    let out = common::stdout(&first);
    assert!(out.contains(&format!("http://127.0.0.1:{port}")), "{out}");
    assert!(
        out.contains("@owner:hermit.local") && out.contains("owner-password"),
        "{out}"
    );
    let pw = std::fs::read_to_string(data.join("secrets/owner-password")).unwrap();
    assert!(!out.contains(pw.trim()), "the password itself was printed");
    let second = run();
    assert!(second.status.success(), "{}", common::stderr(&second));
    assert!(
        common::stdout(&second).contains("Nothing changed"),
        "{}",
        common::stdout(&second)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("secrets/owner-password")).unwrap(),
        pw
    );
    // Synapse was stopped again.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err());
}

#[test]
fn a_non_loopback_homeserver_without_tls_is_refused() {
    let out = common::hermit()
        .arg("init")
        .env("HERMIT_HOMESERVER__BIND", "0.0.0.0")
        .env("HERMIT_DATA", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("needs TLS"),
        "{}",
        common::stderr(&out)
    );
}

/// How many messages (not edits) of the bot contain `needle`, if any.
fn bot_said(bot: &UserId, needle: &'static str) -> impl Fn(&[Seen]) -> Option<usize> {
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
fn approval_code(body: &str) -> String {
    let start = body.find("code `").expect("the request shows a code") + 6;
    body[start..].split('`').next().unwrap().to_string()
}

async fn react(room: &Room, to: &OwnedEventId, key: &str) {
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
fn start_with_tools(data: &Path, extra: &[(&str, &str)]) -> Daemon {
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
async fn approval_request(person: &Person, bot: &UserId, needle: &str) -> Seen {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_stop_count_only_from_the_owner_in_the_room_of_the_request() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = start_with_tools(
        &data,
        &[
            ("HERMIT_MATRIX__MEMBERS", r#"["@alice:hermit.local"]"#),
            // Members may write when the owner approves.
            ("HERMIT_POLICY__MEMBER__WRITE", "ask"),
        ],
    );
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let alice_id: OwnedUserId = "@alice:hermit.local".try_into().unwrap();
    let shared = daemon.secret("synapse-registration");
    let url = daemon.url();
    tokio::task::spawn_blocking(move || {
        hermit::homeserver::register(&url, &shared, "alice", "alice-password-1", false)
    })
    .await
    .unwrap()
    .unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let alice = Person::login(&daemon.url(), "alice", "alice-password-1").await;
    let room = owner.client.create_dm(&bot).await.expect("DM created");
    wait_joined(&room, &bot).await;
    room.invite_user_by_id(&alice_id).await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let alice_room = loop {
        if let Ok(r) = alice.client.join_room_by_id(room.room_id()).await {
            break r;
        }
        assert!(Instant::now() < deadline, "alice cannot join");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    wait_joined(&room, &alice_id).await;

    let ask = send_text(&room, "Create a file hello.txt containing the word hi.").await;
    let request = approval_request(&owner, &bot, "").await;
    assert!(request.encrypted);
    assert!(request.body.contains("write_file"), "{}", request.body);
    assert!(request.body.contains("hello.txt"), "{}", request.body);
    let code = approval_code(&request.body);
    let bot_says = |needle: &'static str| {
        let bot = bot.clone();
        move |seen: &[Seen]| {
            seen.iter()
                .find(|s| s.sender == bot && s.body.contains(needle))
                .cloned()
        }
    };
    // Not the owner: a member's ✅ and `!approve` do nothing.
    react(&alice_room, &request.id, "✅").await;
    send_text(&alice_room, &format!("!approve {code}")).await;
    // A wrong code from the owner does nothing either.
    let wrong = send_text(&room, "!approve ZZZZZZ").await;
    owner
        .wait_for(
            "the refusal of a wrong code",
            bot_says("no request with the code ZZZZZZ"),
        )
        .await;
    // Nor does editing that message into the right code.
    {
        use matrix_sdk::ruma::events::room::message::{
            ReplacementMetadata, RoomMessageEventContentWithoutRelation,
        };
        room.send(
            RoomMessageEventContentWithoutRelation::text_plain(format!("!approve {code}"))
                .make_replacement(ReplacementMetadata::new(wrong.clone(), None)),
        )
        .await
        .unwrap();
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let n: i64 = daemon
            .db()
            .query_row(
                "SELECT count(*) FROM audit WHERE kind = 'approval.ignored' AND data LIKE '%edited message%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit was not noticed:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refusals = owner
        .wait_for("both refusals of alice", |seen| {
            let n = seen
                .iter()
                .filter(|s| {
                    s.sender == bot && s.body.contains("@alice:hermit.local is not the owner")
                })
                .count();
            (n >= 2).then_some(n)
        })
        .await;
    assert_eq!(refusals, 2);
    let file = data.join("workspace/hello.txt");
    assert!(!file.exists(), "written without the owner's approval");
    assert_eq!(daemon.journal(&ask).unwrap().0, "pending");

    // The owner's ✅: the call runs, once.
    react(&room, &request.id, "✅").await;
    let reply = wait_answered(&daemon, &ask).await;
    let written = std::fs::read_to_string(&file)
        .unwrap_or_else(|_| panic!("not written; reply {reply}\n{}", daemon.log()));
    assert!(written.to_lowercase().contains("hi"), "{written}");
    send_text(&room, &format!("!approve {code}")).await;
    owner
        .wait_for("the refusal of a used code", bot_says("is already used"))
        .await;

    // Stop: only from the owner; it holds new turns until resume.
    send_text(&alice_room, "!stop").await;
    owner
        .wait_for("alice's stop refused", bot_says("Only the owner can stop"))
        .await;
    send_text(&room, "!stop").await;
    owner.wait_for("the stop", bot_says("**Stopped.**")).await;
    let held = send_text(&room, "What is two plus two?").await;
    let answer = wait_answered(&daemon, &held).await;
    assert!(answer.contains("I am stopped"), "{answer}");
    send_text(&room, "!resume").await;
    owner.wait_for("the resume", bot_says("Resumed")).await;

    // The same switch from the box, through the control socket.
    let cli = |args: &[&str]| {
        common::hermit()
            .args(args)
            .env("HERMIT_DATA", &data)
            .output()
            .unwrap()
    };
    // A sandboxed tool process cannot use the control socket (it could
    // approve its own calls): the daemon drops its connection.
    let probe = format!(
        "import socket\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.connect({:?})\n\
         try:\n    s.sendall(b'{{\"op\": \"status\"}}\\n')\n    print('REPLY', s.recv(4096))\n\
         except OSError as e:\n    print('DROPPED', e)\n",
        data.join("hermit.sock").display().to_string()
    );
    let args = serde_json::json!({"path": "probe.py", "content": probe}).to_string();
    assert!(
        cli(&["tools", "run", "write_file", "--args", &args])
            .status
            .success()
    );
    let args = serde_json::json!({"command": "python3 probe.py"}).to_string();
    let out = cli(&["tools", "run", "shell", "--args", &args]);
    let said = common::stdout(&out);
    assert!(
        said.contains("REPLY b''") || said.contains("DROPPED"),
        "{said}{}",
        common::stderr(&out)
    );
    assert!(!said.contains("model"), "{said}");
    assert!(
        daemon
            .log()
            .contains("refused a control connection from another namespace")
    );
    let out = cli(&["stop-all"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stdout(&out).contains("halted"),
        "{}",
        common::stdout(&out)
    );
    let held = send_text(&room, "And three plus three?").await;
    assert!(wait_answered(&daemon, &held).await.contains("I am stopped"));
    assert!(cli(&["resume"]).status.success());
    let out = cli(&["approvals", "list", "--all", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == code.as_str())
        .expect("the first request is listed");
    assert_eq!(first["status"], "used");

    // A member's request, from the member's own direct chat, is posted in
    // the owner's room and decided there.
    let alice_dm = alice.client.create_dm(&bot).await.expect("alice's DM");
    wait_joined(&alice_dm, &bot).await;
    let asked = send_text(
        &alice_dm,
        "Create a file alice.txt containing the word hello.",
    )
    .await;
    let request = approval_request(&owner, &bot, "@alice:hermit.local").await;
    assert!(!data.join("workspace/alice.txt").exists());
    react(&room, &request.id, "✅").await;
    let reply = wait_answered(&daemon, &asked).await;
    assert!(
        data.join("workspace/alice.txt").exists(),
        "not written; reply {reply}\n{}",
        daemon.log()
    );

    // All of it is in the audit log, whose chain is whole.
    let out = common::hermit()
        .args(["audit", "verify"])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stdout(&out));
    let out = common::hermit()
        .args(["audit", "export", "--jsonl"])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    let entries: Vec<serde_json::Value> = common::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| entries.iter().filter(|e| e["kind"] == kind).count();
    assert!(count("approval.ignored") >= 4, "{entries:#?}");
    for kind in [
        "approval.request",
        "approval.approve",
        "approval.used",
        "stop",
        "resume",
        "stop.refused",
        "message.in",
        "message.out",
        "config",
        "start",
    ] {
        assert!(count(kind) >= 1, "no {kind} entry");
    }
    // Content is in the log only as a hash.
    assert!(!common::stdout(&out).contains("two plus two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verified_devices_required_an_unverified_device_cannot_approve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = start_with_tools(&data, &[("HERMIT_POLICY__REQUIRE_VERIFIED_DEVICE", "true")]);
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.expect("DM created");
    wait_joined(&room, &bot).await;
    let ask = send_text(&room, "Create a file hello.txt containing the word hi.").await;
    let request = approval_request(&owner, &bot, "").await;
    let code = approval_code(&request.body);
    // The owner's device was never verified by the bot: neither a ✅ nor
    // `!approve` from it counts.
    react(&room, &request.id, "✅").await;
    send_text(&room, &format!("!approve {code}")).await;
    let refusals = owner
        .wait_for("two refusals", |seen| {
            let n = seen
                .iter()
                .filter(|s| s.sender == bot && s.body.contains("verified devices"))
                .count();
            (n >= 2).then_some(n)
        })
        .await;
    assert_eq!(refusals, 2);
    let file = data.join("workspace/hello.txt");
    assert!(!file.exists());
    // At the box, the owner can still decide.
    let out = common::hermit()
        .args(["approvals", "approve", &code])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let reply = wait_answered(&daemon, &ask).await;
    assert!(
        file.exists(),
        "not written; reply {reply}\n{}",
        daemon.log()
    );
}

/// Memory through Matrix, with the real model: what the owner said comes
/// back in the owner's new conversation, and never in a member's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_memories_come_back_to_the_owner_and_never_to_a_member() {
    common::model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start_with(
        &data,
        free_port(),
        &[
            ("HERMIT_INFERENCE__MODEL", common::DEFAULT_MODEL),
            ("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "60"),
            ("HERMIT_MATRIX__MEMBERS", r#"["@alice:hermit.local"]"#),
            ("HERMIT_MEMORY__ENABLED", "true"),
        ],
    );
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let shared = daemon.secret("synapse-registration");
    let url = daemon.url();
    tokio::task::spawn_blocking(move || {
        hermit::homeserver::register(&url, &shared, "alice", "alice-password-1", false)
    })
    .await
    .unwrap()
    .unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let alice = Person::login(&daemon.url(), "alice", "alice-password-1").await;
    let room = owner.client.create_dm(&bot).await.expect("DM created");
    wait_joined(&room, &bot).await;
    let told = send_text(&room, "Note this: the code word for my locker is pelican.").await;
    wait_answered(&daemon, &told).await;

    // A new conversation of the owner's: recalled.
    let new = send_text(&room, "!new").await;
    wait_answered(&daemon, &new).await;
    let asked = send_text(&room, "What is the code word for my locker?").await;
    let reply = wait_answered(&daemon, &asked).await;
    assert!(reply.to_lowercase().contains("pelican"), "owner: {reply}");

    // The member asks the same: nothing of the owner's is recalled.
    let alice_dm = alice.client.create_dm(&bot).await.expect("alice's DM");
    wait_joined(&alice_dm, &bot).await;
    let asked = send_text(&alice_dm, "What is the code word for the locker?").await;
    let reply = wait_answered(&daemon, &asked).await;
    assert!(!reply.to_lowercase().contains("pelican"), "alice: {reply}");
    // And her words are hers in hermit.db.
    let db = hermit::db::open(&data.join("hermit.db")).unwrap();
    let principals: Vec<String> = db
        .prepare("SELECT DISTINCT principal FROM messages ORDER BY principal")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(principals, ["@alice:hermit.local", "owner"]);
    let out = common::hermit()
        .args([
            "memory",
            "search",
            "pelican",
            "--principal",
            "@alice:hermit.local",
        ])
        .env("HERMIT_DATA", &data)
        .env("HERMIT_MEMORY__ENABLED", "true")
        .output()
        .unwrap();
    assert!(
        !common::stdout(&out).contains("pelican"),
        "{}",
        common::stdout(&out)
    );
}

/// A reminder is delivered in the owner's room at its time, once; one that
/// fell due while the box was off is delivered once after the restart,
/// saying it is late; the daemon asked no model for either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_arrive_on_time_and_after_downtime_once() {
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let tz = [("HERMIT_AGENT__TIMEZONE", "UTC")];
    let mut daemon = Daemon::start_with(&data, port, &tz);
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.unwrap();
    wait_joined(&room, &bot).await;
    let hello = send_text(&room, "!help").await;
    wait_answered(&daemon, &hello).await;

    let add = |text: &str, secs: i64| {
        let at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let out = common::hermit()
            .args(["reminders", "add", text, "--at", &at])
            .env("HERMIT_DATA", &data)
            .env("HERMIT_AGENT__TIMEZONE", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", common::stderr(&out));
    };
    add("call mum", 3);
    let bot_said = |needle: &'static str| bot_said(&bot, needle);
    owner
        .wait_for("the reminder", bot_said("⏰ Reminder: call mum"))
        .await;
    // The same from Matrix, with `!remind`.
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let set = send_text(&room, &format!("!remind {at} stretch")).await;
    let said = wait_answered(&daemon, &set).await;
    assert!(said.starts_with("I'll remind you on "), "{said}");
    owner
        .wait_for("the !remind reminder", bot_said("⏰ Reminder: stretch"))
        .await;
    let listed = send_text(&room, "!reminders").await;
    assert_eq!(
        wait_answered(&daemon, &listed).await,
        "You have no reminders."
    );

    // Due in 30 s, but the box is off for an hour (the clock is moved).
    add("water the plants", 30);
    daemon.kill();
    let daemon = Daemon::start_with(
        &data,
        port,
        &[
            ("HERMIT_AGENT__TIMEZONE", "UTC"),
            ("HERMIT_CLOCK_OFFSET_SECONDS", "3600"),
        ],
    );
    owner
        .wait_for(
            "the late reminder",
            bot_said("Missed while the box was off (due "),
        )
        .await;
    // A little later, still once each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = owner.seen.lock().unwrap().clone();
    assert_eq!(bot_said("Reminder: call mum")(&seen), Some(1), "{seen:?}");
    assert_eq!(bot_said("Reminder: stretch")(&seen), Some(1), "{seen:?}");
    assert_eq!(bot_said("water the plants")(&seen), Some(1), "{seen:?}");
    let out = common::hermit()
        .args(["reminders", "list", "--all", "--json"])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "done" && r["fired_count"] == 1),
        "{list}"
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn briefing_and_scheduled_tasks_run_on_time_and_the_idle_daemon_calls_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Hermit's day is moved to 10:00 UTC, so that "today at 18:00" and the
    // briefing's minute fall today whenever the test runs; always ahead (the
    // next 10:00 at least an hour away), so the test also proves that
    // approvals are timed against the homeserver's clock, not the moved one
    // (a `!deny` below would otherwise look hours old and do nothing).
    let utc = jiff::tz::TimeZone::UTC;
    let mut base = jiff::Timestamp::now()
        .to_zoned(utc.clone())
        .start_of_day()
        .unwrap()
        .checked_add(jiff::Span::new().hours(10))
        .unwrap();
    if base.timestamp().as_second() - jiff::Timestamp::now().as_second() < 3600 {
        base = base.checked_add(jiff::Span::new().days(1)).unwrap();
    }
    let offset = base.timestamp().as_second() - jiff::Timestamp::now().as_second();
    let offset_s = offset.to_string();
    let env = [
        ("HERMIT_AGENT__TIMEZONE", "UTC"),
        ("HERMIT_CLOCK_OFFSET_SECONDS", offset_s.as_str()),
    ];
    let daemon = start_with_tools(&data, &env);
    let hermit_now = || {
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(offset))
            .unwrap()
    };
    let cli = |args: &[&str]| {
        common::hermit()
            .args(args)
            .env("HERMIT_DATA", &data)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let model_calls = || {
        let out = cli(&["status", "--json"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["model_calls"].as_u64().expect("status gives model_calls")
    };
    let remind_in = |text: &str, secs: i64| {
        let at = hermit_now()
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let out = cli(&["reminders", "add", text, "--at", &at]);
        assert!(out.status.success(), "{}", common::stderr(&out));
    };
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.unwrap();
    wait_joined(&room, &bot).await;
    let bot_said = |needle: &'static str| bot_said(&bot, needle);

    // Idle: a reminder delivered and commands answered, no model call.
    remind_in("stretch", 3);
    owner
        .wait_for("the reminder", bot_said("⏰ Reminder: stretch"))
        .await;
    let mut said = Vec::new();
    for cmd in [
        "!remind today at 18:00 call mum",
        "!watch the parcel from Lyon",
        "!reminders",
    ] {
        let e = send_text(&room, cmd).await;
        said.push(wait_answered(&daemon, &e).await);
    }
    assert!(said[0].starts_with("I'll remind you on "), "{said:?}");
    assert!(said[0].contains("at 18:00: call mum"), "{said:?}");
    assert!(
        said[1].starts_with("Watching: the parcel from Lyon"),
        "{said:?}"
    );
    assert!(
        said[2].contains("watching: the parcel from Lyon"),
        "{said:?}"
    );
    assert_eq!(model_calls(), 0, "the idle daemon asked the model");

    // The briefing at the next whole minute at least 30 s ahead.
    let t = hermit_now()
        .checked_add(jiff::SignedDuration::from_secs(90))
        .unwrap()
        .to_zoned(utc.clone());
    let hm = t.strftime("%H:%M").to_string();
    let e = send_text(&room, &format!("!briefing {hm}")).await;
    let on = wait_answered(&daemon, &e).await;
    assert!(on.starts_with("Morning briefing on"), "{on}");
    assert!(on.contains(&hm), "{on}");

    // Two tasks due in 2 seconds: one granted `write` when it was created,
    // one not (it asks the owner, who denies).
    for (file, grant) in [("granted.txt", Some("write")), ("asked.txt", None)] {
        let mut args = serde_json::json!({
            "prompt": format!("Create a file {file} containing the word hi."),
            "when": "in 2 seconds",
        });
        if let Some(g) = grant {
            args["grant"] = g.into();
        }
        let out = cli(&["tools", "run", "schedule_task", "--args", &args.to_string()]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(
            common::stdout(&out).contains("Scheduled "),
            "{}",
            common::stdout(&out)
        );
    }
    let request = approval_request(&owner, &bot, "asked.txt").await;
    assert!(request.body.contains("scheduled task"), "{}", request.body);
    send_text(&room, &format!("!deny {}", approval_code(&request.body))).await;
    owner
        .wait_for("both tasks' results", |seen: &[Seen]| {
            bot_said("🗓️ Scheduled task")(seen).filter(|&n| n >= 2)
        })
        .await;
    assert_eq!(
        std::fs::read_to_string(data.join("workspace/granted.txt"))
            .unwrap_or_default()
            .trim(),
        "hi",
        "the granted task wrote its file without asking"
    );
    assert!(!data.join("workspace/asked.txt").exists());
    let seen = owner.seen.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|s| s.body.contains("Approval needed") && s.body.contains("granted.txt")),
        "the granted task asked: {seen:?}"
    );

    // The briefing: the model's words, then the exact list.
    let briefing = owner
        .wait_for("the briefing", |seen: &[Seen]| {
            seen.iter()
                .find(|s| s.sender == bot && s.body.starts_with("☀️"))
                .cloned()
        })
        .await;
    let body = &briefing.body;
    eprintln!("the briefing:\n{body}");
    let (words, list) = body.split_once("\n---\n").expect("words, then the list");
    assert!(
        words.lines().skip(1).any(|l| l.trim().len() > 20),
        "the model wrote nothing: {body}"
    );
    assert!(list.contains("- 18:00 call mum"), "{body}");
    assert!(list.contains("the parcel from Lyon"), "{body}");
    assert!(!list.contains("stretch"), "delivered and past: {body}");

    // Idle again: the next reminder costs no model call.
    let calls = model_calls();
    assert!(
        calls >= 3,
        "the tasks and the briefing used the model: {calls}"
    );
    remind_in("drink water", 3);
    owner
        .wait_for("the second reminder", bot_said("⏰ Reminder: drink water"))
        .await;
    assert_eq!(model_calls(), calls, "an idle reminder asked the model");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_message_is_transcribed_quoted_kept_and_answered() {
    common::model_file("ggml-base.bin");
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start_with(&data, free_port(), &[]);
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.unwrap();
    wait_joined(&room, &bot).await;
    assert!(
        room.latest_encryption_state().await.unwrap().is_encrypted(),
        "the direct chat is encrypted"
    );
    let ogg = common::speech(tmp.path(), "voice", common::SENTENCE);
    // A voice message (MSC3245) into `room`, mentioning the bot or not.
    let voice_to = |room: &matrix_sdk::Room, bytes: Vec<u8>, mention: bool| {
        let room = room.clone();
        let mentions =
            mention.then(|| matrix_sdk::ruma::events::Mentions::with_user_ids([bot.clone()]));
        async move {
            use matrix_sdk::attachment::{AttachmentConfig, AttachmentInfo, BaseAudioInfo};
            let mime: mime::Mime = "audio/ogg".parse().unwrap();
            let info = AttachmentInfo::Voice(BaseAudioInfo {
                duration: Some(Duration::from_secs(5)),
                size: None,
                waveform: None,
            });
            room.send_attachment(
                "voice.ogg",
                &mime,
                bytes,
                AttachmentConfig::new().info(info).mentions(mentions),
            )
            .await
            .expect("voice message sent")
            .event_id
        }
    };
    let send_voice = |bytes: Vec<u8>| voice_to(&room, bytes, false);
    let voice = send_voice(std::fs::read(&ogg).unwrap()).await;
    let heard = owner
        .wait_for("the transcript", |seen: &[Seen]| {
            seen.iter()
                .find(|s| s.sender == bot && s.body.starts_with("🎙️ I heard:"))
                .cloned()
        })
        .await;
    assert!(heard.encrypted, "the transcript is sent encrypted");
    let text: String = heard
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .collect::<Vec<_>>()
        .join(" ");
    let w = common::wer(common::SENTENCE, &text);
    eprintln!("heard {text:?} (WER {w:.2})");
    assert!(w <= 0.3, "WER {w:.2}: {text:?}");
    // `hermit transcribe` on the very file sent hears the same.
    let out = common::hermit()
        .args(["transcribe", ogg.to_str().unwrap()])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), text);
    // Then answered like text.
    let answer = wait_answered(&daemon, &voice).await;
    assert!(!answer.trim().is_empty());
    // Kept: the transcript with the message, the journal in words.
    let db = hermit::db::open(&data.join("hermit.db")).unwrap();
    let (body, language): (String, String) = db
        .query_row(
            "SELECT body, language FROM transcripts WHERE event_id = ?1",
            [voice.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(body, text);
    assert_eq!(language, "en");
    let journal: String = db
        .query_row(
            "SELECT body FROM matrix_events WHERE event_id = ?1",
            [voice.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(journal, text);

    // Something claiming to be audio/ogg that is not: a clear reply, and
    // the daemon goes on.
    let fake = send_voice(b"this is a text file, not a voice message".to_vec()).await;
    let said = wait_answered(&daemon, &fake).await;
    assert!(
        said.starts_with("I could not listen to that voice message: this is not audio"),
        "{said}"
    );
    let after = send_text(&room, "!help").await;
    assert!(wait_answered(&daemon, &after).await.contains("Hermit"));

    // A group room: a voice note not addressed to Hermit is not even
    // transcribed; one that mentions it (as a reply to it does) is heard.
    register(&daemon, "friend", "friend-password-1").await;
    let friend: OwnedUserId = "@friend:hermit.local".try_into().unwrap();
    let group = group_room(&owner, &bot, &friend).await;
    let bytes = std::fs::read(&ogg).unwrap();
    let unaddressed = voice_to(&group, bytes.clone(), false).await;
    let addressed = voice_to(&group, bytes, true).await;
    assert!(!wait_answered(&daemon, &addressed).await.trim().is_empty());
    assert!(
        daemon.journal(&unaddressed).is_none(),
        "a voice note without a mention was handled:\n{}",
        daemon.log()
    );
    let heard_in_group: Vec<String> = db
        .prepare("SELECT event_id FROM transcripts WHERE room = ?1")
        .unwrap()
        .query_map([group.room_id().as_str()], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(heard_in_group, vec![addressed.to_string()]);
    drop(daemon);
}
