//! The agent loop: a conversation's history turned into a reply, calling
//! tools on the way.
//!
//! A turn: append the user's message; generate (tools offered through the
//! chat template, a tool call constrained by a grammar); if the model calls
//! a tool, ask the decision point ([`Toolbox::check`]), wait for the owner's
//! approval when it asks, run the call on a blocking thread, append the
//! call and its result (with its origin: untrusted output is fenced in the
//! prompt and taints the conversation), and generate again; within a bound
//! on tool steps and on the turn's time (time waiting for the owner does
//! not count). A `!stop` cancels the turn. The agent knows nothing of the
//! channel a message came from, nor of llama.cpp.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What a conversation is made of and what a turn reports, as the
/// channels see them (they never reach the engine itself).
pub use crate::inference::{ChatMessage, FinishReason, GenerationStats, InferenceError, Role};
use crate::inference::{
    Engine, GenerateOptions, GenerateRequest, Generation, GenerationEvent, TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN, TemplateToolCall,
};
use crate::tools::{ToolCall, Toolbox};
use crate::trust::Trust;
use crate::trust::approvals::{ApprovalRequest, Outcome};
use crate::trust::policy::{CallContext, Verdict};
use crate::vocab::Principal;
use crate::vocab::{Origin, fence};

static NEXT_CONVERSATION: AtomicU64 = AtomicU64::new(1);

/// One conversation: its history (each message with its origin) and its
/// KV cache in the engine.
pub struct Conversation {
    id: u64,
    system_prompt: String,
    messages: Vec<ChatMessage>,
    origins: Vec<Origin>,
    /// Who the next turn is for; `None`: the owner at the box.
    pub principal: Option<Principal>,
    /// The conversation's name in approvals ("matrix:!room:box:0").
    pub key: String,
    /// Where its approvals may be decided (a room ID, or "local").
    pub place: String,
    /// The first untrusted source that entered this conversation; it
    /// stays tainted until a new conversation starts.
    pub taint: Option<String>,
    /// The tool calls that ran in this conversation.
    ran: Vec<ToolCall>,
    /// Facts the principal pinned: in the system prompt, so context
    /// trimming never drops them.
    pinned: Vec<String>,
    /// Memories already recalled into this conversation.
    recalled: std::collections::HashSet<crate::memory::Key>,
    /// Effects granted to the scheduled task this conversation runs
    /// ([`CallContext::granted`]).
    pub grants: Vec<crate::vocab::Effect>,
}

impl Conversation {
    pub fn new(system_prompt: impl Into<String>) -> Self {
        let id = NEXT_CONVERSATION.fetch_add(1, Ordering::Relaxed);
        Self {
            id,
            system_prompt: system_prompt.into(),
            messages: Vec::new(),
            origins: Vec::new(),
            principal: None,
            key: format!("local:{}:{id}", std::process::id()),
            place: "local".into(),
            taint: None,
            ran: Vec::new(),
            pinned: Vec::new(),
            recalled: Default::default(),
            grants: Vec::new(),
        }
    }

    /// Adds what memory recalled for the next message: Hermit's own
    /// composition (untrusted memories are fenced inside it, and taint the
    /// conversation).
    fn push_recall(&mut self, recall: crate::memory::Recall) {
        if recall.text.is_empty() {
            return;
        }
        if self.taint.is_none() {
            self.taint = recall.taint;
        }
        self.recalled.extend(recall.keys);
        self.messages
            .push(ChatMessage::new(Role::User, recall.text));
        self.origins.push(Origin::Assistant);
    }

    /// The untrusted source in this conversation for a turn of
    /// `principal` (another person's words count too), if any.
    pub fn taint_for(&self, principal: &str, owner: &str) -> Option<String> {
        if let Some(t) = &self.taint {
            return Some(t.clone());
        }
        self.origins
            .iter()
            .find(|o| !o.trusted_for(principal, owner))
            .map(|o| o.label())
    }

    /// Adds a message with its origin; untrusted origins other than
    /// people's words taint the conversation.
    pub fn push_from(&mut self, message: ChatMessage, origin: Origin) {
        if self.taint.is_none() && !matches!(origin, Origin::Typed(_) | Origin::Assistant) {
            self.taint = Some(origin.label());
        }
        self.messages.push(message);
        self.origins.push(origin);
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Adds a message to the history without generating (e.g. a
    /// benchmark's fixed history): the user's words are the principal's.
    pub fn push(&mut self, message: ChatMessage) {
        let origin = match message.role {
            Role::User => Origin::Typed(
                self.principal
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_default(),
            ),
            _ => Origin::Assistant,
        };
        self.messages.push(message);
        self.origins.push(origin);
    }

    fn request(&self, options: GenerateOptions, tools: Option<&ToolOffer>) -> GenerateRequest {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        let mut system = match tools {
            Some(_) if self.system_prompt.is_empty() => TOOL_GUIDANCE.to_string(),
            Some(_) => format!("{}\n\n{TOOL_GUIDANCE}", self.system_prompt),
            None => self.system_prompt.clone(),
        };
        if !self.pinned.is_empty() {
            system.push_str("\n\nWhat the user asked you to always keep in mind:\n");
            system.push_str(&self.pinned.join("\n"));
        }
        if !system.is_empty() {
            messages.push(ChatMessage::new(Role::System, system));
        }
        // Untrusted text reaches the model fenced and labelled.
        messages.extend(
            self.messages
                .iter()
                .zip(&self.origins)
                .map(|(m, o)| match o {
                    Origin::Typed(_) | Origin::Assistant => m.clone(),
                    untrusted if m.role == Role::User || m.role == Role::Tool => {
                        let mut m = m.clone();
                        m.content = fence(untrusted, &m.content);
                        m
                    }
                    _ => m.clone(),
                }),
        );
        GenerateRequest {
            conversation: self.id,
            messages,
            tools: tools.map(|t| t.list.clone()),
            grammar: tools.map(|t| t.grammar.clone()),
            options,
        }
    }

    /// Starts the reply to `user_text`, without tools. Stream the returned
    /// generation, then give the full text back with [`Conversation::finish_turn`].
    pub fn begin_turn(&mut self, engine: &Engine, user_text: &str) -> Generation {
        self.begin_turn_with(engine, user_text, GenerateOptions::default())
    }

    pub fn begin_turn_with(
        &mut self,
        engine: &Engine,
        user_text: &str,
        options: GenerateOptions,
    ) -> Generation {
        self.push(ChatMessage::new(Role::User, user_text));
        engine.generate(self.request(options, None))
    }

    /// Records the assistant's reply (also a partial one, after a cancel, so
    /// the history matches what the owner saw).
    pub fn finish_turn(&mut self, reply: &str) {
        if !reply.is_empty() {
            self.push_from(
                ChatMessage::new(Role::Assistant, reply.trim_end()),
                Origin::Assistant,
            );
        }
    }

    /// One whole turn without tools, for scripted use.
    pub async fn turn(
        &mut self,
        engine: &Engine,
        user_text: &str,
    ) -> Result<(String, GenerationStats), InferenceError> {
        let result = self.begin_turn(engine, user_text).collect().await;
        if let Ok((text, _)) = &result {
            self.finish_turn(text);
        }
        result
    }
}

/// Added to the system prompt when tools are offered: small models tend to
/// explain how to do a thing instead of doing it.
const TOOL_GUIDANCE: &str = "You can act on the owner's workspace with the tools you are given. \
When the owner asks you to do something (create, read, list, move or delete files; run a \
command; tell the time), do it by calling the tool, instead of explaining how to do it. \
After a tool result, answer in plain words.";

/// The tools as offered to the model: the template list and its grammar.
struct ToolOffer {
    list: Value,
    grammar: String,
}

/// What a turn reports while it runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum TurnEvent {
    /// A piece of the reply to show.
    Token(String),
    /// The model called a tool.
    ToolCall(ToolCall),
    /// The tool's result (or why it did not run).
    ToolResult {
        name: String,
        ok: bool,
        content: String,
    },
    /// A call waits for the owner's approval: `text` says exactly what
    /// will run; the owner answers with `code`.
    Approval { code: String, text: String },
}

/// How a turn ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TurnOutcome {
    pub reply: String,
    pub tool_calls: usize,
    /// The last generation's figures.
    pub stats: Option<GenerationStats>,
    /// Stopped by the caller.
    pub cancelled: bool,
    /// Stopped by the bound on tool steps or on time.
    pub limited: Option<String>,
}

/// The model as the agent reports it.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    pub name: String,
    pub threads: u32,
    pub context_tokens: u32,
    /// Requests waiting for the engine.
    pub queue: usize,
    /// Generations asked of the model since it was loaded.
    pub calls: u64,
}

/// The agent: the engine, the tools, and the bounds of a turn.
pub struct Agent {
    pub engine: Engine,
    toolbox: Option<Arc<Toolbox>>,
    /// The trust layer (the toolbox's): stop switch, approvals, audit.
    pub trust: Option<Arc<Trust>>,
    offer: Option<ToolOffer>,
    pub max_tool_steps: u32,
    pub turn_timeout: Duration,
    /// Memory: every message kept, relevant memories recalled before
    /// each turn.
    pub memory: Option<Arc<crate::memory::Memory>>,
}

impl Agent {
    /// An agent; with a toolbox its tools are offered to the model.
    pub fn new(
        engine: Engine,
        toolbox: Option<Toolbox>,
        max_tool_steps: u32,
        turn_timeout: Duration,
    ) -> Result<Self, InferenceError> {
        let offer = match &toolbox {
            Some(tb) => {
                let list = tb.template_tools();
                let grammar = crate::inference::tool_call_grammar(&list)?;
                tracing::trace!(%grammar, "tool-call grammar");
                Some(ToolOffer { list, grammar })
            }
            None => None,
        };
        let trust = toolbox.as_ref().map(|t| t.trust.clone());
        Ok(Self {
            engine,
            trust,
            toolbox: toolbox.map(Arc::new),
            offer,
            max_tool_steps,
            turn_timeout,
            memory: None,
        })
    }

    /// Keeps every message and recalls before each turn.
    pub fn with_memory(mut self, memory: Arc<crate::memory::Memory>) -> Self {
        self.memory = Some(memory);
        self
    }

    /// The trust layer even without tools: the stop switch then still
    /// halts turns.
    /// What `!status` and `hermit status` say of the model.
    pub fn model_status(&self) -> ModelStatus {
        let info = self.engine.info();
        ModelStatus {
            name: info.name.clone(),
            threads: info.threads,
            context_tokens: info.context_tokens,
            queue: self.engine.queue_len(),
            calls: self.engine.generations(),
        }
    }

    /// Drops what the engine keeps of a conversation (its KV cache), when
    /// the conversation is set aside (`!new`, a closed session).
    pub fn forget(&self, conv: &Conversation) {
        self.engine.forget(conv.id());
    }

    pub fn with_trust(mut self, trust: Arc<Trust>) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Runs one turn: the user's message, tool calls, the reply.
    /// `cancel` stops it (the current generation ends at its next token),
    /// as does the owner's `!stop`. With memory, what is relevant is
    /// recalled first, and the message and the reply are kept.
    pub async fn turn(
        &self,
        conv: &mut Conversation,
        user_text: &str,
        on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        let Some(memory) = self.memory.clone() else {
            return self
                .turn_inner(conv, user_text, on_event, cancel, true)
                .await;
        };
        let principal = self.principal_of(conv);
        let who = crate::memory::principal_key(&principal);
        let (key, place, text) = (conv.key.clone(), conv.place.clone(), user_text.to_string());
        let already = conv.recalled.clone();
        let mem = memory.clone();
        let sender = if principal.id.is_empty() {
            crate::vocab::OWNER.to_string()
        } else {
            principal.id.clone()
        };
        let w = who.clone();
        // Off the async runtime: a search embeds the message.
        let before = tokio::task::spawn_blocking(move || {
            let pinned = mem.pinned(&w)?;
            let recall = mem.recall(&w, &text, &key, &already)?;
            mem.record_message(&crate::memory::NewMessage {
                conversation: &key,
                principal: &w,
                sender: &sender,
                room: (place != "local").then_some(place.as_str()),
                role: "user",
                origin: None,
                body: &text,
            })?;
            Ok::<_, crate::memory::MemoryError>((pinned, recall))
        })
        .await;
        match before {
            Ok(Ok((pinned, recall))) => {
                conv.pinned = pinned
                    .iter()
                    .map(|f| match &f.origin {
                        Some(src) => format!("- {}", fence(&Origin::Memory(src.clone()), &f.text)),
                        None => format!("- {}", f.text),
                    })
                    .collect();
                if let Some(src) = &recall.taint {
                    tracing::info!(source = %src, "recalled an untrusted memory");
                }
                conv.push_recall(recall);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "memory: recall failed; answering without it"),
            Err(e) => tracing::warn!(error = %e, "memory: recall failed; answering without it"),
        }
        let outcome = self
            .turn_inner(conv, user_text, on_event, cancel, true)
            .await?;
        if !outcome.reply.trim().is_empty() {
            let (key, place, reply) = (
                conv.key.clone(),
                conv.place.clone(),
                outcome.reply.trim().to_string(),
            );
            let origin = conv.taint.clone();
            let kept = tokio::task::spawn_blocking(move || {
                memory.record_message(&crate::memory::NewMessage {
                    conversation: &key,
                    principal: &who,
                    sender: "hermit",
                    room: (place != "local").then_some(place.as_str()),
                    role: "assistant",
                    // A reply written after reading untrusted text keeps
                    // the label of that source.
                    origin: origin.as_deref(),
                    body: &reply,
                })
            })
            .await;
            if !matches!(kept, Ok(Ok(_))) {
                tracing::warn!("memory: the reply could not be kept");
            }
        }
        Ok(outcome)
    }

    fn principal_of(&self, conv: &Conversation) -> Principal {
        match (&conv.principal, &self.trust) {
            (Some(p), _) => p.clone(),
            (None, Some(t)) => t.local_owner(),
            (None, None) => Principal::local_owner(""),
        }
    }

    /// Writes text Hermit composes itself (the morning briefing): one
    /// reply to `prompt` in a conversation of its own, without tools (it
    /// reads, it cannot act) and without memory (nothing recalled, nothing
    /// kept). A turn all the same: registered with the stop switch (a
    /// `!stop` ends it, and it is then `cancelled`; stopped, it does not
    /// start) and bounded by the turn's time.
    pub async fn compose(
        &self,
        system_prompt: &str,
        prompt: &str,
    ) -> Result<TurnOutcome, InferenceError> {
        let mut conv = Conversation::new(system_prompt);
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome = self
            .turn_inner(&mut conv, prompt, |_| {}, cancel, false)
            .await;
        self.engine.forget(conv.id());
        outcome
    }

    /// A turn; `tools`: whether the toolbox (if any) is offered.
    async fn turn_inner(
        &self,
        conv: &mut Conversation,
        user_text: &str,
        mut on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
        tools: bool,
    ) -> Result<TurnOutcome, InferenceError> {
        let offer = self.offer.as_ref().filter(|_| tools);
        let mut started = Instant::now();
        let _registered = self.trust.as_ref().map(|t| t.halt.register(cancel.clone()));
        if let Some(trust) = &self.trust
            && let Some(by) = trust.halt.halted_by()
        {
            return Ok(TurnOutcome {
                reply: String::new(),
                tool_calls: 0,
                stats: None,
                cancelled: true,
                limited: Some(format!(
                    "Hermit is stopped (by {by}); nothing runs until the owner sends !resume"
                )),
            });
        }
        let principal = self.principal_of(conv);
        conv.push_from(
            ChatMessage::new(Role::User, user_text),
            Origin::Typed(principal.id.clone()),
        );
        let mut tool_calls = 0usize;
        loop {
            let mut generation = self.engine.generate_with_cancel(
                conv.request(GenerateOptions::default(), offer),
                cancel.clone(),
            );
            let mut text = String::new();
            let mut shown = 0usize;
            let stats = loop {
                let remaining = self.turn_timeout.saturating_sub(started.elapsed());
                match tokio::time::timeout(remaining, generation.events.recv()).await {
                    Err(_) => {
                        generation.cancel();
                        conv.finish_turn(&text);
                        return Ok(TurnOutcome {
                            reply: text,
                            tool_calls,
                            stats: None,
                            cancelled: false,
                            limited: Some(format!(
                                "the turn took longer than {} s",
                                self.turn_timeout.as_secs()
                            )),
                        });
                    }
                    Ok(Some(GenerationEvent::Token(t))) => {
                        text.push_str(&t);
                        // Show the reply, but not a tool call being written.
                        let visible = visible_len(&text);
                        if visible > shown {
                            on_event(TurnEvent::Token(text[shown..visible].to_string()));
                            shown = visible;
                        }
                    }
                    Ok(Some(GenerationEvent::Done(stats))) => break stats,
                    Ok(Some(GenerationEvent::Failed(e))) => return Err(e),
                    Ok(None) => return Err(InferenceError::EngineStopped),
                }
            };
            tracing::debug!(%text, ?stats.finish, "model output");
            let cancelled = stats.finish == crate::inference::FinishReason::Cancelled;
            let call = match (&self.toolbox, cancelled) {
                (Some(_), false) if tools => parse_tool_call(&text),
                _ => None,
            };
            let Some((before, call)) = call else {
                conv.finish_turn(&text);
                return Ok(TurnOutcome {
                    reply: text,
                    tool_calls,
                    stats: Some(stats),
                    cancelled,
                    limited: None,
                });
            };
            if tool_calls as u32 >= self.max_tool_steps {
                conv.finish_turn(before.trim());
                return Ok(TurnOutcome {
                    reply: before,
                    tool_calls,
                    stats: Some(stats),
                    cancelled: false,
                    limited: Some(format!(
                        "stopped after {} tool calls in one turn",
                        self.max_tool_steps
                    )),
                });
            }
            // Small models tend to repeat a call whose result they already
            // have; the repeat is not run again, and the model is told so.
            // (Only calls that ran: a denied, expired or cancelled one may be
            // asked again.)
            let repeated = conv
                .ran
                .iter()
                .any(|c| c.name == call.name && c.arguments == call.arguments);
            tool_calls += 1;
            on_event(TurnEvent::ToolCall(call.clone()));
            conv.push_from(
                ChatMessage::tool_call(
                    before.trim(),
                    TemplateToolCall {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    },
                ),
                Origin::Assistant,
            );
            let toolbox = self.toolbox.clone().expect("checked above");
            let (ok, content, origin) = if repeated {
                (
                    false,
                    "This exact call was already made in this conversation; its result is above. \
                     Use it and answer the user now, in plain words."
                        .to_string(),
                    Origin::Assistant,
                )
            } else {
                match self
                    .decide_and_run(&toolbox, conv, &principal, &call, &mut on_event, &cancel)
                    .await?
                {
                    Step::Ran(ok, content, origin) => (ok, content, origin),
                    Step::Waited(waited, ok, content, origin) => {
                        // Time spent waiting for the owner is not the turn's.
                        started += waited;
                        (ok, content, origin)
                    }
                    Step::Executed(waited, ok, content, origin) => {
                        started += waited.unwrap_or_default();
                        conv.ran.push(call.clone());
                        (ok, content, origin)
                    }
                    Step::Cancelled => {
                        // Every call in the history has its answer.
                        conv.push_from(
                            ChatMessage::new(Role::Tool, "cancelled: the call did not run"),
                            Origin::Assistant,
                        );
                        conv.finish_turn(before.trim());
                        return Ok(TurnOutcome {
                            reply: before,
                            tool_calls,
                            stats: Some(stats),
                            cancelled: true,
                            limited: None,
                        });
                    }
                }
            };
            tracing::debug!(tool = %call.name, ok, %content, "tool result");
            on_event(TurnEvent::ToolResult {
                name: call.name.clone(),
                ok,
                content: content.clone(),
            });
            conv.push_from(ChatMessage::new(Role::Tool, content), origin);
        }
    }

    /// The decision point, the owner's approval when it asks, and the
    /// call itself (on a blocking thread).
    async fn decide_and_run(
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
        let mut waited = None;
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
                    conversation: conv.key.clone(),
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
                        "effects": checked.effects, "conversation": conv.key,
                        "place": conv.place, "taint": ctx.taint,
                    }),
                );
                let text = crate::trust::approvals::describe(&request, &code, trust.approvals.ttl);
                on_event(TurnEvent::Approval {
                    code: code.clone(),
                    text,
                });
                let asked = Instant::now();
                let outcome = trust
                    .approvals
                    .wait(&code, cancel, || trust.halt.is_halted())
                    .await;
                waited = Some(asked.elapsed());
                let denied =
                    |why: String| Ok(Step::Waited(asked.elapsed(), false, why, Origin::Assistant));
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
                        let hash = crate::trust::approvals::binding(
                            &call.name,
                            &call.arguments,
                            &conv.key,
                            &principal.id,
                        );
                        if !trust.approvals.consume(&code, &hash) {
                            trust.audit.record(
                                crate::vocab::AuditKind::ApprovalMismatch,
                                &by,
                                serde_json::json!({"code": code, "tool": call.name}),
                            );
                            return denied(
                                "the approval does not match this exact call; it did not run"
                                    .into(),
                            );
                        }
                        trust.audit.record(
                            crate::vocab::AuditKind::ApprovalUsed,
                            &by,
                            serde_json::json!({"code": code, "tool": call.name}),
                        );
                    }
                }
                // Stopped while waiting: the approval does not outlive it.
                if trust.halt.is_halted() {
                    return Ok(Step::Cancelled);
                }
            }
        }
        let origin = toolbox
            .get(&call.name)
            .and_then(|t| t.output_origin(&call.arguments))
            .unwrap_or(Origin::Assistant);
        if trust.halt.is_halted() {
            return Ok(Step::Cancelled);
        }
        let for_tool = call.clone();
        let tb = toolbox.clone();
        let meta = crate::tools::CallMeta {
            taint: ctx.taint.clone(),
            principal: Some(crate::memory::principal_key(principal)),
            conversation: Some(conv.key.clone()),
        };
        let result = tokio::task::spawn_blocking(move || tb.run_checked_in(&for_tool, &meta))
            .await
            .map_err(|_| InferenceError::EngineStopped)?;
        // An error can quote what the tool met (a redirect's target, a
        // file name): it keeps the tool's origin, and is redacted too.
        let (ok, content, origin) = match result {
            Ok(out) => (out.ok, out.content, origin),
            Err(e) => (
                false,
                crate::trust::redact::redact(&format!("error: {e}")),
                origin,
            ),
        };
        Ok(Step::Executed(waited, ok, content, origin))
    }
}

/// How a tool step ended.
enum Step {
    /// Did not run (refused, failed to check): Hermit's own words.
    Ran(bool, String, Origin),
    /// Did not run, after waiting this long for the owner.
    Waited(Duration, bool, String, Origin),
    /// Ran (after waiting this long for the owner, if it asked).
    Executed(Option<Duration>, bool, String, Origin),
    Cancelled,
}

/// How much of `text` is reply rather than (the start of) a tool call.
fn visible_len(text: &str) -> usize {
    if let Some(i) = text.find(TOOL_CALL_OPEN) {
        return i;
    }
    // Hold back a tail that could be the beginning of the tag.
    for k in (1..TOOL_CALL_OPEN.len()).rev() {
        if text.len() >= k
            && text.is_char_boundary(text.len() - k)
            && TOOL_CALL_OPEN.starts_with(&text[text.len() - k..])
        {
            return text.len() - k;
        }
    }
    text.len()
}

/// Finds a tool call in the model's output: tagged (`<tool_call>{...}`),
/// fenced (```json {...} ```), or a bare JSON object with `name` and
/// `arguments`. Returns the text before it and the call.
pub fn parse_tool_call(text: &str) -> Option<(String, ToolCall)> {
    let (before, json) = if let Some(i) = text.find(TOOL_CALL_OPEN) {
        let rest = &text[i + TOOL_CALL_OPEN.len()..];
        let end = rest.find(TOOL_CALL_CLOSE).unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else if let Some(i) = text.find("```json") {
        let rest = &text[i + 7..];
        let end = rest.find("```").unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else {
        let t = text.trim();
        if !t.starts_with('{') {
            return None;
        }
        ("", t)
    };
    let v: Value = serde_json::from_str(json).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
        None => Value::Object(Default::default()),
    };
    Some((before.to_string(), ToolCall { name, arguments }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_found_in_every_form() {
        let (b, c) = parse_tool_call(
            "Let me look.<tool_call>\n{\"name\": \"files\", \"arguments\": {\"op\": \"list\"}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(b, "Let me look.");
        assert_eq!(c.name, "files");
        assert_eq!(c.arguments["op"], "list");
        let (_, c) =
            parse_tool_call("```json\n{\"name\": \"time\", \"arguments\": {}}\n```").unwrap();
        assert_eq!(c.name, "time");
        let (_, c) = parse_tool_call(
            "{\"name\": \"shell\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}",
        )
        .unwrap();
        assert_eq!(c.arguments["command"], "ls");
        assert!(parse_tool_call("Paris is the capital of France.").is_none());
        assert!(parse_tool_call("{not json").is_none());
    }

    /// Pinned facts are part of the system message, which context
    /// trimming never drops; recalled memories are Hermit's own words,
    /// tainting only when one came from an untrusted source.
    #[test]
    fn pinned_facts_are_in_the_system_message_and_recall_taints_only_when_untrusted() {
        let mut conv = Conversation::new("You are Hermit.");
        conv.pinned = vec!["- Always answer in French.".into()];
        conv.push_recall(crate::memory::Recall {
            text: "(Hermit's memory) - they said: hello".into(),
            taint: None,
            keys: vec![],
        });
        conv.push(ChatMessage::new(Role::User, "Hi"));
        let req = conv.request(GenerateOptions::default(), None);
        assert_eq!(req.messages[0].role, Role::System);
        assert!(req.messages[0].content.contains("Always answer in French."));
        assert_eq!(
            req.messages
                .iter()
                .filter(|m| m.role == Role::System)
                .count(),
            1
        );
        assert!(conv.taint.is_none());
        conv.push_recall(crate::memory::Recall {
            text: "(Hermit's memory) - <<<untrusted ...>>>".into(),
            taint: Some("web page https://x.example/".into()),
            keys: vec![],
        });
        assert_eq!(conv.taint.as_deref(), Some("web page https://x.example/"));
    }

    #[test]
    fn a_tool_call_being_written_is_not_shown() {
        assert_eq!(visible_len("Hello <tool"), 6);
        assert_eq!(visible_len("Hello <tool_call>{\"na"), 6);
        assert_eq!(visible_len("a < b"), 5);
    }
}
