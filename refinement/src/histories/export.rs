//! Writing a history in another checker's format: Porcupine's Jepsen etcd log (one
//! integer register) or Jepsen's EDN (registers, independent keys).

use std::collections::HashMap;

use physalia_traces::{ClientId, Key, Txn, TxnResult, Value, WriteOp};
use thiserror::Error;

use super::porcupine::REGISTER;
use super::{register_key, Format, History};
use crate::linearizability::Operation;

/// Why a history cannot be written in a format.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("operation #{index} ({operation}) cannot be written as {format}: {why}")]
pub struct ExportError {
    /// Its index in the history.
    pub index: usize,
    /// The operation.
    pub operation: String,
    /// The format asked for.
    pub format: &'static str,
    /// Why not.
    pub why: String,
}

/// A register operation as the other checkers see it.
enum RegOp {
    Read,
    Write(Value),
    Cas(Value, Value),
}

/// What a completion says.
enum Done {
    Ok(Option<Value>),
    /// A cas whose compare failed (nothing written).
    Failed,
    /// Never took effect.
    Never,
    Unknown,
}

fn classify(o: &Operation) -> Result<(Key, RegOp, Done), String> {
    let key = register_key(&o.txn)
        .ok_or("only register operations (read, write, cas of one key) can be written")?
        .clone();
    let op = match &o.txn {
        Txn::Get { .. } => RegOp::Read,
        Txn::Put { value, .. } => RegOp::Write(value.clone()),
        Txn::Cas {
            expected: Some(from),
            new,
            ..
        } => RegOp::Cas(from.clone(), new.clone()),
        Txn::Cas { expected: None, .. } => return Err("a cas from absent has no equivalent".into()),
        Txn::Txn {
            conditions, writes, ..
        } => match (conditions.first(), writes.first()) {
            (Some(c), Some(WriteOp::Put { value, .. })) => RegOp::Cas(
                c.expected.clone().expect("register_key checked it"),
                value.clone(),
            ),
            _ => unreachable!("register_key checked the shape"),
        },
        _ => unreachable!("register_key checked the kind"),
    };
    let done = match &o.result {
        None => Done::Unknown,
        Some(r) if r.never_applied() => Done::Never,
        Some(TxnResult::Get { value }) => Done::Ok(value.clone()),
        Some(TxnResult::Put) => Done::Ok(None),
        Some(TxnResult::Cas { ok: true, .. } | TxnResult::Txn { ok: true, .. }) => Done::Ok(None),
        Some(TxnResult::Cas { ok: false, .. } | TxnResult::Txn { ok: false, .. }) => Done::Failed,
        Some(other) => return Err(format!("its result {other} has no equivalent")),
    };
    Ok((key, op, done))
}

/// A value Porcupine's etcd log can carry: a non-negative integer (its parser reads `\d+`).
fn int_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => i64::try_from(i)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{i} is not a non-negative 64-bit integer")),
        other => Err(format!("{other} is not an integer")),
    }
}

/// The history's events in real-time order: `(time, is_return, index)`; at equal times
/// invocations come first, so that operations with equal stamps stay concurrent.
fn events(ops: &[Operation]) -> Vec<(u64, bool, usize)> {
    let mut ev: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
    for (i, o) in ops.iter().enumerate() {
        ev.push((o.invoke, false, i));
        if let (Some(r), Some(_)) = (o.ret, &o.result) {
            ev.push((r, true, i));
        }
    }
    ev.sort();
    ev
}

/// Jepsen process numbers: one per client, and a fresh one after an operation whose
/// outcome is unknown (a Jepsen process never invokes again after `:info`).
/// A client keeps its process while each of its operations returned strictly before the
/// next was invoked; otherwise (equal stamps, an unknown outcome) the next one gets a fresh
/// process, so that no process invokes before its previous operation completed.
fn processes(ops: &[Operation]) -> Vec<u64> {
    let mut next = 0u64;
    // Per client: its process and when its latest operation returned (`None`: never).
    let mut current: HashMap<ClientId, (u64, Option<u64>)> = HashMap::new();
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].invoke, i));
    let mut out = vec![0; ops.len()];
    for i in order {
        let o = &ops[i];
        let reuse = current
            .get(&o.client)
            .and_then(|&(p, ret)| ret.filter(|r| *r < o.invoke).map(|_| p));
        let p = reuse.unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        out[i] = p;
        let ret = o.result.as_ref().and(o.ret);
        current.insert(o.client, (p, ret));
    }
    out
}

/// Writes `history` in `format` (not [`Format::Physalia`], which is the history's own).
pub fn export(history: &History, format: Format) -> Result<String, ExportError> {
    let ops = &history.ops;
    let name = format.name();
    let fail = |index: usize, why: String| ExportError {
        index,
        operation: ops[index].to_string(),
        format: name,
        why,
    };
    let mut classified = Vec::with_capacity(ops.len());
    for (i, o) in ops.iter().enumerate() {
        classified.push(classify(o).map_err(|why| fail(i, why))?);
    }
    // What the target format cannot say about a failed compare would change the verdict:
    // refuse rather than write a weaker history.
    for (i, o) in ops.iter().enumerate() {
        let failed_cas_saw = matches!(o.result, Some(TxnResult::Cas { ok: false, .. }));
        let failed_compare = matches!(
            o.result,
            Some(TxnResult::Cas { ok: false, .. } | TxnResult::Txn { ok: false, .. })
        );
        match format {
            Format::Porcupine if failed_cas_saw => {
                return Err(fail(
                    i,
                    "the value its failed compare found has no place in the format".into(),
                ))
            }
            Format::JepsenEdn if failed_compare => {
                return Err(fail(
                    i,
                    "a failed compare says the register held another value; Jepsen's :fail \
                     would say the operation never took effect"
                        .into(),
                ))
            }
            _ => {}
        }
    }
    let keys: std::collections::BTreeSet<&Key> = classified.iter().map(|(k, _, _)| k).collect();
    let procs = processes(ops);
    let mut out = String::new();
    match format {
        Format::Physalia => {
            for o in ops {
                let result = match &o.result {
                    Some(r) => serde_json::json!({ "known": r }),
                    None => serde_json::json!("unknown"),
                };
                let line = serde_json::json!({
                    "client": o.client.0, "op": o.op, "cell": history.cell, "txn": o.txn,
                    "invoke_ms": o.invoke, "return_ms": o.ret, "result": result,
                });
                out += &format!("{line}\n");
            }
        }
        Format::Porcupine => {
            if keys.len() > 1 {
                return Err(fail(
                    0,
                    format!("it names {} registers; the format has one", keys.len()),
                ));
            }
            let show = |v: &Option<Value>| -> Result<String, String> {
                v.as_ref()
                    .map_or(Ok("nil".into()), |v| int_of(v).map(|i| i.to_string()))
            };
            let mut unknown = Vec::new();
            for (_, is_ret, i) in events(ops) {
                let (_, op, done) = &classified[i];
                let (f, invoked) = match op {
                    RegOp::Read => (":read", "nil".to_owned()),
                    RegOp::Write(v) => (":write", int_of(v).map_err(|w| fail(i, w))?.to_string()),
                    RegOp::Cas(a, b) => (
                        ":cas",
                        format!(
                            "[{} {}]",
                            int_of(a).map_err(|w| fail(i, w))?,
                            int_of(b).map_err(|w| fail(i, w))?
                        ),
                    ),
                };
                let p = procs[i];
                if !is_ret {
                    out += &format!("INFO  jepsen.util - {p}\t:invoke\t{f}\t{invoked}\n");
                    if matches!(done, Done::Unknown) {
                        unknown.push((p, f));
                    }
                    continue;
                }
                let line = match (done, op) {
                    (Done::Ok(v), RegOp::Read) => {
                        format!(":ok\t:read\t{}", show(v).map_err(|w| fail(i, w))?)
                    }
                    (Done::Ok(_), _) => format!(":ok\t{f}\t{invoked}"),
                    (Done::Failed, _) => format!(":fail\t{f}\t{invoked}"),
                    (Done::Never, _) => {
                        return Err(fail(
                            i,
                            "it never took effect, which the format cannot say".into(),
                        ))
                    }
                    (Done::Unknown, _) => unreachable!("unknown operations have no return event"),
                };
                out += &format!("INFO  jepsen.util - {p}\t{line}\n");
            }
            // Porcupine reads an operation that never completes as unknown; say why.
            for (p, f) in unknown {
                out += &format!("INFO  jepsen.util - {p}\t:info\t{f}\t:timed-out\n");
            }
        }
        Format::JepsenEdn => {
            let plain = keys.len() == 1 && keys.iter().all(|k| k.0 == REGISTER);
            let edn_value = |v: &Value| -> String {
                match v {
                    Value::Int(i) => i.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Bytes(b) => match std::str::from_utf8(b) {
                        Ok(s) if s.starts_with(':') && !s.contains(char::is_whitespace) => {
                            s.to_owned()
                        }
                        Ok(s) => format!("{s:?}"),
                        Err(_) => format!(
                            "\"{}\"",
                            b.iter().map(|x| format!("\\u{x:04x}")).collect::<String>()
                        ),
                    },
                }
            };
            let opt = |v: &Option<Value>| v.as_ref().map_or("nil".to_owned(), edn_value);
            let wrap = |k: &Key, inner: String| {
                if plain {
                    inner
                } else {
                    format!("[{:?} {inner}]", k.0)
                }
            };
            // One operation event; times in ms become Jepsen's nanoseconds.
            let line = |out: &mut String,
                        index: &mut usize,
                        kind: &str,
                        f: &str,
                        value: String,
                        process: u64,
                        ms: u64| {
                *out += &format!(
                    "{{:type :{kind}, :f :{f}, :value {value}, :process {process}, :time {}, :index {index}}}\n",
                    ms.saturating_mul(1_000_000)
                );
                *index += 1;
            };
            let evs = events(ops);
            let end = evs.last().map_or(0, |e| e.0);
            let mut index = 0usize;
            let describe = |op: &RegOp| match op {
                RegOp::Read => ("read", "nil".to_owned()),
                RegOp::Write(v) => ("write", edn_value(v)),
                RegOp::Cas(a, b) => ("cas", format!("[{} {}]", edn_value(a), edn_value(b))),
            };
            for (time, is_ret, i) in evs {
                let (k, op, done) = &classified[i];
                let (f, invoked) = describe(op);
                let (kind, value) = if !is_ret {
                    ("invoke", invoked)
                } else {
                    match (done, op) {
                        (Done::Ok(v), RegOp::Read) => ("ok", opt(v)),
                        (Done::Ok(_), _) => ("ok", invoked),
                        (Done::Failed | Done::Never, _) => ("fail", invoked),
                        (Done::Unknown, _) => {
                            unreachable!("unknown operations have no return event")
                        }
                    }
                };
                line(
                    &mut out,
                    &mut index,
                    kind,
                    f,
                    wrap(k, value),
                    procs[i],
                    time,
                );
            }
            // Jepsen ends an operation of unknown outcome with `:info`.
            for (i, (k, op, done)) in classified.iter().enumerate() {
                if !matches!(done, Done::Unknown) {
                    continue;
                }
                let (f, invoked) = describe(op);
                line(
                    &mut out,
                    &mut index,
                    "info",
                    f,
                    wrap(k, invoked),
                    procs[i],
                    end,
                );
            }
        }
    }
    Ok(out)
}
