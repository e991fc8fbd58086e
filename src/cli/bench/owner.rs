//! What the benchmarks against a running `hermit up` share: the daemon as
//! they reach it (checked to be running), and the owner's Matrix client.

use anyhow::Context;
use hermit::config::Config;

use crate::cli::{Global, runtime};

/// What the Matrix benchmarks need: the configuration, the running daemon
/// (checked) and how to reach it as its owner.
pub fn against_daemon(
    global: &Global,
) -> anyhow::Result<(Config, Daemon, tokio::runtime::Runtime)> {
    let config = global.load_config()?;
    let data = config.data_dir();
    let secrets = hermit::secrets::Secrets::open(&data)?;
    let password = secrets
        .get(hermit::secrets::names::OWNER_PASSWORD)?
        .context("no owner password in the secrets directory (the owner must be an account Hermit created)")?;
    let rt = runtime()?;
    rt.block_on(async {
        anyhow::ensure!(
            hermit::control::connect(&data).await.is_some(),
            "no running Hermit answers at {} (start `hermit up` first; scripts/bench-matrix, scripts/bench-reminders and scripts/bench-voice do it all)",
            data.join(hermit::control::SOCKET).display()
        );
        Ok(())
    })?;
    let daemon = Daemon {
        url: config.homeserver.client_url(),
        owner: config.owner_id(),
        password,
        bot: config.bot_id(),
        data_dir: data,
    };
    Ok((config, daemon, rt))
}

/// A message from the bot as the owner's client received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: matrix_sdk::ruma::OwnedEventId,
    pub reply_to: Option<matrix_sdk::ruma::OwnedEventId>,
    /// For an edit: the message it replaces and its new body.
    pub replaces: Option<(matrix_sdk::ruma::OwnedEventId, String)>,
    pub body: String,
    pub at: std::time::Instant,
    /// Wall clock, ms since the epoch.
    pub wall_ms: i64,
}

/// A running `hermit up` as the Matrix benchmarks reach it: its
/// homeserver, the owner's account (a new device logs in), the bot, and its
/// data directory (the journal in hermit.db, the reminders).
pub struct Daemon {
    pub url: String,
    pub owner: String,
    pub password: hermit::secrets::Secret,
    pub bot: String,
    pub data_dir: std::path::PathBuf,
}

/// The owner's client for the Matrix benchmarks: logged in as a new
/// device (in memory), syncing in its own loop, with an encrypted direct
/// chat with the bot, recording what the bot sends there.
pub struct OwnerClient {
    pub room: matrix_sdk::Room,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    pub syncing: tokio::task::JoinHandle<()>,
}

impl OwnerClient {
    pub async fn open(
        daemon: &Daemon,
        device: &str,
        progress: &impl Fn(&str),
    ) -> anyhow::Result<Self> {
        use matrix_sdk::config::SyncSettings;
        use matrix_sdk::ruma::OwnedUserId;
        use matrix_sdk::ruma::events::room::message::{
            MessageType, OriginalSyncRoomMessageEvent, Relation,
        };
        use std::sync::{Arc, Mutex};
        use std::time::{Duration, Instant};

        let client = matrix_sdk::Client::builder()
            .homeserver_url(&daemon.url)
            .build()
            .await?;
        client
            .matrix_auth()
            .login_username(&daemon.owner, daemon.password.expose())
            .initial_device_display_name(device)
            .send()
            .await?;
        let bot: OwnedUserId = daemon.bot.as_str().try_into()?;
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = seen.clone();
        let bot2 = bot.clone();
        client.add_event_handler(move |ev: OriginalSyncRoomMessageEvent| {
            let (log, bot) = (log.clone(), bot2.clone());
            async move {
                if ev.sender != bot {
                    return;
                }
                let at = Instant::now();
                let wall_ms = hermit::vocab::now_ms();
                let text = |m: &MessageType| match m {
                    MessageType::Text(t) => t.body.clone(),
                    MessageType::Notice(t) => t.body.clone(),
                    _ => String::new(),
                };
                let (reply_to, replaces) = match &ev.content.relates_to {
                    Some(Relation::Reply(r)) => (Some(r.in_reply_to.event_id.clone()), None),
                    Some(Relation::Replacement(r)) => (
                        None,
                        Some((r.event_id.clone(), text(&r.new_content.msgtype))),
                    ),
                    _ => (None, None),
                };
                log.lock().unwrap().push(Received {
                    id: ev.event_id,
                    reply_to,
                    replaces,
                    body: text(&ev.content.msgtype),
                    at,
                    wall_ms,
                });
            }
        });
        client.sync_once(SyncSettings::default()).await?;
        let c = client.clone();
        // Our own loop of `sync_once`, like a Matrix client's: the SDK's
        // `sync` waits a second between two syncs less than a second
        // apart, which would be measured as the Matrix path's cost.
        let syncing = tokio::spawn(async move {
            loop {
                let settings = SyncSettings::default().timeout(Duration::from_secs(10));
                if c.sync_once(settings).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        progress("opening an encrypted direct chat with the bot");
        let room = client.create_dm(&bot).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(m)) = room.get_member(&bot).await
                && *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the bot did not join the chat");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            room,
            seen,
            syncing,
        })
    }
}
