//! What the tools and their sandbox may do: `[sandbox.limits]` and `[fetch]`
//! in hermit.toml.

use serde::{Deserialize, Serialize};

/// Resource limits of one sandboxed process tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Memory in MiB: the address space of each process (RLIMIT_AS), and
    /// the memory of the whole tree (its cgroup, where there is one).
    pub memory_mib: u64,
    /// Processes and threads of the tree (cgroup pids.max, and RLIMIT_NPROC
    /// where it applies: not for root).
    pub processes: u64,
    /// Largest file it may write, in MiB (RLIMIT_FSIZE).
    pub file_size_mib: u64,
    /// Open files (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Wall-clock seconds before the whole tree is killed.
    pub timeout_seconds: u64,
    /// Bytes kept of stdout and of stderr each; past it the output is cut
    /// with a marker and the tree is stopped.
    pub output_bytes: usize,
    /// CPU cores the whole tree may use at once (its cgroup, where there is
    /// one); 0: unbounded.
    pub cpus: f64,
    /// Size of the run's private scratch (`TMPDIR` and `/tmp`, a fresh
    /// tmpfs per run), in MiB.
    pub scratch_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 60,
            memory_mib: 2048,
            processes: 128,
            file_size_mib: 256,
            open_files: 256,
            timeout_seconds: 60,
            output_bytes: 64 * 1024,
            scratch_mib: 64,
            cpus: 1.0,
        }
    }
}

/// The unprivileged user a tool process runs as when Hermit runs as root
/// (`sandbox.tool_uid`, `sandbox.tool_gid`; default 65534, nobody). A
/// non-root Hermit's tools run as its own uid. Either way the tool is in a
/// user namespace of its own where that uid is the only one mapped, with no
/// capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolUser {
    pub uid: u32,
    pub gid: u32,
}

impl Default for ToolUser {
    fn default() -> Self {
        Self {
            uid: 65534,
            gid: 65534,
        }
    }
}

/// `[fetch]`: the `fetch` tool's allow-list and bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// The `fetch` tool is off unless this is true.
    pub enabled: bool,
    /// Hosts that may be fetched: `example.org`, or `*.example.org`.
    pub allow_hosts: Vec<String>,
    /// Hosts that may resolve to loopback, link-local or private addresses
    /// (a NAS on the LAN). They must be in `allow_hosts` too.
    pub allow_private: Vec<String>,
    /// Bytes read of a response at most.
    pub max_bytes: u64,
    pub timeout_seconds: u64,
    pub max_redirects: u32,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_hosts: Vec::new(),
            allow_private: Vec::new(),
            max_bytes: 1 << 20,
            timeout_seconds: 20,
            max_redirects: 5,
        }
    }
}
