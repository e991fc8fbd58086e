//! `hermit chat`: a conversation in the terminal.
//!
//! On a terminal it is interactive: a prompt, the reply streamed as it is
//! generated, tool calls shown as they happen, Ctrl-C stops the reply (not
//! the program), Ctrl-D quits. When stdin is not a terminal it is
//! scriptable: one user message per line, each complete reply printed
//! followed by an empty line.
//!
//! When `hermit up` runs, the chat goes through its control socket (the
//! daemon's model and tools; see [`crate::control`]); otherwise the agent
//! runs in this process.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::agent::{Agent, Conversation, TurnEvent, TurnOutcome};

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
        Backend::Local { system_prompt, .. } => Some(Conversation::new(system_prompt.clone())),
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
    loop {
        if interactive {
            print!("\n> ");
            std::io::stdout().flush()?;
        }
        let line = tokio::select! {
            line = lines.next_line() => line?,
            Some(()) = interrupts.recv() => {
                if interactive {
                    eprintln!("\n(Ctrl-D quits)");
                    continue;
                }
                return Ok(());
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
                    conversation = Some(Conversation::new(system_prompt.clone()));
                }
                Backend::Remote(client) => {
                    client.request(&crate::control::Request::New).await?;
                    client.next().await?;
                }
            }
            eprintln!("(new conversation)");
            continue;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (approvals_tx, mut approvals) = tokio::sync::mpsc::unbounded_channel::<String>();
        let show = move |ev: TurnEvent| {
            // An approval request is shown in both modes: it waits for an
            // answer on the next line.
            if let TurnEvent::Approval { code, text } = &ev {
                eprintln!("\n{text}\nApprove {code}? Type y to approve, anything else denies:");
                let _ = approvals_tx.send(code.clone());
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
        };
        let outcome: Result<TurnOutcome, String> = match &mut backend {
            Backend::Local { agent, .. } => {
                let conv = conversation
                    .as_mut()
                    .expect("local chats have a conversation");
                let trust = agent.trust.clone();
                let turn = agent.turn(conv, text, show, cancel.clone());
                tokio::pin!(turn);
                loop {
                    tokio::select! {
                        r = &mut turn => break r.map_err(|e| e.to_string()),
                        Some(()) = interrupts.recv() => cancel.store(true, Ordering::SeqCst),
                        Some(code) = approvals.recv() => {
                            let approve = answer(&mut lines).await;
                            if let Some(trust) = &trust
                                && let Err(why) = trust.decide_at_box(&code, approve, "terminal")
                            {
                                eprintln!("({why})");
                            }
                        }
                    }
                }
            }
            Backend::Remote(client) => {
                client
                    .request(&crate::control::Request::Chat {
                        text: text.to_string(),
                    })
                    .await?;
                loop {
                    let ev = tokio::select! {
                        ev = client.next() => ev?,
                        Some(()) = interrupts.recv() => {
                            client.request(&crate::control::Request::Cancel).await?;
                            continue;
                        }
                    };
                    match ev["event"].as_str() {
                        Some("done") => break Ok(serde_json::from_value(ev["data"].clone())?),
                        Some("approval") => {
                            if let Ok(ev) = serde_json::from_value::<TurnEvent>(ev.clone()) {
                                show(ev);
                            }
                            if let Some(code) = ev["data"]["code"].as_str() {
                                let code = code.to_string();
                                let request = if answer(&mut lines).await {
                                    crate::control::Request::Approve { code }
                                } else {
                                    crate::control::Request::Deny { code }
                                };
                                client.request(&request).await?;
                            }
                        }
                        Some("decided") => {}
                        Some("refused") => eprintln!("({})", ev["data"].as_str().unwrap_or("")),
                        Some("error") => {
                            break Err(ev["data"].as_str().unwrap_or("error").to_string());
                        }
                        _ => {
                            if let Ok(ev) = serde_json::from_value::<TurnEvent>(ev) {
                                show(ev);
                            }
                        }
                    }
                }
            }
        };
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
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// The owner's answer to an approval request: the next line, `y` or
/// `yes` approves; anything else, or the end of input, denies.
async fn answer(lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>) -> bool {
    match lines.next_line().await {
        Ok(Some(l)) => matches!(l.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        _ => false,
    }
}
