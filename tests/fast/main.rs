//! The fast tier: one test binary that proves, in a few minutes and without
//! a homeserver or a language model, what Hermit promises whatever a model
//! would say: the agent loop and the policy (with a scripted model, the
//! test double `Engine::scripted`), the sandbox, the tools, memory's
//! storage and index, the trust layer, the parsers of the command line and
//! the map of the code. `scripts/test --fast` runs it with the library's
//! unit tests; `scripts/test` runs it with the end-to-end tier (tests/e2e).

#[path = "../common/mod.rs"]
mod common;

mod agent;
mod containment;
mod errors;
mod fetch;
mod layers;
mod memory;
mod sandbox;
mod steps;
mod tools;
mod trust;
mod voice;
