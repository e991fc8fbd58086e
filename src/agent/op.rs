//! What a channel asks of the agent, as one typed value: every front end
//! (a Matrix room, the terminal, the control socket, the scheduler, the
//! bench) speaks to a conversation with [`Agent::submit`] and hears
//! [`TurnEvent`]s while it runs and a [`TurnOutcome`] at its end.
//!
//! The requests that are not about one conversation have their own
//! doors: a briefing is [`Agent::compose`] (a conversation of its own, no
//! tools, no memory), a stop is [`crate::trust::Trust::stop`] (it reaches
//! every turn, generation and tool process registered with the switch).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{Agent, Conversation, TurnEvent, TurnOutcome};
use crate::inference::InferenceError;
use crate::vocab::Origin;

/// A request about one conversation.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// A message: the conversation's principal's words (`origin: None`,
    /// typed) or words that came another way, labelled with where they
    /// came from (a voice note's transcript, [`Origin::Transcript`]: the
    /// voice may not be the sender's, so the message taints the
    /// conversation and effects beyond reading ask the owner).
    Message {
        text: &'a str,
        origin: Option<&'a Origin>,
    },
    /// The owner decided the request `code`, asked earlier in this
    /// conversation without waiting ([`Conversation::defer_approvals`]):
    /// the approved call runs and the model writes the follow-up, or the
    /// conversation records why it did not run.
    Decided { code: &'a str },
}

impl<'a> Op<'a> {
    /// Words typed by the conversation's principal.
    pub fn typed(text: &'a str) -> Self {
        Op::Message { text, origin: None }
    }

    /// Words that came labelled with `origin`.
    pub fn labelled(text: &'a str, origin: &'a Origin) -> Self {
        Op::Message {
            text,
            origin: Some(origin),
        }
    }
}

impl Agent {
    /// Carries out `op` in `conv`. `on_event` hears the reply's tokens,
    /// calls, results and requests for approval as they happen; `cancel`
    /// ends it (the current generation stops at its next token), as does
    /// the owner's stop.
    pub async fn submit(
        &self,
        conv: &mut Conversation,
        op: Op<'_>,
        on_event: impl FnMut(TurnEvent),
        cancel: Arc<AtomicBool>,
    ) -> Result<TurnOutcome, InferenceError> {
        match op {
            Op::Message { text, origin } => {
                self.turn_as(conv, text, origin.cloned(), on_event, cancel)
                    .await
            }
            Op::Decided { code } => self.settle(conv, code, on_event, cancel).await,
        }
    }
}
