//! The vocabulary every layer speaks: who asks ([`Principal`]), what a
//! call does ([`Effect`], [`ToolCall`]), where text came from ([`Origin`]),
//! what the audit log records ([`AuditKind`]), which conversation
//! ([`ConversationKey`]), and Hermit's clock and the
//! owner's timezone.
//!
//! Plain types and pure functions: no I/O beyond reading the clock, and no
//! dependency on any other module of Hermit, so that everything else can
//! depend on it without a cycle.

mod action;
mod audit;
pub(crate) mod clock;
mod conversation;
pub(crate) mod origin;
mod principal;

pub use action::{Effect, ToolCall};
pub use audit::AuditKind;
pub use clock::{now, now_ms, owner_timezone, system_now_ms};
pub use conversation::ConversationKey;
pub use origin::{Origin, fence};
pub use principal::{OWNER, Principal};

/// Whether `host` matches an allow-list `pattern`: `example.org` exactly,
/// or `*.example.org` for its subdomains.
pub(crate) fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}
