//! The sandbox every tool process runs in.
//!
//! A tool never runs in the daemon's process. [`Sandbox::run`] starts the
//! `hermit` binary again as a launcher (`hermit sandbox-exec`, see
//! [`launcher`]), which enters fresh namespaces (PID; network unless the tool
//! is granted it; user when not root), forks the process that becomes PID 1 of
//! the new PID namespace, and there, before `execve`, applies resource limits,
//! Landlock ([`landlock`]: read-only system directories, read-write only the
//! workspace and a scratch directory) and a seccomp filter ([`seccomp`]: no
//! ptrace, io_uring, keyring, mount or namespace changes; no socket but
//! AF_UNIX unless granted the network). The environment is rebuilt from
//! nothing. From outside, this module adds a process-count cgroup where the
//! machine offers one, a wall-clock timeout that kills the whole tree (the
//! PID namespace dies with its PID 1, so `setsid` and `nohup` do not escape),
//! and an output cap.
//!
//! Where the kernel lacks a mechanism, [`Sandbox::run`] refuses to run,
//! unless the owner configured `sandbox.allow_weaker = true`; `hermit doctor`
//! reports what this machine supports ([`probe`]).
//!
//! This module decides nothing about *whether* a tool may run: the policy
//! does. It only makes sure that what runs is contained.

pub mod landlock;
pub mod launcher;
pub mod seccomp;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Exit code of the launcher when the sandbox could not be set up; its
/// stderr then holds a line starting with [`SETUP_ERROR_PREFIX`].
pub const SETUP_FAILED: i32 = 125;
pub const SETUP_ERROR_PREFIX: &str = "hermit-sandbox: ";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox cannot run here: {0}. Set sandbox.allow_weaker = true in hermit.toml to run tools with weaker isolation (see `hermit doctor`)"
    )]
    Unavailable(String),
    #[error("the sandbox could not be set up: {0}")]
    Setup(String),
    #[error("cannot start the sandbox launcher {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub use crate::config::tools::Limits;

/// What a sandboxed process may see and do. Sent to the launcher as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// The only directory it may write, besides `scratch`; its working directory.
    pub workspace: PathBuf,
    /// A private temporary directory (`TMPDIR`), emptied after each run.
    pub scratch: PathBuf,
    /// Extra paths it may read (a model file, a skill's folder).
    pub read_only: Vec<PathBuf>,
    /// Network access (no network namespace, sockets allowed).
    pub network: bool,
    pub limits: Limits,
    /// Run even where a mechanism is missing (the owner's explicit choice).
    pub allow_weaker: bool,
    /// Extra environment variables (the environment is otherwise empty but
    /// for PATH, HOME, TMPDIR, LANG).
    pub env: Vec<(String, String)>,
    /// Cgroup directory the launcher joins (set by [`Sandbox::run`]).
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

/// What came out of one sandboxed run.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxOutput {
    /// The exit code, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub output_truncated: bool,
    pub duration_ms: u64,
}

/// Marker appended where output was cut.
pub fn truncation_marker(limit: usize) -> String {
    format!("\n[… output truncated at {limit} bytes by the sandbox]")
}

/// Starts sandboxed processes.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The `hermit` binary that serves as launcher.
    pub launcher: PathBuf,
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The sandboxed processes running now (launcher PID, its cgroup), so
/// that `!stop` can kill them all at once.
static RUNNING: std::sync::Mutex<Vec<(u64, i32, Option<PathBuf>)>> =
    std::sync::Mutex::new(Vec::new());

/// Set while Hermit is stopped: a process that starts anyway (between a
/// check and its launch) is killed as soon as it is registered.
static HALTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Holds (or releases) every sandboxed process of this process.
pub fn set_halted(halted: bool) {
    HALTED.store(halted, Ordering::SeqCst);
}

/// Whether this process holds every tool (see [`set_halted`]).
pub fn is_halted() -> bool {
    HALTED.load(Ordering::SeqCst)
}

/// How many sandboxed process trees this process runs now.
pub fn running_count() -> usize {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Kills every sandboxed process tree this process started and that still
/// runs. Returns how many trees there were.
pub fn kill_all_running() -> usize {
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (_, pid, cgroup) in &running {
        // SAFETY: kill(2) on process groups and pids we started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(*pid, libc::SIGKILL);
        }
        // One pass: the run that owns the cgroup kills what is left once
        // its launcher is gone.
        if let Some(dir) = cgroup {
            kill_cgroup_once(dir);
        }
    }
    running.len()
}

impl Sandbox {
    /// A sandbox whose launcher is the running `hermit` binary.
    pub fn current() -> Result<Self, SandboxError> {
        let launcher = std::env::current_exe()?;
        Ok(Self { launcher })
    }

    pub fn with_launcher(launcher: impl Into<PathBuf>) -> Self {
        Self {
            launcher: launcher.into(),
        }
    }

    /// The launcher's command line for `argv` under a policy in JSON: a
    /// clean environment, a process group of its own (so a kill reaches the
    /// whole tree), and death with this process.
    fn launcher_command(&self, policy_json: &str, argv: &[String]) -> Command {
        let mut cmd = Command::new(&self.launcher);
        cmd.arg("sandbox-exec")
            .arg(policy_json)
            .arg("--")
            .args(argv)
            .env_clear();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Before a start: a command, every mechanism (or the owner's
    /// `allow_weaker`), the workspace and scratch directories.
    fn prepare(policy: &SandboxPolicy, argv: &[String]) -> Result<(), SandboxError> {
        if argv.is_empty() {
            return Err(SandboxError::Setup("no command".into()));
        }
        if let Some(missing) = probe().missing() {
            if !policy.allow_weaker {
                return Err(SandboxError::Unavailable(missing));
            }
            tracing::warn!(%missing, command = %argv[0], "starting with weaker isolation (sandbox.allow_weaker)");
        }
        std::fs::create_dir_all(&policy.workspace)?;
        std::fs::create_dir_all(&policy.scratch)?;
        Ok(())
    }

    /// The command that starts `argv` under `policy` as a long-lived
    /// process (a worker the caller talks to over pipes; see
    /// [`crate::voice`]). Contained like [`Sandbox::run`]'s processes
    /// (namespaces, limits, Landlock, seccomp), but with no cgroup, no
    /// wall-clock limit and no output cap: the caller owns its lifetime and
    /// its standard streams. Refuses where a mechanism is missing, unless
    /// `policy.allow_weaker`.
    pub fn long_lived(
        &self,
        policy: &SandboxPolicy,
        argv: &[String],
    ) -> Result<Command, SandboxError> {
        Self::prepare(policy, argv)?;
        let policy_json =
            serde_json::to_string(policy).map_err(|e| SandboxError::Setup(e.to_string()))?;
        Ok(self.launcher_command(&policy_json, argv))
    }

    /// Runs `argv` under `policy` and waits for it (blocking: call it from a
    /// blocking thread, never from the async runtime).
    pub fn run(
        &self,
        policy: &SandboxPolicy,
        argv: &[String],
    ) -> Result<SandboxOutput, SandboxError> {
        Self::prepare(policy, argv)?;
        let run_id = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let cgroup = ProcessCgroup::create(run_id, policy.limits.processes);
        let mut policy = policy.clone();
        policy.cgroup = cgroup.as_ref().map(|c| c.dir.clone());
        let policy_json =
            serde_json::to_string(&policy).map_err(|e| SandboxError::Setup(e.to_string()))?;

        let started = Instant::now();
        let mut cmd = self.launcher_command(&policy_json, argv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            path: self.launcher.clone(),
            source,
        })?;
        let pid = child.id() as i32;
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push((
            run_id,
            pid,
            policy.cgroup.clone(),
        ));
        struct Deregister(u64);
        impl Drop for Deregister {
            fn drop(&mut self) {
                RUNNING
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(id, _, _)| *id != self.0);
            }
        }
        let _running = Deregister(run_id);
        if HALTED.load(Ordering::SeqCst) {
            kill_tree(pid, None);
        }
        let cap = policy.limits.output_bytes;
        let (over_tx, over_rx) = std::sync::mpsc::channel::<()>();
        let stdout = child
            .stdout
            .take()
            .map(|s| capture(s, cap, over_tx.clone()));
        let stderr = child.stderr.take().map(|s| capture(s, cap, over_tx));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            status
        });

        let deadline = started + Duration::from_secs(policy.limits.timeout_seconds.max(1));
        let mut timed_out = false;
        let mut truncated = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            // Wake on exit, or on output past the cap, or at the deadline.
            match done_rx.recv_timeout((deadline - now).min(Duration::from_millis(50))) {
                Ok(()) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if over_rx.try_recv().is_ok() {
                truncated = true;
                break;
            }
        }
        if timed_out || truncated {
            kill_tree(pid, cgroup.as_ref());
        }
        let status = waiter
            .join()
            .map_err(|_| SandboxError::Setup("waiter thread panicked".into()))??;
        // The launcher is gone; whatever its PID 1 left is killed with the
        // namespace. The cgroup catches anything else.
        if let Some(cg) = &cgroup {
            cg.kill_all();
        }
        let (out, out_cut) = stdout.map(join_capture).unwrap_or_default();
        let (err, err_cut) = stderr.map(join_capture).unwrap_or_default();
        truncated |= out_cut || err_cut;
        let exit_code = {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        };
        if exit_code == SETUP_FAILED
            && let Some(line) = err.lines().find(|l| l.starts_with(SETUP_ERROR_PREFIX))
        {
            return Err(SandboxError::Setup(
                line[SETUP_ERROR_PREFIX.len()..].to_string(),
            ));
        }
        clear_dir(&policy.scratch);
        let finish = |mut s: String, cut: bool| {
            if cut {
                s.push_str(&truncation_marker(cap));
            }
            s
        };
        Ok(SandboxOutput {
            exit_code,
            stdout: finish(out, out_cut),
            stderr: finish(err, err_cut),
            timed_out,
            output_truncated: truncated,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

type Capture = std::thread::JoinHandle<(Vec<u8>, bool)>;

/// Reads a stream, keeping at most `cap` bytes; signals once past it.
fn capture(
    mut stream: impl Read + Send + 'static,
    cap: usize,
    over: std::sync::mpsc::Sender<()>,
) -> Capture {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let mut cut = false;
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room && !cut {
                        cut = true;
                        let _ = over.send(());
                    }
                }
            }
        }
        (kept, cut)
    })
}

fn join_capture(handle: Capture) -> (String, bool) {
    let (bytes, cut) = handle.join().unwrap_or_default();
    (String::from_utf8_lossy(&bytes).into_owned(), cut)
}

fn kill_tree(pid: i32, cgroup: Option<&ProcessCgroup>) {
    // SAFETY: plain kill(2) calls on a process group and a pid we started.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    if let Some(cg) = cgroup {
        cg.kill_all();
    }
}

fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// A process-count cgroup (cgroup v1 `pids` controller) for one run. As
/// root, RLIMIT_NPROC does not apply, so this is what contains a fork bomb.
struct ProcessCgroup {
    dir: PathBuf,
}

const PIDS_V1: &str = "/sys/fs/cgroup/pids";

impl ProcessCgroup {
    fn create(run_id: u64, max: u64) -> Option<Self> {
        let dir = Path::new(PIDS_V1).join(format!("hermit-{}-{run_id}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        if std::fs::write(dir.join("pids.max"), max.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self { dir })
    }

    fn kill_all(&self) {
        kill_cgroup(&self.dir);
    }
}

/// Signals every member of a cgroup once.
fn kill_cgroup_once(dir: &Path) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) on members of our own cgroup.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

/// Kills every member of a cgroup, until it is empty.
fn kill_cgroup(dir: &Path) {
    {
        // Kill until empty: a forking tree may add members while we read.
        for _ in 0..100 {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                // SAFETY: kill(2) on members of our own cgroup.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ProcessCgroup {
    fn drop(&mut self) {
        self.kill_all();
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What this machine's kernel offers the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    /// Landlock ABI version; 0 when unavailable.
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// Unprivileged or root: new PID and network namespaces can be made.
    pub namespaces: bool,
    /// The tree's process count can be bounded (cgroup, or RLIMIT_NPROC as non-root).
    pub process_limit: bool,
    pub root: bool,
}

impl Support {
    /// The first mechanism the sandbox needs that is missing, in words.
    pub fn missing(&self) -> Option<String> {
        if self.landlock_abi < 1 {
            return Some("the kernel has no Landlock (file-system isolation)".into());
        }
        if !self.seccomp {
            return Some("the kernel has no seccomp filters".into());
        }
        if !self.namespaces {
            return Some("new PID and network namespaces cannot be created".into());
        }
        if !self.process_limit {
            return Some(
                "processes cannot be bounded (running as root without a cgroup pids controller)"
                    .into(),
            );
        }
        None
    }
}

/// Probes the kernel, once per process.
pub fn probe() -> Support {
    static SUPPORT: std::sync::OnceLock<Support> = std::sync::OnceLock::new();
    SUPPORT.get_or_init(probe_now).clone()
}

fn probe_now() -> Support {
    // SAFETY: syscalls with null/zero arguments that only report.
    let landlock_abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    let seccomp = unsafe { libc::prctl(libc::PR_GET_SECCOMP) } >= 0;
    let root = unsafe { libc::geteuid() } == 0;
    let namespaces = launcher::can_unshare(root);
    // The pids controller is usable if we may create a child group in it.
    let cgroup_ok = {
        let probe = Path::new(PIDS_V1).join(format!("hermit-probe-{}", std::process::id()));
        let ok = std::fs::create_dir(&probe).is_ok();
        let _ = std::fs::remove_dir(&probe);
        ok
    };
    Support {
        landlock_abi: landlock_abi.max(0) as i32,
        seccomp,
        namespaces,
        process_limit: cgroup_ok || !root,
        root,
    }
}
