//! The file tools (`list_files`, `read_file`, `write_file`, `move_file`,
//! `delete_file`): inside the workspace only.
//!
//! Every path is resolved by the kernel beneath the workspace directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: `..` that climbs out,
//! absolute paths, symlinks pointing out and a symlink swapped in between a
//! check and a use all fail, since there is no separate check. Deleting moves
//! the file to a trash in the data directory, restorable for 30 days
//! (`hermit files restore ID`), instead of destroying it.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};

/// Files larger than this are read only up to it.
const READ_LIMIT: u64 = 256 * 1024;
/// Entries a listing shows at most (the rest are counted).
const LIST_LIMIT: usize = 500;
/// How long deleted files stay restorable.
pub(crate) const TRASH_DAYS: u64 = 30;

/// The file tools, one per operation: small models fill a few required
/// arguments far more reliably than an `op` switch with optional ones.
#[derive(Clone, Copy)]
pub(crate) enum FileOp {
    Read,
    Write,
    List,
    Move,
    Delete,
}

pub(crate) struct Files(pub FileOp);

impl Files {
    pub(crate) const ALL: [FileOp; 5] = [
        FileOp::List,
        FileOp::Read,
        FileOp::Write,
        FileOp::Move,
        FileOp::Delete,
    ];
}

fn failed(message: impl std::fmt::Display) -> ToolError {
    ToolError::failed("files", message)
}

fn path_arg(description: &str) -> Value {
    json!({"type": "string", "description": description, "maxLength": 4096})
}

impl Tool for Files {
    fn spec(&self) -> ToolSpec {
        let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
        let (name, description, parameters) = match self.0 {
            FileOp::List => (
                "list_files",
                "List the files in a folder of the owner's workspace, with their sizes.",
                object(
                    json!({"path": path_arg("Folder relative to the workspace; \".\" for the workspace itself")}),
                    &[],
                ),
            ),
            FileOp::Read => (
                "read_file",
                "Read a text file from the owner's workspace.",
                object(
                    json!({"path": path_arg("File path relative to the workspace")}),
                    &["path"],
                ),
            ),
            FileOp::Write => (
                "write_file",
                "Create or overwrite a text file in the owner's workspace.",
                object(
                    json!({"path": path_arg("File path relative to the workspace"),
                           "content": {"type": "string", "description": "The whole new content of the file"}}),
                    &["path", "content"],
                ),
            ),
            FileOp::Move => (
                "move_file",
                "Move or rename a file within the owner's workspace (never overwrites).",
                object(
                    json!({"from": path_arg("Current path"), "to": path_arg("New path")}),
                    &["from", "to"],
                ),
            ),
            FileOp::Delete => (
                "delete_file",
                "Delete a file from the owner's workspace (it goes to a trash, restorable for 30 days).",
                object(
                    json!({"path": path_arg("File path relative to the workspace")}),
                    &["path"],
                ),
            ),
        };
        ToolSpec {
            name,
            description,
            parameters,
        }
    }

    fn effects(&self, _: &Value) -> Vec<Effect> {
        match self.0 {
            FileOp::Read | FileOp::List => vec![Effect::Read],
            FileOp::Write | FileOp::Move | FileOp::Delete => vec![Effect::Write],
        }
    }

    fn output_origin(&self, args: &Value) -> Option<crate::vocab::Origin> {
        use crate::vocab::Origin;
        Some(match self.0 {
            FileOp::Read => Origin::File(arg_str(args, "path").unwrap_or_default().to_string()),
            // File names can be chosen by whoever put the files there.
            _ => Origin::ToolOutput(self.spec().name.to_string()),
        })
    }

    /// Beneath the workspace of the person the call acts for: a member's
    /// own, never the owner's.
    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let ws = Workspace::open(&ctx.workspace_for(meta.principal.as_deref()))?;
        let path = arg_str(args, "path").unwrap_or_default();
        let content = match self.0 {
            FileOp::Read => ws.read(path)?,
            FileOp::Write => {
                let text = arg_str(args, "content").unwrap_or_default();
                ws.write(path, text)?;
                format!("wrote {} bytes to {path}", text.len())
            }
            FileOp::List => ws.list(if path.trim().is_empty() { "." } else { path })?,
            FileOp::Move => {
                let from = arg_str(args, "from").unwrap_or_default();
                let to = arg_str(args, "to").unwrap_or_default();
                ws.rename(from, &ws, to)?;
                format!("moved {from} to {to}")
            }
            FileOp::Delete => {
                let id = Trash::at(ctx.trash_for(meta.principal.as_deref())).put(&ws, path)?;
                format!(
                    "moved {path} to the trash (restorable for {TRASH_DAYS} days: hermit files restore {id})"
                )
            }
        };
        Ok(ToolOutput {
            own: false,
            ok: true,
            content,
        })
    }
}

/// A directory that paths are resolved beneath.
pub struct Workspace {
    dir: OwnedFd,
    /// Who gets what the daemon creates in it: a root Hermit's tools run as
    /// the workspace's owner (see [`crate::sandbox`]), and must be able to
    /// change what the file tools wrote.
    owner: Option<(u32, u32)>,
}

fn cstring(p: &str) -> Result<CString, ToolError> {
    CString::new(p).map_err(|_| failed("a path cannot contain a NUL byte"))
}

fn errno_message(path: &str, err: std::io::Error) -> ToolError {
    match err.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => failed(format!(
            "{path} is outside the workspace (absolute paths, `..` and symlinks leading out are refused)"
        )),
        Some(libc::ENOENT) => failed(format!("{path} does not exist")),
        Some(libc::ENXIO) => failed(format!(
            "{path} is not a regular file (a FIFO or socket): the file tools only read and write regular files"
        )),
        _ => failed(format!("{path}: {err}")),
    }
}

impl Workspace {
    pub fn open(dir: &Path) -> Result<Self, ToolError> {
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        let fd = File::open(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        use std::os::unix::fs::MetadataExt;
        let meta = fd
            .metadata()
            .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        // SAFETY: a getter.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = (root && meta.uid() != 0).then(|| (meta.uid(), meta.gid()));
        Ok(Self {
            dir: fd.into(),
            owner,
        })
    }

    /// Gives `name` (in `dir`, not following a link) to the workspace's owner.
    fn give(&self, dir: &OwnedFd, name: &CString) {
        if let Some((uid, gid)) = self.owner {
            // SAFETY: fchownat with a valid dirfd and C string.
            unsafe {
                libc::fchownat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                );
            }
        }
    }

    /// Refuses what is not a regular file (a FIFO would block, a device or
    /// socket is no file to read or write).
    fn regular(path: &str, meta: &std::fs::Metadata) -> Result<(), ToolError> {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_file() {
            return Ok(());
        }
        let what = if t.is_dir() {
            return Err(failed(format!("{path} is a directory; use list")));
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        Err(failed(format!(
            "{path} is {what}, not a regular file: the file tools only read and write regular files"
        )))
    }

    /// `openat2` beneath the workspace.
    fn open_beneath(&self, path: &str, flags: i32, mode: u32) -> Result<OwnedFd, ToolError> {
        let c = cstring(path)?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.mode = if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        };
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid dirfd, C string and open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(errno_message(path, std::io::Error::last_os_error()));
        }
        // SAFETY: a new fd we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// The directory holding `path`'s last component, resolved beneath, and
    /// that component (a plain name).
    fn parent_of<'p>(&self, path: &'p str) -> Result<(OwnedFd, &'p str), ToolError> {
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
            None => (".", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(failed(format!("{path} does not name a file")));
        }
        let dir = self.open_beneath(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok((dir, name))
    }

    pub fn read(&self, path: &str) -> Result<String, ToolError> {
        // Non-blocking: opening a FIFO must not wait for a writer.
        let fd = self.open_beneath(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)?;
        let mut f = File::from(fd);
        let meta = f.metadata().map_err(|e| failed(format!("{path}: {e}")))?;
        Self::regular(path, &meta)?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(READ_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|e| failed(format!("{path}: {e}")))?;
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if meta.len() > READ_LIMIT {
            text.push_str(&format!(
                "\n[… {} more bytes not shown]",
                meta.len() - READ_LIMIT
            ));
        }
        Ok(text)
    }

    pub fn write(&self, path: &str, content: &str) -> Result<(), ToolError> {
        // Parent directories are created one component at a time, each
        // resolved beneath the workspace.
        let trimmed = path.trim_end_matches('/');
        if let Some((parent, _)) = trimmed.rsplit_once('/') {
            let mut so_far = String::new();
            for comp in parent.split('/').filter(|c| !c.is_empty() && *c != ".") {
                if !so_far.is_empty() {
                    so_far.push('/');
                }
                so_far.push_str(comp);
                let (dir, name) = self.parent_of(&so_far)?;
                let c = cstring(name)?;
                // SAFETY: mkdirat with a valid dirfd and C string.
                let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
                if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(errno_message(&so_far, std::io::Error::last_os_error()));
                }
                if r == 0 {
                    self.give(&dir, &c);
                }
            }
        }
        // Not truncated before it is known to be a regular file; a FIFO
        // with no reader fails at once (ENXIO) instead of blocking.
        let fd = self.open_beneath(
            path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0o644,
        )?;
        let f = File::from(fd);
        let meta = f.metadata().map_err(|e| failed(format!("{path}: {e}")))?;
        Self::regular(path, &meta)?;
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != uid {
                // SAFETY: fchown on a descriptor we own.
                unsafe { libc::fchown(f.as_raw_fd(), uid, gid) };
            }
        }
        f.set_len(0).map_err(|e| failed(format!("{path}: {e}")))?;
        (&f).write_all(content.as_bytes())
            .map_err(|e| failed(format!("{path}: {e}")))
    }

    pub fn list(&self, path: &str) -> Result<String, ToolError> {
        let fd = self.open_beneath(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        // Read the directory through /proc-free means: a dup'd fd as a
        // ReadDir is not in std, so use fdopendir.
        // SAFETY: fdopendir takes ownership of the fd on success.
        let raw = fd.as_raw_fd();
        let dirp = unsafe { libc::fdopendir(libc::dup(raw)) };
        if dirp.is_null() {
            return Err(failed(format!("{path}: cannot list")));
        }
        let mut rows = Vec::new();
        loop {
            // SAFETY: readdir on a valid DIR*.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let c = cstring(&name)?;
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: fstatat relative to the listed directory, not following links.
            let ok =
                unsafe { libc::fstatat(raw, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0;
            let kind = match st.st_mode & libc::S_IFMT {
                _ if !ok => "?",
                libc::S_IFDIR => "dir",
                libc::S_IFLNK => "link",
                libc::S_IFREG => "file",
                _ => "other",
            };
            rows.push((name, kind, st.st_size));
        }
        // SAFETY: closing the DIR* we opened.
        unsafe { libc::closedir(dirp) };
        rows.sort();
        if rows.is_empty() {
            return Ok(format!("{path} is empty"));
        }
        let mut text: Vec<String> = rows
            .iter()
            .take(LIST_LIMIT)
            .map(|(n, k, s)| match *k {
                "file" => format!("{n}\tfile\t{s} bytes"),
                _ => format!("{n}\t{k}"),
            })
            .collect();
        if rows.len() > LIST_LIMIT {
            text.push(format!(
                "[… {} more entries not shown]",
                rows.len() - LIST_LIMIT
            ));
        }
        // A summary line: what people (and small models) ask of a listing.
        let files: Vec<_> = rows.iter().filter(|(_, k, _)| *k == "file").collect();
        if let Some((name, _, size)) = files.iter().max_by_key(|(_, _, s)| *s) {
            text.push(format!(
                "({} entries, {} files; largest file: {name}, {size} bytes)",
                rows.len(),
                files.len()
            ));
        }
        Ok(text.join("\n"))
    }

    /// Renames `from` (beneath self) to `to` (beneath `dest`).
    pub(crate) fn rename(&self, from: &str, dest: &Workspace, to: &str) -> Result<(), ToolError> {
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = dest.parent_of(to)?;
        let (a, b) = (cstring(from_name)?, cstring(to_name)?);
        // SAFETY: renameat2 with valid dirfds and names; NOREPLACE so a move
        // never destroys a file silently.
        let r = unsafe {
            libc::renameat2(
                from_dir.as_raw_fd(),
                a.as_ptr(),
                to_dir.as_raw_fd(),
                b.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            // Both ends were resolved beneath their directories already, so
            // EXDEV here means two file systems, not an escape.
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) => failed(format!("{to} already exists")),
                Some(libc::EXDEV) => failed(format!(
                    "{from} and {to} are on different file systems; nothing was moved"
                )),
                _ => errno_message(from, err),
            });
        }
        Ok(())
    }
}

/// The `trash` tool: list what was deleted, restore it, or empty the
/// trash. Emptying it destroys files for good: its effect is
/// `irreversible`, which the policy treats on its own.
pub(crate) struct TrashTool;

impl Tool for TrashTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "trash",
            description: "The trash of deleted workspace files: list it, restore an entry by id, or empty it (destroys the files for good).",
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["list", "restore", "empty"]},
                    "id": {"type": "string", "description": "The entry to restore (from list)", "maxLength": 64}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, args: &Value) -> Vec<Effect> {
        match arg_str(args, "action") {
            Some("restore") => vec![Effect::Write],
            Some("empty") => vec![Effect::Write, Effect::Irreversible],
            _ => vec![Effect::Read],
        }
    }

    /// The trash of the person the call acts for (a member's own).
    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let who = meta.principal.as_deref();
        let trash = Trash::at(ctx.trash_for(who));
        let content = match arg_str(args, "action").unwrap_or("list") {
            "restore" => {
                let ws = Workspace::open(&ctx.workspace_for(who))?;
                let id = arg_str(args, "id").unwrap_or_default();
                format!("restored {}", trash.restore(&ws, id)?)
            }
            "empty" => format!("emptied the trash: {} entries destroyed", trash.empty()),
            _ => {
                let entries = trash.list();
                if entries.is_empty() {
                    "the trash is empty".to_string()
                } else {
                    entries
                        .iter()
                        .map(|e| format!("{}\t{}", e.id, e.original))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
        };
        Ok(ToolOutput {
            own: false,
            ok: true,
            content,
        })
    }
}

/// Deleted files, kept for [`TRASH_DAYS`] days.
pub struct Trash {
    dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TrashEntry {
    pub id: String,
    pub original: String,
    pub deleted_at: u64,
}

impl Trash {
    /// The owner's trash, `<data>/trash`.
    pub fn new(data_dir: &Path) -> Self {
        Self::at(data_dir.join("trash"))
    }

    /// A trash in `dir` (a member's own: [`ToolContext::trash_for`]).
    pub(crate) fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Moves `path` (beneath `ws`) into the trash; returns its id.
    pub(crate) fn put(&self, ws: &Workspace, path: &str) -> Result<String, ToolError> {
        self.purge_expired();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let id = format!("{}-{:06}", now.as_secs(), now.subsec_micros());
        let slot = self.dir.join(&id);
        std::fs::create_dir_all(&slot).map_err(|e| failed(format!("trash: {e}")))?;
        let trash_ws = Workspace::open(&slot)?;
        if let Err(e) = ws.rename(path, &trash_ws, "item") {
            let _ = std::fs::remove_dir_all(&slot);
            return Err(e);
        }
        let entry = TrashEntry {
            id: id.clone(),
            original: path.to_string(),
            deleted_at: now.as_secs(),
        };
        std::fs::write(
            slot.join("entry.json"),
            serde_json::to_vec(&entry).unwrap_or_default(),
        )
        .map_err(|e| failed(format!("trash: {e}")))?;
        Ok(id)
    }

    pub fn list(&self) -> Vec<TrashEntry> {
        let mut out: Vec<TrashEntry> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("entry.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by_key(|e| e.deleted_at);
        out
    }

    /// Puts entry `id` back where it was (refusing to overwrite).
    pub fn restore(&self, ws: &Workspace, id: &str) -> Result<String, ToolError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(failed(format!("no trash entry {id}")));
        }
        let slot = self.dir.join(id);
        let entry: TrashEntry = std::fs::read(slot.join("entry.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| failed(format!("no trash entry {id}; see `hermit files trash`")))?;
        let trash_ws = Workspace::open(&slot)?;
        trash_ws.rename("item", ws, &entry.original)?;
        let _ = std::fs::remove_dir_all(&slot);
        Ok(entry.original)
    }

    /// Deletes everything in the trash for good. Returns how many entries.
    pub(crate) fn empty(&self) -> usize {
        let entries = self.list();
        for e in &entries {
            let _ = std::fs::remove_dir_all(self.dir.join(&e.id));
        }
        entries.len()
    }

    fn purge_expired(&self) {
        let cutoff = SystemTime::now()
            .checked_sub(Duration::from_secs(TRASH_DAYS * 86_400))
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for e in self.list() {
            if e.deleted_at < cutoff {
                let _ = std::fs::remove_dir_all(self.dir.join(&e.id));
            }
        }
    }
}
