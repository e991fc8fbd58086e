//! `hermit models list|pull|verify|warm`: the models the registry knows,
//! their state in the model cache, fetching and re-verifying them, and
//! their prompt cache filled ahead of time.

use std::io::IsTerminal;
use std::path::Path;

use hermit::models::{Fit, ModelStatus, Registry};

use super::args::ModelsCommand;
use super::{Global, human_size};

pub fn run(global: &Global, command: ModelsCommand) -> anyhow::Result<bool> {
    match command {
        ModelsCommand::List { json } => list(global, json).map(|()| true),
        ModelsCommand::Pull { name, from } => pull(global, &name, from.as_deref()).map(|()| true),
        ModelsCommand::Verify => verify(global),
        ModelsCommand::Warm { json } => warm(global, json).map(|()| true),
    }
}

fn warm(global: &Global, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    if !config.inference.prompt_cache {
        anyhow::bail!(
            "the prompt cache is off (inference.prompt_cache = false): there is nothing to warm"
        );
    }
    super::ensure_data_dir(&config)?;
    let dir = hermit::inference::EngineSettings::from_config(&config).prompt_cache;
    let engine = super::start_engine(&config)?;
    let trust = std::sync::Arc::new(hermit::trust::Trust::open(&config)?);
    let agent = super::build_agent(&config, engine, trust)?;
    if !json {
        eprintln!(
            "evaluating the prompt prefixes of {} with each intent's tools (a few seconds each)…",
            config.inference.model
        );
    }
    let started = std::time::Instant::now();
    let sets = super::runtime()?.block_on(agent.warm(&config.agent.system_prompt))?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let list: Vec<_> = sets
            .iter()
            .map(|(tools, n)| serde_json::json!({"tools": tools, "evaluated_tokens": n}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": config.inference.model, "dir": dir, "seconds": seconds, "prefixes": list,
            }))?
        );
        return Ok(());
    }
    for (tools, n) in &sets {
        let name = if tools.is_empty() {
            "(no tools)".to_string()
        } else {
            tools.join(", ")
        };
        println!("{name:<48} {n:>5} tokens evaluated");
    }
    println!(
        "{} prefixes in the prompt cache{} in {seconds:.1} s",
        sets.len(),
        dir.map(|d| format!(" ({})", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

fn list(global: &Global, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let reg = Registry::for_config(&config);
    let rows: Vec<_> = reg.models.iter().map(|m| (m, reg.status(m))).collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(m, s)| {
                serde_json::json!({
                    "name": m.name, "role": m.role, "description": m.description,
                    "license": m.license, "file": reg.path_of(m),
                    "size": m.size, "sha256": m.sha256, "status": status_word(s),
                    "default": m.name == config.inference.model, "source": m.source(),
                    "upstream": m.upstream, "tools": m.tools, "agent_suite": m.agent_suite,
                    "fit": (m.role == "chat").then(|| format!("{:?}", m.fit(crate::cli::this_machine())).to_lowercase()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("Models in {}:", reg.dir.display());
    println!(
        "  {:<22} {:<11} {:>9}  {:<10} source",
        "name", "role", "size", "status"
    );
    for (m, s) in &rows {
        let mark = if m.name == config.inference.model {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} {:<22} {:<11} {:>9}  {:<10} {}",
            m.name,
            m.role,
            human_size(m.size),
            status_word(s),
            m.source()
        );
    }
    println!(
        "\n* the configured model. Fetch a missing one with `hermit models pull NAME` or scripts/fetch-models."
    );
    let machine = crate::cli::this_machine();
    println!(
        "\nThis box: {} cores, {} of memory.",
        machine.cores,
        human_size(machine.memory_bytes)
    );
    for m in reg
        .models
        .iter()
        .filter(|m| m.role == "chat" && m.part_of.is_none())
    {
        let fit = match (m.tools, m.fit(machine)) {
            (false, _) => "no tools: for tests only",
            (true, Fit::Good) => "fits",
            (true, Fit::Slow) => "fits, but answers slowly on this many cores",
            (true, Fit::TooBig) => "too big for this memory",
        };
        let suite = m
            .agent_suite
            .as_deref()
            .map(|s| format!("; task suite: {s}"))
            .unwrap_or_default();
        println!("  {:<22} {fit}{suite}", m.name);
    }
    if let Some(best) = reg.recommended(machine) {
        println!(
            "Recommended here: {} (set `inference.model = \"{}\"`; `hermit bench agent --model NAME` measures any of them).",
            best.name, best.name
        );
    }
    Ok(())
}

fn status_word(s: &ModelStatus) -> String {
    match s {
        ModelStatus::Verified => "verified".into(),
        ModelStatus::Missing => "missing".into(),
        ModelStatus::WrongSize(n) => format!("bad size ({n} bytes)"),
        ModelStatus::WrongHash => "BAD SHA-256".into(),
    }
}

fn pull(global: &Global, name: &str, from: Option<&Path>) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let reg = Registry::for_config(&config);
    if let Some(entry) = reg.get(name)
        && reg.status(entry) == ModelStatus::Verified
    {
        println!(
            "{name} is already present and verified: {}",
            reg.path_of(entry).display()
        );
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal();
    let mut last_decile = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        let pct = done * 100 / total.max(1);
        if tty {
            eprint!(
                "\r  {name}: {pct:3}% ({} / {})",
                human_size(done),
                human_size(total)
            );
        } else if pct / 10 != last_decile {
            last_decile = pct / 10;
            eprintln!("  {name}: {pct}%");
        }
    };
    let path = reg.pull(name, from, &mut progress);
    if tty {
        eprintln!();
    }
    println!("{name}: verified and installed at {}", path?.display());
    Ok(())
}

fn verify(global: &Global) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let reg = Registry::for_config(&config);
    let mut all_ok = true;
    for m in &reg.models {
        let path = reg.path_of(m);
        if !path.exists() {
            continue;
        }
        match hermit::models::verify(m, &path, true) {
            Ok(()) => println!("{}: ok", m.name),
            Err(e) => {
                all_ok = false;
                println!("{}: {e}", m.name);
            }
        }
    }
    Ok(all_ok)
}
