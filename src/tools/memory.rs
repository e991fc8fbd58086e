//! `remember`, `recall`, `forget`: the model's hands on [`crate::memory`].
//!
//! Each acts on the memory of the person the turn is for, never anyone
//! else's. `forget` by id is irreversible (the owner confirms it through
//! the approval); by query it only lists what matches, with ids, so the
//! deletion that follows names exactly what goes.

use serde_json::{Value, json};

use super::{CallMeta, Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};
use crate::memory::{Item, Key, Mode};
use crate::vocab::{Origin, fence};

fn memory<'a>(
    ctx: &'a ToolContext,
    tool: &str,
) -> Result<&'a std::sync::Arc<crate::memory::Memory>, ToolError> {
    ctx.memory
        .as_ref()
        .ok_or_else(|| ToolError::failed(tool, "memory is off ([memory] enabled = false)"))
}

/// Items as lines for the model: id, date, what it is, the text (fenced
/// when it came from an untrusted source).
fn list(items: &[Item], tz: &str) -> String {
    let tz = crate::vocab::owner_timezone(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    items
        .iter()
        .map(|i| {
            let date = crate::memory::describe_date(i.ts, &tz);
            let text = match &i.origin {
                Some(src) => fence(&Origin::Memory(src.clone()), &i.text),
                None => i.text.clone(),
            };
            format!("{} ({date}): {text}", i.id)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) struct Remember;

impl Tool for Remember {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "remember",
            description: "Keep a fact the user tells you to remember (\"my sister's birthday is 3 May\"), to be recalled in later conversations. `pin`: keep it in mind in every conversation.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "fact": {"type": "string", "description": "The fact, as a short self-contained sentence", "maxLength": 2000},
                    "pin": {"type": "boolean", "description": "Always keep it in mind (standing instructions, key facts)"}
                },
                "required": ["fact"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Remember]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let mem = memory(ctx, "remember")?;
        let fact = arg_str(args, "fact").unwrap_or_default().trim();
        if fact.is_empty() {
            return Err(ToolError::failed("remember", "the fact is empty"));
        }
        let pin = args.get("pin").and_then(Value::as_bool).unwrap_or(false);
        let id = mem
            .remember(
                meta.principal_key(),
                fact,
                meta.taint.as_deref(),
                pin,
                meta.conversation
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref(),
            )
            .map_err(|e| ToolError::failed("remember", e))?;
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: format!(
                "remembered as fact:{id}{}: {fact}",
                if pin { " (pinned)" } else { "" }
            ),
        })
    }

    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        None
    }

    /// The audit log is append-only: it keeps the fact's hash, so that
    /// forgetting the fact leaves no copy of it.
    fn audit_arguments(&self, args: &Value) -> Value {
        let fact = arg_str(args, "fact").unwrap_or_default();
        json!({
            "fact_sha256": crate::trust::audit::sha256_hex(fact.as_bytes()),
            "pin": args.get("pin").cloned().unwrap_or(Value::Null),
        })
    }
}

pub(crate) struct Recall;

impl Tool for Recall {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "recall",
            description: "Search your memory of this user: facts they asked you to remember, their notes, voice notes and earlier conversations.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for", "maxLength": 500},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 20}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _args: &Value) -> Vec<Effect> {
        vec![Effect::Read]
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let mem = memory(ctx, "recall")?;
        let query = arg_str(args, "query").unwrap_or_default();
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(5) as usize;
        let items = mem
            .search(
                meta.principal_key(),
                query,
                limit,
                Mode::Hybrid,
                meta.conversation
                    .as_ref()
                    .map(ToString::to_string)
                    .as_deref(),
            )
            .map_err(|e| ToolError::failed("recall", e))?;
        let content = if items.is_empty() {
            format!("nothing in memory matches {query:?}")
        } else {
            list(&items, &ctx.timezone)
        };
        Ok(ToolOutput {
            own: false,
            ok: true,
            content,
        })
    }

    /// Memories can hold what came from untrusted sources: the results
    /// count as untrusted (the automatic recall before a turn is exact
    /// about it; this tool is conservative).
    fn output_origin(&self, _arguments: &Value) -> Option<Origin> {
        Some(Origin::Memory("search results".into()))
    }
}

pub(crate) struct Forget;

impl Tool for Forget {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "forget",
            description: "Forget memories for good. With `query`: list the matching memories and their ids (nothing is deleted). With `ids`: delete exactly those (the owner confirms).",
            parameters: json!({
                "type": "object",
                "properties": {
                    "ids": {"type": "string", "maxLength": 2000, "description": "Memory ids from recall or forget with a query, comma-separated, like fact:12, message:345"},
                    "query": {"type": "string", "maxLength": 500}
                },
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, args: &Value) -> Vec<Effect> {
        if ids_of(args).is_empty() {
            vec![Effect::Read]
        } else {
            vec![Effect::Remember, Effect::Irreversible]
        }
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        meta: &CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let mem = memory(ctx, "forget")?;
        let who = meta.principal_key();
        let ids = ids_of(args);
        if !ids.is_empty() {
            let keys = ids
                .iter()
                .map(|id| id.parse::<Key>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ToolError::failed("forget", e))?;
            let gone = mem
                .forget(&keys, Some(who))
                .map_err(|e| ToolError::failed("forget", e))?;
            let content = if gone.is_empty() {
                "none of these ids is in this user's memory; nothing was deleted".to_string()
            } else {
                format!(
                    "forgotten for good: {}",
                    gone.iter()
                        .map(|i| i.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Ok(ToolOutput {
                own: false,
                ok: !gone.is_empty(),
                content,
            });
        }
        let query = arg_str(args, "query").unwrap_or_default().trim();
        if query.is_empty() {
            return Err(ToolError::failed(
                "forget",
                "give `ids` to delete, or a `query` to find them",
            ));
        }
        let items = mem
            .search(who, query, 10, Mode::Hybrid, None)
            .map_err(|e| ToolError::failed("forget", e))?;
        let content = if items.is_empty() {
            format!("nothing in memory matches {query:?}")
        } else {
            format!(
                "These match (nothing deleted yet). To delete, call forget with the ids to remove:\n{}",
                list(&items, &ctx.timezone)
            )
        };
        Ok(ToolOutput {
            own: false,
            ok: true,
            content,
        })
    }

    fn output_origin(&self, args: &Value) -> Option<Origin> {
        if ids_of(args).is_empty() {
            Some(Origin::Memory("search results".into()))
        } else {
            None
        }
    }
}

/// The ids named in a `forget` call.
fn ids_of(args: &Value) -> Vec<&str> {
    arg_str(args, "ids")
        .unwrap_or_default()
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}
