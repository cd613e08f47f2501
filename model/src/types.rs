//! The protocol vocabulary of `../shared/DESIGN.md`: ballots, slots, commands and messages.
//!
//! Every type here is small and `Ord`, so that model states hash and compare cheaply and
//! iterate in a deterministic order (stateright rebuilds counterexamples from action indices).

use std::fmt;

use crate::kv::{self, TxnResult};

/// A node of the cell, `0..N`. Printed as `n0`, `n1`, ...
pub type NodeId = u8;
/// A client, `0..C`. Printed as `c0`, `c1`, ...
pub type ClientId = u8;
/// A log position, counted from 0.
pub type Slot = u8;
/// A client's operation number (its index in the client's workload).
pub type OpSeq = u8;

/// The most log slots a model run may use.
pub const MAX_SLOTS: usize = 4;

/// A node's accepted entries, indexed by slot.
pub type Log = [Option<Entry>; MAX_SLOTS];

/// A set of nodes as a bit mask (cells have at most 7 nodes).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeSet(pub u8);

impl NodeSet {
    /// The set holding one node.
    pub fn single(n: NodeId) -> Self {
        NodeSet(1 << n)
    }
    /// Adds a node.
    pub fn insert(&mut self, n: NodeId) {
        self.0 |= 1 << n;
    }
    /// Whether the node is in the set.
    pub fn contains(self, n: NodeId) -> bool {
        self.0 & (1 << n) != 0
    }
    /// How many nodes the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The nodes `0..n`.
    pub fn first(n: u8) -> Self {
        NodeSet(((1u16 << n) - 1) as u8)
    }
    /// Removes a node.
    pub fn remove(&mut self, n: NodeId) {
        self.0 &= !(1 << n);
    }
    /// The nodes of both sets.
    pub fn union(self, other: NodeSet) -> Self {
        NodeSet(self.0 | other.0)
    }
    /// The nodes in both sets.
    pub fn intersection(self, other: NodeSet) -> Self {
        NodeSet(self.0 & other.0)
    }
    /// Whether `voters` hold a majority of this set (a quorum of this jury).
    pub fn is_quorum(self, voters: NodeSet) -> bool {
        2 * self.intersection(voters).len() > self.len()
    }
    /// The nodes of the set, in increasing order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (0..8).filter(move |&n| self.contains(n))
    }
    /// The set with node ids renamed by `perm` (`perm[old] = new`).
    pub fn permuted(self, perm: &[NodeId]) -> Self {
        let mut out = NodeSet::default();
        for (old, &new) in perm.iter().enumerate() {
            if self.contains(old as NodeId) {
                out.insert(new);
            }
        }
        out
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        let mut first = true;
        for n in self.iter() {
            if !first {
                write!(f, ",")?;
            }
            write!(f, "n{n}")?;
            first = false;
        }
        write!(f, "}}")
    }
}

/// A set of nodes printed as a jury, in the vocabulary's notation: `[n0 n1 n3]`.
pub struct JuryText(pub NodeSet);

impl fmt::Debug for JuryText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "n{n}")?;
        }
        write!(f, "]")
    }
}

/// A jury change (`docs/protocol.md`, "Reconfiguration"): one node at a time. A change is
/// valid if it fits the jury of its moment ([`Change::applied_to`]); an invalid one is a
/// no-op.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// The node joins.
    Add(NodeId),
    /// The node leaves.
    Remove(NodeId),
    /// A move: the first node leaves, the second joins.
    Replace(NodeId, NodeId),
}

impl Change {
    /// The jury after this change, or `None` if it does not fit `jury` (then it changes
    /// nothing): `add` of a non-member to fewer than 7 members, `remove` of a member from more
    /// than one, `replace` of a member by a non-member.
    pub fn applied_to(self, jury: NodeSet) -> Option<NodeSet> {
        let mut out = jury;
        match self {
            Change::Add(y) if !jury.contains(y) && jury.len() < 7 => out.insert(y),
            Change::Remove(x) if jury.contains(x) && jury.len() > 1 => out.remove(x),
            Change::Replace(x, y) if jury.contains(x) && !jury.contains(y) => {
                out.remove(x);
                out.insert(y);
            }
            _ => return None,
        }
        Some(out)
    }

    /// The node this change adds, if any (it is taught before the change is proposed).
    pub fn joining(self) -> Option<NodeId> {
        match self {
            Change::Add(y) | Change::Replace(_, y) => Some(y),
            Change::Remove(_) => None,
        }
    }

    /// The same change with node ids renamed by `perm` (`perm[old] = new`).
    pub fn permuted(self, perm: &[NodeId]) -> Self {
        let p = |n: NodeId| perm[n as usize];
        match self {
            Change::Add(y) => Change::Add(p(y)),
            Change::Remove(x) => Change::Remove(p(x)),
            Change::Replace(x, y) => Change::Replace(p(x), p(y)),
        }
    }

    /// The change in the shared vocabulary, for display.
    pub fn to_vocab(self) -> physalia_traces::JuryChange {
        let id = |n: NodeId| physalia_traces::NodeId(n.into());
        match self {
            Change::Add(y) => physalia_traces::JuryChange::Add { node: id(y) },
            Change::Remove(x) => physalia_traces::JuryChange::Remove { node: id(x) },
            Change::Replace(x, y) => physalia_traces::JuryChange::Replace {
                from: id(x),
                to: id(y),
            },
        }
    }
}

impl fmt::Debug for Change {
    /// The vocabulary's transaction notation: `reconfig replace n2->n3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let txn = physalia_traces::Txn::Reconfig {
            change: self.to_vocab(),
        };
        write!(f, "{txn}")
    }
}

/// A ballot `(round, node)`, ordered lexicographically. `(0, n0)` is the zero ballot that no
/// proposer uses; a node proposes only with its own id, which makes ballots unique.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    /// The round, compared first.
    pub round: u8,
    /// The proposing node, which breaks ties between equal rounds.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot every node has promised initially.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// Whether this is the zero ballot.
    pub fn is_zero(self) -> bool {
        self == Ballot::ZERO
    }
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            write!(f, "⊥")
        } else {
            write!(f, "({},n{})", self.round, self.node)
        }
    }
}

/// What a slot holds. Consensus never looks inside a command.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// Fills a hole; changes nothing.
    Noop,
    /// Operation `op` of `client`'s workload (see [`kv::workload`]).
    Op {
        /// The client that requested it.
        client: ClientId,
        /// Its operation number within that client's workload.
        op: OpSeq,
    },
    /// A jury change, requested by the operator and proposed by the distinguished proposer.
    Change(Change),
}

impl Command {
    /// The jury change this command is, if it is one.
    pub fn change(self) -> Option<Change> {
        match self {
            Command::Change(c) => Some(c),
            _ => None,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Noop => write!(f, "noop"),
            Command::Op { client, op } => {
                write!(f, "c{client}#{op} {:?}", kv::workload(*client, *op))
            }
            Command::Change(c) => write!(f, "{c:?}"),
        }
    }
}

/// An accepted log entry: the command a node accepted at a slot, and the ballot it came with.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// The ballot of the `Accept` (or the node's own proposal).
    pub ballot: Ballot,
    /// The command.
    pub command: Command,
}

impl fmt::Debug for Entry {
    /// `@ballot=command`: after its slot, the vocabulary's entry notation `slot@ballot=command`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{:?}={:?}", self.ballot, self.command)
    }
}

/// Who sends or receives a message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A node of the cell.
    Node(NodeId),
    /// A client.
    Client(ClientId),
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(n) => write!(f, "n{n}"),
            Endpoint::Client(c) => write!(f, "c{c}"),
        }
    }
}

/// The messages of the protocol, named as in DESIGN.md's vocabulary.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// Phase 1a. `from` is the sender's commit index: the first slot it has not seen committed.
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: the acceptor's entries at slots `>= from` (the others are `None`). `from`
    /// is the `Prepare`'s: a candidate asks the nodes joining the jury inside its window
    /// from their first slot (`docs/protocol.md`, "Phase 1 across a change"), so the
    /// promise says which slots it covers.
    Promise {
        ballot: Ballot,
        from: Slot,
        accepted: Log,
    },
    /// Phase 1b/2b refusal: `ballot` was lower than the acceptor's `promised`.
    Nack { ballot: Ballot, promised: Ballot },
    /// Phase 2a: one slot per message in the model.
    Accept {
        ballot: Ballot,
        slot: Slot,
        command: Command,
    },
    /// Phase 2b.
    Accepted { ballot: Ballot, slot: Slot },
    /// Learning: slots `< up_to` are chosen, with the values accepted at `ballot`.
    Commit { ballot: Ballot, up_to: Slot },
    /// A client asks the cell to run operation `op` of its workload (the transaction is
    /// [`kv::workload`]`(client, op)`).
    Request { client: ClientId, op: OpSeq },
    /// A node that does not lead points the client at the node it believes leads.
    Redirect { op: OpSeq, leader: Option<NodeId> },
    /// The result of operation `op`, sent once it is committed and applied.
    Reply { op: OpSeq, result: TxnResult },
}

impl fmt::Debug for Msg {
    /// The vocabulary's message notation (`physalia_traces::display`), with the model's
    /// fields: one slot per `Accept` and `Accepted`, no commit index in `Accepted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Prepare { ballot, from } => write!(f, "Prepare b={ballot:?} from={from}"),
            Msg::Promise {
                ballot,
                from,
                accepted,
            } => {
                write!(f, "Promise b={ballot:?} from={from} [")?;
                let mut first = true;
                for (slot, e) in accepted.iter().enumerate() {
                    if let Some(e) = e {
                        if !first {
                            write!(f, ", ")?;
                        }
                        write!(f, "{slot}{e:?}")?;
                        first = false;
                    }
                }
                write!(f, "]")
            }
            Msg::Nack { ballot, promised } => {
                write!(f, "Nack b={ballot:?} promised={promised:?}")
            }
            Msg::Accept {
                ballot,
                slot,
                command,
            } => write!(f, "Accept b={ballot:?} [{slot}: {command:?}]"),
            Msg::Accepted { ballot, slot } => write!(f, "Accepted b={ballot:?} slots=[{slot}]"),
            Msg::Commit { ballot, up_to } => write!(f, "Commit b={ballot:?} up_to={up_to}"),
            Msg::Request { client, op } => {
                write!(f, "Request c{client}#{op} {:?}", kv::workload(*client, *op))
            }
            Msg::Redirect { op, leader } => match leader {
                Some(l) => write!(f, "Redirect op={op} leader=n{l}"),
                None => write!(f, "Redirect op={op} leader=unknown"),
            },
            Msg::Reply { op, result } => write!(f, "Reply op={op} {result:?}"),
        }
    }
}

/// A message in flight from `src` to `dst`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Envelope {
    /// The sender.
    pub src: Endpoint,
    /// The receiver.
    pub dst: Endpoint,
    /// The message.
    pub msg: Msg,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}→{:?} {:?}", self.src, self.dst, self.msg)
    }
}
