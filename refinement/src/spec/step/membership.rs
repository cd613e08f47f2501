//! The jury per slot in the rules (`docs/protocol.md`, "Reconfiguration"): a candidate's
//! window, the leader's phase 1 across a change, re-proposals slot by slot inside the window,
//! one change at a time, and leaving the jury. Each node's configurations come from what it
//! applied ([`crate::spec::state::Store::juries`]).

use std::collections::BTreeSet;

use physalia_traces::{Ballot, Command, Entry, NodeId, Role, Slot};

use super::Ctx;

impl Ctx<'_> {
    /// The last slot of the window starting at `from`.
    fn window_end(&self, from: Slot) -> Slot {
        from + self.facts.alpha.saturating_sub(1)
    }

    /// The nodes a candidate with commit index `from` asks for promises: the other members
    /// of `config(from)` and `config(from + α − 1)`.
    pub(super) fn window_members(&self, from: Slot) -> BTreeSet<NodeId> {
        let j = &self.w.store.juries;
        let mut out: BTreeSet<NodeId> = j.at(from).iter().copied().collect();
        out.extend(j.at(self.window_end(from)).iter().copied());
        out.remove(&self.n);
        out
    }

    /// Whether `promised_by` (and this node, if `own`) hold a majority of both
    /// configurations of the window starting at `from`.
    pub(super) fn window_promised(
        &self,
        from: Slot,
        promised_by: &BTreeSet<NodeId>,
        own: bool,
    ) -> bool {
        let j = &self.w.store.juries;
        [from, self.window_end(from)].iter().all(|s| {
            let votes = j
                .at(*s)
                .iter()
                .filter(|n| promised_by.contains(n) || (own && **n == self.n))
                .count();
            votes >= j.quorum_at(*s)
        })
    }

    /// Whether the node may stand for election: a member of the configuration at its commit
    /// index, with a membership it knows.
    pub(super) fn may_stand(&self) -> bool {
        self.member_at(self.n, self.w.commit) && self.w.votes_at(self.n, self.w.commit)
    }

    /// Whether the leader has phase 1 for `slot`: a majority of `config(slot)` promised its
    /// ballot covering `slot` (its own promise counts).
    pub(super) fn covered(&self, slot: Slot) -> bool {
        let Some(lead) = self.w.lead.as_ref() else {
            return false;
        };
        let j = &self.w.store.juries;
        let votes = j
            .at(slot)
            .iter()
            .filter(|n| {
                **n == self.n
                    || lead
                        .promised
                        .get(n)
                        .is_some_and(|f| *f <= slot && j.member_throughout(**n, *f, slot))
            })
            .count();
        votes >= j.quorum_at(slot)
    }

    /// Whether the leader may propose at `slot`: inside its window, a member of
    /// `config(slot)`, with phase 1 for it.
    pub(super) fn may_propose_at(&self, slot: Slot) -> bool {
        slot < self.w.commit + self.facts.alpha
            && self.member_at(self.n, slot)
            && self.covered(slot)
    }

    /// Re-proposes the learned values (a `Noop` where nothing was learned) at the next
    /// slots, as far as the leader may propose there.
    pub(super) fn fill_reproposals(&mut self) {
        loop {
            let Some(lead) = self.w.lead.as_ref() else {
                return;
            };
            let slot = lead.next_slot;
            if slot >= lead.end || !self.may_propose_at(slot) {
                return;
            }
            let lead = self.w.lead.as_mut().expect("checked");
            let command = lead.learned.remove(&slot).map_or(Command::Noop, |(_, c)| c);
            self.propose_at(slot, command);
        }
    }

    /// A promise at a leader of its ballot: it covers slots from the `from` the leader asked
    /// this node for; its entries at slots not yet proposed join the values to re-propose.
    pub(super) fn on_late_promise(&mut self, src: NodeId, accepted: &[Entry]) {
        let commit = self.w.commit;
        let Some(lead) = self.w.lead.as_mut() else {
            return;
        };
        let covers = lead.prepared.get(&src).copied().unwrap_or(commit);
        lead.promised.entry(src).or_insert(covers);
        for e in accepted {
            if e.slot < lead.next_slot {
                continue;
            }
            if lead.learned.get(&e.slot).is_none_or(|(b, _)| *b < e.ballot) {
                lead.end = lead.end.max(e.slot + 1);
                lead.learned.insert(e.slot, (e.ballot, e.command.clone()));
            }
        }
        self.fill_reproposals();
        self.may_propose = true;
    }

    /// Whether a jury change may not go at `slot`: an earlier slot is not committed, or a
    /// change is at a slot within α below `slot` in the node's log (`tla/` findings: the
    /// own-log rule alone lets re-proposals bring two changes into one window).
    pub(super) fn change_before(&self, slot: Slot) -> bool {
        if slot != self.w.commit {
            return true;
        }
        let low = slot.saturating_sub(self.facts.alpha.saturating_sub(1));
        // Slots folded into the snapshot are looked up in the store.
        self.w.store.last_change.is_some_and(|s| s >= low)
            || self
                .w
                .log
                .range(low..slot)
                .any(|(_, (_, c))| matches!(c, Command::Op { txn, .. } if txn.is_reconfig()))
    }

    /// A leader no longer a member of the configuration at its commit index steps down.
    pub(super) fn leave_if_removed(&mut self) {
        if self.w.role == Role::Leader && !self.member_at(self.n, self.w.commit) {
            self.step_down();
        }
    }

    /// A `Prepare` a leader may send after its election: phase 1 across a change, from a
    /// slot of its window that phase 1 does not cover, to a member of that slot's
    /// configuration; it records what it asked.
    pub(super) fn leader_prepare_ok(&mut self, to: NodeId, ballot: Ballot, from: Slot) -> bool {
        let ok = self.w.lead.as_ref().is_some_and(|l| l.ballot == ballot)
            && from >= self.w.commit
            && from < self.w.commit + self.facts.alpha
            && self.member_at(to, from)
            && !self.covered(from);
        if ok {
            if let Some(lead) = self.w.lead.as_mut() {
                lead.prepared.insert(to, from);
            }
        }
        ok
    }
}
