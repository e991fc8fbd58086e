//! No privilege inside, a narrow view: every case runs twice, with Hermit
//! (the launcher) as root and as an ordinary user (uid 4242, through
//! `setpriv`, whose data directory is its own), and each asserts on the
//! host that the effect did not happen: a mode, a time, a node, a socket's
//! listener, the hostname, the clock.
//!
//! Every probe is harmless if it succeeds: modes and times are set to
//! values the test then checks for, the clock to its own current value,
//! the hostname to what it is.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use hermit::sandbox::{Sandbox, SandboxOutput, SandboxPolicy};

const USER: u32 = 4242;

#[derive(Clone, Copy, Debug)]
enum As {
    Root,
    User,
}

struct Case {
    root: tempfile::TempDir,
    sandbox: Sandbox,
    policy: SandboxPolicy,
    /// Hermit's own data, beside the workspace (as `<data>/secrets`).
    data: PathBuf,
}

/// A data directory with a workspace and a secret, and a launcher that
/// runs as `who`.
fn case(who: As) -> Case {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let secrets = data.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = secrets.join("matrix_password");
    std::fs::write(&secret, "hunter2").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let launcher = match who {
        As::Root => PathBuf::from(env!("CARGO_BIN_EXE_hermit")),
        As::User => {
            // The binary where uid 4242 can reach it (a hard link, or a copy
            // across file systems), and a wrapper that drops to it: the
            // launcher then runs as an ordinary user, as a non-root Hermit's
            // does.
            let bin = root.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            let exe = bin.join("hermit");
            if std::fs::hard_link(env!("CARGO_BIN_EXE_hermit"), &exe).is_err() {
                std::fs::copy(env!("CARGO_BIN_EXE_hermit"), &exe).unwrap();
            }
            let wrapper = bin.join("as-user");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec /usr/bin/setpriv --reuid={USER} --regid={USER} --clear-groups -- {} \"$@\"\n",
                    exe.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
            wrapper
        }
    };
    let policy = SandboxPolicy {
        read_only: vec![PathBuf::from(env!("CARGO_BIN_EXE_hermit"))],
        ..crate::sandbox::policy_in(&data)
    };
    std::fs::create_dir_all(&policy.workspace).unwrap();
    if let As::User = who {
        // Everything of this Hermit is the user's own, as in a real install.
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{USER}:{USER}")])
            .arg(root.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let sandbox = match who {
        As::Root => Sandbox::with_launcher(launcher),
        As::User => Sandbox::with_launcher(launcher).without_cgroups(),
    };
    let mut c = Case {
        root,
        sandbox,
        policy,
        data,
    };
    if let As::User = who {
        // The self-check runs the copy the user can reach.
        c.policy.read_only = vec![c.root.path().join("bin/hermit")];
        // This test process is root, and so gives the workspace to the
        // tool user before each run: here, the user the launcher runs as.
        c.policy.user = hermit::sandbox::ToolUser {
            uid: USER,
            gid: USER,
        };
    }
    c
}

impl Case {
    fn sh(&self, script: &str) -> SandboxOutput {
        self.sandbox
            .run(
                &self.policy,
                &["/bin/bash".into(), "-c".into(), script.into()],
            )
            .expect("the sandbox runs")
    }

    fn secret(&self) -> PathBuf {
        self.data.join("secrets/matrix_password")
    }
}

fn both(test: impl Fn(As)) {
    for who in [As::Root, As::User] {
        test(who);
    }
}

#[test]
fn a_tool_holds_no_privilege_whoever_runs_hermit() {
    both(|who| {
        let c = case(who);
        let exe = c.policy.read_only[0].display().to_string();
        let out = c
            .sandbox
            .run(&c.policy, &[exe, "sandbox-selfcheck".into()])
            .unwrap();
        let check: hermit::sandbox::launcher::SelfCheck = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{who:?}: {e}: {out:?}"));
        assert_eq!(check.problems(), Vec::<String>::new(), "{who:?}: {check:?}");
        assert_ne!(check.uid, 0);
        match who {
            As::Root => assert_eq!(check.uid, 65534, "a root Hermit's tools run as nobody"),
            As::User => assert_eq!(check.uid, USER, "a user's Hermit's tools run as that user"),
        }
        assert_eq!(check.hostname, "hermit-sandbox", "its own UTS namespace");
    });
}

#[test]
fn system_secrets_are_not_in_view() {
    both(|who| {
        let c = case(who);
        let out = c.sh(
            "cat /etc/shadow /etc/gshadow /etc/ssh/ssh_host_ed25519_key /etc/ssl/private/* 2>&1; \
             ls /root /home /run /var /proc /sys 2>&1; cat /etc/passwd",
        );
        assert!(
            !out.stdout.contains("root:*:") && !out.stdout.contains("root:!"),
            "{who:?}: {out:?}"
        );
        assert!(!out.stdout.contains("PRIVATE KEY"), "{who:?}: {out:?}");
        // passwd names only root, nobody and the tool's own user.
        assert!(out.stdout.contains("nobody:x:65534"), "{who:?}: {out:?}");
        assert!(!out.stdout.contains("daemon:x:1:"), "{who:?}: {out:?}");
        // The data directory and its secrets are not there at all.
        let out = c.sh(&format!(
            "cat {0}; ls {1}",
            c.secret().display(),
            c.data.join("secrets").display()
        ));
        assert!(!out.stdout.contains("hunter2"), "{who:?}: {out:?}");
    });
}

#[test]
fn no_device_node_can_be_made() {
    both(|who| {
        let c = case(who);
        let out = c.sh("mknod null-copy c 1 3; mknod disk b 8 0; python3 -c 'import os; os.mknod(\"n2\", 0o20600, os.makedev(1, 3))'; ls -la");
        for name in ["null-copy", "disk", "n2"] {
            assert!(
                !c.policy.workspace.join(name).exists(),
                "{who:?}: a device node {name} was made: {out:?}"
            );
        }
        // A FIFO is not a device: still allowed.
        let out = c.sh("mkfifo pipe && echo made");
        assert_eq!(out.stdout.trim(), "made", "{who:?}: {out:?}");
    });
}

#[test]
fn metadata_outside_the_workspace_cannot_change() {
    both(|who| {
        let c = case(who);
        let secret = c.secret();
        let secrets = c.data.join("secrets");
        let before = [
            std::fs::metadata(&secret).unwrap(),
            std::fs::metadata(&secrets).unwrap(),
            std::fs::metadata("/usr/bin/id").unwrap(),
            std::fs::metadata("/etc/passwd").unwrap(),
        ];
        let out = c.sh(&format!(
            "for f in {s} {d} /usr/bin/id /etc/passwd; do chmod 4777 $f; touch -d 2001-01-01 $f; chown 0:0 $f; done; \
             chmod 755 {d}; chmod 644 {s}; true",
            s = secret.display(),
            d = secrets.display()
        ));
        let after = [
            std::fs::metadata(&secret).unwrap(),
            std::fs::metadata(&secrets).unwrap(),
            std::fs::metadata("/usr/bin/id").unwrap(),
            std::fs::metadata("/etc/passwd").unwrap(),
        ];
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.mode(), a.mode(), "{who:?}: a mode changed: {out:?}");
            assert_eq!(b.mtime(), a.mtime(), "{who:?}: a time changed: {out:?}");
            assert_eq!(
                (b.uid(), b.gid()),
                (a.uid(), a.gid()),
                "{who:?}: an owner changed"
            );
        }
        // Inside the workspace, modes are the tool's to set.
        let out = c.sh("echo '#!/bin/sh' > run.sh && chmod 755 run.sh && stat -c %a run.sh");
        assert_eq!(out.stdout.trim(), "755", "{who:?}: {out:?}");
    });
}

#[test]
fn pathname_unix_sockets_outside_are_out_of_reach() {
    both(|who| {
        let c = case(who);
        // Listeners outside: in the data directory and right under /tmp.
        let in_data = c.data.join("control.sock");
        let in_tmp = std::env::temp_dir().join(format!("hermit-test-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&in_tmp);
        let listeners = [
            std::os::unix::net::UnixListener::bind(&in_data).unwrap(),
            std::os::unix::net::UnixListener::bind(&in_tmp).unwrap(),
        ];
        for l in &listeners {
            l.set_nonblocking(true).unwrap();
        }
        if let As::User = who {
            for p in [&in_data, &in_tmp] {
                std::os::unix::fs::chown(p, Some(USER), Some(USER)).unwrap();
            }
        }
        let out = c.sh(&format!(
            "for p in {} {}; do python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"CONNECTED\")' $p; done",
            in_data.display(),
            in_tmp.display()
        ));
        let _ = std::fs::remove_file(&in_tmp);
        assert!(!out.stdout.contains("CONNECTED"), "{who:?}: {out:?}");
        for l in &listeners {
            assert!(
                l.accept().is_err(),
                "{who:?}: a connection arrived: {out:?}"
            );
        }
    });
}

#[test]
fn host_state_is_out_of_reach() {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    both(|who| {
        let c = case(who);
        // Each probe would change nothing if it worked: the hostname to
        // itself, the clock to its own time.
        let out = c.sh(&format!(
            "hostname {h}; date -s \"$(date)\" >/dev/null && echo CLOCK-SET; \
             python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print(\"sethostname\", l.sethostname(b\"{h}\", {n}), ctypes.get_errno())'; \
             dmesg >/dev/null 2>&1 && echo KERNEL-LOG; \
             python3 -c 'import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)); print(\"REALTIME\")'; \
             ls -la /dev; true",
            h = hostname.trim(),
            n = hostname.trim().len()
        ));
        for bad in ["CLOCK-SET", "KERNEL-LOG", "REALTIME"] {
            assert!(!out.stdout.contains(bad), "{who:?}: {out:?}");
        }
        assert!(
            out.stdout.contains("sethostname -1 1"),
            "{who:?}: sethostname is denied: {out:?}"
        );
        assert!(
            !out.stdout.contains(" tty"),
            "{who:?}: a terminal is in view: {out:?}"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
            hostname
        );
    });
}

#[test]
fn each_run_has_a_private_scratch() {
    both(|who| {
        let c = case(who);
        let out = c.sh("echo mine > $TMPDIR/left && echo mine > /tmp/left2; ls $TMPDIR");
        assert!(out.stdout.contains("left"), "{who:?}: {out:?}");
        let out = c.sh("ls -A $TMPDIR; cat /tmp/left2 2>/dev/null; true");
        assert_eq!(
            out.stdout.trim(),
            "",
            "{who:?}: a run saw the last one's scratch: {out:?}"
        );
        assert!(!c.policy.scratch.join("left").exists());
    });
}

#[test]
fn the_launchers_command_line_carries_no_command_or_policy() {
    let c = case(As::Root);
    let marker = "hermit-argv-marker-31337";
    let sandbox = c.sandbox.clone();
    let policy = c.policy.clone();
    let runner = std::thread::spawn(move || {
        sandbox.run(
            &policy,
            &[
                "/bin/bash".into(),
                "-c".into(),
                format!("sleep 5 # {marker}"),
            ],
        )
    });
    // The launcher's argv, read from /proc while the command runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut launcher_seen = None;
    while std::time::Instant::now() < deadline && launcher_seen.is_none() {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            if args.get(1) == Some(&&b"sandbox-exec"[..]) {
                launcher_seen = Some(String::from_utf8_lossy(&cmd).into_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    hermit::sandbox::kill_all_running();
    let _ = runner.join();
    let argv = launcher_seen.expect("the launcher was seen running");
    assert!(!argv.contains(marker), "{argv}");
    assert!(!argv.contains("workspace"), "{argv}");
}

#[test]
fn the_file_tools_refuse_fifos_without_blocking() {
    use hermit::tools::files::Workspace;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let ws = Workspace::open(&path).unwrap();
        let read = ws.read("pipe").map_err(|e| e.to_string());
        let write = ws.write("pipe", "x").map_err(|e| e.to_string());
        let _ = tx.send((read, write));
    });
    let (read, write) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the file tools returned instead of blocking on a FIFO");
    assert!(read.unwrap_err().contains("not a regular file"));
    assert!(write.unwrap_err().contains("not a regular file"));
    // And a listing is capped.
    for i in 0..600 {
        std::fs::write(dir.path().join(format!("f{i:03}")), "").unwrap();
    }
    let ws = Workspace::open(dir.path()).unwrap();
    let listing = ws.list(".").unwrap();
    assert!(listing.contains("more entries not shown"), "{listing}");
    assert!(listing.lines().count() < 520);
}

#[test]
fn many_processes_cannot_together_exceed_the_trees_memory() {
    // Each process stays under its own limit (RLIMIT_AS, 160 MiB); four of
    // them together would hold twice the tree's 160 MiB. Only as root: an
    // ordinary user's Hermit has no cgroup of its own to bound a tree with.
    if hermit::sandbox::probe().root {
        let mut c = case(As::Root);
        c.policy.limits.memory_mib = 160;
        let out = c.sh(
            "for i in 1 2 3 4; do python3 -c 'b = bytearray(80 << 20); import time; time.sleep(3); print(\"held\")' & done; wait",
        );
        let held = out.stdout.matches("held").count();
        assert!(
            held < 4,
            "four processes held 320 MiB under a 160 MiB tree: {out:?}"
        );
        assert!(
            held >= 1,
            "the test means nothing if no process could hold 80 MiB: {out:?}"
        );
    }
}

/// Waits (bounded) until no process has `arg` on its command line.
fn gone(arg: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let alive = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()));
        if !alive {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn a_long_lived_worker_dies_with_its_launcher_after_dropping_privilege() {
    // A change of uid clears the parent-death signal; the launcher sets it
    // again. Killing the launcher must end the worker (PID 1 of its tree).
    both(|who| {
        let c = case(who);
        let marker = match who {
            As::Root => "654.3211",
            As::User => "654.3212",
        };
        let mut child = c
            .sandbox
            .long_lived(&c.policy, &["/bin/sleep".into(), marker.into()])
            .unwrap()
            .spawn()
            .unwrap();
        // Running, as seen from outside.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gone_now(marker) {
            assert!(
                std::time::Instant::now() < deadline,
                "{who:?}: the worker never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        let _ = child.wait();
        assert!(gone(marker), "{who:?}: the worker outlived its launcher");
    });
}

fn gone_now(arg: &str) -> bool {
    !std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
}

#[test]
fn the_tree_uses_at_most_its_cpus() {
    // Only as root (the cgroup is the daemon's to make), where the machine
    // has a cpu controller.
    if !hermit::sandbox::probe().root {
        return;
    }
    let busy = "for i in 1 2; do timeout 2 sh -c 'while :; do :; done' & done; wait; times";
    // `times`: the shell's, then its children's user and system time.
    let cpu_seconds = |out: &SandboxOutput| -> f64 {
        out.stdout
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|t| {
                let (m, s) = t.trim_end_matches('s').split_once('m')?;
                Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
            })
            .sum()
    };
    let mut c = case(As::Root);
    c.policy.limits.cpus = 1.0;
    let sandbox = c.sandbox.clone();
    let policy = c.policy.clone();
    let script = busy.to_string();
    let run = std::thread::spawn(move || {
        sandbox
            .run(&policy, &["/bin/bash".into(), "-c".into(), script])
            .unwrap()
    });
    // While it runs, its cgroup holds the tree, with a one-core quota.
    let prefix = format!("hermit-{}-", std::process::id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut quota = None;
    while quota.is_none() && std::time::Instant::now() < deadline {
        for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup"] {
            let groups = walkdir_groups(std::path::Path::new(root), &prefix);
            for g in groups {
                let procs = std::fs::read_to_string(g.join("cgroup.procs")).unwrap_or_default();
                if procs.trim().is_empty() {
                    continue;
                }
                if let Ok(q) = std::fs::read_to_string(g.join("cpu.cfs_quota_us"))
                    .or_else(|_| std::fs::read_to_string(g.join("cpu.max")))
                {
                    quota = Some(q);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let bounded = run.join().unwrap();
    let Some(quota) = quota else {
        // No cpu controller here (then `hermit doctor` says CPU is bounded
        // per process only).
        eprintln!("no cpu cgroup on this machine: {bounded:?}");
        return;
    };
    assert!(
        quota.trim() == "100000" || quota.trim() == "100000 100000",
        "quota {quota:?}"
    );
    assert!(
        cpu_seconds(&bounded) > 0.5,
        "the loops did not run: {bounded:?}"
    );
    // The effect, where this machine can show it: unbounded, the same
    // loops use more than 3 s of CPU in 2 s (two idle cores); bounded, at
    // most about 2.
    c.policy.limits.cpus = 0.0;
    let free = c.sh(busy);
    if cpu_seconds(&free) > 3.0 {
        assert!(
            cpu_seconds(&bounded) < 2.6,
            "bounded {bounded:?}, unbounded {free:?}"
        );
    }
}

/// The groups under `root` (two levels deep) whose name starts with `prefix`.
fn walkdir_groups(root: &std::path::Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), 0)];
    while let Some((d, depth)) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(p);
            } else if depth < 3 {
                dirs.push((p, depth + 1));
            }
        }
    }
    out
}
