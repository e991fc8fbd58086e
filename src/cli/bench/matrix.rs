//! `hermit bench matrix` (scripts/bench-matrix): the time from the owner's
//! message to the streamed reply over Matrix, next to the model's own time,
//! against the running `hermit up`.

use serde::Serialize;

use super::median;
use super::owner::{Daemon, OwnerClient, against_daemon};
use crate::cli::Global;

/// `hermit bench matrix`: against the running daemon, as its owner.
pub fn run(global: &Global, json: bool, runs: usize) -> anyhow::Result<()> {
    let (_, daemon, rt) = against_daemon(global)?;
    rt.block_on(async {
        let r = measure(&daemon, runs.max(1), |m| eprintln!("{m}")).await?;
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!("{} runs, medians (ms):", r.runs.len());
            println!("                      matrix path    model    added");
            println!(
                "  first part / TTFT   {:>11.0} {:>8.0} {:>8.0}",
                r.first_edit_median_ms, r.model_ttft_median_ms, r.added_first_median_ms
            );
            println!(
                "  final edit / total  {:>11.0} {:>8.0} {:>8.0}",
                r.final_edit_median_ms, r.model_total_median_ms, r.added_final_median_ms
            );
        }
        Ok(())
    })
}

/// One owner message through the Matrix path, and what the model took for it.
#[derive(Debug, Serialize)]
struct MatrixRun {
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
struct MatrixBench {
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

/// Measures the Matrix path against a running `hermit up`: logs in as the
/// owner (a new device, in memory), opens an encrypted direct chat with the
/// bot, and sends `runs` questions one after the other (after one warm-up),
/// timing the first part and the final edit of each reply as the owner's
/// client receives them. The model's own figures for the same replies come
/// from the daemon's journal in `hermit.db`.
async fn measure(
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
