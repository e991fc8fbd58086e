//! The sandbox's checks for `hermit doctor`: each mechanism the kernel
//! offers (Landlock, seccomp, namespaces, a process limit), and a live
//! probe: a sandboxed process that tries what it must not do.

use super::{Check, Loaded, Setup, check};

/// A mechanism of the sandbox: missing is critical, unless the
/// configuration allows a weaker sandbox.
fn mechanism(name: &'static str, loaded: &Loaded, present: bool, detail: String) -> Option<Check> {
    let allow_weaker = loaded.as_ref().is_ok_and(|c| c.sandbox.allow_weaker);
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
            format!("missing: tools refuse to run unless sandbox.allow_weaker = true {detail}")
        },
    })
}

pub fn landlock(loaded: &Loaded) -> Option<Check> {
    let abi = hermit::sandbox::probe().landlock_abi;
    mechanism("sandbox: landlock", loaded, abi >= 1, format!("ABI {abi}"))
}

pub fn seccomp(loaded: &Loaded) -> Option<Check> {
    let present = hermit::sandbox::probe().seccomp;
    mechanism("sandbox: seccomp", loaded, present, String::new())
}

pub fn namespaces(loaded: &Loaded) -> Option<Check> {
    let present = hermit::sandbox::probe().namespaces;
    mechanism(
        "sandbox: namespaces",
        loaded,
        present,
        "PID and network".into(),
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
        loaded,
        support.process_limit,
        how.into(),
    )
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
