//! The node's write-ahead log: durable, segmented, checksummed, shared by every cell of
//! one node, with group commit.
//!
//! Payloads are opaque bytes (the node encodes its records with postcard). Plain std
//! Rust: a [`Wal`] is `Send + Sync` and is shared between threads through an `Arc`.
//!
//! # Contract
//!
//! - [`Wal::append`] assigns the next [`Lsn`] (dense from 1 over the life of the log) and
//!   writes the framed record to the active segment. It is **not durable** yet.
//! - [`Wal::sync_to`] returns once every record with an LSN at or below its argument is
//!   durable: an `fdatasync` that started after the record was written has returned.
//!   Callers that arrive while a sync is running wait for it and then share the next one
//!   (group commit): one `fdatasync` covers every record appended before it started. An
//!   acknowledgement (a return of `Ok`) is never given before the `fdatasync` returned.
//! - [`Wal::snapshot`] makes `sync_to(lsn)`, writes the state atomically (temp file,
//!   fsync, rename, directory fsync) and then deletes the snapshot before it and every
//!   segment whose records are all covered.
//! - An I/O error while writing or syncing the log poisons the [`Wal`]: every later
//!   `append` and `sync_to` fails with [`WalError::Failed`] (after a failed `fdatasync`
//!   the kernel may have dropped the dirty pages, so a retry proving nothing is not
//!   attempted). Reopen the directory to recover what is on disk.
//!
//! **Async callers:** `sync_to` blocks its thread on the condition variable or on the
//! `fdatasync`. From tokio, run it with `tokio::task::spawn_blocking(move ||
//! wal.sync_to(lsn))` — that is the intended use; `append` only writes to the page cache
//! and may be called from async code directly. [`Wal::durable_lsn`] and
//! [`Wal::is_durable`] never block on I/O.
//!
//! ```
//! use physalia_impl::wal::{Wal, WalOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (wal, recovered) = Wal::open(dir.path(), WalOptions::default()).unwrap();
//! assert!(recovered.records.is_empty() && recovered.snapshot.is_none());
//! let a = wal.append(b"first").unwrap();
//! let b = wal.append(b"second").unwrap();
//! wal.sync_to(b).unwrap(); // one fdatasync covers both
//! assert_eq!((a, b, wal.durable_lsn()), (1, 2, 2));
//! wal.snapshot(1, b"state after record 1").unwrap();
//! drop(wal);
//!
//! let (_, recovered) = Wal::open(dir.path(), WalOptions::default()).unwrap();
//! assert_eq!(recovered.snapshot, Some((1, b"state after record 1".to_vec())));
//! assert_eq!(recovered.records, vec![(2, b"second".to_vec())]);
//! ```
//!
//! # On-disk format (version 1)
//!
//! One directory per node. All integers are little-endian; every checksum is CRC-32C
//! (Castagnoli).
//!
//! - **Segment** `wal-<first LSN, 20 digits>.log`: a 24-byte header — magic `PHYSWAL\0`
//!   (8 bytes), format version `u32`, the first LSN `u64` (equal to the one in the name),
//!   the CRC of the preceding 20 bytes `u32` — then records back to back. A segment rolls
//!   over when the next record would take it past `segment_bytes` (a segment holds at
//!   least one record, so a record larger than `segment_bytes` gets a segment of its own).
//!   Before the new segment is created the old one is `fdatasync`ed; the new one's header
//!   is written and synced and the directory fsynced before any record goes into it. So
//!   only the last segment can ever have a torn tail.
//! - **Record**: payload length `u32` (at most [`MAX_PAYLOAD`]), CRC `u32` over the
//!   length, the LSN and the payload, the LSN `u64`, then the payload. 16 bytes of framing.
//! - **Snapshot** `snap-<LSN, 20 digits>.snap`: magic `PHYSSNAP` (8), version `u32`, the
//!   LSN it covers `u64`, the state's length `u64`, CRC `u32` over the preceding 28 bytes
//!   and the state, then the state. Written as `snap-<LSN>.snap.tmp`, fsynced, renamed,
//!   directory fsynced. Only the latest is kept.
//!
//! - **Marker** `NEWEST`: the text `newest segment <first LSN>`, rewritten atomically (temp
//!   file, fsync, rename, directory fsync) each time a segment is created, after the
//!   segment's header and directory entry are durable. It is the log's high-water mark
//!   outside the segments themselves: a log whose newest segment was deleted looks like a
//!   shorter, valid log, and only the marker tells the two apart.
//!
//! Other files in the directory are left alone; a file whose name starts with `wal-` or
//! `snap-` but does not parse is refused.
//!
//! # Recovery rules (at [`Wal::open`])
//!
//! 1. Unfinished snapshots (`.tmp`) are deleted. The snapshot with the highest LSN is
//!    read; damage to it is an error ([`WalError::CorruptSnapshot`]) even with `repair`,
//!    since the segments it covers may be gone. Older snapshots are deleted.
//! 2. Segments wholly covered by the snapshot (the next segment starts at or below the
//!    snapshot's LSN + 1) are deleted unread. The remaining segments must be contiguous:
//!    the first starts at 1 (or at or below the snapshot's LSN + 1), each header names
//!    the LSN its file name names, and each record carries the LSN after the previous one.
//!    A gap or duplicate is corruption.
//! 3. **Torn tail**: in the last segment only, an incomplete record header, a record
//!    running past the end of the file, or a record whose CRC fails, with no valid record
//!    of a later-or-equal LSN anywhere after it in the file, is truncated away (counted in
//!    [`Recovered::truncated_tail_bytes`]). A last segment shorter than its header (a crash
//!    while it was being created) is deleted and counted the same way.
//! 4. **Damage in the middle**: the same defects anywhere else (in an earlier segment, or
//!    with a valid record after it), a damaged segment header, or a wrong LSN make `open`
//!    fail with [`WalError::Corrupt`], naming the file, the byte offset and the LSN
//!    expected there. Nothing on disk is changed. With [`WalOptions::repair`] the damaged
//!    record and everything after it (the rest of its segment and every later segment) is
//!    discarded instead; [`Recovered::discarded_records`] counts the damaged record plus
//!    every record still recognisable after it.
//!
//!    In the last segment this rule can refuse a log that lost nothing acknowledged: a
//!    machine crash after unsynced pages were written back out of order can leave an
//!    unsynced record damaged and a later unsynced record intact. The rule cannot tell
//!    that from bit rot, so it refuses; `repair` then loses nothing acknowledged, because
//!    no record after the damaged one can have been acknowledged (its `fdatasync` would
//!    have covered the damaged record too).
//! 5. A record at or below the snapshot's LSN was acknowledged durable (the snapshot
//!    syncs first), so a log ending below the snapshot is corruption too — unless
//!    `repair`, where the log continues after the snapshot in a new segment.
//!
//! 6. **Missing newest segment**: if the marker names a segment and no segment at or after
//!    it exists, `open` fails with [`WalError::MissingSegment`], even with `repair` (nothing
//!    is damaged; something is missing). A lost marker alone loses nothing: it is rewritten
//!    at open.
//!
//! 7. Before `open` returns, the active segment is `fdatasync`ed and the directory
//!    fsynced: after a process crash (the machine still up) the page cache holds records
//!    that were never synced, and recovery hands them out as durable.
//!
//! A record acknowledged by `sync_to` is never dropped silently: the only records removed
//! without `repair` are those of a torn tail, which were written after the last completed
//! `fdatasync` (or were damaged in the last record, which cannot be told apart from a torn
//! write and is documented as such).
//!
//! Two processes must not open the same directory at once; this module does not lock it:
//! the node takes an exclusive lock on its data directory before opening the log
//! ([`crate::node::identity::lock`]).

mod format;
mod log;
mod recover;

use std::path::PathBuf;

pub use format::{FORMAT_VERSION, MAX_PAYLOAD, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
pub use log::Wal;

/// A log sequence number: dense from 1 over the life of the log; 0 means "none".
pub type Lsn = u64;

/// How a [`Wal`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment rolls over when the next record would take it past this many bytes
    /// (headers included). Default 64 MiB; at least 4096.
    pub segment_bytes: u64,
    /// Discard a damaged suffix of the log (the damaged record and everything after it)
    /// instead of refusing to open. Default off.
    pub repair: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            repair: false,
        }
    }
}

/// The smallest [`WalOptions::segment_bytes`] accepted.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The latest snapshot and the LSN it covers.
    pub snapshot: Option<(Lsn, Vec<u8>)>,
    /// The records after the snapshot, in LSN order, dense.
    pub records: Vec<(Lsn, Vec<u8>)>,
    /// Bytes of torn tail removed at open (including a last segment shorter than its header).
    pub truncated_tail_bytes: u64,
    /// Records discarded by a repair (only with [`WalOptions::repair`]).
    pub discarded_records: u64,
}

/// Counters of a [`Wal`] since it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub appends: u64,
    /// Bytes appended (framing included).
    pub bytes: u64,
    /// `fdatasync` calls on segment files (group commits and rollovers).
    pub fsyncs: u64,
    /// fsync calls on the directory.
    pub dir_fsyncs: u64,
    /// Group commits: `fdatasync`s run by `sync_to` on behalf of every pending caller.
    pub group_commits: u64,
    /// Segment files that exist now.
    pub segments: u64,
    /// Segments created since open.
    pub segments_created: u64,
    /// Segments deleted since open (by snapshots; deletions at open are not counted).
    pub segments_deleted: u64,
    /// Snapshots written since open.
    pub snapshots: u64,
    /// The highest LSN known durable.
    pub durable_lsn: Lsn,
    /// The highest LSN appended (0 when none).
    pub last_lsn: Lsn,
}

/// Everything that can go wrong with the log. Each message says what and where.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed.
    #[error("write-ahead log: could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "fdatasync", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A segment is damaged in a way that is not a torn tail. Nothing was changed on disk.
    #[error(
        "corrupt write-ahead log: {} at byte {offset} (record LSN {lsn}): {reason}; \
         nothing was changed — reopen with `repair` to discard this record and everything after it",
        file.display()
    )]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damaged record (or header) in the file.
        offset: u64,
        /// The LSN expected at that place.
        lsn: Lsn,
        /// What is wrong.
        reason: String,
    },
    /// The latest snapshot is damaged; `repair` does not apply (the log it covers may be gone).
    #[error("corrupt snapshot {}: {reason}", file.display())]
    CorruptSnapshot {
        /// The snapshot file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A segment or snapshot of a format version this build does not read; `repair` does
    /// not apply (the file may be fine for a newer build).
    #[error(
        "{} has format version {found}, but this build reads only version {supported}",
        file.display()
    )]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A file named like ours whose name does not parse.
    #[error(
        "write-ahead log directory holds {} whose name looks like a segment or snapshot but does not parse; move it away",
        file.display()
    )]
    UnrecognisedFile {
        /// The file.
        file: PathBuf,
    },
    /// A payload larger than [`MAX_PAYLOAD`].
    #[error("record payload of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The payload's length.
        len: usize,
        /// [`MAX_PAYLOAD`].
        max: usize,
    },
    /// Options out of range.
    #[error("invalid write-ahead log options: {0}")]
    InvalidOptions(String),
    /// `sync_to` or `snapshot` named an LSN that has not been appended.
    #[error("LSN {lsn} has not been appended (the last appended LSN is {last})")]
    NotAppended {
        /// The LSN asked for.
        lsn: Lsn,
        /// The last appended LSN.
        last: Lsn,
    },
    /// A snapshot below the current one.
    #[error("snapshot at LSN {lsn} is older than the current snapshot at LSN {current}")]
    SnapshotRegressed {
        /// The LSN asked for.
        lsn: Lsn,
        /// The current snapshot's LSN.
        current: Lsn,
    },
    /// The newest segment the log ever created is gone (deleted, or a directory restored
    /// from an older copy): records it held may have been acknowledged. `repair` does not
    /// apply: nothing is damaged, something is missing.
    #[error(
        "write-ahead log {} is missing its newest segment: {} records that the log reached segment {} (LSN {newest}), but {}; records this node acknowledged may be gone, so it refuses to start rather than vote with less than it promised (impl/README.md, \"Amnesia\")",
        dir.display(), marker.display(), format::segment_name(*newest),
        found.map_or("no segment is left".to_string(), |f| format!("the newest segment left starts at LSN {f}"))
    )]
    MissingSegment {
        /// The log's directory.
        dir: PathBuf,
        /// The marker file.
        marker: PathBuf,
        /// The first LSN of the newest segment the marker names.
        newest: Lsn,
        /// The first LSN of the newest segment found, if any.
        found: Option<Lsn>,
    },
    /// The marker of the newest segment does not parse.
    #[error("write-ahead log marker {} does not hold `newest segment <LSN>`: {text:?}", file.display())]
    BadMarker {
        /// The marker file.
        file: PathBuf,
        /// What it holds (its first 64 bytes).
        text: String,
    },
    /// An earlier write or `fdatasync` failed; the log refuses further work.
    #[error("write-ahead log failed earlier and refuses further writes ({reason}); reopen it to recover what is on disk")]
    Failed {
        /// The first failure.
        reason: String,
    },
}

impl WalError {
    fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
