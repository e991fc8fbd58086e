//! The sandbox's checks for `hermit doctor`: each mechanism the kernel
//! offers (Landlock, seccomp, namespaces, a process limit), and a live
//! probe: a sandboxed process that tries what it must not do.

use super::{Check, Loaded, Setup, check};

/// A mechanism of the sandbox: missing is critical, unless the owner gave
/// up that mechanism by name (`sandbox.allow_weaker`).
fn mechanism(
    name: &'static str,
    which: hermit::sandbox::Mechanism,
    loaded: &Loaded,
    present: bool,
    detail: String,
) -> Option<Check> {
    let allow_weaker = loaded
        .as_ref()
        .is_ok_and(|c| c.sandbox.allow_weaker.allows(which));
    Some(Check {
        check: name,
        verdict: match (present, allow_weaker) {
            (true, _) => "ok",
            (false, true) => "warn",
            (false, false) => "fail",
        },
        detail: if present {
            detail
        } else {
            format!(
                "missing: tools refuse to run unless sandbox.allow_weaker = [\"{}\"] {detail}",
                which.name()
            )
        },
    })
}

/// What each Landlock ABI adds that Hermit uses, and what covers it when
/// the kernel is older.
const LANDLOCK_ABIS: &[(i32, &str)] = &[
    (
        2,
        "moving files between directories (covered: outside the workspace all is read-only)",
    ),
    (
        3,
        "truncating files (covered: outside the workspace all is read-only)",
    ),
    (
        4,
        "TCP ports (covered without the network: no interface; with sandbox.network, any port)",
    ),
    (
        5,
        "device ioctls (covered: only null, zero, full, random and urandom are there)",
    ),
    (
        6,
        "abstract Unix sockets and signals beyond the sandbox (covered: own network and PID namespaces; with sandbox.network, abstract sockets are reachable)",
    ),
];

pub fn landlock(loaded: &Loaded) -> Option<Check> {
    let abi = hermit::sandbox::probe().landlock_abi;
    let lacks: Vec<String> = LANDLOCK_ABIS
        .iter()
        .filter(|(v, _)| abi < *v)
        .map(|(v, what)| format!("ABI {v}: {what}"))
        .collect();
    let detail = if lacks.is_empty() {
        format!("ABI {abi}: everything Hermit uses")
    } else {
        format!("ABI {abi}; this kernel lacks {}", lacks.join("; "))
    };
    if abi >= 1 && !lacks.is_empty() {
        return Some(Check {
            check: "sandbox: landlock",
            verdict: "warn",
            detail,
        });
    }
    mechanism(
        "sandbox: landlock",
        hermit::sandbox::Mechanism::Landlock,
        loaded,
        abi >= 1,
        detail,
    )
}

pub fn seccomp(loaded: &Loaded) -> Option<Check> {
    let present = hermit::sandbox::probe().seccomp;
    mechanism(
        "sandbox: seccomp",
        hermit::sandbox::Mechanism::Seccomp,
        loaded,
        present,
        String::new(),
    )
}

pub fn namespaces(loaded: &Loaded) -> Option<Check> {
    let present = hermit::sandbox::probe().namespaces;
    mechanism(
        "sandbox: namespaces",
        hermit::sandbox::Mechanism::Namespaces,
        loaded,
        present,
        "user, PID, IPC, UTS, mount and network".into(),
    )
}

pub fn process_limit(loaded: &Loaded) -> Option<Check> {
    let support = hermit::sandbox::probe();
    let how = if support.root {
        "cgroup pids controller (running as root)"
    } else {
        "RLIMIT_NPROC"
    };
    mechanism(
        "sandbox: process limit",
        hermit::sandbox::Mechanism::ProcessLimit,
        loaded,
        support.process_limit,
        how.into(),
    )
}

/// A tool process holds no privilege: not uid 0, no capability in any set,
/// no_new_privs, a seccomp filter, no terminal (critical otherwise).
pub fn privilege(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    let exe = setup.sandbox.launcher.clone();
    let mut policy = hermit::sandbox::SandboxPolicy {
        workspace: config.workspace(),
        scratch: config.data_dir().join("scratch"),
        read_only: vec![exe.clone()],
        network: false,
        limits: config.sandbox.limits.clone(),
        allow_weaker: config.sandbox.allow_weaker,
        env: Vec::new(),
        cgroups: Vec::new(),
        user: config.sandbox.tool_user(),
    };
    policy.limits.timeout_seconds = policy.limits.timeout_seconds.clamp(5, 30);
    let argv = [exe.display().to_string(), "sandbox-selfcheck".to_string()];
    let found = setup
        .sandbox
        .run(&policy, &argv)
        .map_err(anyhow::Error::from)
        .and_then(|out| {
            serde_json::from_str::<hermit::sandbox::launcher::SelfCheck>(out.stdout.trim()).map_err(
                |e| {
                    anyhow::anyhow!(
                        "the self-check said {:?} ({e}): {}",
                        out.stdout,
                        out.stderr.trim()
                    )
                },
            )
        });
    Some(match found {
        Ok(c) => {
            let problems = c.problems();
            if problems.is_empty() {
                check(
                    "sandbox: privilege",
                    true,
                    format!(
                        "a tool runs as uid {} with no capability, no_new_privs, seccomp, no terminal",
                        c.uid
                    ),
                )
            } else {
                check(
                    "sandbox: privilege",
                    false,
                    format!("a tool process {}", problems.join("; ")),
                )
            }
        }
        Err(e) => check("sandbox: privilege", false, format!("cannot check: {e:#}")),
    })
}

/// A sandboxed process runs, and cannot do what it must not.
pub fn probe(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    let ctx = hermit::tools::ToolContext {
        workspace: config.workspace(),
        data_dir: config.data_dir(),
        sandbox: setup.sandbox.clone(),
        limits: config.sandbox.limits.clone(),
        allow_weaker: config.sandbox.allow_weaker,
        network: false,
        tool_user: config.sandbox.tool_user(),
        fetch: Default::default(),
        timezone: String::new(),
        memory: None,
    };
    Some(match try_what_it_must_not(&ctx) {
        Ok(()) => check(
            "sandbox: probe",
            true,
            "a sandboxed process ran, and could not write outside the workspace nor open a socket",
        ),
        Err(e) => check("sandbox: probe", false, e.to_string()),
    })
}

/// Runs a sandboxed process that tries what it must not do.
fn try_what_it_must_not(ctx: &hermit::tools::ToolContext) -> anyhow::Result<()> {
    let policy = ctx.sandbox_policy();
    let outside = std::env::temp_dir().join(format!("hermit-doctor-{}", std::process::id()));
    let script = format!(
        "echo inside > probe.txt && rm probe.txt && if echo x > {0} 2>/dev/null; then echo WROTE-OUTSIDE; fi; \
         if (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; then echo OPENED-SOCKET; fi; true",
        outside.display()
    );
    let argv = ["/bin/bash".to_string(), "-c".to_string(), script];
    let out = ctx.sandbox.run(&policy, &argv)?;
    let _ = std::fs::remove_file(&outside);
    anyhow::ensure!(
        out.exit_code == 0,
        "the probe exited {}: {}",
        out.exit_code,
        out.stderr.trim()
    );
    anyhow::ensure!(
        !out.stdout.contains("WROTE-OUTSIDE"),
        "a sandboxed process wrote outside the workspace"
    );
    anyhow::ensure!(
        !out.stdout.contains("OPENED-SOCKET"),
        "a sandboxed process opened a TCP socket"
    );
    Ok(())
}
