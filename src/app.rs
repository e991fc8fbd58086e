//! The commands behind `hermit`'s command line: each takes parsed options,
//! does its work through the library and reports to the person at the
//! terminal. `src/main.rs` only parses arguments and calls these.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Config, ConfigError};
use crate::inference::{Engine, EngineSettings, InferenceError};
use crate::models::{ModelError, ModelStatus, Registry};

/// Exit codes, documented in the README.
pub mod exit {
    /// A configuration problem: bad file, unknown key, bad value.
    pub const CONFIG: u8 = 2;
    /// A model problem: unknown, missing, not GGUF, failed verification, failed to load.
    pub const MODEL: u8 = 3;
    /// Anything else.
    pub const OTHER: u8 = 1;
}

/// Options every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub model: Option<String>,
}

impl Global {
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let path = self
            .config
            .clone()
            .or_else(|| std::env::var_os("HERMIT_CONFIG").map(PathBuf::from));
        let mut config = Config::load(path.as_deref(), std::env::vars())?;
        if let Some(m) = &self.model {
            config.inference.model = m.clone();
        }
        Ok(config)
    }
}

/// Sets up logging to stderr: `HERMIT_LOG` (tracing's filter syntax),
/// warnings only by default. llama.cpp's own log lines go through it too.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERMIT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,llama-cpp-2=error,matrix_sdk_crypto=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::trust::redact::RedactingStderr)
        .without_time()
        .try_init();
}

/// Logging for `hermit up`: what the daemon does, at `info`, readable or
/// as JSON lines; `HERMIT_LOG` overrides the filter.
pub fn init_daemon_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERMIT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,llama-cpp-2=error,matrix_sdk=warn,matrix_sdk::http_client=off,matrix_sdk_crypto=error,matrix_sdk_base=warn,matrix_sdk_sqlite=warn",
        )
    });
    // Every line passes the redaction filter (secrets, tokens).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::trust::redact::RedactingStderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// `hermit status`: asks the running daemon.
pub fn status(global: &Global, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let rt = runtime()?;
    let data = config.data_dir();
    let Some(mut client) = rt.block_on(crate::control::connect(&data)) else {
        if json {
            println!("{}", serde_json::json!({"running": false}));
        } else {
            println!(
                "Hermit is not running (no daemon answers at {}). Start it with `hermit up`.",
                data.join(crate::control::SOCKET).display()
            );
        }
        return Ok(false);
    };
    let s = rt.block_on(client.status())?;
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["running"] = true.into();
        println!("{v}");
    } else {
        let up = s.uptime_seconds;
        println!("Hermit is running.");
        println!("  model:      {} ({} threads)", s.model, s.threads);
        println!(
            "  up:         {}h {:02}m {:02}s",
            up / 3600,
            up / 60 % 60,
            up % 60
        );
        println!("  queue:      {} waiting", s.queue);
        println!("  model calls: {} since start", s.model_calls);
        println!("  homeserver: {}", s.homeserver);
        println!(
            "  bot:        {} (device {})",
            s.bot,
            s.device.as_deref().unwrap_or("?")
        );
    }
    Ok(true)
}

/// Prints an error for a person and picks the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    let code = if err.chain().any(|e| e.is::<ConfigError>()) {
        exit::CONFIG
    } else if err.chain().any(|e| {
        e.is::<ModelError>()
            || matches!(
                e.downcast_ref::<InferenceError>(),
                Some(InferenceError::Load { .. })
            )
    }) {
        exit::MODEL
    } else {
        exit::OTHER
    };
    ExitCode::from(code)
}

pub(crate) fn registry(config: &Config) -> Registry {
    Registry::builtin(config.models_dir())
}

/// Resolves, verifies and loads the configured model.
pub fn start_engine(config: &Config) -> anyhow::Result<Engine> {
    let model = registry(config).resolve(&config.inference.model)?;
    if !model.verified {
        tracing::warn!(
            path = %model.path.display(),
            "this model is not listed in models/models.toml; its integrity is not verified"
        );
    }
    if config.inference.prompt_cache {
        ensure_data_dir(config)?;
    }
    let settings = EngineSettings::from_config(config);
    Ok(Engine::start(model, settings)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn chat(global: &Global, system: Option<String>) -> anyhow::Result<()> {
    let config = global.load_config()?;
    // A running daemon answers through its control socket, unless this
    // chat asks for something of its own (another model or system prompt).
    if global.model.is_none() && system.is_none() {
        let rt = runtime()?;
        let data = config.data_dir();
        if let Some(client) = rt.block_on(crate::control::connect(&data)) {
            return rt.block_on(crate::channels::terminal::run(
                crate::channels::terminal::Backend::Remote(client),
            ));
        }
    }
    let engine = start_engine(&config)?;
    let system = system.unwrap_or(config.agent.system_prompt.clone());
    let memory = open_memory(&config)?;
    let toolbox = if config.agent.tools {
        ensure_data_dir(&config)?;
        let trust = std::sync::Arc::new(crate::trust::Trust::open(&config)?);
        Some(toolbox_with(&config, trust, memory.clone())?)
    } else {
        None
    };
    let mut agent = crate::agent::Agent::new(
        engine,
        toolbox,
        config.agent.max_tool_steps,
        std::time::Duration::from_secs(config.agent.turn_timeout_seconds),
    )?;
    if let Some(m) = memory {
        m.start_worker();
        agent = agent.with_memory(m);
    }
    runtime()?.block_on(crate::channels::terminal::run(
        crate::channels::terminal::Backend::Local {
            agent,
            system_prompt: system,
        },
    ))
}

pub fn models_list(global: &Global, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let reg = registry(&config);
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
                    "upstream": m.upstream,
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

fn human_size(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", n as f64 / (1u64 << 20) as f64)
    }
}

pub fn models_pull(global: &Global, name: &str, from: Option<&Path>) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let reg = registry(&config);
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

pub fn models_verify(global: &Global) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let reg = registry(&config);
    let mut all_ok = true;
    for m in &reg.models {
        let path = reg.path_of(m);
        if !path.exists() {
            continue;
        }
        match crate::models::verify(m, &path, true) {
            Ok(()) => println!("{}: ok", m.name),
            Err(e) => {
                all_ok = false;
                println!("{}: {e}", m.name);
            }
        }
    }
    Ok(all_ok)
}

pub fn bench_llm(global: &Global, json: bool, reps: u32) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let engine = start_engine(&config)?;
    let result = runtime()?.block_on(crate::bench::llm(&engine, reps, |step| {
        if !json {
            eprintln!("  {step}…");
        }
    }))?;
    if json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("model            {}", result.model);
        println!("threads          {}", result.threads);
        println!("build            {}", result.build);
        println!(
            "pp{:<4}  tokens/s {:>9.2}",
            result.prompt_tokens, result.pp_tokens_per_s
        );
        println!(
            "tg{:<4}  tokens/s {:>9.2}",
            result.gen_tokens, result.tg_tokens_per_s
        );
        println!(
            "time to first token, {} history tokens: first turn {:.0} ms, second turn {:.0} ms ({} tokens evaluated), {:.1}x lower",
            result.history_tokens,
            result.ttft_first_turn_ms,
            result.ttft_second_turn_ms,
            result.second_turn_evaluated_tokens,
            result.ttft_first_turn_ms / result.ttft_second_turn_ms.max(1e-9)
        );
    }
    Ok(())
}

/// One line of `hermit doctor`.
#[derive(Debug, serde::Serialize)]
struct Check {
    check: &'static str,
    /// "ok", "warn" or "fail"; any "fail" makes the exit code non-zero.
    verdict: &'static str,
    detail: String,
}

fn check(check: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        check,
        verdict: if ok { "ok" } else { "fail" },
        detail: detail.into(),
    }
}

pub fn doctor(global: &Global, json: bool) -> anyhow::Result<bool> {
    let mut checks = vec![Check {
        check: "build",
        verdict: "ok",
        detail: format!(
            "hermit {} built for {}",
            env!("CARGO_PKG_VERSION"),
            crate::inference::build_target()
        ),
    }];
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            (
                "avx2",
                cfg!(target_feature = "avx2") && !std::arch::is_x86_feature_detected!("avx2"),
            ),
            (
                "fma",
                cfg!(target_feature = "fma") && !std::arch::is_x86_feature_detected!("fma"),
            ),
            (
                "f16c",
                cfg!(target_feature = "f16c") && !std::arch::is_x86_feature_detected!("f16c"),
            ),
            (
                "bmi2",
                cfg!(target_feature = "bmi2") && !std::arch::is_x86_feature_detected!("bmi2"),
            ),
        ]
        .into_iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| f)
        .collect();
        checks.push(check(
            "cpu",
            missing.is_empty(),
            if missing.is_empty() {
                format!(
                    "has every feature the binary needs; {} physical cores",
                    crate::inference::physical_cores()
                )
            } else {
                format!("LACKS {} (rebuild for this machine)", missing.join(", "))
            },
        ));
    }
    let config = match global.load_config() {
        Ok(c) => {
            checks.push(check("config", true, "valid"));
            Some(c)
        }
        Err(e) => {
            checks.push(check("config", false, e.to_string()));
            None
        }
    };
    let support = crate::sandbox::probe();
    let allow_weaker = config.as_ref().is_some_and(|c| c.sandbox.allow_weaker);
    for (name, ok, detail) in [
        (
            "sandbox: landlock",
            support.landlock_abi >= 1,
            format!("ABI {}", support.landlock_abi),
        ),
        ("sandbox: seccomp", support.seccomp, String::new()),
        (
            "sandbox: namespaces",
            support.namespaces,
            "PID and network".to_string(),
        ),
        (
            "sandbox: process limit",
            support.process_limit,
            if support.root {
                "cgroup pids controller (running as root)"
            } else {
                "RLIMIT_NPROC"
            }
            .to_string(),
        ),
    ] {
        checks.push(Check {
            check: name,
            verdict: match (ok, allow_weaker) {
                (true, _) => "ok",
                (false, true) => "warn",
                (false, false) => "fail",
            },
            detail: if ok {
                detail
            } else {
                format!("missing: tools refuse to run unless sandbox.allow_weaker = true {detail}")
            },
        });
    }
    let Some(config) = config else {
        return Ok(report_checks(&checks, json));
    };
    checks.push(data_dir_check(&config.data_dir()));
    ensure_data_dir(&config)?;
    let ctx = crate::tools::ToolContext {
        workspace: config.workspace(),
        data_dir: config.data_dir(),
        sandbox: crate::sandbox::Sandbox::current()?,
        limits: config.sandbox.limits.clone(),
        allow_weaker: config.sandbox.allow_weaker,
        network: false,
        fetch: Default::default(),
        timezone: String::new(),
        memory: None,
    };
    checks.push(match probe_sandbox(&ctx) {
        Ok(()) => check(
            "sandbox: probe",
            true,
            "a sandboxed process ran, and could not write outside the workspace nor open a socket",
        ),
        Err(e) => check("sandbox: probe", false, e.to_string()),
    });
    let h = &config.homeserver;
    let loopback = h
        .bind
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback());
    checks.push(Check {
        check: "listeners",
        verdict: if loopback { "ok" } else { "warn" },
        detail: format!(
            "Synapse {} on {}:{}{}; control socket {} (0600)",
            if h.managed {
                "(managed)"
            } else {
                "(not managed here)"
            },
            h.bind,
            h.port,
            if loopback {
                ", loopback only".to_string()
            } else {
                ", ON THE NETWORK, with TLS".to_string()
            },
            config.data_dir().join(crate::control::SOCKET).display()
        ),
    });
    if h.managed {
        checks.push(match crate::homeserver::synapse_python(&config) {
            Ok(p) => check(
                "homeserver",
                true,
                format!("Synapse installed ({})", p.display()),
            ),
            Err(e) => check("homeserver", false, e.to_string()),
        });
    }
    let secrets_dir = config.data_dir().join("secrets");
    checks.push(if !secrets_dir.exists() {
        Check {
            check: "secrets",
            verdict: "warn",
            detail: "none yet: run `hermit init` (or `hermit up`) to create the accounts".into(),
        }
    } else {
        match crate::secrets::Secrets::open(&config.data_dir()).and_then(|s| {
            for name in [
                crate::secrets::names::BOT_PASSWORD,
                crate::secrets::names::STORE_PASSPHRASE,
            ] {
                s.get(name)?;
            }
            Ok(s)
        }) {
            Ok(s) => check(
                "secrets",
                true,
                format!("{} (0700, files 0600)", s.dir().display()),
            ),
            Err(e) => check("secrets", false, e.to_string()),
        }
    });
    checks.push(check(
        "owner",
        true,
        format!(
            "{}; members: {}",
            config.owner_id(),
            if config.matrix.members.is_empty() {
                "none".to_string()
            } else {
                config.matrix.members.join(", ")
            }
        ),
    ));
    // The trust layer: the audit chain whole, the stop switch's state,
    // the policy in force for the owner.
    let db_path = config.data_dir().join("hermit.db");
    if db_path.exists() {
        checks.push(
            match crate::db::open(&db_path)
                .map_err(anyhow::Error::from)
                .and_then(|db| Ok(crate::trust::audit::verify(&db, &config.data_dir())?))
            {
                Ok(v) => match v.problem {
                    None => check("audit log", true, format!("intact, {} entries", v.entries)),
                    Some(p) => check("audit log", false, format!("BROKEN: {p}")),
                },
                Err(e) => check("audit log", false, e.to_string()),
            },
        );
        if let Ok(db) = crate::db::open(&db_path) {
            let halted = crate::trust::halt::halted_by(&db);
            checks.push(Check {
                check: "stop switch",
                verdict: if halted.is_some() { "warn" } else { "ok" },
                detail: match halted {
                    Some(by) => {
                        format!("STOPPED by {by}: nothing runs until `hermit resume` or !resume")
                    }
                    None => "off".into(),
                },
            });
        }
    }
    if let Some(owner) = config.policy.rules("owner") {
        let mut open: Vec<&str> = Vec::new();
        for (name, rule) in [
            ("write", owner.write),
            ("exec", owner.exec),
            ("network", owner.network),
            ("message", owner.message),
            ("irreversible", owner.irreversible),
        ] {
            if rule == crate::trust::policy::Rule::Allow {
                open.push(name);
            }
        }
        checks.push(Check {
            check: "policy",
            verdict: if open.is_empty() { "ok" } else { "warn" },
            detail: if open.is_empty() {
                "the owner approves every effect beyond read".into()
            } else {
                format!(
                    "runs without asking the owner: {} (still asks after untrusted text)",
                    open.join(", ")
                )
            },
        });
    }
    checks.push(Check {
        check: "network for tools",
        verdict: if config.sandbox.network || config.fetch.enabled {
            "warn"
        } else {
            "ok"
        },
        detail: format!(
            "shell network {}, fetch {}",
            if config.sandbox.network { "ON" } else { "off" },
            if config.fetch.enabled {
                format!("ON for {}", config.fetch.allow_hosts.join(", "))
            } else {
                "off".into()
            }
        ),
    });
    let reg = registry(&config);
    // Memory: on or off, and whether recall is semantic or full text.
    checks.push(if !config.memory.enabled {
        Check {
            check: "memory",
            verdict: "ok",
            detail: "off ([memory] enabled = false): nothing is kept or recalled".into(),
        }
    } else if !config.memory.embeddings {
        Check {
            check: "memory",
            verdict: "ok",
            detail: "on, full text only ([memory] embeddings = false)".into(),
        }
    } else {
        match reg.resolve_embeddings(&config.memory.embedding_model) {
            Ok(dir) => Check {
                check: "memory",
                verdict: "ok",
                detail: format!("on, full text and embeddings ({}, verified)", dir.display()),
            },
            Err(e) => Check {
                check: "memory",
                verdict: "warn",
                detail: format!("on, full text only: {e}"),
            },
        }
    });
    checks.push(match reg.resolve(&config.inference.model) {
        Ok(m) => Check {
            check: "model",
            verdict: if m.verified { "ok" } else { "warn" },
            detail: format!(
                "{} at {} ({})",
                m.name,
                m.path.display(),
                if m.verified {
                    "verified"
                } else {
                    "not listed in models.toml, unverified"
                }
            ),
        },
        Err(e) => check("model", false, e.to_string()),
    });
    checks.push(voice_check(&config));
    Ok(report_checks(&checks, json))
}

/// Voice: off, or the speech worker started in its sandbox and loaded its
/// model (a real start, as the first voice note would).
fn voice_check(config: &Config) -> Check {
    if !config.voice.enabled {
        return check("voice", true, "off ([voice] enabled = false)");
    }
    let settings = match crate::voice::VoiceSettings::from_config(config) {
        Ok(s) => s,
        Err(e) => {
            return Check {
                check: "voice",
                verdict: "warn",
                detail: format!("on, but voice notes get an apology: {e}"),
            };
        }
    };
    let detail = format!(
        "{} ({} threads, language {}), worker {}",
        settings.model.display(),
        settings.threads,
        settings.language,
        settings.worker.display()
    );
    let voice = crate::voice::Voice::new(settings);
    let started = std::time::Instant::now();
    let heard = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(voice.ensure_started())
            .map_err(|e| e.to_string())
    });
    match heard {
        Ok(()) => check(
            "voice",
            true,
            format!(
                "{detail}: the worker started in its sandbox and loaded the model ({} ms)",
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => check("voice", false, format!("{detail}: {e}")),
    }
}

/// The data directory holds the trash, scratch space and (later) the
/// database and secrets: nobody but the daemon's user may read it.
fn data_dir_check(dir: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(dir) {
        Err(_) => Check {
            check: "data directory",
            verdict: "ok",
            detail: format!("{} not created yet (it is made 0700)", dir.display()),
        },
        Ok(md) => {
            let mode = md.permissions().mode() & 0o777;
            check(
                "data directory",
                mode & 0o077 == 0,
                format!(
                    "{} mode {mode:o}{}",
                    dir.display(),
                    if mode & 0o077 == 0 {
                        ""
                    } else {
                        ": readable by others; chmod 700 it"
                    }
                ),
            )
        }
    }
}

fn report_checks(checks: &[Check], json: bool) -> bool {
    let ok = checks.iter().all(|c| c.verdict != "fail");
    if json {
        println!("{}", serde_json::json!({ "ok": ok, "checks": checks }));
    } else {
        for c in checks {
            println!(
                "{:<5} {:<24} {}",
                c.verdict.to_uppercase(),
                c.check,
                c.detail
            );
        }
        println!(
            "\n{}",
            if ok {
                "no critical finding"
            } else {
                "critical findings above"
            }
        );
    }
    ok
}

/// Creates the data directory, readable by its owner only, if it is missing.
fn ensure_data_dir(config: &Config) -> anyhow::Result<PathBuf> {
    let data = config.data_dir();
    if !data.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    }
    Ok(data)
}

fn toolbox(config: &Config) -> anyhow::Result<crate::tools::Toolbox> {
    ensure_data_dir(config)?;
    let trust = std::sync::Arc::new(crate::trust::Trust::open(config)?);
    toolbox_with(config, trust, open_memory(config)?)
}

/// Memory, unless `[memory] enabled = false`. Without the embedding model
/// (or with `embeddings = false`) search is full text only, said once.
fn open_memory(config: &Config) -> anyhow::Result<Option<std::sync::Arc<crate::memory::Memory>>> {
    if !config.memory.enabled {
        return Ok(None);
    }
    let data = ensure_data_dir(config)?;
    let embeddings = if config.memory.embeddings {
        match registry(config).resolve_embeddings(&config.memory.embedding_model) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::warn!(error = %e, "semantic recall is off; memory search is full text only");
                None
            }
        }
    } else {
        None
    };
    let memory = crate::memory::Memory::open(
        &data,
        embeddings,
        crate::memory::MemorySettings {
            recall_items: config.memory.recall_items,
            recall_tokens: config.memory.recall_tokens,
            timezone: config.agent.timezone.clone(),
        },
    )?;
    Ok(Some(std::sync::Arc::new(memory)))
}

fn toolbox_with(
    config: &Config,
    trust: std::sync::Arc<crate::trust::Trust>,
    memory: Option<std::sync::Arc<crate::memory::Memory>>,
) -> anyhow::Result<crate::tools::Toolbox> {
    let sandbox = crate::sandbox::Sandbox::current()?;
    Ok(crate::tools::Toolbox::builtin(
        crate::tools::ToolContext {
            workspace: config.workspace(),
            data_dir: config.data_dir(),
            sandbox,
            limits: config.sandbox.limits.clone(),
            allow_weaker: config.sandbox.allow_weaker,
            network: config.sandbox.network,
            fetch: config.fetch.clone(),
            timezone: config.agent.timezone.clone(),
            memory,
        },
        trust,
    ))
}

pub fn tools_list(global: &Global, json: bool) -> anyhow::Result<()> {
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
pub fn tools_run(global: &Global, name: &str, args: &str) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let arguments: serde_json::Value =
        serde_json::from_str(args).with_context(|| format!("--args is not valid JSON: {args}"))?;
    let tb = toolbox(&config)?;
    let out = tb.call(&crate::tools::ToolCall {
        name: name.into(),
        arguments,
    })?;
    println!("{}", out.content);
    Ok(out.ok)
}

pub fn files_trash(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let trash = crate::tools::files::Trash::new(&config.data_dir());
    let entries = trash.list();
    if entries.is_empty() {
        println!("the trash is empty");
    }
    for e in entries {
        println!("{}\t{}", e.id, e.original);
    }
    Ok(())
}

pub fn files_restore(global: &Global, id: &str) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let ws = crate::tools::files::Workspace::open(&config.workspace())?;
    let restored = crate::tools::files::Trash::new(&config.data_dir()).restore(&ws, id)?;
    println!("restored {restored}");
    Ok(())
}

pub fn bench_sandbox(global: &Global, json: bool, runs: usize) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let tb = toolbox(&config)?;
    let r = crate::bench::sandbox(&tb.ctx.sandbox, &tb.ctx.sandbox_policy(), runs)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} runs: plain fork+exec of true {:.2} ms, sandboxed {:.2} ms (median); sandbox adds {:.2} ms ({:.1}x)",
            r.runs, r.plain_median_ms, r.sandboxed_median_ms, r.added_ms, r.ratio
        );
    }
    Ok(())
}

/// Runs a sandboxed process that tries what it must not do.
fn probe_sandbox(ctx: &crate::tools::ToolContext) -> anyhow::Result<()> {
    let policy = ctx.sandbox_policy();
    let outside = std::env::temp_dir().join(format!("hermit-doctor-{}", std::process::id()));
    let script = format!(
        "echo inside > probe.txt && rm probe.txt && if echo x > {0} 2>/dev/null; then echo WROTE-OUTSIDE; fi; \
         if (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; then echo OPENED-SOCKET; fi; true",
        outside.display()
    );
    let argv = ["/bin/bash".to_string(), "-c".to_string(), script];
    let out = ctx.sandbox.run(&policy, &argv)?;
    let _ = std::fs::remove_file(&outside);
    anyhow::ensure!(
        out.exit_code == 0,
        "the probe exited {}: {}",
        out.exit_code,
        out.stderr.trim()
    );
    anyhow::ensure!(
        !out.stdout.contains("WROTE-OUTSIDE"),
        "a sandboxed process wrote outside the workspace"
    );
    anyhow::ensure!(
        !out.stdout.contains("OPENED-SOCKET"),
        "a sandboxed process opened a TCP socket"
    );
    Ok(())
}

/// Prints how to connect, after accounts were created.
fn print_connect(
    config: &Config,
    secrets: &crate::secrets::Secrets,
    accounts: &crate::homeserver::Accounts,
) {
    let url = config.homeserver.client_url();
    println!("Hermit's Matrix accounts are ready.");
    println!();
    println!("  Homeserver:  {url}");
    println!("  Bot:         {}", accounts.bot_id);
    if accounts.owner_local {
        println!("  You:         {}", accounts.owner_id);
        println!(
            "  Password:    in {} (readable only by this user; change it from your client after logging in)",
            secrets
                .path(crate::secrets::names::OWNER_PASSWORD)
                .display()
        );
    } else {
        println!("  You:         {} (your own account)", accounts.owner_id);
    }
    println!();
    println!(
        "Log in with Element (or any Matrix client) on {url}, start a direct chat with {} and turn on encryption.",
        accounts.bot_id
    );
}

/// `hermit init`: the homeserver's configuration, secrets and accounts.
pub fn init(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let secrets = crate::secrets::Secrets::open(&config.data_dir())?;
    let url = config.homeserver.client_url();
    let mut started = None;
    if config.homeserver.managed {
        let layout = crate::homeserver::write_config(&config, &secrets)?;
        if !crate::homeserver::answers(&url) {
            eprintln!("starting Synapse to create the accounts…");
            started = Some(crate::homeserver::Supervisor::start(&config, &layout)?);
        }
    } else if !crate::homeserver::answers(&url) {
        anyhow::bail!("no homeserver answers at {url} (homeserver.url)");
    }
    let accounts = crate::homeserver::ensure_accounts(&config, &secrets);
    drop(started);
    let accounts = accounts?;
    if accounts.created.is_empty() {
        println!(
            "Already set up: {} on {url}; the owner is {}. Nothing changed.",
            accounts.bot_id, accounts.owner_id
        );
    } else {
        print_connect(&config, &secrets, &accounts);
    }
    Ok(())
}

/// `hermit up`: the homeserver (when managed), the Matrix bot and the
/// control socket, until Ctrl-C or SIGTERM.
pub fn up(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    // One daemon per data directory: two would share the Matrix stores.
    let lock = std::fs::File::create(data.join("hermit.lock"))?;
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; released when `lock`
        // is closed at the end of this function (or by the kernel).
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            anyhow::bail!(
                "another `hermit up` is running with the data directory {}",
                data.display()
            );
        }
    }
    let secrets = crate::secrets::Secrets::open(&data)?;
    let url = config.homeserver.client_url();
    let rt = runtime()?;
    rt.block_on(async move {
        let mut supervisor = None;
        if config.homeserver.managed {
            let layout = crate::homeserver::write_config(&config, &secrets)?;
            tracing::info!(%url, "starting Synapse");
            let c = config.clone();
            supervisor = Some(
                tokio::task::spawn_blocking(move || crate::homeserver::Supervisor::start(&c, &layout))
                    .await??,
            );
            tracing::info!(%url, "Synapse is up");
        }
        let (c, s) = (config.clone(), secrets.clone());
        let accounts =
            tokio::task::spawn_blocking(move || crate::homeserver::ensure_accounts(&c, &s)).await?;
        let accounts = match accounts {
            Ok(a) => a,
            // With a homeserver Hermit does not run, the accounts may have
            // been made by hand: go on if the bot has a password.
            Err(e) if !config.homeserver.managed && secrets.get(crate::secrets::names::BOT_PASSWORD)?.is_some() => {
                tracing::warn!(error = %format!("{e:#}"), "cannot create accounts; using the existing bot password");
                crate::homeserver::Accounts {
                    bot_id: config.bot_id(),
                    owner_id: config.owner_id(),
                    owner_local: false,
                    created: Vec::new(),
                }
            }
            Err(e) => return Err(e),
        };
        if !accounts.created.is_empty() {
            print_connect(&config, &secrets, &accounts);
        }
        // The trust layer, once every secret exists (the redaction filter
        // learns their values).
        let trust = std::sync::Arc::new(crate::trust::Trust::open(&config)?);
        let stale = trust.approvals.expire_all_pending();
        if stale > 0 {
            tracing::info!(count = stale, "approval requests of the last run expired");
        }
        trust.record_config(&config);
        trust.audit.record("start", "hermit", serde_json::json!({"version": env!("CARGO_PKG_VERSION")}));
        if let Some(by) = trust.halt.halted_by() {
            tracing::warn!(%by, "Hermit is stopped: nothing runs until the owner sends !resume");
        }
        let c = config.clone();
        let engine = tokio::task::spawn_blocking(move || start_engine(&c)).await??;
        let memory = open_memory(&config)?;
        let toolbox = if config.agent.tools {
            Some(toolbox_with(&config, trust.clone(), memory.clone())?)
        } else {
            None
        };
        let mut agent = crate::agent::Agent::new(
            engine,
            toolbox,
            config.agent.max_tool_steps,
            std::time::Duration::from_secs(config.agent.turn_timeout_seconds),
        )?
        .with_trust(trust.clone());
        if let Some(m) = memory {
            // Catches up at once: rows written while Hermit was down.
            m.start_worker();
            agent = agent.with_memory(m);
        }
        let agent = std::sync::Arc::new(agent);
        let settings = crate::channels::matrix::BotSettings::from_config(&config);
        let bot = crate::channels::matrix::Bot::connect(settings, &secrets, agent.clone(), trust.clone()).await?;
        if config.voice.enabled {
            match crate::voice::VoiceSettings::from_config(&config) {
                Ok(v) => bot.set_voice(std::sync::Arc::new(crate::voice::Voice::new(v))),
                Err(e) => tracing::warn!(error = %e, "voice messages are off"),
            }
        }
        let control = crate::control::Server::bind(&data, agent.clone(), bot.clone(), url.clone())?;
        tracing::info!(
            bot = %accounts.bot_id,
            owner = %accounts.owner_id,
            device = ?bot.device_id(),
            socket = %control.path().display(),
            "Hermit is up"
        );
        let control_task = tokio::spawn(control.serve());
        let reminders = std::sync::Arc::new(crate::reminders::Reminders::open(&data)?);
        let scheduler = crate::proactive::Scheduler::new(crate::proactive::Settings::from_config(&config), agent.clone(), trust.clone(), reminders, bot.clone());
        let reminders_task = tokio::spawn(scheduler.run());
        let mut failed = supervisor.as_ref().map(|s: &crate::homeserver::Supervisor| s.failed.clone());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            r = bot.clone().run() => r,
            _ = tokio::signal::ctrl_c() => { tracing::info!("stopping (Ctrl-C)"); Ok(()) }
            _ = term.recv() => { tracing::info!("stopping (SIGTERM)"); Ok(()) }
            msg = async {
                match failed.as_mut() {
                    Some(rx) => { let _ = rx.wait_for(|m| m.is_some()).await; rx.borrow().clone() }
                    None => std::future::pending().await,
                }
            } => Err(anyhow::anyhow!(msg.unwrap_or_default())),
        };
        control_task.abort();
        reminders_task.abort();
        let _ = std::fs::remove_file(data.join(crate::control::SOCKET));
        if let Some(mut s) = supervisor {
            tokio::task::spawn_blocking(move || s.stop()).await?;
        }
        result
    })?;
    drop(lock);
    Ok(())
}

/// What the Matrix benchmarks need: the configuration, the running daemon
/// (checked) and how to reach it as its owner.
fn bench_against_daemon(
    global: &Global,
) -> anyhow::Result<(Config, crate::bench::Daemon, tokio::runtime::Runtime)> {
    let config = global.load_config()?;
    let data = config.data_dir();
    let secrets = crate::secrets::Secrets::open(&data)?;
    let password = secrets
        .get(crate::secrets::names::OWNER_PASSWORD)?
        .context("no owner password in the secrets directory (the owner must be an account Hermit created)")?;
    let rt = runtime()?;
    rt.block_on(async {
        anyhow::ensure!(
            crate::control::connect(&data).await.is_some(),
            "no running Hermit answers at {} (start `hermit up` first; scripts/bench-matrix, scripts/bench-reminders and scripts/bench-voice do it all)",
            data.join(crate::control::SOCKET).display()
        );
        Ok(())
    })?;
    let daemon = crate::bench::Daemon {
        url: config.homeserver.client_url(),
        owner: config.owner_id(),
        password,
        bot: config.bot_id(),
        data_dir: data,
    };
    Ok((config, daemon, rt))
}

/// `hermit transcribe FILE [--json]`: the speech worker on one file.
pub fn transcribe(global: &Global, file: &Path, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let settings = crate::voice::VoiceSettings::from_config(&config)?;
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let voice = crate::voice::Voice::new(settings);
    let rt = runtime()?;
    match rt.block_on(voice.transcribe(&file)) {
        Ok(t) => {
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.text);
                eprintln!(
                    "({} s of audio, language {}, transcribed in {:.1} s)",
                    t.audio_seconds.round(),
                    t.language,
                    t.transcribe_ms as f64 / 1000.0
                );
            }
            Ok(true)
        }
        Err(crate::voice::VoiceError::Audio(why)) => {
            eprintln!("{}: {why}", file.display());
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// `hermit bench reminders [--count N]`.
pub fn bench_reminders(global: &Global, json: bool, count: usize) -> anyhow::Result<()> {
    let (config, daemon, rt) = bench_against_daemon(global)?;
    rt.block_on(async {
        let r = crate::bench::reminders(&daemon, &config.agent.timezone, count.max(1), |m| {
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

pub fn bench_voice(global: &Global, json: bool, runs: usize, file: &Path) -> anyhow::Result<()> {
    let (config, daemon, rt) = bench_against_daemon(global)?;
    let voice = crate::voice::Voice::new(crate::voice::VoiceSettings::from_config(&config)?);
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    rt.block_on(async {
        let r =
            crate::bench::voice(&daemon, &file, &voice, runs.max(1), |m| eprintln!("{m}")).await?;
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

/// `hermit bench matrix`: against the running daemon, as its owner.
pub fn bench_matrix(global: &Global, json: bool, runs: usize) -> anyhow::Result<()> {
    let (_, daemon, rt) = bench_against_daemon(global)?;
    rt.block_on(async {
        let r = crate::bench::matrix(&daemon, runs.max(1), |m| eprintln!("{m}")).await?;
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

/// `hermit approvals list [--all] [--json]`.
pub fn approvals_list(global: &Global, all: bool, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let trust = crate::trust::Trust::open(&config)?;
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
            crate::trust::redact::redact(&r.arguments.to_string()),
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
pub fn approvals_decide(global: &Global, code: &str, approve: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let trust = crate::trust::Trust::open(&config)?;
    let row = trust
        .decide_at_box(code, approve, "command line")
        .map_err(|why| anyhow::anyhow!(why))?;
    println!(
        "{} {}: {} {}",
        if approve { "approved" } else { "denied" },
        row.code,
        row.tool,
        crate::trust::redact::redact(&row.arguments.to_string())
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
        let mut client = crate::control::connect(&data).await?;
        client
            .request(&crate::control::Request::StopAll)
            .await
            .ok()?;
        client.next().await.ok()
    });
    let trust = crate::trust::Trust::open(&config)?;
    match via_daemon {
        Some(v) if v["event"] == "stopped" => println!(
            "stopped: {} running turn(s) and {} tool process(es) halted; nothing runs until `hermit resume` or !resume",
            v["data"]["turns"], v["data"]["processes"]
        ),
        _ => {
            let (turns, processes) = trust.halt.stop(trust.owner())?;
            trust.audit.record(
                "stop",
                trust.owner(),
                serde_json::json!({"turns": turns, "processes": processes, "via": "command line"}),
            );
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
    let trust = crate::trust::Trust::open(&config)?;
    trust.halt.resume()?;
    trust.audit.record(
        "resume",
        trust.owner(),
        serde_json::json!({"via": "command line"}),
    );
    println!("resumed");
    Ok(())
}

fn audit_db(config: &Config) -> anyhow::Result<rusqlite::Connection> {
    let path = config.data_dir().join("hermit.db");
    anyhow::ensure!(path.exists(), "there is no database at {}", path.display());
    Ok(crate::db::open(&path)?)
}

/// `hermit audit verify [--json]`: false when the chain is broken.
pub fn audit_verify(global: &Global, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    let v = crate::trust::audit::verify(&db, &config.data_dir())?;
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

fn print_entry(e: &crate::trust::audit::Entry) {
    let when = jiff::Timestamp::from_millisecond(e.ts)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    println!(
        "{:>6}  {when}  {:<18} {:<28} {}",
        e.seq, e.kind, e.actor, e.data
    );
}

/// `hermit audit tail [-n N] [-f]`.
pub fn audit_tail(global: &Global, n: i64, follow: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    let entries = crate::trust::audit::tail(&db, n)?;
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
        for e in crate::trust::audit::entries_after(&db, last, 1000)? {
            print_entry(&e);
            last = e.seq;
        }
    }
}

/// `hermit audit export --jsonl`: every entry, one JSON object per line.
pub fn audit_export(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let db = audit_db(&config)?;
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut last = 0;
    loop {
        let batch = crate::trust::audit::entries_after(&db, last, 10_000)?;
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

/// `hermit secrets list`: the names (never the values).
pub fn secrets_list(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let secrets = crate::secrets::Secrets::open(&data)?;
    for (name, _) in secrets.all()? {
        println!("{name}");
    }
    Ok(())
}

/// `hermit secrets set NAME`: the value from stdin (never an argument,
/// which would land in the shell's history and the process list).
pub fn secrets_set(global: &Global, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a secret's name is letters, digits, - and _ (e.g. weather-api-key)"
    );
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let secrets = crate::secrets::Secrets::open(&data)?;
    if std::io::stdin().is_terminal() {
        eprintln!("value for {name} (then Enter):");
    }
    let mut value = String::new();
    std::io::stdin().read_line(&mut value)?;
    // Shorter values would match ordinary text: the filter skips them.
    anyhow::ensure!(
        value.trim().len() >= 8,
        "a secret must be at least 8 characters long, or it could not be told apart from ordinary text when redacting"
    );
    secrets.set(name, &value)?;
    // A running daemon redacts it from now on.
    let rt = runtime()?;
    let reloaded = rt.block_on(async {
        let mut client = crate::control::connect(&data).await?;
        client
            .request(&crate::control::Request::ReloadSecrets)
            .await
            .ok()?;
        client.next().await.ok()
    });
    if reloaded.is_some_and(|v| v["event"] == "reloaded") {
        eprintln!("the running daemon now redacts it");
    }
    if let Ok(trust) = crate::trust::Trust::open(&config) {
        trust.audit.record(
            "secret.set",
            trust.owner(),
            serde_json::json!({"name": name}),
        );
    }
    println!("stored {name} (0600 in {})", secrets.dir().display());
    Ok(())
}

/// Memory for a command: opened, and the index brought up to date in the
/// foreground (with progress on a terminal) unless the daemon is at it.
fn memory_for_cli(config: &Config) -> anyhow::Result<std::sync::Arc<crate::memory::Memory>> {
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
        Err(crate::memory::MemoryError::Index(crate::memory::index::IndexError::Busy)) => {
            eprintln!("note: the daemon is indexing; results may miss the last few seconds")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(memory)
}

fn print_items(items: &[crate::memory::Item], tz: &str) {
    let tz = crate::tools::time::owner_timezone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
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

pub fn memory_search(
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
        crate::memory::Mode::Text
    } else {
        crate::memory::Mode::Hybrid
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

pub fn memory_remember(
    global: &Global,
    fact: &str,
    principal: &str,
    pin: bool,
) -> anyhow::Result<()> {
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

pub fn memory_forget(
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
        .map(|s| s.parse::<crate::memory::Key>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(q) = query {
        let found = memory.search(principal, q, 50, crate::memory::Mode::Text, None)?;
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
    if let Ok(trust) = crate::trust::Trust::open(&config) {
        trust.audit.record(
            "memory.forget",
            &trust.local_owner().id,
            serde_json::json!({"principal": principal, "ids": gone.iter().map(|i| i.id.clone()).collect::<Vec<_>>()}),
        );
    }
    Ok(!gone.is_empty())
}

pub fn memory_export(global: &Global, principal: &str) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let memory = open_memory(&config)?
        .ok_or_else(|| anyhow::anyhow!("memory is off ([memory] enabled = false)"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The owner's Matrix events are under their Matrix ID.
    let matrix_id = if principal == "owner" {
        config.owner_id()
    } else {
        principal.to_string()
    };
    let n = memory.export(principal, Some(&matrix_id), &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!("exported {n} records held about {principal}");
    Ok(())
}

pub fn memory_reindex(global: &Global) -> anyhow::Result<()> {
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

pub fn memory_status(global: &Global, json: bool) -> anyhow::Result<()> {
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

/// `hermit bench memory` (scripts/bench-memory).
pub fn bench_memory(
    global: &Global,
    json: bool,
    messages: usize,
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let embeddings = registry(&config).resolve_embeddings(&config.memory.embedding_model)?;
    let scratch = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile_dir(d)?
        }
        None => tempfile_dir(&std::env::temp_dir())?,
    };
    let result = crate::bench::memory::run(&scratch, &embeddings, messages.max(1000), |m| {
        eprintln!("  {m}")
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let r = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "ingest: {:.0} messages/s ({} messages, hermit.db + index, no embeddings)",
        r.ingest_messages_per_s, r.messages
    );
    println!(
        "embeddings: {:.0} messages/s; ingest with embeddings: {:.0} messages/s",
        r.embed_messages_per_s, r.ingest_with_embeddings_messages_per_s
    );
    println!(
        "{:>9}  {:<10} {:>9} {:>9}",
        "corpus", "search", "p50 ms", "p99 ms"
    );
    for l in &r.latency {
        println!(
            "{:>9}  {:<10} {:>9.2} {:>9.2}",
            l.corpus, l.mode, l.p50_ms, l.p99_ms
        );
    }
    println!(
        "size on disk at {}: hermit.db {}, index {}",
        r.messages,
        human_size(r.db_bytes),
        human_size(r.index_bytes)
    );
    println!(
        "recall@5 on {} paraphrased questions among {} messages: full text {:.2}, hybrid {:.2}",
        r.labelled_questions, r.distractors, r.recall_at_5_text, r.recall_at_5_hybrid
    );
    Ok(())
}

/// A new directory inside `parent`, named for this process.
fn tempfile_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    let d = parent.join(format!("hermit-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn reminders_store(config: &Config) -> anyhow::Result<crate::reminders::Reminders> {
    let data = ensure_data_dir(config)?;
    Ok(crate::reminders::Reminders::open(&data)?)
}

pub fn reminders_list(global: &Global, all: bool, json: bool) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let list = reminders_store(&config)?.list(None, all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        eprintln!("no active reminders");
    } else {
        for r in &list {
            let who = if r.principal == "owner" {
                String::new()
            } else {
                format!(" [{}]", r.principal)
            };
            let status = if r.status == "active" {
                String::new()
            } else {
                format!(" ({})", r.status)
            };
            let what = match r.action.as_str() {
                "task" => format!("task: {}", r.text),
                "watch" => format!("watching: {}", r.text),
                _ => r.text.clone(),
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

pub fn reminders_add(
    global: &Global,
    text: &str,
    at: Option<&str>,
    every: Option<&str>,
    principal: &str,
) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let store = reminders_store(&config)?;
    let tz = &config.agent.timezone;
    let r = match (at, every) {
        (Some(at), None) => {
            let at = crate::reminders::parse_local(at, tz).map_err(anyhow::Error::msg)?;
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

pub fn reminders_cancel(global: &Global, id: i64) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    match reminders_store(&config)?.cancel(id, None)? {
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
