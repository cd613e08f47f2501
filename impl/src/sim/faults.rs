//! The fault injector of the module's fault model: partitions, crashes and disk loss
//! before GST, and at GST the heal and restart of all.

use physalia_traces::NodeId;

use super::run::*;
use crate::core::Durable;

impl Sim {
    /// Injects crashes and partitions before `GST`; at `GST`, heals and restarts all.
    pub(super) fn faults(&mut self) {
        if !self.before_gst() {
            if !self.after_gst {
                self.after_gst = true;
                self.cut = None;
                for n in 0..self.universe() {
                    if self.nodes[n as usize].cell.is_none() {
                        self.at(self.now, Event::Restart(NodeId(n)));
                    }
                }
            }
            return;
        }
        let f = self.cfg.faults.clone();
        if self.cut.is_none() && self.rng.chance(f.partition_ppm) {
            let side = (0..self.universe())
                .filter(|_| self.rng.next_u64() & 1 == 0)
                .map(NodeId)
                .collect();
            self.cut = Some(side);
            self.report.partitions += 1;
            self.at(self.now + f.partition_ms, Event::Heal);
        }
        let down = self.nodes.iter().filter(|n| n.cell.is_none()).count() as u32;
        if down < (self.cfg.nodes - 1) / 2 && self.rng.chance(f.crash_ppm) {
            let victim = NodeId((self.rng.next_u64() % u64::from(self.universe())) as u32);
            if self.nodes[victim.0 as usize].cell.is_some() {
                self.crash(victim);
                let later = self.now + self.rng.between(f.restart_min, f.restart_max);
                self.at(later, Event::Restart(victim));
            }
        }
        let down = self.nodes.iter().filter(|n| n.cell.is_none()).count() as u32;
        // One lost disk at a time in the jury: the next waits until the operator moved the
        // last one out (two in a small jury would stall it for good, a liveness failure of
        // the fault mix, not of the protocol).
        let wiped_member = self
            .checker
            .jury()
            .latest()
            .0
            .members
            .iter()
            .any(|n| self.nodes[n.0 as usize].wiped);
        if down < (self.cfg.nodes - 1) / 2
            && !wiped_member
            && self.report.disk_losses < super::MAX_DISK_LOSSES
            && self.rng.chance(f.disk_loss_ppm)
        {
            let victim = NodeId((self.rng.next_u64() % u64::from(self.universe())) as u32);
            if self.nodes[victim.0 as usize].cell.is_some() {
                self.lose_disk(victim);
                let later = self.now + self.rng.between(f.restart_min, f.restart_max);
                self.at(later, Event::Restart(victim));
            }
        }
    }

    pub(super) fn crash(&mut self, id: NodeId) {
        let survive = {
            let n = self.nodes[id.0 as usize].pending.len() as u64;
            self.rng.between(0, n) as usize
        };
        let node = &mut self.nodes[id.0 as usize];
        let Some(cell) = node.cell.take() else {
            return;
        };
        node.boot.lamport = cell.lamport();
        node.boot.inc = cell.inc();
        for p in node.pending.drain(..).take(survive) {
            node.storage.apply(&p.writes);
        }
        node.armed.clear();
        self.report.crashes += 1;
        self.checker
            .on_storage(id, &self.nodes[id.0 as usize].storage);
    }

    /// Node `id` crashes and its disk is lost. What the real node does then
    /// (`impl/README.md`, "Amnesia"): its peers refuse it, it re-enters as a new instance
    /// (`--rejoin`) with no copy that votes, and `cluster replace-node` moves it out. Here:
    /// its next copy is a learner's with no floor known ([`physalia_traces::NO_FLOOR_YET`]),
    /// a new acceptor for the checks, and the operator moves it out of the jury first.
    pub(super) fn lose_disk(&mut self, id: NodeId) {
        self.crash(id);
        let node = &mut self.nodes[id.0 as usize];
        node.storage = Durable {
            learner: true,
            floor: physalia_traces::NO_FLOOR_YET,
            ..Durable::default()
        };
        node.forget_pending();
        node.retiring = false;
        node.wiped = true;
        self.checker.on_copy_deleted(id);
        self.report.disk_losses += 1;
    }
}
