//! `hermit bench voice` (scripts/bench-voice): a voice note's way through
//! a running `hermit up`, sent by the owner's client into an encrypted
//! direct chat, from its arrival to the transcript, against the speech
//! worker alone on the same clip.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::median;
use super::owner::{Daemon, OwnerClient, against_daemon};
use crate::cli::Global;

pub fn run(global: &Global, json: bool, runs: usize, file: &Path) -> anyhow::Result<()> {
    let (config, daemon, rt) = against_daemon(global)?;
    let voice = hermit::voice::Voice::new(hermit::voice::VoiceSettings::from_config(&config)?);
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    rt.block_on(async {
        let r = measure(&daemon, &file, &voice, runs.max(1), |m| eprintln!("{m}")).await?;
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "a voice note of {:.1} s, {} runs (ms)        median      max",
                r.clip_seconds, r.runs
            );
            println!(
                "  arrival → transcript at the owner {:>9.0} {:>8.0}",
                r.arrival_to_transcript_median_ms, r.arrival_to_transcript_max_ms
            );
            println!(
                "  the speech worker alone           {:>9.0}",
                r.worker_median_ms
            );
            println!(
                "  added by the Matrix path          {:>9.0}",
                r.added_median_ms
            );
            println!(
                "  sending it (owner's client)       {:>9.0}",
                r.send_median_ms
            );
        }
        Ok(())
    })
}

/// A voice note's way through Hermit, against the worker alone.
#[derive(Debug, Serialize)]
struct VoiceBench {
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
async fn measure(
    daemon: &Daemon,
    clip: &std::path::Path,
    worker: &hermit::voice::Voice,
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
