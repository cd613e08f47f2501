//! The log at run time: appends, group commit, rollover and snapshots.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::format::{self, MAX_PAYLOAD, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::recover::{self, create_segment, fsync_dir};
use super::{Lsn, Recovered, WalError, WalOptions, WalStats};

/// The node's write-ahead log. See the module documentation of [`super`] for the
/// contract, the on-disk format and the recovery rules.
///
/// Lock order: `snapshot` before `writer`; `sync` is never held while taking `writer`.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// The active segment and the LSN counter; appends hold it across their `write`.
    writer: Mutex<Writer>,
    /// Group-commit state; `synced` is signalled when a sync round ends.
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Mirror of `SyncState::durable` for readers that must not block.
    durable: AtomicU64,
    /// The current snapshot's LSN; held for the whole of [`Wal::snapshot`].
    snapshot: Mutex<Option<Lsn>>,
    counters: Counters,
}

struct Writer {
    /// The active segment; shared with a sync leader, which `fdatasync`s it unlocked.
    file: Arc<File>,
    /// First LSN of the active segment.
    first: Lsn,
    /// Bytes in the active segment.
    len: u64,
    /// The LSN the next append gets.
    next: Lsn,
    /// First LSNs of the segment files that exist, ascending.
    segments: Vec<Lsn>,
    /// The first write or sync failure; once set, the log refuses all writes.
    failed: Option<String>,
    /// Scratch buffer for framing one record.
    buf: Vec<u8>,
}

struct SyncState {
    durable: Lsn,
    /// A leader is running `fdatasync` for everybody.
    syncing: bool,
    failed: Option<String>,
}

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    dir_fsyncs: AtomicU64,
    group_commits: AtomicU64,
    segments_created: AtomicU64,
    segments_deleted: AtomicU64,
    snapshots: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain counters behind, never a torn invariant
    // that later code relies on without re-checking, so the poison flag is cleared.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Wal {
    /// Opens the log in `dir` (created if missing), recovers it by the rules in the
    /// module documentation, and returns it with what it found. Every record it returns
    /// is durable (the durable LSN starts at the last recovered record).
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        let opened = recover::open(dir, &opts)?;
        let last = opened.next_lsn - 1;
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(Writer {
                file: Arc::new(opened.active),
                first: *opened
                    .segments
                    .last()
                    .expect("recovery leaves an active segment"),
                len: opened.active_len,
                next: opened.next_lsn,
                segments: opened.segments,
                failed: None,
                buf: Vec::new(),
            }),
            sync: Mutex::new(SyncState {
                durable: last,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            durable: AtomicU64::new(last),
            snapshot: Mutex::new(opened.snapshot_lsn),
            counters: Counters::default(),
        };
        Ok((wal, opened.recovered))
    }

    /// Buffers a record in the active segment (a `write` to the page cache) and returns
    /// its LSN. Not durable until a [`Wal::sync_to`] covering it returns. Rolls over to a
    /// new segment first when this record would take the active one past
    /// [`WalOptions::segment_bytes`].
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, WalError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(WalError::RecordTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        let mut w = lock(&self.writer);
        if let Some(reason) = &w.failed {
            return Err(WalError::Failed {
                reason: reason.clone(),
            });
        }
        let framed = (RECORD_HEADER_LEN + payload.len()) as u64;
        if w.len + framed > self.opts.segment_bytes && w.next > w.first {
            self.roll_over(&mut w)?;
        }
        let lsn = w.next;
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        format::encode_record(lsn, payload, &mut buf);
        let written = (&*w.file).write_all(&buf);
        w.buf = buf;
        if let Err(e) = written {
            let err = WalError::io("append to", self.segment_path(w.first), e);
            w.failed = Some(err.to_string());
            return Err(err);
        }
        w.len += framed;
        w.next += 1;
        bump(&self.counters.appends, 1);
        bump(&self.counters.bytes, framed);
        Ok(lsn)
    }

    /// Makes the active segment durable, then starts a new one at the next LSN. The old
    /// segment is synced first so that only the last segment can have a torn tail.
    fn roll_over(&self, w: &mut Writer) -> Result<(), WalError> {
        let result = w
            .file
            .sync_data()
            .map_err(|e| WalError::io("fdatasync", self.segment_path(w.first), e))
            .and_then(|()| {
                bump(&self.counters.fsyncs, 1);
                create_segment(&self.dir, w.next)
            });
        match result {
            Ok(file) => {
                bump(&self.counters.fsyncs, 1);
                bump(&self.counters.dir_fsyncs, 1);
                bump(&self.counters.segments_created, 1);
                w.file = Arc::new(file);
                w.first = w.next;
                w.len = SEGMENT_HEADER_LEN as u64;
                w.segments.push(w.next);
                Ok(())
            }
            Err(e) => {
                w.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Group commit: blocks until every record with an LSN at or below `lsn` is durable.
    /// The first caller to find no sync running `fdatasync`s on behalf of everybody (it
    /// covers every record appended before it started); the others wait for it and, if
    /// still not covered, the next round. Returns only after the `fdatasync` returned.
    /// From async code, call it through `spawn_blocking`.
    pub fn sync_to(&self, lsn: Lsn) -> Result<(), WalError> {
        if lsn <= self.durable.load(Ordering::Acquire) {
            return Ok(());
        }
        let last = lock(&self.writer).next - 1;
        if lsn > last {
            return Err(WalError::NotAppended { lsn, last });
        }
        let mut st = lock(&self.sync);
        // Bounded: each round either returns or waits for a leader's round to end, and
        // every round that succeeds covers `lsn` (appended before this call began).
        loop {
            if let Some(reason) = &st.failed {
                return Err(WalError::Failed {
                    reason: reason.clone(),
                });
            }
            if st.durable >= lsn {
                return Ok(());
            }
            if st.syncing {
                st = self
                    .synced
                    .wait(st)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            st.syncing = true;
            drop(st);
            let outcome = self.lead_sync();
            st = lock(&self.sync);
            st.syncing = false;
            match outcome {
                Ok(target) => {
                    st.durable = st.durable.max(target);
                    self.durable.store(st.durable, Ordering::Release);
                    self.synced.notify_all();
                }
                Err(e) => {
                    st.failed = Some(e.to_string());
                    self.synced.notify_all();
                    return Err(e);
                }
            }
        }
    }

    /// One group-commit round: `fdatasync` the active segment without holding the writer
    /// lock (appends go on meanwhile) and return the last LSN it covers.
    fn lead_sync(&self) -> Result<Lsn, WalError> {
        let (target, file, first) = {
            let w = lock(&self.writer);
            if let Some(reason) = &w.failed {
                return Err(WalError::Failed {
                    reason: reason.clone(),
                });
            }
            (w.next - 1, Arc::clone(&w.file), w.first)
        };
        let synced = file.sync_data();
        bump(&self.counters.fsyncs, 1);
        bump(&self.counters.group_commits, 1);
        let mut w = lock(&self.writer);
        if let Err(e) = synced {
            let err = WalError::io("fdatasync", self.segment_path(first), e);
            w.failed = Some(err.to_string());
            return Err(err);
        }
        // A rollover's fdatasync may have failed on the file this round synced; after a
        // failed fsync a later one can succeed without the data being safe, so re-check.
        if let Some(reason) = &w.failed {
            return Err(WalError::Failed {
                reason: reason.clone(),
            });
        }
        Ok(target)
    }

    /// The highest LSN known durable. Never blocks on I/O.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable.load(Ordering::Acquire)
    }

    /// Whether `lsn` is durable. Never blocks on I/O.
    pub fn is_durable(&self, lsn: Lsn) -> bool {
        lsn <= self.durable_lsn()
    }

    /// The last LSN appended (0 when the log is empty).
    pub fn last_lsn(&self) -> Lsn {
        lock(&self.writer).next - 1
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot covering every record at or below `lsn`: first `sync_to(lsn)`,
    /// then the state to a temporary file, fsync, rename, directory fsync; then deletes
    /// the previous snapshot and every segment whose records are all at or below `lsn`
    /// (never the active one). `lsn` must have been appended and must not be below the
    /// current snapshot's LSN.
    pub fn snapshot(&self, lsn: Lsn, state: &[u8]) -> Result<(), WalError> {
        let mut current = lock(&self.snapshot);
        if let Some(cur) = *current {
            if lsn < cur {
                return Err(WalError::SnapshotRegressed { lsn, current: cur });
            }
        }
        let last = self.last_lsn();
        if lsn > last {
            return Err(WalError::NotAppended { lsn, last });
        }
        self.sync_to(lsn)?;
        let path = self.dir.join(format::snapshot_name(lsn));
        let tmp = self.dir.join(format!("{}.tmp", format::snapshot_name(lsn)));
        let bytes = format::encode_snapshot(lsn, state);
        File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .map_err(|e| WalError::io("write snapshot", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| WalError::io("rename snapshot", &path, e))?;
        fsync_dir(&self.dir)?;
        bump(&self.counters.dir_fsyncs, 1);
        bump(&self.counters.snapshots, 1);
        let previous = current.replace(lsn);
        drop(current);

        let mut doomed: Vec<PathBuf> = previous
            .filter(|&p| p != lsn)
            .map(|p| self.dir.join(format::snapshot_name(p)))
            .into_iter()
            .collect();
        let covered = {
            let mut w = lock(&self.writer);
            let n = w
                .segments
                .windows(2)
                .take_while(|s| s[1] <= lsn + 1)
                .count();
            w.segments.drain(..n).collect::<Vec<_>>()
        };
        bump(&self.counters.segments_deleted, covered.len() as u64);
        doomed.extend(covered.into_iter().map(|first| self.segment_path(first)));
        for path in &doomed {
            fs::remove_file(path).map_err(|e| WalError::io("delete", path, e))?;
        }
        if !doomed.is_empty() {
            fsync_dir(&self.dir)?;
            bump(&self.counters.dir_fsyncs, 1);
        }
        Ok(())
    }

    /// Counters since open, and the current LSNs.
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (segments, last_lsn) = {
            let w = lock(&self.writer);
            (w.segments.len() as u64, w.next - 1)
        };
        WalStats {
            appends: get(&c.appends),
            bytes: get(&c.bytes),
            fsyncs: get(&c.fsyncs),
            dir_fsyncs: get(&c.dir_fsyncs),
            group_commits: get(&c.group_commits),
            segments,
            segments_created: get(&c.segments_created),
            segments_deleted: get(&c.segments_deleted),
            snapshots: get(&c.snapshots),
            durable_lsn: self.durable_lsn(),
            last_lsn,
        }
    }

    fn segment_path(&self, first: Lsn) -> PathBuf {
        self.dir.join(format::segment_name(first))
    }
}
