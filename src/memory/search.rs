//! Finding what was kept: full-text search (tantivy), semantic search
//! over the embeddings, fused; and recall, what is relevant to a new
//! message, composed for the prompt in Hermit's own words.

use super::*;

impl Memory {
    /// The best `limit` rows by cosine to `query`, for `principal`.
    fn vector_search(
        &self,
        principal: &str,
        query: &[f32],
        limit: usize,
    ) -> Result<Vec<(Key, f32)>, MemoryError> {
        let mut cache = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
        if !cache.contains_key(principal) {
            let conn = self.conn()?;
            let mut vs = Vectors::default();
            for kind in Kind::ALL {
                let sql = format!(
                    "SELECT id, embedding FROM {} WHERE principal = ?1 AND embedding IS NOT NULL",
                    kind.table()
                );
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query([principal])?;
                while let Some(r) = rows.next()? {
                    let blob = r.get_ref(1)?.as_blob().unwrap_or_default();
                    if let Some(v) = embed::from_blob(blob) {
                        vs.keys.push(Key {
                            kind,
                            id: r.get(0)?,
                        });
                        vs.data.extend_from_slice(&v);
                    }
                }
            }
            cache.insert(principal.to_string(), vs);
        }
        let vs = &cache[principal];
        Ok(top_k(
            vs.keys
                .iter()
                .zip(vs.data.chunks_exact(embed::DIMS))
                .map(|(k, v)| (*k, embed::dot(query, v))),
            limit,
        ))
    }

    /// Searches `principal`'s memory. `exclude`: a conversation whose
    /// messages are left out (the one being answered: it is in the prompt
    /// already).
    pub fn search(
        &self,
        principal: &str,
        query: &str,
        limit: usize,
        mode: Mode,
        exclude: Option<&str>,
    ) -> Result<Vec<Item>, MemoryError> {
        // Read one's own writes: what is not indexed yet is, first (unless
        // another process is writing the index right now).
        let conn = self.conn()?;
        match self.index.sync(&conn, Duration::ZERO, |_, _| {}) {
            Ok(_) | Err(index::IndexError::Busy) => {}
            Err(e) => return Err(e.into()),
        }
        let text_hits = self.index.search(Some(principal), query, CANDIDATES)?;
        let vector_hits = match (mode, self.embedder()) {
            (Mode::Hybrid, Some(e)) => {
                let q = e.embed_one(query)?;
                let mut hits = self.vector_search(principal, &q, CANDIDATES)?;
                hits.retain(|(_, sim)| *sim >= SEARCH_MIN_SIMILARITY);
                hits
            }
            _ => Vec::new(),
        };
        let mut fused: HashMap<Key, Fused> = HashMap::new();
        for (rank, (key, _)) in text_hits.iter().enumerate() {
            let e = fused.entry(*key).or_default();
            e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
            e.1 = Some(rank + 1);
        }
        for (rank, (key, sim)) in vector_hits.iter().enumerate() {
            let e = fused.entry(*key).or_default();
            e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
            e.2 = Some(rank + 1);
            e.3 = Some(*sim);
        }
        let mut ranked: Vec<_> = fused.into_iter().collect();
        ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.0.cmp(&b.0)));
        let mut out = Vec::new();
        for (key, (score, text_rank, vector_rank, similarity)) in ranked {
            if out.len() >= limit {
                break;
            }
            // Gone from the database but not yet from the index.
            let Some(mut item) = load_item(&conn, key)? else {
                continue;
            };
            if item.principal != principal {
                continue;
            }
            if exclude.is_some() && item.conversation.as_deref() == exclude {
                continue;
            }
            item.score = score;
            item.text_rank = text_rank;
            item.vector_rank = vector_rank;
            item.similarity = similarity;
            out.push(item);
        }
        Ok(out)
    }

    /// The memories to give the model before answering `text`: relevant
    /// (found by its words, or close in meaning), not already given in
    /// this conversation, bounded in number and in tokens, with their
    /// dates; untrusted ones fenced with their source.
    pub fn recall(
        &self,
        principal: &str,
        text: &str,
        conversation: &str,
        already: &HashSet<Key>,
    ) -> Result<Recall, MemoryError> {
        let found = self.search(
            principal,
            text,
            self.settings.recall_items * 3,
            Mode::Hybrid,
            Some(conversation),
        )?;
        let tz = crate::vocab::owner_timezone(&self.settings.timezone)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let budget = self.settings.recall_tokens * 4;
        let mut used = 0usize;
        let mut recall = Recall::default();
        let mut lines = Vec::new();
        for item in found {
            if recall.keys.len() >= self.settings.recall_items {
                break;
            }
            if already.contains(&item.key) || item.pinned {
                continue;
            }
            let relevant =
                item.text_rank.is_some() || item.similarity.is_some_and(|s| s >= MIN_SIMILARITY);
            if !relevant {
                continue;
            }
            let body = shorten(&item.text, 400);
            let line = match &item.origin {
                Some(src) => format!(
                    "- [{}, {}] {}",
                    describe_date(item.ts, &tz),
                    item.describe(),
                    fence(&Origin::Memory(src.clone()), &body)
                ),
                None => format!(
                    "- [{}, {}] {}",
                    describe_date(item.ts, &tz),
                    item.describe(),
                    body
                ),
            };
            if used + line.len() > budget && !lines.is_empty() {
                break;
            }
            used += line.len();
            if recall.taint.is_none() {
                recall.taint = item.origin.clone();
            }
            recall.keys.push(item.key);
            lines.push(line);
        }
        if !lines.is_empty() {
            let today = jiff::Timestamp::from_millisecond(crate::vocab::now_ms())
                .map(|t| t.to_zoned(tz.clone()).strftime("%A %-d %B %Y").to_string())
                .unwrap_or_default();
            recall.text = format!(
                "(Hermit's memory, recalled for the next message; today is {today}. \
                 Use it if it helps, and say when something was said if it matters.)\n{}",
                lines.join("\n")
            );
        }
        Ok(recall)
    }
}

/// The `k` best by score, best first.
pub(super) fn top_k(scored: impl Iterator<Item = (Key, f32)>, k: usize) -> Vec<(Key, f32)> {
    let mut best: Vec<(Key, f32)> = Vec::with_capacity(k + 1);
    for (key, s) in scored {
        if best.len() == k && best.last().is_some_and(|l| l.1 >= s) {
            continue;
        }
        let at = best.partition_point(|b| b.1 >= s);
        best.insert(at, (key, s));
        best.truncate(k);
    }
    best
}
