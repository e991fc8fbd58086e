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

/// A mechanism of the sandbox the kernel may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Landlock,
    Seccomp,
    Namespaces,
    ProcessLimit,
}

impl Mechanism {
    pub(crate) const ALL: [Mechanism; 4] = [
        Mechanism::Landlock,
        Mechanism::Seccomp,
        Mechanism::Namespaces,
        Mechanism::ProcessLimit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Landlock => "landlock",
            Mechanism::Seccomp => "seccomp",
            Mechanism::Namespaces => "namespaces",
            Mechanism::ProcessLimit => "process_limit",
        }
    }
}

/// `sandbox.allow_weaker`: the mechanisms tools may run without where the
/// kernel lacks them. `false` (the default): none; `true`: any; or a list
/// naming each one the owner gives up (`["landlock"]`), so that accepting
/// one weaker mechanism never gives up the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Weaker {
    pub landlock: bool,
    pub seccomp: bool,
    pub namespaces: bool,
    pub process_limit: bool,
}

impl Weaker {
    pub(crate) const ALL: Weaker = Weaker {
        landlock: true,
        seccomp: true,
        namespaces: true,
        process_limit: true,
    };

    /// Whether tools may run without `m`.
    pub fn allows(&self, m: Mechanism) -> bool {
        match m {
            Mechanism::Landlock => self.landlock,
            Mechanism::Seccomp => self.seccomp,
            Mechanism::Namespaces => self.namespaces,
            Mechanism::ProcessLimit => self.process_limit,
        }
    }
}

impl<'de> Deserialize<'de> for Weaker {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            All(bool),
            Names(Vec<String>),
            Sets {
                #[serde(default)]
                landlock: bool,
                #[serde(default)]
                seccomp: bool,
                #[serde(default)]
                namespaces: bool,
                #[serde(default)]
                process_limit: bool,
            },
        }
        Ok(match Form::deserialize(d)? {
            Form::All(true) => Weaker::ALL,
            Form::All(false) => Weaker::default(),
            Form::Names(names) => {
                let mut w = Weaker::default();
                for n in names {
                    match Mechanism::ALL.iter().find(|m| m.name() == n) {
                        Some(Mechanism::Landlock) => w.landlock = true,
                        Some(Mechanism::Seccomp) => w.seccomp = true,
                        Some(Mechanism::Namespaces) => w.namespaces = true,
                        Some(Mechanism::ProcessLimit) => w.process_limit = true,
                        None => {
                            return Err(serde::de::Error::custom(format!(
                                "unknown sandbox mechanism {n:?}; use landlock, seccomp, namespaces or process_limit"
                            )));
                        }
                    }
                }
                w
            }
            Form::Sets {
                landlock,
                seccomp,
                namespaces,
                process_limit,
            } => Weaker {
                landlock,
                seccomp,
                namespaces,
                process_limit,
            },
        })
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
