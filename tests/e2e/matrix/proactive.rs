//! What Hermit remembers and does unasked, over Matrix: memories kept per
//! person, reminders on time and after downtime, briefings and tasks.

use crate::common;
use std::time::Duration;

use matrix_sdk::ruma::OwnedUserId;

use super::support::*;

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
    register(&daemon, "alice", "alice-password-1").await;
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
        // The prompt evaluated in one piece, as this test was written
        // against: a state loaded from the shared cache changes the 1.5B
        // model's greedy choices after a denial (it then tries the same
        // write through the shell, which asks again), and this test is
        // about the scheduler, not about the model's obedience.
        ("HERMIT_INFERENCE__PROMPT_CACHE", "false"),
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
    let mut denied = vec![approval_code(&request.body)];
    send_text(&room, &format!("!deny {}", denied[0])).await;
    // A small model may try another way after a denial (a shell command
    // writing the same file): the owner denies that too. Nothing is
    // written either way, and both tasks end with a result.
    for _ in 0..4 {
        let another = owner
            .wait_for(
                "both tasks' results, or another request",
                |seen: &[Seen]| {
                    if bot_said("🗓️ Scheduled task")(seen).is_some_and(|n| n >= 2) {
                        return Some(None);
                    }
                    seen.iter()
                        .find(|s| {
                            s.sender == bot
                                && s.body.contains("Approval needed")
                                && s.body.contains("scheduled task")
                                && !denied.contains(&approval_code(&s.body))
                        })
                        .map(|s| Some(approval_code(&s.body)))
                },
            )
            .await;
        let Some(code) = another else { break };
        send_text(&room, &format!("!deny {code}")).await;
        denied.push(code);
    }
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
