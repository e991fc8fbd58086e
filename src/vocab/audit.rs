//! What an entry of the audit log records: one name per kind of event, so
//! that a kind is spelled once and `hermit audit` readers can rely on it.

use std::fmt;

/// The kind of an audit entry; stored as its dotted name ("tool.call").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// The daemon started.
    Start,
    /// The configuration in force changed.
    Config,
    MessageIn,
    MessageOut,
    /// A tool call and the policy's decision on it.
    ToolCall,
    ToolResult,
    ApprovalRequest,
    ApprovalApprove,
    ApprovalDeny,
    /// A decision that did not count (not the owner, another room, expired).
    ApprovalIgnored,
    /// An approval spent on the call it was bound to.
    ApprovalUsed,
    /// An approval that did not match the call about to run.
    ApprovalMismatch,
    Stop,
    StopRefused,
    Resume,
    SecretSet,
    MemoryForget,
    ReminderDelivered,
    BriefingSent,
    TaskRan,
}

impl AuditKind {
    pub const ALL: [AuditKind; 20] = [
        Self::Start,
        Self::Config,
        Self::MessageIn,
        Self::MessageOut,
        Self::ToolCall,
        Self::ToolResult,
        Self::ApprovalRequest,
        Self::ApprovalApprove,
        Self::ApprovalDeny,
        Self::ApprovalIgnored,
        Self::ApprovalUsed,
        Self::ApprovalMismatch,
        Self::Stop,
        Self::StopRefused,
        Self::Resume,
        Self::SecretSet,
        Self::MemoryForget,
        Self::ReminderDelivered,
        Self::BriefingSent,
        Self::TaskRan,
    ];

    /// The name stored in the log.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Config => "config",
            Self::MessageIn => "message.in",
            Self::MessageOut => "message.out",
            Self::ToolCall => "tool.call",
            Self::ToolResult => "tool.result",
            Self::ApprovalRequest => "approval.request",
            Self::ApprovalApprove => "approval.approve",
            Self::ApprovalDeny => "approval.deny",
            Self::ApprovalIgnored => "approval.ignored",
            Self::ApprovalUsed => "approval.used",
            Self::ApprovalMismatch => "approval.mismatch",
            Self::Stop => "stop",
            Self::StopRefused => "stop.refused",
            Self::Resume => "resume",
            Self::SecretSet => "secret.set",
            Self::MemoryForget => "memory.forget",
            Self::ReminderDelivered => "reminder.delivered",
            Self::BriefingSent => "briefing.sent",
            Self::TaskRan => "task.ran",
        }
    }

    /// The kind of a stored name; `None` for a name this version does not
    /// write.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_name_and_reads_back() {
        let names: std::collections::HashSet<_> =
            AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), AuditKind::ALL.len());
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::parse("tool.exploded"), None);
    }
}
