//! Tools: what Hermit can do beyond talking.
//!
//! Each tool has a name, a description, a JSON Schema for its arguments and
//! the effects a call has ([`Effect`]). Every call, from the model or from
//! `hermit tools run`, goes through one function, [`Toolbox::call`]: it
//! validates the arguments against the schema, asks the decision point
//! ([`Toolbox::check`]: the policy of [`crate::trust`]) and only then runs
//! the tool ([`Toolbox::run_checked`]); the agent waits for the owner's
//! approval between the two when the decision is `ask`.
//!
//! Tools know nothing of Matrix or of the model. A tool that runs a program
//! runs it in the [`crate::sandbox`]; the file tools resolve every path
//! beneath the workspace with `openat2(RESOLVE_BENEATH)`.

pub(crate) mod calculate;
pub(crate) mod fetch;
pub mod files;
pub(crate) mod memory;
pub(crate) mod notes;
pub(crate) mod reminders;
pub(crate) mod schema;
pub(crate) mod shell;
pub(crate) mod time;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::sandbox::{Limits, Sandbox, SandboxPolicy};
use crate::trust::Trust;
use crate::trust::policy::{CallContext, PolicyDecision, Verdict};
use crate::vocab::Origin;
use crate::vocab::Principal;
pub use crate::vocab::{Effect, ToolCall};

/// A tool as the model and the policy see it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments (an object).
    pub parameters: Value,
}

/// What a call returned, as text for the model and as data for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ToolOutput {
    /// Whether the call did what was asked (a command that exited non-zero
    /// did not).
    pub ok: bool,
    pub content: String,
    /// The content holds only the person's own words (as they gave them,
    /// in a turn with no untrusted text) and Hermit's: it does not taint
    /// the conversation, whatever [`Tool::output_origin`] says for the
    /// tool in general (a listing of reminders all set by the owner).
    #[serde(skip)]
    pub own: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("there is no tool named `{0}`; see `hermit tools list`")]
    Unknown(String),
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: String, message: String },
    #[error("`{tool}` was refused: {reason}")]
    Refused { tool: String, reason: String },
    #[error("`{tool}` failed: {message}")]
    Failed { tool: String, message: String },
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
}

impl ToolError {
    /// A tool that ran but could not do what was asked.
    pub(crate) fn failed(tool: &str, message: impl std::fmt::Display) -> Self {
        Self::Failed {
            tool: tool.into(),
            message: message.to_string(),
        }
    }
}

/// Where tools act: the workspace, the trash, the sandbox they run in.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: PathBuf,
    pub data_dir: PathBuf,
    pub sandbox: Sandbox,
    pub limits: Limits,
    pub allow_weaker: crate::sandbox::Weaker,
    /// Whether tool processes (the shell) are granted the network.
    pub network: bool,
    /// Who tool processes run as when Hermit is root.
    pub tool_user: crate::sandbox::ToolUser,
    /// The `fetch` tool's switch, allow-lists and caps.
    pub fetch: fetch::FetchConfig,
    /// The owner's timezone (IANA name; empty: the machine's).
    pub timezone: String,
    /// Memory (`remember`, `recall`, `forget`); `None` when it is off.
    pub memory: Option<Arc<crate::memory::Memory>>,
}

impl ToolContext {
    /// The workspace of the person a call acts for (`principal`, as
    /// [`CallMeta::principal`]): the owner's is `paths.workspace`; each
    /// member has their own, `<data>/members/<id>/workspace`, and sees
    /// nothing of the owner's files.
    pub(crate) fn workspace_for(&self, principal: Option<&str>) -> PathBuf {
        match self.member_home(principal) {
            Some(home) => home.join("workspace"),
            None => self.workspace.clone(),
        }
    }

    /// The trash of the person a call acts for: the owner's is
    /// `<data>/trash`; a member's is their own, beside their workspace.
    pub(crate) fn trash_for(&self, principal: Option<&str>) -> PathBuf {
        match self.member_home(principal) {
            Some(home) => home.join("trash"),
            None => self.data_dir.join("trash"),
        }
    }

    /// `<data>/members/<id>` for a member; `None` for the owner.
    fn member_home(&self, principal: Option<&str>) -> Option<PathBuf> {
        match principal {
            None => None,
            Some(p) if p == crate::vocab::OWNER => None,
            Some(p) => Some(self.data_dir.join("members").join(member_dir(p))),
        }
    }

    /// [`ToolContext::sandbox_policy`] for the person a call acts for.
    pub(crate) fn sandbox_policy_for(&self, principal: Option<&str>) -> SandboxPolicy {
        SandboxPolicy {
            workspace: self.workspace_for(principal),
            ..self.sandbox_policy()
        }
    }

    /// The sandbox policy of a tool process.
    pub fn sandbox_policy(&self) -> SandboxPolicy {
        SandboxPolicy {
            workspace: self.workspace.clone(),
            scratch: self.data_dir.join("scratch"),
            read_only: Vec::new(),
            network: self.network,
            limits: self.limits.clone(),
            allow_weaker: self.allow_weaker,
            env: Vec::new(),
            cgroups: Vec::new(),
            user: self.tool_user,
        }
    }
}

/// A member's directory name: their id, readable, with anything but
/// letters, digits, `.`, `-` and `_` replaced, and a short hash of the
/// whole id (so that two ids never share a directory).
fn member_dir(id: &str) -> String {
    let readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let hash = crate::trust::audit::sha256_hex(id.as_bytes());
    format!("{}-{}", readable.trim_matches('_'), &hash[..8])
}

pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// The effects of this particular call (arguments can raise them).
    fn effects(&self, arguments: &Value) -> Vec<Effect>;
    /// Runs a call whose arguments already validated against the schema,
    /// knowing its circumstances: whose call it is (a member's files, notes
    /// and memories are their own) and the turn's taint (tools that keep
    /// what they are given store it with it).
    fn run_in(
        &self,
        ctx: &ToolContext,
        arguments: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError>;
    /// [`Tool::run_in`] as the owner, outside any turn.
    fn run(&self, ctx: &ToolContext, arguments: &Value) -> Result<ToolOutput, ToolError> {
        self.run_in(ctx, arguments, &CallMeta::default())
    }
    /// Where this call's output comes from, for provenance: `None` when
    /// it is Hermit's own (trusted), else an untrusted origin (by default,
    /// "output of the tool NAME").
    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        Some(Origin::ToolOutput(self.spec().name.to_string()))
    }
    /// The arguments as the append-only audit log keeps them. A tool whose
    /// arguments must be forgettable (`remember`) keeps their hash only.
    fn audit_arguments(&self, arguments: &Value) -> Value {
        arguments.clone()
    }
}

/// What a tool may know of the turn that calls it.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    /// The untrusted source in the turn, if any.
    pub taint: Option<String>,
    /// Whose memory the call reads and writes ([`crate::memory::principal_key`]);
    /// `None`: the owner's.
    pub principal: Option<String>,
    /// The conversation the call is made in.
    pub conversation: Option<crate::vocab::ConversationKey>,
}

impl CallMeta {
    /// Whose memory and reminders the call acts on (the owner's by default).
    pub(crate) fn principal_key(&self) -> &str {
        self.principal.as_deref().unwrap_or(crate::vocab::OWNER)
    }

    /// The Matrix room the call is made in, if any.
    pub(crate) fn room(&self) -> Option<String> {
        self.conversation
            .as_ref()
            .and_then(|k| k.room())
            .map(str::to_string)
    }
}

/// The tools Hermit has, and the one way to call them.
pub struct Toolbox {
    tools: Vec<Box<dyn Tool>>,
    pub ctx: ToolContext,
    pub trust: Arc<Trust>,
}

/// A call that passed validation, with its effects and the decision on it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub effects: Vec<Effect>,
    pub decision: PolicyDecision,
}

impl Toolbox {
    /// The built-in tools.
    pub fn builtin(ctx: ToolContext, trust: Arc<Trust>) -> Self {
        let mut tools: Vec<Box<dyn Tool>> = vec![Box::new(shell::Shell)];
        for op in files::Files::ALL {
            tools.push(Box::new(files::Files(op)));
        }
        tools.push(Box::new(files::TrashTool));
        tools.push(Box::new(notes::Notes));
        tools.push(Box::new(fetch::Fetch));
        tools.push(Box::new(time::Time));
        tools.push(Box::new(calculate::Calculate));
        tools.push(Box::new(reminders::Remind));
        tools.push(Box::new(reminders::Schedule));
        tools.push(Box::new(reminders::Task));
        tools.push(Box::new(reminders::List));
        tools.push(Box::new(reminders::Cancel));
        tools.push(Box::new(reminders::Briefing));
        tools.push(Box::new(reminders::Watch));
        if ctx.memory.is_some() {
            tools.push(Box::new(memory::Remember));
            tools.push(Box::new(memory::Recall));
            tools.push(Box::new(memory::Forget));
        }
        Self { tools, ctx, trust }
    }

    /// A call's arguments as the audit log keeps them.
    pub(crate) fn audit_arguments(&self, call: &ToolCall) -> Value {
        match self.get(&call.name) {
            Some(t) => t.audit_arguments(&call.arguments),
            None => call.arguments.clone(),
        }
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&dyn Tool> {
        self.tools
            .iter()
            .find(|t| t.spec().name == name)
            .map(|t| t.as_ref())
    }

    /// The tools as a chat template's `tools` list (OpenAI function format).
    pub(crate) fn template_tools(&self) -> Value {
        Value::Array(
            self.specs()
                .into_iter()
                .map(|s| {
                    serde_json::json!({
                        "type": "function",
                        "function": {
                            "name": s.name,
                            "description": s.description,
                            "parameters": s.parameters,
                        }
                    })
                })
                .collect(),
        )
    }

    /// The decision point. Every call, from the model or from the command
    /// line, is validated and decided here: the confinement switches
    /// (`network` needs `[fetch] enabled` and the host on its allow-list),
    /// then [`crate::trust::policy::decide`] (role × effect, taint, the
    /// stop switch). The decision and its reason are audited.
    pub fn check(
        &self,
        call: &ToolCall,
        principal: &Principal,
        ctx: &CallContext,
    ) -> Result<Checked, ToolError> {
        let tool = self
            .get(&call.name)
            .ok_or_else(|| ToolError::Unknown(call.name.clone()))?;
        schema::validate(&tool.spec().parameters, &call.arguments).map_err(|message| {
            ToolError::InvalidArguments {
                tool: call.name.clone(),
                message,
            }
        })?;
        let mut effects = tool.effects(&call.arguments);
        effects.sort();
        effects.dedup();
        let mut ctx = ctx.clone();
        ctx.halted = self.trust.halt.is_halted();
        if ctx.recipient.is_none() {
            ctx.recipient = arg_str(&call.arguments, "to").map(String::from);
        }
        let decision = match self.network_gate(call, &effects) {
            Some(reason) => PolicyDecision {
                verdict: Verdict::Deny,
                reason,
            },
            None => crate::trust::policy::decide(
                &self.trust.policy,
                principal,
                self.trust.owner(),
                &effects,
                &ctx,
            ),
        };
        tracing::info!(tool = %call.name, ?effects, verdict = ?decision.verdict, reason = %decision.reason, principal = %principal.id, "tool call");
        // Fail-closed: a call whose entry cannot be written does not run.
        let recorded = self.trust.audit.try_record(
            crate::vocab::AuditKind::ToolCall,
            &principal.id,
            serde_json::json!({
                "tool": call.name,
                "arguments": tool.audit_arguments(&call.arguments),
                "effects": effects,
                "decision": decision.verdict,
                "reason": decision.reason,
                "taint": ctx.taint,
                "typed_by_owner": ctx.typed_by_owner,
            }),
        );
        let decision = match recorded {
            Ok(_) => decision,
            Err(e) => {
                tracing::error!(tool = %call.name, error = %e, "the audit log cannot be written: the call is refused");
                PolicyDecision {
                    verdict: Verdict::Deny,
                    reason: format!(
                        "the audit log cannot be written ({e}); nothing runs without its entry"
                    ),
                }
            }
        };
        Ok(Checked { effects, decision })
    }

    /// `network` is off until the owner turns it on for named hosts.
    fn network_gate(&self, call: &ToolCall, effects: &[Effect]) -> Option<String> {
        if !effects.contains(&Effect::Network) {
            return None;
        }
        if !self.ctx.fetch.enabled {
            return Some(format!(
                "`{}` needs the network, which is off ([fetch] enabled = false)",
                call.name
            ));
        }
        let url = arg_str(&call.arguments, "url").unwrap_or_default().trim();
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("https://{url}")
        };
        let host = crate::trust::redact::host_of(&url).unwrap_or_default();
        if !self
            .ctx
            .fetch
            .allow_hosts
            .iter()
            .any(|p| crate::vocab::host_matches(&host, p))
        {
            return Some(format!(
                "{host} is not in fetch.allow_hosts: the network is enabled per host"
            ));
        }
        None
    }

    /// Runs a call that was checked (and approved if it asked). Its
    /// output is redacted before anyone (the model included) sees it.
    pub fn run_checked(&self, call: &ToolCall) -> Result<ToolOutput, ToolError> {
        self.run_checked_in(call, &CallMeta::default())
    }

    /// [`Toolbox::run_checked`] in a turn: the tool learns its taint.
    pub fn run_checked_in(
        &self,
        call: &ToolCall,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self
            .get(&call.name)
            .ok_or_else(|| ToolError::Unknown(call.name.clone()))?;
        let result = tool
            .run_in(&self.ctx, &call.arguments, meta)
            .map(|mut out| {
                out.content = crate::trust::redact::redact(&out.content);
                out
            });
        let (ok, digest) = match &result {
            Ok(o) => (o.ok, crate::trust::audit::sha256_hex(o.content.as_bytes())),
            Err(e) => (
                false,
                crate::trust::audit::sha256_hex(e.to_string().as_bytes()),
            ),
        };
        self.trust.audit.record(
            crate::vocab::AuditKind::ToolResult,
            "hermit",
            serde_json::json!({"tool": call.name, "ok": ok, "output_sha256": digest}),
        );
        result
    }

    /// One call typed by the owner at the box (`hermit tools run`): the
    /// command is its own approval; a `deny` (or the stop switch) holds.
    pub fn call(&self, call: &ToolCall) -> Result<ToolOutput, ToolError> {
        let owner = self.trust.local_owner();
        let ctx = CallContext {
            typed_by_owner: true,
            ..Default::default()
        };
        let checked = self.check(call, &owner, &ctx)?;
        match checked.decision.verdict {
            Verdict::Allow => self.run_checked(call),
            Verdict::Ask | Verdict::Deny => Err(ToolError::Refused {
                tool: call.name.clone(),
                reason: checked.decision.reason,
            }),
        }
    }
}

/// A string argument, after validation.
pub(crate) fn arg_str<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}
