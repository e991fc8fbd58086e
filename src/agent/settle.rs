//! Approvals that do not hold the conversation: a turn of a conversation
//! with [`Conversation::defer_approvals`] that meets a call needing the
//! owner's approval asks, says so, and ends ([`super::gate`]); the
//! conversation goes on. When the request is decided (in the room, at the
//! terminal, with `hermit approvals`), the channel submits
//! [`super::Op::Decided`] ([`Agent::settle`]): an approved call runs,
//! exactly as approved (the approval is bound to it and used once), its result is added to the
//! conversation where it was asked, and the model writes the follow-up; a
//! denied, expired or cancelled one is recorded as not run, in Hermit's
//! own words (the model is not asked).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::gate::Approved;
use super::{Agent, Conversation, Drive, TurnEvent, TurnOutcome, Usage};
use crate::inference::{ChatMessage, InferenceError, Role, TemplateToolCall};
use crate::tools::ToolCall;
use crate::vocab::Origin;

impl Agent {
    /// Settles the request `code`, asked earlier in `conv` without
    /// waiting: runs it if approved and writes the follow-up, or records
    /// why it did not run. A request still pending, already used, or from
    /// another conversation changes nothing (the outcome says so).
    pub(super) async fn settle(
        &self,
        conv: &mut Conversation,
        code: &str,
        mut on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        let (Some(toolbox), Some(catalog)) = (self.toolbox.clone(), self.catalog.as_ref()) else {
            return Ok(said("This Hermit has no tools: no request waits.".into()));
        };
        let trust = toolbox.trust.clone();
        let _registered = trust.halt.register(cancel.clone());
        let Some(row) = trust.approvals.get(code) else {
            return Ok(said(format!("There is no request `{code}`.")));
        };
        let code = row.code.clone();
        if conv.key != *row.conversation.as_str() {
            return Ok(said(format!(
                "The request `{code}` was asked in another conversation; nothing ran here."
            )));
        }
        let principal = {
            let p = self.principal_of(conv);
            if p.id == row.requester {
                p
            } else if let Some(p) = trust.principals.of(&row.requester) {
                p
            } else {
                return Ok(said(format!(
                    "The request `{code}` was for {}, who is no longer allowed; it did not run.",
                    row.requester
                )));
            }
        };
        let call = ToolCall {
            name: row.tool.clone(),
            arguments: row.arguments.clone(),
        };
        let by = row.decided_by.clone().unwrap_or_default();
        // (for the model, for the person)
        let result: Result<(bool, String, Origin), (String, String)> = match row.status.as_str() {
            "pending" => {
                return Ok(said(format!(
                    "The request `{code}` still waits for the owner's decision."
                )));
            }
            "used" => {
                return Ok(said(format!("The request `{code}` has already run.")));
            }
            "approved" => match self
                .run_approved(&toolbox, conv, &principal, &call, &code, &by)
                .await?
            {
                Approved::Ran(ok, content, origin) => Ok((ok, content, origin)),
                Approved::NotRun(why) => Err((why.clone(), why)),
                Approved::Stopped => Err((
                    "Hermit was stopped; the call did not run".into(),
                    "Hermit was stopped".into(),
                )),
            },
            "denied" => Err((
                format!("the owner ({by}) denied this call; do not try it again"),
                format!("the owner ({by}) denied it"),
            )),
            "expired" => Err((
                "no approval came before the request expired; the call did not run".into(),
                "it expired before anyone approved it".into(),
            )),
            "cancelled" => Err((
                "the request was cancelled when Hermit was stopped; the call did not run".into(),
                "it was cancelled when Hermit was stopped".into(),
            )),
            other => Err((
                format!("the request is {other}; the call did not run"),
                format!("it is {other}"),
            )),
        };
        // The call again, now with its answer: the model sees what ran
        // (the earlier one's answer said it waited).
        on_event(TurnEvent::ToolCall(call.clone()));
        conv.push_from(
            ChatMessage::tool_call(
                "",
                TemplateToolCall {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            ),
            Origin::Assistant,
        );
        match result {
            Err((for_model, for_person)) => {
                on_event(TurnEvent::ToolResult {
                    name: call.name.clone(),
                    ok: false,
                    content: for_model.clone(),
                });
                conv.push_from(ChatMessage::new(Role::Tool, for_model), Origin::Assistant);
                let reply = format!(
                    "Request `{code}`: {for_person}; `{}` did not run.",
                    call.name
                );
                on_event(TurnEvent::Token(reply.clone()));
                conv.finish_turn(&reply);
                let kept = self.keep_reply(conv, &principal, &reply).await;
                Ok(TurnOutcome {
                    kept,
                    ..said(reply)
                })
            }
            Ok((ok, content, origin)) => {
                tracing::debug!(tool = %call.name, ok, %content, "approved call's result");
                on_event(TurnEvent::ToolResult {
                    name: call.name.clone(),
                    ok,
                    content: content.clone(),
                });
                conv.push_from(ChatMessage::new(Role::Tool, content), origin);
                // The tools the conversation was offered (the call's own
                // among them), so the follow-up may go on.
                let names = catalog.ordered(&conv.offered);
                let offer = (!names.is_empty())
                    .then(|| catalog.offer(&names))
                    .transpose()?;
                let outcome = self
                    .drive(
                        conv,
                        &principal,
                        Drive {
                            offer,
                            forced: None,
                            steps: Vec::new(),
                            named: Default::default(),
                            tools: true,
                            ran_now: vec![call],
                            tool_calls: 1,
                            started: Instant::now(),
                            usage: Usage::default(),
                        },
                        on_event,
                        cancel,
                    )
                    .await?;
                let mut outcome = outcome;
                outcome.kept = self.keep_reply(conv, &principal, &outcome.reply).await;
                Ok(outcome)
            }
        }
    }
}

/// An outcome that is only Hermit's own sentence.
fn said(reply: String) -> TurnOutcome {
    TurnOutcome {
        reply,
        tool_calls: 0,
        stats: None,
        cancelled: false,
        limited: None,
        usage: Usage::default(),
        awaiting: None,
        kept: None,
    }
}
