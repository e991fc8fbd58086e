//! Speech to text through `hermit-stt`, the worker that links whisper.cpp
//! (this binary links llama.cpp; the two ggml copies must never meet).
//!
//! The worker is started once, loads its model once, and answers one JSON
//! line per request (see stt/src/main.rs). A job that takes longer than its
//! timeout kills the worker; a worker that dies is started again at the
//! next job. Neither blocks the daemon: every wait is bounded.
//!
//! The worker runs in the tools' sandbox ([`crate::sandbox`], as a
//! long-lived process): its own user, PID, IPC and network namespaces (no
//! network at all), the seccomp filter (no socket but AF_UNIX), and
//! Landlock: it may read the system directories, its model, its own binary
//! and the voice inbox (`<data>/voice/inbox`, where the daemon puts each
//! clip for it), and write only an empty working directory; nothing else of
//! the data directory, no secret, no home directory. Audio from elsewhere
//! (`hermit transcribe FILE`) is copied into the inbox first.

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
    /// `<data>/voice`: the inbox the worker reads, its working directory.
    pub dir: PathBuf,
    /// The `hermit` binary that launches sandboxed processes.
    pub launcher: PathBuf,
    /// `sandbox.allow_weaker`: start the worker where a sandbox mechanism
    /// is missing (otherwise voice refuses, like the tools).
    pub allow_weaker: crate::sandbox::Weaker,
    /// Who the worker runs as when Hermit is root (`sandbox.tool_uid`).
    pub tool_user: crate::sandbox::ToolUser,
}

impl VoiceSettings {
    /// From the configuration; the model must be present and verified.
    pub fn from_config(config: &Config) -> Result<Self, VoiceError> {
        let v = &config.voice;
        let model = crate::models::Registry::for_config(config).resolve_file(&v.model)?;
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
            dir: config.data_dir().join("voice"),
            launcher: std::env::current_exe().map_err(|e| VoiceError::Start {
                path: "hermit".into(),
                reason: format!("cannot find this executable: {e}"),
            })?,
            allow_weaker: config.sandbox.allow_weaker,
            tool_user: config.sandbox.tool_user(),
        })
    }
}

/// `hermit-stt` beside this executable (`HERMIT_STT` overrides).
pub(crate) fn worker_path() -> PathBuf {
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

    /// Where the worker reads clips from (created on first use).
    pub(crate) fn inbox(&self) -> PathBuf {
        self.settings.dir.join("inbox")
    }

    /// The sandbox the worker runs in (see the module's comment).
    fn policy(&self, worker: &Path) -> crate::sandbox::SandboxPolicy {
        let s = &self.settings;
        let model_mib = std::fs::metadata(&s.model).map_or(0, |m| m.len() >> 20);
        crate::sandbox::SandboxPolicy {
            workspace: s.dir.join("worker"),
            scratch: s.dir.join("worker-tmp"),
            read_only: vec![s.model.clone(), worker.to_path_buf(), self.inbox()],
            network: false,
            limits: crate::sandbox::Limits {
                // A long-lived worker accumulates CPU time over many clips:
                // each job is bounded by its wall-clock timeout instead.
                cpu_seconds: libc::RLIM_INFINITY,
                // Address space: the model, ten minutes of decoded audio at
                // 48 kHz stereo, whisper's buffers and the threads' stacks
                // and arenas, with room to spare (measured with whisper-base
                // at 2 threads on a 498-second clip: VmPeak 1,017 MiB).
                memory_mib: model_mib * 2 + 2048 + u64::from(s.threads) * 256,
                processes: 64,
                // It writes no file.
                file_size_mib: 1,
                open_files: 64,
                timeout_seconds: 0,
                output_bytes: 0,
                // whisper.cpp keeps nothing in TMPDIR.
                scratch_mib: 16,
                // The worker has no cgroup (it is long-lived): its threads
                // are what bounds its CPU.
                cpus: 0.0,
            },
            allow_weaker: s.allow_weaker,
            env: Vec::new(),
            cgroups: Vec::new(),
            user: s.tool_user,
        }
    }

    async fn start(&self) -> Result<Running, VoiceError> {
        let s = &self.settings;
        let fail = |reason: String| VoiceError::Start {
            path: s.worker.clone(),
            reason,
        };
        // The launcher execs the worker by path inside the sandbox, which
        // sees only what its policy names: an absolute path, checked here
        // so a missing worker is named as such.
        let worker = std::fs::canonicalize(&s.worker).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail("not found; `cargo build --release` builds it beside hermit (the workspace's default members)".into())
            } else {
                fail(e.to_string())
            }
        })?;
        let _ = std::fs::create_dir_all(self.inbox());
        let argv: Vec<String> = vec![
            worker.display().to_string(),
            "--model".into(),
            s.model.display().to_string(),
            "--threads".into(),
            s.threads.to_string(),
            "--language".into(),
            s.language.clone(),
            "--max-seconds".into(),
            s.max_seconds.to_string(),
            "--max-bytes".into(),
            s.max_bytes.to_string(),
        ];
        let cmd = crate::sandbox::Sandbox::with_launcher(&s.launcher)
            .long_lived(&self.policy(&worker), &argv)
            .map_err(|e| fail(e.to_string()))?;
        let mut cmd = Command::from(cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        let stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| fail("no stdout".into()))?,
        );
        // The worker's (and the launcher's) messages go on to this
        // process's standard error; the last one is kept to say why a start
        // failed.
        let last_words = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut forwarding = None;
        if let Some(stderr) = child.stderr.take() {
            let last = last_words.clone();
            forwarding = Some(tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("{line}");
                    if !line.trim().is_empty() {
                        *last.lock().unwrap_or_else(|e| e.into_inner()) = line;
                    }
                }
            }));
        }
        let said = |default: &str| {
            let last = last_words.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let last = last
                .strip_prefix(crate::sandbox::SETUP_ERROR_PREFIX)
                .map(|l| format!("its sandbox could not be set up: {l}"))
                .unwrap_or(last);
            if last.is_empty() {
                default.to_string()
            } else {
                format!("{default}: {last}")
            }
        };
        let mut line = String::new();
        match tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await {
            Err(_) => return Err(fail("it did not load its model within 2 minutes".into())),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Ok(Ok(0)) => {
                // Its standard error closes when it has exited: then the
                // last line it wrote has been taken.
                if let Some(f) = forwarding {
                    let _ = tokio::time::timeout(Duration::from_secs(2), f).await;
                }
                return Err(fail(said("it exited at start")));
            }
            Ok(Ok(_)) => {}
        }
        let ready: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| fail(format!("bad greeting: {e}")))?;
        if ready["ready"] != true {
            return Err(fail(
                ready["error"].as_str().unwrap_or("not ready").to_string(),
            ));
        }
        tracing::info!(model = %s.model.display(), threads = s.threads, "speech worker ready (sandboxed)");
        Ok(Running {
            child,
            stdin,
            stdout,
        })
    }

    /// Starts the worker (if it does not run yet): it loaded its model in
    /// its sandbox and greeted. For `hermit doctor`, without transcribing
    /// (whisper always works on 30 s windows: seconds of CPU for nothing).
    pub async fn ensure_started(&self) -> Result<(), VoiceError> {
        let mut guard = self.running.lock().await;
        if guard.is_none() {
            *guard = Some(self.start().await?);
        }
        Ok(())
    }

    /// Transcribes the audio file at `path`: a file outside the inbox is
    /// copied into it first (the worker can read nothing else), and the
    /// copy removed afterwards.
    /// Refuses, before anything is downloaded, a clip whose declared size
    /// or duration is over the limits (`voice.max_mb`, `voice.max_seconds`).
    /// A sender can understate them: the worker checks again what it gets.
    pub(crate) fn check_declared(
        &self,
        bytes: Option<u64>,
        seconds: Option<f64>,
    ) -> Result<(), VoiceError> {
        let s = &self.settings;
        if let Some(b) = bytes
            && b > s.max_bytes
        {
            return Err(VoiceError::Audio(format!(
                "the audio is too large: {:.1} MB (the limit is {:.0} MB)",
                b as f64 / 1048576.0,
                s.max_bytes as f64 / 1048576.0
            )));
        }
        if let Some(t) = seconds
            && t > f64::from(s.max_seconds)
        {
            return Err(VoiceError::Audio(format!(
                "the audio is too long: {t:.0} s (the limit is {} s)",
                s.max_seconds
            )));
        }
        Ok(())
    }

    pub async fn transcribe(&self, path: &Path) -> Result<Transcript, VoiceError> {
        let inbox = self.inbox();
        if path.starts_with(&inbox) {
            return self.transcribe_in_inbox(path).await;
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| VoiceError::Audio(format!("the file cannot be read ({e})")))?;
        if meta.len() > self.settings.max_bytes {
            return Err(VoiceError::Audio(format!(
                "the audio is too large: {:.1} MB (the limit is {:.0} MB)",
                meta.len() as f64 / 1048576.0,
                self.settings.max_bytes as f64 / 1048576.0
            )));
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("audio");
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = std::fs::create_dir_all(&inbox);
        let copy = inbox.join(format!("copy-{}-{id}.{ext}", std::process::id()));
        std::fs::copy(path, &copy)
            .map_err(|e| VoiceError::Audio(format!("the file cannot be read ({e})")))?;
        let heard = self.transcribe_in_inbox(&copy).await;
        let _ = std::fs::remove_file(&copy);
        heard
    }

    /// A root Hermit's worker runs as the tool user (see
    /// [`crate::sandbox`]): the inbox and each clip are given to it, and stay
    /// private to it (the daemon, as root, reads them anyway).
    fn give_to_worker(&self, path: &Path) {
        // SAFETY: a getter.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let u = self.settings.tool_user;
        for p in [Some(self.inbox().as_path()), Some(path)]
            .into_iter()
            .flatten()
        {
            if let Err(e) = std::os::unix::fs::lchown(p, Some(u.uid), Some(u.gid)) {
                tracing::warn!(path = %p.display(), error = %e, "cannot give a clip to the speech worker's user");
            }
        }
    }

    async fn transcribe_in_inbox(&self, path: &Path) -> Result<Transcript, VoiceError> {
        self.give_to_worker(path);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_over_its_declared_limits_is_refused_before_download() {
        let voice = Voice::new(VoiceSettings {
            worker: "hermit-stt".into(),
            model: "model.bin".into(),
            threads: 1,
            language: "auto".into(),
            max_seconds: 600,
            max_bytes: 20 << 20,
            timeout: Duration::from_secs(60),
            dir: "/nonexistent".into(),
            launcher: "hermit".into(),
            allow_weaker: Default::default(),
            tool_user: Default::default(),
        });
        assert!(voice.check_declared(Some(1 << 20), Some(30.0)).is_ok());
        assert!(voice.check_declared(None, None).is_ok());
        let big = voice.check_declared(Some(200 << 20), None).unwrap_err();
        assert!(big.to_string().contains("too large"), "{big}");
        let long = voice.check_declared(None, Some(3600.0)).unwrap_err();
        assert!(long.to_string().contains("too long"), "{long}");
    }
}
