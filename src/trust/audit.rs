//! The audit log: append-only and hash-chained, in `hermit.db`.
//!
//! Each entry holds its sequence number, time, kind, actor and data (JSON,
//! redacted; messages are recorded by metadata and a hash of their
//! content), the previous entry's hash and its own: SHA-256 over all of
//! these. Triggers refuse updates and deletions through SQLite; someone
//! who edits the file anyway is caught by [`verify`], which recomputes the
//! chain and says where it breaks. The head (last sequence number and
//! hash) is also written to `<data>/audit.head` after each append, so
//! entries cut from the end are caught too.

use crate::vocab::{AuditKind, now_ms};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub kind: String,
    pub actor: String,
    pub data: serde_json::Value,
    pub prev: String,
    pub hash: String,
}

/// SHA-256 of `text`, as hex.
pub(crate) fn sha256_hex(text: &[u8]) -> String {
    Sha256::digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entry_hash(prev: &str, seq: i64, ts: i64, kind: &str, actor: &str, data: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        seq.to_string().as_bytes(),
        ts.to_string().as_bytes(),
        kind.as_bytes(),
        actor.as_bytes(),
        data.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends entries to the log of one database.
pub struct Audit {
    db: std::sync::Mutex<Connection>,
    head: PathBuf,
}

impl Audit {
    pub(crate) fn open(data_dir: &Path) -> Result<Self, crate::db::DbError> {
        let db = crate::db::open(&data_dir.join("hermit.db"))?;
        Ok(Self {
            db: std::sync::Mutex::new(db),
            head: data_dir.join("audit.head"),
        })
    }

    /// Appends one entry. `data` is redacted before it is stored. Never
    /// fails the caller's work: a failure to audit is logged loudly.
    pub fn record(&self, kind: AuditKind, actor: &str, data: serde_json::Value) {
        if let Err(e) = self.try_record(kind, actor, data) {
            tracing::error!(error = %e, kind = kind.as_str(), "cannot append to the audit log");
        }
    }

    pub(crate) fn try_record(
        &self,
        kind: AuditKind,
        actor: &str,
        data: serde_json::Value,
    ) -> Result<Entry, rusqlite::Error> {
        let kind = kind.as_str();
        let data = super::redact::redact(&data.to_string());
        let mut db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        // IMMEDIATE: another process appending waits, so the chain is one.
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        let ts = now_ms();
        let hash = entry_hash(&prev, seq, ts, kind, actor, &data);
        tx.execute(
            "INSERT INTO audit (seq, ts, kind, actor, data, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![seq, ts, kind, actor, data, prev, hash],
        )?;
        tx.commit()?;
        if let Err(e) = write_head(&self.head, seq, &hash) {
            tracing::error!(error = %e, "cannot write the audit head");
        }
        drop(db);
        Ok(Entry {
            seq,
            ts,
            kind: kind.into(),
            actor: actor.into(),
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            prev,
            hash,
        })
    }

    /// The latest entry of `kind`, if any.
    pub(crate) fn last_of(&self, kind: AuditKind) -> Option<Entry> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        read_entries(
            &db,
            "WHERE kind = ?1 ORDER BY seq DESC LIMIT 1",
            [kind.as_str()],
        )
        .ok()?
        .pop()
    }
}

/// Records the newest entry in the head file, under an exclusive lock,
/// and only if it is newer than what is there (another process may have
/// appended meanwhile).
fn write_head(path: &Path, seq: i64, hash: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; released when `f` closes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let current = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    if seq > current {
        f.set_len(0)?;
        f.seek(std::io::SeekFrom::Start(0))?;
        f.write_all(format!("{seq} {hash}\n").as_bytes())?;
        f.sync_data()?;
    }
    Ok(())
}

fn read_entries<P: rusqlite::Params>(
    db: &Connection,
    tail: &str,
    p: P,
) -> Result<Vec<Entry>, rusqlite::Error> {
    let mut stmt = db.prepare(&format!(
        "SELECT seq, ts, kind, actor, data, prev, hash FROM audit {tail}"
    ))?;
    let rows = stmt.query_map(p, |r| {
        let data: String = r.get(4)?;
        Ok(Entry {
            seq: r.get(0)?,
            ts: r.get(1)?,
            kind: r.get(2)?,
            actor: r.get(3)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
            prev: r.get(5)?,
            hash: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Entries after `after` (a sequence number), in order, at most `limit`.
pub fn entries_after(
    db: &Connection,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, rusqlite::Error> {
    read_entries(
        db,
        "WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        params![after, limit],
    )
}

/// The last `n` entries, in order.
pub fn tail(db: &Connection, n: i64) -> Result<Vec<Entry>, rusqlite::Error> {
    let mut v = read_entries(db, "ORDER BY seq DESC LIMIT ?1", [n])?;
    v.reverse();
    Ok(v)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: i64,
    /// The first problem, if any, with the entry where it is.
    pub problem: Option<String>,
    pub at: Option<i64>,
}

/// Recomputes the chain: every entry's hash, every link to the one
/// before, no gap in the sequence, and the head file.
pub fn verify(db: &Connection, data_dir: &Path) -> Result<Verification, rusqlite::Error> {
    let mut stmt =
        db.prepare("SELECT seq, ts, kind, actor, data, prev, hash FROM audit ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS.to_string();
    let mut count = 0i64;
    let fail = |count, problem: String, at| {
        Ok(Verification {
            entries: count,
            problem: Some(problem),
            at: Some(at),
        })
    };
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let ts: i64 = r.get(1)?;
        let kind: String = r.get(2)?;
        let actor: String = r.get(3)?;
        let data: String = r.get(4)?;
        let prev: String = r.get(5)?;
        let hash: String = r.get(6)?;
        count += 1;
        if seq != expected_seq {
            return if seq > expected_seq {
                fail(
                    count,
                    format!(
                        "entries {expected_seq} to {} are missing (deleted)",
                        seq - 1
                    ),
                    expected_seq,
                )
            } else {
                fail(
                    count,
                    format!(
                        "entry {seq} is out of order (expected {expected_seq}): reordered or inserted"
                    ),
                    seq,
                )
            };
        }
        if entry_hash(&prev, seq, ts, &kind, &actor, &data) != hash {
            return fail(
                count,
                format!("entry {seq} was modified (its content does not match its hash)"),
                seq,
            );
        }
        if prev != prev_hash {
            return fail(
                count,
                format!(
                    "entry {seq} does not follow entry {} (the chain was rewritten or reordered)",
                    seq - 1
                ),
                seq,
            );
        }
        prev_hash = hash;
        expected_seq += 1;
    }
    // Entries cut from the end leave a chain that is whole but short.
    let head = std::fs::read_to_string(data_dir.join("audit.head"));
    if head.is_err() && count > 0 {
        return fail(
            count,
            "audit.head is missing: entries may have been cut from the end of the log".into(),
            count,
        );
    }
    if let Ok(text) = head {
        let mut parts = text.split_whitespace();
        if let (Some(Ok(seq)), Some(hash)) = (parts.next().map(str::parse::<i64>), parts.next()) {
            if seq > count {
                return fail(
                    count,
                    format!(
                        "the log ends at entry {count} but entry {seq} was written (entries {} to {seq} deleted from the end)",
                        count + 1
                    ),
                    count + 1,
                );
            }
            let at: Option<String> = db
                .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
                .optional()?;
            if at.as_deref() != Some(hash) {
                return fail(
                    count,
                    format!("entry {seq} is not the one last written (the log was replaced)"),
                    seq,
                );
            }
        }
    }
    Ok(Verification {
        entries: count,
        problem: None,
        at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Audit) {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path()).unwrap();
        for i in 0..5 {
            audit.record(
                crate::vocab::AuditKind::ToolCall,
                "@o:b",
                serde_json::json!({"n": i}),
            );
        }
        (dir, audit)
    }

    fn raw(dir: &Path) -> Connection {
        let db = Connection::open(dir.join("hermit.db")).unwrap();
        // What an attacker with the file would do first.
        db.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
        db
    }

    fn problem(dir: &Path) -> (Option<String>, Option<i64>) {
        let db = Connection::open(dir.join("hermit.db")).unwrap();
        let v = verify(&db, dir).unwrap();
        (v.problem, v.at)
    }

    #[test]
    fn an_untouched_log_verifies_and_sqlite_refuses_edits() {
        let (dir, _audit) = setup();
        assert_eq!(problem(dir.path()), (None, None));
        let db = Connection::open(dir.path().join("hermit.db")).unwrap();
        assert!(
            db.execute("UPDATE audit SET actor = 'x' WHERE seq = 2", [])
                .is_err()
        );
        assert!(db.execute("DELETE FROM audit WHERE seq = 2", []).is_err());
    }

    #[test]
    fn modification_is_found_where_it_is() {
        let (dir, _audit) = setup();
        raw(dir.path())
            .execute("UPDATE audit SET data = '{\"n\":42}' WHERE seq = 3", [])
            .unwrap();
        let (p, at) = problem(dir.path());
        assert!(p.unwrap().contains("modified"));
        assert_eq!(at, Some(3));
    }

    #[test]
    fn deletion_in_the_middle_and_at_the_end_is_found() {
        let (dir, _audit) = setup();
        raw(dir.path())
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        let (p, at) = problem(dir.path());
        assert!(p.unwrap().contains("missing"));
        assert_eq!(at, Some(2));
        let (dir, _audit) = setup();
        raw(dir.path())
            .execute("DELETE FROM audit WHERE seq >= 4", [])
            .unwrap();
        let (p, at) = problem(dir.path());
        assert!(p.unwrap().contains("deleted from the end"));
        assert_eq!(at, Some(4));
    }

    #[test]
    fn reordering_is_found() {
        let (dir, _audit) = setup();
        // Swap the contents of entries 2 and 3, keeping sequence numbers.
        let db = raw(dir.path());
        let e = |s: i64| -> (i64, String, String, String, String, String) {
            db.query_row(
                "SELECT ts, kind, actor, data, prev, hash FROM audit WHERE seq = ?1",
                [s],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap()
        };
        let (a, b) = (e(2), e(3));
        for (seq, v) in [(2, &b), (3, &a)] {
            db.execute(
                "UPDATE audit SET ts=?2, kind=?3, actor=?4, data=?5, prev=?6, hash=?7 WHERE seq=?1",
                params![seq, v.0, v.1, v.2, v.3, v.4, v.5],
            )
            .unwrap();
        }
        let (p, at) = problem(dir.path());
        assert!(p.is_some());
        assert_eq!(at, Some(2));
    }

    #[test]
    fn secrets_never_reach_the_log() {
        let (dir, audit) = setup();
        let e = audit
            .try_record(
                crate::vocab::AuditKind::ToolCall,
                "@o:b",
                serde_json::json!({"cmd": "curl -H 'Authorization: Bearer abcdefgh12345678'"}),
            )
            .unwrap();
        assert!(!e.data.to_string().contains("abcdefgh12345678"));
        assert_eq!(problem(dir.path()), (None, None));
    }
}
