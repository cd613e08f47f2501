//! Jepsen's EDN histories (`history.edn`): register operations, independent keys.

use clojure_reader::edn::{self, Edn};
use physalia_traces::{Key, Txn, TxnResult, Value};

use super::porcupine::REGISTER;
use super::{int_value, At, History, InputError, Pairing, MAX_NESTING};

/// The most tags (`#tag form`) that may apply one after the other to one form.
const MAX_TAG_CHAIN: usize = 8;

/// Refuses text nested deeper than [`MAX_NESTING`] brackets, or with more than
/// [`MAX_TAG_CHAIN`] tags in a row (outside strings and comments), so that neither the
/// reader nor dropping or printing what it read can exhaust the stack. Conservative: it
/// reads `\` as a character literal only where a token starts, and ends a comment at `\n`
/// or `\r`, as the reader does.
fn check_nesting(text: &str, at: At<'_>) -> Result<(), InputError> {
    let (mut depth, mut tags, mut line) = (0usize, 0usize, 1usize);
    let (mut in_str, mut escaped, mut comment, mut char_lit) = (false, false, false, false);
    let mut prev = ' ';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        let token_start = prev.is_whitespace() || matches!(prev, '(' | '[' | '{' | ',');
        if comment {
            comment = c != '\n' && c != '\r';
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
                '\\' if token_start => char_lit = true,
                '#' if token_start => {
                    tags += 1;
                    if tags > MAX_TAG_CHAIN {
                        return Err(at.err(
                            line,
                            None,
                            format!("more than {MAX_TAG_CHAIN} tags in a row"),
                        ));
                    }
                }
                '[' | '(' | '{' => {
                    tags = 0;
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(at.err(
                            line,
                            None,
                            format!("nested deeper than {MAX_NESTING} levels"),
                        ));
                    }
                }
                ']' | ')' | '}' => {
                    tags = 0;
                    depth = depth.saturating_sub(1);
                }
                c if c.is_whitespace() || c == ',' => {}
                // An atom that is not a tag ends a chain of tags, unless a tag is being read.
                _ if token_start && prev != '#' => tags = 0,
                _ => {}
            }
        }
        prev = c;
    }
    Ok(())
}

/// An EDN value shown in a message: at most 60 characters of it.
fn short(e: &Edn<'_>) -> String {
    let t = e.to_string();
    match t.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t,
    }
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
                format!(
                    "`{}` is not a register value (nil, an integer, a string)",
                    short(other)
                ),
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
                format!("`{}` is not a keyword", short(other)),
            )),
            None => Err(at.err(self.line, Some(&format!(":{field}")), "missing")),
        }
    }
}

/// Parses the EDN history in `text`, one top-level form at a time (a form's tree is
/// dropped once its operations are taken), so memory is bounded by the largest form.
pub(super) fn parse(text: &str, at: At<'_>) -> Result<History, InputError> {
    check_nesting(text, at)?;
    let mut p = Pairing::new();
    let mut timed: Option<bool> = None;
    let mut position = 0usize;
    let mut rest = text;
    // The line of `rest`'s start, advanced as forms are consumed (no rescans).
    let mut line = 1usize;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        line += rest[..rest.len() - trimmed.len()].matches('\n').count();
        if trimmed.is_empty() {
            break;
        }
        let (form, remaining) = match edn::read(trimmed) {
            Ok(x) => x,
            // Only comments (or a discarded form) were left.
            Err(e)
                if (trimmed.starts_with(';') || trimmed.starts_with("#_"))
                    && e.code == clojure_reader::error::Code::UnexpectedEOF =>
            {
                break
            }
            Err(e) if e.code == clojure_reader::error::Code::UnexpectedEOF => {
                return Err(at.err(line, None, "not EDN: the form starting here is not closed"));
            }
            Err(e) => {
                let l = e.line.map_or(line, |l| line + l - 1);
                return Err(at.err(
                    l,
                    None,
                    format!("not EDN: {}", words(&format!("{:?}", e.code))),
                ));
            }
        };
        // One vector (or list) of operation maps, or one map per form.
        match &form {
            Edn::Map(map) => {
                event(&mut p, at, &Event { line, map }, position, &mut timed)?;
                position += 1;
            }
            Edn::Vector(items) | Edn::List(items) => {
                for item in items {
                    let Edn::Map(map) = item else {
                        return Err(at.err(
                            line,
                            None,
                            "an element of the history vector is not an operation map",
                        ));
                    };
                    event(&mut p, at, &Event { line, map }, position, &mut timed)?;
                    position += 1;
                }
            }
            _ => return Err(at.err(line, None, "a top-level form is not an operation map")),
        }
        line += trimmed[..trimmed.len() - remaining.len()]
            .matches('\n')
            .count();
        rest = remaining;
    }
    Ok(p.finish("history"))
}

/// Takes one operation event into `p`; `timed` is whether the history's times are its
/// `:time` stamps (decided by its first operation) or positions.
fn event(
    p: &mut Pairing,
    at: At<'_>,
    ev: &Event<'_, '_>,
    position: usize,
    timed: &mut Option<bool>,
) -> Result<(), InputError> {
    let line = ev.line;
    let process = match ev.get("process") {
        Some(Edn::Int(n)) if *n >= 0 => *n as u64,
        Some(Edn::Int(n)) => {
            return Err(at.err(line, Some(":process"), format!("negative process {n}")))
        }
        _ => return Ok(()), // :nemesis and other non-client processes
    };
    let timed = *timed.get_or_insert_with(|| matches!(ev.get("time"), Some(Edn::Int(_))));
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
                            format!("`{}` is not [from to]", short(v)),
                        ));
                    };
                    let [from, to] = pair.as_slice() else {
                        return Err(at.err(
                            line,
                            Some(":value"),
                            format!("`{}` is not [from to]", short(v)),
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
    Ok(())
}
