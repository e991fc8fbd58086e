//! The steps of a turn: two plain requests done in order, and the end of
//! a turn once every request is done (with the test double
//! `Engine::scripted` writing the model's calls).

use std::sync::{Arc, Mutex};

use hermit::agent::{Conversation, TurnEvent};
use hermit::inference::Engine;
use hermit::tools::Toolbox;

use crate::agent::{agent, call, results, steps, turn};
use crate::trust::toolbox;

#[test]
fn two_plain_requests_in_one_message_are_both_done_and_a_refusal_gives_way_to_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let tb = toolbox(dir.path(), &[]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    // The model, left to itself, stops after the first call.
    let agent = agent(
        Engine::scripted(steps(
            vec![
                call("calculate", serde_json::json!({"expression": "17 * 23"})),
                call("time", serde_json::json!({})),
            ],
            "I'm sorry, but I can't assist with that.",
            seen.clone(),
        )),
        tb,
    );
    let mut conv = Conversation::new("You are Hermit.");
    let (outcome, events) = turn(
        &agent,
        &mut conv,
        "What is 17 times 23? And what time is it?",
        |_| {},
    );
    let results = results(&events);
    assert_eq!(
        results.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["calculate", "time"],
        "{events:?}"
    );
    let seen = seen.lock().unwrap();
    // The first step and the one after the first result had to be calls.
    assert!(seen[0].force_tool_call && seen[1].force_tool_call);
    assert!(!seen[2].force_tool_call, "then the model may answer");
    // The refusal after the results gave way to the last result.
    assert!(!outcome.reply.contains("can't assist"), "{}", outcome.reply);
    assert!(outcome.reply.contains(&results[1].2), "{}", outcome.reply);
}

/// Sets a reminder as the owner did earlier, in a turn with `taint` (or
/// none).
fn reminder_set_earlier(tb: &Toolbox, text: &str, taint: Option<&str>) {
    let call = hermit::tools::ToolCall {
        name: "remind".into(),
        arguments: serde_json::json!({"text": text, "at": "tomorrow at 10am"}),
    };
    let meta = hermit::tools::CallMeta {
        taint: taint.map(str::to_string),
        ..Default::default()
    };
    assert!(tb.run_checked_in(&call, &meta).unwrap().ok);
}

fn asked(events: &[TurnEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, TurnEvent::Approval { .. }))
}

/// "List my reminders and cancel the dentist one": the listing holds only
/// the owner's own words, so cancelling after it does not ask; once both
/// requests are done the model answers, and a further call it writes is
/// neither run nor shown (the last result is). A reminder set after
/// untrusted text keeps its label: a cancel after listing it asks.
#[test]
fn a_listing_of_the_owner_s_own_reminders_does_not_taint_and_the_turn_ends_when_all_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let tb = toolbox(dir.path(), &[]);
    reminder_set_earlier(&tb, "call mom", None);
    reminder_set_earlier(&tb, "call the dentist", None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let first = agent(
        Engine::scripted(steps(
            vec![
                call("reminders", serde_json::json!({})),
                call("cancel_reminder", serde_json::json!({"about": "dentist"})),
                // One call too many: the small model's habit.
                call("cancel_reminder", serde_json::json!({"id": 1})),
            ],
            "Done.",
            seen.clone(),
        )),
        tb,
    );
    let mut conv = Conversation::new("You are Hermit.");
    conv.defer_approvals = true;
    let (outcome, events) = turn(
        &first,
        &mut conv,
        "List my reminders and cancel the one about the dentist.",
        |_| {},
    );
    assert!(!asked(&events), "{events:?}");
    let results = results(&events);
    assert_eq!(
        results
            .iter()
            .map(|r| (r.0.as_str(), r.1))
            .collect::<Vec<_>>(),
        [("reminders", true), ("cancel_reminder", true)],
        "{events:?}"
    );
    assert!(results[1].2.contains("call the dentist"), "{results:?}");
    // The third generation was to answer: no tools offered, and the call
    // written anyway was dropped.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{events:?}");
    assert!(seen[2].tools.is_none() && !seen[2].force_tool_call);
    assert!(
        !outcome.reply.contains("cancel_reminder\""),
        "{}",
        outcome.reply
    );
    assert!(
        outcome.reply.contains("call the dentist"),
        "{}",
        outcome.reply
    );
    drop(seen);

    // A reminder set after reading a page is untrusted when listed.
    let dir2 = tempfile::tempdir().unwrap();
    let tb2 = toolbox(dir2.path(), &[]);
    reminder_set_earlier(
        &tb2,
        "call the dentist",
        Some("web page https://x.example/"),
    );
    let agent2 = agent(
        Engine::scripted(steps(
            vec![
                call("reminders", serde_json::json!({})),
                call("cancel_reminder", serde_json::json!({"about": "dentist"})),
            ],
            "Done.",
            Arc::new(Mutex::new(Vec::new())),
        )),
        tb2,
    );
    let mut conv2 = Conversation::new("You are Hermit.");
    conv2.defer_approvals = true;
    let (outcome2, events2) = turn(
        &agent2,
        &mut conv2,
        "List my reminders and cancel the one about the dentist.",
        |_| {},
    );
    assert!(asked(&events2), "{events2:?}");
    assert!(outcome2.awaiting.is_some());
}
