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

use std::path::Path;
use std::time::Instant;

use rusqlite::params;
use serde::Serialize;

use crate::memory::{Key, Kind, Memory, MemorySettings, Mode, embed};

#[derive(Debug, Serialize)]
pub struct MemoryBench {
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
pub struct Latency {
    pub corpus: usize,
    pub mode: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub queries: usize,
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const SUBJECTS: &[&str] = &[
    "I",
    "we",
    "my sister",
    "my brother",
    "mum",
    "dad",
    "the kids",
    "Paul",
    "Sophie",
    "the team",
    "my boss",
    "the neighbours",
    "Karim",
    "Julie",
    "grandma",
    "Tom",
    "Emma",
    "our landlord",
    "the doctor",
    "Ben",
];
const VERBS: &[&str] = &[
    "need to",
    "want to",
    "should",
    "forgot to",
    "promised to",
    "will",
    "might",
    "have to",
    "would like to",
    "are going to",
    "tried to",
    "asked me to",
];
const ACTIONS: &[&str] = &[
    "call", "visit", "book", "buy", "fix", "clean", "check", "pay", "send", "cancel", "plan",
    "cook", "read", "write to", "email", "order", "return", "water", "paint", "move", "pick up",
    "drop off", "renew", "compare", "organise", "repair", "print", "sign", "look for", "sell",
];
const OBJECTS: &[&str] = &[
    "the dentist",
    "the car",
    "a table for four",
    "train tickets",
    "the garden",
    "the invoice",
    "groceries",
    "the roof",
    "a birthday present",
    "the electricity bill",
    "the printer",
    "flowers",
    "the report",
    "the insurance",
    "a new laptop",
    "the washing machine",
    "the school forms",
    "the hotel in Lyon",
    "the bike",
    "the vet",
    "a cake",
    "the boiler",
    "concert tickets",
    "the tax return",
    "the kitchen",
    "the bathroom tiles",
    "a babysitter",
    "the contract",
    "the passport photos",
    "the library books",
    "the heating",
    "some paint",
    "the fence",
    "a plumber",
    "the phone plan",
    "the bank",
    "the pharmacy",
    "a new mattress",
];
const TIMES: &[&str] = &[
    "tomorrow",
    "on Monday",
    "next week",
    "tonight",
    "this weekend",
    "before Friday",
    "at 9",
    "in the morning",
    "after lunch",
    "in March",
    "on the 12th",
    "before the holidays",
    "by the end of the month",
    "on Sunday",
    "later today",
    "next Tuesday",
    "at half past six",
];
const FILLERS: &[&str] = &[
    "It was raining all day.",
    "The meeting ran late again.",
    "Can you remind me?",
    "Thanks!",
    "ok",
    "sounds good",
    "No rush.",
    "The traffic was terrible this morning.",
    "I am so tired today.",
    "Let me know what you think.",
    "That restaurant near the station was great.",
    "The weather should be better on Saturday.",
    "We watched a documentary about whales last night.",
    "Prices went up again at the supermarket.",
    "The train was cancelled, so I worked from home.",
    "Remember the last time this happened?",
    "I finished the book, the ending was strange.",
    "The new colleague seems nice.",
    "My back hurts after gardening.",
    "We should go hiking in the mountains this summer.",
];

fn sentence(r: &mut Rng) -> String {
    match r.below(10) {
        0..=5 => format!(
            "{} {} {} {} {}.",
            r.pick(SUBJECTS),
            r.pick(VERBS),
            r.pick(ACTIONS),
            r.pick(OBJECTS),
            r.pick(TIMES)
        ),
        6 => format!(
            "It costs {} euros, {} said.",
            5 + r.below(995),
            r.pick(SUBJECTS)
        ),
        _ => r.pick(FILLERS).to_string(),
    }
}

/// A chat message: mostly one or two sentences, sometimes a paragraph.
fn message(r: &mut Rng) -> String {
    let n = match r.below(20) {
        0..=9 => 1,
        10..=15 => 2,
        16..=18 => 3 + r.below(3),
        _ => 6 + r.below(6),
    };
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&sentence(r));
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => s,
    }
}

/// Facts and questions that say the same in other words.
const LABELLED: &[(&str, &str)] = &[
    (
        "My sister's birthday is on the 3rd of May",
        "When was my sibling born?",
    ),
    (
        "The wifi password at the cottage is written on the fridge door",
        "Where can I find the internet code for the holiday house?",
    ),
    (
        "I'm allergic to penicillin",
        "Which antibiotic can't I take?",
    ),
    (
        "Our car is a grey 2015 Skoda Octavia",
        "What vehicle do we drive?",
    ),
    (
        "The plumber Marc charges 60 euros an hour",
        "How much does the guy who repairs pipes cost?",
    ),
    (
        "I parked on level 3 of the station garage",
        "Where did I leave the vehicle?",
    ),
    (
        "Emma's school play is on Thursday evening",
        "When is my daughter's theatre performance?",
    ),
    (
        "I take my blood pressure pills every morning at 8",
        "When should I have my medication?",
    ),
    (
        "The spare house key is under the blue flower pot",
        "Where is the extra key to get in?",
    ),
    (
        "My passport expires in August 2027",
        "When does my travel document run out?",
    ),
    (
        "Grandma prefers tea with honey, never sugar",
        "How does my grandmother like her drink?",
    ),
    (
        "The dentist appointment was moved to the 14th",
        "When am I seeing the tooth doctor?",
    ),
    (
        "Our landlord is called Mr Dubois",
        "Who owns the flat we rent?",
    ),
    (
        "I lent my drill to the neighbour Karim",
        "Who has my power tool?",
    ),
    (
        "The kids' football training is on Wednesdays at 5",
        "When do the children play soccer?",
    ),
    (
        "My bank advisor is Claire at the Rivoli branch",
        "Who handles my account at the bank?",
    ),
    (
        "We are vegetarian, except Tom who eats fish",
        "Does anyone in the family eat seafood?",
    ),
    (
        "The boiler was serviced last October",
        "When was the heating system last inspected?",
    ),
    (
        "I want to learn Spanish before the trip to Seville",
        "Which language was I planning to study?",
    ),
    (
        "The cat needs her vaccine booster in January",
        "When does our pet need a shot?",
    ),
    (
        "My gym membership renews automatically on the 1st",
        "When is the fitness club fee charged?",
    ),
    ("Léa is allergic to peanuts", "What food makes Léa ill?"),
    (
        "Book club meets at Julie's place this month",
        "Where is the reading group gathering?",
    ),
    (
        "The recycling bins go out on Tuesday night",
        "When do I put the trash out?",
    ),
    (
        "I promised to help Ben move flats on Saturday",
        "What did I commit to doing for Ben at the weekend?",
    ),
    (
        "The insurance claim number is 88-2041",
        "What's the reference for my insurer?",
    ),
    (
        "Our wedding anniversary is the 21st of June",
        "When did we get married?",
    ),
    ("My running shoes are size 43", "What size are my trainers?"),
    (
        "The electrician is coming Friday between 8 and 10",
        "When will the person fixing the wiring arrive?",
    ),
    (
        "I stopped drinking coffee after 2pm to sleep better",
        "Why do I avoid caffeine in the afternoon?",
    ),
];

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

fn queries(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match rng.below(3) {
            0 => format!("{} {}", rng.pick(ACTIONS), rng.pick(OBJECTS)),
            1 => format!("when did {} {}", rng.pick(SUBJECTS), rng.pick(ACTIONS)),
            _ => format!("{} {}", rng.pick(OBJECTS), rng.pick(TIMES)),
        })
        .collect()
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
pub fn run(
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
