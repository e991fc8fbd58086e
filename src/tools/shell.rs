//! `shell`: runs a command line with `/bin/sh -c` in the sandbox, in the
//! workspace; returns the exit code, stdout and stderr (cut with a marker
//! past the output limit).

use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};

pub(crate) struct Shell;

impl Tool for Shell {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "shell",
            description: "Run a shell command line in the owner's workspace (sandboxed: no network unless enabled, only the workspace is writable). Returns exit code, stdout and stderr.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line, run with /bin/sh -c", "maxLength": 8192}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _: &Value) -> Vec<Effect> {
        vec![Effect::Exec, Effect::Write]
    }

    /// In the workspace of the person the call acts for (a member's own).
    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let command = arg_str(args, "command").unwrap_or_default();
        let argv = ["/bin/sh", "-c", command].map(String::from);
        let policy = ctx.sandbox_policy_for(meta.principal.as_deref());
        std::fs::create_dir_all(&policy.workspace)
            .map_err(|e| ToolError::failed("shell", format!("the workspace: {e}")))?;
        let out = ctx.sandbox.run(&policy, &argv)?;
        let mut content = format!("exit code: {}", out.exit_code);
        if out.timed_out {
            content.push_str(&format!(
                " (killed after the {} s time limit)",
                ctx.limits.timeout_seconds
            ));
        }
        content.push_str(&format!(
            "\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        ));
        Ok(ToolOutput {
            own: false,
            ok: out.exit_code == 0 && !out.timed_out,
            content,
        })
    }
}
