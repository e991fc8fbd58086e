//! The name of a conversation, as approvals bind to it and memory files
//! its messages under it.

use std::fmt;

/// Which conversation: the channel, the place in that channel (a Matrix
/// room ID, which has colons of its own) and which conversation of that
/// place (an epoch that `!new` moves on, or a scheduled task's run).
///
/// Written `channel:place:name` ("matrix:!room:box:3",
/// "matrix:!room:box:task-3-1700000000000", "local:4242:1"), the form the
/// database stores; [`ConversationKey::parse`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    channel: String,
    place: String,
    name: String,
}

impl ConversationKey {
    /// The channel a Matrix room's conversations are held in.
    pub(crate) const MATRIX: &'static str = "matrix";
    /// The channel of a conversation held in this process (the terminal,
    /// the control socket, the bench).
    pub(crate) const LOCAL: &'static str = "local";

    pub(crate) fn new(
        channel: impl Into<String>,
        place: impl Into<String>,
        name: impl fmt::Display,
    ) -> Self {
        Self {
            channel: channel.into(),
            place: place.into(),
            name: name.to_string(),
        }
    }

    /// A conversation of this process: its place is the process, so that
    /// two processes' conversations never share a key.
    pub fn local(id: u64) -> Self {
        Self::new(Self::LOCAL, std::process::id().to_string(), id)
    }

    /// A Matrix room's conversation `name`.
    pub fn matrix(room: impl Into<String>, name: impl fmt::Display) -> Self {
        Self::new(Self::MATRIX, room, name)
    }

    /// Reads the written form back; `None` for text that is not one.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (channel, rest) = text.split_once(':')?;
        let (place, name) = rest.rsplit_once(':')?;
        if channel.is_empty() || place.is_empty() || name.is_empty() {
            return None;
        }
        Some(Self::new(channel, place, name))
    }

    /// The Matrix room it is held in, if it is a room's.
    pub(crate) fn room(&self) -> Option<&str> {
        (self.channel == Self::MATRIX).then_some(self.place.as_str())
    }
}

impl fmt::Display for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.channel, self.place, self.name)
    }
}

impl PartialEq<str> for ConversationKey {
    fn eq(&self, other: &str) -> bool {
        ConversationKey::parse(other).is_some_and(|k| k == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_what_it_writes_even_with_colons_in_the_room() {
        for key in [
            ConversationKey::matrix("!room:box.lan", 3),
            ConversationKey::matrix("!room:box.lan:8448", "task-3-1700000000000"),
            ConversationKey::local(7),
        ] {
            let written = key.to_string();
            assert_eq!(
                ConversationKey::parse(&written),
                Some(key.clone()),
                "{written}"
            );
            assert!(key == *written.as_str());
        }
        let k = ConversationKey::parse("matrix:!room:box:3").unwrap();
        assert_eq!(k.room(), Some("!room:box"));
        assert_eq!(k, ConversationKey::matrix("!room:box", 3));
        assert_eq!(ConversationKey::local(1).room(), None);
        for bad in [
            "",
            "matrix",
            "matrix:!room",
            ":a:b",
            "matrix::3",
            "matrix:!r:",
        ] {
            assert_eq!(ConversationKey::parse(bad), None, "{bad:?}");
        }
    }
}
