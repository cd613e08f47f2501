//! Persistence: each batch becomes one WAL record, one group commit runs at a time and
//! covers every record appended before it started, and the durable state is snapshotted
//! once enough was appended.

use std::sync::Arc;

use physalia_traces::{NodeId, Persist, PersistId};

use super::{Input, Runtime};
use crate::node::store::{encode, Lsn, Snapshot, WalRecord};

impl Runtime {
    /// Appends replica `idx`'s batch `p` to the WAL as one record and starts a group
    /// commit if none is running; a failed append stops the node.
    pub(super) fn append_batch(&mut self, idx: u32, p: Persist) {
        use std::sync::atomic::Ordering::Relaxed;
        let record = WalRecord::Persist {
            cell: self.replicas[idx as usize].name.clone(),
            writes: p.writes,
        };
        match self.log.append(&encode(&record)) {
            Ok(lsn) => {
                self.metrics.wal_appends.fetch_add(1, Relaxed);
                self.since_snapshot += 1;
                self.appended = self.appended.max(lsn);
                self.unsynced.push_back((lsn, idx, p.id));
                self.kick_sync();
            }
            Err(e) => {
                // The batch is not durable and never will be: the held messages stay
                // held. Stop the node rather than run on.
                tracing::error!("cannot append to the WAL: {e}; stopping");
                let _ = self.synced_tx.send((0, Err(e.to_string())));
            }
        }
    }

    /// Starts a group commit of everything appended so far, unless one is running or
    /// nothing awaits one; its completion comes back as [`Runtime::on_synced`].
    pub(super) fn kick_sync(&mut self) {
        if self.syncing || (self.unsynced.is_empty() && !self.st.awaits_sync()) {
            return;
        }
        self.syncing = true;
        let log = Arc::clone(&self.log);
        let target = self.appended;
        let done = self.synced_tx.clone();
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = log.sync_to(target).map_err(|e| e.to_string());
            metrics
                .fsync_latency
                .0
                .observe(started.elapsed().as_micros() as u64);
            let _ = done.send((target, result));
        });
    }

    /// A group commit up to `lsn` returned: each replica with batches now durable steps
    /// `Persisted { up_to }` (releasing what its core held), then the next group commit
    /// starts and a snapshot is written if one is due.
    pub(super) fn on_synced(&mut self, lsn: Lsn) {
        self.syncing = false;
        self.metrics
            .fsyncs
            .store(self.log.fsyncs(), std::sync::atomic::Ordering::Relaxed);
        let mut durable: Vec<(u32, PersistId)> = Vec::new();
        while self.unsynced.front().is_some_and(|(l, _, _)| *l <= lsn) {
            let (_, idx, id) = self.unsynced.pop_front().expect("checked");
            match durable.iter_mut().find(|(i, _)| *i == idx) {
                Some(e) => e.1 = e.1.max(id),
                None => durable.push((idx, id)),
            }
        }
        for (idx, up_to) in durable {
            self.step(idx, Input::Persisted { up_to });
        }
        self.vouch_synced(lsn);
        self.kick_sync();
        self.maybe_snapshot();
    }

    /// Writes a snapshot of every cell's durable state if enough was appended since the
    /// last one and every issued batch is durable (then the cores' promises and logs are
    /// exactly what storage holds).
    fn maybe_snapshot(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let lsn = self.appended;
        if self.snapshot_every == 0
            || self.since_snapshot < self.snapshot_every
            || !self.unsynced.is_empty()
            || self.syncing
            || lsn == 0
            || self.snapshotting.load(Relaxed)
        {
            return;
        }
        let cells = self
            .replicas
            .iter()
            .filter(|r| !r.retired)
            .filter(|r| {
                !r.cell.promised().is_zero()
                    || !r.cell.log().is_empty()
                    || r.cell.snapshot_image().is_some()
            })
            .map(|r| {
                let log = r
                    .cell
                    .log()
                    .iter()
                    .map(|(s, (b, c))| (*s, *b, c.clone()))
                    .collect();
                (r.name.clone(), r.cell.promised(), log)
            })
            .collect();
        let images = self
            .replicas
            .iter()
            .filter(|r| !r.retired)
            .filter_map(|r| Some((r.name.clone(), r.cell.snapshot_image()?.clone())))
            .collect();
        let learners = self
            .replicas
            .iter()
            .filter(|r| !r.retired && r.cell.is_learner_copy())
            .map(|r| r.name.clone())
            .collect();
        let mut floors: Vec<(String, physalia_traces::Slot)> = self
            .replicas
            .iter()
            .filter(|r| !r.retired && r.cell.is_learner_copy() && r.floor != 0)
            .map(|r| (r.name.clone(), r.floor))
            .collect();
        floors.sort();
        let mut left: Vec<(String, physalia_traces::Slot)> =
            self.left.iter().map(|(c, s)| (c.clone(), *s)).collect();
        left.sort();
        let mut forwards: Vec<(String, Vec<NodeId>)> = self
            .forwards
            .iter()
            .map(|(c, j)| (c.clone(), j.clone()))
            .collect();
        forwards.sort();
        let snap = Snapshot {
            boot: (self.inc, self.floor),
            cells,
            learners,
            forwards,
            identity: Some((self.st.identity, self.st.rejoined)),
            peers: self.st.recorded(),
            floors,
            left,
            images,
        };
        let bytes = match postcard::to_stdvec(&snap) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode a snapshot: {e}");
                return;
            }
        };
        self.since_snapshot = 0;
        self.snapshotting.store(true, Relaxed);
        let (log, flag) = (Arc::clone(&self.log), Arc::clone(&self.snapshotting));
        tokio::task::spawn_blocking(move || {
            match log.snapshot(lsn, &bytes) {
                Ok(()) => tracing::info!(lsn, bytes = bytes.len(), "wrote a snapshot"),
                Err(e) => tracing::error!("snapshot at lsn {lsn} failed: {e}"),
            }
            flag.store(false, Relaxed);
        });
    }
}
