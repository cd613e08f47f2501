//! The protocol vocabulary shared by the core, the trace and the refinement layer.
//!
//! Names follow `docs/protocol.md` and the vocabulary table of `DESIGN.md`: one name per
//! concept. Consensus never looks inside a [`Command`]; the transaction types live in
//! [`crate::kv`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kv::{Key, Txn, TxnResult, Value};

/// A node of a cell's jury, `n0..n(N-1)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A client of a cell. Clients are not jury members and never vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A client's operation number: `(client, op)` names one operation, exactly once.
pub type OpSeq = u64;

/// A log position; slots are numbered from 0.
pub type Slot = u64;

/// The identity of a cell (its partition key).
pub type CellId = String;

/// A ballot `(round, node)`, ordered lexicographically (round first, then node).
///
/// Ballots are unique because a node only proposes with its own id. `(0, n0)` is the zero
/// ballot that nobody proposes with.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Ballot {
    /// The round number; a new candidate picks one more than the highest round it knows.
    pub round: u64,
    /// The node that proposes with this ballot.
    pub node: NodeId,
}

impl Ballot {
    /// The zero ballot `(0, n0)`: the initial promise, never used to propose.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };

    /// Whether this is the zero ballot.
    pub fn is_zero(&self) -> bool {
        *self == Ballot::ZERO
    }
}

impl fmt::Display for Ballot {
    /// `(round,node)`, e.g. `(2,n1)`; the zero ballot is `⊥`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            f.write_str("⊥")
        } else {
            write!(f, "({},{})", self.round, self.node)
        }
    }
}

/// The jury of a cell: the set of nodes whose majorities are quorums.
///
/// The configuration is a value of the replicated state; a change accepted at slot `i`
/// would take effect at slot `i + α`. Reconfiguration is not built yet, so the jury never
/// changes, but every quorum is computed from the configuration in force at a slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The members, sorted and without duplicates.
    pub members: Vec<NodeId>,
}

impl Config {
    /// A configuration of nodes `n0..n(n-1)`.
    pub fn with_nodes(n: u32) -> Config {
        Config {
            members: (0..n).map(NodeId).collect(),
        }
    }

    /// The size of a quorum: a majority of the members.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.members.contains(&node)
    }
}

/// What a slot holds. Consensus never looks inside an operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Command {
    /// A no-op, proposed into holes by a new leader.
    Noop,
    /// The client operation `(client, op)` carrying its transaction.
    Op {
        /// The client that invoked it.
        client: ClientId,
        /// The client's operation number (schema v1 also spelled it `seq`).
        #[serde(alias = "seq")]
        op: OpSeq,
        /// The transaction to apply.
        txn: Txn,
    },
}

/// An accepted log entry as reported in a `Promise` or a trace: `(slot, ballot, command)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The slot.
    pub slot: Slot,
    /// The ballot at which the command was accepted.
    pub ballot: Ballot,
    /// The accepted command.
    pub command: Command,
}

/// A cell's state machine as of a chosen prefix: what a node keeps instead of the log
/// entries below `upto` once it compacts them, and what a snapshot install teaches
/// (`docs/protocol.md`, "Snapshots"). Every slot below `upto` is chosen, and this is the
/// state applying them gives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Every slot below it is folded in.
    pub upto: Slot,
    /// The key-value store, in key order.
    pub data: Vec<(Key, Value)>,
    /// Per client: its latest applied operation and that operation's first result.
    pub sessions: Vec<(ClientId, OpSeq, TxnResult)>,
    /// The jury over time: `(first slot, epoch, configuration)`, in slot order (the most
    /// recent configurations the state machine keeps).
    pub juries: Vec<(Slot, u64, Config)>,
    /// The last slot below `upto` holding a jury change (valid or not, applied or a
    /// repeat): "one change at a time" looks back α slots, which may be folded in.
    pub last_change: Option<Slot>,
}

/// One slot of an `Accept` batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The slot.
    pub slot: Slot,
    /// The command proposed for it.
    pub command: Command,
}

/// The protocol's messages (`docs/protocol.md`, "Messages and handlers").
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Msg {
    /// Phase 1a: a candidate asks for promises on every slot from `from` on.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The candidate's commit index: the first slot it has not seen committed.
        from: Slot,
    },
    /// Phase 1b: the acceptor promised `ballot`; `accepted` is every log entry at `>= from`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's entries at slots `>= from`.
        accepted: Vec<Entry>,
    },
    /// Refusal: the acceptor promised `promised`, which is higher than `ballot`.
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
    },
    /// Phase 2a: the leader asks to accept a batch of slots (at most the batch bound).
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The proposals, in increasing slot order.
        proposals: Vec<Proposal>,
    },
    /// Phase 2b: the acceptor accepted `slots` at `ballot`; `commit` is its commit index,
    /// which lets the leader skip shipping slots this node already knows are chosen.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slots accepted.
        slots: Vec<Slot>,
        /// The acceptor's commit index.
        commit: Slot,
    },
    /// Learning: every slot `< up_to` is chosen; an entry accepted at exactly `ballot` is
    /// the chosen value.
    Commit {
        /// The leader's ballot.
        ballot: Ballot,
        /// One past the last committed slot.
        up_to: Slot,
    },
    /// State transfer: the sender's state machine as of a chosen prefix, for a node whose
    /// commit index is below it (a lagging peer of a leader whose log no longer holds the
    /// slots it lacks, or a candidate whose `Prepare` asked from below the sender's
    /// snapshot). Installed only above the receiver's commit index.
    Snapshot {
        /// The sender's ballot (its leader's or the `Prepare`'s).
        ballot: Ballot,
        /// The state.
        image: Image,
    },
    /// A client operation, sent to the node the client believes leads.
    Request {
        /// The client.
        client: ClientId,
        /// The client's sequence number for the operation.
        op: OpSeq,
        /// The transaction.
        txn: Txn,
    },
    /// A non-leader's answer: try `leader` (the node of its promised ballot, if any).
    Redirect {
        /// The operation redirected.
        op: OpSeq,
        /// The node believed to lead.
        leader: Option<NodeId>,
    },
    /// The result of an operation, after it was committed and applied (or refused before
    /// it reached the log; see [`TxnResult`]).
    Reply {
        /// The operation answered.
        op: OpSeq,
        /// Its result.
        result: TxnResult,
    },
}

impl Msg {
    /// The message's name in the vocabulary (`"Prepare"`, `"Promise"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Prepare { .. } => "Prepare",
            Msg::Promise { .. } => "Promise",
            Msg::Nack { .. } => "Nack",
            Msg::Accept { .. } => "Accept",
            Msg::Accepted { .. } => "Accepted",
            Msg::Commit { .. } => "Commit",
            Msg::Snapshot { .. } => "Snapshot",
            Msg::Request { .. } => "Request",
            Msg::Redirect { .. } => "Redirect",
            Msg::Reply { .. } => "Reply",
        }
    }
}

/// An endpoint of a message: a jury node or a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Endpoint {
    /// A node of the cell.
    Node(NodeId),
    /// A client.
    Client(ClientId),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(n) => n.fmt(f),
            Endpoint::Client(c) => c.fmt(f),
        }
    }
}

/// The identity of a sent message: `(node, incarnation, seq)`, unique across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgId {
    /// The sending node.
    pub node: NodeId,
    /// The sender's incarnation.
    pub inc: u64,
    /// The sender's per-incarnation message counter.
    pub seq: u64,
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.node, self.inc, self.seq)
    }
}

/// A message between nodes of a cell as it travels: identity, Lamport clock and body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The message's identity; the receiving step names it.
    pub id: MsgId,
    /// The receiving node.
    pub to: NodeId,
    /// The sender's Lamport clock at the sending step.
    pub lc: u64,
    /// The message.
    pub msg: Msg,
}

impl Envelope {
    /// The sending node.
    pub fn from(&self) -> NodeId {
        self.id.node
    }
}

/// A node's role (volatile state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Role {
    /// Accepts and learns; redirects clients.
    Follower,
    /// Collecting promises for its ballot.
    Candidate,
    /// The distinguished proposer.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Follower => "Follower",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
        };
        f.write_str(s)
    }
}

/// The kinds of timer (`Timeout(kind)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TimeoutKind {
    /// A non-leader starts an election (a candidate starts a new one, higher).
    Election,
    /// The leader re-sends `Commit` and unacknowledged `Accept`s.
    Heartbeat,
    /// A candidate re-sends `Prepare` to nodes that have not answered. (Schema v1 called it
    /// `retry`, which in the model and TLA+ is the client's re-send of a `Request`.)
    #[serde(alias = "retry")]
    Prepare,
}

impl TimeoutKind {
    /// The timer's name in traces and reports.
    pub fn name(&self) -> &'static str {
        match self {
            TimeoutKind::Election => "election",
            TimeoutKind::Heartbeat => "heartbeat",
            TimeoutKind::Prepare => "prepare",
        }
    }
}
