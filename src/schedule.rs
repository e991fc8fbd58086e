//! When things are due: one-off times and recurring rules, computed in
//! the owner's timezone.
//!
//! A recurring rule is a five-field cron expression (minute, hour, day of
//! the month, month, day of the week) read in a named timezone: each
//! occurrence is a *local* time, turned into an instant with the zone's
//! rules of that day, so "every day at 08:00" stays 08:00 across daylight
//! saving changes. A local time that does not exist (the hour skipped in
//! spring) is moved forward past the gap; one that happens twice (the hour
//! repeated in autumn) is taken once, the first time.
//!
//! Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and
//! `a-b/n`; months and days may be named (`JAN`, `MON`); the day of the
//! week takes `DAY#N` for the N-th such day of the month ("the first
//! Monday": `0 9 * * MON#1`). As in cron, when both the day of the month
//! and the day of the week are restricted, a day matching either is due.

pub(crate) mod when;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// A parsed cron rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// (weekday, n): the n-th such weekday of the month.
    nth: Vec<(u8, u8)>,
    days_any: bool,
    weekdays_any: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How far ahead an occurrence is looked for (a rule like `0 0 30 2 *`
/// never happens).
const HORIZON_DAYS: i32 = 366 * 8;

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    let up = s.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == up) {
        return Ok(i as u32 + offset);
    }
    s.parse::<u32>().map_err(|_| {
        format!(
            "{s:?} is not a number{}",
            if names.is_empty() { "" } else { " or a name" }
        )
    })
}

/// A field as a bit set of the values `lo..=hi`.
fn field(spec: &str, lo: u32, hi: u32, names: &[&str], offset: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, offset)?, value(b, names, offset)?)
        } else {
            let v = value(range, names, offset)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{part:?} is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl FromStr for Cron {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [min, hour, dom, month, dow] = parts[..] else {
            return Err(format!(
                "{s:?}: a rule has five fields: minute hour day-of-month month day-of-week (e.g. \"0 8 * * MON-FRI\")"
            ));
        };
        let bad = |what: &str, e: String| format!("{s:?}: {what}: {e}");
        let mut nth = Vec::new();
        let mut weekday_parts = Vec::new();
        for part in dow.split(',') {
            match part.split_once('#') {
                Some((d, n)) => {
                    let d = value(d, &WEEKDAYS, 0).map_err(|e| bad("day of the week", e))?;
                    let n: u8 =
                        n.parse()
                            .ok()
                            .filter(|n| (1..=5).contains(n))
                            .ok_or_else(|| {
                                bad("day of the week", format!("{part:?}: #N takes 1 to 5"))
                            })?;
                    nth.push(((d % 7) as u8, n));
                }
                None => weekday_parts.push(part),
            }
        }
        let weekdays = if weekday_parts.is_empty() {
            0
        } else {
            // 7 is Sunday too.
            let w = field(&weekday_parts.join(","), 0, 7, &WEEKDAYS, 0)
                .map_err(|e| bad("day of the week", e))?;
            ((w | (w >> 7)) & 0x7f) as u8
        };
        Ok(Cron {
            text: parts.join(" "),
            minutes: field(min, 0, 59, &[], 0).map_err(|e| bad("minute", e))?,
            hours: field(hour, 0, 23, &[], 0).map_err(|e| bad("hour", e))? as u32,
            days: field(dom, 1, 31, &[], 0).map_err(|e| bad("day of the month", e))? as u32,
            months: field(month, 1, 12, &MONTHS, 1).map_err(|e| bad("month", e))? as u16,
            weekdays,
            nth,
            days_any: dom == "*",
            weekdays_any: dow == "*",
        })
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Cron {
    /// Whether `date` is one of the rule's days.
    pub(crate) fn is_due_on(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let wd = date.weekday().to_sunday_zero_offset() as u8;
        let by_day = self.days & (1 << date.day()) != 0;
        let nth_week = ((date.day() - 1) / 7 + 1) as u8;
        let by_weekday = self.weekdays & (1 << wd) != 0
            || self.nth.iter().any(|&(d, n)| d == wd && n == nth_week);
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (true, false) => by_weekday,
            (false, true) => by_day,
            (false, false) => by_day || by_weekday,
        }
    }

    /// The first occurrence strictly after `after`, in `tz`.
    pub(crate) fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut date = after.to_zoned(tz.clone()).date();
        for _ in 0..HORIZON_DAYS {
            if self.is_due_on(date) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1u64 << m) != 0) {
                        let Ok(z) = date.at(h as i8, m as i8, 0, 0).to_zoned(tz.clone()) else {
                            continue;
                        };
                        if z.timestamp() > after {
                            return Some(z.timestamp());
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// A timezone by IANA name ("Europe/Paris"); empty: the machine's.
pub(crate) fn timezone(name: &str) -> Result<TimeZone, String> {
    crate::vocab::owner_timezone(name)
}

/// "Friday 28 November 2026 at 18:00", in `tz`.
pub(crate) fn describe(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone())
        .strftime("%A %-d %B %Y at %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn local(t: Timestamp, tz: &TimeZone) -> String {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn a_daily_time_stays_local_across_daylight_saving_changes() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let cron: Cron = "0 8 * * *".parse().unwrap();
        // Spring forward on 2026-03-29, fall back on 2026-10-25.
        let mut t = ts("2026-03-27T12:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = cron.next_after(t, &paris).unwrap();
            seen.push(local(t, &paris));
        }
        assert_eq!(
            seen,
            [
                "2026-03-28 08:00 CET",
                "2026-03-29 08:00 CEST",
                "2026-03-30 08:00 CEST",
                "2026-03-31 08:00 CEST"
            ]
        );
        // UTC instants differ by 23 hours across the change.
        let a = cron.next_after(ts("2026-03-28T12:00:00Z"), &paris).unwrap();
        let before = cron.next_after(ts("2026-03-27T12:00:00Z"), &paris).unwrap();
        assert_eq!((a.as_second() - before.as_second()) / 3600, 23);
        let mut t = ts("2026-10-24T12:00:00Z");
        t = cron.next_after(t, &paris).unwrap();
        assert_eq!(local(t, &paris), "2026-10-25 08:00 CET");
    }

    #[test]
    fn a_time_in_the_skipped_hour_moves_forward_and_a_repeated_hour_fires_once() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let cron: Cron = "30 2 * * *".parse().unwrap();
        let t = cron.next_after(ts("2026-03-28T12:00:00Z"), &paris).unwrap();
        assert_eq!(local(t, &paris), "2026-03-29 03:30 CEST");
        let first = cron.next_after(ts("2026-10-24T12:00:00Z"), &paris).unwrap();
        assert_eq!(local(first, &paris), "2026-10-25 02:30 CEST");
        let next = cron.next_after(first, &paris).unwrap();
        assert_eq!(local(next, &paris), "2026-10-26 02:30 CET");
    }

    #[test]
    fn weekdays_first_mondays_and_named_months() {
        let utc = TimeZone::UTC;
        let weekdays: Cron = "0 8 * * MON-FRI".parse().unwrap();
        // Friday 2026-11-27 after 08:00: next is Monday the 30th.
        let t = weekdays
            .next_after(ts("2026-11-27T09:00:00Z"), &utc)
            .unwrap();
        assert_eq!(local(t, &utc), "2026-11-30 08:00 UTC");
        let first_monday: Cron = "0 9 * * MON#1".parse().unwrap();
        let t = first_monday
            .next_after(ts("2026-11-25T00:00:00Z"), &utc)
            .unwrap();
        assert_eq!(local(t, &utc), "2026-12-07 09:00 UTC");
        let t = first_monday.next_after(t, &utc).unwrap();
        assert_eq!(local(t, &utc), "2027-01-04 09:00 UTC");
        let yearly: Cron = "0 10 3 may *".parse().unwrap();
        let t = yearly.next_after(ts("2026-11-25T00:00:00Z"), &utc).unwrap();
        assert_eq!(local(t, &utc), "2027-05-03 10:00 UTC");
        let every_15: Cron = "*/15 9-10 * * 7".parse().unwrap();
        let t = every_15
            .next_after(ts("2026-11-29T10:50:00Z"), &utc)
            .unwrap();
        assert_eq!(local(t, &utc), "2026-12-06 09:00 UTC");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (rule, says) in [
            ("0 8 * *", "five fields"),
            ("61 8 * * *", "minute"),
            ("0 8 * * FUNDAY", "day of the week"),
            ("0 8 * * MON#6", "1 to 5"),
            ("0 8 32 * *", "day of the month"),
            ("*/0 8 * * *", "step"),
        ] {
            let e = rule.parse::<Cron>().unwrap_err();
            assert!(e.contains(says), "{rule}: {e}");
        }
        let never: Cron = "0 0 30 2 *".parse().unwrap();
        assert_eq!(
            never.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
    }
}
