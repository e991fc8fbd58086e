//! The command line's grammar: every command, subcommand and option, with
//! the help text `hermit --help` shows (clap's derive). `src/main.rs` parses
//! it and hands each command to its module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hermit", about = "A private AI agent that lives in a box.")]
pub struct Cli {
    /// Configuration file (default: $HERMIT_CONFIG, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Chat with the local model in the terminal.
    Chat {
        /// A model name from `hermit models list`, or a path to a .gguf file.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Replace the configured system prompt.
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
    },
    /// Create the homeserver's configuration, the secrets and the Matrix
    /// accounts (the bot's and the owner's); print how to connect. Running
    /// it again changes nothing. `hermit up` does this on its first run.
    Init,
    /// Run Hermit: the homeserver (when managed), the Matrix bot and the
    /// control socket, until Ctrl-C or SIGTERM.
    Up {
        /// `text` (readable) or `json` (one object per line), on stderr.
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Ask the running daemon (`hermit up`) how it is.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// List, fetch and verify models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Transcribe an audio file (Ogg/Opus, WAV, FLAC, MP3, M4A) with the
    /// speech worker, as voice notes are.
    Transcribe {
        file: PathBuf,
        /// One JSON object: the text, the detected language, the segments
        /// with their timestamps.
        #[arg(long)]
        json: bool,
    },
    /// Check the build, this machine, the sandbox, the configuration and the model.
    Doctor {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The tools Hermit can use.
    Tools {
        #[command(subcommand)]
        command: ToolsCommand,
    },
    /// The workspace's trash: files deleted by the `files` tool.
    Files {
        #[command(subcommand)]
        command: FilesCommand,
    },
    /// Approval requests: actions that wait for the owner.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Halt every running turn and tool process now, and hold every new
    /// action until `hermit resume` (or `!resume` in Matrix).
    StopAll,
    /// Carry on after a stop.
    Resume,
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// What Hermit remembers: search it, forget, export, rebuild the index.
    Memory {
        #[command(subcommand)]
        command: MemoryCommand,
    },
    /// Reminders and schedules (delivered by `hermit up` over Matrix).
    Reminders {
        #[command(subcommand)]
        command: RemindersCommand,
    },
    /// The secrets store (values are read from stdin, never printed).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Internal: the sandbox launcher (started by Hermit, not by people).
    // `main` dispatches `hermit sandbox-exec` (its request in the
    // environment) before clap; the variant stays for other shapes.
    #[command(hide = true)]
    SandboxExec,
    /// Print the annotated example configuration.
    ConfigExample,
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Show every known model and whether it is present and verified.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Fetch a model from its upstream URL (or a local file) and verify it.
    Pull {
        name: String,
        /// Install from this local file instead of downloading.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
    /// Re-hash every present model against models.toml.
    Verify,
    /// Evaluate the prompt prefixes a first message meets (the system
    /// prompt with each intent's tools) into the prompt cache, so a new
    /// process answers its first message without evaluating them
    /// (`hermit up` does this by itself at start).
    Warm {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ToolsCommand {
    /// Every tool with its arguments' schema and its effects.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one tool call as the owner, through the same decision point and
    /// sandbox as the agent's calls.
    Run {
        name: String,
        /// The call's arguments, as JSON.
        #[arg(long, value_name = "JSON", default_value = "{}")]
        args: String,
    },
}

#[derive(Subcommand)]
pub enum MemoryCommand {
    /// Search memory (full text and meaning, fused) for a principal.
    Search {
        query: String,
        /// Whose memory: "owner" (default) or a member's Matrix ID.
        #[arg(long, default_value = "owner")]
        principal: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Full text only (no embeddings).
        #[arg(long)]
        text_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Keep a fact, as the `remember` tool does.
    Remember {
        fact: String,
        #[arg(long, default_value = "owner")]
        principal: String,
        /// Keep it in mind in every conversation.
        #[arg(long)]
        pin: bool,
    },
    /// Forget memories for good: by id (fact:12, message:345), or every
    /// match of --query (listed first; confirmed unless --yes).
    Forget {
        ids: Vec<String>,
        #[arg(long)]
        query: Option<String>,
        #[arg(long, default_value = "owner")]
        principal: String,
        #[arg(long)]
        yes: bool,
    },
    /// Everything held about a principal, as JSON lines on stdout.
    Export {
        #[arg(long)]
        principal: String,
    },
    /// Rebuild the full-text index from hermit.db (and embed what has no
    /// vector yet).
    Reindex,
    /// What memory holds, and the index's state.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RemindersCommand {
    /// Active reminders, soonest first (every one with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Add one: --at "tomorrow at 9" or "2026-11-28 18:00" (local time, agent.timezone) or
    /// --every "0 8 * * MON-FRI" (cron: minute hour day month weekday).
    Add {
        text: String,
        #[arg(long, conflicts_with = "every")]
        at: Option<String>,
        #[arg(long)]
        every: Option<String>,
        /// Whose: "owner" (default) or a member's Matrix ID.
        #[arg(long, default_value = "owner")]
        principal: String,
    },
    /// Cancel one by its id.
    Cancel { id: i64 },
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Pending requests (every request with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request: its call runs once, exactly as shown.
    Approve { code: String },
    /// Deny a request.
    Deny { code: String },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; non-zero exit and the place of the first
    /// modification, deletion or reordering if there is one.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// The latest entries.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        /// Keep printing new entries.
        #[arg(short, long)]
        follow: bool,
    },
    /// Every entry as JSON lines on stdout.
    Export {
        /// One JSON object per line (the only format).
        #[arg(long, required = true)]
        jsonl: bool,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// The names of the stored secrets.
    List,
    /// Store a secret (an integration's API token), read from stdin.
    Set { name: String },
}

#[derive(Subcommand)]
pub enum FilesCommand {
    /// List what is in the trash.
    Trash,
    /// Put a deleted file back where it was.
    Restore { id: String },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The assistant on a task suite of everyday requests (English and
    /// French): success per category, needless approvals, latency.
    Agent {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Another suite (TOML, the format of the built-in one).
        #[arg(long, value_name = "FILE")]
        suite: Option<PathBuf>,
        /// Only the cases whose id or category matches this regex.
        #[arg(long, value_name = "REGEX")]
        only: Option<String>,
    },
    /// Prompt processing and generation speed, and time to first token.
    Llm {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Repetitions of the pp/tg measurement (averaged).
        #[arg(long, default_value_t = 3)]
        reps: u32,
    },
    /// Time from the owner's message to the streamed reply over Matrix,
    /// next to the model's own time, against the running `hermit up`.
    Matrix {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Lateness of reminders due at the same minute, as the owner's client
    /// receives them, against the running `hermit up`.
    Reminders {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
    /// A voice note's way through a running `hermit up`: sent by the
    /// owner's client into an encrypted direct chat, from its arrival to
    /// the transcript, against the speech worker alone on the same clip
    /// (scripts/bench-voice does it all).
    Voice {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The clip to send (Ogg/Opus, as phones send voice notes).
        #[arg(long)]
        file: PathBuf,
    },
    /// Start-up cost of a sandboxed `true` against a plain fork+exec.
    Sandbox {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
    /// Memory at scale: ingest rate, search latency, size on disk, recall@5
    /// (in a scratch directory, removed afterwards).
    Memory {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        /// Scratch directory (default: a new one under $TMPDIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
