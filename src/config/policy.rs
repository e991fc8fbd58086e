//! `[policy]` in hermit.toml: role × effect → allow, ask or deny, as
//! written by the owner. The decision itself is [`crate::trust::policy`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocab::Effect;

/// What the policy says of one effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Allow,
    Ask,
    Deny,
}

/// A role's rules as written in the configuration: an effect left out
/// keeps the role's default (for the owner and `member`), or is denied
/// (for other roles).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSet {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irreversible: Option<Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remember: Option<Rule>,
}

impl RuleSet {
    /// These rules over `base`.
    pub(crate) fn over(&self, base: EffectRules) -> EffectRules {
        EffectRules {
            read: self.read.unwrap_or(base.read),
            write: self.write.unwrap_or(base.write),
            exec: self.exec.unwrap_or(base.exec),
            network: self.network.unwrap_or(base.network),
            message: self.message.unwrap_or(base.message),
            irreversible: self.irreversible.unwrap_or(base.irreversible),
            remember: self.remember.unwrap_or(base.remember),
        }
    }
}

/// A role's rule for each effect, in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectRules {
    pub read: Rule,
    pub write: Rule,
    pub exec: Rule,
    pub network: Rule,
    pub message: Rule,
    pub irreversible: Rule,
    /// Writing to the principal's own memory.
    pub remember: Rule,
}

impl EffectRules {
    pub(crate) fn get(&self, effect: Effect) -> Rule {
        match effect {
            Effect::Read => self.read,
            Effect::Write => self.write,
            Effect::Exec => self.exec,
            Effect::Network => self.network,
            Effect::Message => self.message,
            Effect::Irreversible => self.irreversible,
            Effect::Remember => self.remember,
        }
    }

    /// The owner's default: reads and their own memory allowed, everything
    /// else asks.
    pub(crate) fn owner_default() -> Self {
        Self {
            read: Rule::Allow,
            write: Rule::Ask,
            exec: Rule::Ask,
            network: Rule::Ask,
            message: Rule::Ask,
            irreversible: Rule::Ask,
            remember: Rule::Allow,
        }
    }

    /// Everything denied: what a role defined without a rule gets.
    pub(crate) fn none() -> Self {
        Self {
            read: Rule::Deny,
            write: Rule::Deny,
            exec: Rule::Deny,
            network: Rule::Deny,
            message: Rule::Deny,
            irreversible: Rule::Deny,
            remember: Rule::Deny,
        }
    }

    /// A member's default: reads, and their own memory.
    pub(crate) fn member_default() -> Self {
        Self {
            read: Rule::Allow,
            write: Rule::Deny,
            exec: Rule::Deny,
            network: Rule::Deny,
            message: Rule::Deny,
            irreversible: Rule::Deny,
            remember: Rule::Allow,
        }
    }
}

/// `[policy]` in hermit.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The owner's rules (over: reads allowed, everything else asks).
    pub owner: RuleSet,
    /// The rules of the `member` role (every ID in `matrix.members` not
    /// given another role in `member_roles`; over: reads only).
    pub member: RuleSet,
    /// Further roles, by name (effects left out are denied).
    pub roles: BTreeMap<String, RuleSet>,
    /// Matrix ID → role name, for members who are not plain `member`s.
    pub member_roles: BTreeMap<String, String>,
    /// Seconds an approval request stays valid.
    pub approval_ttl_seconds: u64,
    /// Approvals count only from the owner's verified devices (encrypted
    /// rooms; the device must be verified by the bot's cross-signing).
    pub require_verified_device: bool,
    /// Hosts that replies may link to or show images from; links and
    /// images to any other host are neutralised. The homeserver's own
    /// name is always allowed.
    pub link_hosts: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            owner: RuleSet::default(),
            member: RuleSet::default(),
            roles: BTreeMap::new(),
            member_roles: BTreeMap::new(),
            approval_ttl_seconds: 600,
            require_verified_device: false,
            link_hosts: Vec::new(),
        }
    }
}

impl PolicyConfig {
    /// Checks what serde cannot: roles named exist, members are members.
    pub(crate) fn check(&self, members: &[String]) -> Result<(), String> {
        for (id, role) in &self.member_roles {
            if !members.iter().any(|m| m == id) {
                return Err(format!(
                    "policy.member_roles names {id}, who is not in matrix.members"
                ));
            }
            if role == crate::vocab::OWNER {
                return Err(format!(
                    "policy.member_roles: {id} cannot have the owner's role; there is one owner (matrix.owner)"
                ));
            }
            if role != "member" && !self.roles.contains_key(role) {
                return Err(format!(
                    "policy.member_roles: {id} has the role {role:?}, which is not defined in [policy.roles]"
                ));
            }
        }
        if self.approval_ttl_seconds < 10 {
            return Err("policy.approval_ttl_seconds must be at least 10 (default 600)".into());
        }
        Ok(())
    }

    /// The rules in force for `role`; `None` for a role not defined.
    pub fn rules(&self, role: &str) -> Option<EffectRules> {
        match role {
            crate::vocab::OWNER => Some(self.owner.over(EffectRules::owner_default())),
            "member" => Some(self.member.over(EffectRules::member_default())),
            other => self.roles.get(other).map(|r| r.over(EffectRules::none())),
        }
    }
}
