//! The Matrix channel against a real Synapse and the real model: `hermit up`
//! runs the homeserver (managed, on a free loopback port, in a temporary data
//! directory) and the bot; a second matrix-sdk client logs in as the owner
//! with the password `hermit up` generated. No part of Matrix is mocked.

mod approvals;
mod conversation;
mod proactive;
mod support;
mod voice;
