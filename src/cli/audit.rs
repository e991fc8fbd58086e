//! `hermit audit verify|tail|export`: the tamper-evident audit log, read
//! from hermit.db.

use hermit::config::Config;

use super::Global;
use super::args::AuditCommand;

pub fn run(global: &Global, command: AuditCommand) -> anyhow::Result<bool> {
    match command {
        AuditCommand::Verify { json } => verify(global, json),
        AuditCommand::Tail { lines, follow } => tail(global, lines, follow).map(|()| true),
        AuditCommand::Export { .. } => export(global).map(|()| true),
    }
}

fn audit_db(config: &Config) -> anyhow::Result<rusqlite::Connection> {
    let path = config.data_dir().join("hermit.db");
    anyhow::ensure!(path.exists(), "there is no database at {}", path.display());
    Ok(hermit::db::open(&path)?)
}

/// `hermit audit verify [--json]`: false when the chain is broken.
fn verify(global: &Global, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    let v = hermit::trust::audit::verify(&db, &config.data_dir())?;
    if json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        match &v.problem {
            None => println!("audit log intact: {} entries, chain verified", v.entries),
            Some(p) => println!("audit log BROKEN: {p}"),
        }
    }
    Ok(v.problem.is_none())
}

fn print_entry(e: &hermit::trust::audit::Entry) {
    let when = jiff::Timestamp::from_millisecond(e.ts)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    println!(
        "{:>6}  {when}  {:<18} {:<28} {}",
        e.seq, e.kind, e.actor, e.data
    );
}

/// `hermit audit tail [-n N] [-f]`.
fn tail(global: &Global, n: i64, follow: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    let entries = hermit::trust::audit::tail(&db, n)?;
    let mut last = 0;
    for e in &entries {
        print_entry(e);
        last = e.seq;
    }
    if !follow {
        return Ok(());
    }
    use std::io::Write;
    loop {
        std::io::stdout().flush()?;
        std::thread::sleep(std::time::Duration::from_millis(500));
        for e in hermit::trust::audit::entries_after(&db, last, 1000)? {
            print_entry(&e);
            last = e.seq;
        }
    }
}

/// `hermit audit export --jsonl`: every entry, one JSON object per line.
fn export(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last = 0;
    loop {
        let batch = hermit::trust::audit::entries_after(&db, last, 10_000)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
            last = e.seq;
        }
    }
    out.flush()?;
    Ok(())
}
