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
    /// Check the build, this machine, the configuration and the model.
    Doctor,
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
}

fn main() -> ExitCode {
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
    app::init_logging();
    let mut global = Global {
        config: cli.config,
        model: None,
    };
    let result = match cli.command {
        Command::Chat { model, system } => {
            global.model = model;
            app::chat(&global, system).map(|()| true)
        }
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
        Command::Doctor => app::doctor(&global),
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
