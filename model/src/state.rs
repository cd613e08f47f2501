//! The state of a cell as the model sees it: nodes, clients, the network, the client history
//! and the ghost variables the properties need.

use std::fmt;

use crate::kv::{KvState, TxnResult};
use crate::network::Network;
use crate::types::{
    Ballot, ClientId, Command, Entry, Log, NodeId, NodeSet, OpSeq, Slot, MAX_SLOTS,
};

/// The most clients a model run may have.
pub const MAX_CLIENTS: usize = 3;

/// What a node is doing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Accepts and learns; redirects clients.
    Follower,
    /// Collecting promises for its `ballot`.
    Candidate {
        /// Nodes that promised (itself included).
        promises: NodeSet,
        /// Per slot from its commit index on, the highest-ballot entry reported so far.
        learned: Log,
    },
    /// The distinguished proposer for its `ballot`.
    Leader {
        /// The next free slot.
        next: Slot,
        /// Per slot, the nodes that accepted the leader's proposal there (empty: the leader
        /// has proposed nothing there).
        votes: [NodeSet; MAX_SLOTS],
    },
}

/// One node of the cell.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeState {
    /// Durable: the highest ballot promised.
    pub promised: Ballot,
    /// Durable: the entry accepted last at each slot.
    pub log: Log,
    /// Volatile: follower, candidate or leader.
    pub role: Role,
    /// Volatile: the ballot this node stands or leads with (its last one).
    pub ballot: Ballot,
    /// Volatile: slots below it are known chosen.
    pub commit: Slot,
    /// Volatile: the slots applied to `kv`, as a bit mask (in a correct node, exactly the
    /// slots below `commit`).
    pub applied: u8,
    /// Volatile: the store after applying the `applied` slots.
    pub kv: KvState,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState::new()
    }
}

impl NodeState {
    /// A node that has just started for the first time.
    pub fn new() -> Self {
        NodeState {
            promised: Ballot::ZERO,
            log: [None; MAX_SLOTS],
            role: Role::Follower,
            ballot: Ballot::ZERO,
            commit: 0,
            applied: 0,
            kv: KvState::default(),
        }
    }

    /// Whether this node believes it is the distinguished proposer.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// How many slots to show: up to the last one that holds anything, at least one.
    fn shown_slots(&self) -> usize {
        self.log
            .iter()
            .rposition(Option::is_some)
            .map_or(1, |i| i + 1)
    }

    /// The committed part of the log.
    pub fn committed(&self) -> &[Option<Entry>] {
        &self.log[..self.commit as usize]
    }
}

/// A client: it runs its workload one operation at a time.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The operation it runs now (pending) or will run next.
    pub next: OpSeq,
    /// Whether operation `next` has been sent and not yet answered.
    pub pending: bool,
    /// The node it sends requests to.
    pub target: NodeId,
}

/// One operation of the client history.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OpRecord {
    /// For each client, how many of its operations had completed when this one was invoked:
    /// the real-time order linearizability must respect.
    pub after: [u8; MAX_CLIENTS],
    /// The result, once the client received it.
    pub result: Option<TxnResult>,
}

/// Ghost state: never read by the protocol, only by properties.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// Every vote ever cast: `(slot, ballot, command)` and the nodes that accepted it,
    /// sorted by key.
    pub votes: Vec<((Slot, Ballot, Command), NodeSet)>,
    /// The highest ballot each node ever promised.
    pub high_water: Vec<Ballot>,
    /// A leader's commit index advanced after some node restarted.
    pub committed_after_restart: bool,
    /// A new leader re-proposed a value accepted under another node's ballot.
    pub reproposed: bool,
    /// Whether `history` is linearizable: a function of the history, recomputed only when
    /// the history changes (the search is the costliest property).
    pub linearizable: bool,
}

/// The whole state of the model.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CellState {
    /// The cell's nodes.
    pub nodes: Vec<NodeState>,
    /// The clients.
    pub clients: Vec<ClientState>,
    /// Messages in flight.
    pub network: Network,
    /// Per client, its invoked operations in order.
    pub history: Vec<Vec<OpRecord>>,
    /// Crashes so far.
    pub crashes: u8,
    /// Elections started so far.
    pub elections: u8,
    /// Ghost variables for the properties.
    pub ghost: Ghost,
}

impl CellState {
    /// The commands chosen at `slot`: those accepted by `quorum` nodes at one ballot.
    pub fn chosen_at(&self, slot: Slot, quorum: usize) -> Vec<Command> {
        let mut out: Vec<Command> = self
            .ghost
            .votes
            .iter()
            .filter(|((s, _, _), who)| *s == slot && who.len() >= quorum)
            .map(|((_, _, c), _)| *c)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `command` is chosen in some slot.
    pub fn is_chosen(&self, command: Command, quorum: usize) -> bool {
        self.ghost
            .votes
            .iter()
            .any(|((_, _, c), who)| *c == command && who.len() >= quorum)
    }
}

fn fmt_role(role: &Role, ballot: Ballot) -> String {
    match role {
        Role::Follower => "follower".into(),
        Role::Candidate { promises, learned } => {
            let mut s = format!("candidate {ballot:?} promises {promises:?}");
            let known: Vec<String> = learned
                .iter()
                .enumerate()
                .filter_map(|(slot, e)| e.map(|e| format!("{slot}{e:?}")))
                .collect();
            if !known.is_empty() {
                s.push_str(&format!(" learned [{}]", known.join(", ")));
            }
            s
        }
        Role::Leader { next, votes } => {
            let mut s = format!("LEADER {ballot:?} next {next}");
            for (slot, who) in votes.iter().enumerate() {
                if !who.is_empty() {
                    s.push_str(&format!(" votes[{slot}]={who:?}"));
                }
            }
            s
        }
    }
}

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; promised {:?}; commit {}; log [",
            fmt_role(&self.role, self.ballot),
            self.promised,
            self.commit
        )?;
        for (i, e) in self.log.iter().enumerate().take(self.shown_slots()) {
            if i > 0 {
                write!(f, ", ")?;
            }
            match e {
                Some(e) => write!(f, "{i}{e:?}")?,
                None => write!(f, "{i}:-")?,
            }
        }
        write!(f, "]; kv {:?}", self.kv)
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pending {
            write!(f, "waiting for #{} (asks n{})", self.next, self.target)
        } else {
            write!(f, "idle, next #{} (asks n{})", self.next, self.target)
        }
    }
}

impl fmt::Debug for CellState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            writeln!(f, "n{i}: {n:?}")?;
        }
        for (i, c) in self.clients.iter().enumerate() {
            write!(f, "c{i}: {c:?}; history [")?;
            for (op, record) in self.history[i].iter().enumerate() {
                if op > 0 {
                    write!(f, ", ")?;
                }
                let txn = crate::kv::workload(i as ClientId, op as OpSeq);
                match record.result {
                    Some(r) => write!(f, "#{op} {txn:?} → {r:?}")?,
                    None => write!(f, "#{op} {txn:?} → ?")?,
                }
            }
            writeln!(f, "]")?;
        }
        writeln!(f, "network ({} in flight):", self.network.len())?;
        write!(f, "{:?}", self.network)?;
        if self.crashes > 0 {
            writeln!(f, "crashes so far: {}", self.crashes)?;
        }
        Ok(())
    }
}
