//! Inference: a quantized model run in-process by llama.cpp.
//!
//! The model is verified (see [`crate::models`]), memory-mapped and loaded
//! once, by a dedicated engine thread that owns it. Requests reach that thread
//! through a queue that every conversation shares; tokens come back as
//! [`GenerationEvent`]s on a channel, so nothing CPU-heavy ever runs on the
//! async runtime. Each conversation keeps its own KV cache between turns, and
//! a new turn evaluates only the tokens that differ from what is cached
//! (prefix reuse).
//!
//! This module knows nothing of channels, principals or tools: it turns
//! messages into tokens and tokens into text.

mod engine;
mod queue;
pub mod scripted;
pub(crate) mod template;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub use template::{ChatMessage, ChatTemplate, PromptPiece, Role, TemplateToolCall};

use crate::config::{Config, SamplingConfig};
use crate::models::ResolvedModel;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(
        "llama.cpp could not load {path}: the file may be truncated or of an unsupported architecture"
    )]
    Load { path: String },
    #[error("llama.cpp could not create a context of {n_ctx} tokens (out of memory?)")]
    Context { n_ctx: u32 },
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error(
        "the conversation does not fit in the context: {tokens} tokens with only the system prompt and the last message, context is {n_ctx}"
    )]
    TooLong { tokens: usize, n_ctx: u32 },
    #[error("llama.cpp failed to evaluate the prompt: {0}")]
    Decode(String),
    #[error("the inference engine has stopped")]
    EngineStopped,
    #[error("cannot build the tool-call grammar: {0}")]
    Grammar(String),
}

/// Settings the engine runs with, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub threads: u32,
    pub batch_threads: u32,
    pub context_tokens: u32,
    pub batch_tokens: u32,
    pub max_reply_tokens: u32,
    pub gpu_layers: u32,
    pub cached_conversations: u32,
    pub sampling: SamplingConfig,
    /// Where the KV state of prompt prefixes (system prompt and tools) is
    /// kept between runs; `None` disables it.
    pub prompt_cache: Option<std::path::PathBuf>,
}

impl EngineSettings {
    pub fn from_config(config: &Config) -> Self {
        let i = &config.inference;
        let threads = if i.threads == 0 {
            physical_cores()
        } else {
            i.threads
        };
        Self {
            threads,
            batch_threads: if i.batch_threads == 0 {
                threads
            } else {
                i.batch_threads
            },
            context_tokens: i.context_tokens,
            batch_tokens: i.batch_tokens,
            max_reply_tokens: i.max_reply_tokens,
            gpu_layers: i.gpu_layers,
            cached_conversations: i.cached_conversations,
            sampling: config.sampling.clone(),
            prompt_cache: i.prompt_cache.then(|| {
                i.prompt_cache_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir().join("prompt-cache"))
            }),
        }
    }
}

/// The tag that opens a tool call (the Hermes/Qwen convention that the
/// default model's template teaches), and the one that closes it.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// The grammar of a tool call to any of `tools` (a template `tools` list):
/// `<tool_call>` then `{"name": ..., "arguments": ...}` whose arguments
/// validate against that tool's schema, then `</tool_call>`. It is applied
/// lazily, from the moment the model writes `<tool_call>`, so a model that
/// answers in plain text is not constrained.
pub(crate) fn tool_call_grammar(tools: &serde_json::Value) -> Result<String, InferenceError> {
    // llama.cpp's schema converter orders object keys alphabetically, but
    // models write "name" before "arguments", and a lazy grammar is fed
    // what the model already wrote: so the call's object is spelled out
    // here, and only each tool's arguments come from the converter, their
    // rules prefixed per tool so they cannot collide.
    let mut alternatives = Vec::new();
    let mut rules = String::new();
    for (i, f) in tools
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("function"))
        .enumerate()
    {
        let name = f["name"].as_str().unwrap_or_default();
        let args = llama_cpp_2::json_schema_to_grammar(&f["parameters"].to_string())
            .map_err(|e| InferenceError::Grammar(format!("{name}: {e}")))?;
        let prefix = format!("t{i}-");
        rules.push_str(&prefix_rules(&args, &prefix));
        rules.push('\n');
        alternatives.push(format!(
            "\"\\\"{name}\\\"\" space \",\" space \"\\\"arguments\\\"\" space \":\" space {prefix}root"
        ));
    }
    if alternatives.is_empty() {
        return Err(InferenceError::Grammar("no tools".into()));
    }
    // The three forms small models use: tagged (as the template teaches),
    // fenced as JSON, and bare.
    Ok(format!(
        "root ::= tagged | fenced | tool-call\n\
         tagged ::= \"{TOOL_CALL_OPEN}\" ws tool-call ws \"{TOOL_CALL_CLOSE}\"\n\
         fenced ::= \"```json\" ws tool-call ws \"```\"\n\
         ws ::= [ \\t\\n]*\n\
         space ::= | \" \" | \"\\n\"{{1,2}} [ \\t]{{0,20}}\n\
         tool-call ::= \"{{\" space \"\\\"name\\\"\" space \":\" space ( {} ) space \"}}\"\n{rules}",
        alternatives.join(" | ")
    ))
}

/// The grammar of a reply that must be a tool call to one of `tools`,
/// written as the template teaches: applied from the first token
/// ([`GenerateRequest::force_tool_call`]).
pub(crate) fn forced_tool_call_grammar(
    tools: &serde_json::Value,
) -> Result<String, InferenceError> {
    let lazy = tool_call_grammar(tools)?;
    let body = lazy
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    Ok(format!("root ::= tagged\n{body}"))
}

/// Prefixes every rule name of a GBNF grammar (definitions and references;
/// not string literals, character classes or repetition counts).
fn prefix_rules(grammar: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(grammar.len() * 2);
    let mut chars = grammar.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' | '{' => {
                let close = match c {
                    '"' => '"',
                    '[' => ']',
                    _ => '}',
                };
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == close {
                        break;
                    }
                }
            }
            '#' => {
                // A comment runs to the end of the line.
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                let mut ident = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '-' {
                        ident.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(prefix);
                out.push_str(&ident);
            }
            c => out.push(c),
        }
    }
    out
}

/// Where a tool call starts in the model's output: the words that switch
/// the lazy grammar on (it is fed from the word on). A `<tool_call>` tag, a
/// ```json fence whose object opens with "name" (as small models write it),
/// or a bare such object. Literal words, not regexes: llama.cpp's regex
/// triggers run libstdc++'s recursive matcher on the whole output at every
/// token, which can throw on long outputs and abort the process.
pub(crate) fn tool_call_triggers() -> Vec<String> {
    let mut words = vec![TOOL_CALL_OPEN.to_string(), "{\"name\"".to_string()];
    for indent in ["", "\n", "\n  ", "\n    ", " "] {
        words.push(format!("```json\n{{{indent}\"name\""));
    }
    words
}

/// Identifies a conversation's KV cache in the engine.
pub(crate) type ConversationId = u64;

/// What one generation may do beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// At most this many tokens (default: `max_reply_tokens`).
    pub max_tokens: Option<u32>,
    /// Keep generating past end-of-generation tokens (benchmarks only).
    pub ignore_eog: bool,
    /// Whose turn this is (the owner, or a member's id): the queue is fair
    /// between people ([`queue`]). `None`: Hermit's own work, as the owner's.
    pub who: Option<String>,
}

/// A request to continue a conversation.
pub struct GenerateRequest {
    pub conversation: ConversationId,
    pub messages: Vec<ChatMessage>,
    /// Tool definitions (JSON list) offered through the template.
    pub tools: Option<serde_json::Value>,
    /// A GBNF grammar that constrains a tool call once the model opens one
    /// with [`TOOL_CALL_OPEN`] (see [`tool_call_grammar`]).
    pub grammar: Option<String>,
    /// The grammar applies from the first token: the reply is a tool call
    /// (see [`forced_tool_call_grammar`]).
    pub force_tool_call: bool,
    pub options: GenerateOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// The reply reached its token bound or the context filled.
    Length,
    /// Cancelled by the caller.
    Cancelled,
}

/// Figures about one generation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GenerationStats {
    /// Tokens of the whole prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens found in the conversation's KV cache.
    pub reused_tokens: usize,
    /// Prompt tokens evaluated for this turn (`prompt_tokens - reused_tokens`).
    pub evaluated_tokens: usize,
    pub generated_tokens: usize,
    /// Oldest messages left out because the context was full.
    pub dropped_messages: usize,
    pub prompt_ms: f64,
    /// From the request leaving the queue to the first token.
    pub ttft_ms: f64,
    pub generation_ms: f64,
    pub finish: FinishReason,
}

#[derive(Debug)]
pub enum GenerationEvent {
    /// A piece of the reply, valid UTF-8.
    Token(String),
    Done(GenerationStats),
    Failed(InferenceError),
}

/// Static facts about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub verified: bool,
    pub n_params: u64,
    pub size_bytes: u64,
    pub n_ctx_train: u32,
    pub template_fallback: bool,
    pub threads: u32,
    pub batch_threads: u32,
    pub context_tokens: u32,
}

/// A handle on the running generation; dropping the receiver or calling
/// [`Generation::cancel`] stops it at the next token.
pub struct Generation {
    pub events: tokio::sync::mpsc::UnboundedReceiver<GenerationEvent>,
    cancel: Arc<AtomicBool>,
}

impl Generation {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Waits for the whole reply (for tests and scripted use).
    pub async fn collect(mut self) -> Result<(String, GenerationStats), InferenceError> {
        let mut text = String::new();
        while let Some(ev) = self.events.recv().await {
            match ev {
                GenerationEvent::Token(t) => text.push_str(&t),
                GenerationEvent::Done(stats) => return Ok((text, stats)),
                GenerationEvent::Failed(e) => return Err(e),
            }
        }
        Err(InferenceError::EngineStopped)
    }
}

/// The handle every part of Hermit uses to reach the model. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<engine::Job>>,
    info: ModelInfo,
    queued: Arc<AtomicUsize>,
    /// Generations asked of the model since it was loaded.
    generations: std::sync::atomic::AtomicU64,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Engine {
    /// Loads the model on a new engine thread and waits until it is ready.
    pub fn start(model: ResolvedModel, settings: EngineSettings) -> Result<Self, InferenceError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = queued.clone();
        let thread = std::thread::Builder::new()
            .name("hermit-inference".into())
            .spawn(move || engine::run(model, settings, rx, ready_tx, worker_queued))
            .map_err(|_| InferenceError::EngineStopped)?;
        let info = match ready_rx.recv() {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(InferenceError::EngineStopped);
            }
        };
        Ok(Self::from_worker(tx, info, queued, thread))
    }

    /// The handle on a worker thread that answers [`engine::Job`]s.
    fn from_worker(
        tx: std::sync::mpsc::Sender<engine::Job>,
        info: ModelInfo,
        queued: Arc<AtomicUsize>,
        thread: std::thread::JoinHandle<()>,
    ) -> Self {
        Self {
            inner: Arc::new(EngineInner {
                tx: std::sync::Mutex::new(tx),
                info,
                queued,
                generations: Default::default(),
                thread: std::sync::Mutex::new(Some(thread)),
            }),
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// Requests waiting for the engine, not counting the one it is running.
    pub(crate) fn queue_len(&self) -> usize {
        self.inner.queued.load(Ordering::SeqCst)
    }

    /// Generations asked of the model since it was loaded (what an idle
    /// daemon must keep at zero).
    pub(crate) fn generations(&self) -> u64 {
        self.inner.generations.load(Ordering::SeqCst)
    }

    /// Queues a generation; tokens arrive on the returned handle.
    pub fn generate(&self, request: GenerateRequest) -> Generation {
        self.generate_with_cancel(request, Arc::new(AtomicBool::new(false)))
    }

    /// Like [`Engine::generate`], stopped when `cancel` is set (shared by
    /// the several generations of one agent turn).
    pub(crate) fn generate_with_cancel(
        &self,
        request: GenerateRequest,
        cancel: Arc<AtomicBool>,
    ) -> Generation {
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let job = engine::Job::Generate {
            request,
            events: events_tx.clone(),
            cancel: cancel.clone(),
        };
        self.inner.queued.fetch_add(1, Ordering::SeqCst);
        self.inner.generations.fetch_add(1, Ordering::SeqCst);
        let sent = self
            .inner
            .tx
            .lock()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            self.inner.queued.fetch_sub(1, Ordering::SeqCst);
            let _ = events_tx.send(GenerationEvent::Failed(InferenceError::EngineStopped));
        }
        Generation { events, cancel }
    }

    /// Drops a conversation's KV cache (a new conversation starts empty).
    pub fn forget(&self, conversation: ConversationId) {
        if let Ok(tx) = self.inner.tx.lock() {
            let _ = tx.send(engine::Job::Forget(conversation));
        }
    }

    /// Runs a benchmark pass on the engine thread (`hermit bench llm`).
    pub fn raw_throughput(
        &self,
        prompt_tokens: usize,
        gen_tokens: usize,
    ) -> Result<RawThroughput, InferenceError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job = engine::Job::Throughput {
            prompt_tokens,
            gen_tokens,
            reply: tx,
        };
        self.inner
            .tx
            .lock()
            .map_err(|_| InferenceError::EngineStopped)?
            .send(job)
            .map_err(|_| InferenceError::EngineStopped)?;
        rx.recv().map_err(|_| InferenceError::EngineStopped)?
    }
}

/// Prompt-processing and generation speed measured the way llama-bench does.
#[derive(Debug, Clone, Copy)]
pub struct RawThroughput {
    pub prompt_duration: Duration,
    pub gen_duration: Duration,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(engine::Job::Shutdown);
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// One thread per physical core is what llama.cpp runs best with; SMT
/// siblings only add contention.
pub fn physical_cores() -> u32 {
    let mut seen = std::collections::BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with("cpu") || !name[3..].chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Ok(s) =
                std::fs::read_to_string(entry.path().join("topology/thread_siblings_list"))
            {
                seen.insert(s.trim().to_string());
            }
        }
    }
    let logical = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    match seen.len() as u32 {
        0 => logical,
        n => n.min(logical),
    }
}

/// What the native code was compiled for (`hermit doctor`, `--version`).
pub fn build_target() -> String {
    let mut features = Vec::new();
    macro_rules! feat {
        ($($f:literal),*) => {$(
            if cfg!(target_feature = $f) { features.push($f); }
        )*};
    }
    feat!(
        "sse4.2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avxvnni", "neon"
    );
    let gpu = if cfg!(feature = "cuda") {
        "cuda"
    } else if cfg!(feature = "metal") {
        "metal"
    } else {
        "cpu only"
    };
    format!(
        "{} with {}; {gpu}",
        std::env::consts::ARCH,
        if features.is_empty() {
            "baseline features".to_string()
        } else {
            features.join(" ")
        }
    )
}
