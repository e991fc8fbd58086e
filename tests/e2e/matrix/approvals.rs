//! Approvals and the stop switch over Matrix: only the owner, only in the
//! room of the request, only from a verified device when required.

use crate::common;
use std::time::{Duration, Instant};

use matrix_sdk::ruma::OwnedUserId;

use super::support::*;

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
            // Memory on (full text only): the words of the conversation,
            // the settled follow-up included, are kept there once, and the
            // journal points at them.
            ("HERMIT_MEMORY__ENABLED", "true"),
            ("HERMIT_MEMORY__EMBEDDINGS", "false"),
        ],
    );
    let bot: OwnedUserId = "@hermit:hermit.local".try_into().unwrap();
    let alice_id: OwnedUserId = "@alice:hermit.local".try_into().unwrap();
    register(&daemon, "alice", "alice-password-1").await;
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
    // The request does not hold the room: the asking turn ended saying it
    // waits, and a new message is answered while it does.
    let first = wait_answered(&daemon, &ask).await;
    assert!(
        first.contains(&code) && first.contains("needs your approval"),
        "{first}"
    );
    let meanwhile = send_text(&room, "What is 17 times 23?").await;
    let answer = wait_answered(&daemon, &meanwhile).await;
    assert!(answer.contains("391"), "{answer}");
    assert!(!file.exists());

    // The owner's ✅ later: the call runs, once, and what came of it is
    // posted in the room and added to the conversation.
    react(&room, &request.id, "✅").await;
    let reply = wait_settled(&daemon, &ask).await;
    // Kept once: the journal has no words of the exchange, only where
    // memory keeps the reply and its follow-up.
    let (body, words, rows): (String, Option<String>, String) = daemon
        .db()
        .query_row(
            "SELECT body, reply, reply_rows FROM matrix_events WHERE event_id = ?1",
            [ask.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((body.as_str(), words), ("", None));
    assert_eq!(
        serde_json::from_str::<Vec<i64>>(&rows).unwrap().len(),
        2,
        "{rows}"
    );
    owner
        .wait_for("the follow-up in the room", |seen| {
            seen.iter()
                .any(|s| {
                    s.sender == bot && s.body.contains(reply.lines().next().unwrap_or("").trim())
                })
                .then_some(())
        })
        .await;
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
    let err = common::stderr(&out);
    assert!(!said.contains("model"), "{said}");
    // The tool's own root does not hold the data directory: the socket is
    // not there to connect to. Were it in view, the daemon would drop the
    // connection (a peer in another namespace).
    if !said.contains("FileNotFoundError") {
        assert!(
            said.contains("REPLY b''") || said.contains("DROPPED"),
            "{said}{err}"
        );
        assert!(
            daemon
                .log()
                .contains("refused a control connection from another namespace")
        );
    }
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
    // A member's files are in a workspace of their own.
    let in_alices = || {
        std::fs::read_dir(data.join("members"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("workspace/alice.txt").exists())
    };
    assert!(!in_alices());
    react(&room, &request.id, "✅").await;
    let reply = wait_settled(&daemon, &asked).await;
    assert!(in_alices(), "not written; reply {reply}\n{}", daemon.log());
    assert!(
        !data.join("workspace/alice.txt").exists(),
        "a member wrote into the owner's workspace"
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
    // Decided by another process: the daemon notices, and goes on.
    let reply = wait_settled(&daemon, &ask).await;
    assert!(
        file.exists(),
        "not written; reply {reply}\n{}",
        daemon.log()
    );
}
