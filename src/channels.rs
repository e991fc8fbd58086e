//! Channels: where a principal's messages arrive and replies go.
//!
//! A channel turns its transport's events into text for the agent and the
//! agent's replies back into its transport. It knows nothing of llama.cpp or
//! of tools. Today: the terminal. Matrix comes next.

pub mod terminal;
