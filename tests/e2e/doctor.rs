//! `hermit doctor`: a verdict per check, a live sandbox probe, and a
//! non-zero exit on any critical finding.

use crate::common::*;

use std::os::unix::fs::PermissionsExt;

fn doctor(data: &std::path::Path) -> (bool, serde_json::Value) {
    let out = hermit()
        .env("HERMIT_DATA", data)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["ok"].as_bool(), Some(out.status.success()));
    (out.status.success(), v)
}

fn verdict<'a>(v: &'a serde_json::Value, check: &str) -> &'a str {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check in {v}"))["verdict"]
        .as_str()
        .unwrap()
}

#[test]
fn doctor_passes_here_and_probes_the_sandbox() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let dir = tempfile::tempdir().unwrap();
    let (ok, v) = doctor(&dir.path().join("data"));
    assert!(ok, "{v}");
    assert_eq!(verdict(&v, "sandbox: probe"), "ok");
    assert_eq!(verdict(&v, "sandbox: landlock"), "ok");
    // The speech worker really started, in its sandbox, and listened.
    assert_eq!(verdict(&v, "voice"), "ok", "{v}");
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn a_data_directory_others_can_read_is_critical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, v) = doctor(&data);
    assert!(!ok);
    assert_eq!(verdict(&v, "data directory"), "fail");
}

#[test]
fn doctor_reports_the_stop_switch_and_a_broken_audit_log() {
    model_file("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = hermit()
            .env("HERMIT_DATA", &data)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(&["tools", "run", "time"]);
    run(&["stop-all"]);
    let (ok, v) = doctor(&data);
    assert!(ok, "{v}");
    assert_eq!(verdict(&v, "audit log"), "ok");
    assert_eq!(verdict(&v, "stop switch"), "warn");
    run(&["resume"]);
    let (_, v) = doctor(&data);
    assert_eq!(verdict(&v, "stop switch"), "ok");
    // An entry removed behind SQLite's back is a critical finding.
    let db = rusqlite::Connection::open(data.join("hermit.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 1;")
        .unwrap();
    let (ok, v) = doctor(&data);
    assert!(!ok);
    assert_eq!(verdict(&v, "audit log"), "fail");
}

#[test]
fn a_missing_speech_worker_is_reported() {
    model_file("ggml-base.bin");
    let dir = tempfile::tempdir().unwrap();
    let out = hermit()
        .env("HERMIT_DATA", dir.path().join("data"))
        .env("HERMIT_STT", "/nonexistent/hermit-stt")
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(verdict(&v, "voice"), "fail", "{v}");
    let detail = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "voice")
        .unwrap()["detail"]
        .to_string();
    assert!(detail.contains("not found"), "{detail}");
    // Voice off: nothing to check.
    let out = hermit()
        .env("HERMIT_DATA", dir.path().join("data"))
        .env("HERMIT_STT", "/nonexistent/hermit-stt")
        .env("HERMIT_VOICE__ENABLED", "false")
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(verdict(&v, "voice"), "ok", "{v}");
}
