//! `hermit sandbox-exec POLICY -- COMMAND...`: the launcher, run as a fresh
//! process by [`super::Sandbox::run`], never by a person.
//!
//! It joins the run's cgroup, enters new namespaces (user when not root; PID
//! and IPC; network unless granted), and forks. The child is PID 1 of the new
//! PID namespace: it dies with the launcher (PDEATHSIG), and every process of
//! the tree dies with it, `setsid` or not. The child applies the resource
//! limits, Landlock and seccomp, then `execve`s the command with a clean
//! environment. The launcher waits and exits with the command's status
//! (128 + signal when it was killed). Any failure before `execve` exits with
//! [`super::SETUP_FAILED`] and a line on stderr: a tool never runs
//! half-contained.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::CommandExt;

use super::{SETUP_ERROR_PREFIX, SETUP_FAILED, SandboxPolicy};

fn fail(msg: impl std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "{SETUP_ERROR_PREFIX}{msg}");
    std::process::exit(SETUP_FAILED)
}

fn last_os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The launcher's entry point.
pub fn main(policy_json: &str, argv: &[String]) -> ! {
    let policy: SandboxPolicy = match serde_json::from_str(policy_json) {
        Ok(p) => p,
        Err(e) => fail(format!("bad policy: {e}")),
    };
    if argv.is_empty() {
        fail("no command");
    }
    if let Some(cg) = &policy.cgroup
        && let Err(e) = std::fs::write(cg.join("cgroup.procs"), "0")
    {
        fail(format!("cannot join cgroup {}: {e}", cg.display()));
    }
    // SAFETY: plain syscalls in a single-threaded process.
    let root = unsafe { libc::geteuid() } == 0;
    if let Err(e) = enter_namespaces(root, policy.network)
        && !policy.allow_weaker
    {
        fail(e);
    }
    let launcher_pid = std::process::id() as i32;
    // SAFETY: the launcher is single-threaded, so the child may do anything.
    match unsafe { libc::fork() } {
        -1 => fail(last_os_error("fork")),
        0 => {
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != launcher_pid && libc::getppid() != 0 {
                    libc::_exit(SETUP_FAILED);
                }
            }
            contain_and_exec(&policy, argv)
        }
        child => std::process::exit(wait_for(child)),
    }
}

fn enter_namespaces(root: bool, network: bool) -> Result<(), String> {
    // SAFETY: getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if !root {
        // SAFETY: unshare in a single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(last_os_error("user namespace"));
        }
        let write = |file: &str, text: String| {
            std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("{file}: {e}"))
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("{uid} {uid} 1"))?;
        write("gid_map", format!("{gid} {gid} 1"))?;
    }
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if !network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: as above.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(last_os_error("PID/network namespace"));
    }
    Ok(())
}

fn wait_for(child: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return SETUP_FAILED;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        SETUP_FAILED
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64, name: &str) {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        fail(last_os_error(name));
    }
}

fn contain_and_exec(policy: &SandboxPolicy, argv: &[String]) -> ! {
    let l = &policy.limits;
    set_limit(libc::RLIMIT_CPU, l.cpu_seconds, "RLIMIT_CPU");
    set_limit(libc::RLIMIT_AS, l.memory_mib << 20, "RLIMIT_AS");
    set_limit(libc::RLIMIT_FSIZE, l.file_size_mib << 20, "RLIMIT_FSIZE");
    set_limit(libc::RLIMIT_NOFILE, l.open_files, "RLIMIT_NOFILE");
    set_limit(libc::RLIMIT_CORE, 0, "RLIMIT_CORE");
    // Counted per user, so only meaningful for a non-root daemon; as root the
    // cgroup bounds the tree.
    // SAFETY: getter.
    if unsafe { libc::geteuid() } != 0 {
        set_limit(libc::RLIMIT_NPROC, l.processes, "RLIMIT_NPROC");
    }
    let workspace = CString::new(policy.workspace.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|_| fail("workspace path has a NUL byte"));
    // SAFETY: chdir to a C string we own.
    if unsafe { libc::chdir(workspace.as_ptr()) } != 0 {
        fail(last_os_error("chdir to the workspace"));
    }
    if let Err(e) = super::landlock::restrict(policy)
        && !policy.allow_weaker
    {
        fail(e);
    }
    if let Err(e) = super::seccomp::apply(policy.network)
        && !policy.allow_weaker
    {
        fail(e);
    }
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &policy.workspace)
        .env("TMPDIR", &policy.scratch)
        .env("LANG", "C.UTF-8");
    for (k, v) in &policy.env {
        cmd.env(k, v);
    }
    let err = cmd.exec();
    // The command itself could not start: like a shell, 127.
    let _ = writeln!(std::io::stderr(), "{}: {err}", argv[0]);
    std::process::exit(127)
}

/// Whether this process may create the namespaces the launcher needs
/// (tried in a short-lived child).
pub fn can_unshare(root: bool) -> bool {
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNET;
                if !root {
                    flags |= libc::CLONE_NEWUSER;
                }
                libc::_exit(if libc::unshare(flags) == 0 { 0 } else { 1 })
            }
            child => {
                let mut status = 0;
                libc::waitpid(child, &mut status, 0) == child
                    && libc::WIFEXITED(status)
                    && libc::WEXITSTATUS(status) == 0
            }
        }
    }
}
