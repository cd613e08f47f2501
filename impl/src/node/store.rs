//! What the node writes to its one write-ahead log, and how it boots from it.
//!
//! Every WAL payload is one postcard-encoded [`WalRecord`]: a [`WalRecord::Boot`] written
//! and synced at each start (the incarnation and the Lamport floor of that run), or a
//! [`WalRecord::Persist`] holding one cell's persist batch, written in the order the core
//! issued it. Boot replays every record in log order: the highest boot record gives the
//! next incarnation and floor, and each cell's batches rebuild its [`Durable`] state.
//!
//! **Snapshots** compact the log: when every issued batch is durable, the runtime writes a
//! [`Snapshot`] of every cell's durable state (its promise and log, as the core holds them
//! then) and of this run's boot record, at the last appended LSN; the WAL then deletes the
//! segments it covers. Boot starts from the latest snapshot and replays the records after
//! it. Each cell's log is bounded by the core, which folds its applied prefix into a
//! per-cell snapshot (`DurableWrite::Snapshot`, kept here in [`Snapshot::images`]) every
//! `snapshot_every` slots, so a node snapshot holds at most that many entries per cell.

use std::collections::HashMap;

use physalia_traces::{Ballot, Command, DurableWrite, Image, NodeId, Slot};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::identity::Identity;
use super::wire::Instance;
use crate::core::{Boot, Durable};

/// A position in the log (assigned by the log, increasing).
pub type Lsn = u64;

/// One WAL payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalRecord {
    /// A start of the node: its incarnation and Lamport floor, durable before it serves.
    Boot {
        /// The incarnation of this run.
        inc: u64,
        /// Every cell's Lamport clock starts above this.
        lamport: u64,
    },
    /// One persist batch of one cell.
    Persist {
        /// The cell.
        cell: String,
        /// The writes, in order.
        writes: Vec<DurableWrite>,
    },
    /// This node hosts a copy of `cell` created by teaching (a learner's copy, for a jury
    /// change adding it): written before the copy's first batch.
    Hosted {
        /// The cell.
        cell: String,
    },
    /// This node deleted its copy of `cell` (its removal was in force) and forwards its
    /// clients to `jury`.
    Deleted {
        /// The cell.
        cell: String,
        /// The jury it forwards to.
        jury: Vec<NodeId>,
    },
    /// Whose log this is: the first record of a log (before its first `Boot`).
    Identity {
        /// The node, cluster and instance.
        identity: Identity,
        /// The instance re-entered with `--rejoin`: the node hosts no copy of the initial
        /// placement (its old memberships are not its to vote in).
        rejoined: bool,
    },
    /// A peer's instance, recorded before this node vouches for it (see
    /// [`super::identity`]).
    PeerInstance {
        /// The peer.
        node: NodeId,
        /// Its instance.
        instance: Instance,
    },
    /// Like `Hosted`, for a learner's copy with a floor (see [`Durable::floor`]): a copy
    /// re-created after this node left the cell, or one of a rejoined instance.
    HostedFrom {
        /// The cell.
        cell: String,
        /// The copy's floor.
        floor: Slot,
    },
    /// This node's copy of `cell` left the jury at `slot` (the first slot of the
    /// configuration without it): written before `Deleted`, and kept for good, so that a
    /// copy re-created later takes no membership of before it.
    Left {
        /// The cell.
        cell: String,
        /// The slot it left at.
        slot: Slot,
    },
}

/// One cell in a [`Snapshot`]: its name, durable promise and durable log.
pub type CellImage = (String, Ballot, Vec<(Slot, Ballot, Command)>);

/// A snapshot of the node's durable state (a WAL snapshot's payload, postcard).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The boot record of the run that wrote it: (incarnation, Lamport floor).
    pub boot: (u64, u64),
    /// Each cell with durable state: its name, promise and log.
    pub cells: Vec<CellImage>,
    /// The cells whose copy here was created by teaching (learners' copies).
    pub learners: Vec<String>,
    /// The cells this node deleted its copy of, and the jury each forwards to.
    pub forwards: Vec<(String, Vec<NodeId>)>,
    /// Whose log this is, and whether it rejoined.
    pub identity: Option<(Identity, bool)>,
    /// The instance of every peer recorded.
    pub peers: Vec<(NodeId, Instance)>,
    /// The floor of each learner's copy that has one.
    pub floors: Vec<(String, Slot)>,
    /// The slot this node's copy of each cell last left the jury at.
    pub left: Vec<(String, Slot)>,
    /// Each cell's own snapshot (its state machine as of a chosen prefix; the cell's log in
    /// `cells` holds only the slots above it).
    pub images: Vec<(String, Image)>,
}

/// A storage failure; the node stops rather than run on an unknown durable state.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The log refused an operation.
    #[error("write-ahead log: {0}")]
    Log(String),
    /// The node must not run on this state (see [`super::identity`]).
    #[error("{0}")]
    Refused(String),
    /// A record in the log is not a record this node writes.
    #[error("write-ahead log record at lsn {lsn} does not decode: {why}")]
    Record {
        /// Where.
        lsn: Lsn,
        /// What is wrong.
        why: String,
    },
}

/// The operations of the node's log that the runtime uses (the WAL, or a test double).
pub trait Log: Send + Sync + 'static {
    /// Appends a payload (buffered, not yet durable) and returns its position.
    fn append(&self, payload: &[u8]) -> Result<Lsn, StoreError>;
    /// Blocks until every record `<= lsn` is durable (group commit: one `fdatasync`).
    fn sync_to(&self, lsn: Lsn) -> Result<(), StoreError>;
    /// How many syncs reached the disk so far.
    fn fsyncs(&self) -> u64;
    /// Writes `state` as covering every record `<= lsn` (blocking) and drops what it covers.
    fn snapshot(&self, lsn: Lsn, state: &[u8]) -> Result<(), StoreError>;
}

/// What boot learns from the log.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The boot record of this run (incarnation one above the last, floor above the last).
    pub boot: Boot,
    /// Each cell's durable state.
    pub cells: HashMap<String, Durable>,
    /// The cells whose copy this node deleted, and the jury each forwards to.
    pub forwards: HashMap<String, Vec<NodeId>>,
    /// Whose log this is (its `Identity` record), and whether it rejoined.
    pub identity: Option<(Identity, bool)>,
    /// The instance recorded for each peer.
    pub peers: HashMap<NodeId, Instance>,
    /// The slot this node's copy of each cell last left the jury at.
    pub left: HashMap<String, Slot>,
    /// How many records were read.
    pub records: u64,
}

impl Replayed {
    /// Whether the log holds anything this node may have voted or answered with: a promise
    /// or entry of some cell, a hosted or deleted copy.
    pub fn holds_votes(&self) -> bool {
        !self.forwards.is_empty()
            || self.cells.values().any(|d| {
                d.learner || !d.promised.is_zero() || !d.log.is_empty() || d.image.is_some()
            })
    }
}

/// Rebuilds durable state from the log's records (in log order) and picks this run's
/// incarnation and Lamport floor. `wall_micros` is the wall clock at boot: the floor is the
/// larger of it and one above the previous floor, which keeps every Lamport clock of the new
/// run above those of earlier runs as long as the cluster takes fewer than a million steps
/// per second per cell.
pub fn replay(
    snapshot: Option<&(Lsn, Vec<u8>)>,
    records: &[(Lsn, Vec<u8>)],
    wall_micros: u64,
) -> Result<Replayed, StoreError> {
    let mut out = Replayed::default();
    let mut last: Option<(u64, u64)> = None;
    if let Some((lsn, bytes)) = snapshot {
        let snap: Snapshot = postcard::from_bytes(bytes).map_err(|e| StoreError::Record {
            lsn: *lsn,
            why: format!("snapshot: {e}"),
        })?;
        last = Some(snap.boot);
        for (cell, promised, log) in snap.cells {
            let durable = Durable {
                promised,
                log: log.into_iter().map(|(s, b, c)| (s, (b, c))).collect(),
                learner: snap.learners.contains(&cell),
                floor: 0,
                image: None,
            };
            out.cells.insert(cell, durable);
        }
        for cell in snap.learners {
            out.cells.entry(cell).or_default().learner = true;
        }
        for (cell, floor) in snap.floors {
            out.cells.entry(cell).or_default().floor = floor;
        }
        for (cell, image) in snap.images {
            out.cells.entry(cell).or_default().image = Some(image);
        }
        out.left.extend(snap.left);
        out.forwards.extend(snap.forwards);
        out.identity = snap.identity;
        out.peers.extend(snap.peers);
    }
    for (lsn, payload) in records {
        let record: WalRecord = postcard::from_bytes(payload).map_err(|e| StoreError::Record {
            lsn: *lsn,
            why: e.to_string(),
        })?;
        out.records += 1;
        match record {
            WalRecord::Boot { inc, lamport } => {
                let (i, l) = last.unwrap_or((0, 0));
                last = Some((i.max(inc), l.max(lamport)));
            }
            WalRecord::Persist { cell, writes } => {
                out.cells.entry(cell).or_default().apply(&writes);
            }
            WalRecord::Hosted { cell } => {
                out.forwards.remove(&cell);
                out.cells.insert(
                    cell,
                    Durable {
                        learner: true,
                        ..Durable::default()
                    },
                );
            }
            WalRecord::HostedFrom { cell, floor } => {
                out.forwards.remove(&cell);
                out.cells.insert(
                    cell,
                    Durable {
                        learner: true,
                        floor,
                        ..Durable::default()
                    },
                );
            }
            WalRecord::Left { cell, slot } => {
                let at = out.left.entry(cell).or_default();
                *at = (*at).max(slot);
            }
            WalRecord::Deleted { cell, jury } => {
                out.cells.remove(&cell);
                out.forwards.insert(cell, jury);
            }
            WalRecord::Identity { identity, rejoined } => {
                out.identity = Some((identity, rejoined));
            }
            WalRecord::PeerInstance { node, instance } => {
                out.peers.insert(node, instance);
            }
        }
    }
    for (cell, durable) in &out.cells {
        if let Some(image) = &durable.image {
            crate::kv::check_image(image).map_err(|why| {
                StoreError::Refused(format!(
                    "cell {cell}: its snapshot (up to slot {}) in the write-ahead log is not one \
                     this node writes ({why}); refusing to start rather than vote from it",
                    image.upto
                ))
            })?;
        }
    }
    out.boot = match last {
        None => Boot {
            inc: 0,
            lamport: wall_micros,
        },
        Some((inc, floor)) => Boot {
            inc: inc + 1,
            lamport: wall_micros.max(floor + 1),
        },
    };
    Ok(out)
}

/// Encodes a record as a WAL payload.
pub fn encode(record: &WalRecord) -> Vec<u8> {
    postcard::to_stdvec(record).expect("WAL records always encode")
}

/// The node's WAL as a [`Log`].
pub struct WalLog(pub crate::wal::Wal);

impl Log for WalLog {
    fn append(&self, payload: &[u8]) -> Result<Lsn, StoreError> {
        self.0
            .append(payload)
            .map_err(|e| StoreError::Log(e.to_string()))
    }

    fn sync_to(&self, lsn: Lsn) -> Result<(), StoreError> {
        self.0
            .sync_to(lsn)
            .map_err(|e| StoreError::Log(e.to_string()))
    }

    fn fsyncs(&self) -> u64 {
        self.0.stats().fsyncs
    }

    fn snapshot(&self, lsn: Lsn, state: &[u8]) -> Result<(), StoreError> {
        self.0
            .snapshot(lsn, state)
            .map_err(|e| StoreError::Log(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use physalia_traces::{Ballot, Command, Entry, NodeId};

    #[test]
    fn replay_rebuilds_cells_and_bumps_the_incarnation() {
        let b = Ballot {
            round: 2,
            node: NodeId(1),
        };
        let recs = [
            WalRecord::Boot {
                inc: 0,
                lamport: 100,
            },
            WalRecord::Persist {
                cell: "c0".into(),
                writes: vec![
                    DurableWrite::Promised { ballot: b },
                    DurableWrite::Accepted {
                        entry: Entry {
                            slot: 0,
                            ballot: b,
                            command: Command::Noop,
                        },
                    },
                ],
            },
            WalRecord::Boot {
                inc: 1,
                lamport: 500,
            },
        ];
        let records: Vec<(Lsn, Vec<u8>)> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64 + 1, encode(r)))
            .collect();
        let r = replay(None, &records, 200).unwrap();
        assert_eq!(r.boot.inc, 2);
        assert_eq!(r.boot.lamport, 501);
        assert_eq!(r.cells["c0"].promised, b);
        assert_eq!(r.cells["c0"].log.len(), 1);
        let fresh = replay(None, &[], 42).unwrap();
        assert_eq!(fresh.boot.inc, 0);
        assert_eq!(fresh.boot.lamport, 42);
    }

    #[test]
    fn replay_starts_from_a_snapshot() {
        let b = Ballot {
            round: 3,
            node: NodeId(2),
        };
        let snap = Snapshot {
            boot: (4, 900),
            cells: vec![("c1".into(), b, vec![(0, b, Command::Noop)])],
            learners: vec!["c1".into()],
            forwards: vec![("c2".into(), vec![NodeId(0), NodeId(1)])],
            identity: None,
            peers: vec![],
            floors: vec![],
            left: vec![],
            images: vec![],
        };
        let bytes = postcard::to_stdvec(&snap).unwrap();
        let after = encode(&WalRecord::Persist {
            cell: "c1".into(),
            writes: vec![DurableWrite::Accepted {
                entry: Entry {
                    slot: 1,
                    ballot: b,
                    command: Command::Noop,
                },
            }],
        });
        let r = replay(Some(&(10, bytes)), &[(11, after)], 5).unwrap();
        assert_eq!(r.boot.inc, 5);
        assert_eq!(r.boot.lamport, 901);
        assert_eq!(r.cells["c1"].promised, b);
        assert_eq!(r.cells["c1"].log.len(), 2);
        assert!(r.cells["c1"].learner);
        assert_eq!(r.forwards["c2"], vec![NodeId(0), NodeId(1)]);
    }

    #[test]
    fn a_learners_copy_and_a_deleted_copy_survive_a_restart() {
        let records = [
            encode(&WalRecord::Hosted { cell: "c3".into() }),
            encode(&WalRecord::Persist {
                cell: "c3".into(),
                writes: vec![DurableWrite::Promised {
                    ballot: Ballot {
                        round: 1,
                        node: NodeId(0),
                    },
                }],
            }),
            encode(&WalRecord::Persist {
                cell: "c4".into(),
                writes: vec![],
            }),
            encode(&WalRecord::Deleted {
                cell: "c4".into(),
                jury: vec![NodeId(5)],
            }),
        ];
        let records: Vec<(Lsn, Vec<u8>)> =
            records.into_iter().zip(1..).map(|(r, i)| (i, r)).collect();
        let r = replay(None, &records, 7).unwrap();
        assert!(r.cells["c3"].learner);
        assert_eq!(r.cells["c3"].promised.round, 1);
        assert!(!r.cells.contains_key("c4"));
        assert_eq!(r.forwards["c4"], vec![NodeId(5)]);
    }

    #[test]
    fn a_foreign_record_is_an_error_naming_its_lsn() {
        let err = replay(None, &[(7, vec![9, 9, 9])], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lsn 7"), "{err}");
    }
}
