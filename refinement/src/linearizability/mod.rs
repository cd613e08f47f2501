//! Linearizability of a cell's client history against [`KvSpec`].
//!
//! The search is Wing and Gong's, with Lowe's memoisation as in Porcupine: walk the history's
//! invocations and returns in real-time order, tentatively take effect (linearize) any
//! operation invoked before the earliest pending return whose recorded result the
//! specification reproduces, backtrack when a return is reached with its operation still
//! pending, and never revisit a (set of linearized operations, store state) pair.
//!
//! What makes it fast:
//! - **P-compositionality** (Herlihy and Wing's locality): operations are split into
//!   independent partitions, the connected components of "touches a common key" (a
//!   multi-key transaction joins its keys' partitions), and each is searched on its own.
//! - The memo key is compact: the linearized operations are a low-water mark over the
//!   completed operations in invocation order plus the few linearized above it, and a bitset
//!   of the unknown-outcome operations; the store state is shared copy-on-write.
//! - Unknown-outcome operations are tried after the completed candidates, and a
//!   configuration is skipped when one with the same completed operations and state but a
//!   subset of its unknown ones was visited (it had every continuation this one has).
//!   Of several unknown operations with the same transaction only the earliest unplaced
//!   one is tried, and an unknown operation is not placed right after another whose
//!   effect it hides (two unknown writes of a key). Without these, each never-answered
//!   write or increment multiplies the configurations.
//! - Operations that cannot matter are dropped first: those answered `Rejected` or
//!   `Overloaded` (never applied) and read-only operations whose outcome is unknown.
//!
//! The cost grows with concurrency within a partition and with unknown outcomes: proving a
//! violation means exhausting every configuration before it, and an operation whose outcome
//! is unknown stays a candidate for the rest of the history. `examples/lin_bench.rs`
//! measures it (8 clients, 4 independent key pairs). Every operation answered: 100 000
//! operations are decided in about 0.2 s by key, either way. With 1 % unknown outcomes,
//! plain linearizability refutes one bad read among 10 000 operations in 0.3 M search
//! nodes, but 100 000 exceed a 5 M-node budget (`Undecided`), and with distinct values a
//! correct history of 100 000 does too; with [`Options::client_sessions`] (an unknown
//! operation expires when its client moves on) both sizes and both verdicts take 0.1–0.3 s.
//!
//! History conventions:
//! - `a` precedes `b` in real time iff `a.ret < b.invoke` (equal stamps are concurrent).
//! - An operation with `result: None` (outcome unknown) may take effect at any point after
//!   its invocation, with whatever result the specification gives, or never; its `ret`, if
//!   any, is not a bound (the request may still be applied after the client gave up).
//! - Each `(client, op)` names one operation: a client's retries of one operation are one
//!   [`Operation`], since the cell applies each operation at most once.

use std::collections::HashMap;
use std::fmt;

use ahash::AHashMap;
use physalia_traces::{ClientId, Key, OpSeq, Txn, TxnResult};
use thiserror::Error;

use crate::kv::{KvSpec, DEFAULT_MAX_INT_BITS};
use search::{Outcome, Search};

mod search;
pub mod synth;

/// One client operation of a cell's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client that invoked it.
    pub client: ClientId,
    /// The client's sequence number for it.
    pub op: OpSeq,
    /// The transaction asked.
    pub txn: Txn,
    /// Real time (ms or any monotone stamp) of the invocation.
    pub invoke: u64,
    /// Real time of the answer; `None`: never answered.
    pub ret: Option<u64>,
    /// The answer; `None`: outcome unknown (client gave up, crashed, or was told "unknown").
    pub result: Option<TxnResult>,
}

impl Operation {
    /// The time after which it can no longer take effect (`None`: unbounded).
    fn deadline(&self) -> Option<u64> {
        self.result.as_ref().and(self.ret)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} op {} {} ", self.client, self.op, self.txn)?;
        match (self.ret, &self.result) {
            (Some(ret), Some(result)) => write!(f, "[{}, {}] -> {}", self.invoke, ret, result),
            (Some(ret), None) => write!(f, "[{}, {}] -> unknown", self.invoke, ret),
            (None, _) => write!(f, "[{}, never answered]", self.invoke),
        }
    }
}

/// A history that cannot be checked because it is malformed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HistoryError {
    /// An operation has a result but no return time.
    #[error("operation #{index} ({client} op {op}) has a result but no return time")]
    ResultWithoutReturn {
        /// Its index in the history.
        index: usize,
        /// Its client.
        client: ClientId,
        /// Its sequence number.
        op: OpSeq,
    },
    /// An operation returns before it is invoked.
    #[error(
        "operation #{index} ({client} op {op}) returns at {ret}, before its invocation at {invoke}"
    )]
    ReturnBeforeInvoke {
        /// Its index in the history.
        index: usize,
        /// Its client.
        client: ClientId,
        /// Its sequence number.
        op: OpSeq,
        /// Invocation time.
        invoke: u64,
        /// Return time.
        ret: u64,
    },
    /// Two operations carry the same `(client, op)`.
    #[error("operations #{first} and #{second} are both {client} op {op}: merge a client's retries of one operation into one")]
    Duplicate {
        /// The first index.
        first: usize,
        /// The second index.
        second: usize,
        /// The client.
        client: ClientId,
        /// The sequence number.
        op: OpSeq,
    },
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The history is linearizable.
    Linearizable {
        /// A witness: indices into the history, in the order they take effect, respecting
        /// real time. Only operations that take effect are listed: not those dropped as
        /// never applied, nor unknown-outcome ones that (may) never take effect.
        order: Vec<usize>,
    },
    /// The history is not linearizable.
    NotLinearizable(Box<Violation>),
    /// The search budget ran out before a decision.
    Undecided {
        /// Search nodes explored (linearization attempts), over all partitions.
        explored: u64,
    },
}

/// Why a history is not linearizable: the longest linearizable prefix the search found in
/// the failing partition, and the operations that could not take effect after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The keys of the failing partition.
    pub keys: Vec<Key>,
    /// The longest linearizable prefix found: history indices in the order they take effect.
    pub prefix: Vec<usize>,
    /// The store state after that prefix (restricted to the partition's keys).
    pub state: KvSpec,
    /// The operations that could have taken effect next, none successfully.
    pub pending: Vec<Pending>,
}

/// An operation that could not take effect after a violation's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its index in the history.
    pub index: usize,
    /// The operation.
    pub operation: Operation,
    /// The result the specification gives it after the prefix.
    pub spec_result: TxnResult,
    /// Whether it had to take effect next: a completed operation with the earliest return
    /// among those not in the prefix.
    pub blocking: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.keys.iter().map(|k| k.0.as_str()).collect();
        writeln!(
            f,
            "not linearizable (keys {{{}}}): after a linearizable prefix of {} operations, \
             with state {}, no pending operation can take effect next:",
            keys.join(", "),
            self.prefix.len(),
            self.state
        )?;
        // Completed operations first, then at most `SHOWN_UNKNOWN` unknown-outcome ones.
        const SHOWN_UNKNOWN: usize = 5;
        let (completed, unknown): (Vec<&Pending>, Vec<&Pending>) = self
            .pending
            .iter()
            .partition(|p| p.operation.result.is_some());
        for p in completed.iter().chain(unknown.iter().take(SHOWN_UNKNOWN)) {
            let why = match &p.operation.result {
                Some(r) if *r != p.spec_result => {
                    format!("the spec gives {} here", p.spec_result)
                }
                Some(_) => "its result matches here, but no continuation succeeds".to_owned(),
                None => format!(
                    "unknown outcome, would give {}; no continuation succeeds",
                    p.spec_result
                ),
            };
            let must = if p.blocking {
                " [must take effect before its return]"
            } else {
                ""
            };
            writeln!(f, "  #{} {}: {}{}", p.index, p.operation, why, must)?;
        }
        if unknown.len() > SHOWN_UNKNOWN {
            writeln!(
                f,
                "  ... and {} more unknown-outcome operations",
                unknown.len() - SHOWN_UNKNOWN
            )?;
        }
        let tail: Vec<String> = self
            .prefix
            .iter()
            .rev()
            .take(8)
            .rev()
            .map(|i| format!("#{i}"))
            .collect();
        write!(
            f,
            "  prefix ends with: {}",
            if tail.is_empty() {
                "(empty)".to_owned()
            } else {
                tail.join(" ")
            }
        )
    }
}

/// How to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Most search nodes (linearization attempts) over all partitions.
    pub budget: u64,
    /// Split the history into independent partitions by key (always sound; off only to
    /// measure what it gains).
    pub partition_by_key: bool,
    /// The cell's integer bound (see [`KvSpec::with_max_int_bits`]).
    pub max_int_bits: u64,
    /// The bound an append may not grow a byte string past (the cell's is
    /// [`MAX_BYTES_LEN`](crate::kv::MAX_BYTES_LEN); a foreign history has none:
    /// `usize::MAX`).
    pub max_bytes_len: usize,
    /// Also hold the cell's client sessions: an operation can no longer take effect once a
    /// later operation (higher `op`) of the same client has, since the cell keeps one
    /// result per client and ignores older operations (`impl/README.md`, "Where the core
    /// goes beyond", item 7). An unknown-outcome operation then expires at the return of
    /// the client's next operation that completed and was applied. Off by default: plain
    /// linearizability lets an unknown-outcome operation take effect at any later time.
    pub client_sessions: bool,
    /// Stop (as when the budget runs out: [`Verdict::Undecided`]) at this instant: the
    /// wall-clock budget beside the node budget.
    pub deadline: Option<std::time::Instant>,
}

impl Options {
    /// Partitioned search with `budget` and the default integer bound.
    pub fn with_budget(budget: u64) -> Options {
        Options {
            budget,
            partition_by_key: true,
            max_int_bits: DEFAULT_MAX_INT_BITS,
            max_bytes_len: crate::kv::MAX_BYTES_LEN,
            client_sessions: false,
            deadline: None,
        }
    }
}

/// What a check measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations searched (after dropping those that cannot matter).
    pub searched: usize,
    /// Independent partitions.
    pub partitions: usize,
    /// Search nodes explored (linearization attempts).
    pub explored: u64,
    /// Memo entries, summed over partitions.
    pub memo: usize,
}

/// Checks that `ops` is linearizable against [`KvSpec`], exploring at most `budget`
/// search nodes (with key partitioning and the default integer bound).
pub fn check(ops: &[Operation], budget: u64) -> Result<Verdict, HistoryError> {
    check_with(ops, &Options::with_budget(budget)).map(|(v, _)| v)
}

/// [`check`] with explicit [`Options`], also returning what the search measured.
pub fn check_with(ops: &[Operation], options: &Options) -> Result<(Verdict, Stats), HistoryError> {
    validate(ops)?;
    let relevant: Vec<usize> = (0..ops.len())
        .filter(|&i| match &ops[i].result {
            Some(r) => !r.never_applied(),
            None => !KvSpec::is_read_only(&ops[i].txn),
        })
        .collect();
    let mut partitions = if options.partition_by_key {
        partition(ops, &relevant)
    } else {
        vec![relevant.clone()]
    };
    // Small partitions first: a violation there is found before a large one spends the
    // budget.
    partitions.sort_by_key(Vec::len);
    let expiry = if options.client_sessions {
        session_expiry(ops)
    } else {
        vec![None; ops.len()]
    };
    let mut stats = Stats {
        searched: relevant.len(),
        partitions: partitions.len(),
        ..Stats::default()
    };
    let mut orders = Vec::with_capacity(partitions.len());
    let mut undecided = false;
    for members in &partitions {
        let budget = options.budget.saturating_sub(stats.explored);
        let empty = KvSpec::with_limits(options.max_int_bits, options.max_bytes_len);
        let mut search = Search::new(ops, members, &expiry, empty);
        let outcome = search.run(budget, options.deadline);
        stats.explored += search.explored;
        stats.memo += search.memo_len();
        match outcome {
            Outcome::Linearized(order) => orders.push(order),
            Outcome::Exhausted => undecided = true,
            Outcome::Failed => {
                return Ok((
                    Verdict::NotLinearizable(Box::new(search.violation())),
                    stats,
                ))
            }
        }
    }
    if undecided {
        return Ok((
            Verdict::Undecided {
                explored: stats.explored,
            },
            stats,
        ));
    }
    Ok((
        Verdict::Linearizable {
            order: merge_orders(ops, &orders),
        },
        stats,
    ))
}

fn validate(ops: &[Operation]) -> Result<(), HistoryError> {
    let mut seen: HashMap<(ClientId, OpSeq), usize> = HashMap::with_capacity(ops.len());
    for (index, o) in ops.iter().enumerate() {
        match (o.ret, &o.result) {
            (None, Some(_)) => {
                return Err(HistoryError::ResultWithoutReturn {
                    index,
                    client: o.client,
                    op: o.op,
                })
            }
            (Some(ret), _) if ret < o.invoke => {
                return Err(HistoryError::ReturnBeforeInvoke {
                    index,
                    client: o.client,
                    op: o.op,
                    invoke: o.invoke,
                    ret,
                })
            }
            _ => {}
        }
        if let Some(first) = seen.insert((o.client, o.op), index) {
            return Err(HistoryError::Duplicate {
                first,
                second: index,
                client: o.client,
                op: o.op,
            });
        }
    }
    Ok(())
}

/// For each unknown-outcome operation, the time after which it can no longer take effect
/// under client sessions: the earliest return of a later operation of the same client
/// that completed and was applied.
fn session_expiry(ops: &[Operation]) -> Vec<Option<u64>> {
    let mut by_client: AHashMap<ClientId, Vec<usize>> = AHashMap::new();
    for (i, o) in ops.iter().enumerate() {
        by_client.entry(o.client).or_default().push(i);
    }
    let mut expiry = vec![None; ops.len()];
    for mut indices in by_client.into_values() {
        indices.sort_by_key(|&i| std::cmp::Reverse(ops[i].op));
        // Walking from the client's latest operation back: the earliest return so far.
        let mut earliest: Option<u64> = None;
        for i in indices {
            let o = &ops[i];
            if o.result.is_none() {
                expiry[i] = earliest;
            }
            if let (Some(r), Some(ret)) = (&o.result, o.ret) {
                if !r.never_applied() {
                    earliest = Some(earliest.map_or(ret, |e| e.min(ret)));
                }
            }
        }
    }
    expiry
}

/// The connected components of "touches a common key" over `members`, each in history
/// order; an operation that touches no key is a partition of its own.
fn partition(ops: &[Operation], members: &[usize]) -> Vec<Vec<usize>> {
    let mut key_ids: AHashMap<&Key, usize> = AHashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut first_key: Vec<Option<usize>> = Vec::with_capacity(members.len());
    for &i in members {
        let mut first = None;
        for key in KvSpec::keys(&ops[i].txn) {
            let id = *key_ids.entry(key).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            });
            match first {
                None => first = Some(id),
                Some(f) => {
                    let (a, b) = (find(&mut parent, f), find(&mut parent, id));
                    parent[a] = b;
                }
            }
        }
        first_key.push(first);
    }
    let mut by_root: AHashMap<usize, usize> = AHashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (&i, first) in members.iter().zip(first_key) {
        match first {
            None => out.push(vec![i]),
            Some(k) => {
                let root = find(&mut parent, k);
                let slot = *by_root.entry(root).or_insert_with(|| {
                    out.push(Vec::new());
                    out.len() - 1
                });
                out[slot].push(i);
            }
        }
    }
    out
}

/// One order over all partitions that respects each partition's order and real time.
///
/// Within a partition's order, an operation's linearization point is the latest
/// invocation so far (its own or an earlier one's): it lies inside the operation's interval
/// because no earlier operation in a valid order was invoked after it returned. Sorting
/// by point (ties by partition, then position) keeps every real-time precedence, since
/// `a.ret < b.invoke` puts `a`'s point strictly before `b`'s.
fn merge_orders(ops: &[Operation], orders: &[Vec<usize>]) -> Vec<usize> {
    let mut points: Vec<(u64, usize, usize, usize)> = Vec::new();
    for (p, order) in orders.iter().enumerate() {
        let mut point = 0;
        for (pos, &i) in order.iter().enumerate() {
            point = point.max(ops[i].invoke);
            points.push((point, p, pos, i));
        }
    }
    points.sort_unstable();
    points.into_iter().map(|(_, _, _, i)| i).collect()
}
