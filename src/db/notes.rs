//! Each person's notes in hermit.db (the `notes` table, which memory also
//! indexes for search): every statement the `notes` tool needs, so that
//! the tool only reads its arguments and writes its answer.

use rusqlite::{Connection, OptionalExtension, params};

/// A note that matched a search: its title, its text, and the untrusted
/// source of the turn it was written in, if any.
pub(crate) type Found = (String, String, Option<String>);

/// Creates `who`'s note `title`. False: one of that title exists.
pub(crate) fn create(
    db: &Connection,
    who: &str,
    title: &str,
    text: &str,
    taint: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let n = db.execute(
        "INSERT INTO notes (title, body, created_at, updated_at, taint, principal) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
         ON CONFLICT(principal, title) DO NOTHING",
        params![title, text, now, taint, who],
    )?;
    Ok(n == 1)
}

/// Adds `text` on a line of its own to `who`'s note `title` (a note
/// written in a tainted turn keeps the first label). False: no such note.
pub(crate) fn append(
    db: &Connection,
    who: &str,
    title: &str,
    text: &str,
    taint: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let body: Option<String> = db
        .query_row(
            "SELECT body FROM notes WHERE title = ?1 AND principal = ?2",
            [title, who],
            |r| r.get(0),
        )
        .optional()?;
    let Some(body) = body else {
        return Ok(false);
    };
    let joined = if body.is_empty() {
        text.to_string()
    } else {
        format!("{body}\n{text}")
    };
    db.execute(
        "UPDATE notes SET body = ?1, updated_at = ?2, taint = coalesce(taint, ?4) WHERE title = ?3 AND principal = ?5",
        params![joined, now, title, taint, who],
    )?;
    Ok(true)
}

/// `who`'s notes whose title or text contains `text` (literally: `%` and
/// `_` are themselves), the latest first, at most 20.
pub(crate) fn search(db: &Connection, who: &str, text: &str) -> rusqlite::Result<Vec<Found>> {
    let pattern = format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = db.prepare(
        "SELECT title, body, taint FROM notes
         WHERE principal = ?2 AND (title LIKE ?1 ESCAPE '\\' OR body LIKE ?1 ESCAPE '\\')
         ORDER BY updated_at DESC LIMIT 20",
    )?;
    stmt.query_map([pattern.as_str(), who], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?
    .collect()
}

/// `who`'s notes, the latest first: title and length in characters.
pub(crate) fn list(db: &Connection, who: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = db.prepare(
        "SELECT title, length(body) FROM notes WHERE principal = ?1 ORDER BY updated_at DESC",
    )?;
    stmt.query_map([who], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}
