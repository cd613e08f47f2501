//! The property catalogue: every safety and liveness property of a cell, with one name and
//! one cited source, used by the model (`physalia_model::properties`), the TLA+ spec (the
//! `tla` operator named here), the simulator's online checks and the refinement layer's
//! `spec/`. A test in `crosscheck/` keeps the TLA+ configurations and this table in
//! agreement by name.

/// When a property must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modality {
    /// On every reachable state (safety).
    Always,
    /// On some reachable state (non-vacuity: the bounds exercise the behaviour).
    Sometimes,
    /// On every fair behaviour, eventually (liveness).
    Eventually,
}

/// One property of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Property {
    /// Its name, as every report prints it (`agreement`, `durability`, ...).
    pub name: &'static str,
    /// When it must hold.
    pub modality: Modality,
    /// The TLA+ operator that states it in `tla/`, if the TLA+ spec states it.
    pub tla: Option<&'static str>,
    /// Where it comes from (paper and section).
    pub source: &'static str,
    /// What it says, in one line.
    pub meaning: &'static str,
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// At most one command is chosen per slot (chosen: accepted by a quorum of the slot's jury
/// at one ballot).
pub const AGREEMENT: Property = Property {
    name: "agreement",
    modality: Modality::Always,
    tla: Some("Agreement"),
    source: "Lamport, Paxos Made Simple §2.1 (only a single value is chosen), per slot",
    meaning: "at most one command chosen per slot",
};

/// Any two nodes' committed logs agree on every slot both have committed.
pub const COMMITTED_PREFIX: Property = Property {
    name: "committed prefix",
    modality: Modality::Always,
    tla: Some("CommittedPrefix"),
    source: "Schneider 1990 (state machine replication); Raft §5.4.3 (state machine safety)",
    meaning: "nodes' committed logs agree where both are committed",
};

/// Every chosen command is a no-op or an operation some client requested.
pub const VALIDITY: Property = Property {
    name: "validity",
    modality: Modality::Always,
    tla: Some("Validity"),
    source: "Lamport, Paxos Made Simple §2.1 (only a proposed value may be chosen)",
    meaning: "every chosen command is a no-op or was requested",
};

/// A node's promise never decreases, across restarts too.
pub const PROMISE_MONOTONIC: Property = Property {
    name: "promise monotonic",
    modality: Modality::Always,
    tla: Some("PromiseMonotonic"),
    source: "Lamport, Paxos Made Simple §2.3 (acceptor state in stable storage)",
    meaning: "a node's promise never decreases, across restarts too",
};

/// Every write acknowledged to a client is chosen.
pub const DURABILITY: Property = Property {
    name: "durability",
    modality: Modality::Always,
    tla: Some("Durability"),
    source: "Brooker et al., Millions of Tiny Databases §2 (an acknowledged change survives)",
    meaning: "every write acknowledged to a client is chosen",
};

/// A node applied exactly its committed prefix, in slot order.
pub const APPLIED_IN_ORDER: Property = Property {
    name: "applied in slot order",
    modality: Modality::Always,
    tla: None,
    source: "Schneider 1990 (replicas apply the same commands in the same order)",
    meaning: "a node applied exactly its committed prefix, in order",
};

/// The client history is linearizable against the key-value semantics.
pub const LINEARIZABLE: Property = Property {
    name: "linearizable",
    modality: Modality::Always,
    tla: None,
    source: "Herlihy and Wing 1990; Brooker et al. §2 (linearizable reads and writes)",
    meaning: "the client history is linearizable against the KV semantics",
};

/// An eventually consistent local read returns a prefix of the chosen log.
pub const CONSISTENT_PREFIX: Property = Property {
    name: "consistent prefix",
    modality: Modality::Always,
    tla: None,
    source: "Brooker et al. §2 (eventually consistent reads: consistent prefix); Terry et al. 1994",
    meaning: "a local read answers from a prefix of the chosen log",
};

/// A client's session never observes its applied index go back.
pub const MONOTONIC_READS: Property = Property {
    name: "monotonic reads",
    modality: Modality::Always,
    tla: None,
    source: "Brooker et al. §2 (monotonic per session); Terry et al. 1994 (session guarantees)",
    meaning: "a client's session never sees the applied index go back",
};

/// Jury changes are chosen at least α slots apart: each is in force before the next is
/// proposed, so the configurations of consecutive slots differ by one node.
pub const ONE_CHANGE_AT_A_TIME: Property = Property {
    name: "one change at a time",
    modality: Modality::Always,
    tla: Some("OneChangeAtATime"),
    source: "Brooker et al. §3 (cells move one node at a time; a change at i is in force at i + α)",
    meaning: "chosen jury changes are at least α slots apart",
};

/// A copy whose node lost its durable state promises and votes nowhere until it is a
/// member again by a change that its new state learned (no vote from nothing).
pub const NO_VOTE_FROM_LOST_STATE: Property = Property {
    name: "no vote from lost state",
    modality: Modality::Always,
    tla: None,
    source: "Chandra, Griesemer, Redstone, Paxos Made Live §5.1 (a replica with a lost or \
             corrupted disk rebuilds as a non-voting member); impl/README.md, \"Amnesia\"",
    meaning: "a node whose durable state was lost sends no promise and no vote until re-added",
};

/// Every slot a node holds in a snapshot is chosen, with the command the snapshot holds:
/// compaction folds only a committed prefix, and an install takes only a chosen one.
pub const SNAPSHOT_IS_CHOSEN_PREFIX: Property = Property {
    name: "snapshot is a chosen prefix",
    modality: Modality::Always,
    tla: Some("SnapshotIsChosenPrefix"),
    source: "Ongaro, Raft thesis §5.1 (snapshots hold only committed entries); Chandra, \
             Griesemer, Redstone, Paxos Made Live §5.5 (snapshots)",
    meaning: "every slot folded into a node's snapshot is chosen, with that command",
};

/// A running node's commit index and snapshot never go back: installing a snapshot never
/// overwrites a longer chosen prefix.
pub const COMMIT_NEVER_REGRESSES: Property = Property {
    name: "commit never regresses",
    modality: Modality::Always,
    tla: Some("CommitNeverRegresses"),
    source: "Ongaro, Raft thesis §5.3 (a follower discards a snapshot older than its \
             state); docs/protocol.md, \"Snapshots\"",
    meaning: "a running node's commit index and snapshot point never decrease",
};

/// Sometimes: some slot has a client operation chosen.
pub const COMMAND_CHOSEN: Property = Property {
    name: "a command is chosen",
    modality: Modality::Sometimes,
    tla: None,
    source: "non-vacuity of agreement",
    meaning: "some slot has a client operation chosen",
};

/// Sometimes: a new leader re-proposed a value accepted under another node's ballot.
pub const REPROPOSED: Property = Property {
    name: "new leader re-proposes an old value",
    modality: Modality::Sometimes,
    tla: None,
    source: "non-vacuity of phase 1 (Paxos Made Simple §2.2, P2c)",
    meaning: "failover exercises phase 1",
};

/// Sometimes: a node crashed and restarted, and a leader committed afterwards.
pub const COMMIT_AFTER_RESTART: Property = Property {
    name: "commit after a restart",
    modality: Modality::Sometimes,
    tla: None,
    source: "non-vacuity of durability across crashes",
    meaning: "a crash and restart happen and the cell still commits",
};

/// Sometimes: a client saw a conditional write fail its condition.
pub const CONDITION_FAILED: Property = Property {
    name: "a conditional write fails",
    modality: Modality::Sometimes,
    tla: None,
    source: "non-vacuity of the KV semantics",
    meaning: "the KV semantics are exercised",
};

/// Sometimes: a jury change takes effect and a command commits under the new jury.
pub const CHANGE_IN_FORCE: Property = Property {
    name: "a change takes effect",
    modality: Modality::Sometimes,
    tla: None,
    source: "non-vacuity of reconfiguration",
    meaning: "a jury change is in force and a command is chosen under the new jury",
};

/// Eventually some command is chosen, under a stable proposer and a fair live quorum.
pub const EVENTUALLY_CHOSEN: Property = Property {
    name: "eventually chosen",
    modality: Modality::Eventually,
    tla: Some("EventuallyChosen"),
    source: "Lamport, Paxos Made Simple §2.4 (progress with a distinguished proposer)",
    meaning: "with a stable leader and a live quorum, a command is chosen",
};

/// Eventually every request is answered, under a stable proposer and a fair live quorum.
pub const EVENTUALLY_REPLIED: Property = Property {
    name: "eventually replied",
    modality: Modality::Eventually,
    tla: Some("EventuallyReplied"),
    source: "Lamport, Paxos Made Simple §2.4; Brooker et al. §2 (clients get answers)",
    meaning: "with a stable leader and a live quorum, every request is answered",
};

/// After GST a leader is seen within a bound and every request is answered within a bound.
pub const BOUNDED_LIVENESS: Property = Property {
    name: "liveness",
    modality: Modality::Eventually,
    tla: None,
    source: "Dwork, Lynch, Stockmeyer 1988 (partial synchrony: bounds after GST)",
    meaning: "after GST: a leader within B1, every request answered within B2",
};

/// Every property, safety first.
pub const ALL: &[Property] = &[
    AGREEMENT,
    COMMITTED_PREFIX,
    VALIDITY,
    PROMISE_MONOTONIC,
    DURABILITY,
    APPLIED_IN_ORDER,
    LINEARIZABLE,
    CONSISTENT_PREFIX,
    MONOTONIC_READS,
    ONE_CHANGE_AT_A_TIME,
    NO_VOTE_FROM_LOST_STATE,
    SNAPSHOT_IS_CHOSEN_PREFIX,
    COMMIT_NEVER_REGRESSES,
    COMMAND_CHOSEN,
    REPROPOSED,
    COMMIT_AFTER_RESTART,
    CONDITION_FAILED,
    CHANGE_IN_FORCE,
    EVENTUALLY_CHOSEN,
    EVENTUALLY_REPLIED,
    BOUNDED_LIVENESS,
];

/// The property named `name`, if it is in the catalogue.
pub fn by_name(name: &str) -> Option<&'static Property> {
    ALL.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tla_operators_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(
                    a.tla.is_none() || a.tla != b.tla,
                    "{} and {}",
                    a.name,
                    b.name
                );
            }
        }
        assert_eq!(by_name("durability"), Some(&DURABILITY));
    }
}
