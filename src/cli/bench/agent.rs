//! `hermit bench agent`: does the assistant do the right thing? A suite of
//! owner requests in everyday words (English and French, `agent_suite.toml`),
//! each with a machine-checked outcome: the right tool with the right
//! arguments, or no tool and an answer that says X, or an approval asked.
//!
//! Each case is a fresh conversation, as the owner's direct chat over
//! Matrix, in a fresh data directory (its own workspace, memory and
//! reminders, set up as the case says) with the real model, tools, policy
//! and sandbox. An approval request is recorded and denied at once, so
//! nothing that asks is ever done. A reply must never show call-shaped
//! text (tool-call JSON, a tools block, a special token).
//!
//! It prints the success rate per category and overall, the needless
//! approvals, the median and p90 turn latency, prompt tokens per turn and
//! the first turn's time to its first token (a fresh data directory, a
//! freshly loaded model).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use hermit::agent::{Agent, Conversation, Op, TurnEvent};
use hermit::tools::ToolCall;
use hermit::trust::Trust;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::cli::{Global, open_memory, runtime, start_engine, toolbox_with};

const SUITE: &str = include_str!("agent_suite.toml");

#[derive(Debug, Deserialize)]
struct Suite {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    category: String,
    lang: String,
    say: String,
    #[serde(default)]
    facts: Vec<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    calls: Vec<ToolCall>,
    tools: Option<Vec<String>>,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default)]
    reply: Vec<String>,
    #[serde(default)]
    not_reply: Vec<String>,
    #[serde(default)]
    ask: bool,
    #[serde(default)]
    asks: Vec<String>,
}

/// One case's result.
#[derive(Debug, Serialize)]
struct CaseResult {
    id: String,
    category: String,
    lang: String,
    passed: bool,
    /// Why it failed (empty when it passed).
    failures: Vec<String>,
    reply: String,
    calls: Vec<ToolCall>,
    approvals: Vec<String>,
    should_ask: bool,
    needless_approval: bool,
    latency_ms: f64,
    first_token_ms: Option<f64>,
    prompt_tokens: usize,
    evaluated_tokens: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    threads: u32,
    cases: usize,
    passed: usize,
    success_rate: f64,
    categories: BTreeMap<String, (usize, usize)>,
    languages: BTreeMap<String, (usize, usize)>,
    /// Approvals asked where none should be, over the cases that should not ask.
    needless_approvals: usize,
    needless_approval_rate: f64,
    /// Needless approvals in small talk, knowledge, arithmetic and time.
    needless_approvals_no_tool_categories: usize,
    median_latency_ms: f64,
    p90_latency_ms: f64,
    mean_prompt_tokens: f64,
    mean_evaluated_tokens: f64,
    /// The first case's first visible token: a fresh data directory and a
    /// model just loaded (nothing cached).
    first_turn_first_token_ms: Option<f64>,
    results: Vec<CaseResult>,
}

/// Call-shaped text a person must never see.
const CALL_SHAPED: &str =
    r#"\{\s*\{?\s*"name"\s*:|</?tool_call>|</?tools>|<\|[a-z_]+\|>|<function\b"#;

pub fn run(
    global: &Global,
    json: bool,
    suite: Option<&Path>,
    only: Option<&str>,
) -> anyhow::Result<()> {
    let text = match suite {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => SUITE.to_string(),
    };
    let suite: Suite = toml::from_str(&text).context("the task suite does not parse")?;
    let only = only
        .map(Regex::new)
        .transpose()
        .context("--only is not a valid regex")?;
    let cases: Vec<Case> = suite
        .case
        .into_iter()
        .filter(|c| {
            only.as_ref()
                .is_none_or(|r| r.is_match(&c.id) || r.is_match(&c.category))
        })
        .collect();
    anyhow::ensure!(!cases.is_empty(), "no case matches --only");
    let config = global.load_config()?;
    let root = std::env::temp_dir().join(format!("hermit-bench-agent-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let _cleanup = Cleanup(root.clone());
    // The engine's own data directory (its prompt cache starts empty).
    let mut engine_config = config.clone();
    engine_config.paths.data_dir = Some(root.join("engine"));
    engine_config.paths.workspace = None;
    let engine = start_engine(&engine_config)?;
    let info = engine.info().clone();
    if !json {
        eprintln!(
            "{} cases, model {} ({} threads); each case is a fresh conversation in a fresh data directory",
            cases.len(),
            info.name,
            info.threads
        );
    }
    let rt = runtime()?;
    let mut results = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let mut case_config = config.clone();
        case_config.paths.data_dir = Some(root.join(format!("case-{n}")));
        case_config.paths.workspace = None;
        let result = rt
            .block_on(run_case(&case_config, engine.clone(), case, n))
            .with_context(|| format!("case {}", case.id))?;
        if !json {
            eprintln!(
                "[{}/{}] {:<14} {} {:>6.1} s  {}{}",
                n + 1,
                cases.len(),
                result.id,
                if result.passed { "ok  " } else { "FAIL" },
                result.latency_ms / 1000.0,
                case.say,
                if result.passed {
                    String::new()
                } else {
                    format!(
                        "\n      {}\n      reply: {:?}",
                        result.failures.join("; "),
                        result.reply
                    )
                }
            );
        }
        results.push(result);
    }
    let report = summarize(&info.name, info.threads, results);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run_case(
    config: &hermit::config::Config,
    engine: hermit::inference::Engine,
    case: &Case,
    n: usize,
) -> anyhow::Result<CaseResult> {
    crate::cli::ensure_data_dir(config)?;
    let trust = Arc::new(Trust::open(config)?);
    let memory = open_memory(config)?;
    let toolbox = toolbox_with(config, trust.clone(), memory.clone())?;
    let owner = trust.local_owner();
    let room = format!("!bench{n}:hermit.local");
    let conversation = hermit::vocab::ConversationKey::matrix(room.as_str(), 0);
    // The case's world: files, facts, earlier calls.
    let workspace = toolbox.ctx.workspace.clone();
    for (path, content) in &case.files {
        let p = workspace.join(path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
            give_like(&workspace, dir);
        }
        std::fs::write(&p, content)?;
        give_like(&workspace, &p);
    }
    if let Some(m) = &memory {
        for f in &case.facts {
            m.remember(&hermit::memory::principal_key(&owner), f, None, false, None)?;
        }
    }
    for call in &case.calls {
        let meta = hermit::tools::CallMeta {
            conversation: Some(conversation.clone()),
            ..Default::default()
        };
        let out = toolbox
            .run_checked_in(call, &meta)
            .with_context(|| format!("setup call {}", call.name))?;
        anyhow::ensure!(out.ok, "setup call {} failed: {}", call.name, out.content);
    }
    if let Some(m) = &memory {
        m.catch_up()?;
    }
    let mut agent = Agent::new(
        engine,
        Some(toolbox),
        config.agent.max_tool_steps,
        std::time::Duration::from_secs(config.agent.turn_timeout_seconds),
    )?
    .with_trust(trust.clone());
    if let Some(m) = memory {
        agent = agent.with_memory(m);
    }
    let mut conv = Conversation::new(config.agent.system_prompt.clone());
    conv.key = conversation;
    conv.place = room;
    // As in a chat: a request for the owner ends the turn saying it waits.
    conv.defer_approvals = true;
    let mut calls = Vec::new();
    let mut results: Vec<(String, bool)> = Vec::new();
    let (codes_tx, mut codes) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let mut last_call = String::new();
    let on_event = |ev: TurnEvent| match ev {
        TurnEvent::ToolCall(c) => {
            last_call = c.name.clone();
            calls.push(c);
        }
        TurnEvent::ToolResult { name, ok, .. } => results.push((name, ok)),
        TurnEvent::Approval { code, .. } => {
            let _ = codes_tx.send((code, last_call.clone()));
        }
        TurnEvent::Token(_) => {}
    };
    let started = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut approvals = Vec::new();
    let outcome = {
        let turn = agent.submit(&mut conv, Op::typed(&case.say), on_event, cancel);
        tokio::pin!(turn);
        loop {
            tokio::select! {
                r = &mut turn => break r,
                Some((code, tool)) = codes.recv() => {
                    approvals.push(tool);
                    // Denied at once: nothing that asks is done.
                    let _ = trust.decide_at_box(&code, false, "bench");
                }
            }
        }
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    while let Ok((_, tool)) = codes.try_recv() {
        approvals.push(tool);
    }
    agent.forget(&conv);
    let mut failures = Vec::new();
    let (reply, usage) = match outcome {
        Ok(o) => {
            if let Some(why) = &o.limited {
                failures.push(format!("limited: {why}"));
            }
            (o.reply.trim().to_string(), o.usage)
        }
        Err(e) => {
            failures.push(format!("error: {e}"));
            (String::new(), Default::default())
        }
    };
    check(case, &reply, &calls, &results, &approvals, &mut failures)?;
    Ok(CaseResult {
        id: case.id.clone(),
        category: case.category.clone(),
        lang: case.lang.clone(),
        passed: failures.is_empty(),
        failures,
        reply,
        calls,
        should_ask: case.ask,
        needless_approval: needless(case, &approvals),
        approvals,
        latency_ms,
        first_token_ms: usage.first_token_ms,
        prompt_tokens: usage.prompt_tokens,
        evaluated_tokens: usage.evaluated_tokens,
    })
}

/// Setup files belong to the workspace's owner (the tool user when Hermit
/// runs as root), as files Hermit's tools write do.
fn give_like(workspace: &Path, path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(workspace) {
        let _ = std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid()));
    }
}

fn check(
    case: &Case,
    reply: &str,
    calls: &[ToolCall],
    results: &[(String, bool)],
    approvals: &[String],
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let re = |s: &str| {
        Regex::new(&format!("(?i){s}"))
            .with_context(|| format!("case {}: bad regex {s:?}", case.id))
    };
    if re(CALL_SHAPED)?.is_match(reply) {
        failures.push("call-shaped text shown".into());
    }
    if reply.is_empty() && !case.ask {
        failures.push("no reply".into());
    }
    match &case.tools {
        Some(t) if t.is_empty() && !calls.is_empty() => {
            let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
            failures.push(format!("called {names:?}, expected no tool"));
        }
        Some(t) if t.is_empty() => {}
        Some(tools) => {
            for tool in tools {
                if !calls.iter().any(|c| &c.name == tool) {
                    let names: Vec<_> = calls.iter().map(|c| c.name.as_str()).collect();
                    failures.push(format!("did not call {tool} (called {names:?})"));
                } else if case.ask || case.asks.contains(tool) {
                    if !approvals.contains(tool) {
                        failures.push(format!("{tool} ran without asking"));
                    }
                } else if !results.iter().any(|(n, ok)| n == tool && *ok) {
                    failures.push(format!("{tool} did not succeed"));
                }
            }
        }
        None => {}
    }
    for (key, pattern) in &case.args {
        let (tool, arg) = key
            .split_once('.')
            .with_context(|| format!("case {}: args key {key:?} is not tool.argument", case.id))?;
        if let Some(c) = calls.iter().find(|c| c.name == tool) {
            let value = match &c.arguments[arg] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                v => v.to_string(),
            };
            if !re(pattern)?.is_match(&value) {
                failures.push(format!("{key} = {value:?} does not match {pattern:?}"));
            }
        }
    }
    for pattern in &case.reply {
        if !re(pattern)?.is_match(reply) {
            failures.push(format!("reply does not match {pattern:?}"));
        }
    }
    for pattern in &case.not_reply {
        if re(pattern)?.is_match(reply) {
            failures.push(format!("reply matches {pattern:?}"));
        }
    }
    if case.ask && approvals.is_empty() {
        failures.push("no approval was asked".into());
    }
    if needless(case, approvals) {
        failures.push(format!("needless approval for {approvals:?}"));
    }
    Ok(())
}

/// An approval asked where the case asks none: not `ask`, and for a tool
/// not in `asks`.
fn needless(case: &Case, approvals: &[String]) -> bool {
    !case.ask && approvals.iter().any(|a| !case.asks.contains(a))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summarize(model: &str, threads: u32, results: Vec<CaseResult>) -> Report {
    let mut categories: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut languages: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &results {
        let c = categories.entry(r.category.clone()).or_default();
        c.0 += r.passed as usize;
        c.1 += 1;
        let l = languages.entry(r.lang.clone()).or_default();
        l.0 += r.passed as usize;
        l.1 += 1;
    }
    let mut latencies: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let n = results.len().max(1) as f64;
    let passed = results.iter().filter(|r| r.passed).count();
    let should_not_ask = results.iter().filter(|r| !r.should_ask).count();
    let needless = results.iter().filter(|r| r.needless_approval).count();
    const NO_TOOL: [&str; 4] = ["small_talk", "knowledge", "arithmetic", "time"];
    Report {
        model: model.to_string(),
        threads,
        cases: results.len(),
        passed,
        success_rate: passed as f64 / n,
        categories,
        languages,
        needless_approvals: needless,
        needless_approval_rate: needless as f64 / should_not_ask.max(1) as f64,
        needless_approvals_no_tool_categories: results
            .iter()
            .filter(|r| r.needless_approval && NO_TOOL.contains(&r.category.as_str()))
            .count(),
        median_latency_ms: percentile(&latencies, 0.5),
        p90_latency_ms: percentile(&latencies, 0.9),
        mean_prompt_tokens: results.iter().map(|r| r.prompt_tokens as f64).sum::<f64>() / n,
        mean_evaluated_tokens: results
            .iter()
            .map(|r| r.evaluated_tokens as f64)
            .sum::<f64>()
            / n,
        first_turn_first_token_ms: results.first().and_then(|r| r.first_token_ms),
        results,
    }
}

fn print_report(r: &Report) {
    println!(
        "model {} ({} threads), {} cases",
        r.model, r.threads, r.cases
    );
    println!();
    println!("| category | passed | rate |");
    println!("|---|---:|---:|");
    for (cat, (p, n)) in &r.categories {
        println!(
            "| {cat} | {p}/{n} | {:.0}% |",
            100.0 * *p as f64 / *n as f64
        );
    }
    for (lang, (p, n)) in &r.languages {
        println!(
            "| (language {lang}) | {p}/{n} | {:.0}% |",
            100.0 * *p as f64 / *n as f64
        );
    }
    println!(
        "| **overall** | **{}/{}** | **{:.0}%** |",
        r.passed,
        r.cases,
        100.0 * r.success_rate
    );
    println!();
    println!(
        "needless approvals      {} ({:.0}% of the turns that should not ask; {} in small talk, knowledge, arithmetic and time)",
        r.needless_approvals,
        100.0 * r.needless_approval_rate,
        r.needless_approvals_no_tool_categories
    );
    println!(
        "turn latency            median {:.1} s, p90 {:.1} s",
        r.median_latency_ms / 1000.0,
        r.p90_latency_ms / 1000.0
    );
    println!(
        "prompt tokens per turn  {:.0} (of which evaluated {:.0})",
        r.mean_prompt_tokens, r.mean_evaluated_tokens
    );
    match r.first_turn_first_token_ms {
        Some(ms) => println!(
            "first turn, first token {:.1} s (fresh data directory, model just loaded)",
            ms / 1000.0
        ),
        None => println!("first turn, first token -"),
    }
}

#[cfg(test)]
mod tests {
    /// The suite parses, its ids are unique and its regexes compile.
    #[test]
    fn the_suite_is_well_formed() {
        let suite: super::Suite = toml::from_str(super::SUITE).unwrap();
        assert!(suite.case.len() >= 60);
        let mut ids = std::collections::HashSet::new();
        for c in &suite.case {
            assert!(ids.insert(c.id.clone()), "duplicate id {}", c.id);
            for r in c.reply.iter().chain(&c.not_reply).chain(c.args.values()) {
                regex::Regex::new(r).unwrap_or_else(|e| panic!("{}: {e}", c.id));
            }
        }
    }
}
