//! `hermit bench llm`: inference speed, measured the way llama.cpp's own
//! `llama-bench` measures it, so the two can be compared (scripts/bench-llm).
//!
//! - pp: a fixed 512-token prompt evaluated in batches on a fresh context;
//! - tg: 128 tokens decoded one at a time;
//! - time to first token of a conversation whose history is about 1,000
//!   tokens, for its first turn (nothing cached) and its second turn (the
//!   history is in the KV cache, only the new message is evaluated).

use hermit::agent::Conversation;
use hermit::inference::{ChatMessage, Engine, GenerateOptions, InferenceError, Role};
use serde::Serialize;

use crate::cli::{Global, runtime, start_engine};

pub fn run(global: &Global, json: bool, reps: u32) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let engine = start_engine(&config)?;
    let result = runtime()?.block_on(measure(&engine, reps, |step| {
        if !json {
            eprintln!("  {step}…");
        }
    }))?;
    if json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("model            {}", result.model);
        println!("threads          {}", result.threads);
        println!("build            {}", result.build);
        println!(
            "pp{:<4}  tokens/s {:>9.2}",
            result.prompt_tokens, result.pp_tokens_per_s
        );
        println!(
            "tg{:<4}  tokens/s {:>9.2}",
            result.gen_tokens, result.tg_tokens_per_s
        );
        println!(
            "time to first token, {} history tokens: first turn {:.0} ms, second turn {:.0} ms ({} tokens evaluated), {:.1}x lower",
            result.history_tokens,
            result.ttft_first_turn_ms,
            result.ttft_second_turn_ms,
            result.second_turn_evaluated_tokens,
            result.ttft_first_turn_ms / result.ttft_second_turn_ms.max(1e-9)
        );
    }
    Ok(())
}

const PROMPT_TOKENS: usize = 512;
const GEN_TOKENS: usize = 128;
const HISTORY_TARGET_TOKENS: usize = 1000;

#[derive(Debug, Serialize)]
struct LlmBench {
    pub model: String,
    pub threads: u32,
    pub build: String,
    pub reps: u32,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub pp_tokens_per_s: f64,
    pub tg_tokens_per_s: f64,
    pub history_tokens: usize,
    pub ttft_first_turn_ms: f64,
    pub ttft_second_turn_ms: f64,
    pub second_turn_evaluated_tokens: usize,
}

async fn measure(
    engine: &Engine,
    reps: u32,
    progress: impl Fn(&str),
) -> Result<LlmBench, InferenceError> {
    let reps = reps.max(1);
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 1..=reps {
        progress(&format!(
            "pp{PROMPT_TOKENS} + tg{GEN_TOKENS}, run {rep}/{reps}"
        ));
        let e = engine.clone();
        let r = tokio::task::spawn_blocking(move || e.raw_throughput(PROMPT_TOKENS, GEN_TOKENS))
            .await
            .map_err(|_| InferenceError::EngineStopped)??;
        pp.push(PROMPT_TOKENS as f64 / r.prompt_duration.as_secs_f64());
        tg.push(GEN_TOKENS as f64 / r.gen_duration.as_secs_f64());
    }

    progress("time to first token over a ~1,000-token history");
    let mut conversation = Conversation::new("You are a helpful assistant.");
    for (i, (q, a)) in history_exchanges().into_iter().enumerate() {
        if i * 120 > HISTORY_TARGET_TOKENS {
            break;
        }
        conversation.push(ChatMessage::new(Role::User, q));
        conversation.push(ChatMessage::new(Role::Assistant, a));
    }
    let options = GenerateOptions {
        max_tokens: Some(8),
        ignore_eog: true,
        ..Default::default()
    };
    let (reply, first) = conversation
        .begin_turn_with(
            engine,
            "Summarise our conversation in one sentence.",
            options.clone(),
        )
        .collect()
        .await?;
    conversation.finish_turn(&reply);
    let (_, second) = conversation
        .begin_turn_with(engine, "Thank you. And in one word?", options)
        .collect()
        .await?;
    engine.forget(conversation.id());

    let info = engine.info();
    Ok(LlmBench {
        model: info.name.clone(),
        threads: info.threads,
        build: hermit::inference::build_target(),
        reps,
        prompt_tokens: PROMPT_TOKENS,
        gen_tokens: GEN_TOKENS,
        pp_tokens_per_s: mean(&pp),
        tg_tokens_per_s: mean(&tg),
        history_tokens: first.prompt_tokens,
        ttft_first_turn_ms: first.ttft_ms,
        ttft_second_turn_ms: second.ttft_ms,
        second_turn_evaluated_tokens: second.evaluated_tokens,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A fixed, plausible history (each exchange is roughly 110-130 tokens).
fn history_exchanges() -> Vec<(String, String)> {
    let topics = [
        (
            "the water cycle",
            "evaporation, condensation, precipitation and collection",
        ),
        (
            "how bread rises",
            "yeast fermenting sugars and releasing carbon dioxide",
        ),
        (
            "why the sky is blue",
            "Rayleigh scattering of shorter wavelengths of sunlight",
        ),
        (
            "how a bicycle stays upright",
            "steering geometry, trail and the rider's corrections",
        ),
        (
            "what a compiler does",
            "parsing, analysis, optimisation and code generation",
        ),
        (
            "how tides work",
            "the Moon's and Sun's gravity pulling on the oceans",
        ),
        (
            "how vaccines train immunity",
            "harmless antigens prompting memory cells to form",
        ),
        (
            "why leaves change colour",
            "chlorophyll breaking down and revealing other pigments",
        ),
        (
            "how a refrigerator cools",
            "a refrigerant absorbing heat as it evaporates",
        ),
        (
            "what makes a rainbow",
            "light refracted, reflected and dispersed in droplets",
        ),
    ];
    topics
        .iter()
        .map(|(topic, gist)| {
            (
                format!(
                    "Could you explain {topic} to me in a few sentences? I would like to understand the main idea and one everyday example."
                ),
                format!(
                    "Of course. In short, {topic} comes down to {gist}. The main idea is that a few simple physical or chemical steps repeat reliably, and together they produce the effect we notice. An everyday example is easy to find once you know what to look for: watch closely the next time you meet it, and you will see each of these steps at work, one after another."
                ),
            )
        })
        .collect()
}
