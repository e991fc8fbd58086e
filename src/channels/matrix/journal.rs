//! The Matrix journal in `hermit.db`: every event the bot handles and its
//! delivery state (`matrix_events`), the sync token (`matrix_sync`), and
//! each room's conversation epoch and taint (`matrix_rooms`).
//!
//! Every SQL statement of the channel is here, behind typed functions.
//! An incoming message is recorded (pending) before it is answered; its
//! reply's event ID when the first part of the reply is sent; the whole
//! reply, its status and timings when the final edit is sent.
//!
//! The words of a conversation are kept in one place. With memory on (the
//! default), memory keeps them: once a message is answered, the journal
//! blanks its body and points at the reply's row in memory (`reply_rows`),
//! and a room's conversation is rebuilt from memory after a restart; what
//! the journal still holds in words is what Hermit said itself (a
//! command's answer, a refusal, an apology). With memory off, the journal
//! is the only place: it keeps the words, and the conversation is rebuilt
//! from it ([`Journal::history`]).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::vocab::now_ms;

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Recorded, not answered yet (answered after a restart too).
    Pending,
    /// Answered (also: a trust command or reaction acted on at once).
    Answered,
    /// Recorded, never to be answered (too old in a first sync; its
    /// sender no longer allowed).
    Skipped,
    /// Could not be answered: the bot is no longer in the room.
    Failed,
    /// Could not be decrypted yet; fetched again as its keys may come.
    Undecryptable,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Answered => "answered",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Undecryptable => "undecryptable",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Status::Pending,
            "answered" => Status::Answered,
            "skipped" => Status::Skipped,
            "failed" => Status::Failed,
            "undecryptable" => Status::Undecryptable,
            _ => return None,
        })
    }
}

/// A room's event as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomEvent {
    pub room_id: String,
    pub event_id: String,
}

/// An incoming message to record.
#[derive(Debug, Clone)]
pub(super) struct NewMessage<'a> {
    pub event_id: &'a str,
    pub room_id: &'a str,
    pub sender: &'a str,
    /// The text (a voice note: `\0audio:{json}`, until transcribed).
    pub body: &'a str,
    /// The homeserver's timestamp, in ms.
    pub origin_ts: i64,
    /// Recorded as skipped: never answered.
    pub skip: bool,
}

/// A recorded message, as its room's worker reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub body: String,
    pub epoch: i64,
    /// `None`: a status this Hermit does not know (left alone).
    pub status: Option<Status>,
    /// The first part of the reply, once sent.
    pub reply_event_id: Option<String>,
    pub received_at: i64,
    pub sender: String,
}

/// One exchange of a room's conversation: a message and its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exchange {
    pub body: String,
    pub reply: Option<String>,
    pub sender: String,
}

/// Where a reply's words are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply<'a> {
    /// Here, in words: what Hermit said itself, or every reply with memory
    /// off.
    Text(&'a str),
    /// In memory, at this row: the journal keeps only that it was
    /// delivered.
    Kept(i64),
}

/// How long an answer took, kept with it (`hermit bench matrix`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timings {
    /// From receipt to the first streamed edit (or the final one).
    pub first_edit_ms: i64,
    pub final_edit_ms: i64,
    pub model_ttft_ms: Option<f64>,
    pub model_total_ms: Option<f64>,
}

/// The journal, on its own connection to `hermit.db`.
pub(super) struct Journal {
    db: Mutex<Connection>,
}

/// Undecryptable events are fetched again during this long after they
/// arrived (and once after each start).
const UNDECRYPTABLE_RETRY_MS: i64 = 120_000;

impl Journal {
    pub(crate) fn open(db_path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            db: Mutex::new(crate::db::open(db_path)?),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events left pending (by the last run), oldest first.
    pub(crate) fn pending(&self) -> rusqlite::Result<Vec<RoomEvent>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT room_id, event_id FROM matrix_events WHERE status = 'pending' ORDER BY received_at",
        )?;
        stmt.query_map([], |r| {
            Ok(RoomEvent {
                room_id: r.get(0)?,
                event_id: r.get(1)?,
            })
        })?
        .collect()
    }

    /// The sync token the next sync starts from; `None` before the first.
    pub(crate) fn sync_token(&self) -> rusqlite::Result<Option<String>> {
        self.db()
            .query_row("SELECT token FROM matrix_sync WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
    }

    /// Advances the sync token: only once every event of that sync is
    /// recorded.
    pub(crate) fn set_sync_token(&self, token: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO matrix_sync (id, token) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET token = excluded.token",
            [token],
        )?;
        Ok(())
    }

    /// Keeps an event that could not be decrypted, so that it is fetched
    /// again (also after a restart).
    pub(crate) fn record_undecryptable(
        &self,
        event_id: &str,
        room_id: &str,
        sender: &str,
    ) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT OR IGNORE INTO matrix_events
               (event_id, room_id, sender, body, epoch, origin_ts, received_at, status)
             VALUES (?1, ?2, ?3, '', 0, ?4, ?4, 'undecryptable')",
            params![event_id, room_id, sender, now_ms()],
        )?;
        Ok(())
    }

    /// The undecryptable events to fetch again: those of the last two
    /// minutes, or (`all`) every one.
    pub(crate) fn undecryptable(&self, all: bool) -> Vec<RoomEvent> {
        let db = self.db();
        db.prepare(
            "SELECT room_id, event_id FROM matrix_events
             WHERE status = 'undecryptable' AND (?2 OR received_at > ?1 - ?3)",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![now_ms(), all, UNDECRYPTABLE_RETRY_MS], |r| {
                Ok(RoomEvent {
                    room_id: r.get(0)?,
                    event_id: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default()
    }

    /// An undecryptable event is decrypted at last: recorded again as what
    /// it is.
    pub(crate) fn forget_undecryptable(&self, event_id: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "DELETE FROM matrix_events WHERE event_id = ?1 AND status = 'undecryptable'",
            [event_id],
        )?;
        Ok(())
    }

    /// Records an incoming message in its room's current conversation,
    /// pending (or skipped). True if it was new.
    pub(crate) fn record(&self, m: &NewMessage) -> rusqlite::Result<bool> {
        let db = self.db();
        let epoch = epoch(&db, m.room_id).ok().unwrap_or(0);
        let inserted = db.execute(
            "INSERT OR IGNORE INTO matrix_events
               (event_id, room_id, sender, body, epoch, origin_ts, received_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                m.event_id,
                m.room_id,
                m.sender,
                m.body,
                epoch,
                m.origin_ts,
                now_ms(),
                if m.skip {
                    Status::Skipped
                } else {
                    Status::Pending
                }
                .as_str(),
            ],
        )?;
        Ok(inserted == 1)
    }

    /// Records an event handled at once (a trust command, a reaction), so
    /// that the same event synced again (a gap fetched, a restart) acts
    /// only once. True the first time.
    pub(crate) fn record_handled(
        &self,
        event_id: &str,
        room_id: &str,
        sender: &str,
        body: &str,
        origin_ts: i64,
    ) -> rusqlite::Result<bool> {
        let inserted = self.db().execute(
            "INSERT OR IGNORE INTO matrix_events
               (event_id, room_id, sender, body, epoch, origin_ts, received_at, status, answered_at)
             VALUES (?1, ?2, ?3, ?4, -1, ?5, ?6, 'answered', ?6)",
            params![event_id, room_id, sender, body, origin_ts, now_ms()],
        )?;
        Ok(inserted == 1)
    }

    pub(crate) fn entry(&self, event_id: &str) -> rusqlite::Result<Option<Entry>> {
        self.db()
            .query_row(
                "SELECT body, epoch, status, reply_event_id, received_at, sender FROM matrix_events WHERE event_id = ?1",
                [event_id],
                |r| {
                    Ok(Entry {
                        body: r.get(0)?,
                        epoch: r.get(1)?,
                        status: Status::parse(&r.get::<_, String>(2)?),
                        reply_event_id: r.get(3)?,
                        received_at: r.get(4)?,
                        sender: r.get(5)?,
                    })
                },
            )
            .optional()
    }

    /// Never to be answered (its sender is no longer allowed).
    pub(crate) fn mark_skipped(&self, event_id: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "UPDATE matrix_events SET status = 'skipped' WHERE event_id = ?1",
            [event_id],
        )?;
        Ok(())
    }

    /// Could not be answered: the bot is not in the room.
    pub(crate) fn mark_failed(&self, event_id: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "UPDATE matrix_events SET status = 'failed', answered_at = ?2 WHERE event_id = ?1",
            params![event_id, now_ms()],
        )?;
        Ok(())
    }

    /// The message's text from now on (a voice note's transcript).
    pub(crate) fn set_body(&self, event_id: &str, body: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "UPDATE matrix_events SET body = ?2 WHERE event_id = ?1",
            params![event_id, body],
        )?;
        Ok(())
    }

    /// The first part of the reply is sent: edits replace it.
    pub(crate) fn set_reply_event(
        &self,
        event_id: &str,
        reply_event_id: &str,
    ) -> rusqlite::Result<()> {
        self.db().execute(
            "UPDATE matrix_events SET reply_event_id = ?2 WHERE event_id = ?1",
            params![event_id, reply_event_id],
        )?;
        Ok(())
    }

    /// The whole reply is sent. A reply kept in memory is recorded by its
    /// row, and the message's body (kept in memory too) is blanked.
    pub(crate) fn finish(&self, event_id: &str, reply: Reply, t: &Timings) -> rusqlite::Result<()> {
        let (text, row) = match reply {
            Reply::Text(text) => (Some(text), None),
            Reply::Kept(row) => (None, Some(row)),
        };
        self.db().execute(
            "UPDATE matrix_events SET status = 'answered', reply = ?2, answered_at = ?3,
                first_edit_ms = ?4, final_edit_ms = ?5, model_ttft_ms = ?6, model_total_ms = ?7,
                reply_rows = CASE WHEN ?8 IS NULL THEN NULL ELSE json_array(?8) END,
                body = CASE WHEN ?8 IS NULL THEN body ELSE '' END
             WHERE event_id = ?1",
            params![
                event_id,
                text,
                now_ms(),
                t.first_edit_ms,
                t.final_edit_ms,
                t.model_ttft_ms,
                t.model_total_ms,
                row,
            ],
        )?;
        Ok(())
    }

    /// Adds to a recorded reply what came of it later (an approved call's
    /// result): the conversation rebuilt after a restart has it.
    pub(crate) fn append_reply(&self, event_id: &str, more: Reply) -> rusqlite::Result<()> {
        match more {
            Reply::Text(more) => self.db().execute(
                "UPDATE matrix_events SET reply = COALESCE(reply || char(10) || char(10), '') || ?2
                 WHERE event_id = ?1",
                params![event_id, more],
            )?,
            Reply::Kept(row) => self.db().execute(
                "UPDATE matrix_events SET reply_rows = json_insert(COALESCE(reply_rows, '[]'), '$[#]', ?2)
                 WHERE event_id = ?1",
                params![event_id, row],
            )?,
        };
        Ok(())
    }

    /// The rows in memory where a recorded reply is kept, in order.
    #[cfg(test)]
    fn reply_rows(&self, event_id: &str) -> rusqlite::Result<Vec<i64>> {
        let rows: Option<String> = self.db().query_row(
            "SELECT reply_rows FROM matrix_events WHERE event_id = ?1",
            [event_id],
            |r| r.get(0),
        )?;
        Ok(rows
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }

    /// The room's conversation in force now, the message moved into it
    /// (a `!new` may have come after the message arrived).
    pub(crate) fn move_to_current(
        &self,
        event_id: &str,
        room_id: &str,
        was: i64,
    ) -> rusqlite::Result<i64> {
        let db = self.db();
        let now = epoch(&db, room_id)?;
        if now != was {
            db.execute(
                "UPDATE matrix_events SET epoch = ?2 WHERE event_id = ?1",
                params![event_id, now],
            )?;
        }
        Ok(now)
    }

    /// `!new`: the room's next conversation, without a taint.
    pub(crate) fn new_epoch(&self, room_id: &str) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO matrix_rooms (room_id, epoch) VALUES (?1, 1)
             ON CONFLICT (room_id) DO UPDATE SET epoch = epoch + 1, taint = NULL",
            [room_id],
        )?;
        Ok(())
    }

    /// Keeps the taint of the room's conversation `epoch` (if still the
    /// room's), so that it outlives a restart.
    pub(crate) fn keep_taint(
        &self,
        room_id: &str,
        epoch: i64,
        taint: &str,
    ) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO matrix_rooms (room_id, epoch, taint) VALUES (?1, ?2, ?3)
             ON CONFLICT (room_id) DO UPDATE SET taint = excluded.taint WHERE epoch = excluded.epoch",
            params![room_id, epoch, taint],
        )?;
        Ok(())
    }

    pub(crate) fn taint(&self, room_id: &str, epoch: i64) -> rusqlite::Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT taint FROM matrix_rooms WHERE room_id = ?1 AND epoch = ?2",
                params![room_id, epoch],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// The answered messages of the room's conversation `epoch` and their
    /// replies, in order; commands and what the model was not given
    /// (internal bodies, which start with a NUL: a voice note that could
    /// not be heard, another kind of message) left out. (SQLite's text
    /// functions stop at a NUL, so the first byte is read as a blob.)
    pub(crate) fn history(&self, room_id: &str, epoch: i64) -> rusqlite::Result<Vec<Exchange>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT body, reply, sender FROM matrix_events
             WHERE room_id = ?1 AND epoch = ?2 AND status = 'answered' AND body NOT LIKE '!%'
               AND hex(substr(CAST(body AS BLOB), 1, 1)) != '00'
             ORDER BY origin_ts",
        )?;
        stmt.query_map(params![room_id, epoch], |r| {
            Ok(Exchange {
                body: r.get(0)?,
                reply: r.get(1)?,
                sender: r.get(2)?,
            })
        })?
        .collect()
    }

    /// The room where `sender` last wrote to the bot.
    pub(crate) fn last_room_of(&self, sender: &str) -> Option<String> {
        self.db()
            .query_row(
                "SELECT room_id FROM matrix_events WHERE sender = ?1 ORDER BY origin_ts DESC LIMIT 1",
                [sender],
                |r| r.get::<_, String>(0),
            )
            .ok()
    }
}

/// The room's current conversation (0 before its first `!new`).
fn epoch(db: &Connection, room_id: &str) -> rusqlite::Result<i64> {
    Ok(db
        .query_row(
            "SELECT epoch FROM matrix_rooms WHERE room_id = ?1",
            [room_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("hermit.db")).unwrap();
        (dir, j)
    }

    fn message<'a>(event_id: &'a str, body: &'a str, origin_ts: i64) -> NewMessage<'a> {
        NewMessage {
            event_id,
            room_id: "!r:box",
            sender: "@owner:box",
            body,
            origin_ts,
            skip: false,
        }
    }

    #[test]
    fn a_message_is_recorded_once_and_answered_once() {
        let (_d, j) = journal();
        assert!(j.record(&message("$1", "hello", 10)).unwrap());
        assert!(!j.record(&message("$1", "hello", 10)).unwrap());
        let pending = j.pending().unwrap();
        assert_eq!(
            pending,
            vec![RoomEvent {
                room_id: "!r:box".into(),
                event_id: "$1".into()
            }]
        );
        let e = j.entry("$1").unwrap().unwrap();
        assert_eq!(e.status, Some(Status::Pending));
        assert_eq!((e.body.as_str(), e.epoch), ("hello", 0));
        j.set_reply_event("$1", "$r1").unwrap();
        j.finish("$1", Reply::Text("hi there"), &Timings::default())
            .unwrap();
        let e = j.entry("$1").unwrap().unwrap();
        assert_eq!(e.status, Some(Status::Answered));
        assert_eq!(e.reply_event_id.as_deref(), Some("$r1"));
        assert!(j.pending().unwrap().is_empty());
        assert_eq!(j.last_room_of("@owner:box").as_deref(), Some("!r:box"));
        assert_eq!(j.last_room_of("@else:box"), None);
    }

    #[test]
    fn the_history_is_the_answered_messages_of_the_current_conversation() {
        let (_d, j) = journal();
        for (id, body, ts) in [
            ("$1", "first", 1),
            ("$2", "!help", 2),
            ("$3", "\0audio:{}", 3),
        ] {
            j.record(&message(id, body, ts)).unwrap();
            j.finish(id, Reply::Text("reply"), &Timings::default())
                .unwrap();
        }
        j.record(&message("$4", "unanswered", 4)).unwrap();
        let h = j.history("!r:box", 0).unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].body, "first");
        assert_eq!(h[0].reply.as_deref(), Some("reply"));
        // `!new`: a fresh conversation, the pending message moved into it.
        j.keep_taint("!r:box", 0, "web page").unwrap();
        assert_eq!(j.taint("!r:box", 0).unwrap().as_deref(), Some("web page"));
        j.new_epoch("!r:box").unwrap();
        assert_eq!(j.taint("!r:box", 1).unwrap(), None);
        assert_eq!(j.move_to_current("$4", "!r:box", 0).unwrap(), 1);
        assert_eq!(j.entry("$4").unwrap().unwrap().epoch, 1);
        assert!(j.history("!r:box", 1).unwrap().is_empty());
        // The taint of an old conversation does not land on the new one.
        j.keep_taint("!r:box", 0, "old").unwrap();
        assert_eq!(j.taint("!r:box", 1).unwrap(), None);
    }

    #[test]
    fn a_reply_kept_in_memory_leaves_no_words_in_the_journal() {
        let (_d, j) = journal();
        j.record(&message("$1", "what is my lock code?", 1))
            .unwrap();
        j.finish("$1", Reply::Kept(7), &Timings::default()).unwrap();
        j.append_reply("$1", Reply::Kept(9)).unwrap();
        let e = j.entry("$1").unwrap().unwrap();
        assert_eq!(e.status, Some(Status::Answered));
        assert_eq!(e.body, "", "the message's words stay in memory only");
        assert_eq!(j.reply_rows("$1").unwrap(), vec![7, 9]);
        let reply: Option<String> = j
            .db()
            .query_row(
                "SELECT reply FROM matrix_events WHERE event_id = '$1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(reply, None);
        // Hermit's own words (a command's answer) stay here.
        j.record(&message("$2", "!help", 2)).unwrap();
        j.finish("$2", Reply::Text("Hermit: …"), &Timings::default())
            .unwrap();
        assert_eq!(j.entry("$2").unwrap().unwrap().body, "!help");
        assert!(j.reply_rows("$2").unwrap().is_empty());
    }

    #[test]
    fn handled_events_act_once_and_undecryptable_ones_wait() {
        let (_d, j) = journal();
        assert!(
            j.record_handled("$a", "!r:box", "@owner:box", "!stop", 1)
                .unwrap()
        );
        assert!(
            !j.record_handled("$a", "!r:box", "@owner:box", "!stop", 1)
                .unwrap()
        );
        j.record_undecryptable("$u", "!r:box", "@owner:box")
            .unwrap();
        assert_eq!(j.undecryptable(false).len(), 1);
        assert_eq!(j.undecryptable(true).len(), 1);
        j.forget_undecryptable("$u").unwrap();
        assert!(j.undecryptable(true).is_empty());
        assert_eq!(j.sync_token().unwrap(), None);
        j.set_sync_token("s1").unwrap();
        j.set_sync_token("s2").unwrap();
        assert_eq!(j.sync_token().unwrap().as_deref(), Some("s2"));
        j.record(&message("$m", "hi", 5)).unwrap();
        j.mark_failed("$m").unwrap();
        assert_eq!(j.entry("$m").unwrap().unwrap().status, Some(Status::Failed));
        j.record(&NewMessage {
            skip: true,
            ..message("$s", "old", 6)
        })
        .unwrap();
        assert_eq!(
            j.entry("$s").unwrap().unwrap().status,
            Some(Status::Skipped)
        );
        assert!(j.pending().unwrap().is_empty());
    }
}
