//! The state of a cell as the model sees it: nodes, clients, the network, the client history
//! and the ghost variables the properties need.

use std::fmt;

use crate::kv::{KvState, TxnResult};
use crate::network::Network;
use crate::types::{
    Ballot, ClientId, Command, Entry, JuryText, Log, NodeId, NodeSet, OpSeq, Slot, MAX_SLOTS,
};

/// The most clients a model run may have.
pub const MAX_CLIENTS: usize = 3;

/// Who promised a ballot, by the slot each promise was asked from: `cover[f]` holds the
/// nodes whose `Promise` carried `from = f` (`cover[MAX_SLOTS]`: from beyond the log). A node
/// may appear under two `from`s (asked again after it left the jury and came back). Which
/// promises count for a slot is `crate::proposer::promisers`: a promise is its copy's.
pub type Cover = [NodeSet; MAX_SLOTS + 1];

/// Records that `n` promised with `from`.
pub fn cover_from(cover: &mut Cover, n: NodeId, from: Slot) {
    cover[(from as usize).min(MAX_SLOTS)].insert(n);
}

/// What a node is doing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Accepts and learns; redirects clients.
    Follower,
    /// Collecting promises for its `ballot`.
    Candidate {
        /// The nodes that promised (itself included), per slot they cover.
        promises: Cover,
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
        /// With reconfiguration: the promises of its ballot per slot they cover, phase 1
        /// going on across changes (`docs/protocol.md`, "Phase 1 across a change"). Without
        /// it the election's majority covers every slot and this stays empty.
        promises: Cover,
        /// With reconfiguration: the values learned in phase 1 for slots from `next` on,
        /// re-proposed slot by slot inside the window (a `Noop` into each hole below the
        /// last). Without it they are all proposed at once when elected.
        learned: Log,
    },
}

/// What a node holds of the cell (`docs/protocol.md`, "Reconfiguration").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// No copy: a spare no jury has held yet.
    Spare,
    /// A copy being taught by the leader (a snapshot of its committed prefix): it learns,
    /// never votes and never promises, until it has committed the change that adds it, which
    /// must be in force after `left`.
    Learner {
        /// The first slot from which the node's previous copy was no longer in the jury (0:
        /// it had none). A change that put the node in the jury up to `left` made its
        /// previous copy a member, not this one.
        left: Slot,
    },
    /// A voting copy, for slots `>= since`: the first slot of the membership it was created
    /// for (0 for the initial jury). Whether it is in the jury of a slot is `config(slot)`.
    Member {
        /// The first slot this copy may promise or vote for.
        since: Slot,
    },
    /// Its copy was deleted after its removal was in force: it answers clients with a
    /// forwarding pointer and keeps (beside it) the highest ballot it promised and the
    /// first slot it was no longer in the jury.
    Retired {
        /// The first slot from which its deleted copy was not in the jury.
        left: Slot,
    },
}

impl Status {
    /// Whether the node holds a copy of the cell (a learner's or a member's).
    pub fn has_copy(self) -> bool {
        matches!(self, Status::Learner { .. } | Status::Member { .. })
    }
}

/// One node of the cell.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeState {
    /// Durable: what the node holds of the cell.
    pub status: Status,
    /// Durable: slots below it came in a snapshot when the node was taught; they are in
    /// `log` for the properties only, and a `Promise` never reports them.
    pub snap: Slot,
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
            status: Status::Member { since: 0 },
            snap: 0,
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

    /// The first slot this node may promise or vote for (`None`: it has no voting copy).
    pub fn since(&self) -> Option<Slot> {
        match self.status {
            Status::Member { since } => Some(since),
            _ => None,
        }
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
    /// Jury changes proposed so far.
    pub changes: u8,
    /// What the state's rendering needs to show each node's jury (constant in a run).
    pub shown: Shown,
    /// Ghost variables for the properties.
    pub ghost: Ghost,
}

/// The constants of a run the rendering of a state needs: the initial jury and α, and
/// whether juries can change at all (without reconfiguration a state renders as it always
/// has).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shown {
    /// The initial jury.
    pub initial: NodeSet,
    /// α: a change is in force this many slots after its own.
    pub window: u8,
    /// Whether the run may change the jury.
    pub reconfig: bool,
}

/// `{n1,n2}`, and `{n1,n2}, {n3} from 2` when some promises were asked from a later slot
/// than the first ones.
fn fmt_cover(cover: &Cover) -> String {
    let text: Vec<String> = cover
        .iter()
        .enumerate()
        .filter(|(_, who)| !who.is_empty())
        .enumerate()
        .map(|(i, (slot, who))| {
            if i == 0 {
                format!("{who:?}")
            } else {
                format!("{who:?} from {slot}")
            }
        })
        .collect();
    if text.is_empty() {
        "{}".into()
    } else {
        text.join(", ")
    }
}

fn fmt_learned(learned: &Log) -> String {
    let known: Vec<String> = learned
        .iter()
        .enumerate()
        .filter_map(|(slot, e)| e.map(|e| format!("{slot}{e:?}")))
        .collect();
    if known.is_empty() {
        String::new()
    } else {
        format!(" learned [{}]", known.join(", "))
    }
}

fn fmt_role(role: &Role, ballot: Ballot) -> String {
    match role {
        Role::Follower => "follower".into(),
        Role::Candidate { promises, learned } => {
            format!(
                "candidate {ballot:?} promises {}{}",
                fmt_cover(promises),
                fmt_learned(learned)
            )
        }
        Role::Leader {
            next,
            votes,
            promises,
            learned,
        } => {
            let mut s = format!("LEADER {ballot:?} next {next}");
            for (slot, who) in votes.iter().enumerate() {
                if !who.is_empty() {
                    s.push_str(&format!(" votes[{slot}]={who:?}"));
                }
            }
            if promises.iter().any(|p| !p.is_empty()) {
                s.push_str(&format!(" promises {}", fmt_cover(promises)));
            }
            s.push_str(&fmt_learned(learned));
            s
        }
    }
}

impl NodeState {
    /// The node's jury as the cell's rendering shows it: what it holds of the cell, the
    /// first slot it votes for, and the jury of its commit index (with the next one inside
    /// its window, if a change is coming into force there), in the vocabulary's notation.
    fn fmt_membership(&self, shown: &Shown) -> String {
        let juries = crate::jury::Juries::new(
            shown.initial,
            shown.window,
            self.committed()
                .iter()
                .map(|e| e.map_or(Command::Noop, |e| e.command)),
        );
        let window = || {
            let now = juries.at(self.commit).unwrap_or(juries.latest());
            let mut out = format!("jury {:?}", JuryText(now));
            for s in self.commit + 1..self.commit + shown.window {
                if let Some(next) = juries.at(s).filter(|j| *j != now) {
                    out.push_str(&format!(" → {:?} at {s}", JuryText(next)));
                    break;
                }
            }
            out
        };
        match self.status {
            Status::Spare => "spare (no copy)".into(),
            Status::Retired { left } => {
                format!("retired (copy deleted at leaving slot {left}, forwards clients)")
            }
            Status::Learner { left: 0 } => format!("learner, {}", window()),
            Status::Learner { left } => {
                format!("learner (joins after slot {left}), {}", window())
            }
            Status::Member { since: 0 } => window(),
            Status::Member { since } => format!("member since {since}, {}", window()),
        }
    }

    fn fmt_with(&self, f: &mut fmt::Formatter<'_>, shown: Option<&Shown>) -> fmt::Result {
        if let Some(shown) = shown {
            write!(f, "{}; ", self.fmt_membership(shown))?;
            if !self.status.has_copy() {
                return write!(f, "promised {:?}", self.promised);
            }
        }
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
        write!(f, "]")?;
        if self.snap > 0 {
            write!(f, " (slots < {} from a snapshot)", self.snap)?;
        }
        write!(f, "; kv {:?}", self.kv)
    }
}

impl fmt::Debug for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, None)
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
        let shown = self.shown.reconfig.then_some(&self.shown);
        for (i, n) in self.nodes.iter().enumerate() {
            write!(f, "n{i}: ")?;
            n.fmt_with(f, shown)?;
            writeln!(f)?;
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
        if self.changes > 0 {
            writeln!(f, "jury changes proposed so far: {}", self.changes)?;
        }
        Ok(())
    }
}
