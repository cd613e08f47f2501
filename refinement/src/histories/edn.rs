//! Jepsen's EDN histories (`history.edn`): register operations, independent keys.

use clojure_reader::edn::{self, Edn};
use physalia_traces::{Key, Txn, TxnResult, Value, WriteOp};

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

/// A micro-operation of a Jepsen `:txn`: `[:r k v]`, `[:w k v]`, `[:append k v]`.
enum Micro {
    Read(Key, Option<Value>),
    Write(Key, Value),
    Append(Key, i64),
}

/// The micro-operations of a `:txn` value.
fn micro_ops(at: At<'_>, line: usize, raw: &Edn<'_>) -> Result<Vec<Micro>, InputError> {
    let Edn::Vector(items) = raw else {
        return Err(at.err(
            line,
            Some(":value"),
            format!("`{}` is not a vector of micro-operations", short(raw)),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let bad = || {
            at.err(
                line,
                Some(":value"),
                format!("`{}` is not [:r|:w|:append key value]", short(item)),
            )
        };
        let Edn::Vector(parts) = item else {
            return Err(bad());
        };
        let [Edn::Key(f), k, v] = parts.as_slice() else {
            return Err(bad());
        };
        let key = Key(key_name(k));
        out.push(match *f {
            "r" => match v {
                // A list-append read: the list, or nil before the first append.
                Edn::Vector(list) | Edn::List(list) => {
                    Micro::Read(key, encode_list(at, line, list)?)
                }
                Edn::Nil => Micro::Read(key, None),
                other => Micro::Read(key, value(at, line, other)?),
            },
            "w" => Micro::Write(key, value(at, line, v)?.ok_or_else(bad)?),
            "append" => match v {
                Edn::Int(i) => Micro::Append(key, *i),
                _ => return Err(at.err(line, Some(":value"), "an append of a non-integer")),
            },
            _ => return Err(bad()),
        });
    }
    Ok(out)
}

/// One list element as the bytes an append adds: its decimal digits and a comma.
fn element(i: i64) -> Vec<u8> {
    format!("{i},").into_bytes()
}

/// A list read as the byte string its appends built (`None`: the empty list, as absent).
fn encode_list(at: At<'_>, line: usize, list: &[Edn<'_>]) -> Result<Option<Value>, InputError> {
    let mut bytes = Vec::new();
    for e in list {
        let Edn::Int(i) = e else {
            return Err(at.err(
                line,
                Some(":value"),
                format!("`{}` is not an integer element", short(e)),
            ));
        };
        bytes.extend(element(*i));
    }
    Ok((!bytes.is_empty()).then_some(Value::Bytes(bytes)))
}

/// The transaction of the micro-operations, reads before writes (their values unknown
/// until it completes).
fn txn_of(ops: &[Micro]) -> Txn {
    let mut reads: Vec<Key> = Vec::new();
    let mut writes = Vec::new();
    for m in ops {
        match m {
            Micro::Read(k, _) => {
                if !reads.contains(k) {
                    reads.push(k.clone());
                }
            }
            Micro::Write(k, v) => writes.push(WriteOp::Put {
                key: k.clone(),
                value: v.clone(),
            }),
            Micro::Append(k, i) => writes.push(WriteOp::Append {
                key: k.clone(),
                bytes: element(*i),
            }),
        }
    }
    Txn::Txn {
        conditions: Vec::new(),
        reads,
        writes,
    }
}

/// A value no append or write of these histories produces: what a read that contradicts
/// its own transaction's earlier writes is taken to have seen (so that no linearization
/// explains it).
const CONTRADICTION: [u8; 1] = [0xff];

/// The completed transaction and what it read *before its writes*: Jepsen reads happen in
/// order with the writes, ours before them, so a read after the transaction's own appends
/// must end with them (they are taken off), and a read after its own write of the key says
/// nothing of the state before (it is dropped) unless it contradicts that write.
fn observed_txn(ops: &[Micro]) -> (Txn, Vec<(Key, Option<Value>)>) {
    let contradiction = || Some(Value::Bytes(CONTRADICTION.to_vec()));
    let mut before: Vec<(Key, Option<Value>)> = Vec::new();
    let mut appended: std::collections::HashMap<&Key, Vec<u8>> = std::collections::HashMap::new();
    let mut written: std::collections::HashMap<&Key, &Value> = std::collections::HashMap::new();
    for m in ops {
        match m {
            Micro::Append(k, i) => appended.entry(k).or_default().extend(element(*i)),
            Micro::Write(k, v) => {
                written.insert(k, v);
                appended.remove(k);
            }
            Micro::Read(k, seen) => {
                let implied = if let Some(w) = written.get(k) {
                    // After its own write: consistent, or a contradiction.
                    let own_appends = appended.get(k).cloned().unwrap_or_default();
                    let expected = match (w, own_appends.is_empty()) {
                        (v, true) => Some((*v).clone()),
                        (Value::Bytes(b), false) => {
                            Some(Value::Bytes([b.as_slice(), &own_appends].concat()))
                        }
                        _ => None,
                    };
                    if expected.as_ref() == seen.as_ref() {
                        continue;
                    }
                    contradiction()
                } else {
                    match appended.get(k).filter(|a| !a.is_empty()) {
                        None => seen.clone(),
                        Some(suffix) => match seen {
                            Some(Value::Bytes(b)) if b.ends_with(suffix) => {
                                let rest = &b[..b.len() - suffix.len()];
                                (!rest.is_empty()).then(|| Value::Bytes(rest.to_vec()))
                            }
                            _ => contradiction(),
                        },
                    }
                };
                match before.iter_mut().find(|(key, _)| key == k) {
                    Some((_, v)) if *v != implied => *v = contradiction(),
                    Some(_) => {}
                    None => before.push((k.clone(), implied)),
                }
            }
        }
    }
    let mut txn = txn_of(ops);
    if let Txn::Txn { reads, .. } = &mut txn {
        *reads = before.iter().map(|(k, _)| k.clone()).collect();
    }
    (txn, before)
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
        "invoke" if f == "txn" => {
            let ops = micro_ops(at, line, raw)?;
            p.invoke(at, line, process, txn_of(&ops), time)?;
        }
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
                        format!("unsupported operation :{other} (read, write, cas, txn)"),
                    ))
                }
            };
            p.invoke(at, line, process, txn, time)?;
        }
        "ok" | "fail" | "info" if matches!(p.open_op(at, line, process)?.txn, Txn::Txn { .. }) => {
            if f != "txn" {
                return Err(at.err(
                    line,
                    Some(":f"),
                    format!("process {process} completes :{f}, but its open operation is :txn"),
                ));
            }
            match kind {
                "ok" => {
                    let ops = micro_ops(at, line, raw)?;
                    let (txn, reads) = observed_txn(&ops);
                    p.complete_as(process, time, txn, TxnResult::Txn { ok: true, reads });
                }
                "fail" => p.complete(
                    process,
                    time,
                    Some(TxnResult::Rejected {
                        reason: "jepsen :fail".into(),
                    }),
                ),
                _ => p.complete(process, time, None),
            }
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
