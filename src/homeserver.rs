//! The homeserver: Synapse, configured for the box, started and supervised
//! by `hermit up` when `homeserver.managed = true`, and the accounts Hermit
//! creates on it through shared-secret registration.
//!
//! Hermit owns Synapse's configuration: it is written from `hermit.toml`
//! into `<data_dir>/synapse/homeserver.yaml` on every start (edit
//! `hermit.toml`, not the generated file). JSON is valid YAML, so the file is
//! written with serde_json and needs no quoting rules of its own. What it
//! sets: the server name; one client listener on `homeserver.bind` (loopback
//! by default; TLS required elsewhere, checked by the config); federation off
//! (no federation listener, an empty federation allow-list, no trusted key
//! servers); registration off (accounts only through the shared secret);
//! SQLite; an upload limit; no stats, metrics, presence or URL previews.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};

use crate::config::Config;
use crate::secrets::{Secrets, names};

/// Synapse's files in the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("synapse"),
        }
    }
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("homeserver.yaml")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("homeserver.log")
    }
    pub(crate) fn signing_key(&self) -> PathBuf {
        self.dir.join("signing.key")
    }
}

/// The Python of Synapse's virtual environment, checked.
pub fn synapse_python(config: &Config) -> anyhow::Result<PathBuf> {
    let venv = config.homeserver.venv();
    let python = venv.join("bin/python");
    if !python.exists() || !venv.join("bin/synapse_homeserver").exists() {
        bail!(
            "Synapse is not installed in {} (run scripts/setup, or set homeserver.synapse_venv / \
             $HERMIT_SYNAPSE to a virtual environment with matrix-synapse; or set \
             homeserver.managed = false and homeserver.url to use a homeserver Hermit does not run)",
            venv.display()
        );
    }
    Ok(python)
}

/// Writes Synapse's configuration (and its signing key, the first time).
pub fn write_config(config: &Config, secrets: &Secrets) -> anyhow::Result<Layout> {
    let layout = Layout::new(&config.data_dir());
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&layout.dir)
            .with_context(|| format!("cannot create {}", layout.dir.display()))?;
    }
    let h = &config.homeserver;
    let (macaroon, _) = secrets.get_or_create(names::MACAROON)?;
    let (form, _) = secrets.get_or_create(names::FORM)?;
    secrets.get_or_create(names::REGISTRATION)?;
    let tls = h.tls_certificate.is_some();
    let d = |p: &str| layout.dir.join(p).display().to_string();
    let mut yaml = serde_json::json!({
        "server_name": h.server_name,
        "public_baseurl": format!("{}/", h.client_url()),
        "listeners": [{
            "port": h.port,
            "bind_addresses": [h.bind],
            "type": "http",
            "tls": tls,
            "x_forwarded": false,
            "resources": [{"names": ["client"], "compress": false}],
        }],
        "database": {"name": "sqlite3", "args": {"database": d("homeserver.db")}},
        "log_config": d("log.config"),
        "media_store_path": d("media_store"),
        "signing_key_path": layout.signing_key().display().to_string(),
        "max_upload_size": format!("{}M", h.max_upload_mb),
        "registration_shared_secret_path": secrets.path(names::REGISTRATION).display().to_string(),
        "macaroon_secret_key": macaroon.expose(),
        "form_secret": form.expose(),
        "enable_registration": false,
        "report_stats": false,
        "enable_metrics": false,
        "trusted_key_servers": [],
        "suppress_key_server_warning": true,
        "federation_domain_whitelist": [],
        "allow_public_rooms_over_federation": false,
        "allow_public_rooms_without_auth": false,
        "url_preview_enabled": false,
        "presence": {"enabled": false},
        "user_directory": {"enabled": false},
        // The bot edits its reply about once a second while streaming;
        // Synapse's default (0.2 messages/s) would throttle it.
        "rc_message": {"per_second": 10, "burst_count": 50},
        "rc_login": {
            "address": {"per_second": 1, "burst_count": 20},
            "account": {"per_second": 1, "burst_count": 20},
            "failed_attempts": {"per_second": 0.2, "burst_count": 5},
        },
    });
    if let (Some(cert), Some(key)) = (&h.tls_certificate, &h.tls_private_key) {
        yaml["tls_certificate_path"] = crate::config::expand_home(cert)
            .display()
            .to_string()
            .into();
        yaml["tls_private_key_path"] = crate::config::expand_home(key).display().to_string().into();
    }
    let log_config = serde_json::json!({
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {
            "class": "logging.handlers.RotatingFileHandler",
            "formatter": "precise",
            "filename": layout.log().display().to_string(),
            "maxBytes": 10 * 1024 * 1024,
            "backupCount": 3,
            "encoding": "utf8",
        }},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": false,
    });
    let header =
        "# Written by Hermit from hermit.toml on every start: edit hermit.toml, not this file.\n";
    write_private(
        &layout.config(),
        &format!("{header}{}\n", serde_json::to_string_pretty(&yaml)?),
    )?;
    write_private(
        &layout.dir.join("log.config"),
        &format!("{header}{}\n", serde_json::to_string_pretty(&log_config)?),
    )?;
    if !layout.signing_key().exists() {
        let python = synapse_python(config)?;
        let out = Command::new(&python)
            .args(["-m", "synapse._scripts.generate_signing_key", "-o"])
            .arg(layout.signing_key())
            .output()
            .with_context(|| format!("cannot run {}", python.display()))?;
        if !out.status.success() {
            bail!(
                "Synapse could not generate its signing key: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(layout)
}

/// Writes a file only its owner can read, atomically.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::secrets::write_private(path, text)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Whether a homeserver answers at `url` (its `/health` endpoint).
pub fn answers(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    agent
        .get(format!("{url}/health"))
        .call()
        .is_ok_and(|r| r.status() == 200)
}

/// A running Synapse, restarted when it crashes (up to
/// `homeserver.max_restarts` times), stopped when this is dropped.
pub struct Supervisor {
    pid: Arc<AtomicI32>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Receives a message if Synapse could not be kept running.
    pub failed: tokio::sync::watch::Receiver<Option<String>>,
}

impl Supervisor {
    /// Starts Synapse and waits until it answers.
    pub fn start(config: &Config, layout: &Layout) -> anyhow::Result<Self> {
        let url = config.homeserver.client_url();
        if answers(&url) {
            bail!(
                "something already answers at {url}: another Hermit or Synapse is running. Stop it, \
                 or change homeserver.port"
            );
        }
        let python = synapse_python(config)?;
        let pid = Arc::new(AtomicI32::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (failed_tx, failed) = tokio::sync::watch::channel(None);
        let h = config.homeserver.clone();
        let layout = layout.clone();
        let (pid2, stopping2) = (pid.clone(), stopping.clone());
        // One thread spawns every instance and waits for it: the child's
        // parent-death signal is tied to the thread that forked it, so that
        // thread must live as long as the child.
        let thread = std::thread::Builder::new()
            .name("synapse".into())
            .spawn(move || {
                let mut restarts = 0u32;
                let mut ready_tx = Some(ready_tx);
                loop {
                    if stopping2.load(Ordering::SeqCst) {
                        return;
                    }
                    let started = Instant::now();
                    let mut child = match spawn(&python, &layout) {
                        Ok(c) => c,
                        Err(e) => {
                            let msg = format!("cannot start Synapse: {e:#}");
                            match ready_tx.take() {
                                Some(tx) => drop(tx.send(Err(msg))),
                                None => drop(failed_tx.send(Some(msg))),
                            }
                            return;
                        }
                    };
                    pid2.store(child.id() as i32, Ordering::SeqCst);
                    // A stop that came while this one was starting.
                    if stopping2.load(Ordering::SeqCst) {
                        let _ = child.kill();
                        let _ = child.wait();
                        pid2.store(0, Ordering::SeqCst);
                        return;
                    }
                    if let Some(tx) = ready_tx.take() {
                        let r = wait_ready(&mut child, &url, &layout, h.start_timeout_seconds);
                        let ok = r.is_ok();
                        let _ = tx.send(r);
                        if !ok {
                            let _ = child.kill();
                            let _ = child.wait();
                            return;
                        }
                    } else if wait_ready(&mut child, &url, &layout, h.start_timeout_seconds).is_ok()
                    {
                        tracing::info!("Synapse is back");
                    }
                    let status = child.wait();
                    pid2.store(0, Ordering::SeqCst);
                    if stopping2.load(Ordering::SeqCst) {
                        return;
                    }
                    // A run that lasted a while earns its restarts back.
                    if started.elapsed() > Duration::from_secs(600) {
                        restarts = 0;
                    }
                    restarts += 1;
                    tracing::error!(
                        ?status,
                        restart = restarts,
                        max = h.max_restarts,
                        log = %layout.log().display(),
                        "Synapse stopped unexpectedly"
                    );
                    if restarts > h.max_restarts {
                        let _ = failed_tx.send(Some(format!(
                            "Synapse crashed {} times; giving up (see {})",
                            restarts,
                            layout.log().display()
                        )));
                        return;
                    }
                    // Back off, but notice a stop at once.
                    let until = Instant::now() + Duration::from_secs(u64::from(restarts.min(5)));
                    while Instant::now() < until && !stopping2.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .context("cannot start the Synapse supervisor thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                pid,
                stopping,
                thread: Some(thread),
                failed,
            }),
            Ok(Err(msg)) => {
                let _ = thread.join();
                bail!("{msg}")
            }
            Err(_) => bail!("the Synapse supervisor stopped before Synapse was ready"),
        }
    }

    /// Stops Synapse: SIGTERM, then SIGKILL after 10 seconds; returns once
    /// the supervising thread has ended (it starts nothing after a stop).
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut termed = 0;
        while !thread.is_finished() {
            let pid = self.pid.load(Ordering::SeqCst);
            if pid > 0 {
                let signal = if Instant::now() < deadline {
                    libc::SIGTERM
                } else {
                    libc::SIGKILL
                };
                if signal == libc::SIGKILL || termed != pid {
                    // SAFETY: signalling our own child, whose pid the
                    // supervisor clears once it has reaped it.
                    unsafe { libc::kill(pid, signal) };
                    termed = pid;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = thread.join();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(python: &Path, layout: &Layout) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.dir.join("stderr.log"))?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "synapse.app.homeserver", "-c"])
        .arg(layout.config())
        .current_dir(&layout.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("HERMIT_CONFIG");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Synapse ends with Hermit, even when Hermit is killed.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    Ok(cmd.spawn()?)
}

fn wait_ready(child: &mut Child, url: &str, layout: &Layout, timeout: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "Synapse exited during start-up ({status}):\n{}",
                log_tail(layout)
            ));
        }
        if answers(url) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "Synapse did not answer at {url} within {timeout} s:\n{}",
                log_tail(layout)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn log_tail(layout: &Layout) -> String {
    let mut text = String::new();
    for f in [layout.dir.join("stderr.log"), layout.log()] {
        let mut s = String::new();
        if let Ok(mut file) = std::fs::File::open(&f) {
            let _ = file.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        let start = lines.len().saturating_sub(15);
        if start < lines.len() {
            text.push_str(&format!("--- {} ---\n", f.display()));
            text.push_str(&lines[start..].join("\n"));
            text.push('\n');
        }
    }
    text
}

/// The outcome of registering an account.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    Created,
    AlreadyExists,
}

/// Creates an account through Synapse's shared-secret registration
/// (`/_synapse/admin/v1/register`): a nonce, then the account with an
/// HMAC-SHA1 of nonce, name, password and admin flag under the secret.
pub fn register(
    url: &str,
    shared_secret: &str,
    localpart: &str,
    password: &str,
    admin: bool,
) -> anyhow::Result<Registered> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let endpoint = format!("{url}/_synapse/admin/v1/register");
    let mut resp = agent
        .get(&endpoint)
        .call()
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let body: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string()?)?;
    let nonce = body["nonce"]
        .as_str()
        .with_context(|| format!("no registration nonce from {endpoint}: {body}"))?;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(shared_secret.as_bytes())?;
    for (i, part) in [
        nonce,
        localpart,
        password,
        if admin { "admin" } else { "notadmin" },
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    let digest = crate::models::hex(&mac.finalize().into_bytes());
    let request = serde_json::json!({
        "nonce": nonce, "username": localpart, "password": password,
        "admin": admin, "mac": digest,
    });
    let mut resp = agent
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .send(request.to_string())?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if status == 200 {
        return Ok(Registered::Created);
    }
    if body["errcode"] == "M_USER_IN_USE" {
        return Ok(Registered::AlreadyExists);
    }
    bail!(
        "Synapse refused to register {localpart}: {} {}",
        status,
        body["error"].as_str().unwrap_or("")
    )
}

/// What [`ensure_accounts`] found or did.
#[derive(Debug)]
pub struct Accounts {
    pub bot_id: String,
    pub owner_id: String,
    /// The owner's account lives on this homeserver (and its password in
    /// the secrets directory).
    pub owner_local: bool,
    /// Accounts created by this call (empty when everything existed).
    pub created: Vec<String>,
}

/// Creates the bot's and (when it is local) the owner's account if they do
/// not exist yet, with passwords generated into the secrets directory.
/// Running it again changes nothing.
pub fn ensure_accounts(config: &Config, secrets: &Secrets) -> anyhow::Result<Accounts> {
    let url = config.homeserver.client_url();
    let shared = secrets.get(names::REGISTRATION)?.context(
        "no Synapse registration secret in the secrets directory: Hermit did not write this \
         homeserver's configuration, so it cannot create accounts on it",
    )?;
    let owner_id = config.owner_id();
    let owner_local = owner_id.ends_with(&format!(":{}", config.homeserver.server_name));
    let mut wanted = vec![(config.matrix.bot.clone(), names::BOT_PASSWORD)];
    if owner_local {
        let local = owner_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        wanted.push((local, names::OWNER_PASSWORD));
    }
    let mut created = Vec::new();
    for (localpart, secret) in wanted {
        let (password, new_password) = secrets.get_or_create(secret)?;
        match register(&url, shared.expose(), &localpart, password.expose(), false)? {
            Registered::Created => {
                created.push(format!("@{localpart}:{}", config.homeserver.server_name))
            }
            Registered::AlreadyExists if new_password => {
                // Not this account's password: do not keep it.
                let _ = std::fs::remove_file(secrets.path(secret));
                bail!(
                    "the account @{localpart}:{} already exists but its password is not in {}: \
                 restore that file, or remove the account from Synapse",
                    config.homeserver.server_name,
                    secrets.path(secret).display()
                )
            }
            Registered::AlreadyExists => {}
        }
    }
    Ok(Accounts {
        bot_id: config.bot_id(),
        owner_id,
        owner_local,
        created,
    })
}
