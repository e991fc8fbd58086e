//! Reminders and schedules, kept in hermit.db.
//!
//! A one-off reminder is due at an instant; a recurring one follows a cron
//! rule in a timezone ([`crate::schedule`]). Deciding what is due needs no
//! model: the next due instant of every active reminder is stored, and the
//! daemon sleeps until the earliest. When an occurrence falls due,
//! [`Reminders::take_due`] writes a delivery row and moves the reminder on
//! in one transaction; the scheduler ([`crate::proactive`]) marks the
//! delivery when its channel has sent it.
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
    pub action: Action,
    /// A task's granted effects, comma-separated ("write,irreversible").
    pub grants: Option<String>,
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
            (None, None) if self.action == Action::Watch => "watched".into(),
            (None, None) => "done".into(),
        }
    }

    /// One line for a list: "3: call mum — on Friday …", tasks and
    /// grants named.
    pub(crate) fn line(&self) -> String {
        let what = match self.action {
            Action::Task => format!("task \"{}\"", self.text),
            Action::Briefing => "morning briefing".into(),
            Action::Watch => format!("watching: {}", self.text),
            Action::Remind => self.text.clone(),
        };
        let mut line = format!("{}: {what} — {}", self.id, self.when());
        if let Some(g) = self.grants.as_deref().filter(|g| !g.is_empty()) {
            line.push_str(&format!(" (granted: {g})"));
        }
        line
    }

    fn tz_name(&self) -> &str {
        if self.tz.is_empty() {
            "local time"
        } else {
            &self.tz
        }
    }
}

/// What a reminder does when it falls due (the `action` column, see
/// migration 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Sends its text.
    Remind,
    /// Runs its text as a turn of its person (a scheduled task).
    Task,
    /// Writes the morning briefing.
    Briefing,
    /// Never due: listed in each briefing until cancelled.
    Watch,
}

impl Action {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Action::Remind => "remind",
            Action::Task => "task",
            Action::Briefing => "briefing",
            Action::Watch => "watch",
        }
    }
}

impl rusqlite::types::FromSql for Action {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match v.as_str()? {
            "remind" => Ok(Action::Remind),
            "task" => Ok(Action::Task),
            "briefing" => Ok(Action::Briefing),
            "watch" => Ok(Action::Watch),
            other => Err(rusqlite::types::FromSqlError::Other(
                format!("unknown reminder action {other:?}").into(),
            )),
        }
    }
}

/// An occurrence to deliver.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Due {
    pub reminder: i64,
    pub principal: String,
    pub room: Option<String>,
    pub text: String,
    pub due_at: i64,
    /// Due more than a minute before it was taken (the box was off).
    pub late: bool,
    /// The words to send.
    pub message: String,
    /// What to do: remind, run a task or write the briefing.
    pub action: Action,
    pub grants: Option<String>,
    /// The untrusted source the reminder was set after, if any.
    pub origin: Option<String>,
    pub tz: String,
}

/// What the morning briefing is written from.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct BriefingData {
    /// "Thursday 26 November 2026".
    pub today: String,
    /// Today's occurrences from now on: (local "HH:MM", what, id).
    pub due_today: Vec<(String, String, i64)>,
    /// Reminders delivered yesterday and not marked done: (when, text, id).
    pub open: Vec<(String, String, i64)>,
    /// What the person asked Hermit to watch: (id, text).
    pub watching: Vec<(i64, String)>,
    /// Labels of untrusted sources some of these texts were set after.
    pub untrusted: Vec<String>,
}

impl BriefingData {
    pub(crate) fn is_empty(&self) -> bool {
        self.due_today.is_empty() && self.open.is_empty() && self.watching.is_empty()
    }

    /// The data as plain lines (the model's input, and the exact list
    /// under its words).
    pub(crate) fn lines(&self) -> String {
        let mut out = String::new();
        out.push_str("Today:\n");
        if self.due_today.is_empty() {
            out.push_str("- nothing scheduled\n");
        }
        for (t, what, id) in &self.due_today {
            out.push_str(&format!("- {t} {what} (#{id})\n"));
        }
        if !self.open.is_empty() {
            out.push_str("Still open from yesterday:\n");
            for (t, what, id) in &self.open {
                out.push_str(&format!("- {what} (was due {t}, #{id})\n"));
            }
        }
        if !self.watching.is_empty() {
            out.push_str("Watching:\n");
            for (id, what) in &self.watching {
                out.push_str(&format!("- {what} (#{id})\n"));
            }
        }
        out
    }
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

/// What one person may keep active at once: a model that loops, or a
/// member, cannot fill the scheduler (each task is a model turn).
pub(crate) const MAX_REMINDERS_PER_PERSON: i64 = 200;
pub(crate) const MAX_TASKS_PER_PERSON: i64 = 20;
/// The shortest period of a recurring task, in minutes.
pub(crate) const MIN_TASK_PERIOD_MINUTES: i64 = 15;

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
        let now = crate::vocab::now_ms();
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
            Some(at.as_millisecond()),
            origin,
            (Action::Remind, None),
        )
    }

    /// A scheduled agent task: `prompt` runs as a turn of `principal` at
    /// `at`, or at each occurrence of `rule`, with `grants` (effects the
    /// owner allowed it to use unattended).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_task(
        &self,
        principal: &str,
        room: Option<&str>,
        prompt: &str,
        at: Option<Timestamp>,
        rule: Option<&str>,
        tz: &str,
        grants: &str,
        origin: Option<&str>,
    ) -> Result<Reminder, ReminderError> {
        let zone = timezone(tz).map_err(ReminderError::Invalid)?;
        let now = crate::vocab::now_ms();
        let (kind, rule, next) = match (at, rule) {
            (Some(at), None) => {
                if at.as_millisecond() <= now {
                    return Err(ReminderError::Invalid(format!(
                        "{} is in the past",
                        describe(at, &zone)
                    )));
                }
                ("once", None, at.as_millisecond())
            }
            (None, Some(rule)) => {
                let cron: Cron = rule.parse().map_err(ReminderError::Invalid)?;
                let next = cron
                    .next_after(
                        Timestamp::from_millisecond(now).unwrap_or(Timestamp::UNIX_EPOCH),
                        &zone,
                    )
                    .ok_or_else(|| ReminderError::Invalid(format!("{rule:?} never happens")))?;
                // Each run is a model turn: not more often than this.
                if let Some(after) = cron.next_after(next, &zone)
                    && after.as_millisecond() - next.as_millisecond()
                        < MIN_TASK_PERIOD_MINUTES * 60_000
                {
                    return Err(ReminderError::Invalid(format!(
                        "a task may repeat at most every {MIN_TASK_PERIOD_MINUTES} minutes ({rule:?} is more often)"
                    )));
                }
                ("recurring", Some(cron.to_string()), next.as_millisecond())
            }
            _ => {
                return Err(ReminderError::Invalid(
                    "a task needs either a time or a recurring rule".into(),
                ));
            }
        };
        self.insert(
            principal,
            room,
            prompt,
            kind,
            rule.as_deref(),
            tz,
            Some(next),
            origin,
            (Action::Task, Some(grants).filter(|g| !g.is_empty())),
        )
    }

    /// Turns the person's morning briefing on at `at` (hour, minute) local
    /// time, or off (`None`); there is at most one per person.
    pub(crate) fn set_briefing(
        &self,
        principal: &str,
        room: Option<&str>,
        at: Option<(u8, u8)>,
        tz: &str,
    ) -> Result<Option<Reminder>, ReminderError> {
        self.conn()?.execute(
            "UPDATE reminders SET status = 'cancelled', next_at = NULL
             WHERE principal = ?1 AND action = 'briefing' AND status = 'active'",
            [principal],
        )?;
        let Some((h, m)) = at else { return Ok(None) };
        if h > 23 || m > 59 {
            return Err(ReminderError::Invalid(format!(
                "{h:02}:{m:02} is not a time of day"
            )));
        }
        let rule = format!("{m} {h} * * *");
        let zone = timezone(tz).map_err(ReminderError::Invalid)?;
        let cron: Cron = rule.parse().map_err(ReminderError::Invalid)?;
        let now =
            Timestamp::from_millisecond(crate::vocab::now_ms()).unwrap_or(Timestamp::UNIX_EPOCH);
        let next = cron.next_after(now, &zone).map(|t| t.as_millisecond());
        self.insert(
            principal,
            room,
            "morning briefing",
            "recurring",
            Some(&cron.to_string()),
            tz,
            next,
            None,
            (Action::Briefing, None),
        )
        .map(Some)
    }

    /// Something the person asked Hermit to keep an eye on: never due,
    /// shown in each morning briefing until cancelled.
    pub(crate) fn add_watch(
        &self,
        principal: &str,
        text: &str,
        tz: &str,
        origin: Option<&str>,
    ) -> Result<Reminder, ReminderError> {
        self.insert(
            principal,
            None,
            text,
            "watch",
            None,
            tz,
            None,
            origin,
            (Action::Watch, None),
        )
    }

    /// Marks the last delivery of reminder `id` of `principal` done (so
    /// the briefing no longer lists it as open).
    pub(crate) fn mark_done(&self, id: i64, principal: &str) -> Result<bool, ReminderError> {
        let n = self.conn()?.execute(
            "UPDATE reminder_deliveries SET done_at = ?3
             WHERE reminder = ?1 AND done_at IS NULL AND delivered_at IS NOT NULL
               AND reminder IN (SELECT id FROM reminders WHERE id = ?1 AND principal = ?2)",
            params![id, principal, crate::vocab::now_ms()],
        )?;
        Ok(n > 0)
    }

    /// Marks done the reminder delivered as Matrix event `event_id`, if
    /// it is `principal`'s (a ✅ reaction to it).
    pub(crate) fn mark_done_by_event(
        &self,
        event_id: &str,
        principal: &str,
    ) -> Result<bool, ReminderError> {
        let n = self.conn()?.execute(
            "UPDATE reminder_deliveries SET done_at = ?3
             WHERE event_id = ?1 AND done_at IS NULL
               AND reminder IN (SELECT id FROM reminders WHERE principal = ?2)",
            params![event_id, principal, crate::vocab::now_ms()],
        )?;
        Ok(n > 0)
    }

    /// The person's active briefing, if on.
    pub(crate) fn briefing(&self, principal: &str) -> Result<Option<Reminder>, ReminderError> {
        Ok(self
            .list(Some(principal), false)?
            .into_iter()
            .find(|r| r.action == Action::Briefing))
    }

    /// What the morning briefing of `principal` at `now` is written from:
    /// the rest of today's reminders, schedules and tasks, yesterday's
    /// reminders not marked done, and what they asked Hermit to watch.
    pub(crate) fn gather(
        &self,
        principal: &str,
        now: i64,
        tz: &str,
    ) -> Result<BriefingData, ReminderError> {
        let zone = timezone(tz).map_err(ReminderError::Invalid)?;
        let now_t = Timestamp::from_millisecond(now).unwrap_or(Timestamp::UNIX_EPOCH);
        let local = now_t.to_zoned(zone.clone());
        let day_start = local
            .start_of_day()
            .map_err(|e| ReminderError::Invalid(e.to_string()))?;
        let tomorrow = day_start
            .tomorrow()
            .map_err(|e| ReminderError::Invalid(e.to_string()))?;
        let yesterday = day_start
            .yesterday()
            .map_err(|e| ReminderError::Invalid(e.to_string()))?;
        let end = tomorrow.timestamp().as_millisecond();
        let hhmm = |ms: i64| {
            Timestamp::from_millisecond(ms)
                .map(|t| t.to_zoned(zone.clone()).strftime("%H:%M").to_string())
                .unwrap_or_default()
        };
        let mut data = BriefingData {
            today: local.strftime("%A %-d %B %Y").to_string(),
            ..Default::default()
        };
        let mut untrusted = std::collections::BTreeSet::new();
        for r in self.list(Some(principal), false)? {
            if let Some(o) = &r.origin {
                untrusted.insert(o.clone());
            }
            let what = match r.action {
                Action::Task => format!("task: {}", r.text),
                Action::Watch => {
                    data.watching.push((r.id, r.text.clone()));
                    continue;
                }
                Action::Briefing => continue,
                Action::Remind => r.text.clone(),
            };
            let Some(mut at) = r.next_at else { continue };
            let cron = r.rule.as_deref().and_then(|c| c.parse::<Cron>().ok());
            // Each occurrence left today (a rule every 5 minutes is shown
            // a few times only).
            for _ in 0..6 {
                if at >= end {
                    break;
                }
                data.due_today.push((hhmm(at), what.clone(), r.id));
                let Some(c) = &cron else { break };
                match c.next_after(Timestamp::from_millisecond(at).unwrap_or(now_t), &zone) {
                    Some(n) => at = n.as_millisecond(),
                    None => break,
                }
            }
        }
        data.due_today.sort();
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT d.due_at, r.text, r.id, r.origin FROM reminder_deliveries d JOIN reminders r ON r.id = d.reminder
             WHERE r.principal = ?1 AND r.action = 'remind' AND d.delivered_at IS NOT NULL
               AND d.done_at IS NULL AND d.due_at >= ?2 AND d.due_at < ?3
             ORDER BY d.due_at",
        )?;
        let rows = stmt.query_map(
            params![
                principal,
                yesterday.timestamp().as_millisecond(),
                day_start.timestamp().as_millisecond()
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )?;
        for row in rows {
            let (due, text, id, origin) = row?;
            if let Some(o) = origin {
                untrusted.insert(o);
            }
            data.open
                .push((format!("yesterday {}", hhmm(due)), text, id));
        }
        data.untrusted = untrusted.into_iter().collect();
        Ok(data)
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
        let now =
            Timestamp::from_millisecond(crate::vocab::now_ms()).unwrap_or(Timestamp::UNIX_EPOCH);
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
            Some(next.as_millisecond()),
            origin,
            (Action::Remind, None),
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
        next_at: Option<i64>,
        origin: Option<&str>,
        (action, grants): (Action, Option<&str>),
    ) -> Result<Reminder, ReminderError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReminderError::Invalid(
                "the reminder's text is empty".into(),
            ));
        }
        let conn = self.conn()?;
        // The same reminder twice (a model that calls the tool again after
        // its result; "in 3 days" read a few seconds apart): the first one
        // stands.
        let same: Option<i64> = conn
            .query_row(
                "SELECT id FROM reminders WHERE status = 'active' AND principal = ?1
                   AND lower(text) = lower(?2) AND action = ?3 AND rule IS ?5
                   AND (next_at IS ?4 OR abs(next_at - ?4) < 300000)",
                params![principal, text, action.as_str(), next_at, rule],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = same {
            return Ok(self.get(&conn, id)?.expect("just found"));
        }
        let is_task = action == Action::Task;
        let active: i64 = conn.query_row(
            "SELECT count(*) FROM reminders WHERE status = 'active' AND principal = ?1
               AND (action = 'task') = ?2",
            params![principal, is_task],
            |r| r.get(0),
        )?;
        let (cap, what) = if is_task {
            (MAX_TASKS_PER_PERSON, "scheduled tasks")
        } else {
            (MAX_REMINDERS_PER_PERSON, "reminders")
        };
        if active >= cap {
            return Err(ReminderError::Invalid(format!(
                "{principal} already has {active} active {what}, the most one person may have; cancel some first"
            )));
        }
        conn.execute(
            "INSERT INTO reminders (principal, room, text, kind, rule, tz, next_at, origin, created_at, action, grants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![principal, room, text, kind, rule, tz, next_at, origin, crate::vocab::now_ms(), action.as_str(), grants],
        )?;
        let id = conn.last_insert_rowid();
        Ok(self.get(&conn, id)?.expect("just inserted"))
    }

    fn get(&self, conn: &Connection, id: i64) -> Result<Option<Reminder>, ReminderError> {
        Ok(conn
            .query_row(
                "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count, action, grants
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
            "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count, action, grants
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
    pub(crate) fn next_due(&self) -> Result<Option<i64>, ReminderError> {
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
    pub(crate) fn take_due(&self, now: i64) -> Result<Vec<Due>, ReminderError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let due: Vec<Reminder> = {
            let mut stmt = tx.prepare(
                "SELECT id, principal, room, text, kind, rule, tz, next_at, status, origin, fired_count, action, grants
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
                "SELECT d.reminder, r.principal, r.room, r.text, d.due_at, d.late, r.tz, r.action, r.grants, r.origin
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
                    action: r.get(7)?,
                    grants: r.get(8)?,
                    origin: r.get(9)?,
                    tz,
                })
            })?
            .collect::<Result<_, _>>()?
        };
        tx.commit()?;
        Ok(pending)
    }

    /// Records that an occurrence was sent.
    pub(crate) fn mark_delivered(
        &self,
        reminder: i64,
        due_at: i64,
        event_id: Option<&str>,
    ) -> Result<(), ReminderError> {
        self.conn()?.execute(
            "UPDATE reminder_deliveries SET delivered_at = ?3, event_id = ?4
             WHERE reminder = ?1 AND due_at = ?2",
            params![reminder, due_at, crate::vocab::now_ms(), event_id],
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
        action: r.get(11)?,
        grants: r.get(12)?,
    })
}

/// A time typed by a person or a model ("2026-11-28 18:00", "tomorrow at
/// 9", "in two hours", "next Friday evening") as an instant, read in `tz`
/// against Hermit's clock ([`crate::schedule::when`]).
pub fn parse_local(text: &str, tz: &str) -> Result<Timestamp, String> {
    let zone = timezone(tz)?;
    let now = Timestamp::from_millisecond(crate::vocab::now_ms())
        .map_err(|e| e.to_string())?
        .to_zoned(zone);
    crate::schedule::when::parse(text, &now).map(|z| z.timestamp())
}

#[cfg(test)]
mod tests;
