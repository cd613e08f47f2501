//! Injected bugs (feature `bugs`, never in the default build): deliberately broken variants
//! of the core, selectable at run time through [`crate::core::Options::bug`] (and
//! [`crate::sim::SimConfig::bug`]), to measure the detection power of the online checks and
//! of the refinement layer. Names match the model's mutants (`physalia_model::Mutant`) where
//! the bug is the same.

use std::fmt;
use std::str::FromStr;

/// One injected bug; each lives in a small `#[cfg(feature = "bugs")]` branch of the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// An acceptor sends its `Promise` before the promise is durable.
    PromiseBeforeDurable,
    /// An acceptor accepts an `Accept` whose ballot is lower than its promise.
    AcceptLowerBallot,
    /// An election winner skips phase 1 and starts proposing at once.
    SkipPrepare,
    /// A new leader proposes `Noop` instead of the highest-ballot value reported in promises.
    IgnorePromisedValues,
    /// The leader commits a slot once a minority (itself alone) accepted it.
    CommitOnMinority,
    /// The leader answers a client once the command is durable on itself alone.
    ReplyBeforeCommit,
    /// Committed slots are applied in reverse slot order when several commit at once.
    ApplyOutOfOrder,
    /// A leader answers read-only transactions from its local state, without the log.
    StaleRead,
    /// A restarted node forgets the rounds it used and stands from round 1 again.
    BallotReuseAfterRestart,
    /// A `Commit` advances the commit index over entries of any ballot.
    CatchupWithoutBallots,
    /// A jury change is in force one slot after its own instead of α slots after.
    ConfigEffectiveEarly,
    /// A second jury change is proposed while one is not yet in force.
    ConcurrentChanges,
    /// A leader's phase 1 counts the promises of its election's jury for slots under a new
    /// configuration.
    Phase1OldJury,
    /// The leader counts a vote for a slot from a node that is not a member there.
    StaleMemberVotes,
    /// A fresh copy (created after a disk loss or for a node added back) votes and promises
    /// for slots before its membership starts, as if it remembered them.
    VoteAfterAmnesia,
    /// A snapshot is installed whatever the receiver's commit index, replacing its whole
    /// log (as a naive state transfer does): a stale one rolls back a longer chosen prefix
    /// and drops accepted entries above it.
    StaleSnapshot,
}

impl Bug {
    /// Every bug, in a fixed order.
    pub const ALL: [Bug; 16] = [
        Bug::PromiseBeforeDurable,
        Bug::AcceptLowerBallot,
        Bug::SkipPrepare,
        Bug::IgnorePromisedValues,
        Bug::CommitOnMinority,
        Bug::ReplyBeforeCommit,
        Bug::ApplyOutOfOrder,
        Bug::StaleRead,
        Bug::BallotReuseAfterRestart,
        Bug::CatchupWithoutBallots,
        Bug::ConfigEffectiveEarly,
        Bug::ConcurrentChanges,
        Bug::Phase1OldJury,
        Bug::StaleMemberVotes,
        Bug::VoteAfterAmnesia,
        Bug::StaleSnapshot,
    ];

    /// The bug's name, as `--bug NAME` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Bug::PromiseBeforeDurable => "promise-before-durable",
            Bug::AcceptLowerBallot => "accept-lower-ballot",
            Bug::SkipPrepare => "skip-prepare",
            Bug::IgnorePromisedValues => "ignore-promised-values",
            Bug::CommitOnMinority => "commit-on-minority",
            Bug::ReplyBeforeCommit => "reply-before-commit",
            Bug::ApplyOutOfOrder => "apply-out-of-order",
            Bug::StaleRead => "stale-read",
            Bug::ConfigEffectiveEarly => "config-effective-early",
            Bug::ConcurrentChanges => "concurrent-changes",
            Bug::Phase1OldJury => "phase1-old-jury",
            Bug::StaleMemberVotes => "stale-member-votes",
            Bug::VoteAfterAmnesia => "vote-after-amnesia",
            Bug::StaleSnapshot => "stale-snapshot",
            Bug::BallotReuseAfterRestart => "ballot-reuse-after-restart",
            Bug::CatchupWithoutBallots => "catchup-without-ballots",
        }
    }

    /// One line saying what is broken, and where.
    pub fn description(self) -> &'static str {
        match self {
            Bug::PromiseBeforeDurable => {
                "acceptor.rs on_prepare: the Promise is sent before the promise is durable"
            }
            Bug::AcceptLowerBallot => {
                "acceptor.rs on_accept: an Accept below the promise is accepted, not refused"
            }
            Bug::SkipPrepare => {
                "proposer.rs stand: the candidate becomes leader without phase 1"
            }
            Bug::IgnorePromisedValues => {
                "proposer.rs become_leader: Noop is re-proposed in every unchosen slot"
            }
            Bug::CommitOnMinority => {
                "proposer.rs advance_commit: the leader's own vote is taken for a quorum"
            }
            Bug::ReplyBeforeCommit => {
                "proposer.rs on_self_vote: the client is answered once the leader's own write is durable"
            }
            Bug::ApplyOutOfOrder => {
                "acceptor.rs apply_committed: slots committed together are applied in reverse"
            }
            Bug::StaleRead => {
                "client.rs on_request: a (possibly deposed) leader answers read-only transactions locally"
            }
            Bug::BallotReuseAfterRestart => {
                "mod.rs restart / proposer.rs on_election_timeout: a candidate's rounds restart from 1"
            }
            Bug::CatchupWithoutBallots => {
                "acceptor.rs on_commit: the commit index advances over entries of any ballot"
            }
            Bug::ConfigEffectiveEarly => {
                "kv.rs reconfigure (through mod.rs restart): a change is in force at i + 1"
            }
            Bug::ConcurrentChanges => {
                "membership.rs change_in_flight: a second change is proposed before the first is in force"
            }
            Bug::Phase1OldJury => {
                "membership.rs covered: the election's promises are counted for any configuration"
            }
            Bug::StaleMemberVotes => {
                "proposer.rs advance_commit: votes of non-members of the slot's jury count"
            }
            Bug::StaleSnapshot => {
                "acceptor.rs on_snapshot: a snapshot at or below the commit index is installed, and the log above it dropped"
            }
            Bug::VoteAfterAmnesia => {
                "membership.rs votes_at / on_change_applied: a fresh copy (a node's lost state, or a copy re-created after it left) votes and promises for slots before its since, and takes any change adding its node for its own"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?}: expected one of {}", names.join(", "))
        })
    }
}
