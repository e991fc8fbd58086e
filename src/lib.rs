//! Hermit: a private AI agent that lives in a box.
//!
//! The daemon talks to its owner through channels, answers with a quantized
//! model that runs in its own process, and (as the project grows) remembers,
//! acts through sandboxed tools under a policy, and keeps an audit log. See
//! `DESIGN.md` for the architecture and the security model. The map:
//!
//! - [`config`]: `hermit.toml`, defaults and `HERMIT_*` overrides.
//! - [`models`]: the model registry (`models/models.toml`) and the verified
//!   model cache; nothing is loaded that does not match its SHA-256.
//! - [`inference`]: llama.cpp in-process: the model loaded once on an engine
//!   thread, chat templates rendered from the GGUF, streaming, per-conversation
//!   KV caches with prefix reuse.
//! - [`db`]: `hermit.db` (SQLite): the source of truth, with migrations.
//! - [`agent`]: the agent loop: a conversation's history turned into replies.
//! - [`memory`]: what Hermit keeps (hermit.db), its full-text index
//!   (tantivy) and embeddings (candle); recall, search, forgetting.
//! - [`channels`]: where messages come from: the terminal (`hermit chat`) and
//!   Matrix (`hermit up`).
//! - [`proactive`]: what Hermit does unasked: reminders, morning briefings
//!   and scheduled tasks delivered on time, through a channel's outbox.
//! - [`homeserver`]: Synapse, configured, started and supervised; accounts.
//! - [`control`]: the daemon's control socket, used by the other commands.
//! - [`secrets`]: generated secrets, 0600 in the data directory.
//! - [`tools`]: what Hermit can do (shell, files, trash, notes, fetch,
//!   time), all through one decision point.
//! - [`trust`]: policy, provenance and taint, approvals, the stop switch,
//!   redaction and the hash-chained audit log.
//! - [`sandbox`]: the kernel-enforced confinement of every tool process.
//! - [`bench`]: `hermit bench llm`, `hermit bench sandbox`.
//! - [`app`]: the commands behind the command line.

#![recursion_limit = "256"]

pub mod agent;
pub mod app;
pub mod bench;
pub mod channels;
pub mod config;
pub mod control;
pub mod db;
pub mod homeserver;
pub mod inference;
pub mod memory;
pub mod models;
pub mod proactive;
pub mod reminders;
pub mod sandbox;
pub mod schedule;
pub mod secrets;
pub mod tools;
pub mod trust;
pub mod voice;
