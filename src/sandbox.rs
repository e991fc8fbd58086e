//! The sandbox every tool process runs in.
//!
//! A tool never runs in the daemon's process, and never with privilege,
//! whoever runs Hermit. [`Sandbox::run`] starts the `hermit` binary again as
//! a launcher (`hermit sandbox-exec`, see [`launcher`]), which enters fresh
//! namespaces (PID, IPC, UTS, mount; network unless the tool is granted it;
//! user), forks the process that becomes PID 1 of the new PID namespace,
//! and there, before `execve`: builds a root of its own holding only the
//! system's programs, a few files of `/etc`, the workspace and a private
//! scratch ([`view`]); drops to an unprivileged uid (a root Hermit's tools
//! run as `sandbox.tool_uid`) in a user namespace where root is not mapped;
//! empties every capability set; applies resource limits, Landlock
//! ([`landlock`]) and a seccomp filter ([`seccomp`]: no ptrace, io_uring,
//! keyring, mounts, namespaces, device nodes, host clocks or names; no
//! socket but AF_UNIX unless granted the network). The environment is
//! rebuilt from nothing. From outside, this module adds a cgroup per run
//! where the machine offers one (processes and memory of the whole tree), a
//! wall-clock timeout that kills the whole tree (the PID namespace dies with
//! its PID 1, so `setsid` and `nohup` do not escape), and an output cap.
//!
//! Where the kernel lacks a mechanism, [`Sandbox::run`] refuses to run,
//! unless the owner configured `sandbox.allow_weaker = true`; `hermit doctor`
//! reports what this machine supports ([`probe`]).
//!
//! This module decides nothing about *whether* a tool may run: the policy
//! does. It only makes sure that what runs is contained.

pub(crate) mod landlock;
pub mod launcher;
pub(crate) mod seccomp;
pub(crate) mod view;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Exit code of the launcher when the sandbox could not be set up; its
/// stderr then holds a line starting with [`SETUP_ERROR_PREFIX`].
pub(crate) const SETUP_FAILED: i32 = 125;
pub(crate) const SETUP_ERROR_PREFIX: &str = "hermit-sandbox: ";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox cannot run here: {0}. `hermit doctor` says what this machine lacks")]
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

pub use crate::config::tools::{Limits, Mechanism, ToolUser, Weaker};

/// The environment variable that carries the launcher's request (policy
/// and command) from the daemon: not its command line, which every local
/// user can read in `ps`.
pub(crate) const REQUEST_ENV: &str = "HERMIT_SANDBOX_REQUEST";

/// What the daemon asks the launcher to run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub policy: SandboxPolicy,
    pub argv: Vec<String>,
}

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
    /// The mechanisms it may run without where the kernel lacks them (the
    /// owner's explicit choice, one by one).
    #[serde(default)]
    pub allow_weaker: Weaker,
    /// Extra environment variables (the environment is otherwise empty but
    /// for PATH, HOME, TMPDIR, LANG).
    pub env: Vec<(String, String)>,
    /// Cgroup directories the launcher joins (set by [`Sandbox::run`]).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// Who the tool runs as when Hermit is root (never root itself).
    #[serde(default)]
    pub user: ToolUser,
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
    /// Whether runs get a cgroup of their own (where the machine offers
    /// one). See [`Sandbox::without_cgroups`].
    cgroups: bool,
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
pub(crate) fn set_halted(halted: bool) {
    HALTED.store(halted, Ordering::SeqCst);
}

/// Whether this process holds every tool (see [`set_halted`]).
pub(crate) fn is_halted() -> bool {
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
        Ok(Self::with_launcher(launcher))
    }

    pub fn with_launcher(launcher: impl Into<PathBuf>) -> Self {
        Self {
            launcher: launcher.into(),
            cgroups: true,
        }
    }

    /// No cgroup per run: for a launcher that runs as another user than
    /// this process (the tests' ordinary-user launcher, behind `setpriv`),
    /// which could not join a cgroup made by this one. Such a launcher is
    /// bounded as an ordinary user's is (RLIMIT_NPROC).
    pub fn without_cgroups(mut self) -> Self {
        self.cgroups = false;
        self
    }

    /// The launcher's command for `argv` under a policy: the request in
    /// its environment (never on its command line), nothing else of this
    /// process's environment, a process group of its own (so a kill
    /// reaches the whole tree), and death with this process.
    fn launcher_command(
        &self,
        policy: &SandboxPolicy,
        argv: &[String],
    ) -> Result<Command, SandboxError> {
        let request = serde_json::to_string(&Request {
            policy: policy.clone(),
            argv: argv.to_vec(),
        })
        .map_err(|e| SandboxError::Setup(e.to_string()))?;
        let mut cmd = Command::new(&self.launcher);
        cmd.arg("sandbox-exec")
            .env_clear()
            .env(REQUEST_ENV, request);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// Before a start: a command, every mechanism (or the owner's
    /// `allow_weaker`), the workspace and scratch directories.
    fn prepare(policy: &SandboxPolicy, argv: &[String]) -> Result<(), SandboxError> {
        if argv.is_empty() {
            return Err(SandboxError::Setup("no command".into()));
        }
        for missing in accept_missing(&probe().missing_all(), policy.allow_weaker)? {
            tracing::warn!(%missing, command = %argv[0], "starting without this mechanism (sandbox.allow_weaker)");
        }
        // SAFETY: a getter.
        let root = unsafe { libc::geteuid() } == 0;
        if root && (policy.user.uid == 0 || policy.user.gid == 0) {
            return Err(SandboxError::Setup(
                "sandbox.tool_uid and tool_gid must not be 0: a tool never runs as root".into(),
            ));
        }
        std::fs::create_dir_all(&policy.workspace)?;
        if root {
            give_to(&policy.workspace, policy.user)?;
        }
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
        self.launcher_command(policy, argv)
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
        let cgroup = if self.cgroups {
            ProcessCgroup::create(run_id, &policy.limits)
        } else {
            None
        };
        let mut policy = policy.clone();
        policy.cgroups = cgroup.as_ref().map(ProcessCgroup::dirs).unwrap_or_default();

        let started = Instant::now();
        let mut cmd = self.launcher_command(&policy, argv)?;
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
            cgroup.as_ref().map(|c| c.dir.clone()),
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

/// What of `missing` the owner gave up (`Ok`: each, to warn about), or the
/// first mechanism they did not: each must be given up by name (or all
/// with `true`), so that accepting one never gives up the others.
fn accept_missing(
    missing: &[(Mechanism, String)],
    allow: Weaker,
) -> Result<Vec<String>, SandboxError> {
    let mut accepted = Vec::new();
    for (mechanism, why) in missing {
        if !allow.allows(*mechanism) {
            return Err(SandboxError::Unavailable(format!(
                "{why} (to run without it: sandbox.allow_weaker = [\"{}\"])",
                mechanism.name()
            )));
        }
        accepted.push(why.clone());
    }
    Ok(accepted)
}

/// Makes the workspace the tool user's (a root Hermit's tools run as that
/// user): once, when the directory is not theirs yet, everything in it
/// (links themselves, never what they point at). The daemon's own file
/// tools give what they create to the workspace's owner
/// ([`crate::tools::files`]).
fn give_to(workspace: &Path, user: ToolUser) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::symlink_metadata(workspace)?.uid() == user.uid {
        return Ok(());
    }
    fn walk(p: &Path, user: ToolUser) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(user.uid), Some(user.gid))?;
        let meta = std::fs::symlink_metadata(p)?;
        if meta.is_dir() {
            for e in std::fs::read_dir(p)?.flatten() {
                walk(&e.path(), user)?;
            }
        }
        Ok(())
    }
    // The top last, so that an interrupted walk is done again.
    for e in std::fs::read_dir(workspace)?.flatten() {
        walk(&e.path(), user)?;
    }
    std::os::unix::fs::lchown(workspace, Some(user.uid), Some(user.gid))?;
    // Others (local users) have no business in it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(workspace, std::fs::Permissions::from_mode(0o700))
}

/// The cgroup of one run, bounding the whole tree: its processes (as root,
/// RLIMIT_NPROC does not apply, so this is what contains a fork bomb), its
/// memory (RLIMIT_AS bounds each process; many processes together are
/// bounded here) and its CPU (`limits.cpus` cores at most, so a tool
/// leaves the model its share).
///
/// - cgroup v2 (one hierarchy, as systemd sets up): a child of this
///   process's own cgroup with `pids.max`, `memory.max`,
///   `memory.swap.max` and `cpu.max`. The controllers must be enabled for children (a
///   systemd unit with `Delegate=yes`); where they are not, v2 gives no
///   cgroup and a root Hermit's tools refuse to run (see [`probe`]).
/// - cgroup v1: a child in the `pids` hierarchy (required as root), and one
///   in the `memory` and `cpu` hierarchies where they can be made
///   (`memory.limit_in_bytes`, `cpu.cfs_quota_us`; without them each
///   process is still bounded by RLIMIT_AS and RLIMIT_CPU).
struct ProcessCgroup {
    /// The `pids` (v1) or unified (v2) group: joined, and killed through.
    dir: PathBuf,
    /// The v1 `memory` group, when there is one.
    memory: Option<PathBuf>,
    /// The v1 `cpu` group, when there is one.
    cpu: Option<PathBuf>,
}

const CPU_PERIOD_US: u64 = 100_000;

/// The tree's CPU time per period (`limits.cpus` cores), if bounded.
fn cpu_quota(limits: &Limits) -> Option<u64> {
    (limits.cpus > 0.0).then(|| ((limits.cpus * CPU_PERIOD_US as f64) as u64).max(1_000))
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// This process's own group in a hierarchy, from /proc/self/cgroup: the
/// `0::` line for v2, the line naming `controller` for v1.
fn own_group(controller: Option<&str>) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            None => names.is_empty(),
            Some(c) => names.split(',').any(|n| n == c),
        };
        matches.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// Whether the machine has one cgroup hierarchy (v2) only.
fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

fn make_group(base: PathBuf, name: &str, limits: &[(&str, String)]) -> Option<PathBuf> {
    let dir = base.join(name);
    std::fs::create_dir(&dir).ok()?;
    for (file, value) in limits {
        if std::fs::write(dir.join(file), value).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
    }
    Some(dir)
}

impl ProcessCgroup {
    fn create(run_id: u64, limits: &Limits) -> Option<Self> {
        let name = format!("hermit-{}-{run_id}", std::process::id());
        let memory = (limits.memory_mib << 20).to_string();
        if unified() {
            let base = Path::new(CGROUP_ROOT).join(own_group(None)?);
            let dir = make_group(
                base,
                &name,
                &[
                    ("pids.max", limits.processes.to_string()),
                    ("memory.max", memory),
                ],
            )?;
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            if let Some(quota) = cpu_quota(limits) {
                let _ = std::fs::write(dir.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}"));
            }
            return Some(Self {
                dir,
                memory: None,
                cpu: None,
            });
        }
        let pids = Path::new(CGROUP_ROOT)
            .join("pids")
            .join(own_group(Some("pids")).unwrap_or_default());
        let dir = make_group(pids, &name, &[("pids.max", limits.processes.to_string())])?;
        let memory = own_group(Some("memory")).and_then(|g| {
            let dir = make_group(
                Path::new(CGROUP_ROOT).join("memory").join(g),
                &name,
                &[("memory.limit_in_bytes", memory.clone())],
            )?;
            // Swap too, where swap is accounted.
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &memory);
            Some(dir)
        });
        let cpu = cpu_quota(limits).and_then(|quota| {
            make_group(
                Path::new(CGROUP_ROOT)
                    .join("cpu")
                    .join(own_group(Some("cpu"))?),
                &name,
                &[
                    ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            )
        });
        Some(Self { dir, memory, cpu })
    }

    /// The groups the launcher joins.
    fn dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.dir.clone())
            .chain(self.memory.clone())
            .chain(self.cpu.clone())
            .collect()
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
        for dir in self.dirs() {
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// What this machine's kernel offers the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    /// Landlock ABI version; 0 when unavailable.
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// Unprivileged or root: the user, PID, IPC, UTS, mount and network
    /// namespaces can be made.
    pub namespaces: bool,
    /// The tree's process count can be bounded (cgroup, or RLIMIT_NPROC as non-root).
    pub process_limit: bool,
    pub root: bool,
}

impl Support {
    /// Every mechanism the sandbox needs that is missing, with why.
    pub(crate) fn missing_all(&self) -> Vec<(Mechanism, String)> {
        let mut out = Vec::new();
        if self.landlock_abi < 1 {
            out.push((
                Mechanism::Landlock,
                "the kernel has no Landlock (file-system isolation)".into(),
            ));
        }
        if !self.seccomp {
            out.push((
                Mechanism::Seccomp,
                "the kernel has no seccomp filters".into(),
            ));
        }
        if !self.namespaces {
            out.push((Mechanism::Namespaces, "new user, PID, mount or network namespaces cannot be created (unprivileged user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone or user.max_user_namespaces)".into()));
        }
        if !self.process_limit {
            out.push((
                Mechanism::ProcessLimit,
                "processes cannot be bounded (running as root without a cgroup pids controller)"
                    .into(),
            ));
        }
        out
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
    // A run's cgroup can be made here (then removed at once).
    let cgroup_ok = ProcessCgroup::create(u64::MAX, &Limits::default()).is_some();
    Support {
        landlock_abi: landlock_abi.max(0) as i32,
        seccomp,
        namespaces,
        process_limit: cgroup_ok || !root,
        root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_up_one_mechanism_gives_up_no_other() {
        let missing = vec![
            (Mechanism::Landlock, "no Landlock".to_string()),
            (Mechanism::Seccomp, "no seccomp".to_string()),
        ];
        let only_landlock = Weaker {
            landlock: true,
            ..Weaker::default()
        };
        let err = accept_missing(&missing, only_landlock)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no seccomp") && err.contains("[\"seccomp\"]"),
            "{err}"
        );
        assert!(accept_missing(&missing[..1], only_landlock).is_ok());
        assert_eq!(accept_missing(&missing, Weaker::ALL).unwrap().len(), 2);
        assert!(accept_missing(&[], Weaker::default()).unwrap().is_empty());
    }
}
