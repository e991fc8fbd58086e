//! `hermit approvals list|approve|deny` (actions waiting for the owner),
//! and the stop switch: `hermit stop-all`, `hermit resume`.

use super::args::ApprovalsCommand;
use super::{Global, ensure_data_dir, runtime};

pub fn run(global: &Global, command: ApprovalsCommand) -> anyhow::Result<()> {
    match command {
        ApprovalsCommand::List { all, json } => list(global, all, json),
        ApprovalsCommand::Approve { code } => decide(global, &code, true),
        ApprovalsCommand::Deny { code } => decide(global, &code, false),
    }
}

/// `hermit approvals list [--all] [--json]`.
fn list(global: &Global, all: bool, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let trust = hermit::trust::Trust::open(&config)?;
    let rows = trust.approvals.list(all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "{}",
            if all {
                "no approval requests"
            } else {
                "no pending approval requests"
            }
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for r in rows {
        let left = (r.expires_at - now) / 1000;
        println!(
            "{}  {}  {}  {}\n    for {} in {}{}\n    arguments: {}",
            r.code,
            r.status,
            r.tool,
            r.effects,
            r.requester,
            r.place,
            if r.status == "pending" {
                format!(", expires in {left} s")
            } else {
                String::new()
            },
            hermit::trust::redact::redact(&r.arguments.to_string()),
        );
        if let Some(t) = &r.taint {
            println!("    after untrusted text: {t}");
        }
    }
    Ok(())
}

/// `hermit approvals approve|deny CODE`: the owner at the box decides.
/// The waiting turn (in the daemon or in a `hermit chat`) sees it within
/// a fraction of a second.
fn decide(global: &Global, code: &str, approve: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let trust = hermit::trust::Trust::open(&config)?;
    let row = trust
        .decide_at_box(code, approve, "command line")
        .map_err(|why| anyhow::anyhow!(why))?;
    println!(
        "{} {}: {} {}",
        if approve { "approved" } else { "denied" },
        row.code,
        row.tool,
        hermit::trust::redact::redact(&row.arguments.to_string())
    );
    Ok(())
}

/// `hermit stop-all`: through the running daemon (which halts its turns
/// and tool processes at once), and in the database in any case, so a
/// daemon started later starts stopped.
pub fn stop_all(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let rt = runtime()?;
    let via_daemon = rt.block_on(async {
        let mut client = hermit::control::connect(&data).await?;
        client
            .request(&hermit::control::Request::StopAll)
            .await
            .ok()?;
        client.next().await.ok()
    });
    let trust = hermit::trust::Trust::open(&config)?;
    match via_daemon {
        Some(hermit::control::Event::Stopped { turns, processes }) => println!(
            "stopped: {turns} running turn(s) and {processes} tool process(es) halted; nothing runs until `hermit resume` or !resume"
        ),
        _ => {
            trust.stop(trust.owner(), "command line")?;
            println!(
                "stopped (no daemon was running); nothing runs until `hermit resume` or !resume"
            );
        }
    }
    Ok(())
}

/// `hermit resume`.
pub fn resume(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let trust = hermit::trust::Trust::open(&config)?;
    trust.resume(trust.owner(), "command line")?;
    println!("resumed");
    Ok(())
}
