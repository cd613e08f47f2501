//! What every command's machine-readable output has in common: each `--json` document
//! names its schema and the tool version, an error is a document too when `--json` was
//! asked for, and output into a closed pipe ends the command quietly.

use std::io::Write;

use anyhow::Result;
use serde_json::{Map, Value};

/// The version of this binary, as every JSON document states it.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `body` (a JSON object) with `schema` and `tool_version` set. A body that is not an
/// object is wrapped as `{"value": body}`.
pub fn stamp(schema: &str, body: Value) -> Value {
    let mut doc = Map::new();
    doc.insert("schema".into(), Value::from(schema));
    doc.insert("tool_version".into(), Value::from(TOOL_VERSION));
    match body {
        Value::Object(fields) => {
            for (k, v) in fields {
                if k != "schema" && k != "tool_version" {
                    doc.insert(k, v);
                }
            }
        }
        other => {
            doc.insert("value".into(), other);
        }
    }
    Value::Object(doc)
}

/// Prints `body`, stamped with `schema`, as one pretty JSON document on stdout.
pub fn print_json(schema: &str, body: Value) -> Result<()> {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(&stamp(schema, body))?
    ))
}

/// The document printed instead of a text error when `--json` was given: schema
/// `physalia-error`, the command, the message (with its causes) and the exit code.
pub fn error_document(command: &str, message: &str, exit_code: u8) -> Value {
    stamp(
        "physalia-error",
        serde_json::json!({
            "command": command,
            "error": message,
            "exit_code": exit_code,
        }),
    )
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Removes terminal colour sequences (`ESC [ ... m`) from a message clap rendered.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_sets_schema_and_version_and_keeps_the_body() {
        let v = stamp("physalia-x", serde_json::json!({"a": 1, "schema": "other"}));
        assert_eq!(v["schema"], "physalia-x");
        assert_eq!(v["tool_version"], TOOL_VERSION);
        assert_eq!(v["a"], 1);
        let wrapped = stamp("physalia-x", serde_json::json!([1, 2]));
        assert_eq!(wrapped["value"], serde_json::json!([1, 2]));
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[1;31merror:\u{1b}[0m bad"), "error: bad");
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
