//! Memory end to end: hermit.db, the tantivy index on disk, embeddings
//! from the real all-MiniLM-L6-v2, the real `hermit` binary and, for
//! recall, the real model.

use crate::common::*;

use std::path::PathBuf;

fn embeddings_dir() -> PathBuf {
    let dir = models_dir().join("all-MiniLM-L6-v2");
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        model_file(&format!("all-MiniLM-L6-v2/{f}"));
    }
    dir
}

/// The memory commands with memory on, in this data directory.
fn mem_cmd(d: &DataDir) -> std::process::Command {
    let mut c = d.cmd();
    c.env("HERMIT_MEMORY__ENABLED", "true");
    c
}

/// Told something in one conversation, Hermit recalls it in a new one
/// four days later (the clock moved by HERMIT_CLOCK_OFFSET_SECONDS),
/// through the real model.
#[test]
fn the_model_recalls_what_it_was_told_days_before_in_a_new_conversation() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    embeddings_dir();
    let d = DataDir::new();
    let chat = |offset: i64, message: &str| {
        let mut c = mem_cmd(&d);
        c.args(["chat", "--model", DEFAULT_MODEL])
            .env("HERMIT_AGENT__TOOLS", "false")
            .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "60")
            .env("HERMIT_CLOCK_OFFSET_SECONDS", offset.to_string());
        let out = run_with_stdin(c, &format!("{message}\n"));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    chat(
        0,
        "By the way, my sister Inès has her birthday on the 3rd of May.",
    );
    let four_days = 4 * 86_400;
    // Without memory the model cannot know (it guesses another date).
    let mut c = d.cmd();
    c.args(["chat", "--model", DEFAULT_MODEL])
        .env("HERMIT_AGENT__TOOLS", "false")
        .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "60");
    let out = run_with_stdin(c, "When is Inès's birthday?\n");
    assert!(
        !stdout(&out).contains("May"),
        "without memory: {}",
        stdout(&out)
    );
    let reply = chat(four_days, "When is Inès's birthday?");
    assert!(reply.contains("May"), "reply: {reply:?}");
    assert!(reply.contains('3'), "reply: {reply:?}");

    // The second conversation happened four days after the first.
    let conn = hermit::db::open(&d.data().join("hermit.db")).unwrap();
    let (first, last): (i64, i64) = conn
        .query_row("SELECT min(ts), max(ts) FROM messages", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(last - first >= four_days * 1000, "{first} {last}");
    let conversations: i64 = conn
        .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(conversations, 2);
}

/// With the tools on, the real model keeps a fact it is told to remember
/// with the `remember` tool (its grammar and schema included).
#[test]
fn the_model_remembers_a_fact_with_the_tool() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let d = DataDir::new();
    let mut c = mem_cmd(&d);
    c.args(["chat", "--model", DEFAULT_MODEL])
        .env("HERMIT_MEMORY__EMBEDDINGS", "false");
    let out = run_with_stdin(c, "Remember this fact: my bike is red.\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let conn = hermit::db::open(&d.data().join("hermit.db")).unwrap();
    let facts: Vec<(String, String)> = conn
        .prepare("SELECT principal, body FROM facts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        facts
            .iter()
            .any(|(p, b)| p == "owner" && b.contains("bike")),
        "{facts:?}; reply {}",
        stdout(&out)
    );
}
