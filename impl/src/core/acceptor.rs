//! The acceptor and learner handlers, run by every node: `Prepare`, `Accept`, `Commit`,
//! and applying the committed prefix.

use physalia_traces::{
    Ballot, Command, DurableWrite, Entry, Image, Msg, NodeId, Proposal, Role, Slot,
};

use super::Cell;
use crate::kv::Applied;

impl Cell {
    /// Raises the promise to `ballot` (persisting it) and steps down if this node
    /// is a candidate or leads with a lower ballot.
    fn adopt(&mut self, ballot: Ballot) {
        if ballot > self.promised {
            self.promised = ballot;
            self.persist(DurableWrite::Promised { ballot });
        }
        self.max_round = self.max_round.max(ballot.round);
        if self.role != Role::Follower && self.ballot < ballot {
            self.step_down(Some(ballot.node));
        }
    }

    /// Phase 1b: promise `ballot` and report every entry at `>= from`, or refuse. A copy
    /// ignores a `Prepare` from below the start of its membership (`since`): it holds no
    /// acceptor state for those slots, and must not answer as if it did (ABA, amnesia).
    /// From below its snapshot it cannot report the slots folded in either: it answers with
    /// the snapshot (they are chosen), not a promise, and the candidate, once it installed
    /// it, stands again from its new commit index. So a `Promise` carries only entries
    /// above a point the candidate knows chosen: never more than this node's log holds
    /// above its snapshot (about `snapshot_every` slots plus the pipeline).
    pub(super) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        if !self.votes_at(slot) {
            return;
        }
        if ballot < self.promised {
            self.max_round = self.max_round.max(ballot.round);
            let promised = self.promised;
            return self.send(from, Msg::Nack { ballot, promised });
        }
        if slot < self.base {
            let image = self.sm.image();
            return self.send(from, Msg::Snapshot { ballot, image });
        }
        self.adopt(ballot);
        let accepted = self
            .log
            .range(slot..)
            .map(|(s, (b, c))| Entry {
                slot: *s,
                ballot: *b,
                command: c.clone(),
            })
            .collect();
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::PromiseBeforeDurable) {
            self.send(from, Msg::Promise { ballot, accepted });
            if self.role == Role::Follower {
                self.arm_election();
            }
            return;
        }
        self.send_after_persist(from, Msg::Promise { ballot, accepted });
        if self.role == Role::Follower {
            self.arm_election();
        }
    }

    /// Phase 2b: accept the proposals at `ballot` (persisting them) and answer once they
    /// are durable, or refuse. A proposal for a slot this copy does not vote for (below its
    /// `since`: a learner being taught, or a slot of an earlier membership of its node) is
    /// stored to learn from the `Commit` that follows, but not voted for: the `Accepted`
    /// lists only the slots voted, and carries the commit index.
    pub(super) fn on_accept(&mut self, from: NodeId, ballot: Ballot, proposals: Vec<Proposal>) {
        #[cfg(feature = "bugs")]
        let refuse = ballot < self.promised && !self.bug(crate::bugs::Bug::AcceptLowerBallot);
        #[cfg(not(feature = "bugs"))]
        let refuse = ballot < self.promised;
        if refuse {
            let promised = self.promised;
            return self.send(from, Msg::Nack { ballot, promised });
        }
        self.adopt(ballot);
        let mut slots = Vec::with_capacity(proposals.len());
        for p in proposals {
            if self.votes_at(p.slot) {
                slots.push(p.slot);
            }
            // Folded into the snapshot: chosen, so by Agreement the leader proposes the
            // chosen command, and the vote stands for it without an entry (no `Promise` of
            // this node ever reports a slot below its snapshot; see `on_prepare`).
            if p.slot < self.base {
                continue;
            }
            if self.log.get(&p.slot) == Some(&(ballot, p.command.clone())) {
                continue;
            }
            // Below `commit` the slot is chosen here already; by Agreement the leader ships
            // the same command, rewritten at its ballot only so that its `Commit` matches.
            // The applied prefix never changes (a peer's message cannot undo an apply).
            self.log.insert(p.slot, (ballot, p.command.clone()));
            self.persist(DurableWrite::Accepted {
                entry: Entry {
                    slot: p.slot,
                    ballot,
                    command: p.command,
                },
            });
        }
        let commit = self.commit;
        self.send_after_persist(
            from,
            Msg::Accepted {
                ballot,
                slots,
                commit,
            },
        );
        self.arm_election();
    }

    /// Learning: every slot `< up_to` is chosen, and an entry accepted at exactly `ballot`
    /// is the chosen value, so the commit index advances over such entries. A follower that
    /// stops short of `up_to` (a missing entry, or one of another ballot) tells the leader
    /// its commit index in an `Accepted` without slots, so that the leader ships the
    /// segment it lacks (after a restart, its commit index starts again from 0).
    pub(super) fn on_commit(&mut self, from: NodeId, ballot: Ballot, up_to: Slot) {
        let current = ballot >= self.promised && self.role == Role::Follower;
        if current {
            self.max_round = self.max_round.max(ballot.round);
            self.arm_election();
        }
        while self.commit < up_to {
            match self.log.get(&self.commit) {
                Some((b, _)) if *b == ballot => self.commit += 1,
                #[cfg(feature = "bugs")]
                Some(_) if self.bug(crate::bugs::Bug::CatchupWithoutBallots) => self.commit += 1,
                _ => break,
            }
        }
        self.apply_committed();
        if current && self.commit < up_to {
            let commit = self.commit;
            let slots = Vec::new();
            self.send(
                from,
                Msg::Accepted {
                    ballot,
                    slots,
                    commit,
                },
            );
        }
    }

    /// Applies every committed slot not yet applied, in slot order; the leader answers
    /// each client operation.
    pub(super) fn apply_committed(&mut self) {
        #[cfg(feature = "bugs")]
        let (reversed, first, last) = (
            self.bug(crate::bugs::Bug::ApplyOutOfOrder),
            self.sm.applied(),
            self.commit,
        );
        while self.sm.applied() < self.commit {
            let slot = self.sm.applied();
            // The bug: of the slots committed together, the last is applied first.
            #[cfg(feature = "bugs")]
            let slot = if reversed {
                last - 1 - (slot - first)
            } else {
                slot
            };
            let Some((_, command)) = self.log.get(&slot) else {
                debug_assert!(false, "committed slot {slot} missing from the log");
                return;
            };
            let command = command.clone();
            let applied = self.sm.apply(&command);
            // Bound: the loop applies at most the committed entries in the log.
            let Applied::Result { client, op, result } = applied else {
                continue;
            };
            if let Command::Op { txn, .. } = &command {
                self.on_change_applied(&result, txn);
            }
            if let Some(lead) = self.lead.as_mut() {
                lead.pending.remove(&(client, op));
                self.reply(client, Msg::Reply { op, result });
            }
        }
    }

    /// At the end of a step: folds the applied prefix into a snapshot once `snapshot_every`
    /// slots are applied above the last one; the log keeps only the slots from the applied
    /// point on. The snapshot is written after the entries it folds in (in the same batch or
    /// a later one: batches are durable in order), and at most once per step, of the state
    /// the step ends with.
    pub(super) fn compact(&mut self) {
        let every = self.opts.snapshot_every;
        if every == 0 || self.sm.applied() < self.base + every {
            return;
        }
        if self.opts.keep_folded {
            let kept = self.log.split_off(&self.sm.applied());
            self.folded = std::mem::replace(&mut self.log, kept);
        }
        self.snapshot(self.sm.image());
    }

    /// Makes `image` this copy's snapshot: its point becomes the base, the log entries below
    /// it go, and the snapshot is persisted.
    fn snapshot(&mut self, image: Image) {
        self.base = image.upto;
        self.log = self.log.split_off(&self.base);
        self.image = Some(image.clone());
        self.persist(DurableWrite::Snapshot { image });
    }

    /// State transfer: a snapshot above this node's commit index is a longer chosen prefix
    /// than it knows, so it installs it (its log entries from the snapshot's point on stay:
    /// they are votes). Only two senders teach: the leader of a ballot at least this node's
    /// promise (the node answers it with its commit index, installed or not, so that a lost
    /// answer does not make the leader re-send its state for ever), and a node answering this
    /// node's own `Prepare` (its ballot). A snapshot at or below the commit index is not
    /// installed (that would roll back a chosen prefix), nor one no state machine could have
    /// written. A candidate or leader that installs one steps down: it asked from an older
    /// commit index, and it stands again from the new one.
    pub(super) fn on_snapshot(&mut self, from: NodeId, ballot: Ballot, image: Image) {
        #[cfg(feature = "bugs")]
        let stale = self.bug(crate::bugs::Bug::StaleSnapshot);
        #[cfg(not(feature = "bugs"))]
        let stale = false;
        let from_leader = ballot.node == from && ballot >= self.promised;
        let answer = ballot.node == self.id && ballot == self.ballot && self.role != Role::Follower;
        if !from_leader && !answer {
            return;
        }
        if image.upto > self.commit || stale {
            let Ok(sm) = self.sm.from_image(&image) else {
                return;
            };
            self.sm = sm;
            self.commit = image.upto;
            if stale {
                // The bug: the whole log is replaced by the snapshot.
                self.log.clear();
            }
            self.snapshot(image);
            self.adopt_memberships();
            if self.role != Role::Follower {
                self.step_down(None);
            }
        }
        if from_leader {
            self.max_round = self.max_round.max(ballot.round);
            self.arm_election();
            let commit = self.commit;
            let slots = Vec::new();
            let msg = Msg::Accepted {
                ballot,
                slots,
                commit,
            };
            self.send_after_persist(from, msg);
        }
    }
}
