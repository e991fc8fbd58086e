//! `notes`: each person's notes, kept in hermit.db (`db::notes` holds the
//! statements): create, append, search, list. A member's notes are theirs;
//! the owner's are the owner's.

use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};
use crate::db::notes;

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
                if !notes::create(&db, who, title, text, taint, now).map_err(failed)? {
                    return Err(failed(format!(
                        "a note titled {title:?} exists; append to it"
                    )));
                }
                format!("created note {title:?}")
            }
            "append" => {
                need_title()?;
                if !notes::append(&db, who, title, text, taint, now).map_err(failed)? {
                    return Err(failed(format!("no note titled {title:?}; create it first")));
                }
                format!("appended to note {title:?}")
            }
            "search" => {
                let rows = notes::search(&db, who, text).map_err(failed)?;
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
                let rows = notes::list(&db, who).map_err(failed)?;
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
        Ok(ToolOutput {
            own: false,
            ok: true,
            content,
        })
    }
}
