//! The Physalia cell implementation.
//!
//! - [`core`]: the pure protocol core, `Cell::step(now, Input) -> Output` (no I/O, no
//!   clock, no OS randomness; persist-before-send enforced by the output type).
//! - [`kv`]: the cell's replicated state machine: the jury and a typed key-value store with
//!   transactions, total and deterministic.
//!
//! - [`sim`]: a deterministic simulator of one cell with a stated fault model, online
//!   invariant checks, and traces recorded through `tracing`.
//!
//! - [`wal`]: the node's write-ahead log: segmented, checksummed, with group commit and
//!   snapshots; shared by every cell of a node.
//!
//! - [`node`]: the production node on tokio: many cells per process, the WAL with group
//!   commit, one authenticated TCP link per peer, idle cells parked, traces and metrics.
//! - [`client`]: the client library: discovery, redirects, retries with jitter, typed
//!   errors.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "bugs")]
pub mod bugs;
pub mod client;
pub mod core;
pub mod kv;
pub mod node;
pub mod rng;
pub mod sim;
pub mod wal;
