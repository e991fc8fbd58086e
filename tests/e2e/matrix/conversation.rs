//! Talking to Hermit over Matrix: streamed encrypted answers, strangers
//! ignored, a crash mid-answer, the accounts `hermit init` makes.

use crate::common;
use std::path::Path;
use std::time::{Duration, Instant};

use matrix_sdk::ruma::OwnedUserId;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::events::room::message::{MessageType, RoomMessageEventContent};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_gets_a_streamed_encrypted_answer_and_strangers_get_nothing() {
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // As at a first boot: the prompt cache is filled in the background.
    let daemon = Daemon::start_with(
        &data,
        free_port(),
        &[("HERMIT_INFERENCE__WARM_PROMPT_CACHE", "true")],
    );
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
    // The prompt cache was warmed at start, whatever came meanwhile.
    assert!(
        daemon.log().contains("prompt cache warm"),
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
    // Memory on (full text only): after the restart the room's
    // conversation comes back from it.
    let memory = [
        ("HERMIT_MEMORY__ENABLED", "true"),
        ("HERMIT_MEMORY__EMBEDDINGS", "false"),
    ];
    let mut daemon = Daemon::start_with(&data, port, &memory);
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
    let hello = send_text(&room, "Hello!").await;
    assert!(!wait_answered(&daemon, &hello).await.trim().is_empty());
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

    let daemon = Daemon::start_with(&data, port, &memory);
    assert_eq!(session(&data)["device_id"], device, "the device changed");
    let reply = wait_answered(&daemon, &question).await;
    // The conversation came back from memory: the greeting and its answer
    // (the unfinished question is answered again, not restored).
    let log = daemon.log();
    let restored = log
        .lines()
        .find(|l| l.contains("conversation restored from memory"))
        .unwrap_or_else(|| panic!("not restored from memory:\n{log}"));
    // (The log may be coloured: its escape sequences left out.)
    let plain: String = restored
        .split('\u{1b}')
        .enumerate()
        .map(|(i, part)| match part.split_once('m') {
            Some((_, rest)) if i > 0 => rest,
            _ => part,
        })
        .collect();
    assert!(plain.contains("messages=2"), "{plain}");
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

/// The five everyday requests, in the owner's encrypted DM with the default
/// model and its tools, as a third-party client (matrix-sdk) sees them:
/// 391, a greeting, the time, a reminder for tomorrow at 10:00, the
/// workspace's files. No approval is asked, and neither the streamed parts
/// nor the final replies ever show call-shaped text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_everyday_requests_in_a_matrix_dm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ws = data.join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("shopping.txt"), "milk\neggs\n").unwrap();
    std::fs::write(ws.join("holiday-plan.md"), "Lisbon in May\n").unwrap();
    let daemon = start_with_tools(&data, &[]);
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let owner = Person::login(&daemon.url(), "owner", &daemon.secret("owner-password")).await;
    let room = owner.client.create_dm(&bot).await.expect("DM created");
    wait_joined(&room, &bot).await;
    let mut replies = Vec::new();
    for text in [
        "What is 17 times 23?",
        "Hi! How are you today?",
        "What time is it?",
        "Remind me to call the dentist tomorrow at 10am.",
        "What files do I have?",
    ] {
        let asked = send_text(&room, text).await;
        replies.push(wait_answered(&daemon, &asked).await);
    }
    assert!(replies[0].contains("391"), "{}", replies[0]);
    let greeting = replies[1].to_lowercase();
    assert!(!greeting.contains("assist with that"), "{greeting}");
    let clock = regex::Regex::new(r"\b\d{1,2}:\d{2}\b").unwrap();
    assert!(clock.is_match(&replies[2]), "{}", replies[2]);
    assert!(
        replies[4].contains("shopping.txt") || replies[4].contains("holiday-plan.md"),
        "{}",
        replies[4]
    );
    // Everything the owner's client saw, every edit of a streamed reply
    // included.
    for s in owner
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.sender == bot)
    {
        let body = s.replaces.as_ref().map_or(&s.body, |(_, b)| b);
        assert!(!body.contains("Approval needed"), "{body}");
        assert!(
            !body.contains("\"name\"") && !body.contains("<tool_call>") && !body.contains("<|"),
            "call-shaped text shown: {body}"
        );
    }
    let store = hermit::reminders::Reminders::open(&data).unwrap();
    let all = store.list(Some("owner"), false).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].text.to_lowercase().contains("dentist"), "{all:?}");
    let (at, tomorrow) = common::local_time_and_tomorrow(all[0].next_at.unwrap());
    assert_eq!(at, (tomorrow, 10, 0), "{}", all[0].when());
}
