//! The trust layer: deterministic, outside the model. A model can be
//! fooled; the policy cannot.
//!
//! - [`policy`]: principals, roles, role × effect → allow / ask / deny,
//!   and the one decision function every tool call goes through.
//! - provenance ([`crate::vocab::Origin`], [`crate::vocab::fence`]):
//!   where each piece of text came from; untrusted text is fenced in the
//!   prompt and taints the conversation.
//! - [`approvals`]: single-use approvals bound to the exact call.
//! - [`halt`]: `!stop` / `!resume`.
//! - [`redact`]: secrets and tokens out of every message, output and log.
//! - [`audit`]: the append-only, hash-chained log.

pub mod approvals;
pub mod audit;
pub mod halt;
pub mod policy;
pub mod redact;

use std::time::Duration;

use crate::config::Config;

/// The trust layer of one data directory, shared by the daemon's tasks.
pub struct Trust {
    pub policy: policy::PolicyConfig,
    pub principals: policy::Principals,
    pub audit: audit::Audit,
    pub approvals: approvals::Approvals,
    pub halt: halt::Halt,
    /// Hosts replies may link to (policy.link_hosts and the homeserver).
    pub link_hosts: Vec<String>,
}

/// Installs the values of every stored secret in the redaction filter
/// (again after `hermit secrets set`).
pub(crate) fn load_secrets(data_dir: &std::path::Path) -> anyhow::Result<()> {
    if data_dir.join("secrets").is_dir() {
        let secrets = crate::secrets::Secrets::open(data_dir)?;
        let all = secrets.all()?;
        redact::install(redact::Redactor::new(all.iter().map(|(_, s)| s.expose())));
    }
    Ok(())
}

impl Trust {
    /// Opens the trust layer and installs the secrets' values in the
    /// redaction filter.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let data = config.data_dir();
        let db = |_: ()| crate::db::open(&data.join("hermit.db"));
        load_secrets(&data)?;
        let mut link_hosts = config.policy.link_hosts.clone();
        link_hosts.push(config.homeserver.server_name.clone());
        Ok(Self {
            policy: config.policy.clone(),
            principals: policy::Principals {
                owner: config.owner_id(),
                members: config.matrix.members.clone(),
                member_roles: config.policy.member_roles.clone(),
            },
            audit: audit::Audit::open(&data)?,
            approvals: approvals::Approvals::new(
                db(())?,
                Duration::from_secs(config.policy.approval_ttl_seconds),
                config.policy.require_verified_device,
            ),
            halt: halt::Halt::new(db(())?),
            link_hosts,
        })
    }

    pub fn owner(&self) -> &str {
        &self.principals.owner
    }

    /// The owner at the box's terminal.
    pub fn local_owner(&self) -> crate::vocab::Principal {
        crate::vocab::Principal::local_owner(self.owner())
    }

    /// The owner's decision typed at the box (`via`: "terminal", "control
    /// socket", "command line"), audited whatever its outcome.
    pub fn decide_at_box(
        &self,
        code: &str,
        approve: bool,
        via: &str,
    ) -> Result<approvals::Stored, approvals::Refused> {
        let who = approvals::Decider {
            user: self.owner().to_string(),
            is_owner: true,
            place: None,
            verified: None,
        };
        self.decide(code, &who, approve, via)
    }

    /// A decision on an approval request, by whoever `who` is, from `via`
    /// ("matrix", "terminal", ...), audited whatever its outcome.
    pub(crate) fn decide(
        &self,
        code: &str,
        who: &approvals::Decider,
        approve: bool,
        via: &str,
    ) -> Result<approvals::Stored, approvals::Refused> {
        let result = self.approvals.decide(code, who, approve);
        let (room, verified) = (who.place.as_deref(), who.verified);
        match &result {
            Ok(row) => self.audit.record(
                if approve {
                    crate::vocab::AuditKind::ApprovalApprove
                } else {
                    crate::vocab::AuditKind::ApprovalDeny
                },
                &who.user,
                serde_json::json!({"code": row.code, "tool": row.tool, "via": via, "room": room, "verified": verified}),
            ),
            Err(why) => self.audit.record(
                crate::vocab::AuditKind::ApprovalIgnored,
                &who.user,
                serde_json::json!({"code": code, "why": why.to_string(), "via": via, "room": room, "verified": verified}),
            ),
        }
        result
    }

    /// The stop switch, thrown by `by` (the owner) from `via` ("matrix",
    /// "control socket", "command line"): every turn and tool process of
    /// this process halted, nothing new until [`Trust::resume`]; audited.
    /// Returns how many turns and processes were stopped.
    pub fn stop(&self, by: &str, via: &str) -> anyhow::Result<(usize, usize)> {
        let (turns, processes) = self.halt.stop(by)?;
        // A request asked without waiting does not outlive the stop.
        let requests = self.approvals.cancel_all_open();
        tracing::warn!(%by, via, turns, processes, "stopped");
        self.audit.record(
            crate::vocab::AuditKind::Stop,
            by,
            serde_json::json!({"turns": turns, "processes": processes, "requests": requests, "via": via}),
        );
        Ok((turns, processes))
    }

    /// Lifts the stop switch; audited.
    pub fn resume(&self, by: &str, via: &str) -> anyhow::Result<()> {
        self.halt.resume()?;
        tracing::info!(%by, via, "resumed");
        self.audit.record(
            crate::vocab::AuditKind::Resume,
            by,
            serde_json::json!({"via": via}),
        );
        Ok(())
    }

    /// A reply as it may leave the box: secrets out, links defused.
    pub(crate) fn outgoing(&self, text: &str) -> String {
        redact::neutralise_links(&redact::redact(text), &self.link_hosts)
    }

    /// Records a configuration change (the policy included) when the
    /// configuration in force differs from the one last recorded.
    pub fn record_config(&self, config: &Config) {
        let text = format!("{config:?}");
        let hash = audit::sha256_hex(text.as_bytes());
        let last = self.audit.last_of(crate::vocab::AuditKind::Config);
        let last_hash = last
            .as_ref()
            .and_then(|e| e.data.get("hash"))
            .and_then(|h| h.as_str())
            .map(String::from);
        if last_hash.as_deref() != Some(hash.as_str()) {
            self.audit.record(
                crate::vocab::AuditKind::Config,
                "hermit",
                serde_json::json!({
                    "hash": hash,
                    "changed": last.is_some(),
                    "policy": serde_json::to_value(&config.policy).unwrap_or_default(),
                    "owner": config.owner_id(),
                    "members": config.matrix.members,
                }),
            );
        }
    }
}
