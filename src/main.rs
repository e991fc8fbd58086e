//! The `hermit` command line. The sandbox launcher is dispatched first,
//! before anything else starts; then the arguments are parsed (`cli/args.rs`)
//! and each command is handed to its module in `cli/`.

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use cli::Global;
use cli::args::{Cli, Command};

fn main() -> ExitCode {
    // `hermit tools list | head` should end quietly, not panic on EPIPE. The
    // sandbox launcher (and so what it executes) runs with it too.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A sandboxed process on its way: nothing else of Hermit (clap, logging,
    // a runtime) may start in the launcher.
    if is_sandbox_exec(std::env::args_os()) {
        hermit::sandbox::launcher::main();
    }
    // Run inside the sandbox by `hermit doctor` and the tests: what
    // privilege does a tool process hold?
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "sandbox-selfcheck")
    {
        let check = hermit::sandbox::launcher::selfcheck();
        println!("{}", serde_json::to_string(&check).unwrap_or_default());
        return ExitCode::SUCCESS;
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
    let parsed = match Cli::from_arg_matches(&matches) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    // Another shape clap accepts (`--config` before it): the launcher still.
    if let Command::SandboxExec = &parsed.command {
        hermit::sandbox::launcher::main();
    }
    match &parsed.command {
        Command::Up { log_format } => cli::init_daemon_logging(log_format == "json"),
        _ => cli::init_logging(),
    }
    let global = Global {
        config: parsed.config,
        model: None,
    };
    match run(parsed.command, global) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => cli::report(&e),
    }
}

/// Whether this is the launcher as `hermit::sandbox::Sandbox` starts it:
/// `hermit sandbox-exec`, its request in the environment.
fn is_sandbox_exec(args: impl IntoIterator<Item = OsString>) -> bool {
    let mut args = args.into_iter().skip(1);
    args.next().is_some_and(|a| a == "sandbox-exec") && args.next().is_none()
}

/// Runs a command: `Ok(false)` when it ran and found something wrong
/// (exit code 1), `Err` when it could not do its work.
fn run(command: Command, mut global: Global) -> anyhow::Result<bool> {
    use cli::{approvals, audit, bench, chat, daemon, doctor, memory, models};
    use cli::{reminders, secrets, tools, transcribe};
    let done = |r: anyhow::Result<()>| r.map(|()| true);
    match command {
        Command::Chat { model, system } => {
            global.model = model;
            done(chat::run(&global, system))
        }
        Command::Init => done(daemon::init(&global)),
        Command::Up { .. } => done(daemon::up(&global)),
        Command::Status { json } => daemon::status(&global, json),
        Command::Models { command } => models::run(&global, command),
        Command::Bench { command } => done(bench::run(&global, command)),
        Command::Transcribe { file, json } => transcribe::run(&global, &file, json),
        Command::Doctor { json } => doctor::run(&global, json),
        Command::Tools { command } => tools::run(&global, command),
        Command::Files { command } => done(tools::files(&global, command)),
        Command::Approvals { command } => done(approvals::run(&global, command)),
        Command::StopAll => done(approvals::stop_all(&global)),
        Command::Resume => done(approvals::resume(&global)),
        Command::Audit { command } => audit::run(&global, command),
        Command::Memory { command } => memory::run(&global, command),
        Command::Reminders { command } => reminders::run(&global, command),
        Command::Secrets { command } => done(secrets::run(&global, command)),
        Command::SandboxExec => unreachable!("the launcher never returns"),
        Command::ConfigExample => {
            print!("{}", hermit::config::EXAMPLE);
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_sandbox_exec;

    fn parse(args: &[&str]) -> bool {
        is_sandbox_exec(args.iter().map(Into::into))
    }

    #[test]
    fn the_launcher_is_recognised_by_the_shape_sandbox_rs_uses() {
        assert!(parse(&["hermit", "sandbox-exec"]));
        assert!(!parse(&["hermit", "sandbox-exec", "{}", "--", "true"]));
        assert!(!parse(&["hermit", "chat", "sandbox-exec"]));
        assert!(!parse(&["hermit"]));
    }
}
