//! The one policy gate of a turn: a tool call the model wrote is decided
//! (`Toolbox::check`: role × effect, raised by taint), audited, put to the
//! owner when the policy asks (an approval bound to this exact call), and
//! run in the sandbox on a blocking thread, or not at all.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{Agent, Conversation, TurnEvent};
use crate::inference::InferenceError;
use crate::tools::{ToolCall, Toolbox};
use crate::trust::approvals::{ApprovalRequest, Outcome};
use crate::trust::policy::{CallContext, Verdict};
use crate::vocab::{Origin, Principal};

impl Agent {
    /// The decision point, the owner's approval when it asks, and the
    /// call itself (on a blocking thread).
    pub(super) async fn decide_and_run(
        &self,
        toolbox: &Arc<Toolbox>,
        conv: &Conversation,
        principal: &Principal,
        call: &ToolCall,
        on_event: &mut impl FnMut(TurnEvent),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Step, InferenceError> {
        let trust = &toolbox.trust;
        let ctx = CallContext {
            taint: conv.taint_for(&principal.id, trust.owner()),
            granted: conv.grants.clone(),
            ..Default::default()
        };
        let checked = match toolbox.check(call, principal, &ctx) {
            Ok(c) => c,
            Err(e) => return Ok(Step::Ran(false, format!("error: {e}"), Origin::Assistant)),
        };
        match checked.decision.verdict {
            Verdict::Deny => {
                return Ok(Step::Ran(
                    false,
                    format!("refused by Hermit's policy: {}", checked.decision.reason),
                    Origin::Assistant,
                ));
            }
            Verdict::Allow => {}
            Verdict::Ask => {
                let request = ApprovalRequest {
                    tool: call.name.clone(),
                    arguments: call.arguments.clone(),
                    effects: checked.effects.clone(),
                    conversation: conv.key.to_string(),
                    requester: principal.id.clone(),
                    place: conv.place.clone(),
                    taint: ctx.taint.clone(),
                    reason: checked.decision.reason.clone(),
                };
                let code = match trust.approvals.request(&request) {
                    Ok(c) => c,
                    Err(e) => {
                        return Ok(Step::Ran(
                            false,
                            format!("error: cannot ask the owner: {e}"),
                            Origin::Assistant,
                        ));
                    }
                };
                trust.audit.record(
                    crate::vocab::AuditKind::ApprovalRequest,
                    &principal.id,
                    serde_json::json!({
                        "code": code, "tool": call.name, "arguments": toolbox.audit_arguments(call),
                        "effects": checked.effects, "conversation": conv.key.to_string(),
                        "place": conv.place, "taint": ctx.taint,
                    }),
                );
                let text = crate::trust::approvals::describe(&request, &code, trust.approvals.ttl);
                on_event(TurnEvent::Approval {
                    code: code.clone(),
                    text,
                });
                if conv.defer_approvals {
                    // The conversation goes on; the call runs if the owner
                    // approves it later (`Agent::settle`).
                    return Ok(Step::Deferred(code));
                }
                let asked = Instant::now();
                let outcome = trust
                    .approvals
                    .wait(&code, cancel, || trust.halt.is_halted())
                    .await;
                let waited = asked.elapsed();
                let denied = |why: String| Ok(Step::Waited(waited, false, why, Origin::Assistant));
                match outcome {
                    Outcome::Cancelled => return Ok(Step::Cancelled),
                    Outcome::Denied(by) => {
                        return denied(format!(
                            "the owner ({by}) denied this call; do not try it again, tell the user"
                        ));
                    }
                    Outcome::Expired => {
                        return denied(
                            "no approval came before the request expired; the call did not run"
                                .into(),
                        );
                    }
                    Outcome::Approved(by) => {
                        return match self
                            .run_approved(toolbox, conv, principal, call, &code, &by)
                            .await?
                        {
                            Approved::Ran(ok, content, origin) => {
                                Ok(Step::Executed(Some(waited), ok, content, origin))
                            }
                            Approved::NotRun(why) => denied(why),
                            Approved::Stopped => Ok(Step::Cancelled),
                        };
                    }
                }
            }
        }
        Ok(match self.run_call(toolbox, conv, principal, call).await? {
            Some((ok, content, origin)) => Step::Executed(None, ok, content, origin),
            None => Step::Cancelled,
        })
    }

    /// An approved call: its approval used (only if it is bound to this
    /// very call, and only once), audited (fail-closed), and run.
    pub(super) async fn run_approved(
        &self,
        toolbox: &Arc<Toolbox>,
        conv: &Conversation,
        principal: &Principal,
        call: &ToolCall,
        code: &str,
        by: &str,
    ) -> Result<Approved, InferenceError> {
        let trust = &toolbox.trust;
        let hash = crate::trust::approvals::binding(
            &call.name,
            &call.arguments,
            &conv.key.to_string(),
            &principal.id,
        );
        if !trust.approvals.consume(code, &hash) {
            trust.audit.record(
                crate::vocab::AuditKind::ApprovalMismatch,
                by,
                serde_json::json!({"code": code, "tool": call.name}),
            );
            return Ok(Approved::NotRun(
                "the approval does not match this exact call; it did not run".into(),
            ));
        }
        // Fail-closed: no entry, no action.
        if let Err(e) = trust.audit.try_record(
            crate::vocab::AuditKind::ApprovalUsed,
            by,
            serde_json::json!({"code": code, "tool": call.name}),
        ) {
            return Ok(Approved::NotRun(format!(
                "the audit log cannot be written ({e}); the call did not run"
            )));
        }
        // Stopped while waiting: the approval does not outlive it.
        Ok(match self.run_call(toolbox, conv, principal, call).await? {
            Some((ok, content, origin)) => Approved::Ran(ok, content, origin),
            None => Approved::Stopped,
        })
    }

    /// Runs a decided call in the sandbox, on a blocking thread: whether
    /// it succeeded, what it returned (redacted if an error), and the
    /// origin of that text.
    async fn run_call(
        &self,
        toolbox: &Arc<Toolbox>,
        conv: &Conversation,
        principal: &Principal,
        call: &ToolCall,
    ) -> Result<Option<(bool, String, Origin)>, InferenceError> {
        let trust = &toolbox.trust;
        let taint = conv.taint_for(&principal.id, trust.owner());
        let origin = toolbox
            .get(&call.name)
            .and_then(|t| t.output_origin(&call.arguments))
            .unwrap_or(Origin::Assistant);
        if trust.halt.is_halted() {
            return Ok(None);
        }
        let for_tool = call.clone();
        let tb = toolbox.clone();
        let meta = crate::tools::CallMeta {
            taint,
            principal: Some(crate::memory::principal_key(principal)),
            conversation: Some(conv.key.clone()),
        };
        let result = tokio::task::spawn_blocking(move || tb.run_checked_in(&for_tool, &meta))
            .await
            .map_err(|_| InferenceError::EngineStopped)?;
        // An error can quote what the tool met (a redirect's target, a
        // file name): it keeps the tool's origin, and is redacted too.
        let (ok, content, origin) = match result {
            // Only the person's own words (and Hermit's): no taint.
            Ok(out) if out.own => (out.ok, out.content, Origin::Assistant),
            Ok(out) => (out.ok, out.content, origin),
            Err(e) => (
                false,
                crate::trust::redact::redact(&format!("error: {e}")),
                origin,
            ),
        };
        Ok(Some((ok, content, origin)))
    }
}

/// How an approved call ended.
pub(super) enum Approved {
    Ran(bool, String, Origin),
    /// Not run: why, in Hermit's words.
    NotRun(String),
    /// Hermit was stopped meanwhile.
    Stopped,
}

/// How a tool step ended.
pub(super) enum Step {
    /// Did not run (refused, failed to check): Hermit's own words.
    Ran(bool, String, Origin),
    /// Did not run, after waiting this long for the owner.
    Waited(Duration, bool, String, Origin),
    /// Ran (after waiting this long for the owner, if it asked).
    Executed(Option<Duration>, bool, String, Origin),
    /// Asked the owner, and did not wait ([`Conversation::defer_approvals`]):
    /// the request's code.
    Deferred(String),
    Cancelled,
}
