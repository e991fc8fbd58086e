//! Landlock: what a sandboxed process may touch on the file system (and, on
//! kernels with Landlock ABI 4, which TCP ports; ABI 6, which processes it may
//! signal and which abstract sockets it may reach).
//!
//! Read and execute: the system directories (`/usr`, `/bin`, `/lib*`, `/etc`,
//! `/sbin`) and the policy's extra read-only paths. Read and write: the
//! workspace and the scratch directory (never making a device node there).
//! A few device files. Nothing else: not the data directory, not the
//! secrets, not the home directory, not `/proc`. The mount namespace
//! ([`super::view`]) already hides all that; Landlock holds even if a
//! mount were wrong.
//! UDP is beyond Landlock: the network namespace and seccomp handle it.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use std::path::Path;

use super::SandboxPolicy;

const SYSTEM_READ_ONLY: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"];
/// Restricts the calling process (and what it executes) for good.
pub(crate) fn restrict(policy: &SandboxPolicy) -> Result<(), String> {
    let abi = ABI::V5;
    let err = |e: landlock::RulesetError| format!("Landlock: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?;
    if !policy.network {
        // No TCP bind or connect at all (no rule grants any port).
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(err)?;
    }
    // Cannot signal the daemon or any process outside the sandbox.
    ruleset = ruleset
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(err)?;
    let read = AccessFs::from_read(abi);
    // Everything in the workspace but making device nodes.
    let write = AccessFs::from_all(abi) & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let file_rw = AccessFs::ReadFile | AccessFs::WriteFile;
    let mut rules = Vec::new();
    let mut add = |path: &Path, access: landlock::BitFlags<AccessFs>| {
        // A system directory this distribution lacks is not an error.
        if let Ok(fd) = PathFd::new(path) {
            // Rights that only apply to directories are dropped for files.
            let access = if path.is_dir() {
                access
            } else {
                access & AccessFs::from_file(abi)
            };
            rules.push(PathBeneath::new(fd, access));
        }
    };
    for p in SYSTEM_READ_ONLY {
        add(Path::new(p), read);
    }
    for p in &policy.read_only {
        add(p, read);
    }
    for p in super::view::DEVICES {
        add(Path::new(p), file_rw);
    }
    add(&policy.workspace, write);
    add(&policy.scratch, write);
    let created = ruleset
        .create()
        .map_err(err)?
        .add_rules(rules.into_iter().map(Ok::<_, landlock::RulesetError>))
        .map_err(err)?;
    let status = created.restrict_self().map_err(err)?;
    match status.ruleset {
        RulesetStatus::NotEnforced => Err("Landlock is not enforced by this kernel".into()),
        _ => Ok(()),
    }
}
