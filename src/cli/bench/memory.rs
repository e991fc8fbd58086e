//! `hermit bench memory` (scripts/bench-memory): memory at scale.
//!
//! - ingest: synthetic messages (realistic lengths, a vocabulary of a few
//!   hundred everyday words, names and numbers, made here from a fixed
//!   seed) written to hermit.db in transactions and indexed, in messages
//!   per second, end to end (the database row, its log entry, the index
//!   commit); then the rate with embeddings, from the embedding rate
//!   measured on real sentences;
//! - search latency, p50 and p99, full text and hybrid, at 100k and at the
//!   full size. The vectors of the big corpus are real embeddings of a
//!   sample, reused (embedding a million messages takes hours on this
//!   hardware); latency does not depend on their values;
//! - size on disk of hermit.db and of the index;
//! - recall@5 of hybrid search against full text alone, on 30 facts and
//!   paraphrased questions hidden among 5,000 messages, all embedded.

mod corpus;

use std::path::{Path, PathBuf};
use std::time::Instant;

use hermit::memory::{Key, Kind, Memory, MemorySettings, Mode, embed};
use hermit::models::Registry;
use rusqlite::params;
use serde::Serialize;

use crate::cli::{Global, human_size};
use corpus::{LABELLED, Rng, message, queries};

#[derive(Debug, Serialize)]
struct MemoryBench {
    pub messages: usize,
    pub ingest_messages_per_s: f64,
    pub embed_messages_per_s: f64,
    pub ingest_with_embeddings_messages_per_s: f64,
    pub latency: Vec<Latency>,
    pub db_bytes: u64,
    pub index_bytes: u64,
    pub recall_at_5_text: f64,
    pub recall_at_5_hybrid: f64,
    pub labelled_questions: usize,
    pub distractors: usize,
}

#[derive(Debug, Serialize)]
struct Latency {
    pub corpus: usize,
    pub mode: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub queries: usize,
}

/// `hermit bench memory` (scripts/bench-memory).
pub fn run(global: &Global, json: bool, messages: usize, dir: Option<&Path>) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let embeddings =
        Registry::for_config(&config).resolve_embeddings(&config.memory.embedding_model)?;
    let scratch = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile_dir(d)?
        }
        None => tempfile_dir(&std::env::temp_dir())?,
    };
    let result = measure(&scratch, &embeddings, messages.max(1000), |m| {
        eprintln!("  {m}")
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let r = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "ingest: {:.0} messages/s ({} messages, hermit.db + index, no embeddings)",
        r.ingest_messages_per_s, r.messages
    );
    println!(
        "embeddings: {:.0} messages/s; ingest with embeddings: {:.0} messages/s",
        r.embed_messages_per_s, r.ingest_with_embeddings_messages_per_s
    );
    println!(
        "{:>9}  {:<10} {:>9} {:>9}",
        "corpus", "search", "p50 ms", "p99 ms"
    );
    for l in &r.latency {
        println!(
            "{:>9}  {:<10} {:>9.2} {:>9.2}",
            l.corpus, l.mode, l.p50_ms, l.p99_ms
        );
    }
    println!(
        "size on disk at {}: hermit.db {}, index {}",
        r.messages,
        human_size(r.db_bytes),
        human_size(r.index_bytes)
    );
    println!(
        "recall@5 on {} paraphrased questions among {} messages: full text {:.2}, hybrid {:.2}",
        r.labelled_questions, r.distractors, r.recall_at_5_text, r.recall_at_5_hybrid
    );
    Ok(())
}

/// A new directory inside `parent`, named for this process.
fn tempfile_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    let d = parent.join(format!("hermit-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn insert_messages(
    mem: &Memory,
    rng: &mut Rng,
    n: usize,
    first_ts: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut conn = mem.conn()?;
    let mut ids = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO messages (conversation, principal, sender, room, role, body, ts)
                 VALUES (?1, 'owner', ?2, '!room:box', ?3, ?4, ?5)",
            )?;
            for _ in 0..10_000.min(n - done) {
                let i = (first_ts as usize + done) as i64;
                let user = rng.below(2) == 0;
                stmt.execute(params![
                    format!("matrix:!room:box:{}", i / 50),
                    if user { "@owner:box" } else { "hermit" },
                    if user { "user" } else { "assistant" },
                    message(rng),
                    1_700_000_000_000 + i * 60_000,
                ])?;
                ids.push(tx.last_insert_rowid());
                done += 1;
            }
        }
        tx.commit()?;
    }
    Ok(ids)
}

fn latency(mem: &Memory, qs: &[String], mode: Mode) -> anyhow::Result<(f64, f64)> {
    // One warm-up query (the searcher, the embedder's first run).
    mem.search("owner", &qs[0], 5, mode, None)?;
    let mut ms = Vec::with_capacity(qs.len());
    for q in qs {
        let t = Instant::now();
        mem.search("owner", q, 5, mode, None)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let m = e.metadata().ok();
                    match m {
                        Some(m) if m.is_dir() => dir_size(&e.path()),
                        Some(m) => m.len(),
                        None => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Runs the benchmark in `dir` (a scratch directory), `messages` in all.
fn measure(
    dir: &Path,
    embeddings: &Path,
    messages: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<MemoryBench> {
    let mut rng = Rng(0x9E3779B97F4A7C15);

    // Recall@5 and the embedding rate, on a small corpus embedded for real.
    let small_dir = dir.join("labelled");
    std::fs::create_dir_all(&small_dir)?;
    let small = Memory::open(
        &small_dir,
        Some(embeddings.to_path_buf()),
        MemorySettings::default(),
    )?;
    const DISTRACTORS: usize = 5_000;
    progress(&format!(
        "labelled set: {} facts among {DISTRACTORS} messages",
        LABELLED.len()
    ));
    let distractor_ids = insert_messages(&small, &mut rng, DISTRACTORS, 0)?;
    let mut fact_ids = Vec::new();
    for (fact, _) in LABELLED {
        fact_ids.push(small.remember("owner", fact, None, false, None)?);
    }
    small.sync_index(std::time::Duration::from_secs(30), |_, _| {})?;
    let conn = small.conn()?;
    let t = Instant::now();
    let mut embedded = 0;
    loop {
        let k = small.embed_pending(&conn, 256)?;
        if k == 0 {
            break;
        }
        embedded += k;
        if embedded % 1024 < 256 {
            progress(&format!("embedded {embedded}"));
        }
    }
    let embed_rate = embedded as f64 / t.elapsed().as_secs_f64();
    let (mut hit_text, mut hit_hybrid) = (0, 0);
    for ((_, question), id) in LABELLED.iter().zip(&fact_ids) {
        let key = Key {
            kind: Kind::Fact,
            id: *id,
        };
        let found = |mode| -> anyhow::Result<bool> {
            Ok(small
                .search("owner", question, 5, mode, None)?
                .iter()
                .any(|i| i.key == key))
        };
        hit_text += found(Mode::Text)? as usize;
        hit_hybrid += found(Mode::Hybrid)? as usize;
    }
    // Real vectors of the distractors, reused for the big corpus.
    let sample: Vec<Vec<f32>> = {
        let mut stmt = conn.prepare("SELECT embedding FROM messages ORDER BY id")?;
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .filter_map(|b| b.ok().and_then(|b| embed::from_blob(&b)))
            .collect()
    };
    drop(conn);
    anyhow::ensure!(
        sample.len() == distractor_ids.len(),
        "every distractor has a vector"
    );

    // Ingest and latency at scale, full text.
    let big_dir = dir.join("big");
    std::fs::create_dir_all(&big_dir)?;
    let big = Memory::open(
        &big_dir,
        Some(embeddings.to_path_buf()),
        MemorySettings::default(),
    )?;
    let checkpoints: Vec<usize> = [100_000, messages]
        .into_iter()
        .filter(|&c| c <= messages)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let qs = queries(&mut rng, 300);
    let mut ingest_secs = 0.0;
    let mut ids: Vec<i64> = Vec::with_capacity(messages);
    let mut lat = Vec::new();
    for &upto in &checkpoints {
        while ids.len() < upto {
            let n = 100_000.min(upto - ids.len());
            let t = Instant::now();
            let new = insert_messages(&big, &mut rng, n, ids.len() as i64)?;
            big.sync_index(std::time::Duration::from_secs(30), |_, _| {})?;
            ingest_secs += t.elapsed().as_secs_f64();
            ids.extend(new);
            progress(&format!(
                "ingested {} messages ({:.0}/s so far)",
                ids.len(),
                ids.len() as f64 / ingest_secs
            ));
        }
        let (p50, p99) = latency(&big, &qs, Mode::Text)?;
        lat.push(Latency {
            corpus: upto,
            mode: "full text",
            p50_ms: p50,
            p99_ms: p99,
            queries: qs.len(),
        });
        let keys: Vec<Key> = ids
            .iter()
            .map(|&id| Key {
                kind: Kind::Message,
                id,
            })
            .collect();
        let mut data = Vec::with_capacity(ids.len() * embed::DIMS);
        for i in 0..ids.len() {
            data.extend_from_slice(&sample[i % sample.len()]);
        }
        big.preload_vectors("owner", keys, data);
        let hq = &qs[..100];
        let (p50, p99) = latency(&big, hq, Mode::Hybrid)?;
        lat.push(Latency {
            corpus: upto,
            mode: "hybrid",
            p50_ms: p50,
            p99_ms: p99,
            queries: hq.len(),
        });
        big.preload_vectors("owner", Vec::new(), Vec::new());
        progress(&format!("searched at {upto}"));
    }
    let db_bytes = ["hermit.db", "hermit.db-wal"]
        .iter()
        .map(|f| {
            std::fs::metadata(big_dir.join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let ingest_rate = messages as f64 / ingest_secs;
    Ok(MemoryBench {
        messages,
        ingest_messages_per_s: ingest_rate,
        embed_messages_per_s: embed_rate,
        ingest_with_embeddings_messages_per_s: 1.0 / (1.0 / ingest_rate + 1.0 / embed_rate),
        latency: lat,
        db_bytes,
        index_bytes: dir_size(&big_dir.join("memory-index")),
        recall_at_5_text: hit_text as f64 / LABELLED.len() as f64,
        recall_at_5_hybrid: hit_hybrid as f64 / LABELLED.len() as f64,
        labelled_questions: LABELLED.len(),
        distractors: DISTRACTORS,
    })
}
