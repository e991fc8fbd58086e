//! The reminder store on a real SQLite database: due once, late after
//! downtime, recurring rules, cancelling, the briefing's data, tasks and watches.

use super::*;

fn reminders() -> (tempfile::TempDir, Reminders) {
    let d = tempfile::tempdir().unwrap();
    let r = Reminders::open(d.path()).unwrap();
    (d, r)
}

#[test]
fn a_one_off_fires_once_and_a_missed_one_says_it_is_late() {
    let (_d, r) = reminders();
    let now = crate::vocab::now_ms();
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
    let at = Timestamp::from_millisecond(crate::vocab::now_ms() + 60_000).unwrap();
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
    let past = Timestamp::from_millisecond(crate::vocab::now_ms() - 60_000).unwrap();
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
    // Set twice: one reminder.
    let a = r
        .add_once("owner", None, "Stretch", at, "UTC", None)
        .unwrap();
    let b = r
        .add_once("owner", None, "stretch", at, "UTC", None)
        .unwrap();
    assert_eq!(a.id, b.id);
    assert!(parse_local("2026-11-28 18:00", "Europe/Paris").is_ok());
    assert!(parse_local("tomorrow", "UTC").is_ok());
    assert!(
        parse_local("after lunch-ish", "UTC")
            .unwrap_err()
            .contains("2026-11-28 18:00")
    );
}

#[test]
fn the_briefing_gathers_today_yesterday_s_open_items_and_watches() {
    let (_d, r) = reminders();
    let tz = "Europe/Paris";
    let zone = timezone(tz).unwrap();
    // "Now" is 07:30 local today, in the middle of a real day.
    let now = Timestamp::from_millisecond(crate::vocab::now_ms())
        .unwrap()
        .to_zoned(zone.clone())
        .start_of_day()
        .unwrap()
        .checked_add(jiff::Span::new().hours(7).minutes(30))
        .unwrap()
        .timestamp()
        .as_millisecond();
    let rows = |sql: &str| {
        crate::db::open(&r.db_path)
            .unwrap()
            .execute(sql, [])
            .unwrap()
    };
    // Today at 18:00 (inserted directly: "now" may be past for the clock).
    let today_18 = now + 10 * 3_600_000 + 30 * 60_000;
    let call = r
        .insert(
            "owner",
            None,
            "call mum",
            "once",
            None,
            tz,
            Some(today_18),
            None,
            (Action::Remind, None),
        )
        .unwrap();
    // Tomorrow: not today's.
    r.insert(
        "owner",
        None,
        "dentist",
        "once",
        None,
        tz,
        Some(today_18 + 86_400_000),
        None,
        (Action::Remind, None),
    )
    .unwrap();
    // Someone else's: never in the owner's briefing.
    r.insert(
        "@bob:box",
        None,
        "bob's thing",
        "once",
        None,
        tz,
        Some(today_18),
        None,
        (Action::Remind, None),
    )
    .unwrap();
    // A task at noon.
    let task = r
        .insert(
            "owner",
            None,
            "summarise my notes",
            "once",
            None,
            tz,
            Some(now + 4 * 3_600_000 + 30 * 60_000),
            None,
            (Action::Task, Some("write")),
        )
        .unwrap();
    // Yesterday's delivered reminders: one still open, one done.
    let open = r
        .insert(
            "owner",
            None,
            "water the plants",
            "once",
            None,
            tz,
            None,
            None,
            (Action::Remind, None),
        )
        .unwrap();
    let done = r
        .insert(
            "owner",
            None,
            "pay the rent",
            "once",
            None,
            tz,
            None,
            None,
            (Action::Remind, None),
        )
        .unwrap();
    for (id, ev) in [(open.id, "$a"), (done.id, "$b")] {
        rows(&format!(
            "INSERT INTO reminder_deliveries (reminder, due_at, fired_at, late, delivered_at, event_id)
             VALUES ({id}, {t}, {t}, 0, {t}, '{ev}')",
            t = now - 12 * 3_600_000
        ));
    }
    assert!(r.mark_done_by_event("$b", "owner").unwrap());
    assert!(
        !r.mark_done_by_event("$a", "@bob:box").unwrap(),
        "not bob's"
    );
    r.add_watch("owner", "the parcel from Lyon", tz, None)
        .unwrap();
    let b = r
        .set_briefing("owner", Some("!r:box"), Some((7, 30)), tz)
        .unwrap()
        .unwrap();
    assert_eq!(b.action, Action::Briefing);
    // Turning it on again replaces it: one briefing per person.
    r.set_briefing("owner", Some("!r:box"), Some((8, 0)), tz)
        .unwrap();
    assert_eq!(
        r.briefing("owner").unwrap().unwrap().rule.as_deref(),
        Some("0 8 * * *")
    );
    let data = r.gather("owner", now, tz).unwrap();
    assert_eq!(
        data.due_today,
        vec![
            (
                "12:00".to_string(),
                "task: summarise my notes".to_string(),
                task.id
            ),
            ("18:00".to_string(), "call mum".to_string(), call.id),
        ]
    );
    assert_eq!(data.open.len(), 1, "{:?}", data.open);
    assert_eq!(data.open[0].1, "water the plants");
    assert_eq!(data.watching.len(), 1);
    let lines = data.lines();
    assert!(lines.contains("- 18:00 call mum"), "{lines}");
    assert!(lines.contains("the parcel from Lyon"), "{lines}");
    assert!(
        !lines.contains("dentist") && !lines.contains("bob") && !lines.contains("rent"),
        "{lines}"
    );
    // `!done` on the open one: gone from the next briefing.
    assert!(r.mark_done(open.id, "owner").unwrap());
    assert!(r.gather("owner", now, tz).unwrap().open.is_empty());
    // Off.
    assert!(r.set_briefing("owner", None, None, tz).unwrap().is_none());
    assert!(r.briefing("owner").unwrap().is_none());
}

#[test]
fn tasks_keep_their_grants_and_a_watch_is_never_due() {
    let (_d, r) = reminders();
    let t = r
        .add_task(
            "owner",
            Some("!r:box"),
            "summarise my notes",
            None,
            Some("0 9 * * MON"),
            "UTC",
            "write,irreversible",
            Some("web page https://x"),
        )
        .unwrap();
    assert_eq!(t.action, Action::Task);
    assert!(
        t.line().contains("granted: write,irreversible"),
        "{}",
        t.line()
    );
    let w = r.add_watch("owner", "the parcel", "UTC", None).unwrap();
    assert_eq!(w.next_at, None);
    assert_eq!(r.next_due().unwrap(), t.next_at, "the watch is never due");
    let due = r.take_due(t.next_at.unwrap() + 1).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].action, Action::Task);
    assert_eq!(due[0].grants.as_deref(), Some("write,irreversible"));
    assert_eq!(due[0].origin.as_deref(), Some("web page https://x"));
    assert!(
        r.add_task("owner", None, "x", None, None, "UTC", "", None)
            .is_err()
    );
}

#[test]
fn each_person_has_caps_and_tasks_a_minimum_period() {
    let (_d, r) = reminders();
    let task = |who: &str, text: &str, rule: &str| {
        r.add_task(who, None, text, None, Some(rule), "UTC", "", None)
            .map_err(|e| e.to_string())
    };
    // Every minute: a model turn each time, refused.
    let err = task("owner", "check", "* * * * *").unwrap_err();
    assert!(err.contains("at most every 15 minutes"), "{err}");
    assert!(task("owner", "check", "*/15 * * * *").is_ok());
    // Tasks: up to the cap per person; another person is not affected.
    for i in 0..MAX_TASKS_PER_PERSON {
        task("@m:box", &format!("task {i}"), "0 9 * * *").unwrap();
    }
    let err = task("@m:box", "one more", "0 9 * * *").unwrap_err();
    assert!(err.contains("active scheduled tasks"), "{err}");
    assert!(task("owner", "mine", "0 9 * * *").is_ok());
    // Reminders have their own cap.
    let at = Timestamp::from_millisecond(crate::vocab::now_ms() + 3_600_000).unwrap();
    for i in 0..MAX_REMINDERS_PER_PERSON {
        r.add_once("@m:box", None, &format!("r{i}"), at, "UTC", None)
            .unwrap();
    }
    let err = r
        .add_once("@m:box", None, "too many", at, "UTC", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("active reminders"), "{err}");
}
