//! The bounds of a model run, its network semantics, and the catalogue of broken variants.

use std::fmt;
use std::str::FromStr;

/// How the network treats messages. Loss is a separate switch ([`CellConfig::lossy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// FIFO per directed pair of endpoints; only the oldest message of a pair can be delivered.
    Ordered,
    /// Any order; each send is delivered at most once.
    Unordered,
    /// Any order, any number of times: a message stays deliverable once sent (a set, as in
    /// Lamport's `msgs`).
    Duplicating,
}

impl NetworkKind {
    /// The names accepted on the command line.
    pub const NAMES: [&'static str; 3] = ["ordered", "unordered", "duplicating"];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Ordered => "ordered",
            NetworkKind::Unordered => "unordered",
            NetworkKind::Duplicating => "duplicating",
        }
    }
}

impl FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ordered" => Ok(NetworkKind::Ordered),
            "unordered" => Ok(NetworkKind::Unordered),
            "duplicating" => Ok(NetworkKind::Duplicating),
            _ => Err(format!(
                "unknown network {s:?}: expected one of {}",
                NetworkKind::NAMES.join(", ")
            )),
        }
    }
}

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
}

impl Mutant {
    /// Every variant, in catalogue order.
    pub const ALL: [Mutant; 11] = [
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
        }
    }

    /// The smallest configuration known to expose this mutant: the default, plus a crash for
    /// the durability bugs; for non-unique ballots, two concurrent first elections in round 1
    /// (with the bootstrap leader at round 1 a tie needs deep runs: BFS outgrows memory).
    pub fn config(self) -> CellConfig {
        let base = CellConfig {
            mutant: Some(self),
            ..CellConfig::default()
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
            _ => base,
        }
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

/// The bounds of a model run. Every field bounds the state space.
///
/// The default is the "failover" configuration: 3 nodes, 2 clients with one operation each,
/// 2 slots, rounds ≤ 2, `n0` leading from the start, one failover election, no crash, a lossy
/// duplicating network. CI checks it and the [`CellConfig::ci_suite`] exhaustively. A crash
/// on top of it (the single configuration) is more than 10⁷ states even with
/// symmetry: `physalia check --crashes 1` runs it, for tens of minutes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CellConfig {
    /// Nodes in the cell (3 to 7).
    pub nodes: u8,
    /// Clients (1 to 3).
    pub clients: u8,
    /// Operations each client issues, one after the other (1 to 3).
    pub ops_per_client: u8,
    /// The highest ballot round any node may use.
    pub max_round: u8,
    /// Log slots (1 to [`crate::types::MAX_SLOTS`]).
    pub max_slots: u8,
    /// How many crashes may happen in a run.
    pub max_crashes: u8,
    /// How many elections (`Timeout(election)`) may happen in a run, across all nodes.
    pub max_elections: u8,
    /// The pipeline window α: a leader proposes at slot `s` only once every slot below
    /// `s - α + 1` is committed (1: one proposal in flight at a time).
    pub window: u8,
    /// Whether the cell starts with `n0` as its distinguished proposer at ballot `(1, n0)`,
    /// promised by every node, as a cell does once the control plane has created it and its
    /// first election is over. Elections then model failovers. Without it, every node starts
    /// as a follower and the first leader is elected too.
    pub bootstrap_leader: bool,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether messages may be lost. Loss is an explicit `Drop` action on ordered and unordered
    /// networks. A duplicating network needs none: a message that stays in the set but is
    /// never delivered is lost, so dropping it would only double the states for nothing.
    pub lossy: bool,
    /// The broken variant to run, if any.
    pub mutant: Option<Mutant>,
}

impl Default for CellConfig {
    fn default() -> Self {
        CellConfig {
            nodes: 3,
            clients: 2,
            ops_per_client: 1,
            max_round: 2,
            max_slots: 2,
            max_crashes: 0,
            max_elections: 1,
            window: 2,
            bootstrap_leader: true,
            network: NetworkKind::Duplicating,
            lossy: true,
            mutant: None,
        }
    }
}

impl CellConfig {
    /// The configurations CI checks exhaustively, by name: together they cover two clients,
    /// two slots, a failover and a crash, each pair of them at once.
    pub fn ci_suite() -> Vec<(&'static str, CellConfig)> {
        let d = CellConfig::default();
        vec![
            ("failover", d.clone()),
            (
                "crash and failover, one slot",
                CellConfig {
                    max_crashes: 1,
                    max_slots: 1,
                    ..d.clone()
                },
            ),
            (
                "crash, two slots",
                CellConfig {
                    max_crashes: 1,
                    max_elections: 0,
                    ..d
                },
            ),
        ]
    }

    /// Checks the bounds, saying which one is out of range.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: u8, lo: u8, hi: u8| {
            if v < lo || v > hi {
                Err(format!("{name} = {v} is out of range {lo}..={hi}"))
            } else {
                Ok(())
            }
        };
        check("nodes", self.nodes, 1, 7)?;
        check("clients", self.clients, 0, 3)?;
        check("ops per client", self.ops_per_client, 0, 3)?;
        check("max round", self.max_round, 1, 9)?;
        check(
            "max slots",
            self.max_slots,
            1,
            crate::types::MAX_SLOTS as u8,
        )?;
        check("crashes", self.max_crashes, 0, 9)?;
        check("elections", self.max_elections, 0, 9)?;
        check("window", self.window, 1, 8)?;
        Ok(())
    }

    /// The size of a quorum: a majority of the cell's jury.
    pub fn quorum(&self) -> usize {
        self.nodes as usize / 2 + 1
    }

    /// Whether the given mutant is switched on.
    pub fn has(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }
}
