//! Voice messages over Matrix: transcribed on the box, quoted back, kept
//! and answered.

use crate::common;
use std::time::Duration;

use matrix_sdk::ruma::OwnedUserId;

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_message_is_transcribed_quoted_kept_and_answered() {
    common::model_file("ggml-base.bin");
    common::model_file(common::SMALL_MODEL_FILE);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Memory off: the journal is then the one place that keeps the words
    // (with memory on, memory keeps them: `approvals_and_stop…`,
    // `killed_mid_answer…`).
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
    // Then answered like text.
    let answer = wait_answered(&daemon, &voice).await;
    assert!(!answer.trim().is_empty());
    // `hermit transcribe` on the very file sent hears the same (once the
    // daemon is done: the two side by side would share the two cores).
    let out = common::hermit()
        .args(["transcribe", ogg.to_str().unwrap()])
        .env("HERMIT_DATA", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), text);
    // Kept: the transcript with the message, and the words in the journal
    // (memory is off here).
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
