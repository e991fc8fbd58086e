//! The end-to-end tier: every feature once, through the real parts: the
//! `hermit` binary, a real model loaded by llama.cpp, a real Synapse, real
//! speech through whisper.cpp. Slower than the fast tier (tests/fast), which
//! proves the same promises with a scripted model; `scripts/test` runs both.

#![recursion_limit = "256"]

#[path = "../common/mod.rs"]
mod common;

mod bench;
mod chat;
mod doctor;
mod inference;
mod matrix;
mod memory;
mod proactive;
mod trust;
mod voice;
