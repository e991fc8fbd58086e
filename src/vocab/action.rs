//! What a tool call is and what it does to the world.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a call does to the world. Policy maps role × effect to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Read,
    Write,
    Exec,
    Network,
    Message,
    Irreversible,
    /// Keeps something in the caller's own memory (`remember`).
    Remember,
}

/// A call, as parsed from the model's output or the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}
