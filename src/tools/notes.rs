//! `notes`: each person's notes, kept in hermit.db: create, append, search,
//! list. A member's notes are theirs; the owner's are the owner's.

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};

pub(crate) struct Notes;

fn failed(message: impl std::fmt::Display) -> ToolError {
    ToolError::failed("notes", message)
}

impl Tool for Notes {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "notes",
            description: "The user's notes: create a note, append to one, search them, or list them.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["create", "append", "search", "list"]},
                    "title": {"type": "string", "description": "The note's title (create, append)", "maxLength": 200},
                    "text": {"type": "string", "description": "The text to write (create, append) or to look for (search)", "maxLength": 100000}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, args: &Value) -> Vec<Effect> {
        // Notes are the person's own, in Hermit's memory (not the
        // workspace): writing one is like `remember`, and does not ask
        // (in a tainted turn it asks, as every effect beyond read does).
        match arg_str(args, "action") {
            Some("create") | Some("append") => vec![Effect::Remember],
            _ => vec![Effect::Read],
        }
    }

    /// A note written in a tainted turn keeps the label of the untrusted
    /// source; reading it back shows the label.
    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let taint = meta.taint.as_deref();
        let who = meta.principal_key();
        let db = crate::db::open(&ctx.data_dir.join("hermit.db")).map_err(failed)?;
        let title = arg_str(args, "title").map(str::trim).unwrap_or_default();
        let text = arg_str(args, "text").unwrap_or_default();
        let now = crate::vocab::now();
        let need_title = || {
            if title.is_empty() {
                Err(failed("a title is required"))
            } else {
                Ok(())
            }
        };
        let content = match arg_str(args, "action").unwrap_or_default() {
            "create" => {
                need_title()?;
                let n = db
                    .execute(
                        "INSERT INTO notes (title, body, created_at, updated_at, taint, principal) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                         ON CONFLICT(principal, title) DO NOTHING",
                        params![title, text, now, taint, who],
                    )
                    .map_err(failed)?;
                if n == 0 {
                    return Err(failed(format!(
                        "a note titled {title:?} exists; append to it"
                    )));
                }
                format!("created note {title:?}")
            }
            "append" => {
                need_title()?;
                let body: Option<String> = db
                    .query_row(
                        "SELECT body FROM notes WHERE title = ?1 AND principal = ?2",
                        [title, who],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(failed)?;
                let Some(body) = body else {
                    return Err(failed(format!("no note titled {title:?}; create it first")));
                };
                let joined = if body.is_empty() {
                    text.to_string()
                } else {
                    format!("{body}\n{text}")
                };
                db.execute(
                    "UPDATE notes SET body = ?1, updated_at = ?2, taint = coalesce(taint, ?4) WHERE title = ?3 AND principal = ?5",
                    params![joined, now, title, taint, who],
                )
                .map_err(failed)?;
                format!("appended to note {title:?}")
            }
            "search" => {
                let pattern = format!(
                    "%{}%",
                    text.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                let mut stmt = db
                    .prepare(
                        "SELECT title, body, taint FROM notes
                         WHERE principal = ?2 AND (title LIKE ?1 ESCAPE '\\' OR body LIKE ?1 ESCAPE '\\')
                         ORDER BY updated_at DESC LIMIT 20",
                    )
                    .map_err(failed)?;
                let rows: Vec<(String, String, Option<String>)> = stmt
                    .query_map([pattern.as_str(), who], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(failed)?
                    .collect::<Result<_, _>>()
                    .map_err(failed)?;
                if rows.is_empty() {
                    format!("no note mentions {text:?}")
                } else {
                    rows.iter()
                        .map(|(t, b, taint)| match taint {
                            Some(src) => format!(
                                "# {t}\n(written in a turn that had read untrusted text: {src})\n{b}"
                            ),
                            None => format!("# {t}\n{b}"),
                        })
                        .collect::<Vec<_>>()
                        .join("\n\n")
                }
            }
            "list" => {
                let mut stmt = db
                    .prepare(
                        "SELECT title, length(body) FROM notes WHERE principal = ?1 ORDER BY updated_at DESC",
                    )
                    .map_err(failed)?;
                let rows: Vec<(String, i64)> = stmt
                    .query_map([who], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(failed)?
                    .collect::<Result<_, _>>()
                    .map_err(failed)?;
                if rows.is_empty() {
                    "there are no notes".to_string()
                } else {
                    rows.iter()
                        .map(|(t, n)| format!("{t} ({n} characters)"))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
            other => return Err(failed(format!("unknown action {other}"))),
        };
        Ok(ToolOutput { ok: true, content })
    }
}
