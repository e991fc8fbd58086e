//! The commands behind `hermit`'s command line, one module per command
//! (or family of subcommands), and what they share: the global options,
//! loading the configuration, logging, the async runtime, the data
//! directory, the toolbox and memory, and turning an error into a message
//! and an exit code. Each command takes parsed options, does its work
//! through the library and reports to the person at the terminal.

pub mod approvals;
pub mod args;
pub mod audit;
pub mod bench;
pub mod chat;
pub mod daemon;
pub mod doctor;
pub mod memory;
pub mod models;
pub mod reminders;
pub mod secrets;
pub mod tools;
pub mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hermit::agent::Agent;
use hermit::config::{Config, ConfigError};
use hermit::inference::{Engine, EngineSettings, InferenceError};
use hermit::memory::Memory;
use hermit::models::{ModelError, Registry};
use hermit::tools::{ToolContext, Toolbox};
use hermit::trust::Trust;

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
    /// The configuration: `--config`, else `$HERMIT_CONFIG`, else the
    /// built-in defaults; `HERMIT_*` overrides and `--model` on top.
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
        .with_writer(hermit::trust::redact::RedactingStderr)
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
        .with_writer(hermit::trust::redact::RedactingStderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
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

/// The async runtime of a command: two worker threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves, verifies and loads the configured model.
pub fn start_engine(config: &Config) -> anyhow::Result<Engine> {
    let model = Registry::for_config(config).resolve(&config.inference.model)?;
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

/// Creates the data directory, readable by its owner only, if it is missing.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<PathBuf> {
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

/// Memory, unless `[memory] enabled = false`. Without the embedding model
/// (or with `embeddings = false`) search is full text only, said once.
pub fn open_memory(config: &Config) -> anyhow::Result<Option<Arc<Memory>>> {
    if !config.memory.enabled {
        return Ok(None);
    }
    let data = ensure_data_dir(config)?;
    let embeddings = if config.memory.embeddings {
        match Registry::for_config(config).resolve_embeddings(&config.memory.embedding_model) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::warn!(error = %e, "semantic recall is off; memory search is full text only");
                None
            }
        }
    } else {
        None
    };
    let memory = Memory::open(
        &data,
        embeddings,
        hermit::memory::MemorySettings {
            recall_items: config.memory.recall_items,
            recall_tokens: config.memory.recall_tokens,
            timezone: config.agent.timezone.clone(),
        },
    )?;
    Ok(Some(Arc::new(memory)))
}

/// The toolbox of a command run by the owner at the box: its own trust
/// layer and memory.
pub fn toolbox(config: &Config) -> anyhow::Result<Toolbox> {
    ensure_data_dir(config)?;
    let trust = Arc::new(Trust::open(config)?);
    toolbox_with(config, trust, open_memory(config)?)
}

/// The built-in tools, configured, under `trust`.
pub fn toolbox_with(
    config: &Config,
    trust: Arc<Trust>,
    memory: Option<Arc<Memory>>,
) -> anyhow::Result<Toolbox> {
    let sandbox = hermit::sandbox::Sandbox::current()?;
    Ok(Toolbox::builtin(
        ToolContext {
            workspace: config.workspace(),
            data_dir: config.data_dir(),
            sandbox,
            limits: config.sandbox.limits.clone(),
            allow_weaker: config.sandbox.allow_weaker,
            network: config.sandbox.network,
            tool_user: config.sandbox.tool_user(),
            fetch: config.fetch.clone(),
            timezone: config.agent.timezone.clone(),
            memory,
        },
        trust,
    ))
}

/// A size for people: MiB, or GiB from 1 GiB.
/// The agent, as `hermit up` and a local `hermit chat` run it: the model,
/// the trust layer always (the stop switch halts its turns even with the
/// tools off), the tools when on, and memory when on.
pub fn build_agent(config: &Config, engine: Engine, trust: Arc<Trust>) -> anyhow::Result<Agent> {
    let memory = open_memory(config)?;
    let toolbox = if config.agent.tools {
        Some(toolbox_with(config, trust.clone(), memory.clone())?)
    } else {
        None
    };
    let mut agent = Agent::new(
        engine,
        toolbox,
        config.agent.max_tool_steps,
        Duration::from_secs(config.agent.turn_timeout_seconds),
    )?
    .with_trust(trust);
    if let Some(m) = memory {
        // Catches up at once: rows written while Hermit was down.
        m.start_worker();
        agent = agent.with_memory(m);
    }
    Ok(agent)
}

/// This machine as models see it: physical cores, and memory from
/// /proc/meminfo.
pub fn this_machine() -> hermit::models::Machine {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0);
    hermit::models::Machine {
        cores: hermit::inference::physical_cores(),
        memory_bytes,
    }
}

pub fn human_size(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", n as f64 / (1u64 << 20) as f64)
    }
}
