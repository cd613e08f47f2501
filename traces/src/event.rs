//! Schema v1: the header line and one event line per core step.
//!
//! `traces/README.md` documents every field. Every enum here is closed: an unknown kind,
//! variant or field is a parse error, never skipped.

use serde::{Deserialize, Serialize};

use crate::kv::{Key, Txn, TxnResult};
use crate::vocab::{
    Ballot, CellId, ClientId, Config, Endpoint, Entry, Msg, MsgId, NodeId, OpSeq, Role, Slot,
    TimeoutKind,
};

/// The schema name in every header.
pub const SCHEMA: &str = "physalia-trace";

/// The schema version this crate reads and writes.
pub const VERSION: u32 = 1;

/// The first line of every trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Always [`VERSION`] for this crate.
    pub version: u32,
    /// The cell traced.
    pub cell: CellId,
    /// Every node of the cell.
    pub nodes: Vec<NodeId>,
    /// The initial configuration (jury).
    pub config: Config,
    /// The pipeline window α.
    pub alpha: u64,
    /// The moment (in the events' `now` time, ms) from which the run injects no more faults
    /// (global stabilisation time), if the recorder knows one: bounded liveness is checked
    /// after it. Optional; absent means "no liveness claim".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gst: Option<u64>,
    /// The largest difference between two nodes' clocks (ms), so that `now` stamps of
    /// different nodes can be compared soundly (`a` is before `b` only if
    /// `a.now + clock_skew < b.now`). Optional; absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_skew: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Header {
    /// A v1 header for `cell` whose jury is `config`.
    pub fn new(cell: impl Into<CellId>, config: Config, alpha: u64) -> Header {
        Header {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            cell: cell.into(),
            nodes: config.members.clone(),
            config,
            alpha,
            gst: None,
            clock_skew: 0,
        }
    }
}

/// Identifies one durable write batch of a node: `Persisted { up_to }` acknowledges every
/// batch with an id `<= up_to` of the same incarnation.
pub type PersistId = u64;

/// One record made durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DurableWrite {
    /// The promised ballot.
    Promised {
        /// The new promise.
        ballot: Ballot,
    },
    /// An accepted log entry (replacing the one at its slot).
    Accepted {
        /// The entry.
        entry: Entry,
    },
}

/// A durable write batch requested by a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persist {
    /// The batch id.
    pub id: PersistId,
    /// The records, to be written atomically and in order.
    pub writes: Vec<DurableWrite>,
}

/// A message sent by a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sent {
    /// Its identity `(node, incarnation, seq)`; the receiving step names it.
    pub id: MsgId,
    /// The destination.
    pub to: Endpoint,
    /// `Some(p)`: held back until persist batch `p` is durable; `None`: sent at once.
    pub after_persist: Option<PersistId>,
    /// The message.
    pub msg: Msg,
}

/// What a step did to a client operation (the client history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientEvent {
    /// The operation was taken in (proposed, queued, or found already in the log).
    Invoke {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// Its transaction.
        txn: Txn,
    },
    /// The operation was answered.
    Return {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// Its result, or unknown.
        result: ClientResult,
    },
}

/// The result of a client operation as seen in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientResult {
    /// The result is known.
    Known(TxnResult),
    /// The outcome is unknown (e.g. the client gave up): it may or may not have applied.
    Unknown,
}

/// The node's model-visible state after the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    /// Highest ballot promised (as issued; durable once its batch is persisted).
    pub promised: Ballot,
    /// The role.
    pub role: Role,
    /// The ballot this node campaigns or leads with (zero for a follower that never ran).
    pub ballot: Ballot,
    /// Slots `< commit` are known chosen.
    pub commit: Slot,
    /// Log entries that changed in this step.
    pub accepted: Vec<Entry>,
}

/// The step's kind and input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Kind {
    /// The node (re)starts from its durable state; `promised` and `log_len` summarise it.
    Start {
        /// The durable promise.
        promised: Ballot,
        /// The number of durable log entries.
        log_len: u64,
    },
    /// A message from another node is delivered; `id` names its send.
    Deliver {
        /// The id of the consumed message.
        id: MsgId,
        /// The sender's Lamport clock.
        lc: u64,
        /// The message.
        msg: Msg,
    },
    /// A timer fired.
    Timeout {
        /// Which one.
        timer: TimeoutKind,
    },
    /// A client request arrived (linearizable, through the log).
    Request {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// The transaction.
        txn: Txn,
    },
    /// An eventually consistent local read.
    LocalRead {
        /// The client.
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
        /// The client's session floor: the lowest applied index it may observe.
        min_applied: Slot,
    },
    /// Every persist batch with id `<= up_to` is durable.
    Persisted {
        /// The highest durable batch.
        up_to: PersistId,
    },
}

impl Kind {
    /// A short name for the kind (`"deliver"`, `"timeout"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Start { .. } => "start",
            Kind::Deliver { .. } => "deliver",
            Kind::Timeout { .. } => "timeout",
            Kind::Request { .. } => "request",
            Kind::LocalRead { .. } => "local_read",
            Kind::Persisted { .. } => "persisted",
        }
    }
}

/// One core step of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEvent {
    /// The node that stepped.
    pub node: NodeId,
    /// Its incarnation (bumped at each restart).
    pub inc: u64,
    /// Dense per-(node, incarnation) step counter from 0.
    pub seq: u64,
    /// The node's Lamport clock after the step.
    pub lc: u64,
    /// The logical time passed to the step (milliseconds; diagnostics only, never order).
    pub now: u64,
    /// The step's kind and input.
    pub kind: Kind,
    /// Messages created by the step.
    pub sent: Vec<Sent>,
    /// Held messages this step released (a `persisted` step acknowledging their batch).
    /// A released message leaves with this step's clock, so its receive follows this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<MsgId>,
    /// The durable write the step requested, if any.
    pub persist: Option<Persist>,
    /// Client invocations and replies of this step.
    pub client: Vec<ClientEvent>,
    /// The node's model-visible state after the step.
    pub state: Observed,
}
