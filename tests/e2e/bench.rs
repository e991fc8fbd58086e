//! `hermit bench llm --json` on a real model: the fields the issue asks for,
//! and a second turn that evaluates only its new tokens.

use crate::common::*;

#[test]
fn bench_llm_json_reports_throughput_and_time_to_first_token() {
    model_file(SMALL_MODEL_FILE);
    let out = hermit()
        .args([
            "bench",
            "llm",
            "--json",
            "--reps",
            "1",
            "--model",
            SMALL_MODEL,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["model"], SMALL_MODEL);
    assert!(v["threads"].as_u64().unwrap() >= 1);
    for key in [
        "pp_tokens_per_s",
        "tg_tokens_per_s",
        "ttft_first_turn_ms",
        "ttft_second_turn_ms",
    ] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    let history = v["history_tokens"].as_u64().unwrap();
    assert!(
        (800..=1400).contains(&history),
        "history of {history} tokens"
    );
    assert!(
        v["second_turn_evaluated_tokens"].as_u64().unwrap() < history / 10,
        "{v}"
    );
}
