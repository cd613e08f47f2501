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

pub mod properties;
pub mod state;
mod step;

use std::collections::BTreeMap;
use std::fmt;

use physalia_traces::{Config, Header, NodeId, Slot};

pub use state::{Ghost, Network, NodeSpec, SentMsg};
pub use step::StepInfo;

/// The fixed facts of the cell the trace comes from, and the one place the specification
/// asks which jury is in force at a slot.
#[derive(Clone, Debug)]
pub struct CellFacts {
    /// The initial configuration (the trace header's `config`).
    pub initial: Config,
    /// The pipeline window α.
    pub alpha: u64,
}

impl CellFacts {
    /// The facts stated by a trace header.
    pub fn from_header(h: &Header) -> CellFacts {
        CellFacts {
            initial: h.config.clone(),
            alpha: h.alpha,
        }
    }

    /// The configuration in force at `slot`. Every quorum rule of the specification asks
    /// this, per slot (`docs/protocol.md`, "Cell, nodes, ballots, quorums"); no jury change
    /// is a command of the log yet, so it is the initial configuration at every slot.
    pub fn jury_at(&self, _slot: Slot) -> &Config {
        &self.initial
    }

    /// Every node that is a member of some configuration (the nodes a trace may name).
    pub fn members(&self) -> &[NodeId] {
        &self.initial.members
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct World {
    /// Per node.
    pub nodes: BTreeMap<NodeId, NodeSpec>,
    /// Ghost variables.
    pub ghost: Ghost,
}

impl World {
    /// The initial state: every member has never run and holds nothing.
    pub fn initial(facts: &CellFacts) -> World {
        World {
            nodes: facts
                .members()
                .iter()
                .map(|n| (*n, NodeSpec::new()))
                .collect(),
            ghost: Ghost::default(),
        }
    }
}
