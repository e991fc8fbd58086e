//! `hermit chat`: a conversation in the terminal.
//!
//! On a terminal it is interactive: a prompt, the reply streamed as it is
//! generated, tool calls shown as they happen, Ctrl-C stops the reply (not
//! the program), Ctrl-D quits. When stdin is not a terminal it is
//! scriptable: one user message per line, each complete reply printed
//! followed by an empty line.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::agent::{Agent, Conversation, TurnEvent};

pub async fn run(agent: Agent, system_prompt: String) -> anyhow::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let mut conversation = Conversation::new(system_prompt.clone());
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
        let info = agent.engine.info();
        eprintln!(
            "Hermit — {} ({} threads). Ctrl-C stops a reply, Ctrl-D quits, /new starts over.",
            info.name, info.threads
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
        if interactive && text == "/new" {
            conversation = Conversation::new(system_prompt.clone());
            eprintln!("(new conversation)");
            continue;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let show = move |ev: TurnEvent| {
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
            }
        };
        let turn = agent.turn(&mut conversation, text, show, cancel.clone());
        tokio::pin!(turn);
        let outcome = loop {
            tokio::select! {
                r = &mut turn => break r,
                Some(()) = interrupts.recv() => cancel.store(true, Ordering::SeqCst),
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
                        if stats.finish == crate::inference::FinishReason::Length {
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
