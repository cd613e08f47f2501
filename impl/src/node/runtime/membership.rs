//! Reconfiguration in the node (`docs/protocol.md`, "Reconfiguration"): a node starts
//! hosting a cell when a leader teaches it (a learner's copy, recorded in the WAL before its
//! first batch), and stops once its removal is in force and the new jury runs without it:
//! it deletes its copy (a WAL record) and keeps a forwarding pointer to the jury.
//!
//! Bounds: one replica per cell of the cluster (a cell unknown to the catalog is refused);
//! one forwarding pointer per cell; a removed copy is deleted [`RETIRE_AFTER`] after its
//! removal is in force.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use physalia_traces::{Command, NodeId, TxnResult};

use super::Runtime;
use crate::core::{Durable, Output};
use crate::node::store::{encode, WalRecord};

/// How long a removed node keeps its copy after its removal is in force, so that the new
/// jury (which has committed past the change, hence holds the prefix it was taught) runs a
/// while without it before the old acceptor state goes.
pub const RETIRE_AFTER: Duration = Duration::from_secs(5);

impl Runtime {
    /// A cell of the cluster this node does not host, that a peer's message names: a leader
    /// teaching this node before a jury change adds it. Creates a learner's copy (recorded
    /// in the WAL first) and returns its index. A deleted copy is not re-created within a run
    /// (its trace identity is taken); the node is taught again after a restart.
    pub(super) fn host_learner(&mut self, cell: &str) -> Option<u32> {
        if self.forwards.contains_key(cell) && self.index.contains_key(cell) {
            return None;
        }
        let config = self.catalog.get(cell)?.clone();
        // The copy takes no membership of before the slot this node last left the cell
        // at; a rejoined instance, which does not know its lost state's memberships, takes
        // none before one ends (ABA: `Durable::floor`).
        let floor = match self.left.get(cell) {
            Some(slot) => *slot,
            None if self.st.rejoined => physalia_traces::NO_FLOOR_YET,
            None => 0,
        };
        let record = if floor == 0 {
            WalRecord::Hosted {
                cell: cell.to_owned(),
            }
        } else {
            WalRecord::HostedFrom {
                cell: cell.to_owned(),
                floor,
            }
        };
        if let Err(e) = self.log.append(&encode(&record)) {
            tracing::error!("cannot record the copy of {cell}: {e}");
            return None;
        }
        self.forwards.remove(cell);
        let idx = self.replicas.len() as u32;
        let stored = Durable {
            learner: true,
            floor,
            ..Durable::default()
        };
        let boot = crate::core::Boot {
            inc: self.inc,
            lamport: self.floor,
        };
        tracing::info!(cell, "taught a cell: hosting a learner's copy");
        self.restart_replica(idx, cell.to_owned(), config, stored, boot);
        self.metrics.cells.fetch_add(1, Relaxed);
        Some(idx)
    }

    /// Counts the jury changes a step proposed (as leader) and those now in force, and
    /// how long a learner took to join.
    pub(super) fn note_changes(&mut self, idx: u32, out: &Output) {
        let is_change = |c: &Command| matches!(c, Command::Op { txn, .. } if txn.is_reconfig());
        let r = &mut self.replicas[idx as usize];
        if r.cell.role() == physalia_traces::Role::Leader {
            let proposed = out
                .trace
                .state
                .accepted
                .iter()
                .filter(|e| is_change(&e.command) && e.ballot == r.cell.ballot())
                .count() as u64;
            self.metrics.changes_proposed.fetch_add(proposed, Relaxed);
        }
        for c in &out.trace.sent {
            if let physalia_traces::Msg::Reply {
                result: TxnResult::Reconfig { ok: true, .. },
                ..
            } = &c.msg
            {
                self.metrics.changes_chosen.fetch_add(1, Relaxed);
            }
        }
        if let (Some(t), Some(_)) = (r.taught_at, r.cell.since()) {
            let ms = t.elapsed().as_millis() as u64;
            self.metrics.learner_catchup_ms.store(ms, Relaxed);
            self.metrics.learners_joined.fetch_add(1, Relaxed);
            r.taught_at = None;
        }
    }

    /// The node tick: a copy whose removal has been in force for [`RETIRE_AFTER`] is
    /// deleted, with a forwarding pointer to the jury in force.
    pub(super) fn retire_removed(&mut self) {
        let mut due = Vec::new();
        for (i, r) in self.replicas.iter_mut().enumerate() {
            if r.retired {
                continue;
            }
            match r.cell.removed_from() {
                None => r.removed_seen = None,
                Some(_) => {
                    let seen = *r.removed_seen.get_or_insert_with(Instant::now);
                    if seen.elapsed() >= RETIRE_AFTER {
                        due.push(i as u32);
                    }
                }
            }
        }
        for idx in due {
            self.retire(idx);
        }
    }

    /// Deletes copy `idx`: a WAL record, then the replica only forwards.
    fn retire(&mut self, idx: u32) {
        let r = &self.replicas[idx as usize];
        let cell = r.name.clone();
        let jury = r.cell.state_machine().jury().latest().0.members.clone();
        let Some(slot) = r.cell.removed_from() else {
            return; // added back meanwhile
        };
        let left = WalRecord::Left {
            cell: cell.clone(),
            slot,
        };
        if let Err(e) = self.log.append(&encode(&left)) {
            tracing::error!("cannot record the slot {cell} was left at: {e}");
            return;
        }
        let at = self.left.entry(cell.clone()).or_default();
        *at = (*at).max(slot);
        if let Err(e) = self.log.append(&encode(&WalRecord::Deleted {
            cell: cell.clone(),
            jury: jury.clone(),
        })) {
            tracing::error!("cannot record the deletion of {cell}: {e}");
            return;
        }
        self.kick_sync();
        tracing::info!(
            cell,
            ?jury,
            "removed from the cell: deleted its copy, forwarding"
        );
        let r = &mut self.replicas[idx as usize];
        r.retired = true;
        r.armed = [None; 3];
        self.forwards.insert(cell, jury);
        self.metrics.copies_deleted.fetch_add(1, Relaxed);
    }

    /// The forwarding pointer of a cell this node no longer hosts: a member of the jury it
    /// left (its first member other than this node).
    pub(super) fn forward(&self, cell: &str) -> Option<NodeId> {
        self.forwards
            .get(cell)?
            .iter()
            .copied()
            .find(|n| *n != self.id)
    }
}
