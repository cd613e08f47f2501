//! Jepsen's EDN histories (`history.edn`): register operations, independent keys.

use clojure_reader::edn::{self, Edn};
use physalia_traces::{Key, Txn, TxnResult, Value};

use super::porcupine::REGISTER;
use super::{int_value, At, History, InputError, Pairing, MAX_NESTING};

/// The line of byte offset `off` in `text`.
fn line_of(text: &str, off: usize) -> usize {
    1 + text.as_bytes()[..off.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// Refuses text nested deeper than [`MAX_NESTING`] (outside strings and comments), so
/// that neither the reader nor dropping what it read can exhaust the stack.
fn check_nesting(text: &str, at: At<'_>) -> Result<(), InputError> {
    let (mut depth, mut in_str, mut escaped, mut comment, mut char_lit) =
        (0usize, false, false, false, false);
    for (off, c) in text.char_indices() {
        if comment {
            comment = c != '\n';
        } else if char_lit {
            char_lit = false;
        } else if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else {
            match c {
                '"' => in_str = true,
                ';' => comment = true,
                '\\' => char_lit = true,
                '[' | '(' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(at.err(
                            line_of(text, off),
                            None,
                            format!("nested deeper than {MAX_NESTING} levels"),
                        ));
                    }
                }
                ']' | ')' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// `UnexpectedEOF` as `unexpected eof`: the reader's error code in words.
fn words(code: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in code.chars().filter(|c| c.is_alphanumeric()) {
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_lowercase();
        out.extend(c.to_lowercase());
    }
    out
}

/// The name of an independent key (`[k v]`): its EDN text.
fn key_name(e: &Edn<'_>) -> String {
    match e {
        Edn::Str(s) => (*s).to_owned(),
        Edn::Key(k) => format!(":{k}"),
        other => other.to_string(),
    }
}

/// A register value: `nil` (absent), an integer, a string or a keyword (as bytes).
fn value(at: At<'_>, line: usize, e: &Edn<'_>) -> Result<Option<Value>, InputError> {
    Ok(match e {
        Edn::Nil => None,
        Edn::Int(i) => Some(int_value(*i)),
        Edn::Str(s) => Some(Value::Bytes(s.as_bytes().to_vec())),
        Edn::Key(k) => Some(Value::Bytes(format!(":{k}").into_bytes())),
        Edn::Bool(b) => Some(Value::Bool(*b)),
        other => {
            return Err(at.err(
                line,
                Some(":value"),
                format!("`{other}` is not a register value (nil, an integer, a string)"),
            ))
        }
    })
}

/// Splits an independent `[k v]` value; a plain value is on the one register.
fn independent<'a, 'e>(f: &str, e: &'a Edn<'e>) -> (Key, &'a Edn<'e>) {
    if let Edn::Vector(v) = e {
        if let [k, inner] = v.as_slice() {
            let is_tuple = match f {
                "cas" => matches!(inner, Edn::Vector(_)),
                _ => true,
            };
            if is_tuple {
                return (Key(key_name(k)), inner);
            }
        }
    }
    (Key(REGISTER.to_owned()), e)
}

/// One operation event of the history.
struct Event<'a, 'e> {
    line: usize,
    map: &'a std::collections::BTreeMap<Edn<'e>, Edn<'e>>,
}

impl<'e> Event<'_, 'e> {
    fn get(&self, field: &'static str) -> Option<&Edn<'e>> {
        self.map.get(&Edn::Key(field))
    }

    fn keyword(&self, at: At<'_>, field: &'static str) -> Result<&'e str, InputError> {
        match self.get(field) {
            Some(Edn::Key(k)) => Ok(k),
            Some(other) => Err(at.err(
                self.line,
                Some(&format!(":{field}")),
                format!("`{other}` is not a keyword"),
            )),
            None => Err(at.err(self.line, Some(&format!(":{field}")), "missing")),
        }
    }
}

/// Parses the EDN history in `text`.
pub(super) fn parse(text: &str, at: At<'_>) -> Result<History, InputError> {
    check_nesting(text, at)?;
    // Read every top-level form, remembering the line each starts on.
    let mut forms: Vec<(usize, Edn<'_>)> = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if trimmed.is_empty() {
            break;
        }
        let line = line_of(text, text.len() - trimmed.len());
        match edn::read(trimmed) {
            Ok((form, remaining)) => {
                forms.push((line, form));
                rest = remaining;
            }
            // Only comments (or a discarded form) were left.
            Err(e)
                if trimmed.trim_start().starts_with(';')
                    && e.code == clojure_reader::error::Code::UnexpectedEOF =>
            {
                break
            }
            Err(e) if e.code == clojure_reader::error::Code::UnexpectedEOF => {
                return Err(at.err(line, None, "not EDN: the form starting here is not closed"));
            }
            Err(e) => {
                let l = e.line.map_or(line, |l| line + l - 1);
                let column = e.column.map_or(String::new(), |c| format!(", column {c}"));
                return Err(at.err(
                    l,
                    None,
                    format!("not EDN: {}{column}", words(&format!("{:?}", e.code))),
                ));
            }
        }
    }
    // One vector of operation maps, or one map per form.
    let mut events: Vec<Event<'_, '_>> = Vec::new();
    for (line, form) in &forms {
        match form {
            Edn::Map(map) => events.push(Event { line: *line, map }),
            Edn::Vector(items) | Edn::List(items) => {
                for item in items {
                    let Edn::Map(map) = item else {
                        return Err(at.err(
                            *line,
                            None,
                            format!("`{item}` is not an operation map"),
                        ));
                    };
                    events.push(Event { line: *line, map });
                }
            }
            other => return Err(at.err(*line, None, format!("`{other}` is not an operation map"))),
        }
    }
    let timed = events
        .first()
        .is_some_and(|e| matches!(e.get("time"), Some(Edn::Int(_))));
    let mut p = Pairing::new();
    for (position, ev) in events.iter().enumerate() {
        let line = ev.line;
        let process = match ev.get("process") {
            Some(Edn::Int(n)) if *n >= 0 => *n as u64,
            Some(Edn::Int(n)) => {
                return Err(at.err(line, Some(":process"), format!("negative process {n}")))
            }
            _ => continue, // :nemesis and other non-client processes
        };
        let time = if timed {
            match ev.get("time") {
                Some(Edn::Int(t)) if *t >= 0 => *t as u64,
                _ => {
                    return Err(at.err(
                        line,
                        Some(":time"),
                        "missing or negative, while the first operation has one",
                    ))
                }
            }
        } else {
            position as u64
        };
        let kind = ev.keyword(at, "type")?;
        let f = ev.keyword(at, "f")?;
        let raw = ev.get("value").unwrap_or(&Edn::Nil);
        match kind {
            "invoke" => {
                let (key, v) = independent(f, raw);
                let txn = match f {
                    "read" => Txn::Get { key },
                    "write" => Txn::Put {
                        key,
                        value: value(at, line, v)?
                            .ok_or_else(|| at.err(line, Some(":value"), "a write of nil"))?,
                    },
                    "cas" => {
                        let Edn::Vector(pair) = v else {
                            return Err(at.err(
                                line,
                                Some(":value"),
                                format!("`{v}` is not [from to]"),
                            ));
                        };
                        let [from, to] = pair.as_slice() else {
                            return Err(at.err(
                                line,
                                Some(":value"),
                                format!("`{v}` is not [from to]"),
                            ));
                        };
                        Txn::Cas {
                            key,
                            expected: value(at, line, from)?,
                            new: value(at, line, to)?
                                .ok_or_else(|| at.err(line, Some(":value"), "a cas writing nil"))?,
                        }
                    }
                    other => {
                        return Err(at.err(
                            line,
                            Some(":f"),
                            format!("unsupported operation :{other} (read, write, cas)"),
                        ))
                    }
                };
                p.invoke(at, line, process, txn, time)?;
            }
            "ok" | "fail" | "info" => {
                let open = p.open_op(at, line, process)?;
                let (open_f, open_key) = match &open.txn {
                    Txn::Get { key } => ("read", key),
                    Txn::Put { key, .. } => ("write", key),
                    Txn::Cas { key, .. } => ("cas", key),
                    _ => unreachable!("only register operations are invoked"),
                };
                if f != open_f {
                    return Err(at.err(
                        line,
                        Some(":f"),
                        format!(
                            "process {process} completes :{f}, but its open operation is :{open_f}"
                        ),
                    ));
                }
                let result = match (kind, f) {
                    ("ok", "read") => {
                        let (key, v) = independent(f, raw);
                        if key != *open_key {
                            return Err(at.err(
                                line,
                                Some(":value"),
                                format!(
                                    "reads key {}, but the invocation read {}",
                                    key.0, open_key.0
                                ),
                            ));
                        }
                        Some(TxnResult::Get {
                            value: value(at, line, v)?,
                        })
                    }
                    ("ok", "write") => Some(TxnResult::Put),
                    ("ok", _) => {
                        let Txn::Cas { expected, .. } = &open.txn else {
                            unreachable!("matched above")
                        };
                        Some(TxnResult::Cas {
                            ok: true,
                            current: expected.clone(),
                        })
                    }
                    // `:fail`: it never took effect.
                    ("fail", _) => Some(TxnResult::Rejected {
                        reason: "jepsen :fail".into(),
                    }),
                    _ => None, // `:info`: unknown
                };
                p.complete(process, time, result);
            }
            other => {
                return Err(at.err(
                    line,
                    Some(":type"),
                    format!("unknown type :{other} (:invoke, :ok, :fail, :info)"),
                ))
            }
        }
    }
    Ok(p.finish("history"))
}
