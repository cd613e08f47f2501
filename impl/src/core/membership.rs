//! The jury per slot, as the core uses it (`docs/protocol.md`, "Reconfiguration"): which
//! nodes a step talks to, whose votes and promises count for a slot, when a leader may
//! propose at a slot (the window and phase 1 across a change), teaching learners, and jury
//! change requests.
//!
//! Every question here is asked of the configuration in force at one slot, which the state
//! machine's [`crate::kv::Jury`] computes from the applied (committed) prefix: a leader asks
//! only about slots inside its window, whose configuration its committed prefix determines.

use std::collections::BTreeSet;

use physalia_traces::{Command, JuryChange, Msg, NodeId, Role, Slot, Txn, TxnResult, NO_FLOOR_YET};

use super::Cell;

impl Cell {
    /// Whether `node` is a member of the configuration in force at `slot`.
    pub(super) fn member_at(&self, node: NodeId, slot: Slot) -> bool {
        self.sm.jury().at(slot).contains(node)
    }

    /// The size of a quorum at `slot`: a majority of its configuration.
    pub(super) fn quorum_at(&self, slot: Slot) -> usize {
        self.sm.jury().at(slot).quorum()
    }

    /// The other members of the configurations of the window starting at `from`
    /// (`config(from)` and `config(from + α − 1)`; at most two by "one change at a time"):
    /// the nodes a candidate whose commit index is `from` asks for promises.
    pub(super) fn window_peers(&self, from: Slot) -> Vec<NodeId> {
        let last = from + self.opts.alpha.saturating_sub(1);
        let jury = self.sm.jury();
        let mut out: BTreeSet<NodeId> = jury.at(from).members.iter().copied().collect();
        out.extend(jury.at(last).members.iter().copied());
        out.remove(&self.id);
        out.into_iter().collect()
    }

    /// Whether the promises `promised_by` (and this node's own, if `own`) hold a majority of
    /// both configurations of the window starting at `from`.
    pub(super) fn window_promised(
        &self,
        from: Slot,
        promised_by: &BTreeSet<NodeId>,
        own: bool,
    ) -> bool {
        let last = from + self.opts.alpha.saturating_sub(1);
        [from, last].iter().all(|s| {
            let config = self.sm.jury().at(*s);
            let votes = config
                .members
                .iter()
                .filter(|n| promised_by.contains(n) || (own && **n == self.id))
                .count();
            votes >= config.quorum()
        })
    }

    /// Whether this copy may vote for, and promise from, `slot`: it is a member from `since`
    /// on (a learner's copy is not until it learns the change that adds it, and a copy never
    /// votes for slots of an earlier membership of its node: ABA), and not a slot whose
    /// configuration, known from its applied prefix, no longer holds it (a removed node
    /// stops voting where it is no longer a member).
    pub(super) fn votes_at(&self, slot: Slot) -> bool {
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::VoteAfterAmnesia) {
            return true; // the bug: a fresh copy votes as if it always had
        }
        let known = slot < self.sm.applied() + self.sm.alpha();
        self.since.is_some_and(|since| slot >= since) && (!known || self.member_at(self.id, slot))
    }

    /// Whether this node may stand for election: a member of the configuration in force at
    /// its commit index, with a membership it knows.
    pub(super) fn may_stand(&self) -> bool {
        self.member_at(self.id, self.commit) && self.votes_at(self.commit)
    }

    /// Whether the leader has phase 1 for `slot`: a majority of `config(slot)` promised its
    /// ballot with a `Promise` covering `slot` (its own promise counts: it is durable). A
    /// promise from `from` counts for `slot` only if its node stayed a member from `from`
    /// through `slot`: a node removed and added back in between has a fresh copy that never
    /// made that promise (ABA through phase 1; `tla/` mutant `promise-across-copies`).
    pub(super) fn covered(&self, slot: Slot) -> bool {
        let Some(lead) = self.lead.as_ref() else {
            return false;
        };
        let config = self.sm.jury().at(slot);
        let votes = config
            .members
            .iter()
            .filter(|n| {
                **n == self.id
                    || lead.phase1.promised.get(n).is_some_and(|from| {
                        *from <= slot && self.sm.jury().member_throughout(**n, *from, slot)
                    })
            })
            .count();
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::Phase1OldJury) {
            // The bug: whoever promised counts, member of this slot's jury or not, as if the
            // jury of the election were the jury of every slot.
            return lead.phase1.promised.len() + 1 >= config.quorum();
        }
        votes >= config.quorum()
    }

    /// Whether the leader may propose at `slot` now: inside its window (so `config(slot)`
    /// is known), a member of `config(slot)`, with phase 1 for it.
    pub(super) fn may_propose_at(&self, slot: Slot) -> bool {
        slot < self.commit + self.opts.alpha && self.member_at(self.id, slot) && self.covered(slot)
    }

    /// Phase 1 across a change: before proposing at `slot`, ask the members of
    /// `config(slot)` that have not promised the leader's ballot (or whose promise does not
    /// cover `slot`) for a promise from `slot` on.
    pub(super) fn extend_phase1(&mut self, slot: Slot) {
        if slot >= self.commit + self.opts.alpha || self.covered(slot) {
            return;
        }
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        let ballot = lead.ballot;
        let ask: Vec<NodeId> = self
            .sm
            .jury()
            .at(slot)
            .members
            .iter()
            .copied()
            .filter(|n| *n != self.id)
            .filter(|n| lead.phase1.promised.get(n).is_none_or(|from| *from > slot))
            .filter(|n| lead.phase1.prepared.get(n).is_none_or(|from| *from > slot))
            .collect();
        for n in ask {
            if let Some(lead) = self.lead.as_mut() {
                lead.phase1.prepared.insert(n, slot);
                lead.peers.entry(n).or_default();
            }
            self.send(n, Msg::Prepare { ballot, from: slot });
        }
    }

    /// `Timeout(heartbeat)`: asks again, from `slot`, the members of `config(slot)` whose
    /// promise for the leader's ballot has not arrived (a `Prepare` or `Promise` was lost).
    pub(super) fn reask_phase1(&mut self, slot: Slot) {
        if let Some(lead) = self.lead.as_mut() {
            let promised = &lead.phase1.promised;
            lead.phase1.prepared.retain(|n, _| promised.contains_key(n));
        }
        self.extend_phase1(slot);
    }

    /// The nodes a leader talks to: the members of every configuration from its commit
    /// index to the end of its window, its learners, and removed members that have not yet
    /// reported a commit index past their removal (they learn it from `Commit`).
    pub(super) fn refresh_peers(&mut self) {
        let Some(lead) = self.lead.as_ref() else {
            return;
        };
        let jury = self.sm.jury();
        let (from, to) = (self.commit, self.commit + self.opts.alpha);
        let mut wanted: BTreeSet<NodeId> = lead.learners.clone();
        for s in [from, to.saturating_sub(1)] {
            wanted.extend(jury.at(s).members.iter().copied());
        }
        if let Some(change) = jury.next_change_after(from.saturating_sub(1)) {
            if change < to {
                wanted.extend(jury.at(change).members.iter().copied());
            }
        }
        wanted.remove(&self.id);
        let own = self.commit;
        let lead = self.lead.as_mut().expect("checked");
        // A node that left stays a peer until its commit index shows it learned that.
        lead.peers
            .retain(|n, p| wanted.contains(n) || p.commit < own || !p.acked.is_empty());
        for n in wanted {
            lead.peers.entry(n).or_default();
        }
    }

    /// Why a jury change cannot be proposed now, if it cannot: another change is in flight
    /// (proposed or chosen, not yet in force), the change does not fit the latest jury, or the
    /// node it adds is still being taught (it becomes a learner at the first request).
    pub(super) fn refuse_change(&mut self, change: &JuryChange) -> Option<String> {
        if self.change_in_flight() {
            return Some("a jury change is in flight: retry once it is in force".into());
        }
        let Some(next) = self.sm.jury().changed(change) else {
            let (latest, epoch) = self.sm.jury().latest();
            return Some(format!(
                "{change} does not fit the jury {:?} (epoch {epoch})",
                latest.members
            ));
        };
        debug_assert!(next.members.len() <= crate::kv::MAX_JURY);
        let node = change.joining()?;
        if node == self.id {
            return Some(format!("{node} leads: it cannot be taught or added again"));
        }
        let commit = self.commit;
        let lead = self
            .lead
            .as_mut()
            .expect("only a leader takes a jury change");
        if lead.learners.insert(node) {
            lead.peers.entry(node).or_default();
            return Some(format!("{node} is being taught the log: retry"));
        }
        let at = lead.peers.get(&node).map_or(0, |p| p.commit);
        if at < commit {
            return Some(format!(
                "{node} is being taught the log (commit {at} of {commit}): retry"
            ));
        }
        None
    }

    /// Whether a jury change is proposed or queued and not yet in force at the next slot:
    /// one at a slot within α below the next slot, or waiting in the queue or the
    /// re-proposals.
    pub(super) fn change_in_flight(&self) -> bool {
        let Some(lead) = self.lead.as_ref() else {
            return false;
        };
        let is_change = |c: &Command| matches!(c, Command::Op { txn, .. } if txn.is_reconfig());
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::ConcurrentChanges) {
            return false; // the bug: a second change may follow before the first is in force
        }
        let next = lead.next_slot;
        let low = next.saturating_sub(self.opts.alpha.saturating_sub(1));
        self.sm.last_change().is_some_and(|s| s >= low)
            || self.log.range(low..next).any(|(_, (_, c))| is_change(c))
            || lead.queue.iter().any(|(_, _, t)| t.is_reconfig())
            || lead.phase1.learned.values().any(|(_, c)| is_change(c))
    }

    /// After applying a jury change: a change that adds this node gives it its membership
    /// from the slot the change is in force; the leader stops teaching a node that joined.
    pub(super) fn on_change_applied(&mut self, result: &TxnResult, txn: &Txn) {
        let (
            TxnResult::Reconfig {
                ok: true,
                jury,
                in_force,
                ..
            },
            Txn::Reconfig { change },
        ) = (result, txn)
        else {
            return;
        };
        if change.leaving() == Some(self.id) && !jury.contains(&self.id) {
            // Whatever membership comes next starts after this one ended.
            self.floor = if self.floor == NO_FLOOR_YET {
                *in_force
            } else {
                self.floor.max(*in_force)
            };
        }
        #[cfg(feature = "bugs")]
        let floor = if self.bug(crate::bugs::Bug::VoteAfterAmnesia) {
            0 // the bug: a re-created copy takes any change adding its node for its own
        } else {
            self.floor
        };
        #[cfg(not(feature = "bugs"))]
        let floor = self.floor;
        // A re-created copy catching up applies the changes of its node's earlier
        // memberships too: only one in force at or after the floor is its own (ABA).
        if change.joining() == Some(self.id)
            && jury.contains(&self.id)
            && floor != NO_FLOOR_YET
            && *in_force >= floor
        {
            self.since = Some(*in_force);
        }
        if let (Some(lead), Some(node)) = (self.lead.as_mut(), change.joining()) {
            lead.learners.remove(&node);
        }
    }

    /// After a snapshot replaced the applied prefix (a restart from one, or an install):
    /// what `on_change_applied` would have concluded from the changes folded in, read off
    /// the jury history the snapshot holds. Each configuration that drops this node raises
    /// the floor to its first slot; one that adds it back (a member where the previous was
    /// not) at or after the floor is this copy's membership. A copy created with the cell
    /// keeps its membership from slot 0 unless a later one is found.
    pub(super) fn adopt_memberships(&mut self) {
        let configs: Vec<(Slot, bool)> = self
            .sm
            .jury()
            .configs()
            .map(|(start, _, c)| (start, c.contains(self.id)))
            .collect();
        for pair in configs.windows(2) {
            let ((_, was), (start, is)) = (pair[0], pair[1]);
            if was && !is {
                self.floor = if self.floor == NO_FLOOR_YET {
                    start
                } else {
                    self.floor.max(start)
                };
            }
            #[cfg(feature = "bugs")]
            let floor = if self.bug(crate::bugs::Bug::VoteAfterAmnesia) {
                0
            } else {
                self.floor
            };
            #[cfg(not(feature = "bugs"))]
            let floor = self.floor;
            if !was && is && floor != NO_FLOOR_YET && start >= floor {
                self.since = Some(start);
            }
        }
        // The history keeps the latest configurations only (it was cut if the oldest kept
        // one starts after slot 0): if the one that added this copy was forgotten, the
        // oldest kept one holding it (at or after the floor, where an
        // earlier copy left) is a membership of this copy, from its first slot at least.
        // Voting from a later slot than the true start is only ever safer.
        if let Some(&(first, holds)) = configs.first().filter(|(first, _)| *first > 0) {
            let floor = self.floor;
            if self.since.is_none() && holds && floor != NO_FLOOR_YET && first >= floor {
                self.since = Some(first);
            }
        }
    }

    /// After the commit index advanced: a leader that is no longer a member of the
    /// configuration at its commit index steps down (its jury elects a new leader).
    pub(super) fn leave_if_removed(&mut self) {
        if self.role == Role::Leader && !self.member_at(self.id, self.commit) {
            self.step_down(None);
        }
    }
}

impl Cell {
    /// The first slot this copy votes for, if it is a member (`None`: a learner's copy that
    /// has not learned the change adding it).
    pub fn since(&self) -> Option<Slot> {
        self.since
    }

    /// Whether this copy was created by teaching.
    pub fn is_learner_copy(&self) -> bool {
        self.learner
    }

    /// Where a non-leader points a client: the node of its promised ballot. A node outside
    /// the latest jury it knows (removed, or a learner) leaves a forwarding pointer to that
    /// jury instead: its promise may be stale for good, as nobody leads it any more.
    pub(super) fn redirect_hint(&self) -> Option<NodeId> {
        let hint = self.leader_hint().filter(|n| *n != self.id);
        let (latest, _) = self.sm.jury().latest();
        if latest.contains(self.id) && self.since.is_some() {
            return hint;
        }
        hint.filter(|n| latest.contains(*n))
            .or_else(|| latest.members.iter().copied().find(|n| *n != self.id))
    }

    /// The first slot from which this node is not a member, if a removal of it is in force
    /// at its commit index: its copy may be deleted once a successor quorum has the prefix
    /// (the shell decides when, keeping a forwarding pointer).
    pub fn removed_from(&self) -> Option<Slot> {
        let jury = self.sm.jury();
        // A node about to join (the latest jury holds it) is not removed, whatever the jury
        // at its commit index says.
        let out = !jury.at(self.commit).contains(self.id) && !jury.latest().0.contains(self.id);
        if !out || self.since.is_none() {
            return None;
        }
        Some(jury.start_of(self.commit))
    }
}
