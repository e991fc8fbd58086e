//! `hermit secrets list|set`: the secrets store (names only; values are
//! read from stdin and never printed).

use std::io::IsTerminal;

use super::args::SecretsCommand;
use super::{Global, ensure_data_dir, runtime};

pub fn run(global: &Global, command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::List => list(global),
        SecretsCommand::Set { name } => set(global, &name),
    }
}

/// `hermit secrets list`: the names (never the values).
fn list(global: &Global) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let secrets = hermit::secrets::Secrets::open(&data)?;
    for (name, _) in secrets.all()? {
        println!("{name}");
    }
    Ok(())
}

/// `hermit secrets set NAME`: the value from stdin (never an argument,
/// which would land in the shell's history and the process list).
fn set(global: &Global, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a secret's name is letters, digits, - and _ (e.g. weather-api-key)"
    );
    let config = global.load_config()?;
    let data = ensure_data_dir(&config)?;
    let secrets = hermit::secrets::Secrets::open(&data)?;
    if std::io::stdin().is_terminal() {
        eprintln!("value for {name} (then Enter):");
    }
    let mut value = String::new();
    std::io::stdin().read_line(&mut value)?;
    // Shorter values would match ordinary text: the filter skips them.
    anyhow::ensure!(
        value.trim().len() >= 8,
        "a secret must be at least 8 characters long, or it could not be told apart from ordinary text when redacting"
    );
    secrets.set(name, &value)?;
    // A running daemon redacts it from now on.
    let rt = runtime()?;
    let reloaded = rt.block_on(async {
        let mut client = hermit::control::connect(&data).await?;
        client
            .request(&hermit::control::Request::ReloadSecrets)
            .await
            .ok()?;
        client.next().await.ok()
    });
    if matches!(reloaded, Some(hermit::control::Event::Reloaded)) {
        eprintln!("the running daemon now redacts it");
    }
    if let Ok(trust) = hermit::trust::Trust::open(&config) {
        trust.audit.record(
            hermit::vocab::AuditKind::SecretSet,
            trust.owner(),
            serde_json::json!({"name": name}),
        );
    }
    println!("stored {name} (0600 in {})", secrets.dir().display());
    Ok(())
}
