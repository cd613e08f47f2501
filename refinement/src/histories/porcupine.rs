//! Porcupine's Jepsen etcd logs (`INFO jepsen.util - P :type :f VALUE`, one register).

use physalia_traces::{Key, Txn, TxnResult, Value};

use super::{conditional_put, int_value, At, History, InputError, Pairing};

/// The marker before each operation's fields.
const MARKER: &str = "jepsen.util - ";

/// The longest line read (bytes).
const MAX_LINE_BYTES: usize = 1 << 16;

/// The register every operation of the log reads or writes.
pub(super) const REGISTER: &str = "x";

/// A register value: `nil` (absent) or an integer.
fn value(at: At<'_>, line: usize, field: &str, s: &str) -> Result<Option<Value>, InputError> {
    if s == "nil" {
        return Ok(None);
    }
    s.parse::<i64>().map(|i| Some(int_value(i))).map_err(|_| {
        at.err(
            line,
            Some(field),
            format!("`{s}` is neither nil nor an integer"),
        )
    })
}

/// `[A B]` of a cas.
fn pair(at: At<'_>, line: usize, s: &str) -> Result<(Value, Value), InputError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| at.err(line, Some("value"), format!("`{s}` is not [FROM TO]")))?;
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [a, b] = parts.as_slice() else {
        return Err(at.err(line, Some("value"), format!("`{s}` is not [FROM TO]")));
    };
    let get = |x: &str| {
        value(at, line, "value", x)?.ok_or_else(|| {
            at.err(
                line,
                Some("value"),
                "a cas compares and writes integers, not nil",
            )
        })
    };
    Ok((get(a)?, get(b)?))
}

/// Parses the log in `text`.
pub(super) fn parse(text: &str, at: At<'_>) -> Result<History, InputError> {
    let mut p = Pairing::new();
    let key = || Key(REGISTER.to_owned());
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(at.err(
                line,
                None,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let Some(pos) = raw.find(MARKER) else {
            continue; // other log lines
        };
        let fields: Vec<&str> = raw[pos + MARKER.len()..].split_whitespace().collect();
        let [process, kind, f, rest @ ..] = fields.as_slice() else {
            continue; // not an operation line (Porcupine's parser skips it too)
        };
        let Ok(process) = process.parse::<u64>() else {
            continue; // the nemesis, or another non-client process
        };
        let time = line as u64;
        let v = rest.join(" ");
        match (*kind, *f) {
            (":invoke", ":read") => p.invoke(at, line, process, Txn::Get { key: key() }, time)?,
            (":invoke", ":write") => {
                let value = value(at, line, "value", &v)?
                    .ok_or_else(|| at.err(line, Some("value"), "a write of nil"))?;
                p.invoke(at, line, process, Txn::Put { key: key(), value }, time)?;
            }
            (":invoke", ":cas") => {
                let (from, to) = pair(at, line, &v)?;
                p.invoke(at, line, process, conditional_put(key(), from, to), time)?;
            }
            (":invoke", other) => {
                return Err(at.err(
                    line,
                    Some("f"),
                    format!("unknown operation {other} (read, write, cas)"),
                ))
            }
            (":ok" | ":fail" | ":info", _) => {
                let open = p.open_op(at, line, process)?;
                let expected = match &open.txn {
                    Txn::Get { .. } => ":read",
                    Txn::Put { .. } => ":write",
                    _ => ":cas",
                };
                if *f != expected {
                    return Err(at.err(
                        line,
                        Some("f"),
                        format!(
                            "process {process} completes {f}, but its open operation is {expected}"
                        ),
                    ));
                }
                // As Porcupine's parser: a completion whose value does not have the shape of
                // its operation's (`:ok :read nil|N`, `:ok :write N`, `:ok|:fail :cas [A B]`)
                // leaves the outcome unknown, as do a failed read and any `:info`.
                let result = match (*kind, expected) {
                    (":ok", ":read") => value(at, line, "value", &v)
                        .ok()
                        .map(|value| TxnResult::Get { value }),
                    (":ok", ":write") => value(at, line, "value", &v)
                        .ok()
                        .flatten()
                        .map(|_| TxnResult::Put),
                    (":ok" | ":fail", ":cas") => pair(at, line, &v).ok().map(|_| TxnResult::Txn {
                        ok: *kind == ":ok",
                        reads: Vec::new(),
                    }),
                    _ => None,
                };
                p.complete(process, time, result);
            }
            (other, _) => {
                return Err(at.err(
                    line,
                    Some("type"),
                    format!("unknown type {other} (:invoke, :ok, :fail, :info)"),
                ))
            }
        }
    }
    Ok(p.finish("history"))
}
