//! `hermit tools list|run` (the tools, and one call as the owner) and
//! `hermit files trash|restore` (the workspace's trash).

use anyhow::Context;

use super::args::{FilesCommand, ToolsCommand};
use super::{Global, toolbox};

pub fn run(global: &Global, command: ToolsCommand) -> anyhow::Result<bool> {
    match command {
        ToolsCommand::List { json } => list(global, json).map(|()| true),
        ToolsCommand::Run { name, args } => call(global, &name, &args),
    }
}

pub fn files(global: &Global, command: FilesCommand) -> anyhow::Result<()> {
    match command {
        FilesCommand::Trash => trash(global),
        FilesCommand::Restore { id } => restore(global, &id),
    }
}

fn list(global: &Global, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let tb = toolbox(&config)?;
    let rows: Vec<_> = tb
        .specs()
        .into_iter()
        .map(|s| {
            let tool = tb.get(s.name).expect("listed tool exists");
            let mut effects = tool.effects(&serde_json::json!({}));
            effects.sort();
            (s, effects)
        })
        .collect();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(s, e)| serde_json::json!({"name": s.name, "description": s.description, "parameters": s.parameters, "effects": e}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (s, effects) in rows {
        let effects: Vec<_> = effects
            .iter()
            .map(|e| serde_json::to_value(e).map(|v| v.as_str().unwrap_or("").to_string()))
            .collect::<Result<_, _>>()?;
        println!("{} — {}", s.name, s.description);
        println!("  effects: {}", effects.join(", "));
        println!("  arguments: {}", serde_json::to_string(&s.parameters)?);
        println!();
    }
    println!("workspace: {}", config.workspace().display());
    Ok(())
}

/// `hermit tools run NAME --args JSON`: one call as the owner, through the
/// same decision point and sandbox as the agent's calls.
fn call(global: &Global, name: &str, args: &str) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let arguments: serde_json::Value =
        serde_json::from_str(args).with_context(|| format!("--args is not valid JSON: {args}"))?;
    let tb = toolbox(&config)?;
    let out = tb.call(&hermit::tools::ToolCall {
        name: name.into(),
        arguments,
    })?;
    println!("{}", out.content);
    Ok(out.ok)
}

fn trash(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let trash = hermit::tools::files::Trash::new(&config.data_dir());
    let entries = trash.list();
    if entries.is_empty() {
        println!("the trash is empty");
    }
    for e in entries {
        println!("{}\t{}", e.id, e.original);
    }
    Ok(())
}

fn restore(global: &Global, id: &str) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let ws = hermit::tools::files::Workspace::open(&config.workspace())?;
    let restored = hermit::tools::files::Trash::new(&config.data_dir()).restore(&ws, id)?;
    println!("restored {restored}");
    Ok(())
}
