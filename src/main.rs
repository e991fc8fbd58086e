//! The `hermit` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use hermit::app::{self, Global};

#[derive(Parser)]
#[command(name = "hermit", about = "A private AI agent that lives in a box.")]
struct Cli {
    /// Configuration file (default: $HERMIT_CONFIG, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    #[command(hide = true)]
    SandboxExec {
        policy: String,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Print the annotated example configuration.
    ConfigExample,
}

#[derive(Subcommand)]
enum ModelsCommand {
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
}

#[derive(Subcommand)]
enum ToolsCommand {
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
enum MemoryCommand {
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
enum RemindersCommand {
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
enum ApprovalsCommand {
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
enum AuditCommand {
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
enum SecretsCommand {
    /// The names of the stored secrets.
    List,
    /// Store a secret (an integration's API token), read from stdin.
    Set { name: String },
}

#[derive(Subcommand)]
enum FilesCommand {
    /// List what is in the trash.
    Trash,
    /// Put a deleted file back where it was.
    Restore { id: String },
}

#[derive(Subcommand)]
enum BenchCommand {
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

fn main() -> ExitCode {
    // `hermit tools list | head` should end quietly, not panic on EPIPE.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let version: &'static str = Box::leak(
        format!(
            "{}\nbuilt for {}",
            env!("CARGO_PKG_VERSION"),
            hermit::inference::build_target()
        )
        .into_boxed_str(),
    );
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Command::SandboxExec { policy, argv } = &cli.command {
        hermit::sandbox::launcher::main(policy, argv);
    }
    match &cli.command {
        Command::Up { log_format } => app::init_daemon_logging(log_format == "json"),
        _ => app::init_logging(),
    }
    let mut global = Global {
        config: cli.config,
        model: None,
    };
    let result = match cli.command {
        Command::Chat { model, system } => {
            global.model = model;
            app::chat(&global, system).map(|()| true)
        }
        Command::Init => app::init(&global).map(|()| true),
        Command::Up { .. } => app::up(&global).map(|()| true),
        Command::Status { json } => app::status(&global, json),
        Command::Models { command } => match command {
            ModelsCommand::List { json } => app::models_list(&global, json).map(|()| true),
            ModelsCommand::Pull { name, from } => {
                app::models_pull(&global, &name, from.as_deref()).map(|()| true)
            }
            ModelsCommand::Verify => app::models_verify(&global),
        },
        Command::Bench {
            command: BenchCommand::Llm { json, model, reps },
        } => {
            global.model = model;
            app::bench_llm(&global, json, reps).map(|()| true)
        }
        Command::Bench {
            command: BenchCommand::Matrix { json, runs },
        } => app::bench_matrix(&global, json, runs).map(|()| true),
        Command::Bench {
            command: BenchCommand::Reminders { json, count },
        } => app::bench_reminders(&global, json, count).map(|()| true),
        Command::Bench {
            command: BenchCommand::Voice { json, runs, file },
        } => app::bench_voice(&global, json, runs, &file).map(|()| true),
        Command::Bench {
            command: BenchCommand::Sandbox { json, runs },
        } => app::bench_sandbox(&global, json, runs).map(|()| true),
        Command::Bench {
            command:
                BenchCommand::Memory {
                    json,
                    messages,
                    dir,
                },
        } => app::bench_memory(&global, json, messages, dir.as_deref()).map(|()| true),
        Command::Doctor { json } => app::doctor(&global, json),
        Command::Transcribe { file, json } => app::transcribe(&global, &file, json),
        Command::Tools { command } => match command {
            ToolsCommand::List { json } => app::tools_list(&global, json).map(|()| true),
            ToolsCommand::Run { name, args } => app::tools_run(&global, &name, &args),
        },
        Command::Files { command } => match command {
            FilesCommand::Trash => app::files_trash(&global).map(|()| true),
            FilesCommand::Restore { id } => app::files_restore(&global, &id).map(|()| true),
        },
        Command::Approvals { command } => match command {
            ApprovalsCommand::List { all, json } => {
                app::approvals_list(&global, all, json).map(|()| true)
            }
            ApprovalsCommand::Approve { code } => {
                app::approvals_decide(&global, &code, true).map(|()| true)
            }
            ApprovalsCommand::Deny { code } => {
                app::approvals_decide(&global, &code, false).map(|()| true)
            }
        },
        Command::StopAll => app::stop_all(&global).map(|()| true),
        Command::Resume => app::resume(&global).map(|()| true),
        Command::Audit { command } => match command {
            AuditCommand::Verify { json } => app::audit_verify(&global, json),
            AuditCommand::Tail { lines, follow } => {
                app::audit_tail(&global, lines, follow).map(|()| true)
            }
            AuditCommand::Export { .. } => app::audit_export(&global).map(|()| true),
        },
        Command::Memory { command } => match command {
            MemoryCommand::Search {
                query,
                principal,
                limit,
                text_only,
                json,
            } => app::memory_search(&global, &query, &principal, limit, text_only, json),
            MemoryCommand::Remember {
                fact,
                principal,
                pin,
            } => app::memory_remember(&global, &fact, &principal, pin).map(|()| true),
            MemoryCommand::Forget {
                ids,
                query,
                principal,
                yes,
            } => app::memory_forget(&global, &ids, query.as_deref(), &principal, yes),
            MemoryCommand::Export { principal } => {
                app::memory_export(&global, &principal).map(|()| true)
            }
            MemoryCommand::Reindex => app::memory_reindex(&global).map(|()| true),
            MemoryCommand::Status { json } => app::memory_status(&global, json).map(|()| true),
        },
        Command::Reminders { command } => match command {
            RemindersCommand::List { all, json } => {
                app::reminders_list(&global, all, json).map(|()| true)
            }
            RemindersCommand::Add {
                text,
                at,
                every,
                principal,
            } => app::reminders_add(&global, &text, at.as_deref(), every.as_deref(), &principal)
                .map(|()| true),
            RemindersCommand::Cancel { id } => app::reminders_cancel(&global, id),
        },
        Command::Secrets { command } => match command {
            SecretsCommand::List => app::secrets_list(&global).map(|()| true),
            SecretsCommand::Set { name } => app::secrets_set(&global, &name).map(|()| true),
        },
        Command::SandboxExec { .. } => unreachable!("handled above"),
        Command::ConfigExample => {
            print!("{}", hermit::config::EXAMPLE);
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => app::report(&e),
    }
}
