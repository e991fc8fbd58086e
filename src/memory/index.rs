//! The full-text index (tantivy), derived from hermit.db.
//!
//! One document per row of `messages`, `transcripts`, `facts` and `notes`,
//! keyed by a u64 ([`super::Key::packed`]). The text is indexed twice, with
//! an English and a French analyser (lower case, accents folded, stop
//! words removed, Snowball stemming); a query searches both. Nothing but
//! the key is stored: the text lives in hermit.db only, so a forgotten row
//! leaves no copy in the index once its segment is merged.
//!
//! The index follows `memory_log` (filled by triggers on those tables).
//! Each commit records, as its payload, the last log `seq` it covers, in
//! the same atomic step as the documents: after a crash the index resumes
//! from what it really holds, and the rows written since are indexed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term, doc};

use super::{Key, Kind};

/// Log entries applied per commit.
const BATCH: usize = 20_000;
/// Memory for the index writer.
const WRITER_HEAP: usize = 128 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("memory index {path}: {message}")]
    Index { path: String, message: String },
    #[error("memory index: hermit.db: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(
        "the memory index is being written by another Hermit process (the daemon?); try again when it is done"
    )]
    Busy,
}

struct Fields {
    key: Field,
    principal: Field,
    en: Field,
    fr: Field,
}

pub struct TextIndex {
    path: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Held while this process writes; other processes wait or give up.
    writer: Mutex<()>,
}

/// What indexing did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Synced {
    pub applied: usize,
    pub last_seq: i64,
}

/// English function words beyond Lucene's short list (which keeps "my",
/// "when", "what"...): a question's grammar is not what it is about.
const MORE_STOP_WORDS: &str = "i me my myself we our ours ourselves you your yours yourself \
    yourselves he him his himself she her hers herself it its itself they them their theirs \
    themselves what which who whom whose this that these those am is are was were be been being \
    have has had having do does did doing a an the and but if or because as until while of at \
    by for with about against between into through during before after above below to from up \
    down in out on off over under again further then once here there when where why how all \
    any both each few more most other some such no nor not only own same so than too very s t \
    d ll m re ve can will just don should now would could also shall may might must let tell";

/// Lower case, stop words of both languages (a query is matched against
/// both fields), accents folded, then the language's stemmer.
fn analyzer(lang: Language) -> TextAnalyzer {
    let mut builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            MORE_STOP_WORDS.split_whitespace().map(String::from),
        ))
        .dynamic();
    for stop in [Language::English, Language::French]
        .into_iter()
        .filter_map(StopWordFilter::new)
    {
        builder = builder.filter_dynamic(stop);
    }
    builder
        .filter_dynamic(AsciiFoldingFilter)
        .filter_dynamic(Stemmer::new(lang))
        .build()
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let key = b.add_u64_field("key", INDEXED | FAST);
    let principal = b.add_text_field("principal", STRING);
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let en = b.add_text_field("en", text("hermit_en"));
    let fr = b.add_text_field("fr", text("hermit_fr"));
    (
        b.build(),
        Fields {
            key,
            principal,
            en,
            fr,
        },
    )
}

impl TextIndex {
    /// Opens the index in `dir`, creating it if absent. A directory that
    /// holds something else (or an index from an incompatible version) is
    /// an error naming `hermit memory reindex`.
    pub(crate) fn open(dir: &Path) -> Result<Self, IndexError> {
        let err = |message: String| IndexError::Index {
            path: dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| err(e.to_string()))?;
        let index = Index::open_or_create(directory, schema).map_err(|e| {
            err(format!(
                "{e}; move the directory away and run `hermit memory reindex` to rebuild it from hermit.db"
            ))
        })?;
        index
            .tokenizers()
            .register("hermit_en", analyzer(Language::English));
        index
            .tokenizers()
            .register("hermit_fr", analyzer(Language::French));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: tantivy::TantivyError| err(e.to_string()))?;
        Ok(Self {
            path: dir.to_path_buf(),
            index,
            reader,
            fields,
            writer: Mutex::new(()),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> IndexError {
        IndexError::Index {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// The writer, waiting up to `wait` for another process to let go.
    fn writer(&self, wait: std::time::Duration) -> Result<IndexWriter, IndexError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match self.index.writer_with_num_threads(1, WRITER_HEAP) {
                Ok(w) => return Ok(w),
                Err(tantivy::TantivyError::LockFailure(..)) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(IndexError::Busy);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    /// The last `memory_log` seq the committed index covers.
    pub(crate) fn last_seq(&self) -> Result<i64, IndexError> {
        let metas = self.index.load_metas().map_err(|e| self.err(e))?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0))
    }

    fn add(
        &self,
        w: &IndexWriter,
        key: Key,
        principal: &str,
        text: &str,
    ) -> Result<(), IndexError> {
        let f = &self.fields;
        w.add_document(doc!(
            f.key => key.packed(),
            f.principal => principal,
            f.en => text,
            f.fr => text,
        ))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Applies the log entries the index does not hold yet, in batches,
    /// each committed with its last seq; `progress(done, total)` after each.
    /// Returns without waiting when another process is writing
    /// (`wait` = zero) or waits up to `wait`.
    pub(crate) fn sync(
        &self,
        conn: &Connection,
        wait: std::time::Duration,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Synced, IndexError> {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = self.last_seq()?;
        let pending: i64 = conn.query_row(
            "SELECT count(*) FROM memory_log WHERE seq > ?1",
            [last],
            |r| r.get(0),
        )?;
        let mut synced = Synced {
            applied: 0,
            last_seq: last,
        };
        if pending == 0 {
            prune(conn, last)?;
            return Ok(synced);
        }
        let mut writer = self.writer(wait)?;
        // Another process may have indexed while this one waited.
        last = self.last_seq()?;
        let total = pending as usize;
        loop {
            let entries: Vec<(i64, String, i64, String)> = {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, kind, row_id, op FROM memory_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?;
                stmt.query_map(params![last, BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?
            };
            let Some(&(batch_last, ..)) = entries.last() else {
                break;
            };
            for (_, kind, row, op) in &entries {
                let Some(kind) = Kind::parse(kind) else {
                    continue;
                };
                let key = Key { kind, id: *row };
                if op != "i" {
                    writer.delete_term(Term::from_field_u64(self.fields.key, key.packed()));
                }
                if op == "d" {
                    continue;
                }
                if let Some((principal, text)) = row_text(conn, key)? {
                    self.add(&writer, key, &principal, &text)?;
                }
            }
            let mut commit = writer.prepare_commit().map_err(|e| self.err(e))?;
            commit.set_payload(&batch_last.to_string());
            commit.commit().map_err(|e| self.err(e))?;
            synced.applied += entries.len();
            synced.last_seq = batch_last;
            last = batch_last;
            progress(synced.applied.min(total), total);
        }
        writer.wait_merging_threads().map_err(|e| self.err(e))?;
        prune(conn, last)?;
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(synced)
    }

    /// Rebuilds the index from hermit.db: every row of the memory tables,
    /// as of one snapshot of the database.
    pub fn rebuild(
        &self,
        conn: &mut Connection,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<usize, IndexError> {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut writer = self.writer(std::time::Duration::from_secs(10))?;
        let tx = conn.transaction()?;
        let upto: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM memory_log", [], |r| {
            r.get(0)
        })?;
        let total: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM transcripts)
                  + (SELECT count(*) FROM facts) + (SELECT count(*) FROM notes)",
            [],
            |r| r.get(0),
        )?;
        writer.delete_all_documents().map_err(|e| self.err(e))?;
        let mut done = 0usize;
        for kind in Kind::ALL {
            let sql = format!(
                "SELECT id, principal, {} FROM {}",
                kind.text_sql(),
                kind.table()
            );
            let mut stmt = tx.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let key = Key {
                    kind,
                    id: r.get(0)?,
                };
                let principal: String = r.get(1)?;
                let text: String = r.get(2)?;
                self.add(&writer, key, &principal, &text)?;
                done += 1;
                if done.is_multiple_of(BATCH) {
                    progress(done, total as usize);
                }
            }
        }
        tx.commit()?;
        let mut commit = writer.prepare_commit().map_err(|e| self.err(e))?;
        commit.set_payload(&upto.to_string());
        commit.commit().map_err(|e| self.err(e))?;
        progress(done, total as usize);
        self.merge_all(writer)?;
        prune(conn, upto)?;
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(done)
    }

    /// Merges every segment into one and deletes the files no longer used:
    /// deleted documents are then gone from the disk, not only hidden.
    pub(crate) fn compact(&self) -> Result<(), IndexError> {
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = self.writer(std::time::Duration::from_secs(10))?;
        self.merge_all(writer)?;
        self.reader.reload().map_err(|e| self.err(e))?;
        Ok(())
    }

    fn merge_all(&self, mut writer: IndexWriter) -> Result<(), IndexError> {
        let ids = self
            .index
            .searchable_segment_ids()
            .map_err(|e| self.err(e))?;
        // A single segment with deletes is rewritten too: merging it
        // alone drops its deleted documents.
        if !ids.is_empty() {
            writer.merge(&ids).wait().map_err(|e| self.err(e))?;
        }
        writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| self.err(e))?;
        writer.wait_merging_threads().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The best `limit` rows for `query` (BM25 over both analysers),
    /// restricted to `principal` when given.
    pub(crate) fn search(
        &self,
        principal: Option<&str>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(Key, f32)>, IndexError> {
        if limit == 0 || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        self.reader.reload().map_err(|e| self.err(e))?;
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.fields.en, self.fields.fr]);
        // Words only: a person's question is not query syntax.
        let words: String = query
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let (text_query, _) = parser.parse_query_lenient(&words);
        let query: Box<dyn Query> = match principal {
            Some(p) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text_query),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.principal, p),
                        IndexRecordOption::Basic,
                    )),
                ),
            ])),
            None => text_query,
        };
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let column = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("key")
                .map_err(|e| self.err(e))?;
            if let Some(key) = column.first(addr.doc_id).and_then(Key::unpack) {
                out.push((key, score));
            }
        }
        Ok(out)
    }

    /// Documents in the index (deleted ones excluded).
    pub fn len(&self) -> u64 {
        let _ = self.reader.reload();
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> u64 {
        std::fs::read_dir(&self.path)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Log entries the index holds are no longer needed.
fn prune(conn: &Connection, upto: i64) -> Result<(), rusqlite::Error> {
    conn.execute("DELETE FROM memory_log WHERE seq <= ?1", [upto])?;
    Ok(())
}

/// The principal and the indexed text of a row, if it still exists.
fn row_text(conn: &Connection, key: Key) -> Result<Option<(String, String)>, rusqlite::Error> {
    let sql = format!(
        "SELECT principal, {} FROM {} WHERE id = ?1",
        key.kind.text_sql(),
        key.kind.table()
    );
    conn.prepare_cached(&sql)?
        .query_row([key.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}
