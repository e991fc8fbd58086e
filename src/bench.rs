//! `hermit bench llm`: inference speed, measured the way llama.cpp's own
//! `llama-bench` measures it, so the two can be compared (scripts/bench-llm).
//!
//! - pp: a fixed 512-token prompt evaluated in batches on a fresh context;
//! - tg: 128 tokens decoded one at a time;
//! - time to first token of a conversation whose history is about 1,000
//!   tokens, for its first turn (nothing cached) and its second turn (the
//!   history is in the KV cache, only the new message is evaluated).

use serde::Serialize;

pub mod memory;

use crate::agent::Conversation;
use crate::inference::{ChatMessage, Engine, GenerateOptions, InferenceError, Role};

pub const PROMPT_TOKENS: usize = 512;
pub const GEN_TOKENS: usize = 128;
const HISTORY_TARGET_TOKENS: usize = 1000;

#[derive(Debug, Serialize)]
pub struct LlmBench {
    pub model: String,
    pub threads: u32,
    pub build: String,
    pub reps: u32,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub pp_tokens_per_s: f64,
    pub tg_tokens_per_s: f64,
    pub history_tokens: usize,
    pub ttft_first_turn_ms: f64,
    pub ttft_second_turn_ms: f64,
    pub second_turn_evaluated_tokens: usize,
}

pub async fn llm(
    engine: &Engine,
    reps: u32,
    progress: impl Fn(&str),
) -> Result<LlmBench, InferenceError> {
    let reps = reps.max(1);
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 1..=reps {
        progress(&format!(
            "pp{PROMPT_TOKENS} + tg{GEN_TOKENS}, run {rep}/{reps}"
        ));
        let e = engine.clone();
        let r = tokio::task::spawn_blocking(move || e.raw_throughput(PROMPT_TOKENS, GEN_TOKENS))
            .await
            .map_err(|_| InferenceError::EngineStopped)??;
        pp.push(PROMPT_TOKENS as f64 / r.prompt_duration.as_secs_f64());
        tg.push(GEN_TOKENS as f64 / r.gen_duration.as_secs_f64());
    }

    progress("time to first token over a ~1,000-token history");
    let mut conversation = Conversation::new("You are a helpful assistant.");
    for (i, (q, a)) in history_exchanges().into_iter().enumerate() {
        if i * 120 > HISTORY_TARGET_TOKENS {
            break;
        }
        conversation.push(ChatMessage::new(Role::User, q));
        conversation.push(ChatMessage::new(Role::Assistant, a));
    }
    let options = GenerateOptions {
        max_tokens: Some(8),
        ignore_eog: true,
    };
    let (reply, first) = conversation
        .begin_turn_with(
            engine,
            "Summarise our conversation in one sentence.",
            options.clone(),
        )
        .collect()
        .await?;
    conversation.finish_turn(&reply);
    let (_, second) = conversation
        .begin_turn_with(engine, "Thank you. And in one word?", options)
        .collect()
        .await?;
    engine.forget(conversation.id());

    let info = engine.info();
    Ok(LlmBench {
        model: info.name.clone(),
        threads: info.threads,
        build: crate::inference::build_target(),
        reps,
        prompt_tokens: PROMPT_TOKENS,
        gen_tokens: GEN_TOKENS,
        pp_tokens_per_s: mean(&pp),
        tg_tokens_per_s: mean(&tg),
        history_tokens: first.prompt_tokens,
        ttft_first_turn_ms: first.ttft_ms,
        ttft_second_turn_ms: second.ttft_ms,
        second_turn_evaluated_tokens: second.evaluated_tokens,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A fixed, plausible history (each exchange is roughly 110-130 tokens).
fn history_exchanges() -> Vec<(String, String)> {
    let topics = [
        (
            "the water cycle",
            "evaporation, condensation, precipitation and collection",
        ),
        (
            "how bread rises",
            "yeast fermenting sugars and releasing carbon dioxide",
        ),
        (
            "why the sky is blue",
            "Rayleigh scattering of shorter wavelengths of sunlight",
        ),
        (
            "how a bicycle stays upright",
            "steering geometry, trail and the rider's corrections",
        ),
        (
            "what a compiler does",
            "parsing, analysis, optimisation and code generation",
        ),
        (
            "how tides work",
            "the Moon's and Sun's gravity pulling on the oceans",
        ),
        (
            "how vaccines train immunity",
            "harmless antigens prompting memory cells to form",
        ),
        (
            "why leaves change colour",
            "chlorophyll breaking down and revealing other pigments",
        ),
        (
            "how a refrigerator cools",
            "a refrigerant absorbing heat as it evaporates",
        ),
        (
            "what makes a rainbow",
            "light refracted, reflected and dispersed in droplets",
        ),
    ];
    topics
        .iter()
        .map(|(topic, gist)| {
            (
                format!(
                    "Could you explain {topic} to me in a few sentences? I would like to understand the main idea and one everyday example."
                ),
                format!(
                    "Of course. In short, {topic} comes down to {gist}. The main idea is that a few simple physical or chemical steps repeat reliably, and together they produce the effect we notice. An everyday example is easy to find once you know what to look for: watch closely the next time you meet it, and you will see each of these steps at work, one after another."
                ),
            )
        })
        .collect()
}

/// `hermit bench sandbox`: the cost of starting a sandboxed `true` against a
/// plain fork+exec of `true`.
#[derive(Debug, Serialize)]
pub struct SandboxBench {
    pub runs: usize,
    pub plain_median_ms: f64,
    pub sandboxed_median_ms: f64,
    pub added_ms: f64,
    pub ratio: f64,
}

pub fn sandbox(
    sandbox: &crate::sandbox::Sandbox,
    policy: &crate::sandbox::SandboxPolicy,
    runs: usize,
) -> Result<SandboxBench, crate::sandbox::SandboxError> {
    let runs = runs.max(1);
    let argv = ["/bin/true".to_string()];
    let mut plain = Vec::with_capacity(runs);
    let mut boxed = Vec::with_capacity(runs);
    // Interleaved, so machine noise hits both alike.
    for _ in 0..runs {
        let t = std::time::Instant::now();
        std::process::Command::new("/bin/true").status()?;
        plain.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = std::time::Instant::now();
        let out = sandbox.run(policy, &argv)?;
        boxed.push(t.elapsed().as_secs_f64() * 1000.0);
        if out.exit_code != 0 {
            return Err(crate::sandbox::SandboxError::Setup(format!(
                "sandboxed true exited {}: {}",
                out.exit_code, out.stderr
            )));
        }
    }
    let p = median(&mut plain);
    let b = median(&mut boxed);
    Ok(SandboxBench {
        runs,
        plain_median_ms: p,
        sandboxed_median_ms: b,
        added_ms: b - p,
        ratio: b / p.max(1e-9),
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One owner message through the Matrix path, and what the model took for it.
#[derive(Debug, Serialize)]
pub struct MatrixRun {
    /// From sending the message to the first part of the reply arriving at
    /// the owner's client.
    pub first_edit_ms: f64,
    /// From sending the message to the final edit arriving.
    pub final_edit_ms: f64,
    /// The model's own time to first token and whole time, for this reply.
    pub model_ttft_ms: f64,
    pub model_total_ms: f64,
    /// From sending to the daemon recording the message (homeserver, the
    /// bot's sync, decryption).
    pub inbound_ms: f64,
    /// Daemon side: from recording the message to the first part sent.
    pub daemon_first_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct MatrixBench {
    pub runs: Vec<MatrixRun>,
    pub first_edit_median_ms: f64,
    pub model_ttft_median_ms: f64,
    /// Median of (first edit - model TTFT) over the runs.
    pub added_first_median_ms: f64,
    pub final_edit_median_ms: f64,
    pub model_total_median_ms: f64,
    /// Median of (final edit - model total) over the runs.
    pub added_final_median_ms: f64,
}

const MATRIX_PROMPTS: &[&str] = &[
    "What is the capital of Italy?",
    "Name three primary colours.",
    "How many days are in a leap year?",
    "What does CPU stand for?",
    "Give me a synonym for happy.",
    "What is the boiling point of water in Celsius?",
    "Which planet is closest to the sun?",
    "What is 12 times 12?",
];

/// A message from the bot as the owner's client received it.
#[derive(Debug, Clone)]
struct Received {
    id: matrix_sdk::ruma::OwnedEventId,
    reply_to: Option<matrix_sdk::ruma::OwnedEventId>,
    /// For an edit: the message it replaces and its new body.
    replaces: Option<(matrix_sdk::ruma::OwnedEventId, String)>,
    body: String,
    at: std::time::Instant,
    /// Wall clock, ms since the epoch.
    wall_ms: i64,
}

/// A running `hermit up` as the Matrix benchmarks reach it: its
/// homeserver, the owner's account (a new device logs in), the bot, and its
/// data directory (the journal in hermit.db, the reminders).
pub struct Daemon {
    pub url: String,
    pub owner: String,
    pub password: crate::secrets::Secret,
    pub bot: String,
    pub data_dir: std::path::PathBuf,
}

/// The owner's client for the Matrix benchmarks: logged in as a new
/// device (in memory), syncing in its own loop, with an encrypted direct
/// chat with the bot, recording what the bot sends there.
struct OwnerClient {
    room: matrix_sdk::Room,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    syncing: tokio::task::JoinHandle<()>,
}

impl OwnerClient {
    async fn open(daemon: &Daemon, device: &str, progress: &impl Fn(&str)) -> anyhow::Result<Self> {
        use matrix_sdk::config::SyncSettings;
        use matrix_sdk::ruma::OwnedUserId;
        use matrix_sdk::ruma::events::room::message::{
            MessageType, OriginalSyncRoomMessageEvent, Relation,
        };
        use std::sync::{Arc, Mutex};
        use std::time::{Duration, Instant};

        let client = matrix_sdk::Client::builder()
            .homeserver_url(&daemon.url)
            .build()
            .await?;
        client
            .matrix_auth()
            .login_username(&daemon.owner, daemon.password.expose())
            .initial_device_display_name(device)
            .send()
            .await?;
        let bot: OwnedUserId = daemon.bot.as_str().try_into()?;
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = seen.clone();
        let bot2 = bot.clone();
        client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent| {
            let (log, bot) = (log.clone(), bot2.clone());
            async move {
                if ev.sender != bot {
                    return;
                }
                let at = Instant::now();
                let wall_ms = crate::db::now_ms();
                let text = |m: &MessageType| match m {
                    MessageType::Text(t) => t.body.clone(),
                    MessageType::Notice(t) => t.body.clone(),
                    _ => String::new(),
                };
                let (reply_to, replaces) = match &ev.content.relates_to {
                    Some(Relation::Reply(r)) => (Some(r.in_reply_to.event_id.clone()), None),
                    Some(Relation::Replacement(r)) => (
                        None,
                        Some((r.event_id.clone(), text(&r.new_content.msgtype))),
                    ),
                    _ => (None, None),
                };
                log.lock().unwrap().push(Received {
                    id: ev.event_id,
                    reply_to,
                    replaces,
                    body: text(&ev.content.msgtype),
                    at,
                    wall_ms,
                });
            }
        });
        client.sync_once(SyncSettings::default()).await?;
        let c = client.clone();
        // Our own loop of `sync_once`, like a Matrix client's: the SDK's
        // `sync` waits a second between two syncs less than a second
        // apart, which would be measured as the Matrix path's cost.
        let syncing = tokio::spawn(async move {
            loop {
                let settings = SyncSettings::default().timeout(Duration::from_secs(10));
                if c.sync_once(settings).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        progress("opening an encrypted direct chat with the bot");
        let room = client.create_dm(&bot).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(m)) = room.get_member(&bot).await
                && *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the bot did not join the chat");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            room,
            seen,
            syncing,
        })
    }
}

/// Lateness of reminders due at the same instant.
#[derive(Debug, Clone, Serialize)]
pub struct ReminderBench {
    pub count: usize,
    /// Due instant → the owner's client receives it.
    pub received_median_ms: f64,
    pub received_max_ms: f64,
    /// Due instant → the daemon's send returned (its journal).
    pub sent_median_ms: f64,
    pub sent_max_ms: f64,
}

/// `count` reminders due at the same whole minute (at least 15 s ahead),
/// written into the running daemon's database for the owner's direct chat;
/// the owner's client times each one's arrival against its due instant.
pub async fn reminders(
    daemon: &Daemon,
    tz: &str,
    count: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<ReminderBench> {
    use std::time::{Duration, Instant};
    let client = OwnerClient::open(daemon, "hermit bench reminders", &progress).await?;
    let data_dir = &daemon.data_dir;
    let store = crate::reminders::Reminders::open(data_dir)?;
    let now = crate::db::now_ms();
    let due = (now + 15_000).div_euclid(60_000) * 60_000 + 60_000;
    let at = jiff::Timestamp::from_millisecond(due)?;
    let tag = format!("bench {due}");
    let mut ids = Vec::new();
    for i in 0..count {
        let r = store.add_once(
            "owner",
            Some(client.room.room_id().as_str()),
            &format!("{tag} #{i}"),
            at,
            tz,
            None,
        )?;
        ids.push(r.id);
    }
    progress(&format!(
        "{count} reminders due in {:.0} s; waiting for them",
        (due - now) as f64 / 1000.0
    ));
    let deadline = Instant::now() + Duration::from_millis((due - now).max(0) as u64 + 180_000);
    let received: Vec<i64> = loop {
        let got: Vec<i64> = client
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.body.contains(&tag))
            .map(|s| s.wall_ms - due)
            .collect();
        if got.len() >= count {
            break got;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {count} reminders arrived within 3 minutes of their time",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    client.syncing.abort();
    let conn = crate::db::open(&data_dir.join("hermit.db"))?;
    let mut sent = Vec::new();
    for id in ids {
        let d: Option<i64> = conn.query_row(
            "SELECT delivered_at FROM reminder_deliveries WHERE reminder = ?1",
            [id],
            |r| r.get(0),
        )?;
        sent.push((d.unwrap_or(due) - due) as f64);
    }
    let mut received: Vec<f64> = received.into_iter().map(|v| v as f64).collect();
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    Ok(ReminderBench {
        count,
        received_max_ms: max(&received),
        received_median_ms: median(&mut received),
        sent_max_ms: max(&sent),
        sent_median_ms: median(&mut sent),
    })
}

/// Measures the Matrix path against a running `hermit up`: logs in as the
/// owner (a new device, in memory), opens an encrypted direct chat with the
/// bot, and sends `runs` questions one after the other (after one warm-up),
/// timing the first part and the final edit of each reply as the owner's
/// client receives them. The model's own figures for the same replies come
/// from the daemon's journal in `hermit.db`.
pub async fn matrix(
    daemon: &Daemon,
    runs: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<MatrixBench> {
    use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
    use std::time::{Duration, Instant};

    let OwnerClient {
        room,
        seen,
        syncing,
        ..
    } = OwnerClient::open(daemon, "hermit bench matrix", &progress).await?;
    let db = rusqlite::Connection::open(daemon.data_dir.join("hermit.db"))?;
    let mut results = Vec::new();
    for i in 0..=runs {
        let prompt = MATRIX_PROMPTS[i % MATRIX_PROMPTS.len()];
        let sent_at = Instant::now();
        let sent_wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as f64;
        let question = room
            .send(RoomMessageEventContent::text_plain(prompt))
            .await?
            .response
            .event_id;
        let deadline = Instant::now() + Duration::from_secs(300);
        // The reply as the journal recorded it, once answered.
        let (reply, ttft, total, inbound, daemon_first) = loop {
            type Row = (
                String,
                Option<String>,
                Option<f64>,
                Option<f64>,
                i64,
                Option<i64>,
            );
            let row: Option<Row> = db
                .query_row(
                    "SELECT status, reply, model_ttft_ms, model_total_ms, received_at, first_edit_ms
                     FROM matrix_events WHERE event_id = ?1",
                    [question.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .ok();
            if let Some((status, reply, ttft, total, received, first)) = row {
                anyhow::ensure!(status != "failed", "the bot failed to answer");
                if status == "answered" {
                    break (
                        reply.unwrap_or_default(),
                        ttft.unwrap_or(0.0),
                        total.unwrap_or(0.0),
                        received as f64 - sent_wall,
                        first.unwrap_or(0) as f64,
                    );
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "no answer within 300 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (first, last) = loop {
            let found = {
                let seen = seen.lock().unwrap();
                seen.iter()
                    .find(|s| s.reply_to.as_ref() == Some(&question))
                    .and_then(|first| {
                        let last = seen
                            .iter()
                            .filter(|s| s.replaces.as_ref().is_some_and(|(o, _)| o == &first.id))
                            .map(|s| (s.replaces.as_ref().unwrap().1.clone(), s.at))
                            .chain(std::iter::once((first.body.clone(), first.at)))
                            .find(|(body, _)| body.trim() == reply.trim());
                        last.map(|(_, at)| (first.at, at))
                    })
            };
            if let Some(f) = found {
                break f;
            }
            anyhow::ensure!(Instant::now() < deadline, "the final edit did not arrive");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let ms = |t: Instant| t.saturating_duration_since(sent_at).as_secs_f64() * 1000.0;
        if i == 0 {
            progress("warm-up done");
            continue;
        }
        let run = MatrixRun {
            first_edit_ms: ms(first),
            final_edit_ms: ms(last),
            model_ttft_ms: ttft,
            model_total_ms: total,
            inbound_ms: inbound,
            daemon_first_ms: daemon_first,
        };
        progress(&format!(
            "run {i}/{runs}: first part {:.0} ms (model TTFT {:.0} ms; in {:.0} ms, daemon {:.0} ms), final {:.0} ms (model {:.0} ms)",
            run.first_edit_ms,
            run.model_ttft_ms,
            run.inbound_ms,
            run.daemon_first_ms,
            run.final_edit_ms,
            run.model_total_ms
        ));
        results.push(run);
    }
    syncing.abort();
    let med = |f: &dyn Fn(&MatrixRun) -> f64| {
        let mut v: Vec<f64> = results.iter().map(f).collect();
        median(&mut v)
    };
    Ok(MatrixBench {
        first_edit_median_ms: med(&|r| r.first_edit_ms),
        model_ttft_median_ms: med(&|r| r.model_ttft_ms),
        added_first_median_ms: med(&|r| r.first_edit_ms - r.model_ttft_ms),
        final_edit_median_ms: med(&|r| r.final_edit_ms),
        model_total_median_ms: med(&|r| r.model_total_ms),
        added_final_median_ms: med(&|r| r.final_edit_ms - r.model_total_ms),
        runs: results,
    })
}

/// A voice note's way through Hermit, against the worker alone.
#[derive(Debug, Serialize)]
pub struct VoiceBench {
    pub runs: usize,
    /// The clip's length, in seconds.
    pub clip_seconds: f64,
    /// The owner's client: sending the voice note (encrypting, uploading,
    /// sending the event) until the homeserver took it.
    pub send_median_ms: f64,
    /// The homeserver took the voice note → the owner's client received
    /// the transcript ("🎙️ I heard: …").
    pub arrival_to_transcript_median_ms: f64,
    pub arrival_to_transcript_max_ms: f64,
    /// The same clip transcribed by the speech worker alone (warm), in this
    /// process, the same number of times.
    pub worker_median_ms: f64,
    /// Median of (arrival → transcript − worker alone): the bot's sync,
    /// download, decryption, the inbox, and posting the transcript.
    pub added_median_ms: f64,
}

/// Sends `clip` as a voice message into an encrypted direct chat with the
/// running daemon's bot `runs` times (after one warm-up), timing each
/// transcript's arrival at the owner's client, and waits for each answer
/// before the next note (so no note queues behind the model). The worker
/// alone is timed on the same clip beforehand, with the same settings.
pub async fn voice(
    daemon: &Daemon,
    clip: &std::path::Path,
    worker: &crate::voice::Voice,
    runs: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<VoiceBench> {
    use matrix_sdk::attachment::{AttachmentConfig, AttachmentInfo, BaseAudioInfo};
    use std::time::{Duration, Instant};

    let bytes = std::fs::read(clip)?;
    progress("the speech worker alone, on the same clip");
    let first = worker.transcribe(clip).await?;
    let clip_seconds = first.audio_seconds;
    let mut alone = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        worker.transcribe(clip).await?;
        alone.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let worker_median_ms = median(&mut alone.clone());
    progress(&format!(
        "worker alone: median {worker_median_ms:.0} ms for {clip_seconds:.1} s of audio"
    ));

    let client = OwnerClient::open(daemon, "hermit bench voice", &progress).await?;
    let db = rusqlite::Connection::open(daemon.data_dir.join("hermit.db"))?;
    let mime: mime::Mime = match clip.extension().and_then(|e| e.to_str()) {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("flac") => "audio/flac",
        Some("m4a") => "audio/mp4",
        _ => "audio/ogg",
    }
    .parse()?;
    let transcripts = || {
        client
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.body.starts_with("🎙️ I heard:"))
            .map(|s| s.at)
            .collect::<Vec<_>>()
    };
    let (mut send, mut arrival) = (Vec::new(), Vec::new());
    for i in 0..=runs {
        let before = transcripts().len();
        let t0 = Instant::now();
        let info = AttachmentInfo::Voice(BaseAudioInfo {
            duration: Some(Duration::from_secs_f64(clip_seconds)),
            size: Some((bytes.len() as u32).into()),
            waveform: None,
        });
        let event = client
            .room
            .send_attachment(
                "voice-note.ogg",
                &mime,
                bytes.clone(),
                AttachmentConfig::new().info(info),
            )
            .await?
            .event_id;
        let t1 = Instant::now();
        let deadline = t1 + Duration::from_secs(300);
        // The daemon's journal of this voice note.
        let status = || -> Option<String> {
            db.query_row(
                "SELECT status FROM matrix_events WHERE event_id = ?1",
                [event.as_str()],
                |r| r.get(0),
            )
            .ok()
        };
        let heard = loop {
            if let Some(at) = transcripts().get(before) {
                break *at;
            }
            anyhow::ensure!(
                status().as_deref() != Some("failed"),
                "the bot could not handle the voice note (see its log)"
            );
            anyhow::ensure!(Instant::now() < deadline, "no transcript within 300 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // The answer, before the next note.
        loop {
            match status().as_deref() {
                Some("answered") => break,
                Some("failed") => anyhow::bail!("the bot failed to answer the voice note"),
                _ => {}
            }
            anyhow::ensure!(Instant::now() < deadline, "no answer within 300 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        if i == 0 {
            progress("warm-up done");
            continue;
        }
        progress(&format!(
            "run {i}/{runs}: sent in {:.0} ms, transcript {:.0} ms after arrival",
            ms(t0, t1),
            ms(t1, heard)
        ));
        send.push(ms(t0, t1));
        arrival.push(ms(t1, heard));
    }
    client.syncing.abort();
    let max = arrival.iter().copied().fold(f64::MIN, f64::max);
    let mut added: Vec<f64> = arrival.iter().zip(&alone).map(|(a, w)| a - w).collect();
    Ok(VoiceBench {
        runs,
        clip_seconds,
        send_median_ms: median(&mut send),
        arrival_to_transcript_median_ms: median(&mut arrival),
        arrival_to_transcript_max_ms: max,
        worker_median_ms,
        added_median_ms: median(&mut added),
    })
}
