//! Hermit: a private AI agent that lives in a box.
//!
//! The daemon talks to its owner through channels, answers with a quantized
//! model run in-process by llama.cpp, remembers, reminds, and acts through
//! sandboxed tools under a policy, with a hash-chained audit log. The map,
//! in layers (each uses only the layers below it; `tests/fast/layers.rs`
//! fails on a cycle, and `ARCHITECTURE.md` follows a message, a voice note,
//! a reminder and an approval through them):
//!
//! | layer | modules |
//! |---|---|
//! | channels | [`channels`] (Matrix, terminal), [`control`] (the daemon's socket), [`homeserver`] (Synapse) |
//! | agent | [`proactive`] (scheduler, briefings, tasks), [`agent`] (`Agent::submit(conv, Op)`: conversations, the turn, the one policy gate) |
//! | services | [`tools`], [`voice`] (the hermit-stt worker), [`trust`] (policy, approvals, stop switch, redaction, audit), [`memory`], [`reminders`], [`schedule`] |
//! | engines | [`inference`] (llama.cpp behind a queue; `Engine::scripted`, a test double), [`sandbox`] (Landlock, seccomp, namespaces) |
//! | base | [`config`], [`db`], [`secrets`], [`models`], [`vocab`] (Principal, Effect, ToolCall, Origin, ConversationKey, the clock) |
//!
//! The command line (`src/main.rs`, `src/cli/`) is the binary's, one
//! module per command, on top of this library.
//!
//! The API: what is `pub` is what the binary and the tests (`tests/fast`,
//! which prove the policy, the sandbox and storage from outside) use;
//! everything else is `pub(crate)`, and a layer's inner modules are
//! private unless the binary needs one by name (`sandbox::launcher`,
//! `trust::audit`, ...). Front ends speak to the agent through one door,
//! [`agent::Agent::submit`] with an [`agent::Op`].

#![recursion_limit = "256"]

pub mod agent;
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
pub mod vocab;
pub mod voice;
