//! The cell protocol at the implementation's step granularity: the specification a recorded
//! trace is replayed against.
//!
//! `physalia_model`'s stateright model is the protocol at the granularity that makes
//! exhaustive checking possible (one slot per `Accept`, atomic self-votes, a fixed
//! workload, at most four slots). The implementation core refines it: batched `Accept`s,
//! catch-up, persist batches acknowledged by a later step, votes that count once durable
//! (`impl/README.md` lists each difference). This module states *that* protocol as a
//! relation between a node's state before a step, the step's input, and what the step may
//! do: the state after it (promise, role, ballot, commit, the log entries written), the
//! durable writes, the messages sent and the client events. Where the protocol leaves a
//! choice to the node (when timers fire, which queued requests a leader proposes, what a
//! heartbeat re-ships), any choice within the rules is allowed; everything else is
//! determined and compared field by field.
//!
//! The safety properties are the model's (`model/src/properties.rs`), restated over this
//! state under the same names and checked on every replayed state (see [`properties`]).
//!
//! Layout: [`state`] (what the specification remembers), `step` (the rules, grouped by
//! phase like the core's handlers, with the comparison of a logged step against them and
//! the messages a step may send), [`properties`] (the safety properties' ghost).

pub mod bounds;
pub mod jury;
pub mod properties;
pub mod state;
mod step;

use std::collections::BTreeMap;
use std::fmt;

use physalia_traces::{Config, Header, NodeId, Slot};

pub use jury::Juries;
pub use state::{Ghost, Network, NodeSpec, SentMsg};
pub use step::StepInfo;

/// The fixed facts of the cell the trace comes from.
#[derive(Clone, Debug)]
pub struct CellFacts {
    /// The initial configuration (the trace header's `config`).
    pub initial: Config,
    /// Every node of the cell: the initial jury and the nodes that may join it later.
    pub nodes: Vec<NodeId>,
    /// The pipeline window α (a jury change chosen at `i` is in force from `i + α`).
    pub alpha: u64,
    /// The trace's schema version (from v3 every local read logs its answer).
    pub version: u32,
    /// No slot of the trace lies beyond this: every slot is proposed by a leader, which logs
    /// the entry, and slots are proposed in order from 0, so the trace's count of logged
    /// entries bounds them (see [`bounds`]).
    pub slot_bound: Slot,
    /// No persist batch id of the trace lies beyond this (see [`bounds::persist_bound`]).
    pub persist_bound: u64,
}

impl CellFacts {
    /// The facts stated by a trace header.
    pub fn from_header(h: &Header) -> CellFacts {
        let mut nodes = h.nodes.clone();
        nodes.extend(h.config.members.iter().copied());
        nodes.sort();
        nodes.dedup();
        CellFacts {
            initial: h.config.clone(),
            nodes,
            alpha: h.alpha,
            version: h.version,
            slot_bound: Slot::MAX,
            persist_bound: u64::MAX,
        }
    }

    /// The facts of a merged trace: its header's, and the bound on its slots.
    pub fn of(merged: &physalia_traces::Merged) -> CellFacts {
        CellFacts {
            slot_bound: bounds::slot_bound(merged),
            persist_bound: bounds::persist_bound(merged),
            ..CellFacts::from_header(&merged.header)
        }
    }

    /// The jury over time at the cell's start: the initial configuration from slot 0. Each
    /// node's copy (from what it applied) and the ghost (from the chosen prefix) move it on;
    /// every quorum of the specification is counted in the configuration of its slot.
    pub fn juries(&self) -> Juries {
        Juries::new(&self.initial.members, self.alpha)
    }

    /// Every node a trace may name.
    pub fn members(&self) -> &[NodeId] {
        &self.nodes
    }
}

/// One difference between what the specification allows and what the node logged.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The field of the event (`state.commit`, `sent[2].msg`, `persist.writes`, ...).
    pub field: String,
    /// What the specification allows there.
    pub allowed: String,
    /// What the node logged.
    pub logged: String,
}

impl Finding {
    /// A finding on `field`.
    pub fn new(
        field: impl Into<String>,
        allowed: impl fmt::Display,
        logged: impl fmt::Display,
    ) -> Self {
        Finding {
            field: field.into(),
            allowed: allowed.to_string(),
            logged: logged.to_string(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: allowed {}; logged {}",
            self.field, self.allowed, self.logged
        )
    }
}

/// A safety property that does not hold on a replayed state.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The property's name, as in the model.
    pub property: &'static str,
    /// What breaks it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// Why an event cannot be replayed on a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The event's action is not enabled in this state (the node is down, the message has
    /// no copy in flight, ...). An unlogged model action may enable it.
    Disabled(String),
    /// The action is enabled but the node did something the rules do not allow, or a
    /// safety property fails on what it did.
    Failed {
        /// Differences between the allowed step and the logged one.
        findings: Vec<Finding>,
        /// Safety properties broken by the logged step.
        violations: Vec<Violation>,
    },
}

/// One state of the specification: every node and the ghost variables. (The network of
/// sent messages is the same for every state of a frontier and lives beside it.)
#[derive(Clone, Debug, Default)]
pub struct World {
    /// Per node.
    pub nodes: BTreeMap<NodeId, NodeSpec>,
    /// Ghost variables.
    pub ghost: Ghost,
}

impl PartialEq for World {
    /// Field by field, the cheap summaries first. The states of one frontier differ mostly
    /// by what an unlogged crash left durable (an acceptance more or less, at a slot long
    /// past), and stay different for the rest of the trace: comparing them field by field
    /// from the first node on would walk every log and vote each event (a replay quadratic
    /// in the trace), where the count of votes tells them apart at once.
    fn eq(&self, other: &World) -> bool {
        let (a, b) = (&self.ghost, &other.ghost);
        a.vote_count == b.vote_count
            && a.votes.len() == b.votes.len()
            && a.chosen.len() == b.chosen.len()
            && a.candidate_ballots.len() == b.candidate_ballots.len()
            && self.nodes.len() == other.nodes.len()
            && self
                .nodes
                .iter()
                .zip(&other.nodes)
                .all(|((n, x), (m, y))| n == m && x.cheap_eq(y))
            && self.nodes == other.nodes
            && a == b
    }
}

impl World {
    /// The initial state: every node has never run and holds nothing; the members of the
    /// initial jury have a copy created with the cell, the others will be taught one.
    pub fn initial(facts: &CellFacts) -> World {
        World {
            nodes: facts
                .members()
                .iter()
                .map(|n| {
                    let learner = !facts.initial.contains(*n);
                    (*n, NodeSpec::new(facts.juries(), learner))
                })
                .collect(),
            ghost: Ghost::new(facts.juries()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use physalia_traces::{Ballot, Command, Config, VERSION};

    fn facts() -> CellFacts {
        CellFacts {
            initial: Config::with_nodes(3),
            nodes: (0..3).map(NodeId).collect(),
            alpha: 1,
            version: VERSION,
            slot_bound: Slot::MAX,
            persist_bound: u64::MAX,
        }
    }

    #[test]
    fn states_are_equal_exactly_when_their_acceptances_are() {
        let f = facts();
        let b = Ballot {
            round: 1,
            node: NodeId(0),
        };
        let vote = |w: &mut World, n: u32, slot: u64| {
            let mut out = Vec::new();
            properties::record_vote(
                &mut w.ghost,
                &f,
                NodeId(n),
                slot,
                b,
                &Command::Noop,
                &mut out,
            );
            assert!(out.is_empty(), "{out:?}");
        };
        let (mut x, mut y) = (World::initial(&f), World::initial(&f));
        assert_eq!(x, y);
        vote(&mut x, 0, 0);
        vote(&mut x, 1, 0);
        vote(&mut y, 1, 0);
        assert_ne!(x, y, "one acceptance more");
        vote(&mut y, 0, 0);
        vote(&mut y, 0, 0); // a second report of the same acceptance counts once
        assert_eq!(x, y, "the same acceptances, in another order");
        assert_eq!(x.ghost.vote_count, 2);
        vote(&mut x, 2, 1);
        vote(&mut y, 2, 2);
        assert_ne!(x, y, "as many acceptances, at other slots");
    }
}
