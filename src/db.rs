//! `hermit.db`: the SQLite database, source of truth for what Hermit keeps
//! (the owner's notes, the Matrix channel's journal, approvals, the stop
//! switch and the audit chain; memories and reminders as they are built).
//!
//! WAL mode, foreign keys on. The schema is a list of migrations applied in
//! order on open and recorded in `PRAGMA user_version`, so a database of any
//! earlier version is brought up to date, and a database from a newer Hermit
//! is refused rather than misread.

pub(crate) mod notes;

use std::path::Path;

use rusqlite::Connection;

/// Each entry moves the schema one version up. Never edit a released
/// entry: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: notes
    "CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );",
    // 2: the Matrix channel's journal. Every incoming event is recorded
    // before it is answered and marked when its answer is sent; the sync
    // token advances only after the events of a sync are recorded.
    "CREATE TABLE matrix_sync (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        token TEXT NOT NULL
    );
    CREATE TABLE matrix_rooms (
        room_id TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE matrix_events (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        body TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        origin_ts INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        reply_event_id TEXT,
        reply TEXT,
        answered_at INTEGER,
        first_edit_ms INTEGER,
        final_edit_ms INTEGER,
        model_ttft_ms REAL,
        model_total_ms REAL
    );
    CREATE INDEX matrix_events_room ON matrix_events(room_id, epoch, origin_ts);
    CREATE INDEX matrix_events_pending ON matrix_events(status) WHERE status = 'pending';",
    // 3: the trust layer. Approval requests bound to a call's hash; the
    // stop switch; the append-only, hash-chained audit log (triggers
    // refuse edits; `hermit audit verify` catches edits made around them);
    // the taint of a room's conversation, kept across restarts.
    "CREATE TABLE approvals (
        code TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        effects TEXT NOT NULL,
        conversation TEXT NOT NULL,
        requester TEXT NOT NULL,
        place TEXT NOT NULL,
        taint TEXT,
        reason TEXT NOT NULL,
        request_event TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        decided_by TEXT,
        decided_at INTEGER
    );
    CREATE INDEX approvals_event ON approvals(request_event);
    CREATE TABLE trust_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        data TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    ALTER TABLE matrix_rooms ADD COLUMN taint TEXT;",
    // 4: a note written in a turn that had read untrusted text keeps the
    // label of that source.
    "ALTER TABLE notes ADD COLUMN taint TEXT;",
    // 5: memory. Conversations and their messages (who said it, where,
    // when, from what source), voice transcripts, remembered facts; notes
    // belong to a principal (the owner's until now). `embedding` holds the
    // row's sentence embedding (384 little-endian f32) once computed.
    // Triggers log every change in `memory_log`, from which the full-text
    // index is kept up to date (the index records the last `seq` it holds,
    // so rows written while it was down are indexed on the next start).
    "CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        room TEXT,
        started_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation TEXT NOT NULL,
        principal TEXT NOT NULL,
        sender TEXT NOT NULL,
        room TEXT,
        role TEXT NOT NULL,
        origin TEXT,
        body TEXT NOT NULL,
        ts INTEGER NOT NULL,
        embedding BLOB
    );
    CREATE INDEX messages_principal ON messages(principal, ts);
    CREATE INDEX messages_conversation ON messages(conversation);
    CREATE INDEX messages_unembedded ON messages(id) WHERE embedding IS NULL;
    CREATE TABLE transcripts (
        id INTEGER PRIMARY KEY,
        principal TEXT NOT NULL,
        room TEXT,
        event_id TEXT,
        language TEXT,
        body TEXT NOT NULL,
        ts INTEGER NOT NULL,
        embedding BLOB
    );
    CREATE TABLE facts (
        id INTEGER PRIMARY KEY,
        principal TEXT NOT NULL,
        body TEXT NOT NULL,
        origin TEXT,
        pinned INTEGER NOT NULL DEFAULT 0,
        conversation TEXT,
        ts INTEGER NOT NULL,
        embedding BLOB
    );
    CREATE INDEX facts_principal ON facts(principal, pinned);
    ALTER TABLE notes ADD COLUMN principal TEXT NOT NULL DEFAULT 'owner';
    ALTER TABLE notes ADD COLUMN embedding BLOB;
    CREATE TABLE memory_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        row_id INTEGER NOT NULL,
        op TEXT NOT NULL
    );
    CREATE TRIGGER messages_log_i AFTER INSERT ON messages
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('message', new.id, 'i'); END;
    CREATE TRIGGER messages_log_u AFTER UPDATE OF body, principal, origin ON messages
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('message', new.id, 'u'); END;
    CREATE TRIGGER messages_log_d AFTER DELETE ON messages
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('message', old.id, 'd'); END;
    CREATE TRIGGER transcripts_log_i AFTER INSERT ON transcripts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('transcript', new.id, 'i'); END;
    CREATE TRIGGER transcripts_log_u AFTER UPDATE OF body, principal ON transcripts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('transcript', new.id, 'u'); END;
    CREATE TRIGGER transcripts_log_d AFTER DELETE ON transcripts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('transcript', old.id, 'd'); END;
    CREATE TRIGGER facts_log_i AFTER INSERT ON facts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('fact', new.id, 'i'); END;
    CREATE TRIGGER facts_log_u AFTER UPDATE OF body, principal, origin, pinned ON facts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('fact', new.id, 'u'); END;
    CREATE TRIGGER facts_log_d AFTER DELETE ON facts
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('fact', old.id, 'd'); END;
    CREATE TRIGGER notes_log_i AFTER INSERT ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', new.id, 'i'); END;
    CREATE TRIGGER notes_log_u AFTER UPDATE OF title, body, taint, principal ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', new.id, 'u'); END;
    CREATE TRIGGER notes_log_d AFTER DELETE ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', old.id, 'd'); END;
    INSERT INTO memory_log (kind, row_id, op) SELECT 'note', id, 'i' FROM notes;",
    // 6: reminders and schedules. `next_at` is the next due instant (ms;
    // NULL once a one-off is done); a delivery row is written when an
    // occurrence falls due and marked when it is sent, so each occurrence
    // is delivered once, also across a crash.
    "CREATE TABLE reminders (
        id INTEGER PRIMARY KEY,
        principal TEXT NOT NULL,
        room TEXT,
        text TEXT NOT NULL,
        kind TEXT NOT NULL,
        rule TEXT,
        tz TEXT NOT NULL,
        next_at INTEGER,
        status TEXT NOT NULL DEFAULT 'active',
        origin TEXT,
        created_at INTEGER NOT NULL,
        fired_count INTEGER NOT NULL DEFAULT 0,
        last_fired_at INTEGER
    );
    CREATE INDEX reminders_due ON reminders(next_at) WHERE status = 'active';
    CREATE TABLE reminder_deliveries (
        reminder INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        fired_at INTEGER NOT NULL,
        late INTEGER NOT NULL,
        delivered_at INTEGER,
        event_id TEXT,
        PRIMARY KEY (reminder, due_at)
    );",
    // 7: what a schedule does when due (`remind`: send its text; `task`:
    // run a turn of the agent with its text; `briefing`: the morning
    // briefing; `watch`: never due, shown in the briefing), the effects a
    // task was granted when the owner created it, and when the person
    // marked a delivered reminder done.
    "ALTER TABLE reminders ADD COLUMN action TEXT NOT NULL DEFAULT 'remind';
    ALTER TABLE reminders ADD COLUMN grants TEXT;
    ALTER TABLE reminder_deliveries ADD COLUMN done_at INTEGER;",
    // 8: notes are each person's own: a title is unique per person, not
    // for the whole household (rebuilt, ids kept, so the memory index
    // stays right).
    "CREATE TABLE notes_by_person (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        taint TEXT,
        principal TEXT NOT NULL DEFAULT 'owner',
        embedding BLOB,
        UNIQUE (principal, title)
    );
    INSERT INTO notes_by_person (id, title, body, created_at, updated_at, taint, principal, embedding)
        SELECT id, title, body, created_at, updated_at, taint, principal, embedding FROM notes;
    DROP TABLE notes;
    ALTER TABLE notes_by_person RENAME TO notes;
    CREATE TRIGGER notes_log_i AFTER INSERT ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', new.id, 'i'); END;
    CREATE TRIGGER notes_log_u AFTER UPDATE OF title, body, taint, principal ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', new.id, 'u'); END;
    CREATE TRIGGER notes_log_d AFTER DELETE ON notes
        BEGIN INSERT INTO memory_log (kind, row_id, op) VALUES ('note', old.id, 'd'); END;",
    // A reply kept in memory is recorded by its rows there, not in words.
    "ALTER TABLE matrix_events ADD COLUMN reply_rows TEXT;",
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this Hermit knows ({known}); upgrade Hermit"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

/// Opens (creating if needed) and migrates the database.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let err = |source| DbError::Sqlite {
        path: path.display().to_string(),
        source,
    };
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .map_err(err)?;
    migrate(&mut conn).map_err(|e| match e {
        MigrateError::Sqlite(source) => err(source),
        MigrateError::TooNew(found) => DbError::TooNew {
            path: path.display().to_string(),
            found,
            known: MIGRATIONS.len() as i64,
        },
    })?;
    Ok(conn)
}

enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew(i64),
}

fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(MigrateError::Sqlite)?;
    if version > MIGRATIONS.len() as i64 {
        return Err(MigrateError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(MigrateError::Sqlite)?;
        tx.execute_batch(sql).map_err(MigrateError::Sqlite)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(MigrateError::Sqlite)?;
        tx.commit().map_err(MigrateError::Sqlite)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A database made at every earlier version, with rows in it, is
    /// brought up to date and keeps its rows; the memory log then lists
    /// the notes written before memory existed, so they get indexed.
    #[test]
    fn migrates_from_every_earlier_version() {
        for from in 1..super::MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hermit.db");
            {
                let mut conn = rusqlite::Connection::open(&path).unwrap();
                for (i, sql) in super::MIGRATIONS.iter().enumerate().take(from) {
                    let tx = conn.transaction().unwrap();
                    tx.execute_batch(sql).unwrap();
                    tx.pragma_update(None, "user_version", (i + 1) as i64)
                        .unwrap();
                    tx.commit().unwrap();
                }
                conn.execute(
                    "INSERT INTO notes (title, body, created_at, updated_at) VALUES ('groceries', 'buy leeks', 1, 1)",
                    [],
                )
                .unwrap();
            }
            let conn = super::open(&path).unwrap();
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, super::MIGRATIONS.len() as i64, "from version {from}");
            let (body, principal): (String, String) = conn
                .query_row(
                    "SELECT body, principal FROM notes WHERE title = 'groceries'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((body.as_str(), principal.as_str()), ("buy leeks", "owner"));
            let logged: i64 = conn
                .query_row(
                    "SELECT count(*) FROM memory_log WHERE kind = 'note'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(logged, 1, "from version {from}");
        }
    }

    #[test]
    fn migrates_from_empty_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hermit.db");
        let conn = super::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = super::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
