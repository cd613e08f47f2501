//! The proposer handlers: elections (`Timeout(election)`, `Promise`, `Nack`), leading
//! (re-proposal, no-ops into holes, `Accepted`, commit), heartbeats and catch-up.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use physalia_traces::{Ballot, Command, DurableWrite, Entry, Msg, NodeId, Proposal, Role, Slot};

use super::effects::SelfVote;
use super::{Candidate, Cell, Lead, Phase1};

impl Cell {
    /// `Timeout(election)`: a non-leader stands as a candidate with a ballot above every round
    /// it knows.
    pub(super) fn on_election_timeout(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        if !self.may_stand() {
            // A learner, or a node the jury at its commit index does not hold: it never
            // stands; it waits to be taught (or forwards, once its removal is in force).
            self.arm_election();
            return;
        }
        #[cfg(feature = "bugs")]
        let known = if self.bug(crate::bugs::Bug::BallotReuseAfterRestart) {
            self.max_round // the bug: the durable promise's round is not consulted
        } else {
            self.promised.round.max(self.max_round)
        };
        #[cfg(not(feature = "bugs"))]
        let known = self.promised.round.max(self.max_round);
        let ballot = Ballot {
            round: known + 1,
            node: self.id,
        };
        self.stand(ballot);
    }

    fn stand(&mut self, ballot: Ballot) {
        self.promised = ballot;
        self.max_round = ballot.round;
        self.persist(DurableWrite::Promised { ballot });
        self.role = Role::Candidate;
        self.ballot = ballot;
        let from = self.commit;
        let learned = self
            .log
            .range(from..)
            .map(|(s, e)| (*s, e.clone()))
            .collect();
        self.candidate = Some(Candidate {
            ballot,
            from,
            promised_by: BTreeSet::new(),
            self_durable: false,
            learned,
        });
        self.defer_vote(SelfVote::Promise(ballot));
        // `Prepare` waits until the promise of `ballot` is durable: otherwise a crash can
        // lose it, the restarted node (whose rounds come from its durable promise) picks
        // the same ballot again, and two candidates of one ballot can propose different
        // commands for one slot (found by trace refinement's ballot-uniqueness rule).
        for peer in self.window_peers(from) {
            self.send_after_persist(peer, Msg::Prepare { ballot, from });
        }
        self.arm_election();
        self.timers.prepare = Some(self.now + self.opts.prepare_interval);
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::SkipPrepare) {
            // The bug: leads at once, as if every member of its window had promised.
            let everyone: BTreeSet<NodeId> = self.window_peers(from).into_iter().collect();
            if let Some(c) = self.candidate.as_mut() {
                c.promised_by = everyone;
            }
            self.become_leader();
        }
    }

    /// `Timeout(prepare)`: a candidate re-sends `Prepare` to the nodes that have not
    /// promised.
    pub(super) fn on_prepare_timeout(&mut self) {
        let Some(c) = self.candidate.as_ref() else {
            self.timers.prepare = None;
            return;
        };
        let (ballot, from) = (c.ballot, c.from);
        let silent: Vec<NodeId> = self
            .window_peers(from)
            .into_iter()
            .filter(|p| !c.promised_by.contains(p))
            .collect();
        for peer in silent {
            self.send_after_persist(peer, Msg::Prepare { ballot, from });
        }
        self.timers.prepare = Some(self.now + self.opts.prepare_interval);
    }

    /// A `Promise` for this candidate's ballot: keep the highest-ballot entry per slot. At
    /// a leader of that ballot, a promise asked for by phase 1 across a change.
    pub(super) fn on_promise(&mut self, from: NodeId, ballot: Ballot, accepted: Vec<Entry>) {
        if self.lead.as_ref().is_some_and(|l| l.ballot == ballot) {
            return self.on_late_promise(from, accepted);
        }
        let Some(c) = self.candidate.as_mut().filter(|c| c.ballot == ballot) else {
            return;
        };
        c.promised_by.insert(from);
        for e in accepted {
            let keep = c.learned.get(&e.slot).is_none_or(|(b, _)| *b < e.ballot);
            if keep {
                c.learned.insert(e.slot, (e.ballot, e.command));
            }
        }
        self.try_win();
    }

    /// A self-vote whose write became durable.
    pub(super) fn on_self_vote(&mut self, vote: SelfVote) {
        match vote {
            SelfVote::Promise(b) => {
                if let Some(c) = self.candidate.as_mut().filter(|c| c.ballot == b) {
                    c.self_durable = true;
                    self.try_win();
                }
            }
            SelfVote::Accept(b, slots) => {
                #[cfg(feature = "bugs")]
                if self.bug(crate::bugs::Bug::ReplyBeforeCommit) {
                    self.reply_early(b, &slots);
                }
                let id = self.id;
                let Some(lead) = self.lead.as_mut().filter(|l| l.ballot == b) else {
                    return;
                };
                for s in slots {
                    lead.votes.entry(s).or_default().insert(id);
                }
                self.advance_commit();
            }
        }
    }

    /// The bug `reply-before-commit`: answers the clients of `slots` with the result their
    /// commands would have, computed on a copy of the state machine, before any commit.
    #[cfg(feature = "bugs")]
    fn reply_early(&mut self, ballot: Ballot, slots: &[Slot]) {
        if self.lead.as_ref().is_none_or(|l| l.ballot != ballot) {
            return;
        }
        let Some(&last) = slots.iter().max() else {
            return;
        };
        let mut sm = self.sm.clone();
        let mut replies = Vec::new();
        while sm.applied() <= last {
            let slot = sm.applied();
            let Some((_, command)) = self.log.get(&slot) else {
                break;
            };
            let applied = sm.apply(&command.clone());
            if let crate::kv::Applied::Result { client, op, result } = applied {
                if slots.contains(&slot) {
                    replies.push((client, op, result));
                }
            }
        }
        for (client, op, result) in replies {
            self.reply(client, Msg::Reply { op, result });
        }
    }

    /// A leader's promise from a node of a later configuration (or one that answered after
    /// the election): it covers slots from the `from` this leader asked it for; its entries
    /// above what the leader proposed join the values to re-propose.
    fn on_late_promise(&mut self, from: NodeId, accepted: Vec<Entry>) {
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        let covers = lead
            .phase1
            .prepared
            .get(&from)
            .copied()
            .unwrap_or(self.commit);
        lead.phase1.promised.entry(from).or_insert(covers);
        for e in accepted {
            if e.slot < lead.next_slot {
                continue; // proposed already, under a covered configuration
            }
            let keep = lead
                .phase1
                .learned
                .get(&e.slot)
                .is_none_or(|(b, _)| *b < e.ballot);
            if keep {
                lead.phase1.end = lead.phase1.end.max(e.slot + 1);
                lead.phase1.learned.insert(e.slot, (e.ballot, e.command));
            }
        }
        self.fill_pipeline();
    }

    fn try_win(&mut self) {
        let Some(c) = self.candidate.as_ref() else {
            return;
        };
        if !self.window_promised(c.from, &c.promised_by, c.self_durable) {
            return;
        }
        if self.member_at(self.id, self.commit) {
            self.become_leader();
        } else {
            // Its commit index moved past its removal while it stood: it cannot lead.
            self.step_down(None);
        }
    }

    /// Phase 2 for every unchosen slot: re-propose the highest-ballot command reported, and
    /// `Noop` into every hole, at the new ballot, slot by slot inside the window (and only
    /// where phase 1 covers the slot's configuration).
    fn become_leader(&mut self) {
        let c = self
            .candidate
            .take()
            .expect("a candidate has its candidate state");
        let start = self.commit;
        let end = c
            .learned
            .keys()
            .next_back()
            .map_or(start, |s| (s + 1).max(start));
        let mut learned = c.learned;
        learned.retain(|s, _| *s >= start);
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::IgnorePromisedValues) {
            learned.clear(); // the bug: every unchosen slot gets a no-op
        }
        let mut promised: BTreeMap<NodeId, Slot> =
            c.promised_by.iter().map(|n| (*n, c.from)).collect();
        promised.remove(&self.id);
        self.role = Role::Leader;
        self.lead = Some(Lead {
            ballot: c.ballot,
            next_slot: start,
            votes: BTreeMap::new(),
            peers: BTreeMap::new(),
            queue: VecDeque::new(),
            pending: BTreeSet::new(),
            phase1: Phase1 {
                promised,
                prepared: BTreeMap::new(),
                learned,
                end,
            },
            learners: BTreeSet::new(),
        });
        self.refresh_peers();
        self.timers.election = None;
        self.timers.prepare = None;
        self.fill_pipeline();
        self.broadcast_commit();
        self.timers.heartbeat = Some(self.now + self.opts.heartbeat_interval);
    }

    /// Proposes what the pipeline has room for, in one batch: first the values to
    /// re-propose (a `Noop` where nothing was learned), then queued client operations, each
    /// at the next slot while the leader may propose there. A jury change waits at the head
    /// of the queue until the previous one is in force. Where phase 1 does not yet cover the
    /// next slot's configuration, it asks that configuration for promises.
    pub(super) fn fill_pipeline(&mut self) {
        let mut commands = Vec::new();
        loop {
            let Some(lead) = self.lead.as_ref() else {
                return;
            };
            let slot = lead.next_slot + commands.len() as u64;
            if !self.may_propose_at(slot) {
                if commands.is_empty() {
                    self.extend_phase1(slot);
                }
                break;
            }
            let lead = self.lead.as_mut().expect("checked");
            if slot < lead.phase1.end {
                let cmd = lead
                    .phase1
                    .learned
                    .remove(&slot)
                    .map_or(Command::Noop, |(_, c)| c);
                commands.push(cmd);
                continue;
            }
            let Some((_, _, txn)) = lead.queue.front() else {
                break;
            };
            if txn.is_reconfig() && self.change_before(slot, &commands) {
                break;
            }
            let lead = self.lead.as_mut().expect("checked");
            let (client, op, txn) = lead.queue.pop_front().expect("checked");
            // Proposed already (re-proposed from what the election learned, or in this
            // batch), or applied since it was queued: it is answered when its slot applies.
            let same = |c: &Command| matches!(c, Command::Op { client: c2, op: o2, .. } if (*c2, *o2) == (client, op));
            let known = lead.pending.contains(&(client, op))
                || commands.iter().any(same)
                || lead.phase1.learned.values().any(|(_, c)| same(c))
                || self.sm.seen(client, op);
            if !known {
                commands.push(Command::Op { client, op, txn });
            }
        }
        self.propose(commands);
    }

    /// Whether a jury change must wait before `slot`: some earlier slot is not committed
    /// yet, or a change is at a slot within α below `slot`, in the log or among `batch` (the
    /// commands about to be proposed from the leader's next slot). Checking the leader's own
    /// log is not enough: re-proposals learned from different earlier leaders could bring
    /// two changes into one window (`tla/` mutant `change-rule-own-log`), so a change goes
    /// only at the commit index.
    fn change_before(&self, slot: Slot, batch: &[Command]) -> bool {
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::ConcurrentChanges) {
            return false;
        }
        if slot != self.commit {
            return true;
        }
        let is_change = |c: &Command| matches!(c, Command::Op { txn, .. } if txn.is_reconfig());
        let low = slot.saturating_sub(self.opts.alpha.saturating_sub(1));
        // Slots folded into the snapshot are looked up in the state machine.
        self.sm.last_change().is_some_and(|s| s >= low)
            || self.log.range(low..slot).any(|(_, (_, c))| is_change(c))
            || batch.iter().any(is_change)
    }

    /// Appends `commands` at the next slots at the leader's ballot, persists them, and sends
    /// them to every peer in batches; the leader's own vote counts once they are durable.
    pub(super) fn propose(&mut self, commands: Vec<Command>) {
        if commands.is_empty() {
            return;
        }
        let lead = self.lead.as_mut().expect("only a leader proposes");
        let ballot = lead.ballot;
        let mut proposals = Vec::with_capacity(commands.len());
        for command in commands {
            let slot = lead.next_slot;
            lead.next_slot += 1;
            if let Command::Op { client, op, .. } = &command {
                lead.pending.insert((*client, *op));
            }
            proposals.push(Proposal { slot, command });
        }
        for p in &proposals {
            self.log.insert(p.slot, (ballot, p.command.clone()));
            self.persist(DurableWrite::Accepted {
                entry: Entry {
                    slot: p.slot,
                    ballot,
                    command: p.command.clone(),
                },
            });
        }
        let slots = proposals.iter().map(|p| p.slot).collect();
        self.defer_vote(SelfVote::Accept(ballot, slots));
        let peers: Vec<NodeId> = self.lead_peers();
        for chunk in proposals.chunks(self.opts.max_batch.max(1)) {
            for peer in &peers {
                let msg = Msg::Accept {
                    ballot,
                    proposals: chunk.to_vec(),
                };
                self.send(*peer, msg);
            }
        }
    }

    fn lead_peers(&self) -> Vec<NodeId> {
        self.lead
            .as_ref()
            .map(|l| l.peers.keys().copied().collect())
            .unwrap_or_default()
    }

    /// A `Nack`: a candidate or leader of `ballot` steps down and remembers the round.
    pub(super) fn on_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.max_round = self.max_round.max(promised.round);
        if self.role != Role::Follower && self.ballot == ballot {
            self.step_down(Some(promised.node));
        }
    }

    /// Becomes a follower; queued client requests (never proposed) are redirected to
    /// `leader`, the node of the higher ballot that deposed this one.
    pub(super) fn step_down(&mut self, leader: Option<NodeId>) {
        self.role = Role::Follower;
        self.candidate = None;
        self.timers.heartbeat = None;
        self.timers.prepare = None;
        if let Some(lead) = self.lead.take() {
            let leader = leader.filter(|n| *n != self.id);
            for (client, op, _) in lead.queue {
                self.reply(client, Msg::Redirect { op, leader });
            }
        }
        self.arm_election();
    }

    /// Phase 2b at the leader: record the votes, then advance the commit index.
    pub(super) fn on_accepted(
        &mut self,
        (from, inc): (NodeId, u64),
        ballot: Ballot,
        slots: &[Slot],
        commit: Slot,
    ) {
        let own = self.commit;
        let Some(lead) = self.lead.as_mut().filter(|l| l.ballot == ballot) else {
            return;
        };
        let Some(peer) = lead.peers.get_mut(&from) else {
            return;
        };
        // The peer restarted: what it acknowledged before may be lost (a torn or repaired
        // log), so its acknowledgements start afresh and the heartbeat re-ships.
        if peer.inc.is_some_and(|known| inc > known) {
            peer.acked.clear();
        }
        peer.inc = Some(peer.inc.map_or(inc, |known| known.max(inc)));
        // The latest report wins: a restarted peer's commit index goes back to 0. A stale
        // (reordered) report only costs a re-shipment, and the next `Commit` corrects it.
        // Acknowledgements count from the lower of the two commit indexes (see
        // `on_heartbeat`).
        peer.commit = commit;
        let floor = peer.commit.min(own);
        peer.acked.extend(slots.iter().copied());
        peer.acked.retain(|s| *s >= floor);
        for s in slots {
            lead.votes.entry(*s).or_default().insert(from);
        }
        self.advance_commit();
    }

    /// Commits the longest prefix of slots accepted by a quorum (of the configuration in
    /// force at each slot) at the leader's ballot; applies, answers, tells the peers, and
    /// fills the freed pipeline from the queue.
    fn advance_commit(&mut self) {
        let before = self.commit;
        loop {
            let slot = self.commit;
            let quorum = self.quorum_at(slot);
            let lead = self.lead.as_ref().expect("only a leader commits");
            let at_ballot = self.log.get(&slot).is_some_and(|(b, _)| *b == lead.ballot);
            let jury = self.sm.jury().at(slot);
            let votes = lead.votes.get(&slot).map_or(0, |v| {
                #[cfg(feature = "bugs")]
                if self.bug(crate::bugs::Bug::StaleMemberVotes) {
                    return v.len(); // the bug: a non-member's vote counts
                }
                v.iter().filter(|n| jury.contains(**n)).count()
            });
            // The bug: one vote (the leader's own, or any peer's) is taken for a quorum.
            #[cfg(feature = "bugs")]
            let quorum = if self.bug(crate::bugs::Bug::CommitOnMinority) {
                1
            } else {
                quorum
            };
            if slot >= lead.next_slot || !at_ballot || votes < quorum {
                break;
            }
            self.commit += 1;
        }
        if self.commit == before {
            return;
        }
        let commit = self.commit;
        if let Some(lead) = self.lead.as_mut() {
            lead.votes.retain(|s, _| *s >= commit);
        }
        self.apply_committed();
        self.refresh_peers();
        self.broadcast_commit();
        self.leave_if_removed();
        self.fill_pipeline();
    }

    fn broadcast_commit(&mut self) {
        let Some(ballot) = self.lead.as_ref().map(|l| l.ballot) else {
            return;
        };
        let up_to = self.commit;
        for peer in self.lead_peers() {
            self.send(peer, Msg::Commit { ballot, up_to });
        }
    }

    /// `Timeout(heartbeat)`: ship each peer the lowest slots it has not acknowledged at this
    /// ballot (unacknowledged `Accept`s, or a lagging node's missing log segment), at most
    /// `max_batch` per peer, then re-send `Commit` (after the segment, so that a FIFO link
    /// lets the lagging node commit it at once).
    pub(super) fn on_heartbeat(&mut self) {
        if self.lead.is_none() {
            self.timers.heartbeat = None;
            return;
        }
        let lead = self.lead.as_ref().expect("checked");
        let ballot = lead.ballot;
        let own = self.commit;
        let mut shipments = Vec::new();
        let mut behind = Vec::new();
        for (peer, progress) in &lead.peers {
            // From the lower of the peer's and the leader's commit index: a peer ahead of a
            // new leader (it learned commits of the old one) must still vote at this ballot
            // for the slots the leader has not committed, or the leader never commits them
            // (found by bounded liveness in `physalia conform`, seed 169).
            let mut floor = progress.commit.min(own).min(lead.next_slot);
            // What the peer lacks is folded into this leader's snapshot: it is taught by
            // snapshot install once it has reported its commit index; until then it is
            // shipped the log from the snapshot on if there is any, which it answers with its
            // commit index (a new leader does not send its state to peers it has not heard
            // from unless nothing else draws an answer: a peer answers a leader's snapshot
            // with its commit index, installed or not).
            if floor < self.base {
                let any_above = self.log.range(self.base..lead.next_slot).next().is_some();
                if progress.inc.is_some() || !any_above {
                    behind.push(*peer);
                    continue;
                }
                floor = self.base;
            }
            let proposals: Vec<Proposal> = self
                .log
                .range(floor..lead.next_slot)
                .filter(|(s, _)| !progress.acked.contains(s))
                .take(self.opts.max_batch.max(1))
                .map(|(s, (_, c))| Proposal {
                    slot: *s,
                    command: c.clone(),
                })
                .collect();
            if !proposals.is_empty() {
                shipments.push((*peer, proposals));
            }
        }
        for (peer, proposals) in shipments {
            self.send(peer, Msg::Accept { ballot, proposals });
        }
        if !behind.is_empty() {
            let image = self.sm.image();
            for peer in behind {
                let image = image.clone();
                self.send(peer, Msg::Snapshot { ballot, image });
            }
        }
        self.broadcast_commit();
        if let Some(next) = self.lead.as_ref().map(|l| l.next_slot) {
            self.reask_phase1(next);
        }
        self.timers.heartbeat = Some(self.now + self.opts.heartbeat_interval);
    }
}

impl Cell {
    /// Whether this replica leads and has nothing in flight: no queued or uncommitted
    /// proposal, no write waiting for durability, and every peer has acknowledged every
    /// slot the leader's heartbeat would ship it. A shell query (it changes nothing): the
    /// production node stops the heartbeat timer of an idle leader and relies on its
    /// node-level heartbeat until the cell's next input.
    pub fn leader_idle(&self) -> bool {
        let Some(lead) = self.lead.as_ref() else {
            return false;
        };
        lead.queue.is_empty()
            && lead.pending.is_empty()
            && lead.next_slot == self.commit
            && self.held.is_empty()
            && self.issued == self.durable
            && lead.peers.values().all(|p| {
                p.commit.min(lead.next_slot) >= self.base
                    && self
                        .log
                        .range(p.commit.min(lead.next_slot)..lead.next_slot)
                        .all(|(s, _)| p.acked.contains(s))
            })
    }
}
