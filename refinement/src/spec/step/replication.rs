//! Phase 2: replication. Proposals, `Accept`, `Accepted`, and the leader's commit rule.

use physalia_traces::{Ballot, Command, DurableWrite, Entry, NodeId, Slot};

use super::sends::Expect;
use super::Ctx;

impl Ctx<'_> {
    /// The leader writes `command` at `slot` at its ballot.
    pub(super) fn propose_at(&mut self, slot: Slot, command: Command) {
        let lead = self.w.lead.as_mut().expect("only a leader proposes");
        let ballot = lead.ballot;
        lead.next_slot = lead.next_slot.max(slot + 1);
        self.w.put(slot, (ballot, command.clone()));
        self.writes.push(DurableWrite::Accepted {
            entry: Entry {
                slot,
                ballot,
                command,
            },
        });
    }

    /// `Accept`: accept every proposal (durable writes, answered once durable) or refuse.
    /// The `Accepted` lists the slots the copy votes for (from its `since` on): below it
    /// the entries are stored to learn from, not voted for.
    pub(super) fn on_accept(
        &mut self,
        src: NodeId,
        ballot: Ballot,
        proposals: &[physalia_traces::Proposal],
    ) {
        if self.refuse_lower(src, ballot) {
            return;
        }
        self.adopt(ballot);
        for p in proposals {
            // Folded into the snapshot: chosen, so the vote stands for the chosen command
            // without an entry.
            if p.slot < self.w.base {
                continue;
            }
            if self.w.log.get(&p.slot) == Some(&(ballot, p.command.clone())) {
                continue;
            }
            self.w.put(p.slot, (ballot, p.command.clone()));
            self.writes.push(DurableWrite::Accepted {
                entry: Entry {
                    slot: p.slot,
                    ballot,
                    command: p.command.clone(),
                },
            });
        }
        self.expect = Some(Expect::Accepted {
            to: src,
            ballot,
            slots: proposals
                .iter()
                .map(|p| p.slot)
                .filter(|s| self.w.votes_at(self.n, *s))
                .collect(),
            commit: self.w.commit,
        });
    }

    /// `Accepted` at the leader of that ballot: count the votes, then commit.
    pub(super) fn on_accepted(&mut self, src: NodeId, ballot: Ballot, slots: &[Slot]) {
        if src == self.n {
            return;
        }
        let members: Vec<Slot> = slots
            .iter()
            .copied()
            .filter(|s| self.member_at(src, *s))
            .collect();
        let Some(lead) = self.w.lead.as_mut().filter(|l| l.ballot == ballot) else {
            return;
        };
        for s in members {
            lead.votes.entry(s).or_default().insert(src);
        }
        self.advance_commit();
    }

    /// The leader commits the longest prefix of slots a quorum accepted at its ballot.
    pub(super) fn advance_commit(&mut self) {
        let Some(lead) = self.w.lead.as_ref() else {
            return;
        };
        let mut commit = self.w.commit;
        let juries = &self.w.store.juries;
        let member_votes = |s: Slot| {
            lead.votes
                .get(&s)
                .map_or(0, |v| v.iter().filter(|n| juries.member_at(**n, s)).count())
        };
        while commit < lead.next_slot
            && self
                .w
                .log
                .get(&commit)
                .is_some_and(|(b, _)| *b == lead.ballot)
            && member_votes(commit) >= juries.quorum_at(commit)
        {
            commit += 1;
        }
        if let Some(lead) = self.w.lead.as_mut() {
            lead.votes.retain(|s, _| *s >= commit);
        }
        self.commit_to(commit);
    }
}
