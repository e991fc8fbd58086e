//! The daemon's commands: `hermit init` (the homeserver's configuration,
//! the secrets and the Matrix accounts), `hermit up` (the daemon's whole
//! life: Synapse when managed, the trust layer, the agent, the Matrix bot,
//! the control socket and the reminders, until Ctrl-C or SIGTERM) and
//! `hermit status` (asks the running daemon).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hermit::channels::matrix::{Bot, BotSettings};
use hermit::config::Config;
use hermit::homeserver::{Accounts, Supervisor};
use hermit::secrets::Secrets;
use hermit::trust::Trust;

use super::{Global, build_agent, ensure_data_dir, runtime, start_engine};

/// `hermit status`: asks the running daemon.
pub fn status(global: &Global, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let rt = runtime()?;
    let data = config.data_dir();
    let Some(mut client) = rt.block_on(hermit::control::connect(&data)) else {
        if json {
            println!("{}", serde_json::json!({"running": false}));
        } else {
            println!(
                "Hermit is not running (no daemon answers at {}). Start it with `hermit up`.",
                data.join(hermit::control::SOCKET).display()
            );
        }
        return Ok(false);
    };
    let s = rt.block_on(client.status())?;
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["running"] = true.into();
        println!("{v}");
    } else {
        let up = s.uptime_seconds;
        println!("Hermit is running.");
        println!("  model:      {} ({} threads)", s.model, s.threads);
        println!(
            "  up:         {}h {:02}m {:02}s",
            up / 3600,
            up / 60 % 60,
            up % 60
        );
        println!("  queue:      {} waiting", s.queue);
        println!("  model calls: {} since start", s.model_calls);
        println!("  homeserver: {}", s.homeserver);
        println!(
            "  bot:        {} (device {})",
            s.bot,
            s.device.as_deref().unwrap_or("?")
        );
    }
    Ok(true)
}

/// Prints how to connect, after accounts were created.
fn print_connect(config: &Config, secrets: &Secrets, accounts: &Accounts) {
    let url = config.homeserver.client_url();
    println!("Hermit's Matrix accounts are ready.");
    println!();
    println!("  Homeserver:  {url}");
    println!("  Bot:         {}", accounts.bot_id);
    if accounts.owner_local {
        println!("  You:         {}", accounts.owner_id);
        println!(
            "  Password:    in {} (readable only by this user; change it from your client after logging in)",
            secrets
                .path(hermit::secrets::names::OWNER_PASSWORD)
                .display()
        );
    } else {
        println!("  You:         {} (your own account)", accounts.owner_id);
    }
    println!();
    println!(
        "Log in with Element (or any Matrix client) on {url}, start a direct chat with {} and turn on encryption.",
        accounts.bot_id
    );
}

/// `hermit init`: the homeserver's configuration, secrets and accounts.
pub fn init(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    ensure_data_dir(&config)?;
    let secrets = Secrets::open(&config.data_dir())?;
    let url = config.homeserver.client_url();
    let mut started = None;
    if config.homeserver.managed {
        let layout = hermit::homeserver::write_config(&config, &secrets)?;
        if !hermit::homeserver::answers(&url) {
            eprintln!("starting Synapse to create the accounts…");
            started = Some(Supervisor::start(&config, &layout)?);
        }
    } else if !hermit::homeserver::answers(&url) {
        anyhow::bail!("no homeserver answers at {url} (homeserver.url)");
    }
    let accounts = hermit::homeserver::ensure_accounts(&config, &secrets);
    drop(started);
    let accounts = accounts?;
    if accounts.created.is_empty() {
        println!(
            "Already set up: {} on {url}; the owner is {}. Nothing changed.",
            accounts.bot_id, accounts.owner_id
        );
    } else {
        print_connect(&config, &secrets, &accounts);
    }
    Ok(())
}

/// `hermit up`: the homeserver (when managed), the Matrix bot and the
/// control socket, until Ctrl-C or SIGTERM.
pub fn up(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let lock = lock_data_dir(&data)?;
    let secrets = Secrets::open(&data)?;
    let rt = runtime()?;
    rt.block_on(serve(config, data, secrets))?;
    drop(lock);
    Ok(())
}

/// One daemon per data directory: two would share the Matrix stores. The
/// lock holds until the file returned is closed (or the process ends).
fn lock_data_dir(data: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let lock = std::fs::File::create(data.join("hermit.lock"))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "another `hermit up` is running with the data directory {}",
            data.display()
        );
    }
    Ok(lock)
}

/// The daemon, started and run until it is told to stop or Synapse fails;
/// then stopped in order.
async fn serve(config: Config, data: PathBuf, secrets: Secrets) -> anyhow::Result<()> {
    let url = config.homeserver.client_url();
    let mut supervisor = None;
    if config.homeserver.managed {
        let layout = hermit::homeserver::write_config(&config, &secrets)?;
        tracing::info!(%url, "starting Synapse");
        let c = config.clone();
        supervisor =
            Some(tokio::task::spawn_blocking(move || Supervisor::start(&c, &layout)).await??);
        tracing::info!(%url, "Synapse is up");
    }
    let accounts = accounts(&config, &secrets).await?;
    if !accounts.created.is_empty() {
        print_connect(&config, &secrets, &accounts);
    }
    let trust = open_trust(&config)?;
    let c = config.clone();
    let engine = tokio::task::spawn_blocking(move || start_engine(&c)).await??;
    let agent = Arc::new(build_agent(&config, engine, trust.clone())?);
    let settings = BotSettings::from_config(&config);
    let bot = Bot::connect(settings, &secrets, agent.clone(), trust.clone()).await?;
    if config.voice.enabled {
        match hermit::voice::VoiceSettings::from_config(&config) {
            Ok(v) => bot.set_voice(Arc::new(hermit::voice::Voice::new(v))),
            Err(e) => tracing::warn!(error = %e, "voice messages are off"),
        }
    }
    let control = hermit::control::Server::bind(
        &data,
        agent.clone(),
        trust.clone(),
        bot.system_prompt().to_string(),
        hermit::control::Identity {
            homeserver: url.clone(),
            bot: accounts.bot_id.clone(),
            device: bot.device_id(),
        },
    )?;
    tracing::info!(
        bot = %accounts.bot_id,
        owner = %accounts.owner_id,
        device = ?bot.device_id(),
        socket = %control.path().display(),
        "Hermit is up"
    );
    let control_task = tokio::spawn(control.serve());
    if config.inference.prompt_cache && config.inference.warm_prompt_cache {
        // In the background: a message that comes meanwhile waits for at
        // most one of these (each is one short generation).
        let (agent, prompt) = (agent.clone(), bot.system_prompt().to_string());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match agent.warm(&prompt).await {
                Ok(sets) => {
                    let evaluated: usize = sets.iter().map(|(_, n)| n).sum();
                    tracing::info!(
                        prefixes = sets.len(),
                        evaluated_tokens = evaluated,
                        seconds = started.elapsed().as_secs_f64(),
                        "prompt cache warm"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "could not warm the prompt cache"),
            }
        });
    }
    let reminders = Arc::new(hermit::reminders::Reminders::open(&data)?);
    let scheduler = hermit::proactive::Scheduler::new(
        hermit::proactive::Settings::from_config(&config),
        agent.clone(),
        trust.clone(),
        reminders,
        bot.clone(),
    );
    let reminders_task = tokio::spawn(scheduler.run());
    let mut failed = supervisor.as_ref().map(|s: &Supervisor| s.failed.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = tokio::select! {
        r = bot.clone().run() => r,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping (Ctrl-C)"); Ok(()) }
        _ = term.recv() => { tracing::info!("stopping (SIGTERM)"); Ok(()) }
        msg = async {
            match failed.as_mut() {
                Some(rx) => { let _ = rx.wait_for(|m| m.is_some()).await; rx.borrow().clone() }
                None => std::future::pending().await,
            }
        } => Err(anyhow::anyhow!(msg.unwrap_or_default())),
    };
    control_task.abort();
    reminders_task.abort();
    let _ = std::fs::remove_file(data.join(hermit::control::SOCKET));
    if let Some(mut s) = supervisor {
        tokio::task::spawn_blocking(move || s.stop()).await?;
    }
    result
}

/// The bot's and the owner's accounts, created on the first run.
async fn accounts(config: &Config, secrets: &Secrets) -> anyhow::Result<Accounts> {
    let (c, s) = (config.clone(), secrets.clone());
    let accounts =
        tokio::task::spawn_blocking(move || hermit::homeserver::ensure_accounts(&c, &s)).await?;
    match accounts {
        Ok(a) => Ok(a),
        // With a homeserver Hermit does not run, the accounts may have
        // been made by hand: go on if the bot has a password.
        Err(e)
            if !config.homeserver.managed
                && secrets.get(hermit::secrets::names::BOT_PASSWORD)?.is_some() =>
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot create accounts; using the existing bot password");
            Ok(Accounts {
                bot_id: config.bot_id(),
                owner_id: config.owner_id(),
                owner_local: false,
                created: Vec::new(),
            })
        }
        Err(e) => Err(e),
    }
}

/// The trust layer, once every secret exists (the redaction filter learns
/// their values): the last run's approval requests expired, the start and
/// the configuration in the audit log.
fn open_trust(config: &Config) -> anyhow::Result<Arc<Trust>> {
    let trust = Arc::new(Trust::open(config)?);
    let stale = trust.approvals.expire_all_pending();
    if stale > 0 {
        tracing::info!(count = stale, "approval requests of the last run expired");
    }
    trust.record_config(config);
    trust.audit.record(
        hermit::vocab::AuditKind::Start,
        "hermit",
        serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
    );
    if let Some(by) = trust.halt.halted_by() {
        tracing::warn!(%by, "Hermit is stopped: nothing runs until the owner sends !resume");
    }
    Ok(trust)
}
