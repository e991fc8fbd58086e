//! Chat commands, answered without the model: `!help`, `!new`,
//! `!status`, the reminder commands (`!reminders`, `!remind`, `!cancel`,
//! `!done`, `!briefing`, `!watch`: the speaker's own, through the reminders
//! store), and the trust commands `!approve` / `!deny` (decided in
//! [`super::approvals`]) and `!stop` / `!resume` (the stop switch,
//! [`crate::trust::halt`]), which act at once from the sync loop.

use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedRoomId;

use super::Bot;
use crate::agent::Conversation;

const HELP: &str = "I am Hermit, a private assistant running on your own box. \
Write to me in plain words. Commands:\n\n\
- `!help`: this message\n\
- `!new`: start a fresh conversation in this room\n\
- `!status`: the model, how long I have been up, and the queue\n\
- `!reminders`, `!remind tomorrow at 18:00 call mum`, `!cancel ID`, `!done ID`: your reminders (or ask me in words)\n\
- `!briefing 07:30` / `!briefing off`: a morning briefing of your day; `!watch TEXT`: keep something in it\n\
- `!approve CODE` / `!deny CODE` (or react ✅ / ❌ to my request): decide an action I asked about\n\
- `!stop`: halt everything I am doing at once, and hold every new action\n\
- `!resume`: carry on after a `!stop`\n\n\
In a group room I answer only when mentioned. Only the owner approves, stops and resumes.";

impl Bot {
    /// `!approve`, `!deny`, `!stop`, `!resume`: returns the reply.
    pub(super) fn trust_command(
        &self,
        room: &Room,
        sender: &str,
        text: &str,
        verified: Option<bool>,
    ) -> String {
        let mut words = text.split_whitespace();
        let command = words.next().unwrap_or_default().to_ascii_lowercase();
        let arg = words.next().unwrap_or_default();
        let is_owner = sender == self.trust.owner();
        match command.as_str() {
            "!approve" | "!deny" if arg.is_empty() => {
                format!("Which request? Send `{command} CODE` with the code I gave.")
            }
            "!approve" | "!deny" => self.decide(room, sender, arg, command == "!approve", verified),
            "!stop" | "!resume"
                if is_owner && self.trust.approvals.require_verified && verified != Some(true) =>
            {
                tracing::warn!(%sender, %command, "stop or resume from a device that is not verified");
                self.trust.audit.record(
                    crate::vocab::AuditKind::StopRefused,
                    sender,
                    serde_json::json!({"command": command, "room": room.room_id().as_str(), "why": "unverified device"}),
                );
                format!(
                    "`{command}` counts only from your verified devices (policy.require_verified_device). \
                     Verify this device, or use `hermit stop-all` / `hermit resume` on the box."
                )
            }
            "!stop" | "!resume" if !is_owner => {
                tracing::warn!(%sender, %command, "only the owner can stop or resume Hermit");
                self.trust.audit.record(
                    crate::vocab::AuditKind::StopRefused,
                    sender,
                    serde_json::json!({"command": command, "room": room.room_id().as_str()}),
                );
                "Only the owner can stop or resume me.".into()
            }
            "!stop" => match self.trust.stop(sender, "matrix") {
                Ok((turns, processes)) => {
                    format!(
                        "**Stopped.** {turns} running turn(s) and {processes} tool process(es) halted. \
                         Nothing runs until you send `!resume`."
                    )
                }
                Err(e) => format!("I could not record the stop: {e}"),
            },
            _ => match self.trust.resume(sender, "matrix") {
                Ok(()) => "Resumed: I act again (within the policy).".into(),
                Err(e) => format!("I could not resume: {e}"),
            },
        }
    }

    pub(super) fn command(
        &self,
        room_id: &OwnedRoomId,
        who: &str,
        text: &str,
        conversation: &mut Option<(i64, Conversation)>,
        shared: Option<bool>,
    ) -> Option<String> {
        let command = text.strip_prefix('!')?.split_whitespace().next()?;
        let rest = text[1 + command.len()..].trim();
        Some(match command {
            "help" => HELP.to_string(),
            "reminders" | "remind" | "cancel" | "briefing" | "watch" | "done" => {
                self.reminder_command(room_id, who, command, rest)
            }
            // A shared room's conversation is everyone's: only the owner
            // sets it aside.
            "new" if shared == Some(true) && who != crate::vocab::OWNER => {
                "Only the owner can start a fresh conversation in a shared room.".to_string()
            }
            "new" => {
                let r = self.journal.new_epoch(room_id.as_str());
                if let Some((_, c)) = conversation.take() {
                    self.agent.forget(&c);
                }
                match r {
                    Ok(_) => "Starting a fresh conversation; I have set aside what we said before."
                        .to_string(),
                    Err(e) => format!("I could not start a new conversation: {e}"),
                }
            }
            "status" => {
                let info = self.agent.model_status();
                let up = self.started.elapsed().as_secs();
                format!(
                    "Model: {} ({} threads, context {} tokens)\nUp: {}h {:02}m {:02}s\nQueue: {} waiting",
                    info.name,
                    info.threads,
                    info.context_tokens,
                    up / 3600,
                    up / 60 % 60,
                    up % 60,
                    info.queue
                )
            }
            _ => format!("I do not know `!{command}`.\n\n{HELP}"),
        })
    }

    /// `!reminders`, `!remind DATE TIME TEXT`, `!cancel ID`: the speaker's
    /// own reminders, without the model.
    fn reminder_command(
        &self,
        room_id: &OwnedRoomId,
        who: &str,
        command: &str,
        rest: &str,
    ) -> String {
        let store = match self.reminder_store() {
            Ok(s) => s,
            Err(e) => return format!("I cannot reach the reminders: {e}"),
        };
        let tz = &self.settings.timezone;
        match command {
            "reminders" => match store.list(Some(who), false) {
                Ok(list) if list.is_empty() => "You have no reminders.".into(),
                Ok(list) => list
                    .iter()
                    .map(|r| format!("- {}", r.line()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => format!("I cannot list the reminders: {e}"),
            },
            "briefing" => {
                let arg = rest.trim().to_lowercase();
                let at = match arg.as_str() {
                    "" => {
                        return match store.briefing(who) {
                            Ok(Some(b)) => format!(
                                "Your morning briefing is on: {}. `!briefing off` turns it off.",
                                b.when()
                            ),
                            Ok(None) => {
                                "Your morning briefing is off. `!briefing 07:30` turns it on."
                                    .into()
                            }
                            Err(e) => format!("I cannot read it: {e}"),
                        };
                    }
                    "off" | "stop" | "none" => None,
                    t => match crate::schedule::when::clock_of_day(t) {
                        Some(hm) => Some(hm),
                        None => {
                            return format!(
                                "{t:?} is not a time of day: write `!briefing 07:30` or `!briefing off`."
                            );
                        }
                    },
                };
                match store.set_briefing(who, Some(room_id.as_str()), at, tz) {
                    Ok(Some(b)) => format!(
                        "Morning briefing on: {} in this room (your reminders, schedules and tasks of the day, what is still open from yesterday, and what you asked me to watch).",
                        b.when()
                    ),
                    Ok(None) => "Morning briefing off.".into(),
                    Err(e) => format!("I could not set it: {e}"),
                }
            }
            "watch" => {
                if rest.is_empty() {
                    return "Write `!watch the parcel from Lyon`: I will mention it each morning in your briefing until you `!cancel` it.".into();
                }
                match store.add_watch(who, rest, tz, None) {
                    Ok(r) => format!(
                        "Watching: {} (#{}). It will be in your morning briefing until you `!cancel {}`.",
                        r.text, r.id, r.id
                    ),
                    Err(e) => format!("I could not add it: {e}"),
                }
            }
            "done" => match rest.trim_start_matches('#').parse::<i64>() {
                Err(_) => {
                    "Write `!done ID` with the number of a reminder I sent you (or react ✅ to it)."
                        .into()
                }
                Ok(id) => match store.mark_done(id, who) {
                    Ok(true) => format!("Marked reminder {id} done."),
                    Ok(false) => {
                        format!("There is no delivered reminder {id} of yours still open.")
                    }
                    Err(e) => format!("I could not mark it: {e}"),
                },
            },
            "remind" => {
                let Some((at, text)) = split_when(rest, tz) else {
                    return "Write `!remind tomorrow at 18:00 call mum` or `!remind 2026-11-28 18:00 call mum` (or just ask me in words)."
                        .into();
                };
                match store.add_once(who, Some(room_id.as_str()), &text, at, tz, None) {
                    Ok(r) => format!(
                        "I'll remind you {}: {} (reminder {})",
                        r.when(),
                        r.text,
                        r.id
                    ),
                    Err(e) => format!("I could not set that reminder: {e}"),
                }
            }
            _ => match rest.parse::<i64>() {
                Err(_) => "Write `!cancel ID` with an id from `!reminders`.".into(),
                Ok(id) => match store.cancel(id, Some(who)) {
                    Ok(Some(r)) => format!("Cancelled reminder {}: {}", r.id, r.text),
                    Ok(None) => format!("You have no active reminder {id}."),
                    Err(e) => format!("I could not cancel it: {e}"),
                },
            },
        }
    }
}

/// `!remind tomorrow at 9 to call mum`: the longest run of leading words
/// that reads as a time in `tz`, and what to remind of.
fn split_when(rest: &str, tz: &str) -> Option<(jiff::Timestamp, String)> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (at, k) = (1..words.len()).rev().find_map(|k| {
        crate::reminders::parse_local(&words[..k].join(" "), tz)
            .ok()
            .map(|at| (at, k))
    })?;
    let text = words[k..].join(" ");
    let text = text.strip_prefix("to ").map(str::to_string).unwrap_or(text);
    Some((at, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remind_takes_the_longest_time_then_the_errand() {
        let (at, text) = split_when("tomorrow at 18:00 to call mum", "UTC").unwrap();
        assert_eq!(text, "call mum");
        let local = at.to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!((local.hour(), local.minute()), (18, 0));
        let (_, text) = split_when("2026-11-28 18:00 buy flowers", "UTC").unwrap();
        assert_eq!(text, "buy flowers");
        assert!(split_when("call mum", "UTC").is_none());
        // A time alone reminds of nothing.
        assert!(split_when("tomorrow", "UTC").is_none());
    }

    #[test]
    fn trust_commands_are_the_four_and_help_names_them() {
        for c in ["!approve", "!deny", "!stop", "!resume"] {
            assert!(super::super::inbound::is_trust_command(c));
            assert!(HELP.contains(c), "{c} missing from !help");
        }
        assert!(!super::super::inbound::is_trust_command("!help"));
    }
}
