//! Trace refinement against the model (issue 5).
//!
//! - [`kv`]: the cell's transactional key-value store as an executable specification.

pub mod kv;
