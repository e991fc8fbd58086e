//! Speech to text through `hermit-stt`, the worker that links whisper.cpp
//! (this binary links llama.cpp; the two ggml copies must never meet).
//!
//! The worker is started once, loads its model once, and answers one JSON
//! line per request (see stt/src/main.rs). A job that takes longer than its
//! timeout kills the worker; a worker that dies is started again at the
//! next job. Neither blocks the daemon: every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::config::Config;

/// How long the worker may take to load its model.
const START_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The audio itself: a sentence for the person who sent it.
    #[error("{0}")]
    Audio(String),
    #[error("the speech worker {path} cannot start: {reason}")]
    Start { path: PathBuf, reason: String },
    #[error("the transcription took longer than {0} s; it was stopped")]
    Timeout(u64),
    #[error("the speech worker stopped unexpectedly ({0}); it restarts at the next voice note")]
    Died(String),
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// What the worker heard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    pub language: String,
    pub segments: Vec<Segment>,
    pub audio_seconds: f64,
    pub decode_ms: u64,
    pub transcribe_ms: u64,
}

#[derive(Debug, Clone)]
pub struct VoiceSettings {
    pub worker: PathBuf,
    pub model: PathBuf,
    pub threads: u32,
    pub language: String,
    pub max_seconds: u32,
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl VoiceSettings {
    /// From the configuration; the model must be present and verified.
    pub fn from_config(config: &Config) -> Result<Self, VoiceError> {
        let v = &config.voice;
        let model = crate::app::registry(config).resolve_file(&v.model)?;
        Ok(Self {
            worker: worker_path(),
            model,
            threads: if v.threads == 0 {
                crate::inference::physical_cores()
            } else {
                v.threads
            },
            language: v.language.clone(),
            max_seconds: v.max_seconds,
            max_bytes: u64::from(v.max_mb) * 1024 * 1024,
            timeout: Duration::from_secs(v.timeout_seconds.max(1)),
        })
    }
}

/// `hermit-stt` beside this executable (`HERMIT_STT` overrides).
pub fn worker_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HERMIT_STT") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("hermit-stt")))
        .unwrap_or_else(|| PathBuf::from("hermit-stt"))
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The long-lived worker, started on first use.
pub struct Voice {
    settings: VoiceSettings,
    running: tokio::sync::Mutex<Option<Running>>,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Value,
}

impl Voice {
    pub fn new(settings: VoiceSettings) -> Self {
        Self {
            settings,
            running: tokio::sync::Mutex::new(None),
            next_id: 1.into(),
        }
    }

    async fn start(&self) -> Result<Running, VoiceError> {
        let s = &self.settings;
        let fail = |reason: String| VoiceError::Start {
            path: s.worker.clone(),
            reason,
        };
        let mut cmd = Command::new(&s.worker);
        cmd.arg("--model")
            .arg(&s.model)
            .arg("--threads")
            .arg(s.threads.to_string())
            .arg("--language")
            .arg(&s.language)
            .arg("--max-seconds")
            .arg(s.max_seconds.to_string())
            .arg("--max-bytes")
            .arg(s.max_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // No network for the worker: a network namespace of its own where
        // the kernel allows it (the sandbox's confinement is the next step).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                let _ = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail("not found; `cargo build --release` builds it beside hermit (the workspace's default members)".into())
            } else {
                fail(e.to_string())
            }
        })?;
        let stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| fail("no stdout".into()))?,
        );
        let mut line = String::new();
        match tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await {
            Err(_) => return Err(fail("it did not load its model within 2 minutes".into())),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Ok(Ok(0)) => return Err(fail("it exited at start (see the log above)".into())),
            Ok(Ok(_)) => {}
        }
        let ready: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| fail(format!("bad greeting: {e}")))?;
        if ready["ready"] != true {
            return Err(fail(
                ready["error"].as_str().unwrap_or("not ready").to_string(),
            ));
        }
        tracing::info!(model = %s.model.display(), threads = s.threads, "speech worker ready");
        Ok(Running {
            child,
            stdin,
            stdout,
        })
    }

    /// Transcribes the audio file at `path`.
    pub async fn transcribe(&self, path: &Path) -> Result<Transcript, VoiceError> {
        let mut guard = self.running.lock().await;
        if guard.is_none() {
            *guard = Some(self.start().await?);
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = serde_json::json!({"id": id, "path": path});
        let running = guard.as_mut().expect("started above");
        let exchange = async {
            running
                .stdin
                .write_all(format!("{request}\n").as_bytes())
                .await?;
            running.stdin.flush().await?;
            let mut line = String::new();
            let n = running.stdout.read_line(&mut line).await?;
            Ok::<_, std::io::Error>((n, line))
        };
        let outcome = tokio::time::timeout(self.settings.timeout, exchange).await;
        let (n, line) = match outcome {
            Err(_) => {
                if let Some(mut r) = guard.take() {
                    let _ = r.child.kill().await;
                }
                return Err(VoiceError::Timeout(self.settings.timeout.as_secs()));
            }
            Ok(Err(e)) => {
                let r = guard.take();
                return Err(VoiceError::Died(exit_of(r, &e.to_string()).await));
            }
            Ok(Ok(x)) => x,
        };
        if n == 0 {
            let r = guard.take();
            return Err(VoiceError::Died(exit_of(r, "no answer").await));
        }
        let reply: Reply = serde_json::from_str(&line)
            .map_err(|e| VoiceError::Died(format!("bad answer: {e}")))?;
        if !reply.ok {
            return Err(VoiceError::Audio(
                reply
                    .error
                    .unwrap_or_else(|| "the audio could not be transcribed".into()),
            ));
        }
        serde_json::from_value(reply.rest).map_err(|e| VoiceError::Died(format!("bad answer: {e}")))
    }
}

async fn exit_of(running: Option<Running>, why: &str) -> String {
    match running {
        Some(mut r) => match tokio::time::timeout(Duration::from_secs(2), r.child.wait()).await {
            Ok(Ok(status)) => format!("{why}; {status}"),
            _ => {
                let _ = r.child.kill().await;
                why.to_string()
            }
        },
        None => why.to_string(),
    }
}
