//! A scripted model: a **test double** for the engine, for tests that must
//! control what the model says (a chosen tool call, an injected instruction,
//! a reply that never ends) and so prove the agent loop and the policy
//! whatever a real model would choose. It stands behind the same queue and
//! the same [`Engine`] handle as llama.cpp, so everything above the model is
//! the real code. Never used on the production path: only tests and
//! benchmarks of the loop construct it ([`Engine::scripted`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::engine::Job;
use super::{
    Engine, FinishReason, GenerateRequest, GenerationEvent, GenerationStats, InferenceError,
    ModelInfo,
};

/// What the scripted model answers to one request.
#[derive(Debug, Clone)]
pub enum ScriptedReply {
    /// This text, a word at a time (a tool call is written as a real
    /// model writes it: `<tool_call>{"name": …, "arguments": …}</tool_call>`).
    Text(String),
    /// This text, a word every `every` (a reply being written, for a stop
    /// to reach).
    Paced { text: String, every: Duration },
    /// Words every `every` until the generation is cancelled (a long
    /// briefing, a runaway answer): proves that a stop reaches it.
    Endless { every: Duration },
    /// The engine fails this generation with this error.
    Fail(String),
}

/// The script: called with each request (the whole prompt as the agent
/// built it), returns the reply.
pub(crate) type Script = dyn Fn(&GenerateRequest) -> ScriptedReply + Send + 'static;

impl Engine {
    /// An engine whose "model" is `script` (a test double; see the module
    /// documentation).
    pub fn scripted(script: impl Fn(&GenerateRequest) -> ScriptedReply + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = queued.clone();
        let script: Box<Script> = Box::new(script);
        let thread = std::thread::Builder::new()
            .name("hermit-scripted-model".into())
            .spawn(move || {
                let mut rx = super::queue::FairQueue::new(rx);
                while let Some(job) = rx.next() {
                    match job {
                        Job::Generate {
                            request,
                            events,
                            cancel,
                        } => {
                            worker_queued.fetch_sub(1, Ordering::SeqCst);
                            let event = match script(&request) {
                                ScriptedReply::Fail(e) => {
                                    GenerationEvent::Failed(InferenceError::Decode(e))
                                }
                                reply => GenerationEvent::Done(play(reply, &events, &cancel)),
                            };
                            let _ = events.send(event);
                        }
                        Job::Forget(_) => {}
                        Job::Throughput { reply, .. } => {
                            let _ = reply.send(Err(InferenceError::EngineStopped));
                        }
                        Job::Shutdown => break,
                    }
                }
            })
            .expect("a thread for the scripted model");
        let info = ModelInfo {
            name: "scripted".into(),
            path: "(a scripted test double)".into(),
            verified: false,
            n_params: 0,
            size_bytes: 0,
            n_ctx_train: 0,
            template_fallback: false,
            threads: 1,
            batch_threads: 1,
            context_tokens: 0,
        };
        Self::from_worker(tx, info, queued, thread)
    }
}

/// Sends the reply's words as tokens, stopping at a cancel.
fn play(
    reply: ScriptedReply,
    events: &tokio::sync::mpsc::UnboundedSender<GenerationEvent>,
    cancel: &AtomicBool,
) -> GenerationStats {
    let started = Instant::now();
    let mut generated = 0usize;
    let mut finish = FinishReason::Stop;
    let mut send = |piece: &str| -> bool {
        if cancel.load(Ordering::SeqCst)
            || events.send(GenerationEvent::Token(piece.into())).is_err()
        {
            return false;
        }
        generated += 1;
        true
    };
    match reply {
        ScriptedReply::Text(text) => {
            for piece in text.split_inclusive(' ') {
                if !send(piece) {
                    finish = FinishReason::Cancelled;
                    break;
                }
            }
        }
        ScriptedReply::Paced { text, every } => {
            for piece in text.split_inclusive(' ') {
                if !send(piece) {
                    finish = FinishReason::Cancelled;
                    break;
                }
                std::thread::sleep(every);
            }
        }
        ScriptedReply::Endless { every } => loop {
            if !send("and ") {
                finish = FinishReason::Cancelled;
                break;
            }
            std::thread::sleep(every);
        },
        ScriptedReply::Fail(_) => unreachable!("handled by the caller"),
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    GenerationStats {
        prompt_tokens: 0,
        reused_tokens: 0,
        evaluated_tokens: 0,
        generated_tokens: generated,
        dropped_messages: 0,
        prompt_ms: 0.0,
        ttft_ms: 0.0,
        generation_ms: ms,
        finish,
    }
}
