//! Reminders set in words, with the real model: the owner asks "remind
//! me to … tomorrow at 9" and the reminder lands at the right local time.
//! Hermit's clock is moved to a fixed Wednesday morning in Paris so that
//! every expected time is known.

use crate::common::{DEFAULT_MODEL, DataDir, model_file, run_with_stdin, stderr, stdout};

/// Wednesday 25 November 2026, 10:00 in Paris.
const NOW: &str = "2026-11-25T10:00:00+01:00[Europe/Paris]";

/// (what, when as said, expected local time).
const PHRASINGS: [(&str, &str, &str); 16] = [
    ("water the plants", "tomorrow at 9", "2026-11-26 09:00"),
    ("call the bank", "in two hours", "2026-11-25 12:00"),
    ("buy flowers", "next Friday evening", "2026-11-27 18:00"),
    ("take the bins out", "tonight at 8", "2026-11-25 20:00"),
    ("book the garage", "on Monday at 10am", "2026-11-30 10:00"),
    ("call mum", "tomorrow at 6pm", "2026-11-26 18:00"),
    ("renew the passport", "in 3 days", "2026-11-28 10:00"),
    (
        "pay the plumber",
        "on 3 December at 14:00",
        "2026-12-03 14:00",
    ),
    (
        "pick up the parcel",
        "this afternoon at 4",
        "2026-11-25 16:00",
    ),
    ("eat lunch", "at noon", "2026-11-25 12:00"),
    ("go running", "on Saturday morning", "2026-11-28 09:00"),
    (
        "feed the cat",
        "the day after tomorrow at 7:30",
        "2026-11-27 07:30",
    ),
    ("check the oven", "in half an hour", "2026-11-25 10:30"),
    (
        "send the invoice",
        "on the 1st of December at 9am",
        "2026-12-01 09:00",
    ),
    ("leave for the station", "at 17:45", "2026-11-25 17:45"),
    ("phone grandma", "on Sunday at 11", "2026-11-29 11:00"),
];

/// Three of the phrasings, each of a kind the others are not (a relative
/// delay, a weekday, a date), in every run: all three must land. A day word
/// ("tomorrow at 10am") is in the five everyday requests, and the task
/// suite (`hermit bench agent`) has the rest. The whole sweep of 16 is
/// `all_sixteen_phrasings` (`scripts/test --run-ignored only phrasings`);
/// it takes minutes on 2 cores.
#[test]
fn the_model_sets_reminders_from_everyday_phrasings() {
    let three = [1, 4, 7].map(|i| PHRASINGS[i]);
    phrasings(&three, 3);
}

/// Every phrasing: 15 of 16 on this machine (greedy decoding; "on Saturday
/// morning" loses its day). It holds the line at 13: a model that stops
/// calling the tool, or a parser that resolves days wrongly, falls well
/// below (3 of 16 before the parser took the words as said).
#[test]
#[ignore = "the whole sweep takes minutes; run with --run-ignored"]
fn all_sixteen_phrasings() {
    phrasings(&PHRASINGS, 13);
}

/// Asks for each reminder in one `hermit chat` (a new conversation each),
/// and checks that at least `need` of them landed at the right time.
fn phrasings(cases: &[(&str, &str, &str)], need: usize) {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let d = DataDir::new();
    let base: jiff::Zoned = NOW.parse().unwrap();
    let offset = base.timestamp().as_second() - jiff::Timestamp::now().as_second();
    let script: String = cases
        .iter()
        .map(|(what, when, _)| format!("Remind me to {what} {when}.\n/new\n"))
        .collect();
    let mut c = d.cmd();
    c.args(["chat", "--model", DEFAULT_MODEL])
        .env("HERMIT_AGENT__TOOLS", "true")
        .env("HERMIT_AGENT__TIMEZONE", "Europe/Paris")
        // Enough for the tool call (the grammar keeps it short); what
        // the model says after it is not what this test measures.
        .env("HERMIT_INFERENCE__MAX_REPLY_TOKENS", "64")
        .env("HERMIT_CLOCK_OFFSET_SECONDS", offset.to_string());
    let started = std::time::Instant::now();
    let out = run_with_stdin(c, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let elapsed = started.elapsed().as_secs();

    let list = d.run(&["reminders", "list", "--all", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let zone = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    let mut right = 0;
    let mut report = Vec::new();
    for &(what, when, want) in cases {
        // The reminder whose text names the errand (the model may reword
        // the rest).
        let key = what.split(' ').next_back().unwrap();
        let got: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["text"].as_str().unwrap_or_default().contains(key))
            .filter_map(|r| r["next_at"].as_i64())
            .map(|ms| {
                jiff::Timestamp::from_millisecond(ms)
                    .unwrap()
                    .to_zoned(zone.clone())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .collect();
        // The test runs for minutes of real time: "in two hours" is two
        // hours after the message, a few minutes after 10:00.
        let close = |g: &String| {
            let g: jiff::civil::DateTime = g.replace(' ', "T").parse().unwrap();
            let w: jiff::civil::DateTime = want.replace(' ', "T").parse().unwrap();
            let secs = (g - w).total(jiff::Unit::Second).unwrap_or(f64::MAX).abs();
            secs as u64 <= elapsed + 60
        };
        let ok = got.len() == 1 && close(&got[0]);
        right += ok as usize;
        report.push(format!(
            "{} {what} {when:?}: want {want}, got {got:?}",
            if ok { "ok " } else { "BAD" }
        ));
    }
    let report = report.join("\n");
    eprintln!(
        "natural-language times: {right}/{} right in {elapsed} s\n{report}",
        cases.len()
    );
    assert!(
        right >= need,
        "{right}/{} right:\n{report}\n{}",
        cases.len(),
        stdout(&out)
    );
}
