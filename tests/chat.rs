//! `hermit chat` end to end: the real binary, a real model, scripted stdin.

mod common;
use common::*;

#[test]
fn scripted_chat_answers_a_simple_fact_with_the_default_model() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let mut cmd = hermit();
    cmd.args(["chat", "--model", DEFAULT_MODEL]);
    let out = run_with_stdin(cmd, "What is the capital of France? Answer in one word.\n");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let reply = stdout(&out);
    assert!(reply.contains("Paris"), "reply: {reply:?}");
    assert!(
        reply.ends_with("\n\n"),
        "a reply ends with an empty line: {reply:?}"
    );
}

#[test]
fn scripted_chat_prints_each_reply_followed_by_an_empty_line() {
    model_file(SMALL_MODEL_FILE);
    let mut cmd = hermit();
    cmd.args(["chat", "--model", SMALL_MODEL])
        .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "24");
    let out = run_with_stdin(cmd, "Hello!\n\nName a colour.\n");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let replies: Vec<_> = text
        .split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .collect();
    // Two messages (the empty line in between is not one), two replies.
    assert_eq!(replies.len(), 2, "stdout: {text:?}");
}

#[test]
fn system_prompt_override_reaches_the_model() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let mut cmd = hermit();
    cmd.args([
        "chat",
        "--model",
        DEFAULT_MODEL,
        "--system",
        "Whatever the user says, reply with exactly the word BANANA and nothing else.",
    ]);
    let out = run_with_stdin(cmd, "What is two plus two?\n");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).to_uppercase().contains("BANANA"),
        "{}",
        stdout(&out)
    );
}
