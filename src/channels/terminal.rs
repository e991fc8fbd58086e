//! `hermit chat`: a conversation in the terminal.
//!
//! On a terminal it is interactive: a prompt, the reply streamed as it is
//! generated, tool calls shown as they happen, Ctrl-C stops the reply (not
//! the program), Ctrl-D quits. When stdin is not a terminal it is
//! scriptable: one user message per line, each complete reply printed
//! followed by an empty line.
//!
//! A request for the owner's approval does not hold the chat: the turn
//! ends saying what waits, and the next line that is only a yes or a no
//! decides it (the approved call then runs and the reply goes on); any
//! other line is a new message, and the request stays open until it
//! expires (`hermit approvals` can decide it too, and the chat notices).
//!
//! When `hermit up` runs, the chat goes through its control socket (the
//! daemon's model and tools; see [`crate::control`]); otherwise the agent
//! runs in this process.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::agent::{Agent, Conversation, Op, TurnEvent, TurnOutcome};
use crate::control::Event;

/// Where the turns run.
pub enum Backend {
    /// The agent in this process.
    Local { agent: Agent, system_prompt: String },
    /// A running daemon, through its control socket.
    Remote(crate::control::Client),
}

pub async fn run(mut backend: Backend) -> anyhow::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let mut conversation = match &backend {
        Backend::Local { system_prompt, .. } => Some(new_conversation(system_prompt)),
        Backend::Remote(_) => None,
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // Ctrl-C arrives here for as long as the chat runs, instead of killing it.
    let (interrupts_tx, mut interrupts) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if interrupts_tx.send(()).is_err() {
                break;
            }
        }
    });
    if interactive {
        let (name, threads, via) = match &mut backend {
            Backend::Local { agent, .. } => {
                let info = agent.model_status();
                (info.name.clone(), info.threads, "")
            }
            Backend::Remote(client) => {
                let s = client.status().await?;
                (s.model, s.threads, ", through the running daemon")
            }
        };
        eprintln!(
            "Hermit — {name} ({threads} threads{via}). Ctrl-C stops a reply, Ctrl-D quits, /new starts over."
        );
    }
    // Requests a turn asked the owner about, oldest first: the chat goes
    // on meanwhile; a line that is only a yes or a no decides the latest.
    let mut asked: Vec<String> = Vec::new();
    // Decisions taken elsewhere (`hermit approvals`) are noticed here.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'lines: loop {
        if interactive {
            print!("\n> ");
            std::io::stdout().flush()?;
        }
        let line = loop {
            tokio::select! {
                line = lines.next_line() => break line?,
                Some(()) = interrupts.recv() => {
                    if interactive {
                        eprintln!("\n(Ctrl-D quits)");
                        continue 'lines;
                    }
                    return Ok(());
                }
                _ = tick.tick(), if !asked.is_empty() && matches!(backend, Backend::Local { .. }) => {
                    let Backend::Local { agent, .. } = &backend else { continue };
                    let Some(trust) = &agent.trust else { continue };
                    let decided: Vec<String> = asked
                        .iter()
                        .filter(|c| trust.approvals.get(c).is_none_or(|r| r.status != "pending"))
                        .cloned()
                        .collect();
                    if decided.is_empty() {
                        continue;
                    }
                    for code in decided {
                        asked.retain(|c| c != &code);
                        let conv = conversation.as_mut().expect("local chats have a conversation");
                        let cancel = Arc::new(AtomicBool::new(false));
                        if interactive {
                            eprintln!("\n(request {code} was decided)");
                        }
                        let settle = agent.submit(conv, Op::Decided { code: &code }, show(interactive), cancel.clone());
                        let outcome = run_local(settle, &cancel, &mut interrupts).await;
                        print_outcome(outcome, interactive);
                    }
                    continue 'lines;
                }
            }
        };
        let Some(line) = line else { break };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        // Also from a script: one conversation per request.
        if text == "/new" {
            match &mut backend {
                Backend::Local { system_prompt, .. } => {
                    conversation = Some(new_conversation(system_prompt));
                }
                Backend::Remote(client) => {
                    client.request(&crate::control::Request::New).await?;
                    client.next().await?;
                }
            }
            asked.clear();
            eprintln!("(new conversation)");
            continue;
        }
        // A yes or a no while a request waits decides it (the latest);
        // anything else is a new message, and the request stays open.
        let decision = (!asked.is_empty()).then(|| yes_or_no(text)).flatten();
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome: Result<TurnOutcome, String> = match &mut backend {
            Backend::Local { agent, .. } => {
                let conv = conversation
                    .as_mut()
                    .expect("local chats have a conversation");
                match decision {
                    Some(approve) => {
                        let code = asked.pop().expect("a request waits");
                        if let Some(trust) = &agent.trust
                            && let Err(why) = trust.decide_at_box(&code, approve, "terminal")
                        {
                            eprintln!("({why})");
                        }
                        let settle = agent.submit(
                            conv,
                            Op::Decided { code: &code },
                            show(interactive),
                            cancel.clone(),
                        );
                        run_local(settle, &cancel, &mut interrupts).await
                    }
                    None => {
                        let turn =
                            agent.submit(conv, Op::typed(text), show(interactive), cancel.clone());
                        run_local(turn, &cancel, &mut interrupts).await
                    }
                }
            }
            Backend::Remote(client) => {
                let request = match decision {
                    Some(approve) => {
                        let code = asked.pop().expect("a request waits");
                        if approve {
                            crate::control::Request::Approve { code }
                        } else {
                            crate::control::Request::Deny { code }
                        }
                    }
                    None => crate::control::Request::Chat {
                        text: text.to_string(),
                    },
                };
                client.request(&request).await?;
                let mut show = show(interactive);
                loop {
                    let ev = tokio::select! {
                        ev = client.next() => ev?,
                        Some(()) = interrupts.recv() => {
                            client.request(&crate::control::Request::Cancel).await?;
                            continue;
                        }
                    };
                    match ev {
                        Event::Done(o) => break Ok(o),
                        // A request decided elsewhere, settled first.
                        Event::Settled(o) => print_outcome(Ok(o), interactive),
                        Event::Refused(why) => eprintln!("({why})"),
                        Event::Error(e) => break Err(e),
                        other => {
                            if let Some(ev) = other.turn_event() {
                                show(ev);
                            }
                        }
                    }
                }
            }
        };
        let just_asked = outcome.as_ref().ok().and_then(|o| o.awaiting.clone());
        if let Some(code) = &just_asked {
            asked.push(code.clone());
        }
        print_outcome(outcome, interactive);
        if let Some(code) = &just_asked {
            eprintln!(
                "(Type y to approve {code} or n to deny it. Anything else is a new message; the request stays open.)"
            );
        }
        std::io::stdout().flush()?;
    }
    // The conversation ends here: what it asked can no longer run.
    if let Backend::Local { agent, .. } = &backend
        && let Some(trust) = &agent.trust
    {
        for code in &asked {
            trust.approvals.cancel(code);
        }
    }
    Ok(())
}

/// A conversation at the terminal: a request for the owner does not hold
/// it.
fn new_conversation(system_prompt: &str) -> Conversation {
    let mut c = Conversation::new(system_prompt);
    c.defer_approvals = true;
    c
}

/// How a turn's events are shown: in both modes, an approval request
/// (what exactly would run); on a terminal, the reply as it streams and
/// the tool calls.
fn show(interactive: bool) -> impl FnMut(TurnEvent) {
    move |ev: TurnEvent| {
        if let TurnEvent::Approval { text, .. } = &ev {
            eprintln!("\n{text}");
            return;
        }
        if !interactive {
            return;
        }
        match ev {
            TurnEvent::Token(t) => {
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
            TurnEvent::ToolCall(call) => {
                eprintln!("\n[tool] {} {}", call.name, call.arguments);
            }
            TurnEvent::ToolResult { ok, content, .. } => {
                let first = content.lines().next().unwrap_or("");
                eprintln!("[tool] {} {first}", if ok { "done:" } else { "failed:" });
            }
            TurnEvent::Approval { .. } => {}
        }
    }
}

/// Runs a turn in this process; Ctrl-C stops it.
async fn run_local(
    turn: impl std::future::Future<Output = Result<TurnOutcome, crate::agent::InferenceError>>,
    cancel: &AtomicBool,
    interrupts: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> Result<TurnOutcome, String> {
    tokio::pin!(turn);
    loop {
        tokio::select! {
            r = &mut turn => break r.map_err(|e| e.to_string()),
            Some(()) = interrupts.recv() => cancel.store(true, Ordering::SeqCst),
        }
    }
}

/// A turn's end: on a terminal, what it left unsaid (stopped, limited,
/// cut); from a script, the whole reply and an empty line.
fn print_outcome(outcome: Result<TurnOutcome, String>, interactive: bool) {
    match outcome {
        Ok(o) => {
            if interactive {
                println!();
                if o.cancelled {
                    eprintln!("(stopped)");
                }
                if let Some(why) = &o.limited {
                    eprintln!("({why})");
                }
                if let Some(stats) = &o.stats {
                    if stats.finish == crate::agent::FinishReason::Length {
                        eprintln!("(reply cut at its length limit)");
                    }
                    if stats.dropped_messages > 0 {
                        eprintln!(
                            "(the oldest {} messages no longer fit in the context and were left out)",
                            stats.dropped_messages
                        );
                    }
                }
            } else {
                println!("{}\n", o.reply.trim());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            if !interactive {
                println!();
            }
        }
    }
    let _ = std::io::stdout().flush();
}

/// A line that is only a yes (`Some(true)`) or a no (`Some(false)`), in
/// English or French; anything else is a message.
pub(crate) fn yes_or_no(line: &str) -> Option<bool> {
    let l = line
        .trim()
        .trim_end_matches(['.', '!'])
        .trim()
        .to_lowercase();
    match l.as_str() {
        "y" | "yes" | "yep" | "approve" | "approved" | "o" | "oui" | "ok" | "okay" => Some(true),
        "n" | "no" | "nope" | "deny" | "denied" | "non" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::yes_or_no;

    #[test]
    fn only_a_plain_yes_or_no_decides() {
        for y in ["y", "yes", "Yes.", "OK", "oui", "approve"] {
            assert_eq!(yes_or_no(y), Some(true), "{y}");
        }
        for n in ["n", "No!", "non", "deny"] {
            assert_eq!(yes_or_no(n), Some(false), "{n}");
        }
        for other in [
            "Hi! How are you today?",
            "yes please remind me too",
            "no idea",
            "What time is it?",
            "",
        ] {
            assert_eq!(yes_or_no(other), None, "{other}");
        }
    }
}
