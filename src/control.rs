//! The control socket: `<data_dir>/hermit.sock`, a Unix socket (mode 0600,
//! in the 0700 data directory, and only for a peer running as the daemon's
//! own user) through which the other `hermit` commands talk to a running
//! `hermit up`.
//!
//! The protocol is one JSON object per line. Requests: `{"op": "status"}`;
//! `{"op": "chat", "text": "..."}` (answered by a stream of `TurnEvent`s,
//! then `{"event": "done", "data": TurnOutcome}` or `{"event": "error",
//! "data": "..."}`); `{"op": "cancel"}` stops the turn in progress;
//! `{"op": "new"}` starts a fresh conversation. One connection is one
//! conversation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::agent::{Agent, Conversation, TurnEvent, TurnOutcome};
use crate::channels::matrix::Bot;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "hermit.sock";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Chat { text: String },
    Cancel,
    New,
}

/// What `{"op": "status"}` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub model: String,
    pub threads: u32,
    pub uptime_seconds: u64,
    pub queue: usize,
    pub homeserver: String,
    pub bot: String,
    pub device: Option<String>,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    agent: Arc<Agent>,
    bot: Arc<Bot>,
    homeserver: String,
    started: Instant,
}

impl Server {
    pub fn bind(
        data_dir: &Path,
        agent: Arc<Agent>,
        bot: Arc<Bot>,
        homeserver: String,
    ) -> anyhow::Result<Self> {
        let path = data_dir.join(SOCKET);
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                anyhow::bail!(
                    "another Hermit is running (its control socket {} answers)",
                    path.display()
                );
            }
            std::fs::remove_file(&path).ok();
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self {
            listener,
            path,
            agent,
            bot,
            homeserver,
            started: Instant::now(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn serve(self) {
        let this = Arc::new(self);
        loop {
            let stream = match this.listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    continue;
                }
            };
            // Only the daemon's own user, even if the file mode is changed.
            let uid = unsafe { libc::geteuid() };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == uid => {}
                other => {
                    tracing::warn!(?other, "refused a control connection from another user");
                    continue;
                }
            }
            let this = this.clone();
            tokio::spawn(async move {
                if let Err(e) = this.session(stream).await {
                    tracing::debug!(error = %e, "control session ended");
                }
            });
        }
    }

    fn status(&self) -> Status {
        let info = self.agent.engine.info();
        Status {
            model: info.name.clone(),
            threads: info.threads,
            uptime_seconds: self.started.elapsed().as_secs(),
            queue: self.agent.engine.queue_len(),
            homeserver: self.homeserver.clone(),
            bot: self
                .bot
                .client()
                .user_id()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            device: self.bot.device_id(),
        }
    }

    async fn session(&self, stream: UnixStream) -> anyhow::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut conversation = Conversation::new(self.agent_system_prompt());
        while let Some(line) = lines.next_line().await? {
            let request: Request = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    send(
                        &mut write,
                        &serde_json::json!({"event": "error", "data": format!("bad request: {e}")}),
                    )
                    .await?;
                    continue;
                }
            };
            match request {
                Request::Status => send(&mut write, &self.status()).await?,
                Request::New => {
                    self.agent.engine.forget(conversation.id());
                    conversation = Conversation::new(self.agent_system_prompt());
                    send(&mut write, &serde_json::json!({"event": "new"})).await?;
                }
                Request::Cancel => {}
                Request::Chat { text } => {
                    let cancel = Arc::new(AtomicBool::new(false));
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TurnEvent>();
                    let turn = self.agent.turn(
                        &mut conversation,
                        &text,
                        move |ev| {
                            let _ = tx.send(ev);
                        },
                        cancel.clone(),
                    );
                    tokio::pin!(turn);
                    let outcome: Result<TurnOutcome, _> = loop {
                        tokio::select! {
                            o = &mut turn => break o,
                            Some(ev) = rx.recv() => send(&mut write, &ev).await?,
                            line = lines.next_line() => match line {
                                Ok(Some(l)) if l.contains("cancel") => cancel.store(true, Ordering::SeqCst),
                                Ok(Some(_)) => {}
                                // The client went away: stop generating for it.
                                _ => { cancel.store(true, Ordering::SeqCst); }
                            },
                        }
                    };
                    while let Ok(ev) = rx.try_recv() {
                        send(&mut write, &ev).await?;
                    }
                    match outcome {
                        Ok(o) => {
                            send(&mut write, &serde_json::json!({"event": "done", "data": o}))
                                .await?
                        }
                        Err(e) => {
                            send(
                                &mut write,
                                &serde_json::json!({"event": "error", "data": e.to_string()}),
                            )
                            .await?
                        }
                    }
                }
            }
        }
        self.agent.engine.forget(conversation.id());
        Ok(())
    }

    fn agent_system_prompt(&self) -> String {
        self.bot.system_prompt().to_string()
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &impl Serialize,
) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    Ok(())
}

/// A connection to a running daemon, if one answers.
pub async fn connect(data_dir: &Path) -> Option<Client> {
    let stream = UnixStream::connect(data_dir.join(SOCKET)).await.ok()?;
    let (read, write) = stream.into_split();
    Some(Client {
        lines: BufReader::new(read).lines(),
        write,
    })
}

/// The client side of the control socket.
pub struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    pub async fn request(&mut self, request: &Request) -> anyhow::Result<()> {
        send(&mut self.write, request).await
    }

    /// The next line from the daemon, as JSON.
    pub async fn next(&mut self) -> anyhow::Result<serde_json::Value> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("the daemon closed the connection")?;
        Ok(serde_json::from_str(&line)?)
    }

    pub async fn status(&mut self) -> anyhow::Result<Status> {
        self.request(&Request::Status).await?;
        Ok(serde_json::from_value(self.next().await?)?)
    }
}
