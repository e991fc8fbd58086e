//! `hermit memory search|remember|forget|export|reindex|status`: what
//! Hermit remembers, for the owner at the box.

use std::sync::Arc;

use hermit::config::Config;
use hermit::memory::Memory;

use super::args::MemoryCommand;
use super::{Global, human_size, open_memory};

pub fn run(global: &Global, command: MemoryCommand) -> anyhow::Result<bool> {
    match command {
        MemoryCommand::Search {
            query,
            principal,
            limit,
            text_only,
            json,
        } => search(global, &query, &principal, limit, text_only, json),
        MemoryCommand::Remember {
            fact,
            principal,
            pin,
        } => remember(global, &fact, &principal, pin).map(|()| true),
        MemoryCommand::Forget {
            ids,
            query,
            principal,
            yes,
        } => forget(global, &ids, query.as_deref(), &principal, yes),
        MemoryCommand::Export { principal } => export(global, &principal).map(|()| true),
        MemoryCommand::Reindex => reindex(global).map(|()| true),
        MemoryCommand::Status { json } => status(global, json).map(|()| true),
    }
}

/// Memory for a command: opened, and the index brought up to date in the
/// foreground (with progress on a terminal) unless the daemon is at it.
fn memory_for_cli(config: &Config) -> anyhow::Result<Arc<Memory>> {
    let memory = open_memory(config)?
        .ok_or_else(|| anyhow::anyhow!("memory is off ([memory] enabled = false)"))?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut shown = false;
    let synced = memory.sync_index(std::time::Duration::from_secs(5), |done, total| {
        shown = true;
        if tty {
            eprint!("\rindexing memory: {done}/{total}");
        } else {
            eprintln!("indexing memory: {done}/{total}");
        }
    });
    if tty && shown {
        eprintln!();
    }
    match synced {
        Ok(_) => {}
        Err(hermit::memory::MemoryError::Index(hermit::memory::index::IndexError::Busy)) => {
            eprintln!("note: the daemon is indexing; results may miss the last few seconds")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(memory)
}

fn print_items(items: &[hermit::memory::Item], tz: &str) {
    let tz = hermit::vocab::owner_timezone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    for i in items {
        let date = jiff::Timestamp::from_millisecond(i.ts)
            .map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        let who = match (i.role.as_deref(), i.sender.as_deref()) {
            (Some("assistant"), _) => " hermit".to_string(),
            (_, Some(s)) => format!(" {s}"),
            _ => String::new(),
        };
        let origin = i
            .origin
            .as_ref()
            .map(|o| format!(" [from {o}]"))
            .unwrap_or_default();
        let pin = if i.pinned { " [pinned]" } else { "" };
        println!("{}  {date}{who}{pin}{origin}", i.id);
        for line in i.text.lines() {
            println!("    {line}");
        }
    }
}

fn search(
    global: &Global,
    query: &str,
    principal: &str,
    limit: usize,
    text_only: bool,
    json: bool,
) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let memory = memory_for_cli(&config)?;
    let mode = if text_only {
        hermit::memory::Mode::Text
    } else {
        hermit::memory::Mode::Hybrid
    };
    let items = memory.search(principal, query, limit.max(1), mode, None)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if items.is_empty() {
        eprintln!("nothing in {principal}'s memory matches {query:?}");
    } else {
        print_items(&items, &config.agent.timezone);
    }
    Ok(!items.is_empty())
}

fn remember(global: &Global, fact: &str, principal: &str, pin: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let memory = memory_for_cli(&config)?;
    let fact = fact.trim();
    anyhow::ensure!(!fact.is_empty(), "the fact is empty");
    let id = memory.remember(principal, fact, None, pin, None)?;
    memory
        .sync_index(std::time::Duration::from_secs(5), |_, _| {})
        .ok();
    println!(
        "remembered as fact:{id}{}",
        if pin { " (pinned)" } else { "" }
    );
    Ok(())
}

fn forget(
    global: &Global,
    ids: &[String],
    query: Option<&str>,
    principal: &str,
    yes: bool,
) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let memory = memory_for_cli(&config)?;
    let mut keys = ids
        .iter()
        .map(|s| s.parse::<hermit::memory::Key>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(q) = query {
        let found = memory.search(principal, q, 50, hermit::memory::Mode::Text, None)?;
        if found.is_empty() {
            eprintln!("nothing in {principal}'s memory matches {q:?}");
        } else {
            eprintln!("these match {q:?}:");
            print_items(&found, &config.agent.timezone);
        }
        keys.extend(found.iter().map(|i| i.key));
    }
    anyhow::ensure!(
        !ids.is_empty() || query.is_some(),
        "name the memories to forget (ids like fact:12) or give --query"
    );
    if keys.is_empty() {
        return Ok(false);
    }
    if !yes {
        use std::io::{BufRead, IsTerminal, Write};
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "forgetting is irreversible: confirm with --yes when not at a terminal"
        );
        eprint!("forget {} memories for good? [y/N] ", keys.len());
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing was forgotten");
            return Ok(false);
        }
    }
    let gone = memory.forget(&keys, Some(principal))?;
    for item in &gone {
        println!("forgotten: {}", item.id);
    }
    let missed = keys.len() - gone.len();
    if missed > 0 {
        eprintln!("{missed} of the ids named are not in {principal}'s memory");
    }
    if let Ok(trust) = hermit::trust::Trust::open(&config) {
        trust.audit.record(
            hermit::vocab::AuditKind::MemoryForget,
            &trust.local_owner().id,
            serde_json::json!({"principal": principal, "ids": gone.iter().map(|i| i.id.clone()).collect::<Vec<_>>()}),
        );
    }
    Ok(!gone.is_empty())
}

fn export(global: &Global, principal: &str) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let memory = open_memory(&config)?
        .ok_or_else(|| anyhow::anyhow!("memory is off ([memory] enabled = false)"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The owner's Matrix events are under their Matrix ID.
    let matrix_id = if principal == hermit::vocab::OWNER {
        config.owner_id()
    } else {
        principal.to_string()
    };
    let n = memory.export(principal, Some(&matrix_id), &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!("exported {n} records held about {principal}");
    Ok(())
}

fn reindex(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let memory = open_memory(&config)?
        .ok_or_else(|| anyhow::anyhow!("memory is off ([memory] enabled = false)"))?;
    let mut conn = memory.conn()?;
    let started = std::time::Instant::now();
    let n = memory.index.rebuild(&mut conn, |done, total| {
        eprintln!("reindexing: {done}/{total}");
    })?;
    eprintln!(
        "reindexed {n} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if memory.has_embeddings() {
        let mut embedded = 0;
        loop {
            let k = memory.embed_pending(&conn, 64)?;
            if k == 0 {
                break;
            }
            embedded += k;
            eprintln!("embedded {embedded}");
        }
    }
    Ok(())
}

fn status(global: &Global, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let memory = memory_for_cli(&config)?;
    let counts = memory.counts()?;
    let indexed = memory.index.len();
    let embeddings = memory.has_embeddings();
    if json {
        let per: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(k, n, e)| {
                (
                    k.name().to_string(),
                    serde_json::json!({"rows": n, "embedded": e}),
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"tables": per, "indexed": indexed, "index_bytes": memory.index.size_on_disk(), "embeddings": embeddings})
        );
    } else {
        for (k, n, e) in &counts {
            println!(
                "{:<11} {n:>9} rows, {e} with a vector",
                format!("{}s", k.name())
            );
        }
        println!(
            "index       {indexed:>9} documents, {}",
            human_size(memory.index.size_on_disk())
        );
        println!(
            "embeddings  {}",
            if embeddings {
                "on"
            } else {
                "off (full text only)"
            }
        );
    }
    Ok(())
}
