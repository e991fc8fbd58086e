//! The control socket: `<data_dir>/hermit.sock`, a Unix socket (mode 0600,
//! in the 0700 data directory, and only for a peer running as the daemon's
//! own user) through which the other `hermit` commands talk to a running
//! `hermit up`.
//!
//! The protocol is one JSON object per line. Requests: `{"op": "status"}`;
//! `{"op": "chat", "text": "..."}` (answered by a stream of `TurnEvent`s,
//! then `{"event": "done", "data": TurnOutcome}` or `{"event": "error",
//! "data": "..."}`); `{"op": "cancel"}` stops the turn in progress;
//! `{"op": "new"}` starts a fresh conversation; `{"op": "approve", "code":
//! "..."}` and `{"op": "deny", "code": "..."}` decide an approval request
//! (also during a turn). A turn that needs the owner's approval ends
//! asking (its `done` has `awaiting`: the request's code); deciding that
//! request on the same connection settles it there: `decided` (or
//! `refused`), the events of the approved call and its follow-up, then
//! `done`. A request decided elsewhere (`hermit approvals`) is settled
//! before the next `chat`, as events then `{"event": "settled", "data":
//! TurnOutcome}`. `{"op": "stop_all"}` and
//! `{"op": "resume"}` work the stop switch. One connection is one
//! conversation. The peer is the daemon's own Unix user, that is, the
//! owner at the box.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::agent::{Agent, Conversation, Op, TurnEvent, TurnOutcome};
use crate::trust::Trust;

/// The socket's file name in the data directory.
pub const SOCKET: &str = "hermit.sock";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Chat {
        text: String,
    },
    Cancel,
    New,
    Approve {
        code: String,
    },
    Deny {
        code: String,
    },
    StopAll,
    Resume,
    /// Reads the secrets store again (after `hermit secrets set`), so
    /// that the new value is redacted too.
    ReloadSecrets,
}

/// What the daemon says on the socket, a JSON line each
/// (`{"event": ..., "data": ...}`; a status request is answered with a
/// [`Status`]): a turn's events as it runs (the agent's [`TurnEvent`]s, in
/// the same form), then how it ended, and the answers to the other
/// requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// A piece of the reply.
    Token(String),
    /// The model called a tool.
    ToolCall(crate::vocab::ToolCall),
    /// The tool's result (or why it did not run).
    ToolResult {
        name: String,
        ok: bool,
        content: String,
    },
    /// A call waits for the owner's approval.
    Approval {
        code: String,
        text: String,
    },
    /// The turn ended.
    Done(TurnOutcome),
    /// A request of this conversation decided elsewhere meanwhile, settled
    /// before the next message.
    Settled(TurnOutcome),
    /// The owner's decision was taken.
    Decided(crate::trust::approvals::Stored),
    /// The decision did nothing, and why.
    Refused(String),
    /// Everything stopped: turns and tool processes halted.
    Stopped {
        turns: usize,
        processes: usize,
    },
    /// A new conversation.
    New,
    /// The secrets store was read again.
    Reloaded,
    /// Resumed after a stop.
    Resumed,
    Error(String),
}

impl From<TurnEvent> for Event {
    fn from(ev: TurnEvent) -> Self {
        match ev {
            TurnEvent::Token(t) => Event::Token(t),
            TurnEvent::ToolCall(c) => Event::ToolCall(c),
            TurnEvent::ToolResult { name, ok, content } => Event::ToolResult { name, ok, content },
            TurnEvent::Approval { code, text } => Event::Approval { code, text },
        }
    }
}

impl Event {
    /// The turn's event this is, if it is one.
    pub fn turn_event(self) -> Option<TurnEvent> {
        Some(match self {
            Event::Token(t) => TurnEvent::Token(t),
            Event::ToolCall(c) => TurnEvent::ToolCall(c),
            Event::ToolResult { name, ok, content } => TurnEvent::ToolResult { name, ok, content },
            Event::Approval { code, text } => TurnEvent::Approval { code, text },
            _ => return None,
        })
    }

    fn error(e: impl std::fmt::Display) -> Self {
        Event::Error(e.to_string())
    }
}

/// What `{"op": "status"}` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub model: String,
    pub threads: u32,
    pub uptime_seconds: u64,
    pub queue: usize,
    /// Generations asked of the model since the daemon started.
    #[serde(default)]
    pub model_calls: u64,
    pub homeserver: String,
    pub bot: String,
    pub device: Option<String>,
}

/// Who the daemon is on its homeserver, as `status` reports it.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub homeserver: String,
    pub bot: String,
    pub device: Option<String>,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    data_dir: PathBuf,
    agent: Arc<Agent>,
    trust: Arc<Trust>,
    system_prompt: String,
    identity: Identity,
    started: Instant,
}

impl Server {
    pub fn bind(
        data_dir: &Path,
        agent: Arc<Agent>,
        trust: Arc<Trust>,
        system_prompt: String,
        identity: Identity,
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
            data_dir: data_dir.to_path_buf(),
            agent,
            trust,
            system_prompt,
            identity,
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
                    // E.g. out of file descriptors: do not spin.
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            // Only the daemon's own user, even if the file mode is changed;
            // and not from a sandboxed tool process: those run as the same
            // user but in namespaces of their own, and Landlock does not
            // govern connecting to a Unix socket. A tool that could talk
            // here could approve its own calls.
            let uid = unsafe { libc::geteuid() };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == uid => {
                    if let Err(why) = same_namespaces(cred.pid()) {
                        tracing::warn!(pid = ?cred.pid(), %why, "refused a control connection from another namespace (a sandboxed process?)");
                        continue;
                    }
                }
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
        let info = self.agent.model_status();
        Status {
            model: info.name.clone(),
            threads: info.threads,
            uptime_seconds: self.started.elapsed().as_secs(),
            queue: info.queue,
            model_calls: info.calls,
            homeserver: self.identity.homeserver.clone(),
            bot: self.identity.bot.clone(),
            device: self.identity.device.clone(),
        }
    }

    async fn session(&self, stream: UnixStream) -> anyhow::Result<()> {
        let mut conversation = self.conversation();
        let mut asked = Vec::new();
        let result = self.converse(stream, &mut conversation, &mut asked).await;
        // However the session ended, its KV cache is given back, and what
        // it asked the owner can no longer run.
        self.agent.forget(&conversation);
        for code in &asked {
            self.trust.approvals.cancel(code);
        }
        result
    }

    /// A new conversation: a request for the owner does not hold it.
    fn conversation(&self) -> Conversation {
        let mut c = Conversation::new(self.agent_system_prompt());
        c.defer_approvals = true;
        c
    }

    async fn converse(
        &self,
        stream: UnixStream,
        conversation: &mut Conversation,
        // Requests this conversation's turns asked about without waiting.
        asked: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Some(line) = lines.next_line().await? {
            let request: Request = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    send(&mut write, &Event::error(format!("bad request: {e}"))).await?;
                    continue;
                }
            };
            match request {
                Request::Status => send(&mut write, &self.status()).await?,
                Request::New => {
                    self.agent.forget(conversation);
                    *conversation = self.conversation();
                    asked.clear();
                    send(&mut write, &Event::New).await?;
                }
                Request::Cancel => {}
                Request::Approve { code } => {
                    if !self
                        .decide_and_settle(&code, true, asked, conversation, &mut lines, &mut write)
                        .await?
                    {
                        return Ok(());
                    }
                }
                Request::Deny { code } => {
                    if !self
                        .decide_and_settle(
                            &code,
                            false,
                            asked,
                            conversation,
                            &mut lines,
                            &mut write,
                        )
                        .await?
                    {
                        return Ok(());
                    }
                }
                Request::StopAll => {
                    let r = self.stop_all();
                    send(&mut write, &r).await?;
                }
                Request::ReloadSecrets => {
                    let r = match crate::trust::load_secrets(&self.data_dir) {
                        Ok(()) => Event::Reloaded,
                        Err(e) => Event::error(e),
                    };
                    send(&mut write, &r).await?;
                }
                Request::Resume => {
                    let r = match self.trust.resume(self.trust.owner(), "control socket") {
                        Ok(()) => Event::Resumed,
                        Err(e) => Event::error(e),
                    };
                    send(&mut write, &r).await?;
                }
                Request::Chat { text } => {
                    // Requests decided elsewhere meanwhile (`hermit
                    // approvals`, a stop) are settled first.
                    let decided: Vec<String> = asked
                        .iter()
                        .filter(|c| {
                            self.trust
                                .approvals
                                .get(c)
                                .is_none_or(|r| r.status != "pending")
                        })
                        .cloned()
                        .collect();
                    for code in decided {
                        asked.retain(|c| c != &code);
                        let Some(outcome) = self
                            .settle_here(&code, conversation, &mut lines, &mut write)
                            .await?
                        else {
                            return Ok(());
                        };
                        let settled = match outcome {
                            Ok(o) => Event::Settled(o),
                            Err(e) => Event::error(e),
                        };
                        send(&mut write, &settled).await?;
                    }
                    let cancel = Arc::new(AtomicBool::new(false));
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<TurnEvent>();
                    let turn = self.agent.submit(
                        conversation,
                        Op::typed(&text),
                        move |ev| {
                            let _ = tx.send(ev);
                        },
                        cancel.clone(),
                    );
                    let Some(outcome) =
                        stream_turn(turn, rx, &mut lines, &mut write, &cancel, self).await?
                    else {
                        return Ok(());
                    };
                    if let Ok(o) = &outcome
                        && let Some(code) = &o.awaiting
                    {
                        asked.push(code.clone());
                    }
                    send(&mut write, &done(outcome)).await?;
                }
            }
        }
        Ok(())
    }

    /// The owner's decision on `code`; one of this conversation's requests
    /// is then settled here (the approved call runs, the follow-up
    /// streams, `done` ends it). `false`: the client went away.
    async fn decide_and_settle(
        &self,
        code: &str,
        approve: bool,
        asked: &mut Vec<String>,
        conversation: &mut Conversation,
        lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        write: &mut tokio::net::unix::OwnedWriteHalf,
    ) -> anyhow::Result<bool> {
        let r = self.decide(code, approve);
        send(write, &r).await?;
        let code = code.trim().to_ascii_uppercase();
        if !asked.contains(&code) {
            return Ok(true);
        }
        asked.retain(|c| c != &code);
        let Some(outcome) = self.settle_here(&code, conversation, lines, write).await? else {
            return Ok(false);
        };
        send(write, &done(outcome)).await?;
        Ok(true)
    }

    /// Settles one of this conversation's requests, its events streamed
    /// to the client. `None`: the client went away.
    async fn settle_here(
        &self,
        code: &str,
        conversation: &mut Conversation,
        lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        write: &mut tokio::net::unix::OwnedWriteHalf,
    ) -> anyhow::Result<Option<Result<TurnOutcome, crate::agent::InferenceError>>> {
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<TurnEvent>();
        let settle = self.agent.submit(
            conversation,
            Op::Decided { code },
            move |ev| {
                let _ = tx.send(ev);
            },
            cancel.clone(),
        );
        stream_turn(settle, rx, lines, write, &cancel, self).await
    }

    /// The owner's decision, typed at the box.
    fn decide(&self, code: &str, approve: bool) -> Event {
        match self.trust.decide_at_box(code, approve, "control socket") {
            Ok(row) => Event::Decided(row),
            Err(why) => Event::Refused(why.to_string()),
        }
    }

    fn stop_all(&self) -> Event {
        let trust = &self.trust;
        match trust.stop(trust.owner(), "control socket") {
            Ok((turns, processes)) => Event::Stopped { turns, processes },
            Err(e) => Event::error(e),
        }
    }

    fn agent_system_prompt(&self) -> String {
        self.system_prompt.clone()
    }
}

/// What ends a turn on the socket.
fn done(outcome: Result<TurnOutcome, crate::agent::InferenceError>) -> Event {
    match outcome {
        Ok(o) => Event::Done(o),
        Err(e) => Event::error(e),
    }
}

/// Streams a turn's events to the client while it runs; meanwhile the
/// client may cancel it, decide requests and stop everything. `None`:
/// the client went away (the turn was cancelled).
async fn stream_turn(
    turn: impl std::future::Future<Output = Result<TurnOutcome, crate::agent::InferenceError>>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<TurnEvent>,
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    cancel: &AtomicBool,
    server: &Server,
) -> anyhow::Result<Option<Result<TurnOutcome, crate::agent::InferenceError>>> {
    tokio::pin!(turn);
    let mut gone = false;
    let mut busy = 0usize;
    let outcome = loop {
        tokio::select! {
            o = &mut turn => break o,
            Some(ev) = rx.recv(), if !gone => {
                if send(write, &Event::from(ev)).await.is_err() {
                    gone = true;
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            line = lines.next_line(), if !gone => match line {
                Ok(Some(l)) => match serde_json::from_str::<Request>(&l) {
                    Ok(Request::Cancel) => cancel.store(true, Ordering::SeqCst),
                    Ok(Request::Approve { code }) => {
                        let r = server.decide(&code, true);
                        let _ = send(write, &r).await;
                    }
                    Ok(Request::Deny { code }) => {
                        let r = server.decide(&code, false);
                        let _ = send(write, &r).await;
                    }
                    Ok(Request::StopAll) => {
                        let r = server.stop_all();
                        let _ = send(write, &r).await;
                    }
                    // One turn at a time per connection.
                    _ => busy += 1,
                },
                // The client went away: stop generating for it.
                _ => {
                    gone = true;
                    cancel.store(true, Ordering::SeqCst);
                }
            },
        }
    };
    if gone {
        return Ok(None);
    }
    while let Ok(ev) = rx.try_recv() {
        send(write, &Event::from(ev)).await?;
    }
    for _ in 0..busy {
        let msg = "busy: one turn at a time per connection";
        send(write, &Event::error(msg)).await?;
    }
    Ok(Some(outcome))
}

/// Whether process `pid` shares the daemon's PID and user
/// namespaces (the sandbox gives its processes new ones).
fn same_namespaces(pid: Option<i32>) -> Result<(), String> {
    let pid = pid.ok_or("the peer's process is unknown")?;
    for ns in ["pid", "user"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .map_err(|e| format!("cannot read our {ns} namespace: {e}"))?;
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| format!("cannot read the peer's {ns} namespace: {e}"))?;
        if mine != theirs {
            return Err(format!("the peer is in another {ns} namespace"));
        }
    }
    Ok(())
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

    /// The daemon's next event.
    pub async fn next(&mut self) -> anyhow::Result<Event> {
        self.read().await
    }

    pub async fn status(&mut self) -> anyhow::Result<Status> {
        self.request(&Request::Status).await?;
        self.read().await
    }

    async fn read<T: serde::de::DeserializeOwned>(&mut self) -> anyhow::Result<T> {
        let line = self
            .lines
            .next_line()
            .await?
            .context("the daemon closed the connection")?;
        serde_json::from_str(&line)
            .with_context(|| format!("the daemon said something unexpected: {line}"))
    }
}
