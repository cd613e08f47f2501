//! Phase 1: elections. `Timeout(election)`, `Prepare`, `Promise`, `Nack`, winning and
//! stepping down (the model's `handlers.rs`, "Phase 1").

use std::collections::{BTreeMap, BTreeSet};

use physalia_traces::{Ballot, DurableWrite, Entry, NodeId, Role, Slot};

use super::sends::Expect;
use super::Ctx;
use crate::spec::state::{Candidate, Lead};

impl Ctx<'_> {
    /// A `Prepare` or `Accept` below the promise is answered `Nack` and changes nothing.
    pub(super) fn refuse_lower(&mut self, src: NodeId, ballot: Ballot) -> bool {
        if ballot >= self.w.promised {
            return false;
        }
        let promised = self.w.promised;
        self.expect = Some(Expect::Nack {
            to: src,
            ballot,
            promised,
        });
        true
    }

    /// Raises the promise to `ballot` (a durable write) and steps down from a lower ballot.
    pub(super) fn adopt(&mut self, ballot: Ballot) {
        if ballot > self.w.promised {
            self.w.promised = ballot;
            self.writes.push(DurableWrite::Promised { ballot });
        }
        if self.w.role != Role::Follower && self.w.ballot < ballot {
            self.step_down();
        }
    }

    pub(super) fn step_down(&mut self) {
        if self.w.role == Role::Leader {
            self.stepped_down = true;
        }
        self.w.role = Role::Follower;
        self.w.candidate = None;
        self.w.lead = None;
        // Queued requests are redirected, never proposed.
        let dropped = std::mem::take(&mut self.w.requested);
        self.redirectable.extend(dropped.into_keys());
    }

    /// `Timeout(election)`: a non-leader stands as a candidate with a fresh ballot of its own above its
    /// promise. The round is the node's choice (it is logged); its uniqueness is not.
    pub(super) fn on_election_timeout(&mut self, candidate_ballots: &BTreeSet<Ballot>) {
        if self.w.role == Role::Leader || !self.may_stand() {
            return; // a learner, or a node its jury no longer holds, never stands
        }
        let ballot = self.ev.state.ballot;
        if ballot.node != self.n || ballot <= self.w.promised {
            self.find(
                "state.ballot",
                format!(
                    "a ballot (r, {}) above the promise {}",
                    self.n, self.w.promised
                ),
                ballot,
            );
        } else if candidate_ballots.contains(&ballot) {
            self.find(
                "state.ballot",
                format!("a ballot of {} no Prepare has left with before", self.n),
                format!("{ballot}, used already (ballots must be unique)"),
            );
        }
        self.w.promised = ballot;
        self.writes.push(DurableWrite::Promised { ballot });
        self.w.role = Role::Candidate;
        self.w.ballot = ballot;
        self.w.lead = None;
        let from = self.w.commit;
        self.w.candidate = Some(Candidate {
            ballot,
            from,
            promised_by: BTreeSet::new(),
            self_durable: false,
            learned: self
                .w
                .log
                .range(from..)
                .map(|(s, e)| (*s, e.clone()))
                .collect(),
        });
    }

    /// `Prepare`: promise (a durable write, answered once durable) or refuse. A copy
    /// ignores a `Prepare` from below the start of its membership (`since`).
    pub(super) fn on_prepare(&mut self, src: NodeId, ballot: Ballot, from: Slot) {
        if !self.w.votes_at(self.n, from) {
            return;
        }
        if self.refuse_lower(src, ballot) {
            return;
        }
        // From below its snapshot it cannot report the slots folded in: it answers with
        // the snapshot (those slots are chosen), and promises nothing.
        if from < self.w.base {
            self.expect = Some(Expect::Snapshot {
                to: src,
                ballot,
                image: self.w.store.image(),
            });
            return;
        }
        self.adopt(ballot);
        let accepted = self
            .w
            .log
            .range(from..)
            .map(|(s, (b, c))| Entry {
                slot: *s,
                ballot: *b,
                command: c.clone(),
            })
            .collect();
        self.expect = Some(Expect::Promise {
            to: src,
            ballot,
            accepted,
        });
    }

    /// `Promise` for the current candidacy: count it, keep the highest-ballot entries. At a
    /// leader of that ballot: a promise asked for by phase 1 across a change.
    pub(super) fn on_promise(&mut self, src: NodeId, ballot: Ballot, accepted: &[Entry]) {
        if self.w.lead.as_ref().is_some_and(|l| l.ballot == ballot) {
            return self.on_late_promise(src, accepted);
        }
        let Some(c) = self.w.candidate.as_mut().filter(|c| c.ballot == ballot) else {
            return;
        };
        c.promised_by.insert(src);
        for e in accepted {
            if c.learned.get(&e.slot).is_none_or(|(b, _)| *b < e.ballot) {
                c.learned.insert(e.slot, (e.ballot, e.command.clone()));
            }
        }
        self.try_win();
    }

    pub(super) fn try_win(&mut self) {
        let Some(c) = self.w.candidate.as_ref() else {
            return;
        };
        if !self.window_promised(c.from, &c.promised_by, c.self_durable) {
            return;
        }
        if self.member_at(self.n, self.w.commit) {
            self.become_leader();
        } else {
            self.step_down(); // removed while it stood: it cannot lead
        }
    }

    /// A majority of each configuration of the window promised: re-propose the
    /// highest-ballot command of every slot learned, a `Noop` into every hole, from the
    /// commit index on (P2c), slot by slot inside the window.
    pub(super) fn become_leader(&mut self) {
        let c = self
            .w
            .candidate
            .take()
            .expect("a candidate has its candidate state");
        let start = self.w.commit;
        let end = c
            .learned
            .keys()
            .next_back()
            .map_or(start, |s| (s + 1).max(start));
        self.w.role = Role::Leader;
        self.w.requested.clear(); // a new leader's queue starts empty
        let mut learned = c.learned;
        learned.retain(|s, _| *s >= start);
        let mut promised: BTreeMap<NodeId, Slot> =
            c.promised_by.iter().map(|n| (*n, c.from)).collect();
        promised.remove(&self.n);
        self.w.lead = Some(Lead {
            ballot: c.ballot,
            start,
            next_slot: start,
            votes: Default::default(),
            promised,
            prepared: BTreeMap::new(),
            learned,
            end,
        });
        self.fill_reproposals();
    }

    /// `Nack`: a candidate or leader of that ballot steps down.
    pub(super) fn on_nack(&mut self, ballot: Ballot) {
        if self.w.role != Role::Follower && self.w.ballot == ballot {
            self.step_down();
        }
    }
}
