//! `hermit sandbox-exec`: the launcher, run as a fresh process by
//! [`super::Sandbox::run`], never by a person. Its request (policy and
//! command) comes in the environment ([`super::REQUEST_ENV`]), not on its
//! command line.
//!
//! It joins the run's cgroup and enters new namespaces: PID, IPC, UTS,
//! mount, network unless granted, and (when Hermit is not root) user. It
//! forks; the child is PID 1 of the new PID namespace: it dies with the
//! launcher (PDEATHSIG), and every process of the tree dies with it,
//! `setsid` or not. The child, in order:
//!
//! 1. starts a session of its own (no controlling terminal) and names the
//!    host `hermit-sandbox` (its own UTS namespace);
//! 2. builds its own root ([`super::view`]) and pivots into it;
//! 3. as root: drops to the tool user (`sandbox.tool_uid`), then enters a
//!    user namespace of its own where that uid is the only one mapped (root
//!    is never mapped in);
//! 4. drops every capability: bounding, ambient, inheritable, permitted and
//!    effective sets; sets no_new_privs;
//! 5. applies the resource limits, Landlock and seccomp;
//! 6. `execve`s the command with a clean environment.
//!
//! The launcher waits and exits with the command's status (128 + signal
//! when it was killed). Any failure before `execve` exits with
//! [`super::SETUP_FAILED`] and a line on stderr: a tool never runs
//! half-contained.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::CommandExt;

use super::{Request, SETUP_ERROR_PREFIX, SETUP_FAILED, SandboxPolicy};

fn fail(msg: impl std::fmt::Display) -> ! {
    let _ = writeln!(std::io::stderr(), "{SETUP_ERROR_PREFIX}{msg}");
    std::process::exit(SETUP_FAILED)
}

fn last_os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// The launcher's entry point: the request is read from the environment.
pub fn main() -> ! {
    let request = std::env::var(super::REQUEST_ENV).unwrap_or_default();
    let Request { policy, argv } = match serde_json::from_str(&request) {
        Ok(r) => r,
        Err(e) => fail(format!(
            "bad request in {}: {e} (the launcher is started by Hermit, not by hand)",
            super::REQUEST_ENV
        )),
    };
    if argv.is_empty() {
        fail("no command");
    }
    for cg in &policy.cgroups {
        if let Err(e) = std::fs::write(cg.join("cgroup.procs"), "0") {
            fail(format!("cannot join cgroup {}: {e}", cg.display()));
        }
    }
    // SAFETY: plain syscalls in a single-threaded process.
    let root = unsafe { libc::geteuid() } == 0;
    if let Err(e) = enter_namespaces(root, policy.network)
        && !policy.allow_weaker.namespaces
    {
        fail(e);
    }
    let launcher_pid = std::process::id() as i32;
    let mut lifeline = [-1; 2];
    // SAFETY: pipe2 into a two-element array.
    if unsafe { libc::pipe2(lifeline.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail(last_os_error("pipe"));
    }
    // SAFETY: the launcher is single-threaded, so the child may do anything.
    match unsafe { libc::fork() } {
        -1 => fail(last_os_error("fork")),
        0 => {
            unsafe {
                libc::close(lifeline[1]);
                LIFELINE.store(lifeline[0], std::sync::atomic::Ordering::SeqCst);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != launcher_pid && libc::getppid() != 0 {
                    libc::_exit(SETUP_FAILED);
                }
            }
            contain_and_exec(&policy, &argv, root)
        }
        child => {
            // The write end stays open as long as the launcher lives.
            // SAFETY: closing our copy of the read end.
            unsafe { libc::close(lifeline[0]) };
            std::process::exit(wait_for(child))
        }
    }
}

/// Maps `uid`/`gid` to themselves in the user namespace just entered (the
/// only mapping an unprivileged process may write).
fn map_self(proc_self: &std::path::Path, uid: u32, gid: u32) -> Result<(), String> {
    let write = |file: &str, text: String| {
        std::fs::write(proc_self.join(file), text).map_err(|e| format!("{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{uid} {uid} 1"))?;
    write("gid_map", format!("{gid} {gid} 1"))
}

fn enter_namespaces(root: bool, network: bool) -> Result<(), String> {
    // SAFETY: getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if !root {
        // SAFETY: unshare in a single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(last_os_error("user namespace"));
        }
        map_self(std::path::Path::new("/proc/self"), uid, gid)?;
    }
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNS;
    if !network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: as above.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(last_os_error("PID, IPC, UTS, mount or network namespace"));
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

fn contain_and_exec(policy: &SandboxPolicy, argv: &[String], root: bool) -> ! {
    // A failure is fatal unless the owner gave up that mechanism by name.
    let soft_for = |mechanism: super::Mechanism, r: Result<(), String>| {
        if let Err(e) = r
            && !policy.allow_weaker.allows(mechanism)
        {
            fail(e);
        }
    };
    let soft = |r: Result<(), String>| soft_for(super::Mechanism::Namespaces, r);
    // SAFETY: plain syscalls in the single-threaded child.
    unsafe {
        // A session of its own: no controlling terminal to inject into.
        libc::setsid();
        let name = b"hermit-sandbox";
        libc::sethostname(name.as_ptr().cast(), name.len());
    }
    // Who owns the scratch, as seen from inside.
    let (uid, gid) = if root {
        (policy.user.uid, policy.user.gid)
    } else {
        // SAFETY: getters.
        unsafe { (libc::geteuid(), libc::getegid()) }
    };
    // Kept open across the pivot: where the user namespace's maps are
    // written (the new root has no /proc).
    let proc_self = std::fs::File::open("/proc/self").ok();
    soft(super::view::enter(policy, uid, gid));
    if root {
        drop_to(uid, gid);
        // SAFETY: unshare in a single-threaded process.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            soft(Err(last_os_error("user namespace")));
        } else {
            use std::os::fd::AsRawFd;
            soft(match &proc_self {
                Some(f) => map_self_at(f.as_raw_fd(), uid, gid),
                None => Err("no /proc to write the user namespace's maps".into()),
            });
        }
    }
    drop(proc_self);
    // A change of uid clears the parent-death signal: set it again, and
    // go if the launcher died in between (it would never be signalled).
    // SAFETY: prctl and getppid.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if launcher_gone() {
            libc::_exit(SETUP_FAILED);
        }
    }
    if let Err(e) = drop_capabilities() {
        fail(e);
    }

    let l = &policy.limits;
    set_limit(libc::RLIMIT_CPU, l.cpu_seconds, "RLIMIT_CPU");
    set_limit(libc::RLIMIT_AS, l.memory_mib << 20, "RLIMIT_AS");
    set_limit(libc::RLIMIT_FSIZE, l.file_size_mib << 20, "RLIMIT_FSIZE");
    set_limit(libc::RLIMIT_NOFILE, l.open_files, "RLIMIT_NOFILE");
    set_limit(libc::RLIMIT_CORE, 0, "RLIMIT_CORE");
    set_limit(libc::RLIMIT_RTPRIO, 0, "RLIMIT_RTPRIO");
    set_limit(libc::RLIMIT_MEMLOCK, 0, "RLIMIT_MEMLOCK");
    // Counted per user, so only meaningful for a non-root daemon (whose
    // uid is the tool's); a root daemon's tools share the tool user with
    // each other, and the cgroup bounds each tree.
    if !root {
        set_limit(libc::RLIMIT_NPROC, l.processes, "RLIMIT_NPROC");
    }
    let workspace = CString::new(policy.workspace.as_os_str().as_encoded_bytes())
        .unwrap_or_else(|_| fail("workspace path has a NUL byte"));
    // SAFETY: chdir to a C string we own.
    if unsafe { libc::chdir(workspace.as_ptr()) } != 0 {
        fail(last_os_error("chdir to the workspace"));
    }
    soft_for(
        super::Mechanism::Landlock,
        super::landlock::restrict(policy),
    );
    soft_for(
        super::Mechanism::Seccomp,
        super::seccomp::apply(policy.network),
    );
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

/// Whether the launcher (this PID 1's parent, outside the PID namespace,
/// where `getppid` always reads 0) has gone: the write end of the lifeline
/// pipe it holds is closed then. This process would never get its
/// parent-death signal.
fn launcher_gone() -> bool {
    let fd = LIFELINE.load(std::sync::atomic::Ordering::SeqCst);
    if fd < 0 {
        return false;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one descriptor we own, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLIN) != 0
}

/// The read end of a pipe whose write end only the launcher holds.
static LIFELINE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Writes the maps of the user namespace just entered through a directory
/// descriptor of `/proc/<this process>` opened before the pivot.
fn map_self_at(dirfd: i32, uid: u32, gid: u32) -> Result<(), String> {
    let write = |file: &std::ffi::CStr, text: String| -> Result<(), String> {
        // SAFETY: openat/write/close on a descriptor we own.
        unsafe {
            let fd = libc::openat(dirfd, file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(last_os_error(&file.to_string_lossy()));
            }
            let n = libc::write(fd, text.as_ptr().cast(), text.len());
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            if n != text.len() as isize {
                return Err(format!("{}: {e}", file.to_string_lossy()));
            }
        }
        Ok(())
    };
    write(c"setgroups", "deny".into())?;
    write(c"uid_map", format!("{uid} {uid} 1"))?;
    write(c"gid_map", format!("{gid} {gid} 1"))
}

/// Root becomes the tool user, for good (real, effective and saved ids; no
/// supplementary groups). Never fails softly: a tool never runs as root.
fn drop_to(uid: u32, gid: u32) {
    if uid == 0 || gid == 0 {
        fail("a tool never runs as root (sandbox.tool_uid and tool_gid must not be 0)");
    }
    // SAFETY: credential syscalls in the single-threaded child.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            fail(last_os_error("setgroups"));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            fail(last_os_error("setresgid"));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            fail(last_os_error("setresuid"));
        }
        if libc::geteuid() == 0 || libc::getuid() == 0 || libc::getegid() == 0 {
            fail("still root after dropping privileges");
        }
        // The uid change made /proc/self root's; the user namespace's maps
        // are written there next.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
}

/// Empties every capability set (including inside the user namespace) and
/// sets no_new_privs, so that nothing executed later can gain one (no
/// setuid bit, no file capability).
pub(crate) fn drop_capabilities() -> Result<(), String> {
    // SAFETY: prctl and capset with valid arguments.
    unsafe {
        // Bounding set: every capability this kernel knows (EINVAL past
        // the last one).
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                // Without a user namespace (given up by the owner), an
                // ordinary user may not change the bounding set; holding no
                // capability, with no_new_privs, it cannot gain one either.
                if e.raw_os_error() == Some(libc::EPERM) && libc::geteuid() != 0 {
                    break;
                }
                return Err(format!(
                    "dropping capability {cap} from the bounding set: {e}"
                ));
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return Err(last_os_error("clearing the ambient capabilities"));
        }
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return Err(last_os_error("capset"));
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(last_os_error("no_new_privs"));
        }
    }
    Ok(())
}

/// Whether this process may create the namespaces the launcher needs
/// (tried in a short-lived child; as root, also a user namespace made by
/// an unprivileged uid).
pub(crate) fn can_unshare(root: bool) -> bool {
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let mut flags = libc::CLONE_NEWPID
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWNS
                    | libc::CLONE_NEWUTS
                    | libc::CLONE_NEWIPC;
                if !root {
                    flags |= libc::CLONE_NEWUSER;
                }
                if libc::unshare(flags) != 0 {
                    libc::_exit(1);
                }
                // As root, the tool's user namespace is made after dropping
                // to an unprivileged uid: that must be allowed too.
                let nobody = 65534;
                if root
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(nobody, nobody, nobody) != 0
                        || libc::setresuid(nobody, nobody, nobody) != 0
                        || libc::unshare(libc::CLONE_NEWUSER) != 0)
                {
                    libc::_exit(1);
                }
                libc::_exit(0)
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

/// What a process finds out about its own privilege: `hermit
/// sandbox-selfcheck`, run inside the sandbox by `hermit doctor` and the
/// tests.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SelfCheck {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Capability sets as bit masks (capget: effective, permitted,
    /// inheritable; and the ambient and bounding sets, probed one by one).
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub bounding: u64,
    pub no_new_privs: bool,
    /// 2: a seccomp filter is installed.
    pub seccomp: i32,
    /// Whether stdin is a terminal, and whether the process has one.
    pub controlling_terminal: bool,
    pub hostname: String,
}

impl SelfCheck {
    /// What is wrong, in words: empty when the process holds no privilege.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.uid == 0 || self.euid == 0 {
            p.push(format!(
                "runs as uid 0 (uid {}, euid {})",
                self.uid, self.euid
            ));
        }
        if self.gid == 0 || self.egid == 0 || self.groups.contains(&0) {
            p.push("runs with group 0".into());
        }
        for (name, set) in [
            ("effective", self.effective),
            ("permitted", self.permitted),
            ("inheritable", self.inheritable),
            ("ambient", self.ambient),
            ("bounding", self.bounding),
        ] {
            if set != 0 {
                p.push(format!("holds capabilities in its {name} set ({set:#x})"));
            }
        }
        if !self.no_new_privs {
            p.push("may gain privilege on exec (no_new_privs is not set)".into());
        }
        if self.seccomp != 2 {
            p.push("has no seccomp filter".into());
        }
        if self.controlling_terminal {
            p.push("has a controlling terminal".into());
        }
        p
    }
}

/// Reads this process's own privilege (see [`SelfCheck`]).
pub fn selfcheck() -> SelfCheck {
    // SAFETY: getters and capget with valid buffers.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        let mut groups = vec![0 as libc::gid_t; n.max(0) as usize];
        let n = libc::getgroups(groups.len() as i32, groups.as_mut_ptr());
        groups.truncate(n.max(0) as usize);
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        libc::syscall(libc::SYS_capget, &header, data.as_mut_ptr());
        let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        let mut ambient = 0u64;
        let mut bounding = 0u64;
        for cap in 0..64u64 {
            let a = libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
            let b = libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0);
            if b < 0 {
                break;
            }
            if a > 0 {
                ambient |= 1 << cap;
            }
            if b > 0 {
                bounding |= 1 << cap;
            }
        }
        let tty = libc::open(c"/dev/tty".as_ptr(), libc::O_RDONLY | libc::O_NOCTTY);
        let controlling_terminal = tty >= 0;
        if tty >= 0 {
            libc::close(tty);
        }
        let mut host = [0u8; 256];
        libc::gethostname(host.as_mut_ptr().cast(), host.len());
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        SelfCheck {
            uid: libc::getuid(),
            euid: libc::geteuid(),
            gid: libc::getgid(),
            egid: libc::getegid(),
            groups,
            effective: join(data[0].effective, data[1].effective),
            permitted: join(data[0].permitted, data[1].permitted),
            inheritable: join(data[0].inheritable, data[1].inheritable),
            ambient,
            bounding,
            no_new_privs: libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
            seccomp: libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0),
            controlling_terminal,
            hostname: String::from_utf8_lossy(&host[..end]).into_owned(),
        }
    }
}
