//! Reading the model's output: where a tool call starts (so it is never
//! shown as text), the call itself in every form small models write, and
//! the reply cleaned of whatever call-shaped text could not be run.
//!
//! A small model writes a call as the template teaches (`<tool_call>{...}`),
//! in a ```json fence, as a bare object, with doubled braces (`{{...}}`),
//! inside a `<tools>` block, or followed by more text. Each is found and
//! run. Whatever is call-shaped but cannot be read (broken JSON, no name)
//! is never shown to a person: it is dropped, and the reply says so.

use serde_json::Value;

use crate::inference::{TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::tools::ToolCall;

/// What a piece of output starting at some position is.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Shape {
    /// The start of a tool call, a tools block or a special token.
    Call,
    /// Could still become one: hold it back until more is written.
    Maybe,
    /// Plain text.
    No,
}

const TOOLS_OPEN: &str = "<tools>";
/// Another family's call format (`<function name="recall" .../>`,
/// `<function=recall>{...}</function>`), which a small model sometimes
/// writes: never run (its arguments are not read), never shown.
const FUNCTION_OPEN: &str = "<function";

/// Matches `pattern` at the start of `rest`: `Call` when all of it is
/// there, `Maybe` when `rest` ends inside it, `No` otherwise.
fn literal(rest: &str, pattern: &str) -> Shape {
    if rest.starts_with(pattern) {
        Shape::Call
    } else if pattern.starts_with(rest) {
        Shape::Maybe
    } else {
        Shape::No
    }
}

/// An object that opens with `"name"` (or `{{"name"`), whitespace allowed.
fn object(rest: &str) -> Shape {
    let mut s = rest.strip_prefix('{').unwrap_or(rest);
    s = s.trim_start();
    if let Some(t) = s.strip_prefix('{') {
        s = t.trim_start();
    }
    if s.is_empty() {
        return Shape::Maybe;
    }
    literal(s, "\"name\"")
}

fn shape(rest: &str) -> Shape {
    if rest.starts_with('{') {
        return object(rest);
    }
    if let Some(word) = rest.strip_prefix("<|") {
        // A special token spelled out (`<|im_start|>`): `<|`, a word, `|>`.
        let end = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word.len());
        return match &word[end..] {
            "" | "|" => Shape::Maybe,
            w if w.starts_with("|>") => Shape::Call,
            _ => Shape::No,
        };
    }
    if rest.starts_with('<') {
        let shapes = [
            literal(rest, TOOL_CALL_OPEN),
            literal(rest, TOOLS_OPEN),
            literal(rest, FUNCTION_OPEN),
        ];
        return if shapes.contains(&Shape::Call) {
            Shape::Call
        } else if shapes.contains(&Shape::Maybe) {
            Shape::Maybe
        } else {
            Shape::No
        };
    }
    if rest.starts_with('`') {
        // A fence: ```, an optional "json", then an object.
        let Some(after) = rest.strip_prefix("```") else {
            return literal(rest, "```");
        };
        let lang_end = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        let lang = &after[..lang_end];
        let body = &after[lang_end..];
        if !lang.is_empty() && !"json".starts_with(&lang.to_ascii_lowercase()) {
            return Shape::No;
        }
        if body.is_empty() {
            return Shape::Maybe;
        }
        let body = body.trim_start();
        if body.is_empty() {
            return Shape::Maybe;
        }
        return if body.starts_with('{') {
            object(body)
        } else {
            Shape::No
        };
    }
    Shape::No
}

/// How much of `text` is reply rather than (the start of) a tool call:
/// everything before the first place where a call, a tools block or a
/// special token starts or may be starting.
pub(super) fn visible_len(text: &str) -> usize {
    for (i, c) in text.char_indices() {
        if matches!(c, '{' | '<' | '`') && shape(&text[i..]) != Shape::No {
            return i;
        }
    }
    text.len()
}

/// Finds a tool call in the model's output: tagged (`<tool_call>{...}`),
/// fenced (```json {...} ```), or a JSON object with `name` and
/// `arguments` anywhere in the text (doubled braces and trailing text
/// forgiven). Returns the text before it and the call.
pub fn parse_tool_call(text: &str) -> Option<(String, ToolCall)> {
    // Tagged or fenced: the first object after the tag or fence, whatever
    // the order of its keys.
    for opener in [TOOL_CALL_OPEN, TOOLS_OPEN, "```json", "```JSON", "```"] {
        if let Some(at) = text.find(opener) {
            let after = &text[at + opener.len()..];
            let body = after.trim_start();
            if body.starts_with('{')
                && let Some(call) = read_call(body)
            {
                return Some((text[..at].trim_end().to_string(), call));
            }
        }
    }
    // Bare: an object that opens with "name", or has "arguments" too.
    let mut from = 0;
    while let Some(off) = text[from..].find('{') {
        let i = from + off;
        if let Some(call) = read_call(&text[i..])
            && (object(&text[i..]) == Shape::Call || has_arguments(&text[i..]))
        {
            return Some((text[..start_of_call(text, i)].to_string(), call));
        }
        from = i + 1;
    }
    None
}

fn has_arguments(s: &str) -> bool {
    serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .is_some_and(|v| v.get("arguments").is_some() || v.get("parameters").is_some())
}

/// Where the call whose object starts at `i` really starts: before its
/// `<tool_call>` tag, its ```json fence or its `<tools>` tag, if any.
fn start_of_call(text: &str, i: usize) -> usize {
    let before = text[..i].trim_end();
    let before = before
        .strip_suffix('{')
        .map(str::trim_end)
        .unwrap_or(before);
    for opener in [TOOL_CALL_OPEN, TOOLS_OPEN, "```json", "```JSON", "```"] {
        if let Some(b) = before.strip_suffix(opener) {
            return b.trim_end().len();
        }
    }
    before.len()
}

/// The call in the object at the start of `s` (only its first JSON value
/// is read; a doubled opening brace is forgiven).
fn read_call(s: &str) -> Option<ToolCall> {
    let first = |s: &str| {
        serde_json::Deserializer::from_str(s)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
    };
    let v = first(s).or_else(|| {
        let inner = s.strip_prefix('{')?.trim_start();
        first(inner)
    })?;
    let name = v.get("name")?.as_str()?.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(Value::Null) | None => Value::Object(Default::default()),
        Some(a) => a.clone(),
    };
    Some(ToolCall { name, arguments })
}

/// Said in place of call-shaped text that could not be run.
/// A short reply that only refuses ("I'm sorry, but I can't assist with
/// that.", "Je ne peux pas vous aider avec cela."): what a small model
/// sometimes writes after a tool answered, though nothing was refused.
pub(super) fn is_refusal(reply: &str) -> bool {
    static REFUSAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)\b(can(no|')t|cannot|unable to|not able to|am not able to)\s+(assist|help|fulfil+|comply|do that|provide|access|recall|read|open|show|display|see)|je ne (peux|suis) pas (en mesure de )?(vous |t')?(aider|assister|répondre|obtenir|accéder|lire|ouvrir|afficher|montrer|fournir|donner)|ne peux pas vous aider",
        )
        .expect("a valid pattern")
    });
    let reply = reply.trim();
    reply.len() <= 300 && REFUSAL.is_match(reply)
}

/// A tool's result said as the reply, when the model would not say it.
pub(super) fn result_as_reply(tool: &str, content: &str) -> String {
    format!("Here is what `{tool}` answered:\n\n{}", content.trim())
}

pub(super) const DROPPED: &str = "(I tried to use a tool but wrote the call in a form I cannot run, so nothing was done. Could you ask again, perhaps in other words?)";

/// The reply as a person may see it: without call-shaped text (a call
/// that could not be read, a tools block, a special token such as
/// `<|im_start|>`, and whatever follows a new turn's opening). Returns the
/// cleaned text and whether something was dropped.
pub(super) fn clean_reply(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut dropped = false;
    let mut rest = text;
    loop {
        let cut = visible_len(rest);
        out.push_str(&rest[..cut]);
        if cut == rest.len() {
            break;
        }
        let tail = &rest[cut..];
        // A marker cut short at the end is plain text after all, unless
        // it is a call whose name was being written (dropped).
        let unfinished_call =
            (tail.starts_with('{') || tail.starts_with('`')) && tail.contains('"');
        if shape(tail) != Shape::Call && !unfinished_call {
            let one = tail.chars().next().map_or(1, char::len_utf8);
            out.push_str(&tail[..one]);
            rest = &tail[one..];
            continue;
        }
        // A new turn opened by the model itself ends the reply.
        if tail.starts_with("<|im_start|>") || tail.starts_with("<|endoftext|>") {
            dropped |= !out.trim().is_empty() || tail.len() > 12;
            break;
        }
        dropped = true;
        rest = &tail[skip_call(tail)..];
    }
    // Tokens such as `<|im_end|>` alone are not worth a sentence.
    let only_tokens = text.contains("<|") && !text.contains('{') && !text.contains("<tool");
    if dropped && (!only_tokens || out.trim().is_empty()) {
        // What was shown stays a prefix of the reply.
        if out.trim().is_empty() {
            return (DROPPED.to_string(), true);
        }
        return (format!("{out}\n\n{DROPPED}"), true);
    }
    (out.trim_end().to_string(), dropped)
}

/// The length of the call-shaped piece at the start of `s`: a tagged or
/// fenced block up to its closing, a special token, or an object up to
/// its matching brace (or the end).
fn skip_call(s: &str) -> usize {
    if s.starts_with("<|") {
        return s.find("|>").map(|i| i + 2).unwrap_or(s.len());
    }
    if s.starts_with(FUNCTION_OPEN) {
        let end = |close: &str| s.find(close).map(|i| i + close.len());
        return match (end("/>"), end("</function>")) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => s.len(),
        };
    }
    for (open, close) in [
        (TOOL_CALL_OPEN, TOOL_CALL_CLOSE),
        (TOOLS_OPEN, "</tools>"),
        ("```", "```"),
    ] {
        if let Some(body) = s.strip_prefix(open) {
            return body
                .find(close)
                .map(|i| open.len() + i + close.len())
                .unwrap_or(s.len());
        }
    }
    // An object: up to its matching brace, strings respected.
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, c) in s.char_indices() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth <= 0 {
                    let mut end = i + 1;
                    // The second brace of a doubled pair.
                    if s[end..].starts_with('}') {
                        end += 1;
                    }
                    return end;
                }
            }
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_family_s_call_format_is_dropped_not_shown() {
        let (reply, dropped) =
            clean_reply(r#"<function name="recall" arguments='{"query":"mon groupe sanguin"}'/>"#);
        assert!(dropped && !reply.contains("<function"), "{reply}");
        let (reply, dropped) = clean_reply("Sure. <function=time>{}</function>");
        assert!(
            dropped && reply.starts_with("Sure.") && !reply.contains("function"),
            "{reply}"
        );
        // Prose that names a function is prose.
        let (reply, dropped) = clean_reply("A <b>function</b> maps inputs to outputs.");
        assert!(!dropped && reply.contains("function"), "{reply}");
    }

    #[test]
    fn refusals_are_recognised_and_answers_are_not() {
        for r in [
            "I'm sorry, but I can't assist with that.",
            "I apologize, but I cannot assist with that request.",
            "Je suis désolé, mais je ne peux pas vous aider avec cela.",
            "Je suis désolé, mais je ne peux pas lire le contenu du fichier recette.txt.",
            "I apologize for the confusion. I'm not able to access or recall information from external sources.",
        ] {
            assert!(is_refusal(r), "{r}");
        }
        for a in [
            "2^10 is 1024.",
            "You have two files: plan.md and budget.xlsx.",
            "I can help with that: your reminder is set for 9:00.",
            "Il est 14 h 05.",
        ] {
            assert!(!is_refusal(a), "{a}");
        }
    }

    #[test]
    fn tool_calls_are_found_in_every_form() {
        let (b, c) = parse_tool_call(
            "Let me look.<tool_call>\n{\"name\": \"files\", \"arguments\": {\"op\": \"list\"}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(b, "Let me look.");
        assert_eq!(c.name, "files");
        assert_eq!(c.arguments["op"], "list");
        let (b, c) =
            parse_tool_call("Sure.\n```json\n{\"name\": \"time\", \"arguments\": {}}\n```")
                .unwrap();
        assert_eq!((b.as_str(), c.name.as_str()), ("Sure.", "time"));
        let (_, c) = parse_tool_call(
            "{\"name\": \"shell\", \"arguments\": \"{\\\"command\\\": \\\"ls\\\"}\"}",
        )
        .unwrap();
        assert_eq!(c.arguments["command"], "ls");
        assert!(parse_tool_call("Paris is the capital of France.").is_none());
        assert!(parse_tool_call("{not json").is_none());
        assert!(parse_tool_call("In Rust: fn f() { x }").is_none());
    }

    /// The malformed calls the default model was seen writing.
    #[test]
    fn malformed_calls_are_recovered() {
        let (b, c) = parse_tool_call(
            "{{\"name\": \"remember\", \"arguments\": {\"fact\": \"bicycle lock code is 4821\"}}}",
        )
        .unwrap();
        assert_eq!((b.as_str(), c.name.as_str()), ("", "remember"));
        assert_eq!(c.arguments["fact"], "bicycle lock code is 4821");
        let (_, c) = parse_tool_call(
            "<tools>\n{\"name\": \"calculate\", \"parameters\": {\"expression\": \"5 mi in km\"}}\n</tools>",
        )
        .unwrap();
        assert_eq!(c.arguments["expression"], "5 mi in km");
        let (_, c) = parse_tool_call(
            "{\"name\": \"list_files\", \"arguments\": {} }\nThis lists your files.",
        )
        .unwrap();
        assert_eq!(c.name, "list_files");
        let (b, c) = parse_tool_call("I'll check. { \"name\" : \"time\" }").unwrap();
        assert_eq!(
            (b.as_str(), c.arguments.clone()),
            ("I'll check.", serde_json::json!({}))
        );
    }

    #[test]
    fn a_tool_call_being_written_is_not_shown() {
        assert_eq!(visible_len("Hello <tool"), 6);
        assert_eq!(visible_len("Hello <tool_call>{\"na"), 6);
        assert_eq!(visible_len("a < b"), 5);
        assert_eq!(visible_len("Sure! {"), 6);
        assert_eq!(visible_len("Sure! {{\"nam"), 6);
        assert_eq!(visible_len("Sure! ```js"), 6);
        assert_eq!(visible_len("Sure! ```json\n{\"name"), 6);
        assert_eq!(visible_len("x <|im_st"), 2);
        // Plain text once it cannot be a call any more.
        assert_eq!(visible_len("a {b} c"), 7);
        assert_eq!(visible_len("```python\nprint(1)"), 18);
        assert_eq!(visible_len("{\"x\": 1}"), 8);
    }

    #[test]
    fn call_shaped_text_is_never_shown() {
        let (c, d) = clean_reply("Here it is: {\"name\": \"remember\", \"arguments\": {broken");
        assert!(
            d && c.starts_with("Here it is:") && c.contains(DROPPED),
            "{c}"
        );
        assert!(!c.contains("remember"));
        let (c, d) = clean_reply("Hello!<|im_end|>");
        assert_eq!((c.as_str(), d), ("Hello!", true));
        let (c, _) = clean_reply("Done.\n<|im_start|>user\nmore");
        assert!(c.starts_with("Done.") && !c.contains("user"), "{c}");
        let (c, d) = clean_reply("Use `ls` or {x} and a < b.");
        assert_eq!((c.as_str(), d), ("Use `ls` or {x} and a < b.", false));
        let (c, d) = clean_reply("<tools>\n{\"name\": 5}\n</tools>");
        assert!(d && c == DROPPED, "{c}");
        let (c, d) = clean_reply("```python\nprint(1)\n```");
        assert_eq!((c.as_str(), d), ("```python\nprint(1)\n```", false));
    }
}
