//! The engine thread: owns the llama.cpp model and one context (KV cache) per
//! recently used conversation, and serves jobs one at a time.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::template::{ChatMessage, ChatTemplate, PromptPiece, Role};
use super::{
    ConversationId, EngineSettings, FinishReason, GenerateRequest, GenerationEvent,
    GenerationStats, InferenceError, ModelInfo, RawThroughput,
};
use crate::models::ResolvedModel;

pub(super) enum Job {
    Generate {
        request: GenerateRequest,
        events: tokio::sync::mpsc::UnboundedSender<GenerationEvent>,
        cancel: Arc<AtomicBool>,
    },
    Forget(ConversationId),
    Throughput {
        prompt_tokens: usize,
        gen_tokens: usize,
        reply: Sender<Result<RawThroughput, InferenceError>>,
    },
    Shutdown,
}

/// llama.cpp's backend is process-wide and may be initialised only once.
fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialised once per process")
    })
}

/// A conversation's context and the tokens its KV cache holds.
struct Slot<'m> {
    conversation: ConversationId,
    ctx: LlamaContext<'m>,
    cached: Vec<LlamaToken>,
    last_used: u64,
}

pub(super) fn run(
    model: ResolvedModel,
    settings: EngineSettings,
    jobs: Receiver<Job>,
    ready: Sender<Result<ModelInfo, InferenceError>>,
    queued: Arc<AtomicUsize>,
) {
    let backend = backend();
    let params = LlamaModelParams::default()
        .with_use_mmap(true)
        .with_n_gpu_layers(settings.gpu_layers);
    let llama = match LlamaModel::load_from_file(backend, &model.path, &params) {
        Ok(m) => m,
        Err(_) => {
            let _ = ready.send(Err(InferenceError::Load {
                path: model.path.display().to_string(),
            }));
            return;
        }
    };
    let template_source = llama.meta_val_str("tokenizer.chat_template").ok();
    let vocab = llama.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    let template = match ChatTemplate::new(
        template_source.as_deref(),
        piece(vocab.bos()),
        piece(vocab.eos()),
    ) {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    if template.is_fallback {
        tracing::warn!(model = %model.name, "the model has no chat template; using ChatML");
    }
    let info = ModelInfo {
        name: model.name.clone(),
        path: model.path.display().to_string(),
        verified: model.verified,
        n_params: llama.n_params(),
        size_bytes: llama.size(),
        n_ctx_train: llama.n_ctx_train(),
        template_fallback: template.is_fallback,
        threads: settings.threads,
        batch_threads: settings.batch_threads,
        context_tokens: settings.context_tokens,
    };
    let model_key = format!(
        "{} {}",
        model.path.display(),
        std::fs::metadata(&model.path).map(|m| m.len()).unwrap_or(0)
    );
    let mut worker = Worker {
        llama: &llama,
        model_key,
        backend,
        template,
        settings,
        slots: Vec::new(),
        clock: 0,
    };
    // Fail now, not at the first message, if a context cannot be created.
    if let Err(e) = worker.new_context() {
        let _ = ready.send(Err(e));
        return;
    }
    if ready.send(Ok(info)).is_err() {
        return;
    }
    let mut jobs = super::queue::FairQueue::new(jobs);
    while let Some(job) = jobs.next() {
        match job {
            Job::Generate {
                request,
                events,
                cancel,
            } => {
                queued.fetch_sub(1, Ordering::SeqCst);
                let result = if cancel.load(Ordering::SeqCst) {
                    // Cancelled while it waited in the queue.
                    Ok(stats_cancelled(&[], 0, 0, Instant::now()))
                } else {
                    worker.generate(request, &events, &cancel)
                };
                let _ = events.send(match result {
                    Ok(stats) => GenerationEvent::Done(stats),
                    Err(e) => GenerationEvent::Failed(e),
                });
            }
            Job::Forget(id) => worker.slots.retain(|s| s.conversation != id),
            Job::Throughput {
                prompt_tokens,
                gen_tokens,
                reply,
            } => {
                let _ = reply.send(worker.throughput(prompt_tokens, gen_tokens));
            }
            Job::Shutdown => break,
        }
    }
}

struct Worker<'m> {
    llama: &'m LlamaModel,
    /// Identifies the model file for the prompt cache.
    model_key: String,
    backend: &'static LlamaBackend,
    template: ChatTemplate,
    settings: EngineSettings,
    slots: Vec<Slot<'m>>,
    clock: u64,
}

impl<'m> Worker<'m> {
    fn new_context(&self) -> Result<LlamaContext<'m>, InferenceError> {
        let s = &self.settings;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(s.context_tokens))
            .with_n_batch(s.batch_tokens)
            .with_n_ubatch(s.batch_tokens)
            .with_n_threads(s.threads as i32)
            .with_n_threads_batch(s.batch_threads as i32);
        self.llama
            .new_context(self.backend, params)
            .map_err(|_| InferenceError::Context {
                n_ctx: s.context_tokens,
            })
    }

    /// The slot of `conversation`, created (evicting the least recently
    /// used one past the bound) if it has none.
    fn slot(&mut self, conversation: ConversationId) -> Result<usize, InferenceError> {
        self.clock += 1;
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.conversation == conversation)
        {
            self.slots[i].last_used = self.clock;
            return Ok(i);
        }
        if self.slots.len() >= self.settings.cached_conversations as usize
            && let Some((oldest, _)) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
        {
            self.slots.swap_remove(oldest);
        }
        let ctx = self.new_context()?;
        self.slots.push(Slot {
            conversation,
            ctx,
            cached: Vec::new(),
            last_used: self.clock,
        });
        Ok(self.slots.len() - 1)
    }

    /// The part of `prompt` worth keeping on disk, the system prompt with
    /// the tools, and the file it is kept in: named by a hash of the model
    /// file, the context size and the tokens, so any change of those is a
    /// different file.
    fn disk_prefix(
        &self,
        request: &GenerateRequest,
        prompt: &[LlamaToken],
    ) -> Option<(usize, std::path::PathBuf)> {
        const MIN_PREFIX: usize = 64;
        let dir = self.settings.prompt_cache.as_ref()?;
        let system: Vec<_> = request
            .messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .cloned()
            .collect();
        if system.is_empty() {
            return None;
        }
        let pieces = self.template.render(&system, request.tools.as_ref()).ok()?;
        let sys_tokens = self.tokenize(&pieces);
        let len = sys_tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        if len < MIN_PREFIX || len >= prompt.len() {
            return None;
        }
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.model_key.as_bytes());
        h.update(self.settings.context_tokens.to_le_bytes());
        for t in &prompt[..len] {
            h.update(t.0.to_le_bytes());
        }
        let digest = h.finalize();
        let name = crate::models::hex(&digest[..12]);
        Some((len, dir.join(format!("{name}.kv"))))
    }

    /// A new conversation usually starts like another cached one (the same
    /// system prompt and tools: hundreds of tokens). Its KV cache is then
    /// seeded with a copy of that one's, so only what differs is evaluated.
    fn share_prefix(&mut self, target: usize, prompt: &[LlamaToken]) {
        const MIN_SHARED: usize = 32;
        let common = |cached: &[LlamaToken]| {
            cached
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let Some((donor, shared)) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != target)
            .map(|(j, s)| (j, common(&s.cached)))
            .max_by_key(|(_, n)| *n)
        else {
            return;
        };
        if shared < MIN_SHARED {
            return;
        }
        let state = match self.slots[donor]
            .ctx
            .state_seq_get(0, LlamaStateSeqFlags::empty())
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%e, "cannot copy a KV cache; evaluating in full");
                return;
            }
        };
        let cached = self.slots[donor].cached.clone();
        let slot = &mut self.slots[target];
        if slot.ctx.state_seq_set(&state, 0).is_ok() {
            slot.cached = cached;
        } else {
            slot.ctx.clear_kv_cache();
        }
    }

    fn tokenize(&self, pieces: &[PromptPiece]) -> Vec<LlamaToken> {
        let vocab = self.llama.vocab();
        let mut tokens = Vec::new();
        for piece in pieces {
            match piece {
                PromptPiece::Template(t) => {
                    tokens.extend(vocab.tokenize(t.as_bytes(), false, true))
                }
                PromptPiece::Content(c) => {
                    tokens.extend(vocab.tokenize(c.as_bytes(), false, false))
                }
            }
        }
        if vocab.should_add_bos() && tokens.first() != Some(&vocab.bos()) {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// Renders and tokenizes the conversation, leaving out its oldest turns
    /// (never the system prompt, never the last message) until the prompt
    /// and a reply fit in the context.
    fn fit_prompt(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
        reply_budget: usize,
    ) -> Result<(Vec<LlamaToken>, usize), InferenceError> {
        let n_ctx = self.settings.context_tokens as usize;
        let (system, rest): (Vec<_>, Vec<_>) = messages
            .iter()
            .cloned()
            .partition(|m| m.role == Role::System);
        let mut start = 0;
        loop {
            let mut kept = system.clone();
            kept.extend_from_slice(&rest[start..]);
            let tokens = self.tokenize(&self.template.render(&kept, tools)?);
            if tokens.len() + reply_budget <= n_ctx {
                return Ok((tokens, start));
            }
            if start + 1 >= rest.len() {
                return Err(InferenceError::TooLong {
                    tokens: tokens.len(),
                    n_ctx: self.settings.context_tokens,
                });
            }
            // Drop a whole exchange: up to the next user message.
            start += 1;
            while start + 1 < rest.len() && rest[start].role != Role::User {
                start += 1;
            }
        }
    }

    fn sampler(&self, grammar: Option<&str>, forced: bool) -> Result<LlamaSampler, InferenceError> {
        let mut chain = Vec::new();
        if let Some(g) = grammar {
            // Lazy: only once the model opens a tool call; forced: from the
            // first token.
            let sampler = if forced {
                LlamaSampler::grammar(self.llama, g, "root")
            } else {
                LlamaSampler::grammar_lazy(self.llama, g, "root", super::tool_call_triggers(), &[])
            };
            chain.push(sampler.map_err(|e| InferenceError::Grammar(e.to_string()))?);
        }
        let s = &self.settings.sampling;
        if s.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
            return Ok(LlamaSampler::chain_simple(chain));
        }
        let seed = if s.seed == 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(42)
        } else {
            s.seed
        };
        if s.repeat_penalty != 1.0 && s.repeat_last_n > 0 {
            chain.push(LlamaSampler::penalties(
                self.llama.n_vocab(),
                s.repeat_last_n,
                s.repeat_penalty,
                0.0,
                0.0,
            ));
        }
        if s.top_k > 0 {
            chain.push(LlamaSampler::top_k(s.top_k));
        }
        chain.push(LlamaSampler::top_p(s.top_p, 1));
        chain.push(LlamaSampler::min_p(s.min_p, 1));
        chain.push(LlamaSampler::temp(s.temperature));
        chain.push(LlamaSampler::dist(seed));
        Ok(LlamaSampler::chain_simple(chain))
    }

    fn generate(
        &mut self,
        request: GenerateRequest,
        events: &tokio::sync::mpsc::UnboundedSender<GenerationEvent>,
        cancel: &AtomicBool,
    ) -> Result<GenerationStats, InferenceError> {
        let started = Instant::now();
        let n_ctx = self.settings.context_tokens as usize;
        let max_tokens = request
            .options
            .max_tokens
            .unwrap_or(self.settings.max_reply_tokens)
            .min(self.settings.max_reply_tokens) as usize;
        // Reserve room for a reply, but never so much that a long history
        // cannot be answered at all.
        let reply_budget = max_tokens.min(n_ctx / 4);
        let (prompt, dropped) =
            self.fit_prompt(&request.messages, request.tools.as_ref(), reply_budget)?;
        let mut sampler = self.sampler(request.grammar.as_deref(), request.force_tool_call)?;
        let batch_size = self.settings.batch_tokens as usize;
        let i = self.slot(request.conversation)?;
        if self.slots[i].cached.is_empty() {
            self.share_prefix(i, &prompt);
        }
        let disk_prefix = self.disk_prefix(&request, &prompt);
        if let Some((len, path)) = &disk_prefix
            && self.slots[i].cached.len() < *len
        {
            load_prefix(&mut self.slots[i], path, &prompt[..*len]);
        }
        let slot = &mut self.slots[i];

        // Prefix reuse: keep the cached tokens this prompt starts with.
        let mut reused = slot
            .cached
            .iter()
            .zip(&prompt)
            .take_while(|(a, b)| a == b)
            .count();
        if reused == prompt.len() {
            reused -= 1; // the last token must be evaluated to get logits
        }
        if slot
            .ctx
            .clear_kv_cache_seq(Some(0), Some(reused as u32), None)
            .map(|ok| !ok)
            .unwrap_or(true)
        {
            slot.ctx.clear_kv_cache();
            reused = 0;
        }
        slot.cached.truncate(reused);

        let mut batch = LlamaBatch::new(batch_size.max(1), 1);
        let mut pos = reused;
        // The prefix worth keeping on disk is evaluated (and saved) first.
        let save_at = disk_prefix
            .as_ref()
            .map(|(len, _)| *len)
            .filter(|len| (reused..prompt.len()).contains(len) && *len > reused);
        let chunks = match save_at {
            Some(at) => prompt[reused..at]
                .chunks(batch_size)
                .chain(prompt[at..].chunks(batch_size))
                .collect::<Vec<_>>(),
            None => prompt[reused..].chunks(batch_size).collect(),
        };
        for chunk in chunks {
            if let (Some(at), Some((_, path))) = (save_at, &disk_prefix)
                && pos == at
            {
                save_prefix(&slot.ctx, path, &prompt[..at]);
            }
            if cancel.load(Ordering::SeqCst) {
                let mut stats = stats_cancelled(&prompt, reused, dropped, started);
                stats.evaluated_tokens = pos - reused;
                return Ok(stats);
            }
            batch.clear();
            for (k, tok) in chunk.iter().enumerate() {
                let last = pos + k + 1 == prompt.len();
                batch
                    .add(*tok, (pos + k) as i32, &[0], last)
                    .map_err(|e| InferenceError::Decode(e.to_string()))?;
            }
            if let Err(e) = slot.ctx.decode(&mut batch) {
                slot.cached.clear();
                slot.ctx.clear_kv_cache();
                return Err(InferenceError::Decode(e.to_string()));
            }
            slot.cached.extend_from_slice(chunk);
            pos += chunk.len();
        }
        let prompt_ms = ms(started.elapsed());

        let vocab = self.llama.vocab();
        let mut utf8 = Utf8Stream::default();
        let mut generated = 0usize;
        let mut first_token_at = None;
        let mut logits_index = batch.n_tokens() - 1;
        let gen_started = Instant::now();
        let finish = loop {
            if cancel.load(Ordering::SeqCst) || events.is_closed() {
                break FinishReason::Cancelled;
            }
            if generated >= max_tokens || pos >= n_ctx {
                break FinishReason::Length;
            }
            let token = sampler.sample(&slot.ctx, logits_index);
            tracing::trace!(token = token.0, "sampled");
            if vocab.is_eog(token) && !request.options.ignore_eog {
                break FinishReason::Stop;
            }
            generated += 1;
            // Special tokens are rendered: a tool call opens with one.
            let bytes = vocab.token_to_piece(token, true, None);
            if let Some(text) = utf8.push(&bytes) {
                first_token_at.get_or_insert_with(Instant::now);
                if events.send(GenerationEvent::Token(text)).is_err() {
                    break FinishReason::Cancelled;
                }
            }
            batch.clear();
            batch
                .add(token, pos as i32, &[0], true)
                .map_err(|e| InferenceError::Decode(e.to_string()))?;
            if let Err(e) = slot.ctx.decode(&mut batch) {
                slot.cached.clear();
                slot.ctx.clear_kv_cache();
                return Err(InferenceError::Decode(e.to_string()));
            }
            slot.cached.push(token);
            pos += 1;
            logits_index = 0;
        };
        if let Some(rest) = utf8.flush() {
            let _ = events.send(GenerationEvent::Token(rest));
        }
        let ttft = first_token_at.map_or(ms(started.elapsed()), |t| ms(t - started));
        Ok(GenerationStats {
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            evaluated_tokens: prompt.len() - reused,
            generated_tokens: generated,
            dropped_messages: dropped,
            prompt_ms,
            ttft_ms: ttft,
            generation_ms: ms(gen_started.elapsed()),
            finish,
        })
    }

    /// llama-bench's pp and tg tests: `prompt_tokens` tokens evaluated in
    /// batches, then `gen_tokens` single-token decodes, on a fresh context.
    fn throughput(
        &mut self,
        prompt_tokens: usize,
        gen_tokens: usize,
    ) -> Result<RawThroughput, InferenceError> {
        let mut ctx = self.new_context()?;
        let n_vocab = self.llama.n_vocab().max(1) as u32;
        // Deterministic pseudo-random tokens, as llama-bench uses random ones.
        let mut state = 0x2545_F491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            LlamaToken((state % n_vocab) as i32)
        };
        let batch_size = self.settings.batch_tokens as usize;
        let mut batch = LlamaBatch::new(batch_size.max(1), 1);
        let decode = |ctx: &mut LlamaContext, batch: &mut LlamaBatch| {
            ctx.decode(batch)
                .map_err(|e| InferenceError::Decode(e.to_string()))
        };
        // Warm-up, as llama-bench does.
        batch.clear();
        batch
            .add(next(), 0, &[0], true)
            .map_err(|e| InferenceError::Decode(e.to_string()))?;
        decode(&mut ctx, &mut batch)?;
        ctx.clear_kv_cache();

        let t = Instant::now();
        let mut pos = 0;
        while pos < prompt_tokens {
            batch.clear();
            let n = batch_size.min(prompt_tokens - pos);
            for k in 0..n {
                batch
                    .add(next(), (pos + k) as i32, &[0], pos + k + 1 == prompt_tokens)
                    .map_err(|e| InferenceError::Decode(e.to_string()))?;
            }
            decode(&mut ctx, &mut batch)?;
            pos += n;
        }
        let prompt_duration = t.elapsed();
        ctx.clear_kv_cache();

        let t = Instant::now();
        for p in 0..gen_tokens {
            batch.clear();
            batch
                .add(next(), p as i32, &[0], true)
                .map_err(|e| InferenceError::Decode(e.to_string()))?;
            decode(&mut ctx, &mut batch)?;
        }
        Ok(RawThroughput {
            prompt_duration,
            gen_duration: t.elapsed(),
        })
    }
}

/// Seeds an empty slot with a prefix's KV state saved by an earlier run, if
/// there is one and it holds exactly `expected`.
fn load_prefix(slot: &mut Slot<'_>, path: &std::path::Path, expected: &[LlamaToken]) {
    if !path.exists() || !slot.cached.is_empty() {
        return;
    }
    match slot.ctx.state_seq_load_file(path, 0, expected.len() + 1) {
        Ok((tokens, _)) if tokens == expected => {
            tracing::debug!(file = %path.display(), tokens = tokens.len(), "prompt prefix loaded from disk");
            slot.cached = tokens;
        }
        _ => {
            tracing::debug!(file = %path.display(), "unusable prompt cache file; removed");
            slot.ctx.clear_kv_cache();
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Keeps at most this many prefix files; the oldest go first. A model has
/// one per tool set a first message may be offered ([`crate::agent::route`]
/// has fifteen), 5–15 MB each for the default model.
const PROMPT_CACHE_FILES: usize = 40;

fn save_prefix(ctx: &LlamaContext<'_>, path: &std::path::Path, tokens: &[LlamaToken]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Another process may be saving the same prefix (a shared cache).
    let partial = path.with_extension(format!("partial.{}", std::process::id()));
    let saved = ctx.state_seq_save_file(&partial, 0, tokens).is_ok()
        && std::fs::rename(&partial, path).is_ok();
    if !saved {
        let _ = std::fs::remove_file(&partial);
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "kv"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    while files.len() > PROMPT_CACHE_FILES {
        let (_, oldest) = files.remove(0);
        let _ = std::fs::remove_file(oldest);
    }
}

fn stats_cancelled(
    prompt: &[LlamaToken],
    reused: usize,
    dropped: usize,
    started: Instant,
) -> GenerationStats {
    GenerationStats {
        prompt_tokens: prompt.len(),
        reused_tokens: reused,
        evaluated_tokens: 0,
        generated_tokens: 0,
        dropped_messages: dropped,
        prompt_ms: ms(started.elapsed()),
        ttft_ms: ms(started.elapsed()),
        generation_ms: 0.0,
        finish: FinishReason::Cancelled,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Token pieces can split a multi-byte character; this emits only whole
/// characters and keeps the rest for the next piece.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid bytes, not just incomplete: replace them.
            Err(_) => {
                let s = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return Some(s);
            }
        };
        if valid == 0 {
            return None;
        }
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8(std::mem::replace(&mut self.pending, rest)).ok()?;
        Some(text)
    }

    fn flush(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    #[test]
    fn split_characters_are_joined() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(b"caf"), Some("caf".into()));
        assert_eq!(s.push(&e[..1]), None);
        assert_eq!(s.push(&e[1..]), Some("é".into()));
        assert_eq!(s.flush(), None);
    }
}
