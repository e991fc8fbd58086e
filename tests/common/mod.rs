//! Helpers shared by the integration tests: the real `hermit` binary and the
//! real model files that scripts/setup puts in the model cache.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The model tests of plumbing use (fast); see models/models.toml.
pub const SMALL_MODEL: &str = "smollm2-135m";
pub const SMALL_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The default model, for tests of what the model knows.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b";

pub fn models_dir() -> PathBuf {
    match std::env::var_os("HERMIT_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/hermit/models"),
    }
}

/// The path of a model file from the cache; fails the test (not skips it)
/// when setup has not been run.
pub fn model_file(file: &str) -> PathBuf {
    let p = models_dir().join(file);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup first (it fetches the test models)",
        p.display()
    );
    p
}

/// `hermit` with no HERMIT_* settings from the caller's environment, greedy
/// decoding, and the model cache of the machine.
pub fn hermit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermit"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HERMIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HERMIT_MODELS", models_dir())
        .env("HERMIT_SAMPLING__TEMPERATURE", "0")
        // The evaluated system prompt and tools, kept on disk as in
        // production, shared by every test (and every run: it lives in the
        // target directory); files are named by model, context and tokens.
        // The cache itself has its own test, in a directory of its own.
        .env("HERMIT_INFERENCE__PROMPT_CACHE", "true")
        .env(
            "HERMIT_INFERENCE__PROMPT_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("prompt-cache"),
        )
        // Filling the cache for every tool set at each `hermit up` would
        // cost each daemon test a minute of CPU; one test turns it on.
        .env("HERMIT_INFERENCE__WARM_PROMPT_CACHE", "false")
        // Memory would carry one test's conversations into another's
        // prompts (many share the default data directory); the memory
        // tests turn it on in data directories of their own.
        .env("HERMIT_MEMORY__ENABLED", "false")
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// Runs `cmd` with `stdin` piped in.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hermit starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A data directory of its own, and `hermit` commands run against it.
pub struct DataDir {
    pub root: tempfile::TempDir,
}

impl DataDir {
    pub fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
        }
    }
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    pub fn workspace(&self) -> PathBuf {
        self.data().join("workspace")
    }
    /// `hermit` with `HERMIT_DATA` set to this directory.
    pub fn cmd(&self) -> Command {
        let mut c = hermit();
        c.env("HERMIT_DATA", self.data());
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    /// `hermit tools run NAME --args JSON`.
    pub fn tool(&self, name: &str, args: serde_json::Value) -> Output {
        self.run(&["tools", "run", name, "--args", &args.to_string()])
    }
}

/// The sentence the voice tests speak.
pub const SENTENCE: &str =
    "Please remind me to water the plants tomorrow morning before I leave for work.";

/// Words an espeak-ng voice says, as Ogg/Opus.
pub fn speech(dir: &Path, name: &str, text: &str) -> PathBuf {
    let wav = dir.join(format!("{name}.wav"));
    let ogg = dir.join(format!("{name}.ogg"));
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .output()
        .expect("espeak-ng (scripts/setup installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = Command::new("opusenc")
        .args(["--quiet", "--bitrate", "24"])
        .arg(&wav)
        .arg(&ogg)
        .output()
        .expect("opusenc (scripts/setup installs opus-tools)");
    assert!(out.status.success(), "{}", stderr(&out));
    ogg
}

/// Word error rate: word-level edit distance over the reference's length.
pub fn wer(reference: &str, heard: &str) -> f64 {
    let norm = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    let (r, h) = (norm(reference), norm(heard));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

/// A reminder's time (milliseconds since the epoch) as (date, hour,
/// minute) on this machine, and tomorrow's date: "tomorrow at 10am" is
/// `(tomorrow, 10, 0)`.
pub fn local_time_and_tomorrow(ms: i64) -> ((jiff::civil::Date, i8, i8), jiff::civil::Date) {
    let at = jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::system());
    let tomorrow = jiff::Zoned::now().date().tomorrow().unwrap();
    ((at.date(), at.hour(), at.minute()), tomorrow)
}
