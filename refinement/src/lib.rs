//! Trace refinement against the model (issue 5).
//!
//! - [`kv`]: the cell's transactional key-value store as an executable specification.
//! - [`linearizability`]: checks a client history against [`kv::KvSpec`]
//!   (Wing–Gong/Lowe search with memoisation, split by independent keys).

pub mod history;
pub mod kv;
pub mod linearizability;
pub mod replay;
pub mod spec;
