//! Containment, proved from outside: real processes in the real sandbox (the
//! `hermit` binary as launcher), trying what they must not do.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hermit::sandbox::{Limits, Sandbox, SandboxOutput, SandboxPolicy};

struct Setup {
    _root: tempfile::TempDir,
    policy: SandboxPolicy,
    outside: PathBuf,
}

/// The tests' policy: workspace and scratch in `dir`, nothing else, the
/// default limits but a 20-second timeout.
pub fn policy_in(dir: &Path) -> SandboxPolicy {
    SandboxPolicy {
        workspace: dir.join("workspace"),
        scratch: dir.join("scratch"),
        read_only: Vec::new(),
        network: false,
        limits: Limits {
            timeout_seconds: 20,
            ..Limits::default()
        },
        allow_weaker: Default::default(),
        env: Vec::new(),
        cgroups: Vec::new(),
        user: Default::default(),
    }
}

fn setup(edit: impl FnOnce(&mut SandboxPolicy)) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let mut policy = policy_in(root.path());
    edit(&mut policy);
    Setup {
        _root: root,
        policy,
        outside,
    }
}

fn sh(s: &Setup, script: &str) -> SandboxOutput {
    Sandbox::with_launcher(env!("CARGO_BIN_EXE_hermit"))
        .run(&s.policy, &["/bin/bash".into(), "-c".into(), script.into()])
        .expect("the sandbox runs")
}

#[test]
fn writes_inside_the_workspace_but_not_outside() {
    let s = setup(|_| {});
    let target = s.outside.join("escaped.txt");
    let out = sh(
        &s,
        &format!("echo ok > inside.txt && echo no > {}", target.display()),
    );
    assert_ne!(out.exit_code, 0);
    assert!(!target.exists(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(s.policy.workspace.join("inside.txt")).unwrap(),
        "ok\n"
    );
    // Nor under /tmp, nor over a system file.
    let out = sh(
        &s,
        "echo x > /tmp/hermit-escape-$$ || echo x >> /etc/hostname",
    );
    assert_ne!(out.exit_code, 0);
}

#[test]
fn cannot_read_secrets_home_or_the_environment_of_the_daemon() {
    let s = setup(|_| {});
    let secret = s.outside.join("secrets.toml");
    std::fs::write(&secret, "token = \"hunter2\"\n").unwrap();
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let in_home = tempfile::Builder::new()
        .prefix(".hermit-test-ssh")
        .tempdir_in(&home)
        .unwrap();
    std::fs::write(in_home.path().join("id_ed25519"), "PRIVATE KEY hunter2").unwrap();
    // SAFETY: single-threaded at this point of the test; the variable must be
    // in the parent's environment for the test to mean anything.
    unsafe { std::env::set_var("HERMIT_TEST_SECRET", "hunter2") };
    let out = sh(
        &s,
        &format!(
            "cat {}; cat {}/id_ed25519; ls {}; cat /proc/self/environ; cat /proc/$PPID/environ; env",
            secret.display(),
            in_home.path().display(),
            home.join(".ssh").display()
        ),
    );
    assert!(!out.stdout.contains("hunter2"), "leaked: {}", out.stdout);
    assert!(!out.stderr.contains("hunter2"), "leaked: {}", out.stderr);
    // Each attempt failed (not in view, or denied).
    assert!(out.stderr.lines().count() >= 4, "{}", out.stderr);
}

#[test]
fn no_tcp_or_udp_socket_without_the_network() {
    let s = setup(|_| {});
    let out = sh(
        &s,
        "exec 3<>/dev/tcp/127.0.0.1/80 && echo TCP-OPEN; exec 4<>/dev/udp/127.0.0.1/53 && echo UDP-OPEN; true",
    );
    assert!(!out.stdout.contains("TCP-OPEN"), "{out:?}");
    assert!(!out.stdout.contains("UDP-OPEN"), "{out:?}");
}

#[test]
fn tcp_and_udp_work_when_granted_and_only_then() {
    let s = setup(|p| p.network = true);
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (tp, up) = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let out = sh(
        &s,
        &format!(
            "echo hello-tcp >/dev/tcp/127.0.0.1/{tp} && echo hello-udp >/dev/udp/127.0.0.1/{up}"
        ),
    );
    assert_eq!(out.exit_code, 0, "{out:?}");
    let (mut conn, _) = tcp.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello-tcp\n");
    let mut buf = [0u8; 64];
    let n = udp.recv(&mut buf).expect("the datagram arrives");
    assert_eq!(&buf[..n], b"hello-udp\n");
    // The same with the network off does not reach the listener.
    let s = setup(|_| {});
    let out = sh(&s, &format!("echo nope >/dev/tcp/127.0.0.1/{tp}"));
    assert_ne!(out.exit_code, 0);
    tcp.set_nonblocking(true).unwrap();
    assert!(
        tcp.accept().is_err(),
        "a connection arrived from a sandbox without network"
    );
    let _ = conn.write_all(b"");
}

#[test]
fn process_count_is_bounded() {
    let s = setup(|p| p.limits.processes = 16);
    // dash stops at the first fork that fails.
    let out = Sandbox::with_launcher(env!("CARGO_BIN_EXE_hermit"))
        .run(
            &s.policy,
            &[
                "/bin/sh".into(),
                "-c".into(),
                "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo $i; done".into(),
            ],
        )
        .unwrap();
    let started: u32 = out
        .stdout
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        started < 16,
        "{started} processes started under a limit of 16"
    );
    assert_ne!(out.exit_code, 0);
}

#[test]
fn a_fork_bomb_is_contained() {
    let s = setup(|p| {
        p.limits.processes = 32;
        p.limits.timeout_seconds = 3;
    });
    // The classic bomb, with the shell kept alive so that the bomb runs
    // until the timeout.
    let script = ":(){ :|:& };:; sleep 30 # hermit-bomb-test";
    let out = sh(&s, script);
    assert!(out.timed_out, "{out:?}");
    // Nothing of it survives, and the machine still forks.
    assert!(all_gone(script), "fork bomb processes survived");
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn endless_output_is_cut_with_a_marker() {
    let s = setup(|p| p.limits.output_bytes = 10_000);
    let out = sh(&s, "yes");
    assert!(out.output_truncated);
    assert!(!out.timed_out, "cut by the output cap, not the timeout");
    let marker = hermit::sandbox::truncation_marker(10_000);
    assert!(
        out.stdout.ends_with(&marker),
        "{}",
        &out.stdout[out.stdout.len() - 80..]
    );
    assert_eq!(out.stdout.len(), 10_000 + marker.len());
}

fn processes_with_arg(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        .count()
}

/// Waits (bounded) until no process has `arg` on its command line.
fn all_gone(arg: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if processes_with_arg(arg) == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_timeout_kills_the_whole_tree_including_setsid_and_nohup() {
    let s = setup(|p| p.limits.timeout_seconds = 2);
    let marker = "987.6543";
    let out = sh(
        &s,
        &format!(
            "setsid sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 & (sleep {marker} &) ; sleep {marker}"
        ),
    );
    assert!(out.timed_out, "{out:?}");
    assert!(all_gone(marker), "sleeps survived the timeout");
}

#[test]
fn orphans_die_with_the_command() {
    let s = setup(|_| {});
    let marker = "876.5432";
    let out = sh(&s, &format!("setsid sleep {marker} & echo started"));
    assert_eq!(out.exit_code, 0);
    assert!(!out.timed_out);
    assert!(all_gone(marker), "a detached process outlived its sandbox");
}

#[test]
fn no_ptrace_no_namespaces_no_mounts() {
    let s = setup(|_| {});
    // unshare(1) and mount(8) exist on Debian; both must fail with EPERM.
    let out = sh(
        &s,
        "unshare -n true && echo UNSHARED; unshare -U true && echo USERNS; mount -t tmpfs x . && echo MOUNTED; true",
    );
    for bad in ["UNSHARED", "USERNS", "MOUNTED"] {
        assert!(!out.stdout.contains(bad), "{out:?}");
    }
    // ptrace(PTRACE_TRACEME) fails with EPERM (Debian's python3, which
    // scripts/setup installs, lives under /usr and so is reachable).
    let out = sh(
        &s,
        "/usr/bin/python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.ptrace(0, 0, 0, 0), ctypes.get_errno())'",
    );
    assert_eq!(out.stdout.trim(), "-1 1", "{out:?}");
}

#[test]
fn the_scratch_directory_is_emptied_after_each_run() {
    let s = setup(|_| {});
    let out = sh(&s, "echo tmp > $TMPDIR/leftover && cat $TMPDIR/leftover");
    assert_eq!(out.stdout, "tmp\n");
    assert!(!Path::new(&s.policy.scratch).join("leftover").exists());
}
