//! `hermit bench reminders` (scripts/bench-reminders): the lateness of
//! reminders due at the same minute, as the owner's client receives them,
//! against the running `hermit up`.

use serde::Serialize;

use super::median;
use super::owner::{Daemon, OwnerClient, against_daemon};
use crate::cli::Global;

/// `hermit bench reminders [--count N]`.
pub fn run(global: &Global, json: bool, count: usize) -> anyhow::Result<()> {
    let (config, daemon, rt) = against_daemon(global)?;
    rt.block_on(async {
        let r = measure(&daemon, &config.agent.timezone, count.max(1), |m| {
            eprintln!("{m}")
        })
        .await?;
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{} reminders due at the same instant, lateness (ms):",
                r.count
            );
            println!("                          median      max");
            println!(
                "  received by the owner {:>9.0} {:>8.0}",
                r.received_median_ms, r.received_max_ms
            );
            println!(
                "  sent by the daemon    {:>9.0} {:>8.0}",
                r.sent_median_ms, r.sent_max_ms
            );
        }
        Ok(())
    })
}

/// Lateness of reminders due at the same instant.
#[derive(Debug, Clone, Serialize)]
struct ReminderBench {
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
async fn measure(
    daemon: &Daemon,
    tz: &str,
    count: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<ReminderBench> {
    use std::time::{Duration, Instant};
    let client = OwnerClient::open(daemon, "hermit bench reminders", &progress).await?;
    let data_dir = &daemon.data_dir;
    let store = hermit::reminders::Reminders::open(data_dir)?;
    let now = hermit::vocab::now_ms();
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
    let conn = hermit::db::open(&data_dir.join("hermit.db"))?;
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
