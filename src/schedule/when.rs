//! Times as people say them: "tomorrow at 9", "in two hours", "next
//! Friday evening", "28 November 18:00", "2026-11-28 18:00".
//!
//! The model copies the words of the request into the `remind` tool and
//! Hermit resolves them here, against its own clock in the owner's
//! timezone. Calendar arithmetic is where small models go wrong (which
//! Friday is "next Friday" on a Wednesday?); this parser is exact, and
//! refuses what it does not understand instead of guessing.
//!
//! Conventions, chosen to match everyday speech:
//! - A weekday ("Friday", "next Friday", "this Friday") is the coming one;
//!   today's weekday means today if the time is still ahead, else a week on.
//! - A day without a time is at 09:00 (or the part of the day named:
//!   morning 09:00, noon 12:00, afternoon 15:00, evening 18:00, tonight and
//!   night 20:00).
//! - A time without a day is today if still ahead, else tomorrow.
//! - A bare hour from 1 to 6 ("at 5") is in the afternoon; "at 7" and
//!   later is as said. "am"/"pm", or a part of the day, decide otherwise.
//! - A date without a year is the next such date.

use jiff::civil::{Date, Time, Weekday};
use jiff::{Span, Zoned};

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words that carry no meaning here.
const FILLER: &[&str] = &[
    "at",
    "on",
    "the",
    "by",
    "around",
    "about",
    "of",
    "coming",
    "o'clock",
    "oclock",
    "from",
    "now",
    "later",
    "hence",
    "approximately",
    "exactly",
    "sharp",
    "for",
    "me",
    "remind",
    "please",
];

const HELP: &str = "say it like \"tomorrow at 9\", \"in 2 hours\", \"next Friday evening\", \
\"28 November 18:00\" or \"2026-11-28 18:00\"";

fn weekday(word: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .find(|(name, _)| *name == word || (word.len() >= 3 && name.starts_with(word)))
        .map(|(_, w)| *w)
}

fn month(word: &str) -> Option<i8> {
    let word = word.trim_end_matches('.');
    MONTHS
        .iter()
        .position(|m| word.len() >= 3 && m.starts_with(word))
        .map(|i| i as i8 + 1)
}

fn number(word: &str) -> Option<i64> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    if let Some(i) = WORDS.iter().position(|w| *w == word) {
        return Some(i as i64);
    }
    match word {
        "a" | "an" => Some(1),
        "fifteen" => Some(15),
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "forty-five" => Some(45),
        "couple" => Some(2),
        "few" => Some(3),
        _ => word.parse().ok().filter(|n| (0..100_000).contains(n)),
    }
}

/// "9", "9am", "9:30", "18:00", "6pm", "6:30pm", "18h", "18h30" → (hour,
/// minute, Some(is_pm) when said).
fn clock(word: &str) -> Option<(i8, i8, Option<bool>)> {
    let (body, pm) = if let Some(b) = word.strip_suffix("am") {
        (b, Some(false))
    } else if let Some(b) = word.strip_suffix("pm") {
        (b, Some(true))
    } else {
        (word, None)
    };
    let (h, m) = if let Some((h, m)) = body.split_once([':', 'h']) {
        (h, if m.is_empty() { "0" } else { m })
    } else if let Some(h) = body.strip_suffix('h') {
        (h, "0")
    } else {
        (body, "0")
    };
    if h.is_empty()
        || h.len() > 2
        || m.len() > 2
        || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 23 || (pm.is_some() && !(1..=12).contains(&h)) {
        return None;
    }
    Some((h, m, pm))
}

/// A time of day as typed ("07:30", "7:30am", "18h", "7"): (hour, minute).
pub(crate) fn clock_of_day(text: &str) -> Option<(u8, u8)> {
    let t = text.trim().to_lowercase().replace(' ', "");
    let (h, m, pm) = clock(&t)?;
    let h = match pm {
        Some(true) if h < 12 => h + 12,
        Some(false) if h == 12 => 0,
        _ => h,
    };
    Some((h as u8, m as u8))
}

/// "28/11", "28/11/2026", "2026-11-28", "28.11." → (year, month, day).
fn numeric_date(word: &str) -> Option<(Option<i16>, i8, i8)> {
    if let Ok(d) = word.parse::<Date>() {
        return Some((Some(d.year()), d.month(), d.day()));
    }
    let parts: Vec<&str> = word.trim_end_matches('.').split(['/', '.']).collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let day: i8 = parts[0].parse().ok()?;
    let month: i8 = parts[1].parse().ok()?;
    let year = match parts.get(2) {
        Some(y) if y.len() == 4 => Some(y.parse().ok()?),
        Some(y) if y.len() == 2 => Some(2000 + y.parse::<i16>().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((year, month, day))
}

/// "28th", "1st", "3rd", "2nd" → 28, 1, 3, 2.
fn ordinal(word: &str) -> Option<i8> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))?;
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

#[derive(Default)]
struct Parsed {
    date: Option<Date>,
    /// A date without a year: the next one.
    yearless: Option<(i8, i8)>,
    weekday: Option<Weekday>,
    /// Day of the month alone ("the 3rd"): this month or the next.
    monthday: Option<i8>,
    time: Option<(i8, i8, Option<bool>)>,
    /// Default hour of a part of the day, and whether it means pm.
    part: Option<(i8, bool)>,
    relative: Option<Span>,
    days_ahead: Option<i64>,
}

/// Resolves `text` against `now` (in the owner's timezone).
pub(crate) fn parse(text: &str, now: &Zoned) -> Result<Zoned, String> {
    let raw = text.trim();
    if raw.is_empty() {
        return Err(format!("no time given: {HELP}"));
    }
    // A full ISO date and time, as a model or a person may write it.
    if let Some(dt) = iso(raw) {
        return dt
            .to_zoned(now.time_zone().clone())
            .map_err(|e| e.to_string());
    }
    resolve(parts(raw)?, now, raw)
}

fn iso(raw: &str) -> Option<jiff::civil::DateTime> {
    raw.contains(':')
        .then(|| raw.replace(' ', "T").parse::<jiff::civil::DateTime>().ok())
        .flatten()
}

/// Whether `text` is a time that names a day ("on Monday", "tonight",
/// "tomorrow", "28 November"), not just an hour or a part of the day
/// ("at 9", "lunch"): words a model may leave at the end of a reminder's
/// text.
pub(crate) fn names_a_day(text: &str) -> bool {
    let raw = text.trim();
    if raw.is_empty() {
        return false;
    }
    if iso(raw).is_some() {
        return true;
    }
    parts(raw).is_ok_and(|p| {
        p.date.is_some()
            || p.yearless.is_some()
            || p.weekday.is_some()
            || p.monthday.is_some()
            || p.days_ahead.is_some()
    })
}

/// French time words as the English ones this parser reads: "demain à
/// 9h" is "tomorrow at 9h", "dans deux heures" "in two hours", "lundi
/// prochain à 10h" "monday next at 10h", "ce soir" "tonight".
fn french_to_english(lower: &str) -> String {
    // Phrases first, then words (whole words only).
    let mut s = format!(" {lower} ");
    for (from, to) in [
        ("après-demain", "the day after tomorrow"),
        ("apres-demain", "the day after tomorrow"),
        ("après demain", "the day after tomorrow"),
        ("aujourd'hui", "today"),
        ("ce soir", "tonight"),
        ("cette nuit", "tonight"),
        ("cet après-midi", "afternoon"),
        ("cet apres-midi", "afternoon"),
        ("ce matin", "morning"),
        ("une demi-heure", "half an hour"),
        ("demi-heure", "half an hour"),
        ("du matin", "am"),
        ("du soir", "pm"),
        ("de l'après-midi", "pm"),
        ("de l'apres-midi", "pm"),
        ("après-midi", "afternoon"),
        ("apres-midi", "afternoon"),
        ("1er", "1"),
    ] {
        s = s.replace(from, to);
    }
    const WORDS: &[(&str, &str)] = &[
        ("demain", "tomorrow"),
        ("dans", "in"),
        ("à", "at"),
        ("vers", "around"),
        ("le", "the"),
        ("la", "the"),
        ("de", "of"),
        ("du", "of"),
        ("prochain", "next"),
        ("prochaine", "next"),
        ("matin", "morning"),
        ("soir", "evening"),
        ("midi", "noon"),
        ("minuit", "midnight"),
        ("heure", "hour"),
        ("heures", "hours"),
        ("jour", "day"),
        ("jours", "days"),
        ("semaine", "week"),
        ("semaines", "weeks"),
        ("un", "a"),
        ("une", "a"),
        ("deux", "two"),
        ("trois", "three"),
        ("quatre", "four"),
        ("cinq", "five"),
        ("six", "six"),
        ("sept", "seven"),
        ("huit", "eight"),
        ("neuf", "nine"),
        ("dix", "ten"),
        ("onze", "eleven"),
        ("douze", "twelve"),
        ("quinze", "fifteen"),
        ("vingt", "twenty"),
        ("trente", "thirty"),
        ("lundi", "monday"),
        ("mardi", "tuesday"),
        ("mercredi", "wednesday"),
        ("jeudi", "thursday"),
        ("vendredi", "friday"),
        ("samedi", "saturday"),
        ("dimanche", "sunday"),
        ("janvier", "january"),
        ("février", "february"),
        ("fevrier", "february"),
        ("mars", "march"),
        ("avril", "april"),
        ("mai", "may"),
        ("juin", "june"),
        ("juillet", "july"),
        ("août", "august"),
        ("aout", "august"),
        ("septembre", "september"),
        ("octobre", "october"),
        ("novembre", "november"),
        ("décembre", "december"),
        ("decembre", "december"),
    ];
    s.split(' ')
        .map(|w| {
            WORDS
                .iter()
                .find(|(fr, _)| *fr == w)
                .map_or(w, |(_, en)| *en)
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

fn parts(raw: &str) -> Result<Parsed, String> {
    let lower = raw.to_lowercase().replace(['’', '`'], "'");
    let lower = french_to_english(&lower);
    // "6 pm" → "6pm", "9 a.m." → "9am".
    let lower = lower.replace("a.m.", "am").replace("p.m.", "pm");
    let cleaned: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || ":/.-'".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut words: Vec<String> = Vec::new();
    for w in cleaned.split_whitespace() {
        let w = w.trim_end_matches(['.', '-']).trim_start_matches('-');
        if (w == "am" || w == "pm") && words.last().is_some_and(|p| clock(p).is_some()) {
            let last = words.pop().unwrap_or_default();
            words.push(format!("{last}{w}"));
        } else if !w.is_empty() {
            words.push(w.to_string());
        }
    }
    let mut p = Parsed::default();
    let mut i = 0;
    let not_understood = |w: &str| format!("I did not understand {w:?} in {raw:?}: {HELP}");
    let set_days = |p: &mut Parsed, d: i64, w: &str| {
        if p.days_ahead.replace(d).is_some() || p.weekday.is_some() || p.date.is_some() {
            Err(format!("{raw:?} names the day twice ({w:?})"))
        } else {
            Ok(())
        }
    };
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        match w {
            _ if FILLER.contains(&w) => {}
            // "in 2 hours", and "2 hours" or "3 days from now" as models
            // write them.
            _ if matches!(w, "in" | "within" | "after")
                || (w == "half" && words.get(i + 2).is_some_and(|u| u.starts_with("hour")))
                || (number(w).is_some()
                    && next.is_some_and(|n| {
                        let u = n.trim_end_matches('s');
                        matches!(
                            u,
                            "second" | "sec" | "minute" | "min" | "hour" | "hr" | "day" | "week"
                        )
                    })) =>
            {
                let skip = usize::from(matches!(w, "in" | "within" | "after"));
                // "in 2 hours", "in an hour and a half", "in half an hour",
                // "in 3 days", "in a week".
                let mut span = Span::new();
                let mut j = i + skip;
                let mut any = false;
                while let Some(first) = words.get(j) {
                    if first == "a"
                        && words
                            .get(j + 1)
                            .is_some_and(|w| w == "couple" || w == "few")
                    {
                        j += 1;
                        continue;
                    }
                    if first == "half" {
                        // "half an hour"
                        if words.get(j + 1).is_some_and(|w| w == "an" || w == "a")
                            && words.get(j + 2).is_some_and(|w| w.starts_with("hour"))
                        {
                            span = span.minutes(span.get_minutes() + 30);
                            j += 3;
                            any = true;
                        } else {
                            break;
                        }
                    } else if let Some(n) = number(first) {
                        let mut k = j + 1;
                        if words.get(k).is_some_and(|w| w == "of") {
                            k += 1; // "a couple of hours"
                        }
                        let Some(unit) = words.get(k) else { break };
                        let u = unit.trim_end_matches('s');
                        span = match u {
                            "second" | "sec" | "s" => span.seconds(span.get_seconds() + n),
                            "minute" | "min" | "mn" | "m" => span.minutes(span.get_minutes() + n),
                            "hour" | "hr" | "h" => span.hours(span.get_hours() as i64 + n),
                            "day" => span.days(span.get_days() as i64 + n),
                            "week" => span.weeks(span.get_weeks() as i64 + n),
                            _ => return Err(not_understood(unit)),
                        };
                        j = k + 1;
                        any = true;
                        // "an hour and a half"
                        if words.get(j).is_some_and(|w| w == "and")
                            && words.get(j + 1).is_some_and(|w| w == "a")
                            && words.get(j + 2).is_some_and(|w| w == "half")
                        {
                            span = match u {
                                "hour" | "hr" | "h" => span.minutes(span.get_minutes() + 30),
                                "day" => span.hours(span.get_hours() as i64 + 12),
                                _ => return Err(not_understood("and a half")),
                            };
                            j += 3;
                        }
                    } else {
                        break;
                    }
                    if words.get(j).is_some_and(|w| w == "and")
                        && words
                            .get(j + 1)
                            .is_some_and(|w| number(w).is_some() && w != "a")
                    {
                        j += 1;
                        continue;
                    }
                    break;
                }
                if !any {
                    return Err(not_understood(w));
                }
                if p.relative.replace(span).is_some() {
                    return Err(format!("{raw:?} gives two delays"));
                }
                i = j;
                continue;
            }
            "today" => set_days(&mut p, 0, w)?,
            "tonight" => {
                set_days(&mut p, 0, w)?;
                p.part = Some((20, true));
            }
            "tomorrow" | "tmrw" | "tmr" => set_days(&mut p, 1, w)?,
            "day" if next == Some("after") && words.get(i + 2).is_some_and(|w| w == "tomorrow") => {
                set_days(&mut p, 2, "day after tomorrow")?;
                i += 3;
                continue;
            }
            "next" | "this" if next.is_some_and(|n| n == "week") => {
                set_days(&mut p, 7, "next week")?;
                i += 2;
                continue;
            }
            "next" | "this" => {}
            "morning" => p.part = Some((9, false)),
            "noon" | "midday" | "lunchtime" | "lunch" => p.part = Some((12, true)),
            "afternoon" => p.part = Some((15, true)),
            "evening" => p.part = Some((18, true)),
            "night" => p.part = Some((20, true)),
            "midnight" => {
                p.time = Some((0, 0, None));
                p.part = None;
            }
            "am" | "pm" => return Err(not_understood(w)),
            _ => {
                if let Some(d) = weekday(w) {
                    if p.weekday.replace(d).is_some() || p.days_ahead.is_some() {
                        return Err(format!("{raw:?} names the day twice ({w:?})"));
                    }
                } else if next.and_then(month).is_some()
                    && let Some(d) = w.parse::<i8>().ok().filter(|d| (1..=31).contains(d))
                {
                    // A plain number right before a month is its day.
                    p.monthday = Some(d);
                } else if let Some(m) = month(w) {
                    // "28 November" (day before) or "November 28" (after).
                    let day = next
                        .and_then(|n| n.parse::<i8>().ok().or_else(|| ordinal(n)))
                        .filter(|d| (1..=31).contains(d));
                    let day = match (day, p.monthday.take()) {
                        (Some(d), None) => {
                            i += 1;
                            d
                        }
                        (None, Some(d)) => d,
                        (Some(_), Some(_)) => return Err(format!("{raw:?} names the day twice")),
                        (None, None) => return Err(format!("which day of {w}? {HELP}")),
                    };
                    // A year may follow.
                    if let Some(y) = words
                        .get(i + 1)
                        .and_then(|y| y.parse::<i16>().ok())
                        .filter(|y| (2000..=2200).contains(y))
                    {
                        p.date = Some(Date::new(y, m, day).map_err(|e| format!("{raw:?}: {e}"))?);
                        i += 1;
                    } else {
                        p.yearless = Some((m, day));
                    }
                } else if let Some((y, m, d)) = numeric_date(w) {
                    match y {
                        Some(y) => {
                            p.date = Some(Date::new(y, m, d).map_err(|e| format!("{raw:?}: {e}"))?)
                        }
                        None => p.yearless = Some((m, d)),
                    }
                } else if let Some(d) = ordinal(w) {
                    p.monthday = Some(d);
                } else if let Some(t) = clock(w) {
                    if p.time.replace(t).is_some() {
                        return Err(format!("{raw:?} gives two times"));
                    }
                } else {
                    return Err(not_understood(w));
                }
            }
        }
        i += 1;
    }
    Ok(p)
}

fn resolve(p: Parsed, now: &Zoned, raw: &str) -> Result<Zoned, String> {
    let tz = now.time_zone().clone();
    let today = now.date();
    let at = |date: Date, time: Time| -> Result<Zoned, String> {
        date.to_datetime(time)
            .to_zoned(tz.clone())
            .map_err(|e| e.to_string())
    };
    // The hour: a said time, made pm by "pm" or a part of the day.
    let time = |default: (i8, bool)| -> Result<Time, String> {
        let (h, m) = match p.time {
            Some((h, m, Some(true))) => (if h == 12 { 12 } else { h + 12 }, m),
            Some((h, m, Some(false))) => (if h == 12 { 0 } else { h }, m),
            Some((h, m, None)) => {
                let pm = p.part.map(|(_, pm)| pm).unwrap_or((1..=6).contains(&h));
                (if pm && h < 12 { h + 12 } else { h }, m)
            }
            None => {
                let (h, _) = p.part.unwrap_or(default);
                (h, 0)
            }
        };
        Time::new(h, m, 0, 0).map_err(|e| format!("{raw:?}: {e}"))
    };
    if let Some(span) = p.relative {
        if p.date.is_some() || p.yearless.is_some() || p.weekday.is_some() || p.monthday.is_some() {
            return Err(format!("{raw:?} gives both a delay and a day"));
        }
        let base = now.checked_add(span).map_err(|e| e.to_string())?;
        // "in 3 days at 9"
        if p.time.is_some() || p.part.is_some() {
            return at(base.date(), time((9, false))?);
        }
        return Ok(base);
    }
    let has_day = p.date.is_some()
        || p.yearless.is_some()
        || p.weekday.is_some()
        || p.monthday.is_some()
        || p.days_ahead.is_some();
    if !has_day && p.time.is_none() && p.part.is_none() {
        return Err(format!("{raw:?} says no time: {HELP}"));
    }
    let t = time((9, false))?;
    let date = if let Some(d) = p.date {
        d
    } else if let Some((m, d)) = p.yearless {
        let mut y = today.year();
        loop {
            let date = Date::new(y, m, d).map_err(|e| format!("{raw:?}: {e}"))?;
            if at(date, t)? > *now {
                break date;
            }
            y += 1;
            if y > today.year() + 1 {
                break date;
            }
        }
    } else if let Some(d) = p.monthday {
        let first = today.first_of_month();
        let this = Date::new(today.year(), today.month(), d).ok();
        match this {
            Some(date) if at(date, t)? > *now => date,
            _ => {
                let next = first
                    .checked_add(Span::new().months(1))
                    .map_err(|e| e.to_string())?;
                Date::new(next.year(), next.month(), d).map_err(|e| format!("{raw:?}: {e}"))?
            }
        }
    } else if let Some(w) = p.weekday {
        let ahead =
            (w.to_monday_zero_offset() - today.weekday().to_monday_zero_offset()).rem_euclid(7);
        let date = today
            .checked_add(Span::new().days(ahead as i64))
            .map_err(|e| e.to_string())?;
        if ahead == 0 && at(date, t)? <= *now {
            today
                .checked_add(Span::new().days(7))
                .map_err(|e| e.to_string())?
        } else {
            date
        }
    } else if let Some(n) = p.days_ahead {
        today
            .checked_add(Span::new().days(n))
            .map_err(|e| e.to_string())?
    } else if at(today, t)? > *now {
        today
    } else {
        today.tomorrow().map_err(|e| e.to_string())?
    };
    at(date, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 25 November 2026, 19:40 in Paris.
    fn now() -> Zoned {
        "2026-11-25T19:40:00[Europe/Paris]".parse().unwrap()
    }

    fn at(text: &str) -> String {
        match parse(text, &now()) {
            Ok(z) => z.strftime("%a %Y-%m-%d %H:%M").to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn everyday_phrasings() {
        let cases = [
            ("tomorrow at 9", "Thu 2026-11-26 09:00"),
            ("tomorrow at 6pm", "Thu 2026-11-26 18:00"),
            ("tomorrow at 6 p.m.", "Thu 2026-11-26 18:00"),
            ("Tomorrow 18:00", "Thu 2026-11-26 18:00"),
            ("tomorrow morning", "Thu 2026-11-26 09:00"),
            ("in two hours", "Wed 2026-11-25 21:40"),
            ("in 2 hours", "Wed 2026-11-25 21:40"),
            ("in 10 minutes", "Wed 2026-11-25 19:50"),
            ("in 90 seconds", "Wed 2026-11-25 19:41"),
            ("in half an hour", "Wed 2026-11-25 20:10"),
            ("half an hour", "Wed 2026-11-25 20:10"),
            ("in an hour and a half", "Wed 2026-11-25 21:10"),
            ("in 1 hour and 15 minutes", "Wed 2026-11-25 20:55"),
            ("in a couple of hours", "Wed 2026-11-25 21:40"),
            ("in 3 days", "Sat 2026-11-28 19:40"),
            ("3 days from now", "Sat 2026-11-28 19:40"),
            ("2 hours", "Wed 2026-11-25 21:40"),
            ("30 minutes later", "Wed 2026-11-25 20:10"),
            ("in a week", "Wed 2026-12-02 19:40"),
            ("in 2 days at 8am", "Fri 2026-11-27 08:00"),
            ("next Friday evening", "Fri 2026-11-27 18:00"),
            ("friday at 18:30", "Fri 2026-11-27 18:30"),
            ("on Monday", "Mon 2026-11-30 09:00"),
            ("this wednesday at 21:00", "Wed 2026-11-25 21:00"),
            ("wednesday at 8am", "Wed 2026-12-02 08:00"),
            ("tonight", "Wed 2026-11-25 20:00"),
            ("tonight at 11", "Wed 2026-11-25 23:00"),
            ("at 5", "Thu 2026-11-26 17:00"),
            ("at 21:15", "Wed 2026-11-25 21:15"),
            ("at 8", "Thu 2026-11-26 08:00"),
            ("noon", "Thu 2026-11-26 12:00"),
            ("midnight", "Thu 2026-11-26 00:00"),
            ("28 November 18:00", "Sat 2026-11-28 18:00"),
            ("November 28 at 6pm", "Sat 2026-11-28 18:00"),
            ("the 3rd of December at 10am", "Thu 2026-12-03 10:00"),
            ("on the 1st", "Tue 2026-12-01 09:00"),
            ("1 January", "Fri 2027-01-01 09:00"),
            ("3rd May 2027 at 9:30", "Mon 2027-05-03 09:30"),
            ("28/11 at 7pm", "Sat 2026-11-28 19:00"),
            ("2026-11-28 18:00", "Sat 2026-11-28 18:00"),
            ("2026-11-28T18:00", "Sat 2026-11-28 18:00"),
            ("day after tomorrow at 10", "Fri 2026-11-27 10:00"),
            ("next week", "Wed 2026-12-02 09:00"),
            ("Friday afternoon", "Fri 2026-11-27 15:00"),
            ("18h30", "Thu 2026-11-26 18:30"),
            ("tomorrow at 12pm", "Thu 2026-11-26 12:00"),
            ("tomorrow at 12am", "Thu 2026-11-26 00:00"),
        ];
        let mut wrong = Vec::new();
        for (text, want) in cases {
            let got = at(text);
            if got != want {
                wrong.push(format!("{text:?}: got {got}, want {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// French, as the owner says it (Wednesday 25 November, 19:40).
    #[test]
    fn french_phrasings() {
        let cases = [
            ("demain à 9h", "Thu 2026-11-26 09:00"),
            ("demain à 10h30", "Thu 2026-11-26 10:30"),
            ("demain matin", "Thu 2026-11-26 09:00"),
            ("ce soir à 20h", "Wed 2026-11-25 20:00"),
            ("dans deux heures", "Wed 2026-11-25 21:40"),
            ("dans 10 minutes", "Wed 2026-11-25 19:50"),
            ("dans une demi-heure", "Wed 2026-11-25 20:10"),
            ("dans 3 jours", "Sat 2026-11-28 19:40"),
            ("lundi prochain à 10h", "Mon 2026-11-30 10:00"),
            ("vendredi soir", "Fri 2026-11-27 18:00"),
            ("après-demain à 7h", "Fri 2026-11-27 07:00"),
            ("le 3 décembre à 18h", "Thu 2026-12-03 18:00"),
            ("demain à 8h du soir", "Thu 2026-11-26 20:00"),
        ];
        for (text, want) in cases {
            assert_eq!(at(text), want, "{text}");
        }
        // English is untouched by the French words.
        assert_eq!(at("in a week"), "Wed 2026-12-02 19:40");
    }

    #[test]
    fn times_of_day_for_the_briefing() {
        assert_eq!(clock_of_day("07:30"), Some((7, 30)));
        assert_eq!(clock_of_day("7:30 am"), Some((7, 30)));
        assert_eq!(clock_of_day("6pm"), Some((18, 0)));
        assert_eq!(clock_of_day("18h15"), Some((18, 15)));
        assert_eq!(clock_of_day("25:00"), None);
        assert_eq!(clock_of_day("soon"), None);
    }

    #[test]
    fn what_is_not_understood_is_refused_with_examples() {
        for text in [
            "",
            "after the meeting",
            "soonish",
            "tomorrow tomorrow",
            "at 25:00",
            "in 3 fortnights",
            "30 February",
            "in 2 hours on friday",
        ] {
            let got = at(text);
            assert!(got.starts_with("error: "), "{text:?} gave {got}");
        }
        assert!(at("soonish").contains("tomorrow at 9"));
    }

    #[test]
    fn across_the_spring_change_the_local_time_holds() {
        // Saturday 28 March 2026 in Paris; the clocks go forward that night.
        let now: Zoned = "2026-03-28T10:00:00[Europe/Paris]".parse().unwrap();
        let z = parse("tomorrow at 9", &now).unwrap();
        assert_eq!(
            z.strftime("%Y-%m-%d %H:%M %:z").to_string(),
            "2026-03-29 09:00 +02:00"
        );
        // A delay is elapsed time: 24 hours later is 11:00 local.
        let z = parse("in 24 hours", &now).unwrap();
        assert_eq!(z.strftime("%Y-%m-%d %H:%M").to_string(), "2026-03-29 11:00");
    }
}
