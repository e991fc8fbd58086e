//! Who may do what: principals, roles, and the one decision function.
//!
//! A principal is the exact Matrix user ID of the sender (never a display
//! name, never a quoted reply), or the owner at the box's own terminal. The
//! configuration maps role × effect to `allow`, `ask` or `deny`; provenance
//! (taint), the stop switch and the `network` rules then raise that answer,
//! never lower it. [`decide`] is pure: the same inputs give the same
//! decision, whatever the model wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocab::{Effect, Principal};

pub use crate::config::policy::{EffectRules, PolicyConfig, Rule, RuleSet};

/// Principals from the configuration.
#[derive(Debug, Clone)]
pub struct Principals {
    pub owner: String,
    pub members: Vec<String>,
    pub member_roles: BTreeMap<String, String>,
}

impl Principals {
    /// The principal for an exact Matrix user ID; `None` for everyone else
    /// (who is ignored).
    pub(crate) fn of(&self, user_id: &str) -> Option<Principal> {
        if user_id == self.owner {
            return Some(Principal::local_owner(user_id));
        }
        if self.members.iter().any(|m| m == user_id) {
            let role = self
                .member_roles
                .get(user_id)
                .cloned()
                .unwrap_or_else(|| "member".into());
            return Some(Principal {
                id: user_id.to_string(),
                role,
            });
        }
        None
    }
}

/// Everything [`decide`] weighs besides the role's rules.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The untrusted source that came into this turn's context first, if
    /// any ("web page https://…", "message from @alice:…").
    pub taint: Option<String>,
    /// For a `message` effect: to whom.
    pub recipient: Option<String>,
    /// The owner typed this exact call (`hermit tools run`): it is its own
    /// approval.
    pub typed_by_owner: bool,
    /// Hermit is stopped (`!stop`): nothing acts until `!resume`.
    pub halted: bool,
    /// Effects the owner granted the scheduled task this call runs in,
    /// when creating it: they are allowed where the role would ask (never
    /// where it denies, and never with untrusted text in the turn).
    pub granted: Vec<Effect>,
}

/// What happens to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Ask,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub verdict: Verdict,
    pub reason: String,
}

impl PolicyDecision {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self {
            verdict,
            reason: reason.into(),
        }
    }
}

/// The decision on a call with `effects`, by `principal`, in `ctx`.
pub(crate) fn decide(
    policy: &PolicyConfig,
    principal: &Principal,
    owner_id: &str,
    effects: &[Effect],
    ctx: &CallContext,
) -> PolicyDecision {
    if ctx.halted {
        return PolicyDecision::new(
            Verdict::Deny,
            "Hermit is stopped (!stop); nothing runs until the owner sends !resume",
        );
    }
    let Some(rules) = policy.rules(&principal.role) else {
        return PolicyDecision::new(
            Verdict::Deny,
            format!("{} has the unknown role {:?}", principal.id, principal.role),
        );
    };
    let name = |e: Effect| {
        serde_json::to_value(e)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    };
    let mut effects: Vec<Effect> = effects.to_vec();
    effects.sort();
    effects.dedup();
    if effects.is_empty() {
        effects.push(Effect::Read);
    }
    let mut verdict = Verdict::Allow;
    let mut because = Vec::new();
    for &e in &effects {
        let r = match rules.get(e) {
            Rule::Ask if ctx.granted.contains(&e) => {
                because.push(format!("{} granted to this schedule", name(e)));
                verdict = verdict.max(Verdict::Allow);
                continue;
            }
            r => r,
        };
        because.push(format!("{} {}", name(e), rule_word(r)));
        verdict = verdict.max(match r {
            Rule::Allow => Verdict::Allow,
            Rule::Ask => Verdict::Ask,
            Rule::Deny => Verdict::Deny,
        });
    }
    let role_reason = format!("role {}: {}", principal.role, because.join(", "));
    if verdict == Verdict::Deny {
        return PolicyDecision::new(Verdict::Deny, role_reason);
    }
    if let Some(source) = &ctx.taint {
        if effects.contains(&Effect::Message)
            && ctx.recipient.as_deref().is_none_or(|r| r != owner_id)
        {
            return PolicyDecision::new(
                Verdict::Deny,
                format!("untrusted text ({source}) is in this turn: messages go to the owner only"),
            );
        }
        if effects.iter().any(|&e| e != Effect::Read) && !ctx.typed_by_owner {
            return PolicyDecision::new(
                Verdict::Ask,
                format!(
                    "untrusted text ({source}) is in this turn: every effect beyond read needs the owner's approval"
                ),
            );
        }
    }
    if verdict == Verdict::Ask && ctx.typed_by_owner && principal.is_owner() {
        return PolicyDecision::new(
            Verdict::Allow,
            format!("typed by the owner at the command line ({role_reason})"),
        );
    }
    PolicyDecision::new(verdict, role_reason)
}

fn rule_word(r: Rule) -> &'static str {
    match r {
        Rule::Allow => "allowed",
        Rule::Ask => "asks",
        Rule::Deny => "denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "@owner:box";

    fn owner() -> Principal {
        Principal::local_owner(OWNER)
    }

    fn member() -> Principal {
        Principal {
            id: "@alice:box".into(),
            role: "member".into(),
        }
    }

    fn verdict(p: &Principal, effects: &[Effect], ctx: &CallContext) -> Verdict {
        decide(&PolicyConfig::default(), p, OWNER, effects, ctx).verdict
    }

    #[test]
    fn defaults_owner_reads_everything_else_asks_members_read_only() {
        let none = CallContext::default();
        assert_eq!(verdict(&owner(), &[Effect::Read], &none), Verdict::Allow);
        for e in [
            Effect::Write,
            Effect::Exec,
            Effect::Network,
            Effect::Message,
            Effect::Irreversible,
        ] {
            assert_eq!(verdict(&owner(), &[e], &none), Verdict::Ask, "{e:?}");
            assert_eq!(verdict(&member(), &[e], &none), Verdict::Deny, "{e:?}");
        }
        assert_eq!(verdict(&member(), &[Effect::Read], &none), Verdict::Allow);
        // The strictest effect of a call wins.
        assert_eq!(
            verdict(&owner(), &[Effect::Read, Effect::Write], &none),
            Verdict::Ask
        );
    }

    #[test]
    fn taint_turns_allow_into_ask_and_denies_messages_to_others() {
        let mut policy = PolicyConfig::default();
        policy.owner.write = Some(Rule::Allow);
        policy.owner.message = Some(Rule::Allow);
        let clean = CallContext::default();
        let tainted = CallContext {
            taint: Some("web page https://evil.example/".into()),
            ..Default::default()
        };
        let d = decide(&policy, &owner(), OWNER, &[Effect::Write], &clean);
        assert_eq!(d.verdict, Verdict::Allow);
        let d = decide(&policy, &owner(), OWNER, &[Effect::Write], &tainted);
        assert_eq!(d.verdict, Verdict::Ask);
        assert!(d.reason.contains("evil.example"), "{}", d.reason);
        // Reads stay allowed.
        let d = decide(&policy, &owner(), OWNER, &[Effect::Read], &tainted);
        assert_eq!(d.verdict, Verdict::Allow);
        // A message: to the owner it asks, to anyone else it is denied.
        let to = |r: &str| CallContext {
            recipient: Some(r.into()),
            ..tainted.clone()
        };
        let d = decide(&policy, &owner(), OWNER, &[Effect::Message], &to(OWNER));
        assert_eq!(d.verdict, Verdict::Ask);
        let d = decide(&policy, &owner(), OWNER, &[Effect::Message], &to("@eve:x"));
        assert_eq!(d.verdict, Verdict::Deny);
        let d = decide(&policy, &owner(), OWNER, &[Effect::Message], &tainted);
        assert_eq!(d.verdict, Verdict::Deny);
    }

    #[test]
    fn stop_denies_everything_and_deny_is_never_lifted() {
        let halted = CallContext {
            halted: true,
            typed_by_owner: true,
            ..Default::default()
        };
        assert_eq!(verdict(&owner(), &[Effect::Read], &halted), Verdict::Deny);
        let typed = CallContext {
            typed_by_owner: true,
            ..Default::default()
        };
        assert_eq!(verdict(&owner(), &[Effect::Exec], &typed), Verdict::Allow);
        let mut policy = PolicyConfig::default();
        policy.owner.irreversible = Some(Rule::Deny);
        let d = decide(&policy, &owner(), OWNER, &[Effect::Irreversible], &typed);
        assert_eq!(d.verdict, Verdict::Deny);
        // A member typing at ... is not the owner: no lift.
        assert_eq!(verdict(&member(), &[Effect::Write], &typed), Verdict::Deny);
    }

    #[test]
    fn a_partial_rule_set_keeps_the_defaults_and_new_roles_start_denied() {
        let text = "[owner]\nwrite = \"allow\"\n[roles.family]\nread = \"allow\"\n";
        let policy: PolicyConfig = toml::from_str(text).unwrap();
        let owner = policy.rules("owner").unwrap();
        assert_eq!(owner.write, Rule::Allow);
        assert_eq!(owner.exec, Rule::Ask);
        let family = policy.rules("family").unwrap();
        assert_eq!(family.read, Rule::Allow);
        assert_eq!(family.write, Rule::Deny);
        assert!(policy.rules("nobody").is_none());
        assert!(toml::from_str::<PolicyConfig>("[owner]\nwrite = \"maybe\"").is_err());
    }

    #[test]
    fn identity_is_the_exact_user_id() {
        let p = Principals {
            owner: OWNER.into(),
            members: vec!["@alice:box".into(), "@bob:box".into()],
            member_roles: [("@bob:box".to_string(), "family".to_string())].into(),
        };
        assert!(p.of(OWNER).unwrap().is_owner());
        assert_eq!(p.of("@alice:box").unwrap().role, "member");
        assert_eq!(p.of("@bob:box").unwrap().role, "family");
        assert!(p.of("@Owner:box").is_none());
        assert!(p.of("@owner:box ").is_none());
        assert!(p.of("owner").is_none());
        // An undefined role denies.
        let d = decide(
            &PolicyConfig::default(),
            &p.of("@bob:box").unwrap(),
            OWNER,
            &[Effect::Read],
            &CallContext::default(),
        );
        assert_eq!(d.verdict, Verdict::Deny);
    }

    #[test]
    fn a_schedule_s_grants_allow_what_would_ask_but_not_what_is_denied_or_tainted() {
        let granted = CallContext {
            granted: vec![Effect::Write, Effect::Irreversible],
            ..Default::default()
        };
        let effects = [Effect::Write, Effect::Irreversible];
        assert_eq!(
            verdict(&owner(), &effects, &CallContext::default()),
            Verdict::Ask
        );
        assert_eq!(verdict(&owner(), &effects, &granted), Verdict::Allow);
        // Not granted: still asks.
        assert_eq!(
            verdict(&owner(), &[Effect::Write, Effect::Exec], &granted),
            Verdict::Ask
        );
        // A member's role denies writes; a grant does not lift that.
        assert_eq!(
            verdict(&member(), &[Effect::Write], &granted),
            Verdict::Deny
        );
        // Untrusted text in the turn: asks whatever was granted.
        let tainted = CallContext {
            taint: Some("web page https://x".into()),
            ..granted.clone()
        };
        assert_eq!(verdict(&owner(), &effects, &tainted), Verdict::Ask);
        // Stopped: denied.
        let halted = CallContext {
            halted: true,
            ..granted
        };
        assert_eq!(verdict(&owner(), &effects, &halted), Verdict::Deny);
    }
}
