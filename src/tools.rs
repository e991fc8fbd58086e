//! Tools: what Hermit can do beyond talking.
//!
//! Each tool has a name, a description, a JSON Schema for its arguments and
//! the effects a call has ([`Effect`]). Every call, from the model or from
//! `hermit tools run`, goes through one function, [`Toolbox::call`]: it
//! validates the arguments against the schema, asks the decision point
//! ([`Toolbox::decide`]) and only then runs the tool. The trust layer (policy,
//! provenance, approvals, audit) takes its decisions there and nowhere else.
//!
//! Tools know nothing of Matrix or of the model. A tool that runs a program
//! runs it in the [`crate::sandbox`]; the file tools resolve every path
//! beneath the workspace with `openat2(RESOLVE_BENEATH)`.

pub mod fetch;
pub mod files;
pub mod notes;
pub mod schema;
pub mod shell;
pub mod time;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::sandbox::{Limits, Sandbox, SandboxPolicy};

/// What a call does to the world. Policy maps role × effect to a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Read,
    Write,
    Exec,
    Network,
    Message,
    Irreversible,
}

/// A tool as the model and the policy see it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments (an object).
    pub parameters: Value,
}

/// A call, as parsed from the model's output or the command line.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// What a call returned, as text for the model and as data for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ToolOutput {
    /// Whether the call did what was asked (a command that exited non-zero
    /// did not).
    pub ok: bool,
    pub content: String,
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
    pub fn failed(tool: &str, message: impl std::fmt::Display) -> Self {
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
    pub allow_weaker: bool,
    /// Whether tool processes (the shell) are granted the network.
    pub network: bool,
    /// The `fetch` tool's switch, allow-lists and caps.
    pub fetch: fetch::FetchConfig,
    /// The owner's timezone (IANA name; empty: the machine's).
    pub timezone: String,
}

impl ToolContext {
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
            cgroup: None,
        }
    }
}

pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;
    /// The effects of this particular call (arguments can raise them).
    fn effects(&self, arguments: &Value) -> Vec<Effect>;
    /// Runs a call whose arguments already validated against the schema.
    fn run(&self, ctx: &ToolContext, arguments: &Value) -> Result<ToolOutput, ToolError>;
}

/// The decision on one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    Allow { reason: String },
    Deny { reason: String },
}

/// The tools Hermit has, and the one way to call them.
pub struct Toolbox {
    tools: Vec<Box<dyn Tool>>,
    pub ctx: ToolContext,
}

impl Toolbox {
    /// The built-in tools.
    pub fn builtin(ctx: ToolContext) -> Self {
        let mut tools: Vec<Box<dyn Tool>> = vec![Box::new(shell::Shell)];
        for op in files::Files::ALL {
            tools.push(Box::new(files::Files(op)));
        }
        tools.push(Box::new(notes::Notes));
        tools.push(Box::new(fetch::Fetch));
        tools.push(Box::new(time::Time));
        Self { tools, ctx }
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
    pub fn template_tools(&self) -> Value {
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

    /// The decision point. Today it allows every call whose effects stay
    /// within what the tools' own confinement enforces (the workspace, the
    /// sandbox); the trust layer replaces this body with the policy,
    /// provenance and approvals, and every call already passes here.
    pub fn decide(&self, call: &ToolCall, effects: &[Effect]) -> Decision {
        if effects.contains(&Effect::Network) && !self.ctx.fetch.enabled {
            return Decision::Deny {
                reason: format!(
                    "`{}` needs the network, which is off ([fetch] enabled = false)",
                    call.name
                ),
            };
        }
        Decision::Allow {
            reason: "confined to the workspace and the sandbox".into(),
        }
    }

    /// Every tool call goes through here: validate, decide, run.
    pub fn call(&self, call: &ToolCall) -> Result<ToolOutput, ToolError> {
        let tool = self
            .get(&call.name)
            .ok_or_else(|| ToolError::Unknown(call.name.clone()))?;
        schema::validate(&tool.spec().parameters, &call.arguments).map_err(|message| {
            ToolError::InvalidArguments {
                tool: call.name.clone(),
                message,
            }
        })?;
        let effects = tool.effects(&call.arguments);
        let decision = self.decide(call, &effects);
        tracing::info!(tool = %call.name, ?effects, ?decision, "tool call");
        match decision {
            Decision::Allow { .. } => tool.run(&self.ctx, &call.arguments),
            Decision::Deny { reason } => Err(ToolError::Refused {
                tool: call.name.clone(),
                reason,
            }),
        }
    }
}

/// A string argument, after validation.
pub(crate) fn arg_str<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}
