//! `hermit chat` end to end: the real binary, a real model, scripted stdin.

use crate::common::*;

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
    let out = run_with_stdin(cmd, "Tell me about the weather in Rome.\n");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).to_uppercase().contains("BANANA"),
        "{}",
        stdout(&out)
    );
}

/// `hermit chat` with its own data directory (and so its own workspace).
fn chat_in(data: &std::path::Path, message: &str) -> std::process::Output {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let mut cmd = hermit();
    cmd.args(["chat", "--model", DEFAULT_MODEL])
        .env("HERMIT_DATA", data);
    run_with_stdin(cmd, &format!("{message}\n"))
}

#[test]
fn the_model_lists_the_workspace_with_a_tool_and_names_the_largest_file() {
    let data = tempfile::tempdir().unwrap();
    let ws = data.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("small.txt"), "hello\n").unwrap();
    std::fs::write(ws.join("medium.dat"), vec![0u8; 800]).unwrap();
    std::fs::write(ws.join("report.pdf"), vec![7u8; 5000]).unwrap();
    let out = chat_in(
        data.path(),
        "List the files in my workspace and tell me which one is the largest.",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = stdout(&out);
    // The answer names the largest file, which the model can only know by
    // calling a tool: nothing in the prompt mentions it.
    assert!(reply.contains("report.pdf"), "reply: {reply}");
}

#[test]
fn the_model_creates_a_file_with_a_tool() {
    let data = tempfile::tempdir().unwrap();
    // Writing asks the owner: the next line answers the approval.
    let out = chat_in(
        data.path(),
        "Create a file todo.txt with three items: buy milk, call mum, water the plants.\ny",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let todo = std::fs::read_to_string(data.path().join("workspace/todo.txt"))
        .unwrap_or_else(|_| panic!("todo.txt was not created; reply: {}", stdout(&out)));
    for item in ["milk", "mum", "plants"] {
        assert!(todo.contains(item), "todo.txt: {todo:?}");
    }
}

#[test]
fn a_chat_without_tools_obeys_the_stop_switch() {
    model_file(SMALL_MODEL_FILE);
    let data = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = hermit()
            .env("HERMIT_DATA", data.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let chat = || {
        let mut cmd = hermit();
        cmd.args(["chat", "--model", SMALL_MODEL])
            .env("HERMIT_DATA", data.path())
            .env("HERMIT_AGENT__TOOLS", "false")
            .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "16");
        let out = run_with_stdin(cmd, "Name a colour.\n");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    cli(&["stop-all"]);
    let reply = chat();
    assert_eq!(reply.trim(), "", "a stopped Hermit answered: {reply:?}");
    cli(&["resume"]);
    let reply = chat();
    assert!(!reply.trim().is_empty(), "no reply after resume");
}

/// The five everyday requests the default model once mishandled (an
/// approval asked for "17 times 23", a greeting taken as the answer to it,
/// a reminder explained instead of set, tool-call JSON shown), sent one
/// after the other in one conversation: 391, a greeting, the time, a
/// reminder for tomorrow at 10:00, the workspace's files. No approval is
/// asked and no call-shaped text is shown.
///
/// In the extended sweep (`scripts/test --run-ignored only five`): the
/// same five requests run in every suite through Matrix
/// (`matrix::conversation::five_everyday_requests_in_a_matrix_dm`), and
/// the terminal's own path (a chat with tools, an approval asked and
/// decided at the terminal) is `trust::at_the_terminal_a_request_waits…`.
#[test]
#[ignore = "the same requests run through Matrix in every suite; run with --run-ignored"]
fn five_everyday_requests_at_the_terminal() {
    let data = tempfile::tempdir().unwrap();
    let ws = data.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("shopping.txt"), "milk\neggs\n").unwrap();
    std::fs::write(ws.join("holiday-plan.md"), "Lisbon in May\n").unwrap();
    let out = chat_in(
        data.path(),
        "What is 17 times 23?\nHi! How are you today?\nWhat time is it?\n\
         Remind me to call the dentist tomorrow at 10am.\nWhat files do I have?",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let replies: Vec<&str> = text
        .split("\n\n")
        .filter(|r| !r.trim().is_empty())
        .collect();
    assert_eq!(replies.len(), 5, "stdout: {text}");
    assert!(replies[0].contains("391"), "{}", replies[0]);
    let greeting = replies[1].to_lowercase();
    assert!(
        !greeting.contains("can't assist") && !greeting.contains("cannot assist"),
        "{greeting}"
    );
    let clock = regex::Regex::new(r"\b\d{1,2}:\d{2}\b").unwrap();
    assert!(clock.is_match(replies[2]), "{}", replies[2]);
    assert!(
        replies[4].contains("shopping.txt") || replies[4].contains("holiday-plan.md"),
        "{}",
        replies[4]
    );
    assert!(
        !stderr(&out).contains("Approval needed"),
        "{}",
        stderr(&out)
    );
    for r in &replies {
        assert!(
            !r.contains("\"name\"") && !r.contains("<tool_call>") && !r.contains("<|"),
            "{r}"
        );
    }
    // The reminder is set, for tomorrow at 10:00.
    let list = hermit()
        .args(["reminders", "list", "--json"])
        .env("HERMIT_DATA", data.path())
        .output()
        .unwrap();
    let reminders: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let all = reminders.as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), 1, "{reminders}");
    let r = &all[0];
    assert!(r.to_string().to_lowercase().contains("dentist"), "{r}");
    let (at, tomorrow) = local_time_and_tomorrow(r["next_at"].as_i64().unwrap());
    assert_eq!(at, (tomorrow, 10, 0), "{r}");
}
