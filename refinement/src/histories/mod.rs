//! Client histories recorded outside the nodes' traces, read into [`Operation`]s for the
//! linearizability checker, and written out again for other checkers.
//!
//! Three formats (`physalia lin --format`):
//! - **physalia** (JSON Lines, one operation per line; what `physalia nemesis` and the
//!   cluster tests record): `{"client": 3, "op": 1, "cell": "c0", "txn": TXN,
//!   "invoke_ms": 10, "return_ms": 12, "result": {"known": RESULT} | "unknown"}`, with
//!   `TXN` and `RESULT` in the trace format's JSON (`traces/README.md`). `cell` is optional
//!   (the histories of several cells may share a file: each cell is checked on its own);
//!   `return_ms` is absent or `null` for an operation never answered.
//! - **porcupine**: the Jepsen etcd logs of Porcupine's test data (`test_data/jepsen/
//!   etcd_*.log`): lines `INFO jepsen.util - P :invoke|:ok|:fail|:info :read|:write|:cas
//!   VALUE`, one register, integer values, time = line order. As Porcupine's etcd model
//!   reads them, `:fail :cas` is a compare that failed (the register did not hold the
//!   expected value; nothing was written), `:fail :read :timed-out` and `:info` are
//!   unknown outcomes, and an operation never completed is unknown.
//! - **jepsen-edn**: Jepsen's `history.edn`, one operation map per line or one vector of
//!   them: `{:type :invoke|:ok|:fail|:info, :f :read|:write|:cas, :value V, :process P,
//!   :time NS}`; `:fail` never took effect, `:info` is unknown; values `[k v]` (and
//!   `[k [from to]]` for cas) are independent keys (`jepsen.independent`). `:f :txn` with
//!   micro-operations `[:r k v]`, `[:w k v]`, `[:append k n]` is one transaction: an append
//!   adds the bytes `n,` to the key's byte string (so a list `[1 2]` is `"1,2,"`), reads are
//!   taken as of before the transaction's writes (a read after its own appends must end
//!   with them). Processes that are not integers (`:nemesis`) are skipped.
//!
//! Every input is bounded ([`MAX_HISTORY_BYTES`], [`MAX_OPERATIONS`], [`MAX_NESTING`]) and
//! a malformed one is an [`InputError`] naming the file, the line and the field.

use std::fmt;
use std::path::Path;

use num_bigint::BigInt;
use physalia_traces::{ClientId, Condition, Key, Txn, TxnResult, Value, WriteOp};
use thiserror::Error;

use crate::linearizability::Operation;

mod edn;
mod export;
mod physalia;
mod porcupine;

pub use export::{export, ExportError};

/// The largest history file read (bytes).
pub const MAX_HISTORY_BYTES: u64 = 1 << 30;
/// The most operations one file may hold.
pub const MAX_OPERATIONS: usize = 10_000_000;
/// The deepest nesting of brackets an EDN form may have.
pub const MAX_NESTING: usize = 64;

/// A history format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Our JSON Lines.
    Physalia,
    /// Porcupine's Jepsen etcd logs.
    Porcupine,
    /// Jepsen's EDN.
    JepsenEdn,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Physalia => "physalia",
            Format::Porcupine => "porcupine",
            Format::JepsenEdn => "jepsen-edn",
        }
    }

    /// The format a file's name or first characters suggest: `.edn` or a leading `{:`/`[{`
    /// is EDN, a line naming `jepsen.util` is Porcupine's log, anything else our JSONL.
    pub fn detect(path: &Path, text: &str) -> Format {
        let head = text.trim_start();
        if path.extension().is_some_and(|e| e == "edn")
            || head.starts_with("{:")
            || head.starts_with("[{")
            || head.starts_with("[\n")
        {
            Format::JepsenEdn
        } else if text.lines().take(50).any(|l| l.contains("jepsen.util")) {
            Format::Porcupine
        } else {
            Format::Physalia
        }
    }
}

/// What the operations of a history may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The cell's transactions (every [`Txn`]).
    Kv,
    /// Registers: read, write and compare-and-set of one key each.
    Register,
}

/// One history to check: the operations of one cell (or of one foreign history).
#[derive(Clone, Debug)]
pub struct History {
    /// The cell it belongs to (`history` for a foreign history).
    pub cell: String,
    /// Its operations.
    pub ops: Vec<Operation>,
    /// Where each operation was read from (its line, for reports).
    pub lines: Vec<usize>,
}

/// A malformed history: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct InputError {
    /// The file.
    pub file: String,
    /// Its line (1-based; 0: the file as a whole).
    pub line: usize,
    /// The field, where one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Builds [`InputError`]s for one file.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    file: &'a str,
}

impl At<'_> {
    pub(crate) fn err(
        &self,
        line: usize,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> InputError {
        InputError {
            file: self.file.to_owned(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Reads the histories in `path` (by `format`, or the one [`Format::detect`] suggests),
/// checking each operation against `model`.
pub fn load(
    path: &Path,
    format: Option<Format>,
    model: Model,
) -> Result<(Format, Vec<History>), InputError> {
    let file = path.display().to_string();
    let at = At { file: &file };
    // Read at most one byte more than the bound: a device or a pipe reports no length.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, MAX_HISTORY_BYTES + 1),
                &mut bytes,
            )
        })
        .map_err(|e| at.err(0, None, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_HISTORY_BYTES {
        return Err(at.err(
            0,
            None,
            format!("larger than the bound of {MAX_HISTORY_BYTES} bytes"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        at.err(line, None, "not UTF-8 text")
    })?;
    let format = format.unwrap_or_else(|| Format::detect(path, &text));
    let histories = parse(&text, &file, format, model)?;
    Ok((format, histories))
}

/// Parses `text` (the contents of `file`) in `format`.
pub fn parse(
    text: &str,
    file: &str,
    format: Format,
    model: Model,
) -> Result<Vec<History>, InputError> {
    let at = At { file };
    let histories = match format {
        Format::Physalia => physalia::parse(text, at)?,
        Format::Porcupine => vec![porcupine::parse(text, at)?],
        Format::JepsenEdn => vec![edn::parse(text, at)?],
    };
    if histories.iter().all(|h| h.ops.is_empty()) {
        return Err(at.err(
            0,
            None,
            format!("no operation found (read as {})", format.name()),
        ));
    }
    if model == Model::Register {
        for h in &histories {
            for (o, line) in h.ops.iter().zip(&h.lines) {
                if register_key(&o.txn).is_none() {
                    return Err(at.err(
                        *line,
                        Some("txn"),
                        format!("{} is not a register operation (read, write, cas of one key); use --model kv", o.txn),
                    ));
                }
            }
        }
    }
    Ok(histories)
}

/// The key of a register operation: a read, a write, or a compare-and-set (as `Cas`, or
/// as the one-condition, one-write transaction the Porcupine format reads `cas` as).
pub fn register_key(txn: &Txn) -> Option<&Key> {
    match txn {
        Txn::Get { key } | Txn::Put { key, .. } | Txn::Cas { key, .. } => Some(key),
        Txn::Txn {
            conditions,
            reads,
            writes,
        } => match (conditions.as_slice(), reads.as_slice(), writes.as_slice()) {
            (
                [Condition {
                    key,
                    expected: Some(_),
                }],
                [],
                [WriteOp::Put { key: k2, .. }],
            ) if key == k2 => Some(key),
            _ => None,
        },
        _ => None,
    }
}

/// The compare-and-set that succeeds or fails by its condition alone (no value read):
/// how a `:cas` whose failure says nothing of the current value is checked.
pub(crate) fn conditional_put(key: Key, from: Value, to: Value) -> Txn {
    Txn::Txn {
        conditions: vec![Condition {
            key: key.clone(),
            expected: Some(from),
        }],
        reads: Vec::new(),
        writes: vec![WriteOp::Put { key, value: to }],
    }
}

/// `history` with `initial` in place before every operation: one write per key, completed
/// before the first invocation (so each stays in its key's partition). Times move up by 2.
pub fn with_initial(history: &History, initial: &[(Key, Value)]) -> History {
    if initial.is_empty() {
        return history.clone();
    }
    // Clients of their own: the highest ids the history does not use.
    let used: std::collections::HashSet<ClientId> = history.ops.iter().map(|o| o.client).collect();
    let mut free = (0..=u64::MAX)
        .rev()
        .map(ClientId)
        .filter(|c| !used.contains(c));
    let mut ops: Vec<Operation> = initial
        .iter()
        .map(|(key, value)| Operation {
            client: free.next().expect("a history uses fewer than 2^64 clients"),
            op: 1,
            txn: Txn::Put {
                key: key.clone(),
                value: value.clone(),
            },
            invoke: 0,
            ret: Some(1),
            result: Some(TxnResult::Put),
        })
        .collect();
    let mut lines = vec![0; ops.len()];
    for (o, line) in history.ops.iter().zip(&history.lines) {
        let mut o = o.clone();
        o.invoke = o.invoke.saturating_add(2);
        o.ret = o.ret.map(|r| r.saturating_add(2));
        ops.push(o);
        lines.push(*line);
    }
    History {
        cell: history.cell.clone(),
        ops,
        lines,
    }
}

/// A register value of a foreign history: an integer, or a string (as its bytes).
pub(crate) fn int_value(i: i64) -> Value {
    Value::Int(BigInt::from(i))
}

/// Collects operations while pairing invocations with completions, per process.
pub(crate) struct Pairing {
    pub(crate) ops: Vec<Operation>,
    pub(crate) lines: Vec<usize>,
    open: std::collections::HashMap<u64, usize>,
    next_op: std::collections::HashMap<u64, u64>,
}

impl Pairing {
    pub(crate) fn new() -> Pairing {
        Pairing {
            ops: Vec::new(),
            lines: Vec::new(),
            open: std::collections::HashMap::new(),
            next_op: std::collections::HashMap::new(),
        }
    }

    /// An invocation by `process` at `time`.
    pub(crate) fn invoke(
        &mut self,
        at: At<'_>,
        line: usize,
        process: u64,
        txn: Txn,
        time: u64,
    ) -> Result<(), InputError> {
        if let Some(&prev) = self.open.get(&process) {
            return Err(at.err(
                line,
                Some("process"),
                format!(
                    "process {process} invokes again before its operation of line {} completed",
                    self.lines[prev]
                ),
            ));
        }
        if self.ops.len() >= MAX_OPERATIONS {
            return Err(at.err(line, None, format!("more than {MAX_OPERATIONS} operations")));
        }
        let op = self.next_op.entry(process).or_insert(0);
        *op += 1;
        self.open.insert(process, self.ops.len());
        self.ops.push(Operation {
            client: ClientId(process),
            op: *op,
            txn,
            invoke: time,
            ret: None,
            result: None,
        });
        self.lines.push(line);
        Ok(())
    }

    /// The open operation of `process` (an error if it has none).
    pub(crate) fn open_op(
        &self,
        at: At<'_>,
        line: usize,
        process: u64,
    ) -> Result<&Operation, InputError> {
        self.open
            .get(&process)
            .map(|&i| &self.ops[i])
            .ok_or_else(|| {
                at.err(
                    line,
                    Some("process"),
                    format!("process {process} completes an operation it never invoked"),
                )
            })
    }

    /// The completion of `process`'s open operation at `time` with `result` (`None`:
    /// unknown outcome, which also frees the return time).
    pub(crate) fn complete(&mut self, process: u64, time: u64, result: Option<TxnResult>) {
        if let Some(i) = self.open.remove(&process) {
            let o = &mut self.ops[i];
            o.ret = result.is_some().then_some(time.max(o.invoke));
            o.result = result;
        }
    }

    /// Like [`Pairing::complete`] with a known result, the transaction replaced by what the
    /// completion says it was (a Jepsen `:txn` learns its reads' values only then).
    pub(crate) fn complete_as(&mut self, process: u64, time: u64, txn: Txn, result: TxnResult) {
        if let Some(&i) = self.open.get(&process) {
            self.ops[i].txn = txn;
        }
        self.complete(process, time, Some(result));
    }

    /// The history; operations still open are unknown outcomes.
    pub(crate) fn finish(self, cell: &str) -> History {
        History {
            cell: cell.to_owned(),
            ops: self.ops,
            lines: self.lines,
        }
    }
}

#[cfg(test)]
mod tests;
