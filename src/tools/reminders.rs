//! `remind`, `schedule`, `schedule_task`, `reminders`, `cancel_reminder`:
//! the model's hands on [`crate::reminders`]. Times are local to the
//! owner's timezone (`agent.timezone`): the model passes the words of the
//! request ("tomorrow at 9"), Hermit resolves them exactly
//! ([`crate::schedule::when`]) and says back, in words, when it will be.

use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};
use crate::reminders::{Reminders, parse_local};
use crate::vocab::Origin;

fn store(ctx: &ToolContext, tool: &str) -> Result<Reminders, ToolError> {
    Reminders::open(&ctx.data_dir).map_err(|e| ToolError::failed(tool, e))
}

pub(crate) struct Remind;

impl Tool for Remind {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "remind",
            description: "Set a one-off reminder. `at`: all the words of the request that say when, exactly as written (\"tonight at 8\", \"on Monday at 10am\", \"the day after tomorrow at 7:30\", \"in two hours\"): Hermit works out the date. `text`: what to do, without the time.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to remind the user of", "maxLength": 1000},
                    "at": {"type": "string", "description": "When, in the user's words", "maxLength": 60}
                },
                "required": ["text", "at"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let failed = |e: String| ToolError::failed("remind", e);
        let (text, at) = when_in_text(
            arg_str(args, "text").unwrap_or_default(),
            arg_str(args, "at").unwrap_or_default(),
            &ctx.timezone,
        )
        .map_err(failed)?;
        let r = store(ctx, "remind")?
            .add_once(
                meta.principal_key(),
                meta.room().as_deref(),
                &text,
                at,
                &ctx.timezone,
                meta.taint.as_deref(),
            )
            .map_err(|e| failed(e.to_string()))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: format!(
                "I'll remind you {}: {} (reminder {})",
                r.when(),
                r.text,
                r.id
            ),
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }
}

/// The time of a reminder, with the day words a model left at the end of
/// its text: `text` "Take the bins out tonight", `at` "8" is tonight at
/// 20:00, and the text "Take the bins out". Only when the words at the end
/// read as a time on their own and together with `at`.
fn when_in_text(text: &str, at: &str, tz: &str) -> Result<(String, jiff::Timestamp), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for k in (1..=words.len().saturating_sub(1).min(5)).rev() {
        let tail = words[words.len() - k..]
            .join(" ")
            .trim_end_matches(['.', '!', ','])
            .to_string();
        if crate::schedule::when::names_a_day(&tail)
            && let Ok(t) = parse_local(&format!("{tail} {at}"), tz)
        {
            return Ok((words[..words.len() - k].join(" "), t));
        }
    }
    Ok((text.to_string(), parse_local(at, tz)?))
}

pub(crate) struct Schedule;

impl Tool for Schedule {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "schedule",
            description: "Only for a reminder that repeats (\"every ...\"): a cron rule in the user's timezone: minute hour day-of-month month day-of-week. Every weekday at 8: \"0 8 * * MON-FRI\"; the first Monday of each month at 9: \"0 9 * * MON#1\"; every day at 7:30: \"30 7 * * *\".",
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to remind the user of", "maxLength": 1000},
                    "cron": {"type": "string", "description": "minute hour day-of-month month day-of-week", "maxLength": 100}
                },
                "required": ["text", "cron"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let r = store(ctx, "schedule")?
            .add_recurring(
                meta.principal_key(),
                meta.room().as_deref(),
                arg_str(args, "text").unwrap_or_default(),
                arg_str(args, "cron").unwrap_or_default(),
                &ctx.timezone,
                meta.taint.as_deref(),
            )
            .map_err(|e| ToolError::failed("schedule", e))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: format!("Scheduled: {} — {} (reminder {})", r.text, r.when(), r.id),
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }
}

pub(crate) struct Task;

/// The effects named in a task's `grant` argument ("write, irreversible").
pub(crate) fn parse_grants(text: &str) -> Result<Vec<Effect>, String> {
    let mut out = Vec::new();
    for name in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let e: Effect = serde_json::from_value(Value::String(name.to_lowercase()))
            .map_err(|_| format!("{name:?} is not an effect (read, write, exec, network, message, irreversible, remember)"))?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out.sort();
    Ok(out)
}

/// The grants as stored: "write,irreversible".
pub(crate) fn grants_text(grants: &[Effect]) -> String {
    grants
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok()?.as_str().map(String::from))
        .collect::<Vec<_>>()
        .join(",")
}

impl Tool for Task {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "schedule_task",
            description: "Have Hermit do something later or regularly, by itself (\"every Monday at 9, summarise my notes\"): `prompt` is run as a request at that time. `when`: a cron rule (\"0 9 * * MON\") or a time (\"tomorrow at 9\"). `grant`: effects it may use without asking, only if the user said so (e.g. \"write\").",
            parameters: json!({
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "The request to run", "maxLength": 2000},
                    "when": {"type": "string", "description": "cron rule or time", "maxLength": 100},
                    "grant": {"type": "string", "description": "comma-separated effects", "maxLength": 100}
                },
                "required": ["prompt", "when"],
                "additionalProperties": false
            }),
        }
    }

    /// Creating a task with grants is using those effects now: the owner
    /// approves the grant, bound to this exact task, when the policy asks.
    fn effects(&self, args: &Value) -> Vec<Effect> {
        let mut effects = vec![Effect::Remember];
        effects
            .extend(parse_grants(arg_str(args, "grant").unwrap_or_default()).unwrap_or_default());
        effects
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let failed = |e: String| ToolError::failed("schedule_task", e);
        let grants = parse_grants(arg_str(args, "grant").unwrap_or_default()).map_err(failed)?;
        let when = arg_str(args, "when").unwrap_or_default().trim();
        let (at, rule) = if when.split_whitespace().count() == 5
            && when.parse::<crate::schedule::Cron>().is_ok()
        {
            (None, Some(when))
        } else {
            (
                Some(parse_local(when, &ctx.timezone).map_err(failed)?),
                None,
            )
        };
        let r = store(ctx, "schedule_task")?
            .add_task(
                meta.principal_key(),
                meta.room().as_deref(),
                arg_str(args, "prompt").unwrap_or_default(),
                at,
                rule,
                &ctx.timezone,
                &grants_text(&grants),
                meta.taint.as_deref(),
            )
            .map_err(|e| failed(e.to_string()))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: format!("Scheduled {}", r.line()),
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }
}

pub(crate) struct List;

impl Tool for List {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "reminders",
            description: "List the user's active reminders and schedules, with their ids.",
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Read]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        _args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let list = store(ctx, "reminders")?
            .list(Some(meta.principal_key()), false)
            .map_err(|e| ToolError::failed("reminders", e))?;
        let content = if list.is_empty() {
            "no active reminders".to_string()
        } else {
            list.iter().map(|r| r.line()).collect::<Vec<_>>().join("\n")
        };
        Ok(ToolOutput {
            // Every text set in a turn with no untrusted text: the
            // person's own words.
            own: list.iter().all(|r| r.origin.is_none()),
            ok: true,
            content,
        })
    }

    /// Reminders can hold text from a turn that read untrusted text
    /// (unless every one listed was set without: [`ToolOutput::own`]).
    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        Some(Origin::Memory("reminders".into()))
    }
}

pub(crate) struct Cancel;

/// Words that say nothing of which reminder is meant.
const NOT_ABOUT: &[&str] = &[
    "the",
    "my",
    "a",
    "an",
    "about",
    "for",
    "to",
    "of",
    "one",
    "reminder",
    "reminders",
    "schedule",
    "le",
    "la",
    "les",
    "l",
    "de",
    "du",
    "des",
    "mon",
    "ma",
    "mes",
    "un",
    "une",
    "rappel",
    "rappels",
    "pour",
    "sur",
    "celui",
    "celle",
];

/// The active reminders `about` names: those whose text holds the most of
/// its words (none when it names none).
fn about_matches<'a>(
    list: &'a [crate::reminders::Reminder],
    about: &str,
) -> Vec<&'a crate::reminders::Reminder> {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !NOT_ABOUT.contains(w))
            .map(str::to_string)
            .collect()
    };
    let wanted = words(about);
    let score = |r: &crate::reminders::Reminder| {
        let have = words(&r.text);
        wanted
            .iter()
            .filter(|w| {
                have.iter()
                    .any(|h| h == *w || (w.len() >= 4 && h.starts_with(w.as_str())))
            })
            .count()
    };
    let best = list.iter().map(score).max().unwrap_or(0);
    if best == 0 {
        return Vec::new();
    }
    list.iter().filter(|r| score(r) == best).collect()
}

fn lines_or_none(list: &[crate::reminders::Reminder]) -> String {
    if list.is_empty() {
        "(none)".into()
    } else {
        list.iter().map(|r| r.line()).collect::<Vec<_>>().join("\n")
    }
}

impl Tool for Cancel {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "cancel_reminder",
            description: "Cancel one of the user's reminders or schedules: by what it is about, in the user's words (\"dentist\"), or by its id (see `reminders`).",
            parameters: json!({
                "type": "object",
                "properties": {
                    "about": {"type": "string", "description": "words of the reminder's text", "maxLength": 100},
                    "id": {"type": "integer", "minimum": 1}
                },
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let failed = |e: String| ToolError::failed("cancel_reminder", e);
        let store = store(ctx, "cancel_reminder")?;
        let who = meta.principal_key();
        let id = match (
            args.get("id").and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            }),
            arg_str(args, "about")
                .map(str::trim)
                .filter(|a| !a.is_empty()),
        ) {
            (Some(id), _) => id,
            (None, Some(about)) => {
                let list = store
                    .list(Some(who), false)
                    .map_err(|e| failed(e.to_string()))?;
                match about_matches(&list, about).as_slice() {
                    [one] => one.id,
                    [] => {
                        return Ok(ToolOutput {
                            own: list.iter().all(|r| r.origin.is_none()),
                            ok: false,
                            content: format!(
                                "no active reminder is about {about:?}; the active ones:\n{}",
                                lines_or_none(&list)
                            ),
                        });
                    }
                    several => {
                        return Ok(ToolOutput {
                            own: several.iter().all(|r| r.origin.is_none()),
                            ok: false,
                            content: format!(
                                "several reminders are about {about:?}; which one (give its id)?\n{}",
                                several
                                    .iter()
                                    .map(|r| r.line())
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            ),
                        });
                    }
                }
            }
            (None, None) => {
                return Err(failed(
                    "say which reminder: `about` (words of its text) or `id`".into(),
                ));
            }
        };
        let gone = store
            .cancel(id, Some(who))
            .map_err(|e| failed(e.to_string()))?;
        Ok(match gone {
            Some(r) => ToolOutput {
                own: r.origin.is_none(),
                ok: true,
                content: format!("cancelled reminder {}: {}", r.id, r.text),
            },
            None => ToolOutput {
                own: true,
                ok: false,
                content: format!("there is no active reminder {id} of this user"),
            },
        })
    }

    /// It echoes the stored text, which can come from a turn that read
    /// untrusted text: labelled like the listing (and, like it, not when
    /// the text was set without: [`ToolOutput::own`]).
    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        Some(Origin::Memory("reminders".into()))
    }
}

pub(crate) struct Briefing;

impl Tool for Briefing {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "briefing",
            description: "Turn the user's morning briefing on at a time of day (\"07:30\"), or off (\"off\"): a summary of the day's reminders, open items and watched things, sent each morning.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "at": {"type": "string", "description": "A time of day like 07:30, or off", "maxLength": 20}
                },
                "required": ["at"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let failed = |e: String| ToolError::failed("briefing", e);
        let said = arg_str(args, "at")
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let at = match said.as_str() {
            "off" | "stop" | "none" | "no" | "non" | "arrêt" | "" => None,
            t => Some(crate::schedule::when::clock_of_day(t).ok_or_else(|| {
                failed(format!(
                    "{t:?} is not a time of day: give one like 07:30, or off"
                ))
            })?),
        };
        let room = meta.room();
        if at.is_some() && room.is_none() {
            return Err(failed(
                "a briefing is sent in a Matrix room: ask for it there (or with `!briefing 07:30`)"
                    .into(),
            ));
        }
        let set = store(ctx, "briefing")?
            .set_briefing(meta.principal_key(), room.as_deref(), at, &ctx.timezone)
            .map_err(|e| failed(e.to_string()))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: match set {
                Some(b) => format!("Morning briefing on: {}, in this room.", b.when()),
                None => "Morning briefing off.".into(),
            },
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }
}

pub(crate) struct Watch;

impl Tool for Watch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "watch",
            description: "Keep something in the user's morning briefing until they cancel it (\"the parcel from Lyon\").",
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to keep an eye on", "maxLength": 1000}
                },
                "required": ["text"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let text = arg_str(args, "text").unwrap_or_default().trim();
        if text.is_empty() {
            return Err(ToolError::failed("watch", "say what to watch"));
        }
        let r = store(ctx, "watch")?
            .add_watch(
                meta.principal_key(),
                text,
                &ctx.timezone,
                meta.taint.as_deref(),
            )
            .map_err(|e| ToolError::failed("watch", e))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: format!(
                "Watching: {} (#{}). It will be in the morning briefing until it is cancelled.",
                r.text, r.id
            ),
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_words_left_in_the_text_join_the_time() {
        let local = |t: jiff::Timestamp| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("%H:%M")
                .to_string()
        };
        let (text, t) = when_in_text("Take the bins out tonight", "8", "UTC").unwrap();
        assert_eq!(
            (text.as_str(), local(t).as_str()),
            ("Take the bins out", "20:00")
        );
        let (text, t) = when_in_text("Book the garage on Monday", "10am", "UTC").unwrap();
        assert_eq!(text, "Book the garage");
        let monday = t.to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(monday.weekday(), jiff::civil::Weekday::Monday);
        assert_eq!(local(t), "10:00");
        // Nothing to join: the text stays whole.
        let (text, t) = when_in_text("Call mum at 6", "tomorrow at 6pm", "UTC").unwrap();
        assert_eq!(
            (text.as_str(), local(t).as_str()),
            ("Call mum at 6", "18:00")
        );
        let (text, _) = when_in_text("Renew the passport", "in 3 days", "UTC").unwrap();
        assert_eq!(text, "Renew the passport");
        assert!(when_in_text("Call mum", "whenever", "UTC").is_err());
        // A part of the day is not a day: "lunch" stays in the text.
        let (text, t) = when_in_text("Eat lunch", "noon", "UTC").unwrap();
        assert_eq!((text.as_str(), local(t).as_str()), ("Eat lunch", "12:00"));
    }
}
