//! Trace refinement: recorded traces of the implementation replayed against `spec`, the cell
//! protocol at the implementation's step granularity (`refinement/README.md`).
//!
//! - [`spec`]: the specification, as a relation (state before, step input) → allowed step,
//!   with the safety properties of the catalogue (`physalia_traces::properties`).
//! - [`replay`]: conformance: a merged trace replayed step by step, with unlogged crashes and
//!   duplications inserted only where an event needs them.
//! - [`history`]: the client history of a trace, its linearizability and bounded liveness.
//! - [`kv`]: the cell's transactional key-value store as an executable specification.
//! - [`linearizability`]: checks a client history against [`kv::KvSpec`]
//!   (Wing–Gong/Lowe search with memoisation, split by independent keys).
//!
//! This crate links the model and the trace format, never the implementation it judges.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod histories;
pub mod history;
pub mod kv;
pub mod linearizability;
pub mod replay;
pub mod spec;
