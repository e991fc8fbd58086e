//! An incoming timeline event, classified: who sent it (the bot, an
//! allowed person, a stranger), a reaction or a message (text, voice,
//! another kind), an edit, addressed to the bot or not, a trust command,
//! how old. [`classify`] and [`route`] are pure functions of the event and
//! of what the bot knows, tested below without a homeserver; the sync loop
//! acts on them ([`super::session`]).

use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::events::reaction::SyncReactionEvent;
use matrix_sdk::ruma::events::room::message::{
    MessageType, OriginalSyncRoomMessageEvent, Relation, RoomMessageEventContent,
    SyncRoomMessageEvent,
};
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent};

/// Approvals, denials, stops, resumes and reactions older than this do
/// nothing: an old `!resume` (decrypted late, fetched from a gap) must not
/// undo a newer `!stop`.
pub(super) const TRUST_COMMAND_MAX_AGE_MS: i64 = 10 * 60 * 1000;

/// In the first sync of a journal, messages older than this are recorded
/// as skipped: a journal started over must not answer a room's history.
const FIRST_SYNC_MAX_AGE_MS: i64 = 10 * 60 * 1000;

/// Who sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    Bot,
    /// The owner or a member.
    Allowed,
    Stranger,
}

/// What an incoming event is, for the bot.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Inbound {
    Ignored(Ignored),
    /// An edit that reads as `!approve`, `!stop`...: an approval (or stop)
    /// must be its own message, as an edit could turn an old, innocent
    /// message into one. Refused, and audited.
    EditedTrustCommand {
        event_id: OwnedEventId,
        sender: String,
    },
    Reaction(Reaction),
    /// A message of an allowed person; [`route`] says what to do with it
    /// once it is known whether its room is a direct chat.
    Message(Message),
}

/// Why an event does nothing.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ignored {
    RedactedReaction(OwnedEventId),
    RedactedMessage {
        event_id: OwnedEventId,
        sender: String,
    },
    /// An event type the bot does not handle.
    NotHandled(String),
    /// The bot's own message.
    Own,
    /// An edit of an earlier message: not answered.
    Edit(OwnedEventId),
    /// A message from a sender who is not allowed.
    Stranger(String),
}

/// A reaction: journaled (so that it acts once), then it acts unless it is
/// too old.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reaction {
    pub event_id: OwnedEventId,
    pub sender: String,
    pub who: Who,
    /// The key as sent.
    pub key: String,
    /// The event reacted to.
    pub target: OwnedEventId,
    pub origin_ts: i64,
    pub too_old: bool,
    /// ✅ approves (or marks a delivered reminder done), ❌ denies; other
    /// keys do nothing.
    pub vote: Option<bool>,
}

/// What a message carries, decoded from the text the journal keeps (see
/// [`Body::encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body<'a> {
    Text(&'a str),
    /// A voice message (any audio): its content as JSON, to be transcribed
    /// when answered.
    Audio(&'a str),
    /// Another kind of message (`m.image`), answered with a sentence.
    Unsupported(&'a str),
}

const AUDIO: &str = "\u{0}audio:";
const UNSUPPORTED: &str = "\u{0}unsupported:";

impl<'a> Body<'a> {
    /// The text the journal keeps: a text as it is; the other kinds behind
    /// a NUL byte, which no text typed in a client starts with (the
    /// journal's history leaves those out of the model's prompt).
    pub(crate) fn encode(self) -> String {
        match self {
            Body::Text(t) => t.to_string(),
            Body::Audio(json) => format!("{AUDIO}{json}"),
            Body::Unsupported(kind) => format!("{UNSUPPORTED}{kind}"),
        }
    }

    pub(crate) fn decode(stored: &'a str) -> Self {
        if let Some(json) = stored.strip_prefix(AUDIO) {
            Body::Audio(json)
        } else if let Some(kind) = stored.strip_prefix(UNSUPPORTED) {
            Body::Unsupported(kind)
        } else {
            Body::Text(stored)
        }
    }

    /// Whether it is typed text (which may name the bot or be a command).
    pub(crate) fn is_text(stored: &str) -> bool {
        matches!(Body::decode(stored), Body::Text(_))
    }
}

/// A message of an allowed person.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    pub event_id: OwnedEventId,
    pub sender: String,
    /// The text, or another kind of message encoded ([`Body::encode`]).
    pub body: String,
    pub origin_ts: i64,
    /// Against the system clock.
    pub age_ms: i64,
    /// An intentional mention of the bot, or its name in the text.
    pub mentioned: bool,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// A group message that does not address the bot.
    NotAddressed,
    /// `!approve`, `!deny`, `!stop`, `!resume`: acts at once, outside the
    /// room's queue, unless too old.
    TrustCommand { body: String, too_old: bool },
    /// For the room's worker; `stale` (too old in a first sync): recorded,
    /// never answered.
    Answer { body: String, stale: bool },
}

/// What `event` is, for the bot `bot_id`; `allowed`: whether a user is the
/// owner or a member; `now_ms`: the system clock (not Hermit's moved one:
/// the homeserver stamps events with its own).
pub(super) fn classify(
    event: &AnySyncTimelineEvent,
    bot_id: &str,
    allowed: impl Fn(&str) -> bool,
    now_ms: i64,
) -> Inbound {
    let who = |user: &str| {
        if user == bot_id {
            Who::Bot
        } else if allowed(user) {
            Who::Allowed
        } else {
            Who::Stranger
        }
    };
    let AnySyncTimelineEvent::MessageLike(like) = event else {
        return Inbound::Ignored(Ignored::NotHandled(event.event_type().to_string()));
    };
    match like {
        AnySyncMessageLikeEvent::Reaction(SyncReactionEvent::Original(r)) => {
            let origin_ts = i64::from(r.origin_server_ts.0);
            let key = r.content.relates_to.key.clone();
            Inbound::Reaction(Reaction {
                event_id: r.event_id.clone(),
                sender: r.sender.to_string(),
                who: who(r.sender.as_str()),
                vote: vote(&key),
                key,
                target: r.content.relates_to.event_id.clone(),
                origin_ts,
                too_old: now_ms - origin_ts > TRUST_COMMAND_MAX_AGE_MS,
            })
        }
        AnySyncMessageLikeEvent::Reaction(SyncReactionEvent::Redacted(r)) => {
            Inbound::Ignored(Ignored::RedactedReaction(r.event_id.clone()))
        }
        AnySyncMessageLikeEvent::RoomMessage(SyncRoomMessageEvent::Redacted(r)) => {
            Inbound::Ignored(Ignored::RedactedMessage {
                event_id: r.event_id.clone(),
                sender: r.sender.to_string(),
            })
        }
        AnySyncMessageLikeEvent::RoomMessage(SyncRoomMessageEvent::Original(msg)) => {
            message(msg, who(msg.sender.as_str()), bot_id, now_ms)
        }
        other => Inbound::Ignored(Ignored::NotHandled(other.event_type().to_string())),
    }
}

fn message(msg: &OriginalSyncRoomMessageEvent, who: Who, bot_id: &str, now_ms: i64) -> Inbound {
    let sender = msg.sender.to_string();
    if who == Who::Bot {
        return Inbound::Ignored(Ignored::Own);
    }
    if let Some(Relation::Replacement(r)) = &msg.content.relates_to {
        return if is_trust_command(r.new_content.msgtype.body().trim()) {
            Inbound::EditedTrustCommand {
                event_id: msg.event_id.clone(),
                sender,
            }
        } else {
            Inbound::Ignored(Ignored::Edit(msg.event_id.clone()))
        };
    }
    if who == Who::Stranger {
        return Inbound::Ignored(Ignored::Stranger(sender));
    }
    let body = match &msg.content.msgtype {
        MessageType::Text(t) => t.body.clone(),
        MessageType::Notice(t) => t.body.clone(),
        MessageType::Emote(t) => t.body.clone(),
        MessageType::Audio(a) => {
            Body::Audio(&serde_json::to_string(a).unwrap_or_default()).encode()
        }
        other => Body::Unsupported(other.msgtype()).encode(),
    };
    let origin_ts = i64::from(msg.origin_server_ts.0);
    Inbound::Message(Message {
        event_id: msg.event_id.clone(),
        mentioned: mentions_bot(&msg.content, &body, bot_id),
        sender,
        body,
        origin_ts,
        age_ms: now_ms - origin_ts,
    })
}

/// What to do with `m`, in a direct chat or not; `initial`: in the first
/// sync of the journal.
pub(super) fn route(m: &Message, direct: bool, bot_id: &str, initial: bool) -> Route {
    // `!approve`, `!stop`...: commands to the bot even without a mention.
    let command = is_trust_command(strip_mention(&m.body, bot_id).trim());
    if !direct && !command && !m.mentioned {
        return Route::NotAddressed;
    }
    let body = if direct || !Body::is_text(&m.body) {
        m.body.clone()
    } else {
        strip_mention(&m.body, bot_id)
    };
    if is_trust_command(body.trim()) {
        return Route::TrustCommand {
            body,
            too_old: m.age_ms > TRUST_COMMAND_MAX_AGE_MS,
        };
    }
    Route::Answer {
        body,
        stale: initial && m.age_ms > FIRST_SYNC_MAX_AGE_MS,
    }
}

/// ✅ (and its look-alikes): yes; ❌: no; anything else: nothing.
fn vote(key: &str) -> Option<bool> {
    match key.trim_end_matches('\u{fe0f}') {
        "✅" | "✔" | "☑" => Some(true),
        "❌" | "✖" | "🚫" => Some(false),
        _ => None,
    }
}

/// Whether a group message is addressed to the bot: an intentional mention
/// (`m.mentions`, which clients also set on a reply to the bot's message),
/// or its name in the text. A voice note (the internal `\0audio:` body) has
/// no text to name it in: only an intentional mention counts, so Hermit
/// transcribes no voice note of a group conversation that is not addressed
/// to it (reply to one of its messages with a voice note, or mention it).
fn mentions_bot(content: &RoomMessageEventContent, body: &str, bot_id: &str) -> bool {
    if let Some(m) = &content.mentions
        && m.user_ids.iter().any(|u| u.as_str() == bot_id)
    {
        return true;
    }
    if !Body::is_text(body) {
        return false;
    }
    let local = bot_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let lower = body.to_lowercase();
    lower.contains(&bot_id.to_lowercase())
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == local)
}

/// A mention of the bot at the start of a group message ("hermit: ...",
/// "@hermit:server ...") is not part of the question.
fn strip_mention(body: &str, bot_id: &str) -> String {
    let local = bot_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or_default();
    let t = body.trim_start();
    for prefix in [bot_id, local] {
        if t.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            let rest = t[prefix.len()..].trim_start_matches([':', ',', ' ']);
            if !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    body.to_string()
}

/// `!approve`, `!deny`, `!stop`, `!resume`: handled as soon as they
/// arrive, outside the room's queue.
pub(super) fn is_trust_command(body: &str) -> bool {
    let first = body
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(first.as_str(), "!approve" | "!deny" | "!stop" | "!resume")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "@hermit:box";
    const OWNER: &str = "@owner:box";
    const NOW: i64 = 1_800_000_000_000;

    fn event(v: serde_json::Value) -> AnySyncTimelineEvent {
        serde_json::from_str(&v.to_string()).unwrap()
    }

    fn message_event(
        sender: &str,
        content: serde_json::Value,
        age_ms: i64,
    ) -> AnySyncTimelineEvent {
        event(serde_json::json!({
            "type": "m.room.message", "event_id": "$m", "sender": sender,
            "origin_server_ts": NOW - age_ms, "content": content,
        }))
    }

    fn text(sender: &str, body: &str) -> AnySyncTimelineEvent {
        message_event(
            sender,
            serde_json::json!({"msgtype": "m.text", "body": body}),
            1000,
        )
    }

    fn classify(e: &AnySyncTimelineEvent) -> Inbound {
        super::classify(e, BOT, |u| u == OWNER, NOW)
    }

    fn message(e: &AnySyncTimelineEvent) -> Message {
        match classify(e) {
            Inbound::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn who_sent_it_decides_whether_it_counts() {
        assert_eq!(classify(&text(BOT, "hi")), Inbound::Ignored(Ignored::Own));
        assert_eq!(
            classify(&text("@eve:box", "hi")),
            Inbound::Ignored(Ignored::Stranger("@eve:box".into()))
        );
        let m = message(&text(OWNER, "hi"));
        assert_eq!((m.sender.as_str(), m.body.as_str()), (OWNER, "hi"));
        assert_eq!(m.age_ms, 1000);
        assert!(!m.mentioned);
        let state = event(serde_json::json!({
            "type": "m.room.topic", "event_id": "$t", "sender": OWNER, "state_key": "",
            "origin_server_ts": NOW, "content": {"topic": "x"},
        }));
        assert!(matches!(
            classify(&state),
            Inbound::Ignored(Ignored::NotHandled(_))
        ));
    }

    #[test]
    fn an_edit_is_not_answered_and_never_approves() {
        let edit = |body: &str| {
            message_event(
                OWNER,
                serde_json::json!({
                    "msgtype": "m.text", "body": format!("* {body}"),
                    "m.new_content": {"msgtype": "m.text", "body": body},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"},
                }),
                0,
            )
        };
        assert!(matches!(
            classify(&edit("!approve abc")),
            Inbound::EditedTrustCommand { .. }
        ));
        assert!(matches!(
            classify(&edit("a typo fixed")),
            Inbound::Ignored(Ignored::Edit(_))
        ));
    }

    #[test]
    fn voice_and_other_kinds_are_marked_for_the_worker() {
        let voice = message(&message_event(
            OWNER,
            serde_json::json!({"msgtype": "m.audio", "body": "voice.ogg", "url": "mxc://box/abc"}),
            0,
        ));
        assert!(voice.body.starts_with("\0audio:{"), "{}", voice.body);
        assert!(voice.body.contains("mxc://box/abc"));
        let image = message(&message_event(
            OWNER,
            serde_json::json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://box/c"}),
            0,
        ));
        assert_eq!(image.body, "\0unsupported:m.image");
    }

    #[test]
    fn reactions_vote_and_age() {
        let reaction = |sender: &str, key: &str, age: i64| match classify(&event(
            serde_json::json!({
                "type": "m.reaction", "event_id": "$r", "sender": sender,
                "origin_server_ts": NOW - age,
                "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$req", "key": key}},
            }),
        )) {
            Inbound::Reaction(r) => r,
            other => panic!("not a reaction: {other:?}"),
        };
        let yes = reaction(OWNER, "✅", 0);
        assert_eq!(
            (yes.vote, yes.who, yes.too_old),
            (Some(true), Who::Allowed, false)
        );
        assert_eq!(yes.target.as_str(), "$req");
        assert_eq!(reaction(OWNER, "✔\u{fe0f}", 0).vote, Some(true));
        assert_eq!(reaction(OWNER, "❌", 0).vote, Some(false));
        assert_eq!(reaction(OWNER, "👍", 0).vote, None);
        assert_eq!(reaction("@eve:box", "✅", 0).who, Who::Stranger);
        assert_eq!(reaction(BOT, "✅", 0).who, Who::Bot);
        assert!(reaction(OWNER, "✅", TRUST_COMMAND_MAX_AGE_MS + 1).too_old);
    }

    #[test]
    fn group_messages_are_answered_only_when_addressed() {
        let m = message(&text(OWNER, "lunch?"));
        assert_eq!(route(&m, false, BOT, false), Route::NotAddressed);
        assert_eq!(
            route(&m, true, BOT, false),
            Route::Answer {
                body: "lunch?".into(),
                stale: false
            }
        );
        let m = message(&text(OWNER, "hermit: what time is it?"));
        assert_eq!(
            route(&m, false, BOT, false),
            Route::Answer {
                body: "what time is it?".into(),
                stale: false
            }
        );
        // A trust command counts without a mention, with its mention cut.
        let m = message(&text(OWNER, "hermit: !approve abc"));
        assert_eq!(
            route(&m, false, BOT, false),
            Route::TrustCommand {
                body: "!approve abc".into(),
                too_old: false
            }
        );
        assert_eq!(
            route(&message(&text(OWNER, "!STOP")), false, BOT, false),
            Route::TrustCommand {
                body: "!STOP".into(),
                too_old: false
            }
        );
    }

    #[test]
    fn old_messages_and_commands_do_not_act() {
        let old = |body: &str| {
            message(&message_event(
                OWNER,
                serde_json::json!({"msgtype": "m.text", "body": body}),
                TRUST_COMMAND_MAX_AGE_MS + 1,
            ))
        };
        assert_eq!(
            route(&old("!resume"), true, BOT, false),
            Route::TrustCommand {
                body: "!resume".into(),
                too_old: true
            }
        );
        assert_eq!(
            route(&old("hello"), true, BOT, true),
            Route::Answer {
                body: "hello".into(),
                stale: true
            }
        );
        assert_eq!(
            route(&old("hello"), true, BOT, false),
            Route::Answer {
                body: "hello".into(),
                stale: false
            }
        );
    }

    #[test]
    fn a_group_voice_note_is_heard_only_when_it_mentions_the_bot() {
        use matrix_sdk::ruma::OwnedUserId;
        use matrix_sdk::ruma::events::Mentions;
        use matrix_sdk::ruma::events::room::message::AudioMessageEventContent;
        let audio = || {
            RoomMessageEventContent::new(MessageType::Audio(AudioMessageEventContent::plain(
                "hermit-voice.ogg".into(),
                "mxc://box/abc".into(),
            )))
        };
        // The internal body of a voice note names the file: "hermit" in it
        // is no mention.
        let body = format!(
            "\0audio:{}",
            serde_json::to_string(&audio().msgtype).unwrap()
        );
        assert!(body.contains("hermit"));
        assert!(!mentions_bot(&audio(), &body, BOT));
        let mut to_bot = audio();
        let id: OwnedUserId = BOT.try_into().unwrap();
        to_bot.mentions = Some(Mentions::with_user_ids([id]));
        assert!(mentions_bot(&to_bot, &body, BOT));
        // Text: the name in the words is enough.
        let text = RoomMessageEventContent::text_plain("hermit, what time is it?");
        assert!(mentions_bot(&text, "hermit, what time is it?", BOT));
        assert!(!mentions_bot(
            &RoomMessageEventContent::text_plain("lunch?"),
            "lunch?",
            BOT
        ));
        // Through `classify` and `route`: a group voice note is dropped
        // unless it mentions the bot.
        let voice = message(&message_event(
            OWNER,
            serde_json::json!({"msgtype": "m.audio", "body": "hermit-voice.ogg", "url": "mxc://box/abc"}),
            0,
        ));
        assert_eq!(route(&voice, false, BOT, false), Route::NotAddressed);
        let voice = message(&message_event(
            OWNER,
            serde_json::json!({"msgtype": "m.audio", "body": "v.ogg", "url": "mxc://box/abc",
                "m.mentions": {"user_ids": [BOT]}}),
            0,
        ));
        assert!(matches!(
            route(&voice, false, BOT, false),
            Route::Answer { body, .. } if body.starts_with("\0audio:")
        ));
    }

    #[test]
    fn a_leading_mention_is_not_part_of_the_question() {
        assert_eq!(
            strip_mention("hermit: what time is it?", BOT),
            "what time is it?"
        );
        assert_eq!(strip_mention("@hermit:box, hello", BOT), "hello");
        assert_eq!(strip_mention("ask hermit", BOT), "ask hermit");
        // Not a byte index inside a character.
        assert_eq!(strip_mention("Привет hermit", BOT), "Привет hermit");
    }
}
