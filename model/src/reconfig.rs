//! Reconfiguration (`docs/protocol.md`, "Reconfiguration: the jury changes through the
//! log"): the leader teaches a node, proposes a jury change, extends phase 1 to the juries
//! coming into force in its window, and steps down when its own removal is in force; a
//! learner becomes a member once it has committed the change that adds it; a removed node
//! retires (deletes its copy) once its removal is in force and a majority of the new jury
//! holds the prefix below it.
//!
//! Each `*_enabled` function says when the model offers the action; each handler is one
//! atomic step.

use crate::config::{CellConfig, Mutant};
use crate::handlers::{replay, Step};
use crate::jury::{self, Juries};
use crate::proposer::{may_propose_at, promisers, reproposals_pending};
use crate::state::{CellState, NodeState, Role, Status};
use crate::types::{Change, Command, Msg, NodeId, NodeSet, Slot};

/// The slot from which node `n` (a voting copy) is no longer in the jury, if its removal is
/// in force at it: the first slot of the run of slots, ending at the last one it knows the
/// jury of (its commit index), whose juries do not hold it (not below its `since`).
fn removal_in_force(cfg: &CellConfig, n: NodeId, node: &NodeState) -> Option<Slot> {
    let since = node.since()?;
    let known = jury::known(cfg, node);
    let juries = jury::of_node(cfg, node);
    let out = |t: Slot| juries.at(t).is_some_and(|j| !j.contains(n));
    if known < since || !out(known) {
        return None;
    }
    let mut e = known;
    while e > since && out(e - 1) {
        e -= 1;
    }
    Some(e)
}

/// Whether node `n` may stand for election: a voting copy that is in the jury of some slot
/// of its window `[commit, commit + α)` (a learner, a node without a copy, or a node that
/// knows it left never stands).
pub fn may_stand(cfg: &CellConfig, s: &CellState, n: NodeId) -> bool {
    let node = &s.nodes[n as usize];
    if node.since().is_none() {
        return false;
    }
    if cfg.reconfigs == 0 {
        return true;
    }
    let juries = jury::of_node(cfg, node);
    (node.commit..node.commit + cfg.window).any(|s| juries.at(s).is_some_and(|j| j.contains(n)))
}

/// Whether leader `l` may teach node `y` now: create a learner's copy on a node without one
/// that its latest jury does not hold (while a change may still be proposed), or bring a
/// learner (or a new member below its `since`) up to the leader's commit index.
pub fn teach_enabled(cfg: &CellConfig, s: &CellState, l: NodeId, y: NodeId) -> bool {
    let (leader, node) = (&s.nodes[l as usize], &s.nodes[y as usize]);
    if l == y || !leader.is_leader() || cfg.reconfigs == 0 {
        return false;
    }
    match node.status {
        Status::Spare | Status::Retired { .. } => {
            s.changes < cfg.reconfigs
                && (cfg.changes.replace || cfg.changes.add)
                && !jury::of_node(cfg, leader).latest().contains(y)
        }
        Status::Learner { .. } => node.commit < leader.commit,
        Status::Member { since } => node.commit < leader.commit.min(since),
    }
}

/// The jury changes leader `l` may propose at its next slot `s` now: while the bound allows
/// one, with no re-proposal pending, where it may propose, only if every slot below `s` is
/// committed (`s = commit`: a later leader re-proposes per slot the highest-ballot entries it
/// learns, which may be changes of different earlier leaders, so only a committed
/// neighbourhood is final; `tla/README.md`, finding 1) and no change is in the α − 1 slots
/// below (the previous change is in force at `s`; `concurrent-changes`: regardless), each
/// fitting the jury after every change below `s` (its latest committed jury), a joining node
/// taught up to the leader's commit index.
pub fn changes_enabled(cfg: &CellConfig, s: &CellState, l: NodeId) -> Vec<Change> {
    let leader = &s.nodes[l as usize];
    let Role::Leader { next, .. } = leader.role else {
        return Vec::new();
    };
    if s.changes >= cfg.reconfigs
        || next != leader.commit
        || reproposals_pending(s, l)
        || !may_propose_at(cfg, s, l, next)
    {
        return Vec::new();
    }
    let low = (next + 1).saturating_sub(cfg.window);
    let recent = (low..next)
        .any(|j| leader.log[j as usize].is_some_and(|e| matches!(e.command, Command::Change(_))));
    if recent && !cfg.has(Mutant::ConcurrentChanges) {
        return Vec::new();
    }
    let below = leader.log[..next as usize]
        .iter()
        .map(|e| e.map_or(Command::Noop, |e| e.command));
    let jury = Juries::new(cfg.initial_jury(), cfg.in_force_delay(), below).latest();
    let taught = |y: NodeId| {
        let node = &s.nodes[y as usize];
        matches!(node.status, Status::Learner { .. }) && node.commit == leader.commit
    };
    let mut out = Vec::new();
    let k = cfg.changes;
    for x in jury.iter() {
        for y in 0..cfg.total_nodes() {
            if k.replace && !jury.contains(y) && taught(y) {
                out.push(Change::Replace(x, y));
            }
        }
    }
    for y in 0..cfg.total_nodes() {
        if k.add && !jury.contains(y) && jury.len() < 7 && taught(y) {
            out.push(Change::Add(y));
        }
    }
    if k.remove && jury.len() > 1 {
        out.extend(jury.iter().map(Change::Remove));
    }
    out
}

/// Whether node `x` may retire: its removal is in force at it (from slot `e`), no later
/// change it knows adds it back (its latest jury does not hold it), and a majority of the
/// jury of `e` has committed every slot below `e` (the successor quorum holds the prefix).
pub fn retire_enabled(cfg: &CellConfig, s: &CellState, x: NodeId) -> bool {
    let node = &s.nodes[x as usize];
    let Some(e) = removal_in_force(cfg, x, node) else {
        return false;
    };
    let juries = jury::of_node(cfg, node);
    if juries.latest().contains(x) {
        return false;
    }
    let Some(new) = juries.at(e) else {
        return false;
    };
    let holders = NodeSet(
        new.iter()
            .filter(|&m| s.nodes[m as usize].commit >= e)
            .fold(0, |acc, m| acc | 1 << m),
    );
    new.is_quorum(holders)
}

impl Step<'_> {
    /// What a leader does once its commit index advanced from `old` (with reconfiguration).
    pub(crate) fn after_commit(&mut self, n: NodeId, old: Slot) {
        let commit = self.s.nodes[n as usize].commit;
        if !self.slot_jury(n, commit).contains(n) {
            // Its removal is in force: it proposes nothing from here on; the new jury elects.
            self.s.nodes[n as usize].role = Role::Follower;
            return;
        }
        if !self.mutant(Mutant::Phase1OldJury) {
            self.extend_phase1(n, old);
        }
        self.fill_pipeline(n);
    }

    /// Phase 1 across a change: for the first slot `e` of each jury that entered leader
    /// `n`'s window as its commit index advanced from `old`, if no majority of that jury has
    /// promised its ballot from a slot at or below `e`, ask the members that have not for
    /// promises from `e`.
    fn extend_phase1(&mut self, n: NodeId, old: Slot) {
        let node = &self.s.nodes[n as usize];
        let Role::Leader { promises, .. } = &node.role else {
            return;
        };
        let (promises, ballot, commit) = (*promises, node.ballot, node.commit);
        let juries = self.juries(n);
        let end = (commit + self.cfg.window).min(self.cfg.max_slots);
        for e in (old + self.cfg.window).max(commit)..end {
            let (Some(jury), Some(before)) = (juries.at(e), juries.at(e.saturating_sub(1))) else {
                continue;
            };
            if e == 0
                || jury == before
                || !jury.contains(n)
                || self.covered(n, &juries, &promises, e)
            {
                continue;
            }
            let asked = NodeSet(jury.0 & !promisers(&juries, &promises, n, e).0);
            for dst in asked.iter().filter(|&d| d != n) {
                self.send_node(n, dst, Msg::Prepare { ballot, from: e });
            }
        }
    }

    /// A learner that has committed the change adding it becomes a member, for slots from
    /// that change's slot plus α on, if that is after the slot its previous copy left (a
    /// lagging leader may teach a retired node a prefix in which its previous copy is still
    /// in the jury: that membership is not this copy's).
    pub(crate) fn promote(&mut self, n: NodeId) {
        let Status::Learner { left } = self.s.nodes[n as usize].status else {
            return;
        };
        let juries = self.juries(n);
        let since = juries.since(n);
        if juries.latest().contains(n) && (since > left || self.mutant(Mutant::AbaRejoin)) {
            self.s.nodes[n as usize].status = Status::Member { since };
        }
    }

    /// `Teach`: leader `l` installs a snapshot of its committed prefix on node `y` (a fresh
    /// learner's copy on a node without one; a member only below its `since`, where it never
    /// votes). The entries stay in `y`'s log for the properties, below `snap`.
    pub fn teach(&mut self, l: NodeId, y: NodeId) {
        let leader = self.s.nodes[l as usize].clone();
        let node = &mut self.s.nodes[y as usize];
        if !node.status.has_copy() {
            let left = match node.status {
                Status::Retired { left } => left,
                _ => 0,
            };
            let promised = node.promised; // kept beside the forwarding pointer
            *node = NodeState::new();
            node.promised = promised;
            node.status = Status::Learner { left };
        }
        let upto = match node.status {
            Status::Member { since } => leader.commit.min(since),
            _ => leader.commit,
        };
        node.log[..upto as usize].copy_from_slice(&leader.log[..upto as usize]);
        node.commit = node.commit.max(upto);
        node.snap = node.snap.max(upto);
        node.applied = ((1u16 << node.commit) - 1) as u8;
        node.kv = replay(node.committed()).0;
        self.promote(y);
    }

    /// `Reconfigure`: leader `l` proposes a jury change at its next slot.
    pub fn reconfigure(&mut self, l: NodeId, change: Change) {
        self.s.changes += 1;
        self.propose(l, Command::Change(change));
        self.advance_commit(l);
    }

    /// `Retire`: node `x` deletes its copy, keeping its highest promise beside the
    /// forwarding pointer (a node never reuses or goes below a ballot it promised, whatever
    /// copy it holds).
    pub fn retire(&mut self, x: NodeId) {
        let node = &self.s.nodes[x as usize];
        let left = removal_in_force(self.cfg, x, node).unwrap_or(0);
        let promised = node.promised;
        let node = &mut self.s.nodes[x as usize];
        *node = NodeState::new();
        node.promised = promised;
        node.status = Status::Retired { left };
    }
}
