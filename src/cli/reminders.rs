//! `hermit reminders list|add|cancel`: reminders and schedules in
//! hermit.db (delivered by `hermit up`).

use hermit::config::Config;
use hermit::reminders::Action;

use super::args::RemindersCommand;
use super::{Global, ensure_data_dir};

pub fn run(global: &Global, command: RemindersCommand) -> anyhow::Result<bool> {
    match command {
        RemindersCommand::List { all, json } => list(global, all, json).map(|()| true),
        RemindersCommand::Add {
            text,
            at,
            every,
            principal,
        } => add(global, &text, at.as_deref(), every.as_deref(), &principal).map(|()| true),
        RemindersCommand::Cancel { id } => cancel(global, id),
    }
}

fn store(config: &Config) -> anyhow::Result<hermit::reminders::Reminders> {
    let data = ensure_data_dir(config)?;
    Ok(hermit::reminders::Reminders::open(&data)?)
}

fn list(global: &Global, all: bool, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let list = store(&config)?.list(None, all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        eprintln!("no active reminders");
    } else {
        for r in &list {
            let who = if r.principal == hermit::vocab::OWNER {
                String::new()
            } else {
                format!(" [{}]", r.principal)
            };
            let status = if r.status == "active" {
                String::new()
            } else {
                format!(" ({})", r.status)
            };
            let what = match r.action {
                Action::Task => format!("task: {}", r.text),
                Action::Watch => format!("watching: {}", r.text),
                Action::Remind | Action::Briefing => r.text.clone(),
            };
            let granted = r
                .grants
                .as_deref()
                .map(|g| format!(" (granted: {g})"))
                .unwrap_or_default();
            println!(
                "{:>4}  {what}{who}{status}\n      {}{granted}",
                r.id,
                r.when()
            );
        }
    }
    Ok(())
}

fn add(
    global: &Global,
    text: &str,
    at: Option<&str>,
    every: Option<&str>,
    principal: &str,
) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let store = store(&config)?;
    let tz = &config.agent.timezone;
    let r = match (at, every) {
        (Some(at), None) => {
            let at = hermit::reminders::parse_local(at, tz).map_err(anyhow::Error::msg)?;
            store.add_once(principal, None, text, at, tz, None)?
        }
        (None, Some(rule)) => store.add_recurring(principal, None, text, rule, tz, None)?,
        _ => anyhow::bail!(
            "give --at \"2026-11-28 18:00\" (once) or --every \"0 8 * * MON-FRI\" (recurring)"
        ),
    };
    println!("reminder {}: {} {}", r.id, r.text, r.when());
    Ok(())
}

fn cancel(global: &Global, id: i64) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    match store(&config)?.cancel(id, None)? {
        Some(r) => {
            println!("cancelled reminder {}: {}", r.id, r.text);
            Ok(true)
        }
        None => {
            eprintln!("there is no active reminder {id}");
            Ok(false)
        }
    }
}
