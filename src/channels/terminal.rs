//! `hermit chat`: a conversation in the terminal.
//!
//! On a terminal it is interactive: a prompt, the reply streamed as it is
//! generated, Ctrl-C stops the reply (not the program), Ctrl-D quits. When
//! stdin is not a terminal it is scriptable: one user message per line, each
//! complete reply printed followed by an empty line.

use std::io::{IsTerminal, Write};

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::agent::Conversation;
use crate::inference::{Engine, FinishReason, GenerationEvent};

pub async fn run(engine: Engine, system_prompt: String) -> anyhow::Result<()> {
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
        let info = engine.info();
        eprintln!(
            "Hermit — {} ({} threads). Ctrl-C stops a reply, Ctrl-D quits, /new starts over.",
            info.name, info.threads
        );
    }
    let mut stdout = std::io::stdout();
    loop {
        if interactive {
            print!("\n> ");
            stdout.flush()?;
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
        let mut generation = conversation.begin_turn(&engine, text);
        let mut reply = String::new();
        let mut outcome = None;
        loop {
            tokio::select! {
                ev = generation.events.recv() => match ev {
                    Some(GenerationEvent::Token(t)) => {
                        reply.push_str(&t);
                        if interactive {
                            print!("{t}");
                            stdout.flush()?;
                        }
                    }
                    Some(GenerationEvent::Done(stats)) => { outcome = Some(Ok(stats)); break; }
                    Some(GenerationEvent::Failed(e)) => { outcome = Some(Err(e)); break; }
                    None => break,
                },
                Some(()) = interrupts.recv() => generation.cancel(),
            }
        }
        conversation.finish_turn(&reply);
        match outcome {
            Some(Ok(stats)) => {
                if interactive {
                    println!();
                    match stats.finish {
                        FinishReason::Cancelled => eprintln!("(stopped)"),
                        FinishReason::Length => eprintln!("(reply cut at its length limit)"),
                        FinishReason::Stop => {}
                    }
                    if stats.dropped_messages > 0 {
                        eprintln!(
                            "(the oldest {} messages no longer fit in the context and were left out)",
                            stats.dropped_messages
                        );
                    }
                } else {
                    println!("{}\n", reply.trim());
                }
                tracing::debug!(?stats, "turn done");
            }
            Some(Err(e)) => {
                eprintln!("error: {e}");
                if !interactive {
                    println!();
                }
            }
            None => anyhow::bail!("the inference engine stopped"),
        }
        stdout.flush()?;
    }
    Ok(())
}
