//! Approvals: a call the policy answers with `ask` waits for the owner.
//!
//! A request is a row in `hermit.db` with a short code, bound to a hash of
//! the tool, its arguments (canonical JSON), the conversation and the
//! requester, with an expiry. The owner approves or denies it (a ✅ or ❌
//! reaction to the request message, `!approve CODE` / `!deny CODE` in the
//! same room, or `hermit approvals approve|deny CODE` at the box); the
//! waiting turn sees the decision in the database and runs the call only
//! if the approved row's hash is the hash of the call it is about to run,
//! consuming it (single use). Anyone else's approval, a code from another
//! room, an expired or used code: nothing happens, and the attempt is
//! logged and audited.

use crate::vocab::now_ms;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::vocab::Effect;

/// What a request is for.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ApprovalRequest {
    pub tool: String,
    pub arguments: Value,
    pub effects: Vec<Effect>,
    /// The conversation it was asked in ("matrix:!room:box:0", "local:…").
    pub conversation: String,
    /// Who the call is for (a Matrix user ID).
    pub requester: String,
    /// Where it may be approved: a Matrix room ID, or "local".
    pub place: String,
    /// The untrusted source in the turn, if any.
    pub taint: Option<String>,
    /// Why the policy asks.
    pub reason: String,
}

/// Keys sorted at every level, so equal values hash equally.
pub(crate) fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// The hash an approval is bound to.
pub fn binding(tool: &str, arguments: &Value, conversation: &str, requester: &str) -> String {
    let text = serde_json::json!([tool, canonical(arguments), conversation, requester]).to_string();
    super::audit::sha256_hex(text.as_bytes())
}

/// Who is deciding, and from where.
#[derive(Debug, Clone)]
pub(crate) struct Decider {
    pub user: String,
    pub is_owner: bool,
    /// The room the decision came from; `None` at the box's terminal
    /// (`hermit approvals`), which may decide any request.
    pub place: Option<String>,
    /// For a Matrix event: whether its device is verified (None when the
    /// room is not encrypted).
    pub verified: Option<bool>,
}

/// A stored request, as listed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Stored {
    pub code: String,
    pub tool: String,
    pub arguments: Value,
    pub effects: Value,
    pub conversation: String,
    pub requester: String,
    pub place: String,
    pub taint: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Approved(String),
    Denied(String),
    Expired,
    Cancelled,
}

/// Why a decision did nothing; said to the person who tried.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not the owner; only the owner decides")]
    NotOwner(String),
    #[error("there is no request with the code {0}")]
    NoSuchCode(String),
    #[error("the code {0} was asked in another room; decide it there")]
    OtherRoom(String),
    #[error(
        "approvals count only from the owner's verified devices (policy.require_verified_device)"
    )]
    UnverifiedDevice,
    #[error("the request {0} is already {1}")]
    AlreadyDecided(String, String),
    #[error("the request {0} has expired")]
    Expired(String),
    #[error("the request {0} was decided meanwhile")]
    DecidedMeanwhile(String),
    #[error("the approvals database failed: {0}")]
    Database(#[from] rusqlite::Error),
}

pub struct Approvals {
    db: Mutex<Connection>,
    pub ttl: Duration,
    pub require_verified: bool,
}

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

impl Approvals {
    pub(crate) fn new(db: Connection, ttl: Duration, require_verified: bool) -> Self {
        Self {
            db: Mutex::new(db),
            ttl,
            require_verified,
        }
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a request; returns its code.
    pub(crate) fn request(&self, req: &ApprovalRequest) -> anyhow::Result<String> {
        let hash = binding(&req.tool, &req.arguments, &req.conversation, &req.requester);
        let now = now_ms();
        for _ in 0..8 {
            let bytes = crate::secrets::random_bytes::<6>()?;
            let code: String = bytes
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect();
            let inserted = self.db().execute(
                "INSERT OR IGNORE INTO approvals
                   (code, hash, tool, arguments, effects, conversation, requester, place, taint, reason, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    code,
                    hash,
                    req.tool,
                    canonical(&req.arguments),
                    serde_json::to_string(&req.effects)?,
                    req.conversation,
                    req.requester,
                    req.place,
                    req.taint,
                    req.reason,
                    now,
                    now + self.ttl.as_millis() as i64,
                ],
            )?;
            if inserted == 1 {
                return Ok(code);
            }
        }
        anyhow::bail!("cannot find a free approval code")
    }

    /// Remembers the Matrix event that shows the request (reactions to it
    /// decide it).
    /// (and the room where it was posted, where it may be decided).
    pub(crate) fn set_request_event(&self, code: &str, event_id: &str, place: &str) {
        let _ = self.db().execute(
            "UPDATE approvals SET request_event = ?2, place = ?3 WHERE code = ?1 AND status = 'pending'",
            params![code, event_id, place],
        );
    }

    /// The code a request message shows.
    pub(crate) fn code_for_event(&self, event_id: &str) -> Option<String> {
        self.db()
            .query_row(
                "SELECT code FROM approvals WHERE request_event = ?1",
                [event_id],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
    }

    /// The owner's decision. `Ok` says what happened; `Err` why nothing did.
    pub(crate) fn decide(
        &self,
        code: &str,
        who: &Decider,
        approve: bool,
    ) -> Result<Stored, Refused> {
        let code = code.trim().to_ascii_uppercase();
        let db = self.db();
        // Whether a code exists is nobody's business but the owner's.
        if !who.is_owner {
            return Err(Refused::NotOwner(who.user.clone()));
        }
        let row = stored(&db, &code)?;
        let Some(row) = row else {
            return Err(Refused::NoSuchCode(code));
        };
        if let Some(place) = &who.place
            && place != &row.place
        {
            return Err(Refused::OtherRoom(code));
        }
        if who.place.is_some() && self.require_verified && who.verified != Some(true) {
            return Err(Refused::UnverifiedDevice);
        }
        if row.status != "pending" {
            return Err(Refused::AlreadyDecided(code, row.status));
        }
        if row.expires_at <= now_ms() {
            let _ = db.execute(
                "UPDATE approvals SET status = 'expired' WHERE code = ?1 AND status = 'pending'",
                [&code],
            );
            return Err(Refused::Expired(code));
        }
        let status = if approve { "approved" } else { "denied" };
        let n = db.execute(
            "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4
                 WHERE code = ?1 AND status = 'pending'",
            params![code, status, who.user, now_ms()],
        )?;
        if n != 1 {
            return Err(Refused::DecidedMeanwhile(code));
        }
        let mut row = row;
        row.status = status.into();
        row.decided_by = Some(who.user.clone());
        Ok(row)
    }

    /// Uses an approval for the call about to run: only if it was
    /// approved, is unused, and is bound to this very call.
    pub fn consume(&self, code: &str, hash: &str) -> bool {
        self.db()
            .execute(
                "UPDATE approvals SET status = 'used' WHERE code = ?1 AND hash = ?2 AND status = 'approved'",
                params![code, hash],
            )
            .map(|n| n == 1)
            .unwrap_or(false)
    }

    /// Waits for the decision on `code` (polling the database, so that a
    /// decision taken by another process counts), until it expires or
    /// `cancel` is set.
    pub(crate) async fn wait(
        &self,
        code: &str,
        cancel: &std::sync::atomic::AtomicBool,
        halted: impl Fn() -> bool,
    ) -> Outcome {
        loop {
            // A stop from any process (`hermit stop-all` with no daemon
            // running reaches a local `hermit chat` this way).
            if cancel.load(std::sync::atomic::Ordering::SeqCst) || halted() {
                let _ = self.db().execute(
                    "UPDATE approvals SET status = 'cancelled' WHERE code = ?1 AND status = 'pending'",
                    [code],
                );
                return Outcome::Cancelled;
            }
            let row = stored(&self.db(), code).ok().flatten();
            match row {
                None => return Outcome::Expired,
                Some(r) => match r.status.as_str() {
                    "approved" => return Outcome::Approved(r.decided_by.unwrap_or_default()),
                    "denied" => return Outcome::Denied(r.decided_by.unwrap_or_default()),
                    "pending" if r.expires_at > now_ms() => {}
                    _ => {
                        let _ = self.db().execute(
                            "UPDATE approvals SET status = 'expired' WHERE code = ?1 AND status = 'pending'",
                            [code],
                        );
                        return Outcome::Expired;
                    }
                },
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The request `code`, as it stands now (a pending one past its time
    /// is marked expired first).
    pub fn get(&self, code: &str) -> Option<Stored> {
        let code = code.trim().to_ascii_uppercase();
        let db = self.db();
        let mut row = stored(&db, &code).ok().flatten()?;
        if row.status == "pending" && row.expires_at <= now_ms() {
            let _ = db.execute(
                "UPDATE approvals SET status = 'expired' WHERE code = ?1 AND status = 'pending'",
                [&code],
            );
            row.status = "expired".into();
        }
        Some(row)
    }

    /// Cancels one request not yet run; whether it was open.
    pub(crate) fn cancel(&self, code: &str) -> bool {
        self.db()
            .execute(
                "UPDATE approvals SET status = 'cancelled' WHERE code = ?1 AND status IN ('pending', 'approved')",
                [code.trim().to_ascii_uppercase()],
            )
            .map(|n| n == 1)
            .unwrap_or(false)
    }

    /// Cancels every request not yet run (pending, or approved and
    /// unused): Hermit was stopped, and approvals do not outlive a stop.
    pub(crate) fn cancel_all_open(&self) -> usize {
        self.db()
            .execute(
                "UPDATE approvals SET status = 'cancelled' WHERE status IN ('pending', 'approved')",
                [],
            )
            .unwrap_or(0)
    }

    /// Requests left pending by a process that is gone can never run.
    pub fn expire_all_pending(&self) -> usize {
        self.db()
            .execute(
                "UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved')",
                [],
            )
            .unwrap_or(0)
    }

    /// Requests, newest first (pending only unless `all`).
    pub fn list(&self, all: bool) -> anyhow::Result<Vec<Stored>> {
        let db = self.db();
        let mut stmt = db.prepare(&format!(
            "SELECT {COLUMNS} FROM approvals {} ORDER BY created_at DESC LIMIT 200",
            if all { "" } else { "WHERE status = 'pending'" }
        ))?;
        let rows = stmt.query_map([], row_to_stored)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const COLUMNS: &str = "code, tool, arguments, effects, conversation, requester, place, taint, status, created_at, expires_at, decided_by";

fn row_to_stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let args: String = r.get(2)?;
    let effects: String = r.get(3)?;
    Ok(Stored {
        code: r.get(0)?,
        tool: r.get(1)?,
        arguments: serde_json::from_str(&args).unwrap_or(Value::String(args)),
        effects: serde_json::from_str(&effects).unwrap_or(Value::String(effects)),
        conversation: r.get(4)?,
        requester: r.get(5)?,
        place: r.get(6)?,
        taint: r.get(7)?,
        status: r.get(8)?,
        created_at: r.get(9)?,
        expires_at: r.get(10)?,
        decided_by: r.get(11)?,
    })
}

fn stored(db: &Connection, code: &str) -> rusqlite::Result<Option<Stored>> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM approvals WHERE code = ?1"),
        [code],
        row_to_stored,
    )
    .optional()
}

/// Characters that show as nothing, or that change the order of what
/// follows them: what the owner reads must be what runs, so each is shown
/// as an escape (`\u{202e}`). C0 controls are escaped by JSON already.
fn is_hidden(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9F            // C1 controls
        | 0xAD                 // soft hyphen
        | 0x34F                // combining grapheme joiner
        | 0x61C                // Arabic letter mark
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers
        | 0x17B4 | 0x17B5
        | 0x180B..=0x180F      // Mongolian selectors and vowel separator
        | 0x200B..=0x200F      // zero-width spaces and joiners, LRM, RLM
        | 0x2028..=0x202E      // line/paragraph separators, bidi embeddings and overrides
        | 0x2060..=0x206F      // word joiner, invisible operators, bidi isolates
        | 0xFE00..=0xFE0F      // variation selectors
        | 0xFEFF               // zero-width no-break space
        | 0xFFF0..=0xFFFB      // interlinear annotations
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF    // tags and supplementary variation selectors
    )
}

/// `text` with every hidden or direction-changing character written as an
/// escape (`\u{…}`), so that it reads as what it is.
pub(crate) fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A Markdown code block holding `text` whole: its fence is longer than
/// any run of backticks inside, so nothing in `text` can close it.
fn code_block(lang: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{text}\n{fence}\n")
}

/// The text shown to the owner: exactly what will run. The arguments and
/// the model's reason are in code blocks (nothing in them is formatting),
/// hidden and direction-changing characters shown as escapes.
pub(crate) fn describe(req: &ApprovalRequest, code: &str, ttl: Duration) -> String {
    let effects: Vec<String> = req
        .effects
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let args = visible(&serde_json::to_string_pretty(&req.arguments).unwrap_or_default());
    let mut text = format!(
        "**Approval needed** (code `{code}`)\n\nTool: `{}`\nEffects: {}\nFor: {}\n\nArguments:\n{}\nWhy (the model's words):\n{}",
        visible(&req.tool),
        effects.join(", "),
        visible(&req.requester),
        code_block("json", &args),
        code_block("text", &visible(&req.reason)),
    );
    if let Some(t) = &req.taint {
        text.push_str(&format!(
            "\n⚠️ Untrusted text came before this request: `{}`. It may have been written to make me do this.\n",
            visible(t).replace('`', "'")
        ));
    }
    text.push_str(&format!(
        "\nReact ✅ to approve or ❌ to deny, or send `!approve {code}` / `!deny {code}`. It expires in {} minutes.",
        ttl.as_secs().div_ceil(60)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "@owner:box";

    fn setup(ttl: Duration, verified: bool) -> (tempfile::TempDir, Approvals) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("hermit.db")).unwrap();
        (dir, Approvals::new(db, ttl, verified))
    }

    fn req(args: Value) -> ApprovalRequest {
        ApprovalRequest {
            tool: "shell".into(),
            arguments: args,
            effects: vec![Effect::Exec],
            conversation: "matrix:!a:box:0".into(),
            requester: OWNER.into(),
            place: "!a:box".into(),
            taint: None,
            reason: "role owner: exec asks".into(),
        }
    }

    fn owner_in(room: &str) -> Decider {
        Decider {
            user: OWNER.into(),
            is_owner: true,
            place: Some(room.into()),
            verified: None,
        }
    }

    #[test]
    fn an_approval_is_single_use_and_bound_to_the_exact_call() {
        let (_d, a) = setup(Duration::from_secs(600), false);
        let r = req(serde_json::json!({"command": "ls"}));
        let code = a.request(&r).unwrap();
        assert_eq!(code.len(), 6);
        a.decide(&code.to_lowercase(), &owner_in("!a:box"), true)
            .unwrap();
        // Another call (other arguments, another conversation, another
        // requester) cannot use it.
        let other = binding(
            "shell",
            &serde_json::json!({"command": "rm -rf ~"}),
            &r.conversation,
            OWNER,
        );
        assert!(!a.consume(&code, &other));
        let other_conv = binding("shell", &r.arguments, "matrix:!b:box:0", OWNER);
        assert!(!a.consume(&code, &other_conv));
        let same = binding("shell", &r.arguments, &r.conversation, OWNER);
        assert!(a.consume(&code, &same));
        // Once.
        assert!(!a.consume(&code, &same));
        // And deciding it again does nothing.
        assert!(
            a.decide(&code, &owner_in("!a:box"), true)
                .unwrap_err()
                .to_string()
                .contains("already")
        );
        // Key order does not change the binding.
        assert_eq!(
            binding("t", &serde_json::json!({"a": 1, "b": 2}), "c", "r"),
            binding("t", &serde_json::json!({"b": 2, "a": 1}), "c", "r")
        );
    }

    #[test]
    fn others_other_rooms_and_old_codes_do_nothing() {
        let (_d, a) = setup(Duration::from_secs(600), false);
        let code = a
            .request(&req(serde_json::json!({"command": "ls"})))
            .unwrap();
        let member = Decider {
            user: "@alice:box".into(),
            is_owner: false,
            place: Some("!a:box".into()),
            verified: None,
        };
        assert!(
            a.decide(&code, &member, true)
                .unwrap_err()
                .to_string()
                .contains("not the owner")
        );
        assert!(matches!(
            a.decide(&code, &owner_in("!b:box"), true),
            Err(Refused::OtherRoom(_))
        ));
        assert!(a.decide("ZZZZZZ", &owner_in("!a:box"), true).is_err());
        // Still pending after all that: the owner can deny it.
        let row = a.decide(&code, &owner_in("!a:box"), false).unwrap();
        assert_eq!(row.status, "denied");
        let hash = binding(
            "shell",
            &serde_json::json!({"command": "ls"}),
            "matrix:!a:box:0",
            OWNER,
        );
        assert!(!a.consume(&code, &hash));
    }

    #[test]
    fn expired_requests_and_unverified_devices_do_nothing() {
        let (_d, a) = setup(Duration::from_millis(0), false);
        let code = a.request(&req(serde_json::json!({}))).unwrap();
        assert!(
            a.decide(&code, &owner_in("!a:box"), true)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        let (_d, a) = setup(Duration::from_secs(600), true);
        let code = a.request(&req(serde_json::json!({}))).unwrap();
        let mut unverified = owner_in("!a:box");
        unverified.verified = Some(false);
        assert!(
            a.decide(&code, &unverified, true)
                .unwrap_err()
                .to_string()
                .contains("verified")
        );
        unverified.verified = None;
        assert!(a.decide(&code, &unverified, true).is_err());
        let mut verified = owner_in("!a:box");
        verified.verified = Some(true);
        assert!(a.decide(&code, &verified, true).is_ok());
    }

    #[test]
    fn what_the_owner_reads_is_what_runs() {
        // A bidi override that would show `rm -rf ~/txt.exe` as something
        // else, a zero-width space, and a fence that tries to close the block.
        let mut r = req(
            serde_json::json!({"command": "echo hi\u{202e}fdp.exe ~ fr- mr\u{200b}; ``` done"}),
        );
        r.reason = "**bold** \u{2066}claim\u{2069}".into();
        let text = describe(&r, "ab12", Duration::from_secs(600));
        for hidden in ['\u{202e}', '\u{200b}', '\u{2066}', '\u{2069}'] {
            assert!(!text.contains(hidden), "{text}");
        }
        assert!(
            text.contains(r"\u{202e}") && text.contains(r"\u{200b}"),
            "{text}"
        );
        // The arguments' fence is longer than the backticks inside them.
        assert!(text.contains("````json\n"), "{text}");
        // The reason is in a code block, not Markdown.
        let why = text.split("Why (the model's words):\n").nth(1).unwrap();
        assert!(why.starts_with("```text\n**bold**"), "{text}");
        assert_eq!(visible("plain café"), "plain café");
    }
}
