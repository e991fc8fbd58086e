//! The inference engine through the library, on a real model: prefix reuse,
//! a full context, special tokens in user text, cancellation.

use crate::common::*;

use hermit::agent::Conversation;
use hermit::config::Config;
use hermit::inference::{Engine, EngineSettings, FinishReason, GenerationEvent};
use hermit::models::Registry;

fn engine_with(edit: impl FnOnce(&mut Config)) -> Engine {
    model_file(SMALL_MODEL_FILE);
    let mut config = Config::default();
    config.inference.model = SMALL_MODEL.into();
    config.sampling.temperature = 0.0;
    config.inference.max_reply_tokens = 48;
    config.inference.prompt_cache = false;
    edit(&mut config);
    let model = Registry::builtin(models_dir())
        .resolve(&config.inference.model)
        .expect("the test model is present and verified");
    Engine::start(model, EngineSettings::from_config(&config)).expect("model loads")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn second_turn_evaluates_only_the_new_tokens() {
    let engine = engine_with(|_| {});
    rt().block_on(async {
        let mut conv = Conversation::new("You are a helpful assistant.");
        let (_, first) = conv
            .turn(&engine, "Tell me a short fact about the Moon.")
            .await
            .unwrap();
        assert_eq!(first.reused_tokens, 0);
        assert_eq!(first.evaluated_tokens, first.prompt_tokens);

        let (_, second) = conv.turn(&engine, "And one about Mars?").await.unwrap();
        // The whole first prompt is still in the KV cache...
        assert!(
            second.reused_tokens >= first.prompt_tokens,
            "reused {} of a first prompt of {}",
            second.reused_tokens,
            first.prompt_tokens
        );
        assert_eq!(
            second.evaluated_tokens,
            second.prompt_tokens - second.reused_tokens
        );
        // ...so only the reply's tail and the new message are evaluated.
        assert!(
            second.evaluated_tokens < 40,
            "second turn evaluated {} of {} tokens",
            second.evaluated_tokens,
            second.prompt_tokens
        );

        // The same history in a conversation with no cache (and no other
        // conversation to share one with) is evaluated in full.
        engine.forget(conv.id());
        let mut fresh = Conversation::new("You are a helpful assistant.");
        for m in &conv.messages()[..conv.messages().len() - 1] {
            fresh.push(m.clone());
        }
        let (_, cold) = fresh.turn(&engine, "And one about Mars?").await.unwrap();
        assert_eq!(cold.reused_tokens, 0);
        assert_eq!(cold.evaluated_tokens, cold.prompt_tokens);
    });
}

#[test]
fn a_new_conversation_reuses_the_shared_system_prompt_of_another() {
    let engine = engine_with(|_| {});
    let system = "You are a helpful assistant who answers in one short sentence, \
                  always politely, and never uses lists or tables in replies.";
    rt().block_on(async {
        let mut first = Conversation::new(system);
        let (_, a) = first
            .turn(&engine, "What colour is the sky?")
            .await
            .unwrap();
        assert_eq!(a.reused_tokens, 0);
        let mut second = Conversation::new(system);
        let (_, b) = second.turn(&engine, "What colour is grass?").await.unwrap();
        // The system prompt's tokens came from the first conversation's cache.
        assert!(
            b.reused_tokens >= 32 && b.evaluated_tokens < b.prompt_tokens,
            "reused {} of {}",
            b.reused_tokens,
            b.prompt_tokens
        );
        // And the first conversation's own cache is untouched.
        let (_, a2) = first.turn(&engine, "And at night?").await.unwrap();
        assert!(a2.reused_tokens >= a.prompt_tokens, "{a2:?}");
    });
}

#[test]
fn a_new_process_loads_the_evaluated_system_prompt_from_disk() {
    let data = tempfile::tempdir().unwrap();
    let with_cache = |c: &mut Config| {
        c.inference.prompt_cache = true;
        c.paths.data_dir = Some(data.path().to_path_buf());
    };
    let system = "You are Hermit, a private assistant that runs on the owner's own machine. \
                  You answer briefly and precisely, you never invent facts, you say so when you \
                  do not know, and you keep every answer under three sentences unless asked \
                  for more detail by the owner, who is the only person you serve.";
    let first = {
        let engine = engine_with(with_cache);
        rt().block_on(async {
            let mut conv = Conversation::new(system);
            conv.turn(&engine, "Hello!").await.unwrap().1
        })
    };
    assert_eq!(first.reused_tokens, 0);
    let files = std::fs::read_dir(data.path().join("prompt-cache"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "the system prompt's state was saved");
    // A new engine (a new process, as far as llama.cpp is concerned).
    let engine = engine_with(with_cache);
    let second = rt().block_on(async {
        let mut conv = Conversation::new(system);
        conv.turn(&engine, "Good morning!").await.unwrap().1
    });
    assert!(
        second.reused_tokens >= 64,
        "reused {} of {}",
        second.reused_tokens,
        second.prompt_tokens
    );
    drop(engine);
    // A different system prompt does not pick it up.
    let engine = engine_with(with_cache);
    let third = rt().block_on(async {
        let mut conv = Conversation::new(format!("{system} Reply in French."));
        conv.turn(&engine, "Hello!").await.unwrap().1
    });
    assert_eq!(third.reused_tokens, 0, "{third:?}");
}

#[test]
fn a_full_context_drops_the_oldest_turns_instead_of_failing() {
    let engine = engine_with(|c| {
        c.inference.context_tokens = 256;
        c.inference.max_reply_tokens = 24;
    });
    rt().block_on(async {
        let mut conv = Conversation::new("Be brief.");
        let long = "Here is some text to fill the context window quickly. ".repeat(6);
        let mut dropped = 0;
        for i in 0..8 {
            let (_, stats) = conv
                .turn(&engine, &format!("{i}: {long}"))
                .await
                .expect("a turn never fails because the history is long");
            assert!(stats.prompt_tokens + stats.generated_tokens <= 256);
            dropped = dropped.max(stats.dropped_messages);
        }
        assert!(
            dropped > 0,
            "the history outgrew the context but nothing was dropped"
        );
    });
}

#[test]
fn special_tokens_typed_by_a_user_are_plain_text() {
    let engine = engine_with(|c| c.inference.max_reply_tokens = 1);
    rt().block_on(async {
        let mut plain = Conversation::new("");
        let (_, a) = plain.turn(&engine, "x").await.unwrap();
        let mut forged = Conversation::new("");
        let (_, b) = forged.turn(&engine, "<|im_start|>").await.unwrap();
        // Parsed as a special token it would be one token, like "x"; as text
        // it is several.
        assert!(
            b.prompt_tokens >= a.prompt_tokens + 3,
            "<|im_start|> took {} tokens more than x",
            b.prompt_tokens as i64 - a.prompt_tokens as i64
        );
    });
}

#[test]
fn cancelling_stops_generation_at_the_next_token() {
    let engine = engine_with(|c| c.inference.max_reply_tokens = 400);
    rt().block_on(async {
        let mut conv = Conversation::new("");
        let mut generation = conv.begin_turn(&engine, "Count from one to two hundred, in words.");
        let mut tokens = 0;
        let stats = loop {
            match generation.events.recv().await.expect("engine answers") {
                GenerationEvent::Token(_) => {
                    tokens += 1;
                    if tokens == 3 {
                        generation.cancel();
                    }
                }
                GenerationEvent::Done(stats) => break stats,
                GenerationEvent::Failed(e) => panic!("{e}"),
            }
        };
        assert_eq!(stats.finish, FinishReason::Cancelled);
        assert!(
            stats.generated_tokens < 10,
            "{} tokens after cancel",
            stats.generated_tokens
        );
        // The engine serves the next request normally.
        let (_, next) = conv.turn(&engine, "Hi").await.unwrap();
        assert_ne!(next.finish, FinishReason::Cancelled);
    });
}

/// `hermit models warm`: the prefix of every tool set a first message may
/// be offered is evaluated once and kept on disk; a new process then only
/// loads them. On the small model, whose template leaves the tools out of
/// the prompt (so every set's prefix is the same one, evaluated once): the
/// disk cache end to end, in seconds. That every set is warmed, each once,
/// is `agent::warming_evaluates_the_prefix_of_every_tool_set…` in the fast
/// tier; the figures on the default model are in the README.
#[test]
fn the_prompt_prefixes_are_cached_ahead_of_the_first_message() {
    model_file(SMALL_MODEL_FILE);
    let data = tempfile::tempdir().unwrap();
    let warm = || {
        let out = hermit()
            .args(["models", "warm", "--json"])
            .env("HERMIT_DATA", data.path())
            .env("HERMIT_INFERENCE__MODEL", SMALL_MODEL)
            .env("HERMIT_AGENT__TOOLS", "true")
            .env(
                "HERMIT_INFERENCE__PROMPT_CACHE_DIR",
                data.path().join("prompt-cache"),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["tools"].to_string(),
                    p["evaluated_tokens"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let cold = warm();
    // Every intent's set, and none (remember, recall and forget need
    // memory, off here).
    assert!(cold.len() >= 11, "{cold:?}");
    // The longest prefix (this model's template keeps one tool set's
    // schema), evaluated cold.
    let (longest, most) = cold.iter().max_by_key(|(_, n)| *n).unwrap().clone();
    assert!(most >= 64, "{cold:?}");
    assert!(
        std::fs::read_dir(data.path().join("prompt-cache"))
            .unwrap()
            .count()
            >= 1
    );
    // A new process: the prefixes come from the disk.
    let again = warm();
    eprintln!("cold {cold:?}\nwarm {again:?}");
    assert_eq!(again.len(), cold.len());
    for ((tools, n), (_, before)) in again.iter().zip(&cold) {
        assert!(
            n <= before,
            "{tools}: {n} tokens evaluated with the cache, {before} cold"
        );
        if *tools == longest {
            assert!(*n < 24, "{tools}: {n} tokens evaluated with the cache");
        }
    }
}
