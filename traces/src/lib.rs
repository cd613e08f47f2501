//! The Physalia trace format, schema v3 (v1 and v2 still read): the contract between the implementation and the
//! refinement layer.
//!
//! - [`vocab`] and [`kv`]: the protocol vocabulary (ballots, messages, commands,
//!   transactions) shared by the core, the trace and the checkers: one name per concept;
//!   [`display`]: the one rendering of those values for people.
//! - [`properties`]: the property catalogue (one name and one source per property).
//! - [`event`]: the header line, the per-step event line, and the step [`Input`] the core
//!   takes.
//! - [`io`]: a [`TraceWriter`] and a reader ([`read_path`], [`read_str`]) whose errors name
//!   the file, the line and the field.
//! - [`layer`]: a `tracing` layer recording events of the target [`TRACE_TARGET`].
//! - [`mod@merge`]: merging per-node files by Lamport clock and send→receive edges.
//!
//! `traces/README.md` documents the schema field by field.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod display;
pub mod event;
pub mod follow;
pub mod io;
pub mod kv;
pub mod layer;
pub mod merge;
pub mod properties;
pub mod vocab;

pub use event::{
    ClientEvent, ClientResult, DurableWrite, Header, Input, Kind, Observed, Persist, PersistId,
    ReadAnswer, Sent, TraceEvent, KIND_NAMES, NO_FLOOR_YET, OLDEST_VERSION, SCHEMA, VERSION,
};
pub use follow::{Follow, FollowError};
pub use io::{
    parse_event, parse_header, read_path, read_str, Located, ReadError, TraceFile, TraceWriter,
    MAX_ALPHA, MAX_LINE,
};
pub use kv::{ApplyError, Condition, JuryChange, Key, Txn, TxnResult, Value, WriteOp};
pub use layer::{record, LineSink, TraceLayer, TRACE_TARGET};
pub use merge::{merge, MergeError, Merged};
pub use vocab::{
    Ballot, CellId, ClientId, Command, Config, Endpoint, Entry, Envelope, Image, Msg, MsgId,
    NodeId, OpSeq, Proposal, Role, Slot, TimeoutKind,
};

pub use display::OrAbsent;
