//! The messages that travel in frames (see [`super::frame`]) on a node's one listener.
//!
//! A connection's first frame says who is talking: a peer node opens with
//! [`PeerMsg::Hello`] and then sends only [`Wire::Peer`] frames (every cell's protocol
//! messages, one connection per direction and peer); anything else is a client, which sends
//! [`Wire::Request`]s and gets one [`Wire::Response`] per request, matched by `id`.

use physalia_traces::{Ballot, ClientId, Envelope, Key, NodeId, OpSeq, Role, Slot, Txn, TxnResult};
use physalia_traces::{Config, Value};
use serde::{Deserialize, Serialize};

/// One frame's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// Node-to-node traffic.
    Peer(PeerMsg),
    /// A client's request.
    Request {
        /// Chosen by the client; echoed in the response.
        id: u64,
        /// The request.
        req: ClientRequest,
    },
    /// A node's answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        resp: ClientResponse,
    },
}

/// Node-to-node traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// The first frame of a peer connection: who dials, in which incarnation.
    Hello {
        /// The dialing node.
        node: NodeId,
        /// Its incarnation.
        inc: u64,
    },
    /// The coalesced liveness signal of a node, for all of its cells at once, with the
    /// instance of its durable state and its standing (see [`crate::node::identity`]).
    Heartbeat {
        /// The sending node.
        node: NodeId,
        /// Its incarnation.
        inc: u64,
        /// The instance of its data directory.
        instance: Instance,
        /// Whether it votes, or waits for its peers to confirm it is new.
        standing: Standing,
    },
    /// "I have durably recorded you as `instance`": the confirmation a node on probation
    /// waits for from a majority of its peers.
    Vouch {
        /// The confirming node.
        node: NodeId,
        /// The instance recorded (its generation is the one the node must take).
        instance: Instance,
    },
    /// "I know you as another instance, `known`": the data directory of the receiver is
    /// not the one it voted from (a wiped node, or an old copy); it must not vote.
    Stale {
        /// The node that knows.
        node: NodeId,
        /// The instance it recorded.
        known: Instance,
    },
    /// A protocol message of one cell.
    Cell {
        /// The cell.
        cell: String,
        /// The message.
        env: Envelope,
    },
    /// The answer to a [`PeerMsg::Cell`] naming a cell this node does not host.
    UnknownCell {
        /// The cell.
        cell: String,
    },
}

/// Which state of a node's data directory a node speaks from: a random nonce drawn when the
/// state began, and a generation bumped each time the node re-enters as a new instance
/// (`--rejoin`), so that peers can tell a rejoined node (newer) from an old copy (older).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// How many times the node rejoined.
    pub generation: u64,
    /// Random, per state.
    pub nonce: u64,
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:016x}", self.generation, self.nonce)
    }
}

/// Where a node stands with its durable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    /// It has voted from this state (or may): a member of the cluster.
    Member,
    /// Its data directory was empty at start: it steps no cell until a majority of its
    /// peers confirm they never knew it under another instance.
    Probation,
    /// Started with `--rejoin`: a new instance replacing a lost one; its peers record the
    /// new instance (one generation up) and confirm.
    Rejoin,
}

/// A client's request to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// A linearizable operation (through the log).
    Op {
        /// The cell.
        cell: String,
        /// The client.
        client: ClientId,
        /// The client's operation number.
        op: OpSeq,
        /// The transaction.
        txn: Txn,
    },
    /// An eventually consistent read of this node's applied state.
    Read {
        /// The cell.
        cell: String,
        /// The client (for the trace).
        client: ClientId,
        /// The keys.
        keys: Vec<Key>,
        /// The client's session floor.
        min_applied: Slot,
    },
    /// The node directory and which node each cell believes leads (discovery).
    Locate {
        /// The cell asked about.
        cell: String,
    },
    /// This node's view of its cells (at most `limit` of them, and at most
    /// [`super::runtime::MAX_STATUS_CELLS`]).
    Status {
        /// The most cells to list.
        limit: u32,
    },
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    /// The operation was applied (or refused before the log) with this result.
    Reply {
        /// The result.
        result: TxnResult,
    },
    /// This node does not lead the cell; `leader` is its best guess.
    Redirect {
        /// The node believed to lead.
        leader: Option<NodeId>,
    },
    /// The answer to [`ClientRequest::Read`].
    Read {
        /// How many slots are applied here (the client's new floor).
        applied: Slot,
        /// The values read.
        values: Vec<(Key, Option<Value>)>,
    },
    /// This node has applied less than the client's session floor.
    Behind {
        /// How many slots are applied here.
        applied: Slot,
    },
    /// The answer to [`ClientRequest::Locate`].
    Directory {
        /// Every node of the cluster and its address.
        nodes: Vec<(NodeId, String)>,
        /// The cell's jury.
        members: Config,
        /// The node this node believes leads the cell.
        leader: Option<NodeId>,
    },
    /// The answer to [`ClientRequest::Status`].
    Status(NodeStatus),
    /// The node does not host that cell.
    UnknownCell {
        /// The cell.
        cell: String,
    },
    /// The request could not be served now (e.g. the node is overloaded).
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// A node's view of itself and its cells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub node: NodeId,
    /// Its incarnation.
    pub inc: u64,
    /// How many cells it hosts.
    pub cells_total: u64,
    /// The first cells, by name.
    pub cells: Vec<CellStatus>,
    /// Whether it votes, or waits on probation.
    pub standing: Standing,
    /// The instance of its data directory.
    pub instance: Instance,
}

/// One replica's view of its cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellStatus {
    /// The cell.
    pub cell: String,
    /// The jury.
    pub members: Vec<NodeId>,
    /// This replica's role.
    pub role: Role,
    /// Its promised ballot.
    pub promised: Ballot,
    /// Its commit index.
    pub commit: Slot,
    /// The latest jury this replica knows (in force now or from `in_force_from`).
    pub jury: Vec<NodeId>,
    /// That jury's epoch (changes applied since the initial jury).
    pub epoch: u64,
    /// The first slot of that jury's configuration.
    pub in_force_from: Slot,
    /// The first slot this copy votes for (`None`: a learner's copy not yet a member).
    pub since: Option<Slot>,
    /// How many slots it applied.
    pub applied: Slot,
    /// Whether the replica is parked: idle, its timers off until a message or a client
    /// wakes it (a follower parked under a live leader, or a leader with nothing to do).
    pub parked: bool,
}
