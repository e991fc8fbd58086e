//! Memory: what Hermit keeps, recalls and forgets.
//!
//! hermit.db is the source of truth: every conversation and its messages
//! (who said it, in which room, when, from what source), voice transcripts,
//! the facts a person asked Hermit to remember, and notes. Two derived
//! views serve search: the full-text index ([`index`], tantivy, on disk
//! beside hermit.db) and sentence embeddings ([`embed`], candle, stored in
//! each row's `embedding` column and scanned in memory). A search fuses
//! the two rankings by reciprocal rank fusion.
//!
//! Every row belongs to one principal (`"owner"` for the owner, whether at
//! the box or in Matrix; a member's exact Matrix ID otherwise) and a search
//! for one principal never returns another's rows. Rows that came from an
//! untrusted source keep its label (`origin`) and are fenced when
//! recalled. Forgetting deletes the row (with SQLite's `secure_delete`, so
//! its pages are overwritten), its copies in the Matrix journal, its
//! vector, and its index entry (the segments are merged and the old files
//! removed).
//!
//! Indexing and embedding run on a worker thread, off the async runtime;
//! the command line indexes in the foreground with progress.

pub mod embed;
mod forget;
pub mod index;
mod search;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::vocab::{ConversationKey, Origin, Principal, fence};

pub use embed::Embedder;
pub use index::TextIndex;

/// What a memory row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Message,
    Transcript,
    Fact,
    Note,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Message, Kind::Transcript, Kind::Fact, Kind::Note];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Transcript => "transcript",
            Kind::Fact => "fact",
            Kind::Note => "note",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Message => "messages",
            Kind::Transcript => "transcripts",
            Kind::Fact => "facts",
            Kind::Note => "notes",
        }
    }

    /// The SQL expression of the row's searchable text.
    fn text_sql(self) -> &'static str {
        match self {
            Kind::Note => "title || char(10) || body",
            _ => "body",
        }
    }

    fn code(self) -> u64 {
        match self {
            Kind::Message => 1,
            Kind::Transcript => 2,
            Kind::Fact => 3,
            Kind::Note => 4,
        }
    }
}

/// A row held in memory, written `kind:id` (`fact:12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub id: i64,
}

impl Key {
    /// The key as one u64 (the index's document key).
    pub(crate) fn packed(self) -> u64 {
        (self.kind.code() << 56) | (self.id as u64 & ((1 << 56) - 1))
    }

    pub(crate) fn unpack(v: u64) -> Option<Key> {
        let kind = Kind::ALL.into_iter().find(|k| k.code() == v >> 56)?;
        Some(Key {
            kind,
            id: (v & ((1 << 56) - 1)) as i64,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.id)
    }
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a memory id (like fact:12 or message:345)");
        let (kind, id) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(Key {
            kind: Kind::parse(kind).ok_or_else(bad)?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// Whose memories: the owner's (at the box or in Matrix) are one.
pub fn principal_key(p: &Principal) -> String {
    if p.is_owner() {
        crate::vocab::OWNER.into()
    } else {
        p.id.clone()
    }
}

/// One memory as found.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub kind: Kind,
    #[serde(skip)]
    pub key: Key,
    pub principal: String,
    pub text: String,
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// The untrusted source it came from, if any.
    pub origin: Option<String>,
    pub pinned: bool,
    pub conversation: Option<String>,
    /// For messages: `user` or `assistant`.
    pub role: Option<String>,
    pub sender: Option<String>,
    /// Reciprocal-rank-fusion score.
    pub score: f32,
    pub text_rank: Option<usize>,
    pub vector_rank: Option<usize>,
    pub similarity: Option<f32>,
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Full text only.
    Text,
    /// Full text and embeddings, fused.
    Hybrid,
}

#[derive(Debug, Clone)]
pub struct MemorySettings {
    pub recall_items: usize,
    pub recall_tokens: usize,
    /// The owner's timezone for dates in recalled memories.
    pub timezone: String,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            recall_items: 5,
            recall_tokens: 300,
            timezone: String::new(),
        }
    }
}

/// A message to keep.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub conversation: &'a str,
    pub principal: &'a str,
    pub sender: &'a str,
    pub room: Option<&'a str>,
    pub role: &'a str,
    pub origin: Option<&'a str>,
    pub body: &'a str,
}

/// A kept message of a conversation, as [`Memory::said_in`] reads it
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// "user" or "assistant".
    pub role: String,
    pub sender: String,
    /// The label of where the words came from when they were not typed
    /// (a transcript) or, for a reply, of the untrusted text it read.
    pub origin: Option<String>,
    pub body: String,
}

/// A voice message's transcript to keep.
#[derive(Debug, Clone)]
pub(crate) struct NewTranscript<'a> {
    pub principal: &'a str,
    pub room: Option<&'a str>,
    /// The voice message's Matrix event.
    pub event_id: Option<&'a str>,
    pub language: &'a str,
    pub body: &'a str,
}

/// Keeps a transcript, on `conn` (a channel keeps its transcripts whether
/// or not memory is on; the index catches up from the change log).
pub(crate) fn record_transcript(conn: &Connection, t: &NewTranscript) -> Result<i64, MemoryError> {
    conn.execute(
        "INSERT INTO transcripts (principal, room, event_id, language, body, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![t.principal, t.room, t.event_id, t.language, t.body, crate::vocab::now_ms()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// What was recalled for a turn.
#[derive(Debug, Clone, Default)]
pub struct Recall {
    /// The text given to the model (empty: nothing relevant).
    pub text: String,
    /// The first untrusted source among them.
    pub taint: Option<String>,
    pub keys: Vec<Key>,
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("hermit.db: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Index(#[from] index::IndexError),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
}

enum EmbedState {
    Off,
    Unloaded(PathBuf),
    Ready(Arc<Embedder>),
    Failed,
}

/// The vectors of one principal, in memory.
#[derive(Default)]
struct Vectors {
    keys: Vec<Key>,
    data: Vec<f32>,
}

/// A row's fused score, its rank in each list, its cosine.
type Fused = (f32, Option<usize>, Option<usize>, Option<f32>);

/// Reciprocal rank fusion's constant.
const RRF_K: f32 = 60.0;
/// Candidates taken from each ranking before fusion.
const CANDIDATES: usize = 50;
/// Below this cosine, a memory found only by its embedding is not
/// recalled into a turn (all-MiniLM-L6-v2: unrelated sentences score
/// around 0 to 0.2).
const MIN_SIMILARITY: f32 = 0.35;
/// Below this cosine a row is not a search result by its embedding alone.
const SEARCH_MIN_SIMILARITY: f32 = 0.2;
/// Rows embedded per round (sorted by length inside, see [`Embedder::embed`]).
const EMBED_BATCH: usize = 128;

pub struct Memory {
    db_path: PathBuf,
    pub index: TextIndex,
    embedder: Mutex<EmbedState>,
    vectors: Mutex<HashMap<String, Vectors>>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    pub settings: MemorySettings,
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memory")
            .field("db", &self.db_path)
            .finish_non_exhaustive()
    }
}

impl Memory {
    /// Opens hermit.db and the index in `data_dir`. `embeddings`: the
    /// directory of the embedding model (loaded on first use), or `None`
    /// for full text only.
    pub fn open(
        data_dir: &Path,
        embeddings: Option<PathBuf>,
        settings: MemorySettings,
    ) -> Result<Self, MemoryError> {
        let db_path = data_dir.join("hermit.db");
        drop(crate::db::open(&db_path)?);
        let index = TextIndex::open(&data_dir.join("memory-index"))?;
        Ok(Self {
            db_path,
            index,
            embedder: Mutex::new(match embeddings {
                Some(dir) => EmbedState::Unloaded(dir),
                None => EmbedState::Off,
            }),
            vectors: Mutex::new(HashMap::new()),
            wake: Arc::new((Mutex::new(false), Condvar::new())),
            settings,
        })
    }

    pub fn conn(&self) -> Result<Connection, MemoryError> {
        Ok(crate::db::open(&self.db_path)?)
    }

    /// The embedder, loading it on first use; `None` when embeddings are
    /// off or the model cannot be loaded (said once in the log).
    pub(crate) fn embedder(&self) -> Option<Arc<Embedder>> {
        let mut state = self.embedder.lock().unwrap_or_else(|e| e.into_inner());
        match &*state {
            EmbedState::Ready(e) => return Some(e.clone()),
            EmbedState::Off | EmbedState::Failed => return None,
            EmbedState::Unloaded(_) => {}
        }
        let EmbedState::Unloaded(dir) = std::mem::replace(&mut *state, EmbedState::Failed) else {
            unreachable!()
        };
        match Embedder::load(&dir) {
            Ok(e) => {
                let e = Arc::new(e);
                *state = EmbedState::Ready(e.clone());
                Some(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "semantic recall is off: the embedding model cannot be loaded (scripts/setup fetches it)");
                None
            }
        }
    }

    /// Whether semantic search is on (loads the model).
    pub fn has_embeddings(&self) -> bool {
        self.embedder().is_some()
    }

    /// Keeps a message of a conversation.
    pub fn record_message(&self, m: &NewMessage) -> Result<i64, MemoryError> {
        let conn = self.conn()?;
        let now = crate::vocab::now_ms();
        conn.execute(
            "INSERT INTO conversations (id, principal, room, started_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO NOTHING",
            params![m.conversation, m.principal, m.room, now],
        )?;
        conn.execute(
            "INSERT INTO messages (conversation, principal, sender, room, role, origin, body, ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                m.conversation,
                m.principal,
                m.sender,
                m.room,
                m.role,
                m.origin,
                m.body,
                now
            ],
        )?;
        let id = conn.last_insert_rowid();
        self.notify();
        Ok(id)
    }

    /// The messages kept in `conversation` (a conversation key, as
    /// stored), in the order they were said: a conversation is rebuilt
    /// from them after a restart, so its words are kept in one place.
    pub fn said_in(&self, conversation: &str) -> Result<Vec<Said>, MemoryError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT role, sender, origin, body FROM messages WHERE conversation = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([conversation], |r| {
                Ok(Said {
                    role: r.get(0)?,
                    sender: r.get(1)?,
                    origin: r.get(2)?,
                    body: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Keeps a fact for `principal` (`origin`: the untrusted source of the
    /// turn it was said in, if any). The same text twice is kept once.
    pub fn remember(
        &self,
        principal: &str,
        text: &str,
        origin: Option<&str>,
        pinned: bool,
        conversation: Option<&str>,
    ) -> Result<i64, MemoryError> {
        let conn = self.conn()?;
        let existing: Option<i64> = conn
            .query_row(
                "SELECT id FROM facts WHERE principal = ?1 AND body = ?2",
                params![principal, text],
                |r| r.get(0),
            )
            .optional()?;
        let id = match existing {
            Some(id) => {
                if pinned {
                    conn.execute("UPDATE facts SET pinned = 1 WHERE id = ?1", [id])?;
                }
                id
            }
            None => {
                conn.execute(
                    "INSERT INTO facts (principal, body, origin, pinned, conversation, ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        principal,
                        text,
                        origin,
                        pinned,
                        conversation,
                        crate::vocab::now_ms()
                    ],
                )?;
                conn.last_insert_rowid()
            }
        };
        self.notify();
        Ok(id)
    }

    /// The facts `principal` pinned: always in the prompt.
    pub(crate) fn pinned(&self, principal: &str) -> Result<Vec<Item>, MemoryError> {
        let conn = self.conn()?;
        let ids: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM facts WHERE principal = ?1 AND pinned = 1 ORDER BY ts LIMIT 50",
            )?
            .query_map([principal], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(item) = load_item(
                &conn,
                Key {
                    kind: Kind::Fact,
                    id,
                },
            )? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Wakes the worker: there is something to index.
    pub(crate) fn notify(&self) {
        let (lock, cv) = &*self.wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_one();
    }

    /// Starts the worker thread that indexes and embeds what is new. It
    /// catches up at once (rows written while Hermit was down), then on
    /// every [`Memory::notify`].
    pub fn start_worker(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("hermit-memory".into())
            .spawn(move || {
                loop {
                    let Some(mem) = me.upgrade() else { return };
                    if let Err(e) = mem.catch_up() {
                        tracing::warn!(error = %e, "memory indexing failed; retrying later");
                    }
                    drop(mem);
                    let (lock, cv) = &*wake;
                    let mut pending = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if !*pending {
                        pending = cv
                            .wait_timeout(pending, Duration::from_secs(30))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    *pending = false;
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory worker; memory is indexed by the command line only");
        }
    }

    /// Indexes the log, then embeds the rows without a vector.
    pub fn catch_up(&self) -> Result<(), MemoryError> {
        let conn = self.conn()?;
        match self.index.sync(&conn, Duration::from_secs(2), |_, _| {}) {
            Ok(s) if s.applied > 0 => tracing::debug!(applied = s.applied, "memory indexed"),
            Ok(_) => {}
            Err(index::IndexError::Busy) => {}
            Err(e) => return Err(e.into()),
        }
        if self.embedder().is_some() {
            while self.embed_pending(&conn, EMBED_BATCH)? > 0 {}
        }
        Ok(())
    }

    /// Indexes in the foreground (the command line), with progress.
    pub fn sync_index(
        &self,
        wait: Duration,
        progress: impl FnMut(usize, usize),
    ) -> Result<index::Synced, MemoryError> {
        let conn = self.conn()?;
        Ok(self.index.sync(&conn, wait, progress)?)
    }

    /// Embeds up to `limit` rows that have no vector yet; returns how many.
    pub fn embed_pending(&self, conn: &Connection, limit: usize) -> Result<usize, MemoryError> {
        let Some(embedder) = self.embedder() else {
            return Ok(0);
        };
        let mut rows: Vec<(Key, String, String)> = Vec::new();
        for kind in Kind::ALL {
            if rows.len() >= limit {
                break;
            }
            let sql = format!(
                "SELECT id, principal, {} FROM {} WHERE embedding IS NULL LIMIT ?1",
                kind.text_sql(),
                kind.table()
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let found = stmt.query_map([(limit - rows.len()) as i64], |r| {
                Ok((
                    Key {
                        kind,
                        id: r.get(0)?,
                    },
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in found {
                rows.push(row?);
            }
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let texts: Vec<&str> = rows.iter().map(|(_, _, t)| t.as_str()).collect();
        let vectors = embedder.embed(&texts)?;
        // The cache and the database change together, so a principal's
        // vectors loaded meanwhile are not counted twice.
        let mut cache = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.unchecked_transaction()?;
        for ((key, principal, _), v) in rows.iter().zip(&vectors) {
            let sql = format!(
                "UPDATE {} SET embedding = ?1 WHERE id = ?2",
                key.kind.table()
            );
            tx.prepare_cached(&sql)?
                .execute(params![embed::to_blob(v), key.id])?;
            if let Some(vs) = cache.get_mut(principal) {
                vs.keys.push(*key);
                vs.data.extend_from_slice(v);
            }
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// Puts vectors in the in-memory store without the database (the
    /// benchmark: vectors for a million rows, reused from real ones).
    pub fn preload_vectors(&self, principal: &str, keys: Vec<Key>, data: Vec<f32>) {
        assert_eq!(keys.len() * embed::DIMS, data.len());
        self.vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(principal.to_string(), Vectors { keys, data });
    }

    /// Counts per kind, and how many have a vector.
    pub fn counts(&self) -> Result<Vec<(Kind, i64, i64)>, MemoryError> {
        let conn = self.conn()?;
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let (n, e): (i64, i64) = conn.query_row(
                &format!("SELECT count(*), count(embedding) FROM {}", kind.table()),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            out.push((kind, n, e));
        }
        Ok(out)
    }
}

fn room_of(item: &Item) -> Option<String> {
    item.conversation.as_deref().and_then(room_of_conversation)
}

/// The room of a Matrix conversation key, as stored ("matrix:!room:box:3").
pub(crate) fn room_of_conversation(conversation: &str) -> Option<String> {
    ConversationKey::parse(conversation)?
        .room()
        .map(str::to_string)
}

impl Item {
    /// Who said it, in words, for the model.
    fn describe(&self) -> String {
        match (self.kind, self.role.as_deref()) {
            (Kind::Message, Some("assistant")) => "Hermit said".into(),
            (Kind::Message, _) => "they said".into(),
            (Kind::Fact, _) => "a fact they asked Hermit to remember".into(),
            (Kind::Note, _) => "a note".into(),
            (Kind::Transcript, _) => "a voice note".into(),
        }
    }
}

/// A row's date in the owner's timezone ("Mon 23 Nov 2026").
pub(crate) fn describe_date(ts: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ts)
        .map(|t| t.to_zoned(tz.clone()).strftime("%a %-d %b %Y").to_string())
        .unwrap_or_else(|_| "?".into())
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// A row as an [`Item`], if it exists.
fn load_item(conn: &Connection, key: Key) -> Result<Option<Item>, rusqlite::Error> {
    let item = |principal: String,
                text: String,
                ts: i64,
                origin: Option<String>,
                pinned: bool,
                conversation: Option<String>,
                role: Option<String>,
                sender: Option<String>| Item {
        id: key.to_string(),
        kind: key.kind,
        key,
        principal,
        text,
        ts,
        origin,
        pinned,
        conversation,
        role,
        sender,
        score: 0.0,
        text_rank: None,
        vector_rank: None,
        similarity: None,
    };
    let id = key.id;
    match key.kind {
        Kind::Message => conn
            .prepare_cached(
                "SELECT principal, body, ts, origin, conversation, role, sender FROM messages WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(item(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    false,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .optional(),
        Kind::Transcript => conn
            .prepare_cached("SELECT principal, body, ts FROM transcripts WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(item(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    None,
                    false,
                    None,
                    None,
                    None,
                ))
            })
            .optional(),
        Kind::Fact => conn
            .prepare_cached(
                "SELECT principal, body, ts, origin, pinned, conversation FROM facts WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(item(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    None,
                    None,
                ))
            })
            .optional(),
        Kind::Note => conn
            .prepare_cached(
                "SELECT principal, title || char(10) || body, updated_at * 1000, taint FROM notes WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(item(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    false,
                    None,
                    None,
                    None,
                ))
            })
            .optional(),
    }
}

#[cfg(test)]
mod tests {
    use super::search::top_k;
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            Key {
                kind: Kind::Fact,
                id: 12,
            },
            Key {
                kind: Kind::Message,
                id: 1 << 40,
            },
        ] {
            assert_eq!(Key::unpack(key.packed()), Some(key));
            assert_eq!(key.to_string().parse::<Key>().unwrap(), key);
        }
        assert!("fact".parse::<Key>().is_err());
        assert!("film:3".parse::<Key>().is_err());
    }

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let k = |id| Key {
            kind: Kind::Message,
            id,
        };
        let got = top_k(
            [(k(1), 0.1), (k(2), 0.9), (k(3), 0.5), (k(4), 0.7)].into_iter(),
            2,
        );
        assert_eq!(got, vec![(k(2), 0.9), (k(4), 0.7)]);
    }
}
