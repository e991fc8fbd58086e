//! Configuration: `hermit.toml`, its defaults and its `HERMIT_*` overrides.
//!
//! Every setting has a default, so Hermit runs with no file at all. A file
//! (`--config PATH`, or `$HERMIT_CONFIG`, or `hermit.toml` in the data
//! directory when present) overrides the defaults, and environment variables
//! named `HERMIT_<SECTION>__<KEY>` (double underscore between section and key,
//! and between nested sections: `HERMIT_SANDBOX__LIMITS__TIMEOUT_SECONDS`;
//! e.g. `HERMIT_INFERENCE__THREADS=4`, `HERMIT_SAMPLING__TEMPERATURE=0`)
//! override the file. Unknown keys are errors, not silently ignored: a typo in
//! a security setting must not fall back to a default unnoticed.
//!
//! This module only reads and checks settings; it never acts on them.

pub(crate) mod policy;
pub(crate) mod tools;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The annotated example shipped in the repository; also what
/// `hermit config example` prints.
pub const EXAMPLE: &str = include_str!("../hermit.example.toml");

/// The chat model of the default configuration: one that passes CI on
/// 2 cores (`hermit models list` says which fits a given box).
pub(crate) const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b";
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}\nSee hermit.example.toml for every setting and its default.")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub inference: InferenceConfig,
    pub sampling: SamplingConfig,
    pub agent: AgentConfig,
    pub paths: PathsConfig,
    pub sandbox: SandboxConfig,
    pub fetch: tools::FetchConfig,
    pub homeserver: HomeserverConfig,
    pub matrix: MatrixConfig,
    pub policy: policy::PolicyConfig,
    pub memory: MemoryConfig,
    pub voice: VoiceConfig,
}

/// `[voice]`: voice notes, transcribed on the box by `hermit-stt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// Transcribe voice messages (else they get a polite refusal).
    pub enabled: bool,
    /// The speech model (models.toml, role "speech").
    pub model: String,
    /// "auto" (detected, with a multilingual model) or a language code.
    pub language: String,
    /// Threads of the worker; 0: the physical cores.
    pub threads: u32,
    /// Longer or larger audio is refused with a message, never cut.
    pub max_seconds: u32,
    pub max_mb: u32,
    /// Longest a transcription may take before the worker is restarted.
    pub timeout_seconds: u64,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: "whisper-base".into(),
            language: "auto".into(),
            threads: 0,
            max_seconds: 600,
            max_mb: 25,
            timeout_seconds: 300,
        }
    }
}

/// `[memory]`: what Hermit keeps and recalls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Keep conversations and recall from them before each turn.
    pub enabled: bool,
    /// Most memories recalled into one turn.
    pub recall_items: usize,
    /// Budget of the recalled memories, in tokens (about 4 characters each).
    pub recall_tokens: usize,
    /// Sentence embeddings for semantic recall.
    pub embeddings: bool,
    /// The embeddings model (models.toml, role "embeddings").
    pub embedding_model: String,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recall_items: 5,
            recall_tokens: 300,
            embeddings: true,
            embedding_model: "all-minilm-l6-v2".into(),
        }
    }
}

/// The Matrix homeserver: Synapse on the box, run by Hermit (`managed`) or
/// by someone else (the appliance's systemd unit, or the user's own server).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeserverConfig {
    /// `hermit up` starts, supervises and stops Synapse itself.
    pub managed: bool,
    /// The Matrix server name: the part after `:` in user IDs. Cannot change
    /// once accounts exist.
    pub server_name: String,
    /// Address Synapse listens on. Loopback by default; any other address
    /// needs `tls_certificate` and `tls_private_key`.
    pub bind: String,
    pub port: u16,
    /// PEM files for TLS, required when `bind` is not a loopback address.
    pub tls_certificate: Option<PathBuf>,
    pub tls_private_key: Option<PathBuf>,
    /// The URL clients use to reach the homeserver (printed by `hermit init`).
    /// Default: derived from `bind` and `port`. With `managed = false`, the
    /// homeserver the bot connects to.
    pub url: String,
    /// Synapse's virtual environment (made by scripts/setup). Default:
    /// `$HERMIT_SYNAPSE`, else `~/.cache/hermit/synapse`.
    pub synapse_venv: Option<PathBuf>,
    /// Largest upload (voice notes, files), in megabytes.
    pub max_upload_mb: u32,
    /// Restarts after a crash before `hermit up` gives up.
    pub max_restarts: u32,
    /// Seconds to wait for Synapse to answer after starting it.
    pub start_timeout_seconds: u64,
}

impl Default for HomeserverConfig {
    fn default() -> Self {
        Self {
            managed: true,
            server_name: "hermit.local".into(),
            bind: "127.0.0.1".into(),
            port: 8008,
            tls_certificate: None,
            tls_private_key: None,
            url: String::new(),
            synapse_venv: None,
            max_upload_mb: 50,
            max_restarts: 5,
            start_timeout_seconds: 120,
        }
    }
}

impl HomeserverConfig {
    /// The client-server URL in force.
    pub fn client_url(&self) -> String {
        if !self.url.is_empty() {
            return self.url.trim_end_matches('/').to_string();
        }
        let tls = self.tls_certificate.is_some();
        let host = if self.bind.contains(':') {
            format!("[{}]", self.bind)
        } else {
            self.bind.clone()
        };
        format!(
            "{}://{host}:{}",
            if tls { "https" } else { "http" },
            self.port
        )
    }

    pub(crate) fn venv(&self) -> PathBuf {
        match (&self.synapse_venv, std::env::var_os("HERMIT_SYNAPSE")) {
            (Some(p), _) => expand_home(p),
            (None, Some(d)) if !d.is_empty() => expand_home(Path::new(&d)),
            _ => home().join(".cache/hermit/synapse"),
        }
    }
}

/// The Matrix bot and who may talk to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixConfig {
    /// The bot's user name (localpart), created by `hermit init`.
    pub bot: String,
    /// The owner: a localpart on this homeserver (created by `hermit init`)
    /// or a full Matrix ID (`@alice:example.org`, not created).
    pub owner: String,
    /// Other Matrix IDs whose invites the bot accepts and whom it answers.
    pub members: Vec<String>,
    /// Longest message handled, in bytes; longer ones get a short refusal.
    pub max_message_bytes: usize,
    /// Shortest time between two edits of a streamed reply, in milliseconds.
    pub edit_interval_ms: u64,
    /// Most edits of one reply before the final one.
    pub max_edits: u32,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            bot: "hermit".into(),
            owner: "owner".into(),
            members: Vec::new(),
            max_message_bytes: 16 * 1024,
            edit_interval_ms: 1000,
            max_edits: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// Hermit's data: database, trash, scratch. Default: `$HERMIT_DATA`,
    /// else `~/.local/share/hermit`.
    pub data_dir: Option<PathBuf>,
    /// The only part of the disk the agent's file tools see. Default:
    /// `<data_dir>/workspace`.
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Run tools even where the kernel lacks a sandbox mechanism: `true`
    /// (any), or the list of those the owner gives up (`["landlock"]`).
    /// Off: such tools refuse to run.
    pub allow_weaker: tools::Weaker,
    /// Give tool processes the network. Off by default.
    pub network: bool,
    pub limits: tools::Limits,
    /// The uid and gid tools run as when Hermit runs as root (default
    /// 65534, nobody; the appliance gives them a user of their own).
    pub tool_uid: Option<u32>,
    pub tool_gid: Option<u32>,
}

impl SandboxConfig {
    /// Who a tool process runs as when Hermit is root.
    pub fn tool_user(&self) -> tools::ToolUser {
        let d = tools::ToolUser::default();
        tools::ToolUser {
            uid: self.tool_uid.unwrap_or(d.uid),
            gid: self.tool_gid.unwrap_or(self.tool_uid.unwrap_or(d.gid)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// A model name from models/models.toml, or a path to a `.gguf` file.
    pub model: String,
    /// Where models live; defaults to `$HERMIT_MODELS` or `~/.cache/hermit/models`.
    pub models_dir: Option<PathBuf>,
    /// Threads for generation; 0 means one per physical core.
    pub threads: u32,
    /// Threads for prompt processing; 0 means the same as `threads`.
    pub batch_threads: u32,
    /// Context window per conversation, in tokens.
    pub context_tokens: u32,
    /// Tokens evaluated per batch when processing a prompt.
    pub batch_tokens: u32,
    /// Upper bound on one reply, in tokens.
    pub max_reply_tokens: u32,
    /// Layers offloaded to a GPU (builds with the `cuda` or `metal` feature).
    pub gpu_layers: u32,
    /// Conversations whose KV cache is kept in memory; the least recently
    /// used one is evicted past this (and re-evaluated if it comes back).
    pub cached_conversations: u32,
    /// Keep the evaluated system prompt and tools on disk (in the data
    /// directory), so a new process answers its first message without
    /// evaluating them again.
    pub prompt_cache: bool,
    /// Where that cache is kept (default: `prompt-cache` in the data
    /// directory). Files are named by a hash of the model, the context
    /// size and the tokens, so several data directories can share one.
    pub prompt_cache_dir: Option<PathBuf>,
    /// At start, `hermit up` evaluates in the background the prompt
    /// prefixes a first message meets (system prompt and each intent's
    /// tools) that the cache lacks, so the first answers after setup or a
    /// first boot do not wait for them.
    pub warm_prompt_cache: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// 0 means greedy decoding (deterministic).
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    /// Tokens looked back over for the repeat penalty.
    pub repeat_last_n: i32,
    /// 0 picks a random seed for each reply.
    pub seed: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub system_prompt: String,
    /// Offer the tools (shell, files, time) to the model.
    pub tools: bool,
    /// Tool calls allowed in one turn.
    pub max_tool_steps: u32,
    /// A turn (generations and tool calls) ends after this many seconds.
    pub turn_timeout_seconds: u64,
    /// The owner's timezone, an IANA name ("Europe/Paris"); empty means
    /// the machine's.
    pub timezone: String,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.into(),
            models_dir: None,
            threads: 0,
            batch_threads: 0,
            context_tokens: 4096,
            batch_tokens: 512,
            max_reply_tokens: 1024,
            gpu_layers: 0,
            cached_conversations: 4,
            prompt_cache: true,
            prompt_cache_dir: None,
            warm_prompt_cache: true,
        }
    }
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            // An assistant that acts must choose the same way each time:
            // a small model at 0.7 picks a different tool (or refuses) one
            // run in three. Qwen's own top_k/top_p.
            temperature: 0.3,
            top_k: 20,
            top_p: 0.8,
            min_p: 0.05,
            repeat_penalty: 1.05,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt:
                "You are Hermit, a private assistant running entirely on the owner's own \
                            machine. Answer clearly and concisely."
                    .into(),
            tools: true,
            max_tool_steps: 8,
            turn_timeout_seconds: 300,
            timezone: String::new(),
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then the file if any, then the
    /// `HERMIT_<SECTION>__<KEY>` variables of `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let table: toml::Table =
                    text.parse()
                        .map_err(|e: toml::de::Error| ConfigError::Invalid {
                            origin: p.display().to_string(),
                            message: e.to_string(),
                        })?;
                (table, p.display().to_string())
            }
            None => (toml::Table::new(), "built-in defaults".to_string()),
        };
        let mut overridden = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("HERMIT_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if path.len() < 2 {
                // HERMIT_MODELS, HERMIT_CONFIG, HERMIT_LOG, HERMIT_DATA: not settings.
                continue;
            }
            let (key, sections) = path.split_last().expect("at least two parts");
            let mut table_ref = &mut table;
            for section in sections {
                let entry = table_ref
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let toml::Value::Table(sec) = entry else {
                    return Err(ConfigError::Invalid {
                        origin: format!("environment variable {name}"),
                        message: format!("`{section}` is not a section"),
                    });
                };
                table_ref = sec;
            }
            table_ref.insert(key.clone(), parse_env_value(&value));
            overridden.push(name);
        }
        let origin = if overridden.is_empty() {
            origin
        } else {
            format!("{origin} (with {})", overridden.join(", "))
        };
        let config: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
                origin: origin.clone(),
                message: e.to_string().trim_end().to_string(),
            })?;
        config
            .check()
            .map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(config)
    }

    /// Range checks serde cannot express.
    fn check(&self) -> Result<(), String> {
        let i = &self.inference;
        if i.context_tokens < 256 {
            return Err(format!(
                "inference.context_tokens = {} is too small; use at least 256 (default 4096)",
                i.context_tokens
            ));
        }
        if i.batch_tokens == 0 {
            return Err("inference.batch_tokens must be at least 1 (default 512)".into());
        }
        if i.max_reply_tokens == 0 || i.max_reply_tokens >= i.context_tokens {
            return Err(format!(
                "inference.max_reply_tokens = {} must be between 1 and inference.context_tokens ({})",
                i.max_reply_tokens, i.context_tokens
            ));
        }
        if i.cached_conversations == 0 {
            return Err("inference.cached_conversations must be at least 1 (default 4)".into());
        }
        if i.model.trim().is_empty() {
            return Err("inference.model is empty; name a model from `hermit models list`".into());
        }
        crate::vocab::owner_timezone(&self.agent.timezone)
            .map_err(|e| format!("agent.timezone: {e}"))?;
        self.check_workspace()?;
        self.check_matrix()?;
        self.policy.check(&self.matrix.members)?;
        let s = &self.sampling;
        if !(0.0..=5.0).contains(&s.temperature) {
            return Err(format!(
                "sampling.temperature = {} is out of range; use 0 (greedy) to 5",
                s.temperature
            ));
        }
        if !(0.0..=1.0).contains(&s.top_p) || !(0.0..=1.0).contains(&s.min_p) {
            return Err("sampling.top_p and sampling.min_p must be between 0 and 1".into());
        }
        if s.repeat_penalty <= 0.0 {
            return Err("sampling.repeat_penalty must be positive (1 disables it)".into());
        }
        Ok(())
    }

    fn check_matrix(&self) -> Result<(), String> {
        let h = &self.homeserver;
        let local = |l: &str| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-/".contains(c))
        };
        if h.server_name.is_empty() || h.server_name.contains(['/', ' ', '@']) {
            return Err(format!(
                "homeserver.server_name = {:?} is not a server name (e.g. \"hermit.local\")",
                h.server_name
            ));
        }
        let loopback = h
            .bind
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("homeserver.bind = {:?} is not an IP address", h.bind))?
            .is_loopback();
        if !loopback && (h.tls_certificate.is_none() || h.tls_private_key.is_none()) {
            return Err(format!(
                "homeserver.bind = {:?} is not loopback: listening on the network needs TLS \
                 (set homeserver.tls_certificate and homeserver.tls_private_key)",
                h.bind
            ));
        }
        if !h.managed && h.url.is_empty() {
            return Err(
                "homeserver.managed = false needs homeserver.url (the homeserver to connect to)"
                    .into(),
            );
        }
        let m = &self.matrix;
        if !local(&m.bot) {
            return Err(format!(
                "matrix.bot = {:?}: a user name of lowercase letters, digits and ._=-/",
                m.bot
            ));
        }
        if !(local(&m.owner) || is_user_id(&m.owner)) {
            return Err(format!(
                "matrix.owner = {:?}: a user name on this homeserver or a full Matrix ID (@name:server)",
                m.owner
            ));
        }
        if let Some(bad) = m.members.iter().find(|id| !is_user_id(id)) {
            return Err(format!(
                "matrix.members: {bad:?} is not a full Matrix ID (@name:server)"
            ));
        }
        if m.max_edits == 0 {
            return Err("matrix.max_edits must be at least 1 (default 30)".into());
        }
        Ok(())
    }

    /// The bot's Matrix ID.
    pub fn bot_id(&self) -> String {
        format!("@{}:{}", self.matrix.bot, self.homeserver.server_name)
    }

    /// The owner's Matrix ID.
    pub fn owner_id(&self) -> String {
        if is_user_id(&self.matrix.owner) {
            self.matrix.owner.clone()
        } else {
            format!("@{}:{}", self.matrix.owner, self.homeserver.server_name)
        }
    }

    /// The data directory in force.
    pub fn data_dir(&self) -> PathBuf {
        match (&self.paths.data_dir, std::env::var_os("HERMIT_DATA")) {
            (Some(p), _) => expand_home(p),
            (None, Some(d)) if !d.is_empty() => expand_home(Path::new(&d)),
            _ => home().join(".local/share/hermit"),
        }
    }

    /// The workspace is all a tool may write, and a root Hermit gives it to
    /// the tool user: never the whole disk, a home, a system directory, or
    /// a directory holding Hermit's own data.
    fn check_workspace(&self) -> Result<(), String> {
        let ws = self.workspace();
        let normal = |p: &Path| -> PathBuf { p.components().collect() };
        let (ws, data) = (normal(&ws), normal(&self.data_dir()));
        let why = if !ws.is_absolute() {
            Some("is not an absolute path")
        } else if ws
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            Some("contains `..`")
        } else if ws == Path::new("/") {
            Some("is the whole disk")
        } else if ws == normal(&home()) || ws.parent() == Some(Path::new("/home")) {
            Some("is a home directory")
        } else if [
            "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt", "/proc", "/root", "/run",
            "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/tmp",
        ]
        .iter()
        .any(|d| ws == Path::new(d))
        {
            Some("is a system directory")
        } else if data.starts_with(&ws) {
            Some("holds Hermit's data directory (the database, the secrets)")
        } else {
            None
        };
        match why {
            Some(why) => Err(format!(
                "paths.workspace = {} {why}; the workspace is all a tool may write: use a directory of its own (default <data_dir>/workspace)",
                ws.display()
            )),
            None => Ok(()),
        }
    }

    /// The workspace in force.
    pub fn workspace(&self) -> PathBuf {
        self.paths
            .workspace
            .as_deref()
            .map(expand_home)
            .unwrap_or_else(|| self.data_dir().join("workspace"))
    }

    /// The models directory in force.
    pub(crate) fn models_dir(&self) -> PathBuf {
        self.inference
            .models_dir
            .clone()
            .map(|p| expand_home(&p))
            .unwrap_or_else(default_models_dir)
    }
}

fn is_user_id(s: &str) -> bool {
    s.strip_prefix('@')
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(l, server)| !l.is_empty() && !server.is_empty() && !l.contains(' '))
}

/// `$HERMIT_MODELS`, else `~/.cache/hermit/models` (the same rule as scripts/setup).
pub(crate) fn default_models_dir() -> PathBuf {
    match std::env::var_os("HERMIT_MODELS") {
        Some(dir) if !dir.is_empty() => expand_home(Path::new(&dir)),
        _ => home().join(".cache/hermit/models"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Expands a leading `~/`.
pub(crate) fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home().join(rest),
        Err(_) => p.to_path_buf(),
    }
}

/// An environment value is read as a TOML value when it parses as one
/// (`4`, `0.5`, `true`, `"text"`), and as a plain string otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_hold_without_a_file() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.inference.model, "qwen2.5-coder-1.5b");
        assert_eq!(c.inference.context_tokens, 4096);
    }

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let f = write(EXAMPLE);
        let c = Config::load(Some(f.path()), []).unwrap();
        let d = Config::default();
        assert_eq!(c.inference.model, d.inference.model);
        assert_eq!(c.inference.context_tokens, d.inference.context_tokens);
        assert_eq!(c.sampling.top_k, d.sampling.top_k);
        assert_eq!(c.agent.system_prompt, d.agent.system_prompt);
        for role in ["owner", "member"] {
            assert_eq!(c.policy.rules(role), d.policy.rules(role), "{role}");
        }
        assert_eq!(c.policy.approval_ttl_seconds, d.policy.approval_ttl_seconds);
    }

    #[test]
    fn the_appliance_config_parses_and_requires_verified_devices() {
        let f = write(include_str!("../image/hermit.toml"));
        let c = Config::load(Some(f.path()), []).unwrap();
        assert!(c.policy.require_verified_device);
        assert!(!c.homeserver.managed);
        assert!(!Config::default().policy.require_verified_device);
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write("[inference]\nthreds = 4\n");
        let err = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(err.contains("threds"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let f = write("[inference]\nthreads = \"many\"\n");
        let err = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(err.contains("threads"), "{err}");
    }

    #[test]
    fn env_overrides_file() {
        let f = write("[inference]\nthreads = 2\n");
        let env = [("HERMIT_INFERENCE__THREADS".to_string(), "3".to_string())];
        let c = Config::load(Some(f.path()), env).unwrap();
        assert_eq!(c.inference.threads, 3);
    }

    #[test]
    fn env_string_and_unknown_keys() {
        let env = [(
            "HERMIT_INFERENCE__MODEL".to_string(),
            "smollm2-135m".to_string(),
        )];
        assert_eq!(
            Config::load(None, env).unwrap().inference.model,
            "smollm2-135m"
        );
        let env = [(
            "HERMIT_SANDBOX__LIMITS__TIMEOUT_SECONDS".to_string(),
            "5".to_string(),
        )];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.sandbox.limits.timeout_seconds, 5);
        let env = [("HERMIT_INFERENCE__NOPE".to_string(), "1".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("HERMIT_INFERENCE__NOPE"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_value_is_explained() {
        let f = write("[sampling]\ntemperature = 9\n");
        let err = Config::load(Some(f.path()), []).unwrap_err().to_string();
        assert!(err.contains("sampling.temperature"), "{err}");
    }

    #[test]
    fn the_workspace_is_never_the_disk_a_home_or_the_data() {
        let load = |ws: &str| {
            Config::load(
                None,
                vec![
                    (
                        "HERMIT_PATHS__DATA_DIR".to_string(),
                        "/srv/hermit/data".to_string(),
                    ),
                    ("HERMIT_PATHS__WORKSPACE".to_string(), ws.to_string()),
                ],
            )
        };
        for bad in [
            "/",
            "/home/alice",
            "/etc",
            "/srv/hermit",
            "/srv/hermit/data",
            "/srv/x/../..",
        ] {
            let err = load(bad).unwrap_err().to_string();
            assert!(err.contains("paths.workspace"), "{bad}: {err}");
        }
        assert!(load("/srv/hermit/workspace").is_ok());
        assert!(load("/srv/hermit/data/workspace").is_ok());
    }

    #[test]
    fn allow_weaker_names_each_mechanism_given_up() {
        let load = |v: &str| {
            Config::load(
                None,
                vec![("HERMIT_SANDBOX__ALLOW_WEAKER".to_string(), v.to_string())],
            )
        };
        let w = load(r#"["landlock"]"#).unwrap().sandbox.allow_weaker;
        assert!(w.landlock && !w.seccomp && !w.namespaces && !w.process_limit);
        assert_eq!(
            load("true").unwrap().sandbox.allow_weaker,
            tools::Weaker::ALL
        );
        assert_eq!(
            load("false").unwrap().sandbox.allow_weaker,
            tools::Weaker::default()
        );
        let err = load(r#"["landlok"]"#).unwrap_err().to_string();
        assert!(err.contains("allow_weaker"), "{err}");
    }
}
