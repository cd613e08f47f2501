//! # physalia-model — the executable specification of a Physalia cell
//!
//! One cell of `N` nodes runs Multi-Paxos with a distinguished proposer, as
//! `docs/protocol.md` describes, and applies committed commands to a small transactional
//! key-value store. [`CellModel`] is a stateright [`stateright::Model`]: it can be
//! model-checked (BFS or DFS), served in the stateright Explorer, and (later) used by the
//! refinement layer to replay implementation traces.
//!
//! Read it top-down like a specification:
//! - [`types`]: the vocabulary (ballots, commands, messages);
//! - [`kv`]: the state machine and the client workload;
//! - [`network`]: the fault model of the network;
//! - [`state`]: what a node, a client and the cell hold;
//! - `handlers`: what each message does (by protocol phase), and `proposer`: where a leader
//!   may propose (window, the slot's jury, phase 1 covering it);
//! - [`jury`] and `reconfig`: the jury of each slot, and the steps that change it (teaching,
//!   proposing a change, phase 1 across it, retiring);
//! - [`model`]: actions, transitions, properties;
//! - [`properties`]: each property, named, with where it comes from;
//! - [`config`]: bounds and the CI suites; [`mutant`]: the catalogue of broken variants
//!   ([`Mutant`]);
//! - [`symmetry`] and [`dead`]: the two state-space reductions, each with the argument for
//!   its exactness;
//! - [`check`]: running the checker with the work-arounds stateright 0.31 needs.

pub mod check;
pub mod config;
pub mod dead;
mod handlers;
pub mod jury;
pub mod kv;
pub mod linearizability;
pub mod model;
pub mod mutant;
pub mod network;
pub mod properties;
mod proposer;
mod reconfig;
pub mod render;
pub mod state;
pub mod symmetry;
pub mod types;

pub use config::{CellConfig, ChangeKinds, Mutant, NetworkKind};
pub use model::{Action, CellModel, Timer};
pub use state::CellState;
