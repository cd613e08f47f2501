//! Merging per-node trace files into one causal order.
//!
//! The merge checks, per node, that the sequence numbers of each incarnation are dense from
//! 0, that incarnations only grow, and that the Lamport clock strictly increases; and, per
//! message, that every receive names a send present in the files whose clock is lower.
//! Under those checks, ordering every event by `(lc, node, inc, seq)` respects both each
//! node's own order and every send→receive edge.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::event::{Header, Input, Kind};
use crate::io::{Located, TraceFile};
use crate::vocab::{Endpoint, MsgId, NodeId};

/// A merged trace: one header and every event in a causal total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The header shared by every input file.
    pub header: Header,
    /// All events, ordered by `(lc, node, inc, seq)`.
    pub events: Vec<Located>,
}

/// Why files could not be merged. Each variant names the file and line at fault.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    /// No input file.
    #[error("nothing to merge: no trace file given")]
    NoInput,
    /// Two files describe different cells or configurations.
    #[error(
        "{file}:1: header differs from {first}:1 (cell, nodes, configuration and α must match)"
    )]
    HeaderMismatch {
        /// The file whose header differs.
        file: String,
        /// The first file.
        first: String,
    },
    /// A node's sequence numbers skip or repeat.
    #[error(
        "{file}:{line}: sequence gap for {node} incarnation {inc}: expected seq {expected}, \
         found {found} (events are missing or duplicated)"
    )]
    SeqGap {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The node.
        node: NodeId,
        /// The incarnation.
        inc: u64,
        /// The sequence number expected.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A node's Lamport clock does not increase from one step to the next.
    #[error(
        "{file}:{line}: clock runs backwards at {node}: lc {lc} after lc {previous} \
         (a node's Lamport clock must strictly increase, across restarts too)"
    )]
    ClockBackwards {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The node.
        node: NodeId,
        /// The clock of the node's previous event.
        previous: u64,
        /// The clock found.
        lc: u64,
    },
    /// Two events claim to have sent the same message id.
    #[error("{file}:{line}: message {id} was already sent at {other}")]
    DuplicateSend {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The id.
        id: MsgId,
        /// Where it was first sent (`file:line`).
        other: String,
    },
    /// A receive names a message no event sent.
    #[error("{file}:{line}: receive of message {id} without a send (is a node's file missing?)")]
    ReceiveWithoutSend {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The id received.
        id: MsgId,
    },
    /// A receive's clock is not above its send's, or names another clock than the send.
    #[error(
        "{file}:{line}: receive of message {id} at lc {lc} is inconsistent with its send at \
         {send} (lc {send_lc}): the receive must carry the send's lc and come after it"
    )]
    ClockBeforeSend {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// The id received.
        id: MsgId,
        /// The receiving event's clock.
        lc: u64,
        /// Where it was sent (`file:line`).
        send: String,
        /// The sending event's clock.
        send_lc: u64,
    },
}

/// Merges trace files (one per node, or any split) into one causal order.
pub fn merge(files: Vec<TraceFile>) -> Result<Merged, MergeError> {
    let first = files.first().ok_or(MergeError::NoInput)?;
    let header = first.header.clone();
    let first_name = first.file.clone();
    let mut by_node: BTreeMap<NodeId, Vec<Located>> = BTreeMap::new();
    for f in files {
        if f.header != header {
            return Err(MergeError::HeaderMismatch {
                file: f.file,
                first: first_name,
            });
        }
        for ev in f.events {
            by_node.entry(ev.event.node).or_default().push(ev);
        }
    }
    for events in by_node.values_mut() {
        events.sort_by_key(|e| (e.event.inc, e.event.seq));
        check_node(events)?;
    }
    let mut all: Vec<Located> = by_node.into_values().flatten().collect();
    check_edges(&all)?;
    all.sort_by_key(|e| (e.event.lc, e.event.node, e.event.inc, e.event.seq));
    Ok(Merged {
        header,
        events: all,
    })
}

/// Checks one node's events, sorted by `(inc, seq)`.
fn check_node(events: &[Located]) -> Result<(), MergeError> {
    let mut previous: Option<&Located> = None;
    for ev in events {
        let e = &ev.event;
        let expected = match previous {
            Some(p) if p.event.inc == e.inc => p.event.seq + 1,
            _ => 0,
        };
        if e.seq != expected {
            return Err(MergeError::SeqGap {
                file: ev.file.clone(),
                line: ev.line,
                node: e.node,
                inc: e.inc,
                expected,
                found: e.seq,
            });
        }
        if let Some(p) = previous {
            if e.lc <= p.event.lc {
                return Err(MergeError::ClockBackwards {
                    file: ev.file.clone(),
                    line: ev.line,
                    node: e.node,
                    previous: p.event.lc,
                    lc: e.lc,
                });
            }
        }
        previous = Some(ev);
    }
    Ok(())
}

/// Checks that every receive has a send with a lower clock.
fn check_edges(events: &[Located]) -> Result<(), MergeError> {
    let mut sends: BTreeMap<MsgId, (u64, String)> = BTreeMap::new();
    for ev in events {
        for s in &ev.event.sent {
            if !matches!(s.to, Endpoint::Node(_)) {
                continue;
            }
            let at = format!("{}:{}", ev.file, ev.line);
            if let Some((_, other)) = sends.insert(s.id, (ev.event.lc, at)) {
                return Err(MergeError::DuplicateSend {
                    file: ev.file.clone(),
                    line: ev.line,
                    id: s.id,
                    other,
                });
            }
        }
    }
    // A held message leaves when its sender releases it, with the releasing step's clock.
    for ev in events {
        for id in &ev.event.released {
            if let Some(entry) = sends.get_mut(id) {
                if entry.0 < ev.event.lc {
                    *entry = (ev.event.lc, format!("{}:{}", ev.file, ev.line));
                }
            }
        }
    }
    for ev in events {
        let Kind::Input(Input::Deliver { id, lc, .. }) = &ev.event.kind else {
            continue;
        };
        let Some((send_lc, send)) = sends.get(id) else {
            return Err(MergeError::ReceiveWithoutSend {
                file: ev.file.clone(),
                line: ev.line,
                id: *id,
            });
        };
        if *lc != *send_lc || ev.event.lc <= *send_lc {
            return Err(MergeError::ClockBeforeSend {
                file: ev.file.clone(),
                line: ev.line,
                id: *id,
                lc: ev.event.lc,
                send: send.clone(),
                send_lc: *send_lc,
            });
        }
    }
    Ok(())
}
