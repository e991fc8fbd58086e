//! Reading the model's output: where a tool call starts (so it is never
//! shown as text) and the call itself, in every form small models write.

use serde_json::Value;

use crate::inference::{TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::tools::ToolCall;

/// How much of `text` is reply rather than (the start of) a tool call.
pub(super) fn visible_len(text: &str) -> usize {
    if let Some(i) = text.find(TOOL_CALL_OPEN) {
        return i;
    }
    // Hold back a tail that could be the beginning of the tag.
    for k in (1..TOOL_CALL_OPEN.len()).rev() {
        if text.len() >= k
            && text.is_char_boundary(text.len() - k)
            && TOOL_CALL_OPEN.starts_with(&text[text.len() - k..])
        {
            return text.len() - k;
        }
    }
    text.len()
}

/// Finds a tool call in the model's output: tagged (`<tool_call>{...}`),
/// fenced (```json {...} ```), or a bare JSON object with `name` and
/// `arguments`. Returns the text before it and the call.
pub fn parse_tool_call(text: &str) -> Option<(String, ToolCall)> {
    let (before, json) = if let Some(i) = text.find(TOOL_CALL_OPEN) {
        let rest = &text[i + TOOL_CALL_OPEN.len()..];
        let end = rest.find(TOOL_CALL_CLOSE).unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else if let Some(i) = text.find("```json") {
        let rest = &text[i + 7..];
        let end = rest.find("```").unwrap_or(rest.len());
        (&text[..i], rest[..end].trim())
    } else {
        let t = text.trim();
        if !t.starts_with('{') {
            return None;
        }
        ("", t)
    };
    let v: Value = serde_json::from_str(json).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
        None => Value::Object(Default::default()),
    };
    Some((before.to_string(), ToolCall { name, arguments }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_found_in_every_form() {
        let (b, c) = parse_tool_call(
            "Let me look.<tool_call>\n{\"name\": \"files\", \"arguments\": {\"op\": \"list\"}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(b, "Let me look.");
        assert_eq!(c.name, "files");
        assert_eq!(c.arguments["op"], "list");
        let (_, c) =
            parse_tool_call("```json\n{\"name\": \"time\", \"arguments\": {}}\n```").unwrap();
        assert_eq!(c.name, "time");
        let (_, c) = parse_tool_call(
            "{\"name\": \"shell\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}",
        )
        .unwrap();
        assert_eq!(c.arguments["command"], "ls");
        assert!(parse_tool_call("Paris is the capital of France.").is_none());
        assert!(parse_tool_call("{not json").is_none());
    }

    #[test]
    fn a_tool_call_being_written_is_not_shown() {
        assert_eq!(visible_len("Hello <tool"), 6);
        assert_eq!(visible_len("Hello <tool_call>{\"na"), 6);
        assert_eq!(visible_len("a < b"), 5);
    }
}
