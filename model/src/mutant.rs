//! The catalogue of broken variants: each one switch, each caught by the checker
//! (`tests/mutants.rs`), each with the smallest bounds known to expose it.

use std::fmt;
use std::str::FromStr;

use crate::config::{CellConfig, ChangeKinds};

/// A deliberately broken variant of the protocol. The checker must find a violation for each;
/// `tests/mutants.rs` asserts exactly that, property by property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// An acceptor accepts an `Accept` whose ballot is lower than its promise.
    AcceptLowerBallot,
    /// A new leader proposes `Noop` instead of the highest-ballot value reported in promises.
    IgnorePromisedValues,
    /// The leader commits a slot once a minority (itself alone) accepted it.
    CommitOnMinority,
    /// `promised` is volatile: a restart forgets it.
    PromiseNotDurable,
    /// The accepted log is volatile: a restart forgets it.
    AcceptedNotDurable,
    /// Ballots ignore the node id, so two nodes can lead with the same ballot.
    BallotNotUnique,
    /// An election winner skips phase 1 and starts proposing at once.
    SkipPrepare,
    /// A `Promise` reports entries only from the acceptor's own commit index, not from the
    /// candidate's `from`.
    PromiseOmitsAccepted,
    /// The leader applies and answers a slot as soon as a quorum accepted it, before earlier
    /// slots are committed.
    ApplyOutOfOrder,
    /// The leader answers a request as soon as it proposes it.
    ReplyBeforeCommit,
    /// A node that does not lead answers a read-only outcome (a read, or a conditional write
    /// whose condition fails) from its own state.
    StaleRead,
    /// A jury change chosen at slot `i` is in force from slot `i + 1`, as soon as it is
    /// chosen, instead of `i + α` (the same protocol when α = 1).
    ConfigEffectiveEarly,
    /// A node computes juries from every entry it accepted (up to its first hole), chosen
    /// or not, instead of from its committed prefix.
    ConfigFromUnchosen,
    /// The leader proposes a jury change while the previous one is not yet in force.
    ConcurrentChanges,
    /// A new leader's phase 1 is a majority of the jury at its commit index only: it counts
    /// the old jury's promises for slots under the new one and never extends phase 1.
    Phase1OldJury,
    /// The leader counts an `Accepted` from a node that is not in the slot's jury.
    StaleMemberVotes,
    /// A re-added node's fresh copy has no epoch of its own: no `since` guard (it promises
    /// and votes for slots of its earlier membership) and no memory of the slot its previous
    /// copy left (it may take its previous copy's membership for its own).
    AbaRejoin,
}

impl Mutant {
    /// Every variant, in catalogue order.
    pub const ALL: [Mutant; 17] = [
        Mutant::AcceptLowerBallot,
        Mutant::IgnorePromisedValues,
        Mutant::CommitOnMinority,
        Mutant::PromiseNotDurable,
        Mutant::AcceptedNotDurable,
        Mutant::BallotNotUnique,
        Mutant::SkipPrepare,
        Mutant::PromiseOmitsAccepted,
        Mutant::ApplyOutOfOrder,
        Mutant::ReplyBeforeCommit,
        Mutant::StaleRead,
        Mutant::ConfigEffectiveEarly,
        Mutant::ConfigFromUnchosen,
        Mutant::ConcurrentChanges,
        Mutant::Phase1OldJury,
        Mutant::StaleMemberVotes,
        Mutant::AbaRejoin,
    ];

    /// The name used by `physalia check --mutant`, the TLA+ `Mutant` constant and the docs.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::AcceptLowerBallot => "accept-lower-ballot",
            Mutant::IgnorePromisedValues => "ignore-promised-values",
            Mutant::CommitOnMinority => "commit-on-minority",
            Mutant::PromiseNotDurable => "promise-not-durable",
            Mutant::AcceptedNotDurable => "accepted-not-durable",
            Mutant::BallotNotUnique => "ballot-not-unique",
            Mutant::SkipPrepare => "skip-prepare",
            Mutant::PromiseOmitsAccepted => "promise-omits-accepted",
            Mutant::ApplyOutOfOrder => "apply-out-of-order",
            Mutant::ReplyBeforeCommit => "reply-before-commit",
            Mutant::StaleRead => "stale-read",
            Mutant::ConfigEffectiveEarly => "config-effective-early",
            Mutant::ConfigFromUnchosen => "config-from-unchosen",
            Mutant::ConcurrentChanges => "concurrent-changes",
            Mutant::Phase1OldJury => "phase1-old-jury",
            Mutant::StaleMemberVotes => "stale-member-votes",
            Mutant::AbaRejoin => "aba-rejoin",
        }
    }

    /// One line saying what is broken.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::AcceptLowerBallot => "an acceptor accepts a ballot lower than it promised",
            Mutant::IgnorePromisedValues => {
                "a new leader ignores values reported in promises and proposes no-ops"
            }
            Mutant::CommitOnMinority => "the leader commits once a minority accepted",
            Mutant::PromiseNotDurable => "the promised ballot is not persisted across restart",
            Mutant::AcceptedNotDurable => "accepted entries are not persisted across restart",
            Mutant::BallotNotUnique => "ballots are not unique across nodes",
            Mutant::SkipPrepare => "a new leader skips phase 1",
            Mutant::PromiseOmitsAccepted => {
                "a promise omits entries below the acceptor's own commit index"
            }
            Mutant::ApplyOutOfOrder => "the leader applies slots out of slot order",
            Mutant::ReplyBeforeCommit => "the leader replies before the command is committed",
            Mutant::StaleRead => "a node answers reads from local state without leadership",
            Mutant::ConfigEffectiveEarly => {
                "a jury change is in force at the next slot instead of α slots later"
            }
            Mutant::ConfigFromUnchosen => {
                "a node computes juries from accepted entries, chosen or not"
            }
            Mutant::ConcurrentChanges => {
                "a jury change is proposed while the previous one is not in force"
            }
            Mutant::Phase1OldJury => {
                "a new leader's phase 1 counts the old jury for slots under the new"
            }
            Mutant::StaleMemberVotes => "the leader counts votes of nodes not in the slot's jury",
            Mutant::AbaRejoin => {
                "a re-added node's fresh copy votes for slots of its earlier membership"
            }
        }
    }

    /// The smallest configuration known to expose this mutant: the default, plus a crash for
    /// the durability bugs; for non-unique ballots, two concurrent first elections in round 1
    /// (with the bootstrap leader at round 1 a tie needs deep runs: BFS outgrows memory). The
    /// reconfiguration mutants start from a cell of 3 nodes and the fewest changes, spares,
    /// slots and clients that make each a real bug (see each arm).
    pub fn config(self) -> CellConfig {
        let base = CellConfig {
            mutant: Some(self),
            ..CellConfig::default()
        };
        let reconfig = CellConfig {
            reconfigs: 1,
            spares: 1,
            ..base.clone()
        };
        match self {
            Mutant::PromiseNotDurable | Mutant::AcceptedNotDurable => CellConfig {
                max_crashes: 1,
                max_slots: 1,
                ..base
            },
            Mutant::BallotNotUnique => CellConfig {
                bootstrap_leader: false,
                max_elections: 2,
                max_round: 1,
                max_slots: 1,
                ..base
            },
            // replace(n2, n3) at slot 0 in force at 1 instead of 2 (α = 2): n0 commits a
            // client's write at slot 1 with n3's vote, which the jury {n0,n1,n2} of slot 1 does
            // not count.
            Mutant::ConfigEffectiveEarly => CellConfig {
                clients: 1,
                max_elections: 0,
                ..reconfig
            },
            // A node acting on an unchosen change: n2 accepts n0's remove(n2) at slot 0, a
            // failover's remove(n0) is chosen there instead, and n2 retires on the removal it
            // accepted. Outside the pipeline window a node only stops voting, teaches or
            // retires on a jury, which is why this is not a bug of this protocol
            // (`tests/mutants.rs`).
            Mutant::ConfigFromUnchosen => CellConfig {
                clients: 0,
                window: 1,
                reconfigs: 2,
                spares: 0,
                changes: ChangeKinds::REMOVE,
                ..base
            },
            // Two removals at slots 0 and 1 under α = 2: both chosen within α slots.
            Mutant::ConcurrentChanges => CellConfig {
                clients: 0,
                reconfigs: 2,
                spares: 0,
                max_elections: 0,
                changes: ChangeKinds::REMOVE,
                ..base
            },
            // replace(n2, n3) at slot 0 in force at 1 (α = 1), then n0's remove(n3) at slot 1
            // chosen by {n0, n3}; a failover elected by {n1, n2} at commit 0 re-proposes slot 0
            // and proposes remove(n1) at slot 1 without asking the new jury, and n3 accepts it.
            // Two proposals at one slot of the new jury take three changes without clients
            // (with one client and two changes the search is four times larger).
            Mutant::Phase1OldJury => CellConfig {
                clients: 0,
                window: 1,
                reconfigs: 3,
                changes: ChangeKinds {
                    replace: true,
                    add: false,
                    remove: true,
                },
                ..reconfig
            },
            // replace(n2, n3) at slot 0 in force at 1 (α = 1), a write at slot 1: n2, not yet
            // knowing it left, votes, and the leader counts it with its own.
            Mutant::StaleMemberVotes => CellConfig {
                clients: 1,
                window: 1,
                max_elections: 0,
                ..reconfig
            },
            // replace(n2, n3) at 0, n2 retires, replace(n3, n2) at 1 (α = 1); n1, which never
            // saw slot 0, is elected by itself and n2's fresh copy, and re-decides slot 0.
            Mutant::AbaRejoin => CellConfig {
                clients: 0,
                window: 1,
                reconfigs: 2,
                ..reconfig
            },
            _ => base,
        }
    }

    /// Whether the model removes dead messages (`crate::dead`) under this mutant. Removing a
    /// message is losing it, which the fault model allows, so every counterexample found
    /// with collection is a real execution; but the rules' arguments (ballots only grow,
    /// phase 1 recovers every chosen value) are the correct protocol's, so under a mutant
    /// collection may hide a bug. The classic mutants run without it; the reconfiguration
    /// mutants whose shortest counterexample is deep run with it, each shown caught by
    /// `tests/mutants.rs` (`aba-rejoin` without: its bug needs the messages the `since`
    /// guard makes dead).
    pub fn collects_dead(self) -> bool {
        matches!(
            self,
            Mutant::ConfigEffectiveEarly
                | Mutant::ConfigFromUnchosen
                | Mutant::ConcurrentChanges
                | Mutant::Phase1OldJury
                | Mutant::StaleMemberVotes
        )
    }

    /// The `always` properties the checker is expected to report violated (at least one).
    pub fn expected_violations(self) -> &'static [&'static str] {
        use physalia_traces::properties as p;
        match self {
            Mutant::AcceptLowerBallot
            | Mutant::IgnorePromisedValues
            | Mutant::BallotNotUnique
            | Mutant::SkipPrepare
            | Mutant::PromiseOmitsAccepted
            | Mutant::AcceptedNotDurable => &[
                p::AGREEMENT.name,
                p::COMMITTED_PREFIX.name,
                p::DURABILITY.name,
            ],
            Mutant::CommitOnMinority => &[
                p::DURABILITY.name,
                p::AGREEMENT.name,
                p::COMMITTED_PREFIX.name,
            ],
            Mutant::PromiseNotDurable => &[p::PROMISE_MONOTONIC.name],
            Mutant::ApplyOutOfOrder => &[p::APPLIED_IN_ORDER.name, p::LINEARIZABLE.name],
            Mutant::ReplyBeforeCommit => &[p::DURABILITY.name],
            Mutant::StaleRead => &[p::LINEARIZABLE.name],
            Mutant::ConfigEffectiveEarly
            | Mutant::StaleMemberVotes
            | Mutant::Phase1OldJury
            | Mutant::AbaRejoin => &[
                p::AGREEMENT.name,
                p::COMMITTED_PREFIX.name,
                p::DURABILITY.name,
            ],
            Mutant::ConcurrentChanges => &[p::ONE_CHANGE_AT_A_TIME.name],
            // Not a bug of this protocol (see `tests/mutants.rs`): nothing is expected.
            Mutant::ConfigFromUnchosen => &[],
        }
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mutant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mutant::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown mutant {s:?}: `physalia check --list-mutants` lists them")
            })
    }
}
