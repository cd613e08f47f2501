//! The Physalia colony: where cells live.
//!
//! - [`topology`]: the topology file (nodes and their failure domains, clients and where
//!   they are), parsed and validated with errors naming file, line and field.
//! - [`placement`]: a placement (each cell's client and jury), its file format, and the
//!   baseline strategies `rotation` (the old behaviour) and `random`.
//! - [`domain_aware`]: placement close to the client under the rule of [`check`], one
//!   color per cell, with a load cap; [`swap`]: the swap heuristic and its objective.
//! - [`check`]: the placement rule and, for every single-domain failure (and every pair),
//!   which cells lose their quorum and which clients lose their cell.
//! - [`availability`]: the failure model; the exact `P(cell available | client available)`
//!   and its second-order approximation.
//! - [`report`] and [`html`]: the strategies side by side, as data and as a self-contained
//!   page; [`simulate`]: a Monte Carlo of failures and repairs over time.
//! - [`gen`]: a seeded generator of large topologies.
//! - [`discovery`]: the discovery cache clients find cells through (a hint, never trusted
//!   for correctness).
//!
//! `colony/README.md` documents the file formats, the rule, the objective and the figures.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod availability;
pub mod bitset;
pub mod check;
pub mod discovery;
pub mod domain_aware;
pub mod gen;
pub mod html;
pub mod placement;
pub mod report;
pub mod rng;
pub mod simulate;
pub mod swap;
pub mod topology;

pub use availability::FailureModel;
pub use check::{check, CheckReport};
pub use placement::{Demand, Placement, Resolved};
pub use topology::{Level, Topology};
