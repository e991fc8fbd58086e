//! Channels: where a principal's messages arrive and replies go.
//!
//! A channel turns its transport's events into text for the agent and the
//! agent's replies back into its transport. It knows nothing of llama.cpp or
//! of tools: the terminal (`hermit chat`) and Matrix (`hermit up`).

pub mod matrix;
pub mod terminal;
