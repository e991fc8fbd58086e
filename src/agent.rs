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

mod conversation;
mod gate;
mod kept;
mod op;
mod parse;
pub(crate) mod route;
mod settle;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use conversation::Conversation;
use conversation::ToolOffer;
use gate::Step;
pub use op::Op;
pub use parse::parse_tool_call;
use parse::{clean_reply, visible_len};

/// What a conversation is made of and what a turn reports, as the
/// channels see them (they never reach the engine itself).
pub use crate::inference::{ChatMessage, FinishReason, GenerationStats, InferenceError, Role};
use crate::inference::{Engine, GenerateOptions, GenerationEvent, TemplateToolCall};
use crate::tools::{ToolCall, Toolbox};
use crate::trust::Trust;
use crate::vocab::{Origin, Principal};

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
    /// What the turn's generations cost.
    #[serde(default)]
    pub usage: Usage,
    /// The turn ended asking the owner's approval of a call (this
    /// request's code), without waiting for it
    /// ([`Conversation::defer_approvals`]).
    #[serde(default)]
    pub awaiting: Option<String>,
    /// The reply's row in memory, where it is kept (with memory on): a
    /// channel that journals its deliveries points at it rather than
    /// keeping a second copy of the words.
    #[serde(default)]
    pub kept: Option<i64>,
}

/// What a turn's generations cost, all of them together.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub generations: u32,
    /// Prompt tokens of every generation (cached or not).
    pub prompt_tokens: usize,
    /// Prompt tokens that were evaluated (not found in a KV cache).
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    /// From the turn's start to its first visible token.
    pub first_token_ms: Option<f64>,
}

impl Usage {
    fn add(&mut self, s: &GenerationStats) {
        self.generations += 1;
        self.prompt_tokens += s.prompt_tokens;
        self.evaluated_tokens += s.evaluated_tokens;
        self.generated_tokens += s.generated_tokens;
    }
}

/// The model as the agent reports it.
#[derive(Debug, Clone)]
pub(crate) struct ModelStatus {
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
    catalog: Option<Catalog>,
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
        let catalog = match &toolbox {
            Some(tb) => Some(Catalog::new(tb.template_tools())?),
            None => None,
        };
        let trust = toolbox.as_ref().map(|t| t.trust.clone());
        Ok(Self {
            engine,
            trust,
            toolbox: toolbox.map(Arc::new),
            catalog,
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
    pub(crate) fn model_status(&self) -> ModelStatus {
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

    /// The owner's id (empty without a trust layer: a local chat).
    fn owner_id(&self) -> String {
        self.trust
            .as_ref()
            .map(|t| t.owner().to_string())
            .unwrap_or_default()
    }

    fn principal_of(&self, conv: &Conversation) -> Principal {
        match (&conv.principal, &self.trust) {
            (Some(p), _) => p.clone(),
            (None, Some(t)) => t.local_owner(),
            (None, None) => Principal::local_owner(""),
        }
    }

    /// Evaluates ahead of time the prompt prefixes a first message meets
    /// (the system prompt with each set of tools [`route`] offers for one
    /// intent, and with none), so that the engine keeps them in its prompt
    /// cache on disk and a new conversation's first token does not wait
    /// for them. Each costs one generation of one token; a prefix already
    /// on disk is only loaded. Returns, per set, its tools and the prompt
    /// tokens evaluated (not found in a cache).
    pub async fn warm(
        &self,
        system_prompt: &str,
    ) -> Result<Vec<(Vec<String>, usize)>, InferenceError> {
        let mut done: Vec<(Vec<String>, usize)> = Vec::new();
        for set in route::tool_sets() {
            let (names, offer) = match &self.catalog {
                Some(catalog) => {
                    let names = catalog.ordered(&set);
                    let offer = (!names.is_empty())
                        .then(|| catalog.offer(&names))
                        .transpose()?;
                    (names, offer)
                }
                None if set.is_empty() => (Vec::new(), None),
                None => continue,
            };
            if done.iter().any(|(n, _)| *n == names) {
                continue;
            }
            let mut conv = Conversation::new(system_prompt);
            conv.push(ChatMessage::new(Role::User, "Hello."));
            let generation = self.engine.generate(conv.request(
                GenerateOptions {
                    max_tokens: Some(1),
                    ..Default::default()
                },
                offer.as_ref(),
            ));
            let result = generation.collect().await;
            self.engine.forget(conv.id());
            let (_, stats) = result?;
            done.push((names, stats.evaluated_tokens));
        }
        Ok(done)
    }

    /// Writes text Hermit composes itself (the morning briefing): one
    /// reply to `prompt` in a conversation of its own, without tools (it
    /// reads, it cannot act) and without memory (nothing recalled, nothing
    /// kept). A turn all the same: registered with the stop switch (a
    /// `!stop` ends it, and it is then `cancelled`; stopped, it does not
    /// start) and bounded by the turn's time.
    pub(crate) async fn compose(
        &self,
        system_prompt: &str,
        prompt: &str,
    ) -> Result<TurnOutcome, InferenceError> {
        let mut conv = Conversation::new(system_prompt);
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome = self
            .turn_inner(&mut conv, prompt, None, |_| {}, cancel, false)
            .await;
        self.engine.forget(conv.id());
        outcome
    }

    /// A turn; `tools`: whether the toolbox (if any) is offered.
    async fn turn_inner(
        &self,
        conv: &mut Conversation,
        user_text: &str,
        origin: Option<Origin>,
        on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
        tools: bool,
    ) -> Result<TurnOutcome, InferenceError> {
        let started = Instant::now();
        let usage = Usage::default();
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
                usage,
                awaiting: None,
                kept: None,
            });
        }
        let principal = self.principal_of(conv);
        conv.push_from(
            ChatMessage::new(Role::User, user_text),
            origin.unwrap_or_else(|| Origin::Typed(principal.id.clone())),
        );
        // The tools this message is offered, and whether its first step
        // must be a call (see [`route`]).
        let mut steps: Vec<Vec<String>> = Vec::new();
        let mut named = Narrow::default();
        let (offer, forced) = match self.catalog.as_ref().filter(|_| tools) {
            Some(catalog) => {
                let workspace =
                    self.toolbox
                        .as_ref()
                        .map(|t| {
                            route::entries(&t.ctx.workspace_for(Some(
                                crate::memory::principal_key(&principal).as_str(),
                            )))
                        })
                        .unwrap_or_default();
                let route = route::route_in(user_text, &workspace);
                for t in &route.tools {
                    if !conv.offered.iter().any(|o| o == t) {
                        conv.offered.push(t.to_string());
                    }
                }
                let offered = catalog.ordered(&conv.offered);
                steps = route
                    .steps
                    .iter()
                    .map(|t| catalog.ordered(t))
                    .filter(|t| !t.is_empty())
                    .collect();
                // The first thing asked plainly is the first step ("read
                // courses.txt, then make a note of it" reads first).
                let must = steps.first().cloned().unwrap_or_default();
                tracing::debug!(?offered, forced = ?must, "tools offered");
                let offer = (!offered.is_empty())
                    .then(|| catalog.offer(&offered))
                    .transpose()?;
                named = Narrow {
                    paths: route.paths.clone(),
                    dirs: route.dirs.clone(),
                    at: match self.toolbox.as_ref() {
                        Some(t) if steps.iter().flatten().any(|n| n == "remind") => {
                            route::time_phrases(user_text, &t.ctx.timezone)
                        }
                        _ => Vec::new(),
                    },
                };
                let forced = (!must.is_empty())
                    .then(|| catalog.forced_in(&must, &named))
                    .transpose()?;
                (offer, forced)
            }
            None => (None, None),
        };
        self.drive(
            conv,
            &principal,
            Drive {
                offer,
                forced,
                steps,
                named,
                tools,
                ran_now: Vec::new(),
                tool_calls: 0,
                started,
                usage,
            },
            on_event,
            cancel,
        )
        .await
    }

    /// Generates until the model answers (running the calls it makes on
    /// the way): the rest of a turn.
    async fn drive(
        &self,
        conv: &mut Conversation,
        principal: &Principal,
        state: Drive,
        mut on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        let Drive {
            offer,
            mut forced,
            mut steps,
            named,
            tools,
            // Calls that ran in this turn: a small model tends to repeat
            // one whose result it already has.
            mut ran_now,
            mut tool_calls,
            mut started,
            mut usage,
        } = state;
        let principal = principal.clone();
        let turn_started = started;
        // After a repeated call, the model answers without tools.
        let mut answer_only = false;
        // The tools called in this turn, and the last result that came
        // back (a refusal written after it gives way to it).
        let mut called: Vec<String> = ran_now.iter().map(|c| c.name.clone()).collect();
        let mut last_result: Option<(String, String)> = None;
        // The plain requests of the message, and the tools that did what
        // was asked: once each request has had its call, and the last
        // call succeeded, the model answers (a small model otherwise goes
        // on calling: a listing after a read, a second cancel, a `forget`
        // after a reminder).
        let plan = steps.clone();
        let mut done: Vec<String> = Vec::new();
        let mut last_ok = false;
        loop {
            // A message that asked for two things plainly: once a call is
            // made, the next step must be a call for the next thing not
            // yet done.
            if forced.is_none()
                && tool_calls > 0
                && !answer_only
                && let Some(catalog) = &self.catalog
            {
                while !steps.is_empty() {
                    let step = steps.remove(0);
                    if !step.iter().any(|t| called.contains(t)) {
                        tracing::debug!(?step, "the next step must be a call");
                        forced = Some(catalog.forced_in(&step, &named)?);
                        break;
                    }
                }
            }
            if forced.is_none()
                && !answer_only
                && last_ok
                && !plan.is_empty()
                && plan
                    .iter()
                    .all(|step| step.iter().any(|t| done.contains(t)))
            {
                tracing::debug!("every request of the message done: answering without tools");
                answer_only = true;
            }
            // Answering: no tools in the prompt (a small model shown them
            // writes the call again); the system prompt without them is a
            // prefix warmed like the others ([`Agent::warm`]).
            let mut generation = self.engine.generate_with_cancel(
                conv.request_forced(
                    GenerateOptions {
                        who: Some(crate::memory::principal_key(&principal)),
                        ..Default::default()
                    },
                    offer.as_ref().filter(|_| !answer_only),
                    forced.take().as_deref(),
                ),
                cancel.clone(),
            );
            let mut text = String::new();
            let mut shown = 0usize;
            let stats = loop {
                let remaining = self.turn_timeout.saturating_sub(started.elapsed());
                match tokio::time::timeout(remaining, generation.events.recv()).await {
                    Err(_) => {
                        generation.cancel();
                        let reply = text[..shown].to_string();
                        conv.finish_turn(&reply);
                        return Ok(TurnOutcome {
                            reply,
                            tool_calls,
                            stats: None,
                            cancelled: false,
                            limited: Some(format!(
                                "the turn took longer than {} s",
                                self.turn_timeout.as_secs()
                            )),
                            usage,
                            awaiting: None,
                            kept: None,
                        });
                    }
                    Ok(Some(GenerationEvent::Token(t))) => {
                        text.push_str(&t);
                        // Show the reply, but not a tool call being written.
                        let visible = visible_len(&text);
                        if visible > shown {
                            usage.first_token_ms.get_or_insert_with(|| {
                                turn_started.elapsed().as_secs_f64() * 1000.0
                            });
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
            usage.add(&stats);
            let cancelled = stats.finish == crate::inference::FinishReason::Cancelled;
            let call = match (&self.toolbox, cancelled) {
                (Some(_), false) if tools && !answer_only => parse_tool_call(&text),
                _ => None,
            };
            let Some((before, call)) = call else {
                // What is left to show, without call-shaped text.
                let (mut reply, dropped) = clean_reply(&text);
                if dropped {
                    tracing::info!(%text, "call-shaped text dropped from a reply");
                }
                // A small model sometimes refuses ("I can't assist with
                // that") right after a tool answered, says nothing, or
                // writes a call it cannot run instead of answering: the
                // person gets what the tool answered instead.
                let instead = last_result
                    .as_ref()
                    .filter(|_| !cancelled)
                    .map(|(tool, content)| (tool, parse::result_as_reply(tool, content)));
                let refused = instead.is_some() && parse::is_refusal(&reply);
                if let Some((tool, instead)) = &instead
                    && !refused
                    && (reply.trim().is_empty() || (dropped && reply.trim() == parse::DROPPED))
                {
                    tracing::info!(%reply, %tool, "no answer after a result: the result is shown");
                    // What was shown stays a prefix of the reply.
                    let said = &text[..shown];
                    reply = if said.trim().is_empty() {
                        format!("{said}{instead}")
                    } else {
                        format!("{said}\n\n{instead}")
                    };
                }
                match reply.strip_prefix(&text[..shown]) {
                    Some(rest) if !rest.is_empty() => on_event(TurnEvent::Token(rest.to_string())),
                    _ => {}
                }
                // A refusal already on its way: the result follows it, and
                // is the reply (a chat's message is edited to it).
                if let Some((tool, instead)) = instead
                    && refused
                {
                    tracing::info!(%reply, %tool, "a refusal after a result: the result is shown");
                    on_event(TurnEvent::Token(format!("\n\n{instead}")));
                    reply = instead;
                }
                conv.finish_turn(&reply);
                return Ok(TurnOutcome {
                    reply,
                    tool_calls,
                    stats: Some(stats),
                    cancelled,
                    limited: None,
                    usage,
                    awaiting: None,
                    kept: None,
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
                    usage,
                    awaiting: None,
                    kept: None,
                });
            }
            // Small models tend to repeat a call whose result they already
            // have. The repeat is not run, nor kept: the model is asked
            // again without tools, so it answers from the result it has.
            // (Only calls of this turn that ran, or that the owner denied
            // or let expire: a cancelled one may be asked again; and a new
            // message may ask for the same call again, the time or a file
            // that changed.)
            if ran_now
                .iter()
                .any(|c| c.name == call.name && c.arguments == call.arguments)
            {
                tracing::debug!(tool = %call.name, "a repeated call: not run; answering without tools");
                answer_only = true;
                continue;
            }
            tool_calls += 1;
            called.push(call.name.clone());
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
            let (ok, content, origin) = {
                match self
                    .decide_and_run(&toolbox, conv, &principal, &call, &mut on_event, &cancel)
                    .await?
                {
                    Step::Ran(ok, content, origin) => (ok, content, origin),
                    Step::Waited(waited, ok, content, origin) => {
                        // Time spent waiting for the owner is not the turn's.
                        started += waited;
                        // Denied (or expired): not asked again in this turn.
                        ran_now.push(call.clone());
                        (ok, content, origin)
                    }
                    Step::Executed(waited, ok, content, origin) => {
                        started += waited.unwrap_or_default();
                        ran_now.push(call.clone());
                        (ok, content, origin)
                    }
                    Step::Deferred(code) => {
                        // The call's answer, for now: it waits. The turn
                        // ends here; `settle` goes on when it is decided.
                        conv.push_from(
                            ChatMessage::new(
                                Role::Tool,
                                format!(
                                    "not run yet: it waits for the owner's approval (request {code}); \
                                     it runs only if the owner approves it"
                                ),
                            ),
                            Origin::Assistant,
                        );
                        let mut reply = before.trim().to_string();
                        if !reply.is_empty() {
                            reply.push_str("\n\n");
                        }
                        reply.push_str(&awaiting_sentence(&code, principal.is_owner()));
                        on_event(TurnEvent::Token(reply[before.trim().len()..].to_string()));
                        conv.finish_turn(&reply);
                        return Ok(TurnOutcome {
                            reply,
                            tool_calls,
                            stats: Some(stats),
                            cancelled: false,
                            limited: None,
                            usage,
                            awaiting: Some(code),
                            kept: None,
                        });
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
                            usage,
                            awaiting: None,
                            kept: None,
                        });
                    }
                }
            };
            tracing::debug!(tool = %call.name, ok, %content, "tool result");
            if ok {
                last_result = Some((call.name.clone(), content.clone()));
                done.push(call.name.clone());
            }
            last_ok = ok;
            on_event(TurnEvent::ToolResult {
                name: call.name.clone(),
                ok,
                content: content.clone(),
            });
            conv.push_from(ChatMessage::new(Role::Tool, content), origin);
        }
    }
}

/// What a turn that asked the owner, without waiting, says.
fn awaiting_sentence(code: &str, for_owner: bool) -> String {
    if for_owner {
        format!(
            "This needs your approval first (request `{code}`): it runs once you approve it. \
             Meanwhile, ask me anything else."
        )
    } else {
        format!(
            "This needs the owner's approval first (request `{code}`): it runs once they approve it. \
             Meanwhile, ask me anything else."
        )
    }
}

/// What a forced call may say, where the message says it: a `read_file`
/// reads only the files the message named, a `list_files` lists only the
/// folders it named ([`route::Route::paths`], [`route::Route::dirs`]), and
/// a `remind` is set at one of the times the message says, in its words
/// ([`route::time_phrases`]): a small model copies a time it just read, or
/// computes one wrongly, instead of passing on "in one hour". Empty: any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Narrow {
    paths: Vec<String>,
    dirs: Vec<String>,
    at: Vec<String>,
}

/// Where a turn's generations stand ([`Agent::drive`]).
struct Drive {
    offer: Option<ToolOffer>,
    forced: Option<String>,
    /// The plain requests still to do, one by one ([`route::Route::steps`]).
    steps: Vec<Vec<String>>,
    /// What a forced call's arguments may be ([`Narrow`]).
    named: Narrow,
    tools: bool,
    ran_now: Vec<ToolCall>,
    tool_calls: usize,
    started: Instant,
    usage: Usage,
}

/// Every tool's definition, and the offers and grammars built from them
/// for the sets of tools messages are offered (a handful in practice).
struct Catalog {
    tools: Vec<(String, serde_json::Value)>,
    offers: Mutex<HashMap<Vec<String>, ToolOffer>>,
    forced: Mutex<HashMap<Vec<String>, String>>,
}

impl Catalog {
    fn new(list: serde_json::Value) -> Result<Self, InferenceError> {
        // Every schema converts (checked once, at start).
        let grammar = crate::inference::tool_call_grammar(&list)?;
        tracing::trace!(%grammar, "tool-call grammar");
        let tools = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["function"]["name"].as_str()?.to_string(), t.clone())))
            .collect();
        Ok(Self {
            tools,
            offers: Mutex::default(),
            forced: Mutex::default(),
        })
    }

    /// The tools of `names` this toolbox has, in its order (a set always
    /// reads the same, so its prompt prefix is cached).
    fn ordered(&self, names: &[impl AsRef<str>]) -> Vec<String> {
        self.tools
            .iter()
            .filter(|(n, _)| names.iter().any(|m| m.as_ref() == n))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn list(&self, names: &[String]) -> serde_json::Value {
        serde_json::Value::Array(
            self.tools
                .iter()
                .filter(|(n, _)| names.contains(n))
                .map(|(_, t)| t.clone())
                .collect(),
        )
    }

    fn offer(&self, names: &[String]) -> Result<ToolOffer, InferenceError> {
        let mut offers = self.offers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = offers.get(names) {
            return Ok(o.clone());
        }
        let list = self.list(names);
        let grammar = crate::inference::tool_call_grammar(&list)?;
        let offer = ToolOffer { list, grammar };
        offers.insert(names.to_vec(), offer.clone());
        Ok(offer)
    }

    /// [`Self::forced`], where a call may name only what the message
    /// named ([`Narrow`]: files, folders, times), when it named any.
    fn forced_in(&self, names: &[String], narrow: &Narrow) -> Result<String, InferenceError> {
        let only = |tool: &str| -> Option<(&'static str, &Vec<String>)> {
            let (arg, values) = match tool {
                "read_file" => ("path", &narrow.paths),
                "list_files" => ("path", &narrow.dirs),
                "remind" => ("at", &narrow.at),
                _ => return None,
            };
            (!values.is_empty()).then_some((arg, values))
        };
        if !names.iter().any(|n| only(n).is_some()) {
            return self.forced(names);
        }
        let mut list = self.list(names);
        for t in list.as_array_mut().into_iter().flatten() {
            let f = &mut t["function"];
            let Some((arg, values)) = f["name"].as_str().and_then(only) else {
                continue;
            };
            f["parameters"]["properties"][arg] =
                serde_json::json!({"type": "string", "enum": values});
        }
        crate::inference::forced_tool_call_grammar(&list)
    }

    fn forced(&self, names: &[String]) -> Result<String, InferenceError> {
        let mut forced = self.forced.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = forced.get(names) {
            return Ok(g.clone());
        }
        let g = crate::inference::forced_tool_call_grammar(&self.list(names))?;
        forced.insert(names.to_vec(), g.clone());
        Ok(g)
    }
}
