//! Everything held about one person, exported or forgotten: from the
//! database, the index and the embeddings, and the Matrix journal's copies.

use super::*;

impl Memory {
    /// Forgets rows: from hermit.db (pages overwritten), the Matrix
    /// journal's copies, the vectors and the index (merged, old files
    /// removed). `principal`: only that principal's rows. Returns what was
    /// forgotten.
    pub fn forget(&self, keys: &[Key], principal: Option<&str>) -> Result<Vec<Item>, MemoryError> {
        let mut conn = self.conn()?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        let mut gone = Vec::new();
        {
            let tx = conn.transaction()?;
            for key in keys {
                let Some(item) = load_item(&tx, *key)? else {
                    continue;
                };
                if principal.is_some_and(|p| p != item.principal) {
                    continue;
                }
                tx.execute(
                    &format!("DELETE FROM {} WHERE id = ?1", key.kind.table()),
                    [key.id],
                )?;
                if key.kind == Kind::Message {
                    // The Matrix channel's journal holds the same words.
                    tx.execute(
                        "UPDATE matrix_events SET body = '' WHERE body = ?1 AND (?2 IS NULL OR room_id = ?2)",
                        params![item.text, room_of(&item)],
                    )?;
                    tx.execute(
                        "UPDATE matrix_events SET reply = NULL WHERE reply = ?1 AND (?2 IS NULL OR room_id = ?2)",
                        params![item.text, room_of(&item)],
                    )?;
                }
                gone.push(item);
            }
            tx.commit()?;
        }
        if gone.is_empty() {
            return Ok(gone);
        }
        {
            let mut cache = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
            for item in &gone {
                if let Some(vs) = cache.get_mut(&item.principal)
                    && let Some(i) = vs.keys.iter().position(|k| *k == item.key)
                {
                    vs.keys.remove(i);
                    vs.data.drain(i * embed::DIMS..(i + 1) * embed::DIMS);
                }
            }
        }
        // A pinned fact was in system prompts, whose KV state the prompt
        // cache keeps on disk: drop that cache (it is rebuilt on use).
        if gone.iter().any(|i| i.pinned)
            && let Some(dir) = self.db_path.parent().map(|d| d.join("prompt-cache"))
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.index.sync(&conn, Duration::from_secs(30), |_, _| {})?;
        self.index.compact()?;
        // The deleted pages are zeroed in the WAL; copy them into the main
        // file and empty the WAL, so no old page remains in either.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(gone)
    }

    /// Everything held about `principal`, one JSON object per line: the
    /// memory rows, the conversations, and the Matrix journal's record of
    /// the events `matrix_id` sent (the principal's Matrix ID).
    pub fn export(
        &self,
        principal: &str,
        matrix_id: Option<&str>,
        out: &mut dyn std::io::Write,
    ) -> Result<usize, MemoryError> {
        let conn = self.conn()?;
        let mut n = 0;
        for kind in Kind::ALL {
            let ids: Vec<i64> = conn
                .prepare(&format!(
                    "SELECT id FROM {} WHERE principal = ?1 ORDER BY id",
                    kind.table()
                ))?
                .query_map([principal], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in ids {
                if let Some(item) = load_item(&conn, Key { kind, id })? {
                    let mut v = serde_json::to_value(&item).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        for k in ["score", "text_rank", "vector_rank", "similarity"] {
                            o.remove(k);
                        }
                    }
                    writeln!(out, "{v}").map_err(|e| {
                        MemoryError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
                    })?;
                    n += 1;
                }
            }
        }
        let convs: Vec<(String, Option<String>, i64)> = conn
            .prepare("SELECT id, room, started_at FROM conversations WHERE principal = ?1 ORDER BY started_at")?
            .query_map([principal], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut lines: Vec<serde_json::Value> = convs
            .into_iter()
            .map(|(id, room, started)| serde_json::json!({"kind": "conversation", "id": id, "room": room, "started_at": started, "principal": principal}))
            .collect();
        if let Some(sender) = matrix_id {
            let mut stmt = conn.prepare(
                "SELECT event_id, room_id, body, origin_ts, status, reply FROM matrix_events WHERE sender = ?1 ORDER BY origin_ts",
            )?;
            let events = stmt.query_map([sender], |r| {
                Ok(serde_json::json!({
                    "kind": "matrix_event", "event_id": r.get::<_, String>(0)?,
                    "room": r.get::<_, String>(1)?, "body": r.get::<_, String>(2)?,
                    "origin_ts": r.get::<_, i64>(3)?, "status": r.get::<_, String>(4)?,
                    "reply": r.get::<_, Option<String>>(5)?, "principal": principal,
                }))
            })?;
            for e in events {
                lines.push(e?);
            }
        }
        for v in lines {
            writeln!(out, "{v}").map_err(|e| {
                MemoryError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?;
            n += 1;
        }
        Ok(n)
    }
}
