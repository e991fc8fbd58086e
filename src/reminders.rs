//! Reminders and schedules, kept in hermit.db.
//!
//! A one-off reminder is due at an instant; a recurring one follows a cron
//! rule in a timezone ([`crate::schedule`]). Deciding what is due needs no
//! model: the next due instant of every active reminder is stored, and the
//! daemon sleeps until the earliest. When an occurrence falls due,
//! [`Reminders::take_due`] writes a delivery row and moves the reminder on
//! in one transaction; the channel marks the delivery when it has sent it.
//! Occurrences missed while the box was off are delivered once, late,
//! saying so; a recurring reminder then continues from now (the missed
//! occurrences are not replayed one by one).

use std::path::PathBuf;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::schedule::{Cron, describe, timezone};

/// An occurrence counts as late (and says so) past this.
const LATE_MS: i64 = 60_000;

#[derive(Debug, Clone, Serialize)]
pub struct Reminder {
    pub id: i64,
    pub principal: String,
    pub room: Option<String>,
    pub text: String,
    /// `once` or `recurring`.
    pub kind: String,
    pub rule: Option<String>,
    pub tz: String,
    /// Milliseconds since the epoch.
    pub next_at: Option<i64>,
    pub status: String,
    pub origin: Option<String>,
    pub fired_count: i64,
}

impl Reminder {
    /// "on Friday 28 November 2026 at 18:00" / "every ... (next: ...)".
    pub fn when(&self) -> String {
        let tz = timezone(&self.tz).unwrap_or(jiff::tz::TimeZone::UTC);
        let next = self
            .next_at
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(|t| describe(t, &tz));
        match (&self.rule, next) {
            (Some(rule), Some(n)) => format!("{rule} ({}), next on {n}", self.tz_name()),
            (Some(rule), None) => format!("{rule} ({})", self.tz_name()),
            (None, Some(n)) => format!("on {n}"),
            (None, None) => "done".into(),
        }
    }

    fn tz_name(&self) -> &str {
        if self.tz.is_empty() {
            "local time"
        } else {
            &self.tz
        }
    }
}

/// An occurrence to deliver.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub reminder: i64,
    pub principal: String,
    pub room: Option<String>,
    pub text: String,
    pub due_at: i64,
    /// Due more than a minute before it was taken (the box was off).
    pub late: bool,
    /// The words to send.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("hermit.db: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

pub struct Reminders {
    db_path: PathBuf,
}

impl Reminders {
    pub fn open(data_dir: &std::path::Path) -> Result<Self, ReminderError> {
        let db_path = data_dir.join("hermit.db");
        drop(crate::db::open(&db_path)?);
        Ok(Self { db_path })
    }

    fn conn(&self) -> Result<Connection, ReminderError> {
        Ok(crate::db::open(&self.db_path)?)
    }

    /// A one-off reminder at `at`; refused in the past.
    pub fn add_once(
        &self,
        principal: &str,
        room: Option<&str>,
        text: &str,
        at: Timestamp,
        tz: &str,
        origin: Option<&str>,
    ) -> Result<Reminder, ReminderError> {
        let now = crate::db::now_ms();
        if at.as_millisecond() <= now {
            let zone = timezone(tz).map_err(ReminderError::Invalid)?;
            return Err(ReminderError::Invalid(format!(
                "{} is in the past",
                describe(at, &zone)
            )));
        }
        self.insert(
            principal,
            room,
            text,
            "once",
            None,
            tz,
            at.as_millisecond(),
            origin,
        )
    }

    /// A recurring reminder following `rule` in `tz`.
    pub fn add_recurring(
        &self,
        principal: &str,
        room: Option<&str>,
        text: &str,
        rule: &str,
        tz: &str,
        origin: Option<&str>,
    ) -> Result<Reminder, ReminderError> {
        let cron: Cron = rule.parse().map_err(ReminderError::Invalid)?;
        let zone = timezone(tz).map_err(ReminderError::Invalid)?;
        let now = Timestamp::from_millisecond(crate::db::now_ms()).unwrap_or(Timestamp::UNIX_EPOCH);
        let next = cron
            .next_after(now, &zone)
            .ok_or_else(|| ReminderError::Invalid(format!("{rule:?} never happens")))?;
        self.insert(
            principal,
            room,
            text,
            "recurring",
            Some(&cron.to_string()),
            tz,
            next.as_millisecond(),
            origin,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        principal: &str,
        room: Option<&str>,
        text: &str,
        kind: &str,
        rule: Option<&str>,
        tz: &str,
        next_at: i64,
        origin: Option<&str>,
    ) -> Result<Reminder, ReminderError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReminderError::Invalid(
                "the reminder's text is empty".into(),
            ));
        }
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO reminders (principal, room, text, kind, rule, tz, next_at, origin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![principal, room, text, kind, rule, tz, next_at, origin, crate::db::now_ms()],
        )?;
        let id = conn.last_insert_rowid();
        Ok(self.get(&conn, id)?.expect("just inserted"))
    }

    fn get(&self, conn: &Connection, id: i64) -> Result<Option<Reminder>, ReminderError> {
        Ok(conn
            .query_row(
                "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count
                 FROM reminders WHERE id = ?1",
                [id],
                row,
            )
            .optional()?)
    }

    /// Active reminders (every one with `all`), of `principal` if given,
    /// soonest first.
    pub fn list(&self, principal: Option<&str>, all: bool) -> Result<Vec<Reminder>, ReminderError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count
             FROM reminders WHERE (?1 IS NULL OR principal = ?1) AND (?2 OR status = 'active')
             ORDER BY next_at IS NULL, next_at, id",
        )?;
        let rows = stmt
            .query_map(params![principal, all], row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Cancels a reminder (of `principal` only, if given).
    pub fn cancel(
        &self,
        id: i64,
        principal: Option<&str>,
    ) -> Result<Option<Reminder>, ReminderError> {
        let conn = self.conn()?;
        let Some(r) = self.get(&conn, id)? else {
            return Ok(None);
        };
        if principal.is_some_and(|p| p != r.principal) || r.status != "active" {
            return Ok(None);
        }
        conn.execute(
            "UPDATE reminders SET status = 'cancelled', next_at = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(Some(r))
    }

    /// The earliest due instant of an active reminder.
    pub fn next_due(&self) -> Result<Option<i64>, ReminderError> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT min(next_at) FROM reminders WHERE status = 'active'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Takes every occurrence due at `now`: records its delivery and moves
    /// its reminder on, atomically. Returns those, and the deliveries of
    /// earlier calls that were never marked sent (a crash in between).
    pub fn take_due(&self, now: i64) -> Result<Vec<Due>, ReminderError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let due: Vec<Reminder> = {
            let mut stmt = tx.prepare(
                "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count
                 FROM reminders WHERE status = 'active' AND next_at <= ?1 ORDER BY next_at",
            )?;
            stmt.query_map([now], row)?.collect::<Result<_, _>>()?
        };
        for r in &due {
            let due_at = r.next_at.unwrap_or(now);
            tx.execute(
                "INSERT OR IGNORE INTO reminder_deliveries (reminder, due_at, fired_at, late)
                 VALUES (?1, ?2, ?3, ?4)",
                params![r.id, due_at, now, now - due_at > LATE_MS],
            )?;
            let next = match &r.rule {
                Some(rule) => {
                    let zone = timezone(&r.tz).unwrap_or(jiff::tz::TimeZone::UTC);
                    let after = Timestamp::from_millisecond(now.max(due_at))
                        .unwrap_or(Timestamp::UNIX_EPOCH);
                    rule.parse::<Cron>()
                        .ok()
                        .and_then(|c| c.next_after(after, &zone))
                        .map(|t| t.as_millisecond())
                }
                None => None,
            };
            tx.execute(
                "UPDATE reminders SET next_at = ?2, status = CASE WHEN ?2 IS NULL THEN 'done' ELSE status END,
                 fired_count = fired_count + 1, last_fired_at = ?3 WHERE id = ?1",
                params![r.id, next, now],
            )?;
        }
        let pending: Vec<Due> = {
            let mut stmt = tx.prepare(
                "SELECT d.reminder, r.principal, r.room, r.text, d.due_at, d.late, r.tz
                 FROM reminder_deliveries d JOIN reminders r ON r.id = d.reminder
                 WHERE d.delivered_at IS NULL ORDER BY d.due_at",
            )?;
            stmt.query_map([], |r| {
                let (text, due_at, late, tz): (String, i64, bool, String) =
                    (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                Ok(Due {
                    reminder: r.get(0)?,
                    principal: r.get(1)?,
                    room: r.get(2)?,
                    message: message(&text, due_at, late, &tz),
                    text,
                    due_at,
                    late,
                })
            })?
            .collect::<Result<_, _>>()?
        };
        tx.commit()?;
        Ok(pending)
    }

    /// Records that an occurrence was sent.
    pub fn mark_delivered(
        &self,
        reminder: i64,
        due_at: i64,
        event_id: Option<&str>,
    ) -> Result<(), ReminderError> {
        self.conn()?.execute(
            "UPDATE reminder_deliveries SET delivered_at = ?3, event_id = ?4
             WHERE reminder = ?1 AND due_at = ?2",
            params![reminder, due_at, crate::db::now_ms(), event_id],
        )?;
        Ok(())
    }
}

fn message(text: &str, due_at: i64, late: bool, tz: &str) -> String {
    if !late {
        return format!("⏰ Reminder: {text}");
    }
    let zone = timezone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let when = Timestamp::from_millisecond(due_at)
        .map(|t| describe(t, &zone))
        .unwrap_or_default();
    format!("⏰ Missed while the box was off (due {when}): {text}")
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Reminder> {
    Ok(Reminder {
        id: r.get(0)?,
        principal: r.get(1)?,
        room: r.get(2)?,
        text: r.get(3)?,
        kind: r.get(4)?,
        rule: r.get(5)?,
        tz: r.get(6)?,
        next_at: r.get(7)?,
        status: r.get(8)?,
        origin: r.get(9)?,
        fired_count: r.get(10)?,
    })
}

/// A local date and time typed by a person or a model ("2026-11-28 18:00",
/// "2026-11-28T18:00") as an instant in `tz`.
pub fn parse_local(text: &str, tz: &str) -> Result<Timestamp, String> {
    let zone = timezone(tz)?;
    let t = text.trim().replace(' ', "T");
    let dt: jiff::civil::DateTime = t
        .parse()
        .map_err(|_| format!("{text:?} is not a date and time like 2026-11-28 18:00"))?;
    dt.to_zoned(zone)
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reminders() -> (tempfile::TempDir, Reminders) {
        let d = tempfile::tempdir().unwrap();
        let r = Reminders::open(d.path()).unwrap();
        (d, r)
    }

    #[test]
    fn a_one_off_fires_once_and_a_missed_one_says_it_is_late() {
        let (_d, r) = reminders();
        let now = crate::db::now_ms();
        let at = Timestamp::from_millisecond(now + 3_600_000).unwrap();
        let rem = r
            .add_once("owner", Some("!r:box"), "call mum", at, "UTC", None)
            .unwrap();
        assert_eq!(r.next_due().unwrap(), Some(at.as_millisecond()));
        assert!(r.take_due(now).unwrap().is_empty(), "not due yet");
        // Taken on time: delivered once.
        let due = r.take_due(at.as_millisecond() + 1000).unwrap();
        assert_eq!(due.len(), 1);
        assert!(!due[0].late);
        assert_eq!(due[0].message, "⏰ Reminder: call mum");
        // Not marked sent (a crash): offered again, not duplicated.
        let again = r.take_due(at.as_millisecond() + 2000).unwrap();
        assert_eq!(again.len(), 1);
        r.mark_delivered(rem.id, due[0].due_at, Some("$e")).unwrap();
        assert!(r.take_due(at.as_millisecond() + 3000).unwrap().is_empty());
        assert_eq!(r.list(None, false).unwrap().len(), 0, "done");
        // Taken an hour late (the box was off).
        let at2 = Timestamp::from_millisecond(now + 7_200_000).unwrap();
        r.add_once("owner", None, "water the plants", at2, "Europe/Paris", None)
            .unwrap();
        let due = r.take_due(at2.as_millisecond() + 3_600_000).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].late);
        assert!(
            due[0]
                .message
                .starts_with("⏰ Missed while the box was off (due "),
            "{}",
            due[0].message
        );
    }

    #[test]
    fn a_recurring_reminder_after_downtime_fires_once_then_keeps_its_rule() {
        let (_d, r) = reminders();
        let rem = r
            .add_recurring("owner", None, "stand-up", "0 8 * * *", "Europe/Paris", None)
            .unwrap();
        let first = rem.next_at.unwrap();
        // Three days off: one late delivery, and the next is tomorrow 08:00.
        let now = first + 3 * 86_400_000 + 3_600_000;
        let due = r.take_due(now).unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert!(due[0].late);
        r.mark_delivered(rem.id, due[0].due_at, None).unwrap();
        let next = r.list(None, false).unwrap()[0].next_at.unwrap();
        assert!(next > now && next - now < 86_400_000, "{next} {now}");
        let local = Timestamp::from_millisecond(next)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::get("Europe/Paris").unwrap());
        assert_eq!((local.hour(), local.minute()), (8, 0));
    }

    #[test]
    fn cancel_and_bad_input() {
        let (_d, r) = reminders();
        let at = Timestamp::from_millisecond(crate::db::now_ms() + 60_000).unwrap();
        let rem = r.add_once("@bob:box", None, "x", at, "UTC", None).unwrap();
        assert!(
            r.cancel(rem.id, Some("owner")).unwrap().is_none(),
            "not the owner's"
        );
        assert!(r.cancel(rem.id, Some("@bob:box")).unwrap().is_some());
        assert!(
            r.cancel(rem.id, None).unwrap().is_none(),
            "already cancelled"
        );
        assert_eq!(r.next_due().unwrap(), None);
        let past = Timestamp::from_millisecond(crate::db::now_ms() - 60_000).unwrap();
        assert!(
            r.add_once("owner", None, "x", past, "UTC", None)
                .unwrap_err()
                .to_string()
                .contains("past")
        );
        assert!(
            r.add_recurring("owner", None, "x", "0 8 * *", "UTC", None)
                .is_err()
        );
        assert!(r.add_once("owner", None, " ", at, "UTC", None).is_err());
        assert!(parse_local("2026-11-28 18:00", "Europe/Paris").is_ok());
        assert!(
            parse_local("tomorrow", "UTC")
                .unwrap_err()
                .contains("2026-11-28 18:00")
        );
    }
}
