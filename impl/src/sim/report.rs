//! What a simulation run reports, and the bounded-liveness figures derived from it.

use physalia_traces::{ClientId, OpSeq, Txn, TxnResult};

use super::check::Violation;

/// One client operation as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The client.
    pub client: ClientId,
    /// The operation.
    pub op: OpSeq,
    /// Its transaction.
    pub txn: Txn,
    /// When it was invoked (ms).
    pub invoked: u64,
    /// When it returned, and its result; `None`: unknown (no answer by the end).
    pub returned: Option<(u64, TxnResult)>,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Events processed.
    pub steps: u64,
    /// Core steps taken (= trace events).
    pub core_steps: u64,
    /// Logical time reached (ms).
    pub simulated_ms: u64,
    /// The `GST` of the run (ms).
    pub gst: u64,
    /// Client operations answered with an applied result.
    pub committed_ops: u64,
    /// Local (eventually consistent) reads served and checked.
    pub local_reads: u64,
    /// Slots decided.
    pub decided_slots: usize,
    /// Messages lost (by the injector, a partition, or a down node).
    pub dropped: u64,
    /// Messages duplicated.
    pub duplicated: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Crashes.
    pub crashes: u64,
    /// Disk losses (a crash whose durable state is gone; counted in `crashes` too).
    pub disk_losses: u64,
    /// Jury changes applied (moves that took effect).
    pub moves: u64,
    /// Copies of the cell deleted by nodes whose removal was in force.
    pub copies_deleted: u64,
    /// The jury in force at the end (the latest configuration the decided log gives).
    pub jury: Vec<physalia_traces::NodeId>,
    /// Invariant violations, in order.
    pub violations: Vec<Violation>,
    /// Each node's commit index at the end (`None`: down).
    pub commits: Vec<Option<u64>>,
    /// The client history.
    pub history: Vec<HistoryEntry>,
}

/// Bounded liveness after `GST`, measured on the client history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Time from `GST` to the first operation answered with an applied result (ms); `None`
    /// if there was none.
    pub first_commit: Option<u64>,
    /// Longest time an operation invoked after `GST` took to be answered (ms).
    pub max_latency: Option<u64>,
    /// Operations invoked after `GST` and never answered (including those still in flight
    /// when the run stopped: at most one per client).
    pub unanswered: usize,
}

impl SimReport {
    /// Bounded-liveness figures after `GST` (a leader within B1 shows as `first_commit`,
    /// every request answered within B2 as `max_latency` with no `unanswered`).
    pub fn liveness(&self) -> Liveness {
        let gst = self.gst;
        let first_commit = self
            .history
            .iter()
            .filter_map(|h| h.returned.as_ref())
            .filter(|(t, r)| *t >= gst && !r.never_applied())
            .map(|(t, _)| t - gst)
            .min();
        let after: Vec<&HistoryEntry> = self.history.iter().filter(|h| h.invoked >= gst).collect();
        let max_latency = after
            .iter()
            .filter_map(|h| h.returned.as_ref().map(|(t, _)| t - h.invoked))
            .max();
        let unanswered = after.iter().filter(|h| h.returned.is_none()).count();
        Liveness {
            first_commit,
            max_latency,
            unanswered,
        }
    }
}
