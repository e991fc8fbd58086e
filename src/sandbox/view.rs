//! The file system a sandboxed process sees: a fresh root of its own, in a
//! private mount namespace, built from what it needs and nothing else.
//!
//! - `/usr`, `/bin`, `/sbin`, `/lib*`: the system's, read-only.
//! - `/etc`: only the files programs need to start and to name things
//!   ([`ETC`]); `passwd` and `group` are written for the run and name only
//!   root, nobody and the tool's own user. Not `shadow`, not SSH or TLS keys.
//! - `/dev`: `null`, `zero`, `full`, `random`, `urandom`. No terminal.
//! - The workspace (read-write, `nosuid,nodev`) and the policy's extra
//!   read-only paths, each at its own path.
//! - The scratch directory: a fresh `tmpfs` for this run alone (`TMPDIR`),
//!   also mounted on `/tmp` unless a granted path lies under `/tmp`.
//! - No `/proc`, `/sys`, `/run`, `/var`, `/home`, `/root`: the daemon's data,
//!   the secrets, D-Bus, systemd and container sockets are not there to be
//!   reached, chmod-ed or connected to.
//!
//! Everything outside the workspace and the scratch is mounted read-only,
//! so no metadata of it can change either (EROFS). The root itself is a
//! small read-only `tmpfs`.
//!
//! Sources are opened (`O_PATH`) before anything is mounted and bound from
//! their descriptors, so that mounting the staging directory cannot hide
//! them, and so that the daemon's rights are used to reach them once.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::SandboxPolicy;

/// The system directories, read-only (a missing one is skipped; a symlink,
/// as `/bin` on a merged-/usr system, is recreated as a symlink).
pub(crate) const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What of `/etc` a program needs, and why.
pub(crate) const ETC: &[&str] = &[
    // The dynamic loader.
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    // Debian's alternatives: /usr/bin/awk, editor, ... are links through it.
    "alternatives",
    // Time: localtime names the owner's zone.
    "localtime",
    "timezone",
    // Certificates for TLS (only the public ones: not /etc/ssl/private).
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates.conf",
    // Name resolution and service names (for tools granted the network).
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "gai.conf",
    "resolv.conf",
    "protocols",
    "services",
    // File types, the system's name.
    "mime.types",
    "os-release",
    "debian_version",
    // The shell's defaults.
    "bash.bashrc",
    "inputrc",
];

/// Device files a program may need (all harmless).
pub(crate) const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Where the new root is assembled, in the private mount namespace (a
/// `tmpfs` mounted there hides the host's directory from this process only).
const STAGING: &str = "/tmp";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ReadOnly,
    ReadWrite,
    Device,
}

struct Source {
    /// Where it appears in the new root.
    at: PathBuf,
    fd: OwnedFd,
    is_dir: bool,
    kind: Kind,
}

fn err(what: impl std::fmt::Display) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn cpath(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{} has a NUL byte", p.display()))
}

/// Opens `path` (following links) as a mount source; `None` if it is absent.
fn open_source(path: &Path, at: &Path, kind: Kind) -> Result<Option<Source>, String> {
    let c = cpath(path)?;
    // SAFETY: open with a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
            _ => Err(format!("{}: {e}", path.display())),
        };
    }
    // SAFETY: a new descriptor we own.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a valid fd.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(err(path.display()));
    }
    Ok(Some(Source {
        at: at.to_path_buf(),
        fd,
        is_dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
        kind,
    }))
}

/// `path` inside the staging root.
fn staged(path: &Path) -> PathBuf {
    Path::new(STAGING).join(path.strip_prefix("/").unwrap_or(path))
}

fn mkdirs(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let source = source.map(cpath).transpose()?;
    let target_c = cpath(target)?;
    let fstype = fstype.map(|s| CString::new(s).unwrap_or_default());
    let data = data.map(|s| CString::new(s).unwrap_or_default());
    // SAFETY: mount(2) with valid C strings or nulls.
    let r = unsafe {
        libc::mount(
            source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if r != 0 {
        return Err(err(format!("mount {}", target.display())));
    }
    Ok(())
}

/// The flags a bind mount must keep when remounted (in a user namespace,
/// the kernel refuses to clear a flag the original mount had).
fn locked_flags(target: &Path) -> Result<libc::c_ulong, String> {
    let c = cpath(target)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs with a valid C string and struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(err(format!("statvfs {}", target.display())));
    }
    let f = st.f_flag;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// The `passwd` and `group` of the sandbox: root (owns the system's files),
/// nobody (what unmapped owners show as), and the tool's own user.
fn identity_files(uid: u32, gid: u32, home: &Path) -> (String, String) {
    let mut passwd = String::from("root:x:0:0:root:/root:/usr/sbin/nologin\n");
    let mut group = String::from("root:x:0:\n");
    if uid != 0 && uid != 65534 {
        passwd.push_str(&format!(
            "hermit:x:{uid}:{gid}:Hermit's tools:{}:/bin/sh\n",
            home.display()
        ));
    }
    if gid != 0 && gid != 65534 {
        group.push_str(&format!("hermit:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    (passwd, group)
}

/// Builds the new root and makes it this process's `/`. Called in a fresh
/// mount namespace, with the rights to mount in it, before any privilege
/// is dropped; `uid`/`gid` own the scratch (as seen from this namespace).
pub(crate) fn enter(policy: &SandboxPolicy, uid: u32, gid: u32) -> Result<(), String> {
    // Nothing mounted here may reach the host's mount namespace.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;

    // 1. Open every source while the host's tree is still in view.
    let mut sources = Vec::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for dir in SYSTEM {
        let p = Path::new(dir);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    links.push((p.to_path_buf(), target));
                }
            }
            Ok(_) => sources.extend(open_source(p, p, Kind::ReadOnly)?),
            Err(_) => {}
        }
    }
    for name in ETC {
        let p = Path::new("/etc").join(name);
        sources.extend(open_source(&p, &p, Kind::ReadOnly)?);
    }
    for dev in DEVICES {
        let p = Path::new(dev);
        sources.extend(open_source(p, p, Kind::Device)?);
    }
    for p in &policy.read_only {
        sources.extend(open_source(p, p, Kind::ReadOnly)?);
    }
    let workspace = open_source(&policy.workspace, &policy.workspace, Kind::ReadWrite)?
        .ok_or_else(|| {
            format!(
                "the workspace {} does not exist",
                policy.workspace.display()
            )
        })?;
    sources.push(workspace);

    // 2. The staging root: a small tmpfs, private to this namespace.
    let root = Path::new(STAGING);
    mount(
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=0755,size=4m"),
    )?;
    // The scratch first, so that granted paths under /tmp mount over it.
    let scratch_mib = policy.limits.scratch_mib.max(1);
    let scratch_opts = format!("mode=0700,uid={uid},gid={gid},size={scratch_mib}m");
    let granted_under_tmp = sources.iter().any(|s| s.at.starts_with("/tmp"));
    let scratch_at = staged(&policy.scratch);
    mkdirs(&scratch_at)?;
    mount(
        Some(Path::new("tmpfs")),
        &scratch_at,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&scratch_opts),
    )?;
    if !granted_under_tmp && !policy.scratch.starts_with("/tmp") {
        let tmp = staged(Path::new("/tmp"));
        mkdirs(&tmp)?;
        mount(Some(&scratch_at), &tmp, None, libc::MS_BIND, None)?;
    }

    // 3. Each source at its place.
    for s in &sources {
        let at = staged(&s.at);
        if s.is_dir {
            mkdirs(&at)?;
        } else {
            if let Some(parent) = at.parent() {
                mkdirs(parent)?;
            }
            std::fs::File::create(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        }
        let from = PathBuf::from(format!("/proc/self/fd/{}", s.fd.as_raw_fd()));
        mount(Some(&from), &at, None, libc::MS_BIND, None)?;
        let extra = match s.kind {
            Kind::Device => continue,
            Kind::ReadOnly => libc::MS_RDONLY,
            Kind::ReadWrite => 0,
        };
        let flags = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | extra
            | locked_flags(&at)?;
        mount(None, &at, None, flags, None)?;
    }
    for (at, target) in &links {
        let at = staged(at);
        std::os::unix::fs::symlink(target, &at).map_err(|e| format!("{}: {e}", at.display()))?;
    }
    let (passwd, group) = identity_files(uid, gid, &policy.workspace);
    let etc = staged(Path::new("/etc"));
    mkdirs(&etc)?;
    for (name, text) in [("passwd", passwd), ("group", group)] {
        std::fs::write(etc.join(name), text).map_err(|e| format!("/etc/{name}: {e}"))?;
    }
    drop(sources);
    // The root itself: read-only from now on.
    mount(
        None,
        root,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )?;

    // 4. Make it `/`, and let go of the old root.
    let root_c = cpath(root)?;
    let dot = c".";
    // SAFETY: chdir, pivot_root and umount2 with valid C strings.
    unsafe {
        if libc::chdir(root_c.as_ptr()) != 0 {
            return Err(err("chdir to the new root"));
        }
        if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0 {
            return Err(err("pivot_root"));
        }
        if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(err("detaching the old root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(err("chdir /"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_names_only_root_nobody_and_the_tool_user() {
        let (passwd, group) = identity_files(65534, 65534, Path::new("/w"));
        assert_eq!(passwd.lines().count(), 2, "{passwd}");
        assert_eq!(group.lines().count(), 2, "{group}");
        let (passwd, _) = identity_files(1000, 1000, Path::new("/w"));
        assert!(passwd.contains("hermit:x:1000:1000:Hermit's tools:/w:/bin/sh"));
        assert_eq!(passwd.lines().count(), 3);
    }

    #[test]
    fn etc_holds_no_secret() {
        for name in ETC {
            for secret in ["shadow", "ssh", "private", "sudoers", "gshadow", "passwd"] {
                assert!(!name.contains(secret), "{name}");
            }
        }
    }
}
