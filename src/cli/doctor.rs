//! `hermit doctor`: a list of checks of the build, this machine, the
//! sandbox, the configuration, the trust layer and the models, each a small
//! function that returns its [`Check`]; a verdict per line, and a non-zero
//! exit on any critical finding.

use std::path::Path;

use hermit::config::{Config, ConfigError};
use hermit::models::Registry;

use super::{Global, ensure_data_dir, runtime};

mod sandbox;

/// One line of `hermit doctor`.
#[derive(Debug, serde::Serialize)]
struct Check {
    check: &'static str,
    /// "ok", "warn" or "fail"; any "fail" makes the exit code non-zero.
    verdict: &'static str,
    detail: String,
}

/// A check that passes ("ok") or is critical ("fail").
fn check(check: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        check,
        verdict: if ok { "ok" } else { "fail" },
        detail: detail.into(),
    }
}

/// A check that passes ("ok") or is worth a look ("warn").
fn advice(check: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        check,
        verdict: if ok { "ok" } else { "warn" },
        detail: detail.into(),
    }
}

/// The configuration as it loaded, or why it did not.
type Loaded = Result<Config, ConfigError>;

/// What the checks of a configuration that loaded look at.
struct Setup<'a> {
    config: &'a Config,
    /// The sandbox the tools would run in (the launcher: this binary).
    sandbox: hermit::sandbox::Sandbox,
}

/// The build, the machine and the configuration's validity, in the order
/// they are shown; they run whether the configuration loads or not.
const FIRST: &[fn(&Loaded) -> Option<Check>] = &[
    build,
    cpu,
    config,
    sandbox::landlock,
    sandbox::seccomp,
    sandbox::namespaces,
    sandbox::process_limit,
];

/// A configuration that loaded, after its data directory's check (the
/// directory is made then): in the order they are shown; `None` where a
/// check does not apply here (no database yet, Synapse not managed here).
const CONFIGURED: &[fn(&Setup<'_>) -> Option<Check>] = &[
    sandbox::probe,
    sandbox::privilege,
    listeners,
    homeserver,
    secrets,
    owner,
    audit_log,
    stop_switch,
    policy,
    network_for_tools,
    memory,
    model,
    model_fit,
    voice,
];

/// `hermit doctor [--json]`: false when a check is critical.
pub fn run(global: &Global, json: bool) -> anyhow::Result<bool> {
    let loaded = global.load_config();
    let mut checks: Vec<Check> = FIRST.iter().filter_map(|c| c(&loaded)).collect();
    if let Ok(config) = &loaded {
        checks.push(data_directory(&config.data_dir()));
        ensure_data_dir(config)?;
        let setup = Setup {
            config,
            sandbox: hermit::sandbox::Sandbox::current()?,
        };
        checks.extend(CONFIGURED.iter().filter_map(|c| c(&setup)));
    }
    Ok(print(&checks, json))
}

fn build(_: &Loaded) -> Option<Check> {
    Some(check(
        "build",
        true,
        format!(
            "hermit {} built for {}",
            env!("CARGO_PKG_VERSION"),
            hermit::inference::build_target()
        ),
    ))
}

/// The CPU has every feature the binary was compiled to use.
#[cfg(target_arch = "x86_64")]
fn cpu(_: &Loaded) -> Option<Check> {
    let missing: Vec<&str> = [
        (
            "avx2",
            cfg!(target_feature = "avx2") && !std::arch::is_x86_feature_detected!("avx2"),
        ),
        (
            "fma",
            cfg!(target_feature = "fma") && !std::arch::is_x86_feature_detected!("fma"),
        ),
        (
            "f16c",
            cfg!(target_feature = "f16c") && !std::arch::is_x86_feature_detected!("f16c"),
        ),
        (
            "bmi2",
            cfg!(target_feature = "bmi2") && !std::arch::is_x86_feature_detected!("bmi2"),
        ),
    ]
    .into_iter()
    .filter(|(_, m)| *m)
    .map(|(f, _)| f)
    .collect();
    Some(check(
        "cpu",
        missing.is_empty(),
        if missing.is_empty() {
            format!(
                "has every feature the binary needs; {} physical cores",
                hermit::inference::physical_cores()
            )
        } else {
            format!("LACKS {} (rebuild for this machine)", missing.join(", "))
        },
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu(_: &Loaded) -> Option<Check> {
    None
}

fn config(loaded: &Loaded) -> Option<Check> {
    Some(match loaded {
        Ok(_) => check("config", true, "valid"),
        Err(e) => check("config", false, e.to_string()),
    })
}

/// The data directory holds the trash, scratch space, the database and
/// the secrets: nobody but the daemon's user may read it.
fn data_directory(dir: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(dir) {
        Err(_) => check(
            "data directory",
            true,
            format!("{} not created yet (it is made 0700)", dir.display()),
        ),
        Ok(md) => {
            let mode = md.permissions().mode() & 0o777;
            check(
                "data directory",
                mode & 0o077 == 0,
                format!(
                    "{} mode {mode:o}{}",
                    dir.display(),
                    if mode & 0o077 == 0 {
                        ""
                    } else {
                        ": readable by others; chmod 700 it"
                    }
                ),
            )
        }
    }
}

/// What listens where: loopback only, or on the network.
fn listeners(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    let h = &config.homeserver;
    let loopback = h
        .bind
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback());
    Some(advice(
        "listeners",
        loopback,
        format!(
            "Synapse {} on {}:{}{}; control socket {} (0600)",
            if h.managed {
                "(managed)"
            } else {
                "(not managed here)"
            },
            h.bind,
            h.port,
            if loopback {
                ", loopback only".to_string()
            } else {
                ", ON THE NETWORK, with TLS".to_string()
            },
            config.data_dir().join(hermit::control::SOCKET).display()
        ),
    ))
}

/// Synapse is installed, when Hermit runs it.
fn homeserver(setup: &Setup<'_>) -> Option<Check> {
    if !setup.config.homeserver.managed {
        return None;
    }
    Some(match hermit::homeserver::synapse_python(setup.config) {
        Ok(p) => check(
            "homeserver",
            true,
            format!("Synapse installed ({})", p.display()),
        ),
        Err(e) => check("homeserver", false, e.to_string()),
    })
}

/// The generated secrets exist and can be read.
fn secrets(setup: &Setup<'_>) -> Option<Check> {
    let data = setup.config.data_dir();
    if !data.join("secrets").exists() {
        return Some(advice(
            "secrets",
            false,
            "none yet: run `hermit init` (or `hermit up`) to create the accounts",
        ));
    }
    Some(
        match hermit::secrets::Secrets::open(&data).and_then(|s| {
            for name in [
                hermit::secrets::names::BOT_PASSWORD,
                hermit::secrets::names::STORE_PASSPHRASE,
            ] {
                s.get(name)?;
            }
            Ok(s)
        }) {
            Ok(s) => check(
                "secrets",
                true,
                format!("{} (0700, files 0600)", s.dir().display()),
            ),
            Err(e) => check("secrets", false, e.to_string()),
        },
    )
}

/// Who Hermit answers to.
fn owner(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    Some(check(
        "owner",
        true,
        format!(
            "{}; members: {}",
            config.owner_id(),
            if config.matrix.members.is_empty() {
                "none".to_string()
            } else {
                config.matrix.members.join(", ")
            }
        ),
    ))
}

/// hermit.db, once there is one.
fn database(config: &Config) -> Option<std::path::PathBuf> {
    let path = config.data_dir().join("hermit.db");
    path.exists().then_some(path)
}

/// The audit log's hash chain is whole.
fn audit_log(setup: &Setup<'_>) -> Option<Check> {
    let path = database(setup.config)?;
    let data = setup.config.data_dir();
    Some(
        match hermit::db::open(&path)
            .map_err(anyhow::Error::from)
            .and_then(|db| Ok(hermit::trust::audit::verify(&db, &data)?))
        {
            Ok(v) => match v.problem {
                None => check("audit log", true, format!("intact, {} entries", v.entries)),
                Some(p) => check("audit log", false, format!("BROKEN: {p}")),
            },
            Err(e) => check("audit log", false, e.to_string()),
        },
    )
}

/// The stop switch's state.
fn stop_switch(setup: &Setup<'_>) -> Option<Check> {
    let db = hermit::db::open(&database(setup.config)?).ok()?;
    let halted = hermit::trust::halt::halted_by(&db);
    Some(advice(
        "stop switch",
        halted.is_none(),
        match halted {
            Some(by) => format!("STOPPED by {by}: nothing runs until `hermit resume` or !resume"),
            None => "off".into(),
        },
    ))
}

/// The policy in force for the owner: what runs without asking.
fn policy(setup: &Setup<'_>) -> Option<Check> {
    let owner = setup.config.policy.rules(hermit::vocab::OWNER)?;
    let open: Vec<&str> = [
        ("write", owner.write),
        ("exec", owner.exec),
        ("network", owner.network),
        ("message", owner.message),
        ("irreversible", owner.irreversible),
    ]
    .into_iter()
    .filter(|(_, rule)| *rule == hermit::trust::policy::Rule::Allow)
    .map(|(name, _)| name)
    .collect();
    Some(advice(
        "policy",
        open.is_empty(),
        if open.is_empty() {
            "the owner approves every effect beyond read".into()
        } else {
            format!(
                "runs without asking the owner: {} (still asks after untrusted text)",
                open.join(", ")
            )
        },
    ))
}

/// Whether tools reach the network: the shell's, and `fetch`.
fn network_for_tools(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    Some(advice(
        "network for tools",
        !(config.sandbox.network || config.fetch.enabled),
        format!(
            "shell network {}, fetch {}",
            if config.sandbox.network { "ON" } else { "off" },
            if config.fetch.enabled {
                format!("ON for {}", config.fetch.allow_hosts.join(", "))
            } else {
                "off".into()
            }
        ),
    ))
}

/// Memory: on or off, and whether recall is semantic or full text.
fn memory(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    Some(if !config.memory.enabled {
        check(
            "memory",
            true,
            "off ([memory] enabled = false): nothing is kept or recalled",
        )
    } else if !config.memory.embeddings {
        check(
            "memory",
            true,
            "on, full text only ([memory] embeddings = false)",
        )
    } else {
        match Registry::for_config(config).resolve_embeddings(&config.memory.embedding_model) {
            Ok(dir) => check(
                "memory",
                true,
                format!("on, full text and embeddings ({}, verified)", dir.display()),
            ),
            Err(e) => advice("memory", false, format!("on, full text only: {e}")),
        }
    })
}

/// The configured model is present, and verified against models.toml.
fn model(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    Some(
        match Registry::for_config(config).resolve(&config.inference.model) {
            Ok(m) => advice(
                "model",
                m.verified,
                format!(
                    "{} at {} ({})",
                    m.name,
                    m.path.display(),
                    if m.verified {
                        "verified"
                    } else {
                        "not listed in models.toml, unverified"
                    }
                ),
            ),
            Err(e) => check("model", false, e.to_string()),
        },
    )
}

/// Whether the configured chat model suits this box (memory, cores), and
/// which one does.
fn model_fit(setup: &Setup<'_>) -> Option<Check> {
    use hermit::models::Fit;
    let config = setup.config;
    let registry = Registry::for_config(config);
    let entry = registry.get(&config.inference.model)?;
    let machine = crate::cli::this_machine();
    let best = registry.recommended(machine);
    let box_is = format!(
        "{} cores, {}",
        machine.cores,
        crate::cli::human_size(machine.memory_bytes)
    );
    let instead = match best {
        Some(b) if b.name != entry.name => {
            format!(
                "; {} suits this box: `inference.model = \"{}\"`",
                b.name, b.name
            )
        }
        _ => String::new(),
    };
    Some(match (entry.tools, entry.fit(machine)) {
        (false, _) => advice(
            "model fit",
            false,
            format!("{} cannot call tools (for tests only){instead}", entry.name),
        ),
        (true, Fit::Good) => advice(
            "model fit",
            true,
            format!("{} suits this box ({box_is}){instead}", entry.name),
        ),
        (true, Fit::Slow) => advice(
            "model fit",
            false,
            format!("{} will answer slowly on {box_is}{instead}", entry.name),
        ),
        (true, Fit::TooBig) => check(
            "model fit",
            false,
            format!(
                "{} does not fit in {box_is} beside Hermit and the homeserver{instead}",
                entry.name
            ),
        ),
    })
}

/// Voice: off, or the speech worker started in its sandbox and loaded its
/// model (a real start, as the first voice note would).
fn voice(setup: &Setup<'_>) -> Option<Check> {
    let config = setup.config;
    if !config.voice.enabled {
        return Some(check("voice", true, "off ([voice] enabled = false)"));
    }
    let settings = match hermit::voice::VoiceSettings::from_config(config) {
        Ok(s) => s,
        Err(e) => {
            return Some(advice(
                "voice",
                false,
                format!("on, but voice notes get an apology: {e}"),
            ));
        }
    };
    let detail = format!(
        "{} ({} threads, language {}), worker {}",
        settings.model.display(),
        settings.threads,
        settings.language,
        settings.worker.display()
    );
    let voice = hermit::voice::Voice::new(settings);
    let started = std::time::Instant::now();
    let heard = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(voice.ensure_started())
            .map_err(|e| e.to_string())
    });
    Some(match heard {
        Ok(()) => check(
            "voice",
            true,
            format!(
                "{detail}: the worker started in its sandbox and loaded the model ({} ms)",
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => check("voice", false, format!("{detail}: {e}")),
    })
}

/// Prints the checks, as a table or one JSON object; true when none is
/// critical.
fn print(checks: &[Check], json: bool) -> bool {
    let ok = checks.iter().all(|c| c.verdict != "fail");
    if json {
        println!("{}", serde_json::json!({ "ok": ok, "checks": checks }));
    } else {
        for c in checks {
            println!(
                "{:<5} {:<24} {}",
                c.verdict.to_uppercase(),
                c.check,
                c.detail
            );
        }
        println!(
            "\n{}",
            if ok {
                "no critical finding"
            } else {
                "critical findings above"
            }
        );
    }
    ok
}
