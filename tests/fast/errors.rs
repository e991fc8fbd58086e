//! Bad input gets a message that names the file or key and says how to fix
//! it, and a non-zero exit code; never a panic or a backtrace.

use crate::common::*;

use std::process::Output;

fn assert_clean_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn unknown_config_key_names_file_and_key() {
    let f = config_file("[inference]\nmodle = \"x\"\n");
    let out = hermit()
        .arg("--config")
        .arg(f.path())
        .arg("doctor")
        .output()
        .unwrap();
    // doctor reports instead of failing hard; chat fails with exit 2.
    assert!(stdout(&out).contains("modle"), "{}", stdout(&out));
    let out = hermit()
        .arg("--config")
        .arg(f.path())
        .arg("chat")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["modle", &f.path().display().to_string()]);
}

#[test]
fn bad_config_value_names_the_key() {
    let f = config_file("[inference]\ncontext_tokens = \"big\"\n");
    let out = hermit()
        .arg("--config")
        .arg(f.path())
        .arg("chat")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["context_tokens"]);
    let f = config_file("[sampling]\ntop_p = 3.0\n");
    let out = hermit()
        .arg("--config")
        .arg(f.path())
        .arg("chat")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["top_p"]);
}

#[test]
fn malformed_config_file_points_at_the_line() {
    let f = config_file("[inference\nthreads = 2\n");
    let out = hermit()
        .arg("--config")
        .arg(f.path())
        .arg("chat")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["line 1"]);
}

#[test]
fn missing_config_file_is_named() {
    let out = hermit()
        .args(["--config", "/nonexistent/hermit.toml", "chat"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["/nonexistent/hermit.toml"]);
}

#[test]
fn unknown_environment_override_is_named() {
    let out = hermit()
        .env("HERMIT_INFERENCE__THREDS", "2")
        .arg("chat")
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, &["HERMIT_INFERENCE__THREDS", "threds"]);
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let out = hermit()
        .args(["chat", "--model", "gpt-17"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 3, &["gpt-17", SMALL_MODEL]);
}

#[test]
fn missing_model_says_how_to_fetch_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = hermit()
        .env("HERMIT_MODELS", empty.path())
        .args(["chat", "--model", SMALL_MODEL])
        .output()
        .unwrap();
    assert_clean_failure(&out, 3, &["scripts/setup", "hermit models pull"]);
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, "this is a text file, not a model\n").unwrap();
    let out = hermit()
        .arg("chat")
        .arg("--model")
        .arg(&path)
        .output()
        .unwrap();
    assert_clean_failure(&out, 3, &["not a GGUF", &path.display().to_string()]);
}

#[test]
fn a_model_whose_hash_does_not_match_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(SMALL_MODEL_FILE);
    let mut bytes = std::fs::read(model_file(SMALL_MODEL_FILE)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff; // same size, one byte changed
    std::fs::write(&copy, bytes).unwrap();
    let out = hermit()
        .env("HERMIT_MODELS", dir.path())
        .args(["chat", "--model", SMALL_MODEL])
        .output()
        .unwrap();
    assert_clean_failure(
        &out,
        3,
        &["SHA-256", "models.toml", &copy.display().to_string()],
    );
    // And `models list` shows it as bad, not verified.
    let out = hermit()
        .env("HERMIT_MODELS", dir.path())
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("BAD SHA-256"), "{}", stdout(&out));
}

#[test]
fn a_truncated_gguf_fails_to_load_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(model_file(SMALL_MODEL_FILE)).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let out = hermit()
        .arg("chat")
        .arg("--model")
        .arg(&path)
        .output()
        .unwrap();
    assert_clean_failure(&out, 3, &["could not load", &path.display().to_string()]);
}

#[test]
fn models_list_shows_the_test_model_verified() {
    model_file(SMALL_MODEL_FILE);
    let out = hermit()
        .args(["models", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let small = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == SMALL_MODEL)
        .expect("listed");
    assert_eq!(small["status"], "verified");
}
