//! The protocol handlers, grouped by phase: election (phase 1), replication (phase 2),
//! learning and applying, and the client side. Each handler changes one node (or client) and
//! puts the messages it sends on the network, exactly as `docs/protocol.md` describes.

use crate::config::{CellConfig, Mutant};
use crate::jury::{self, Juries};
use crate::kv::{self, TxnResult};
use crate::proposer::{covered, promise_is_new};
use crate::state::{cover_from, CellState, Cover, Role};
use crate::types::{
    Ballot, ClientId, Command, Endpoint, Entry, Envelope, Log, Msg, NodeId, NodeSet, OpSeq, Slot,
    MAX_SLOTS,
};

/// One step of the model in progress: the configuration and the state being changed.
pub(crate) struct Step<'a> {
    pub cfg: &'a CellConfig,
    pub s: &'a mut CellState,
}

impl Step<'_> {
    fn send(&mut self, src: Endpoint, dst: Endpoint, msg: Msg) {
        self.s.network.send(Envelope { src, dst, msg });
    }

    pub(crate) fn send_node(&mut self, src: NodeId, dst: NodeId, msg: Msg) {
        self.send(Endpoint::Node(src), Endpoint::Node(dst), msg);
    }

    /// Sends to every other node of the run: the jury and the spares (nodes without a copy,
    /// and learners, ignore what is not for them; a removed node learns its removal from
    /// the `Commit`s, and stops voting once it knows).
    pub(crate) fn broadcast(&mut self, src: NodeId, msg: Msg) {
        for dst in 0..self.cfg.total_nodes() {
            if dst != src {
                self.send_node(src, dst, msg);
            }
        }
    }

    pub(crate) fn mutant(&self, m: Mutant) -> bool {
        self.cfg.has(m)
    }

    /// Whether the jury can change in this run (else every jury is the initial one, and the
    /// model takes the shortcuts it always has).
    pub(crate) fn reconfig(&self) -> bool {
        self.cfg.reconfigs > 0
    }

    /// The juries node `n` knows, from its committed prefix.
    pub(crate) fn juries(&self, n: NodeId) -> Juries {
        jury::of_node(self.cfg, &self.s.nodes[n as usize])
    }

    /// Records that `node` accepted `entry` at `slot` (ghost: used to define "chosen").
    pub(crate) fn vote(&mut self, node: NodeId, slot: Slot, entry: Entry) {
        let key = (slot, entry.ballot, entry.command);
        let votes = &mut self.s.ghost.votes;
        match votes.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => votes[i].1.insert(node),
            Err(i) => votes.insert(i, (key, NodeSet::single(node))),
        }
    }

    // ----- Phase 1: election -------------------------------------------------------------

    /// `Timeout(election)`: start an election with a ballot above every round this node knows.
    pub fn on_election_timeout(&mut self, n: NodeId) {
        let aba = self.mutant(Mutant::AbaRejoin);
        let node = &mut self.s.nodes[n as usize];
        let round = node.promised.round.max(node.ballot.round) + 1;
        let owner = if self.cfg.has(Mutant::BallotNotUnique) {
            0
        } else {
            n
        };
        let ballot = Ballot { round, node: owner };
        node.ballot = ballot;
        node.promised = node.promised.max(ballot);
        let commit = node.commit;
        // Its own promise is subject to its `since` like any other (a fresh copy never
        // counts for its past).
        let own_from = match node.since() {
            Some(since) if !aba => commit.max(since),
            _ => commit,
        };
        let learned = suffix(&node.log, own_from.max(node.snap));
        let mut promises = Cover::default();
        cover_from(&mut promises, n, own_from);
        if self.mutant(Mutant::SkipPrepare) {
            self.become_leader(n, learned, promises);
            return;
        }
        self.s.nodes[n as usize].role = Role::Candidate { promises, learned };
        for (from, members) in self.window_groups(n, commit) {
            for dst in members.iter().filter(|&d| d != n) {
                self.send_node(n, dst, Msg::Prepare { ballot, from });
            }
        }
        self.maybe_win(n);
    }

    /// `Prepare`: promise if the ballot is at least the promised one, else `Nack`.
    /// Only a voting copy answers (learners never promise; nodes without a copy forward
    /// clients only), and only for slots at or after its `since`.
    pub fn on_prepare(&mut self, n: NodeId, src: NodeId, ballot: Ballot, from: Slot) {
        let omit = self.mutant(Mutant::PromiseOmitsAccepted);
        let aba = self.mutant(Mutant::AbaRejoin);
        let node = &mut self.s.nodes[n as usize];
        match node.since() {
            Some(since) if from >= since || aba => {}
            _ => return,
        }
        if ballot < node.promised {
            let promised = node.promised;
            self.send_node(n, src, Msg::Nack { ballot, promised });
            return;
        }
        node.promised = ballot;
        if node.ballot < ballot {
            node.role = Role::Follower;
        }
        let start = if omit { from.max(node.commit) } else { from };
        // Slots below `snap` came in a snapshot: there is no accepted entry to report.
        let accepted = suffix(&node.log, start.max(node.snap));
        self.send_node(
            n,
            src,
            Msg::Promise {
                ballot,
                from,
                accepted,
            },
        );
    }

    /// `Promise`: a candidate counts it for the slots from its `from` on and keeps the
    /// highest-ballot entry per slot. With reconfiguration a leader of that ballot counts it
    /// too (phase 1 across a change): its entries from the leader's next slot on join the
    /// values to re-propose.
    pub fn on_promise(
        &mut self,
        n: NodeId,
        src: NodeId,
        ballot: Ballot,
        from: Slot,
        accepted: &Log,
    ) {
        let reconfig = self.reconfig();
        let juries = self.juries(n);
        let node = &mut self.s.nodes[n as usize];
        if node.ballot != ballot {
            return;
        }
        let (promises, learned, next) = match &mut node.role {
            Role::Candidate { promises, learned } => (promises, learned, 0),
            // A leader needs a promise only for a jury no majority of which has promised from
            // its first slot: an answer to its `Prepare` of phase 1 across a change.
            Role::Leader {
                promises,
                learned,
                next,
                ..
            } if reconfig && !covered(&juries, promises, n, from) => (promises, learned, *next),
            _ => return,
        };
        if !promise_is_new(&juries, promises, n, src, from) {
            return;
        }
        cover_from(promises, src, from);
        for (slot, (mine, theirs)) in learned.iter_mut().zip(accepted).enumerate() {
            if let Some(e) = theirs {
                if slot as Slot >= next && mine.is_none_or(|old| old.ballot < e.ballot) {
                    *mine = Some(*e);
                }
            }
        }
        if self.s.nodes[n as usize].is_leader() {
            self.fill_pipeline(n);
            self.advance_commit(n);
        } else {
            self.maybe_win(n);
        }
    }

    fn maybe_win(&mut self, n: NodeId) {
        let node = &self.s.nodes[n as usize];
        if let Role::Candidate { promises, learned } = &node.role {
            let (promises, learned) = (*promises, *learned);
            if self.window_covered(n, &promises) {
                self.become_leader(n, learned, promises);
            }
        }
    }

    /// Phase 1 covers the window: lead. Without reconfiguration, re-propose the
    /// highest-ballot value of every slot learned in phase 1 at once and fill holes with
    /// `Noop`; with it, do so slot by slot inside the window, where phase 1 covers the
    /// slot's jury ([`Step::fill_pipeline`]).
    fn become_leader(&mut self, n: NodeId, learned: Log, promises: Cover) {
        if self.reconfig() {
            let commit = self.s.nodes[n as usize].commit;
            self.s.nodes[n as usize].role = Role::Leader {
                next: commit,
                votes: [NodeSet::default(); MAX_SLOTS],
                promises,
                learned: suffix(&learned, commit),
            };
            self.fill_pipeline(n);
            self.advance_commit(n);
            return;
        }
        let ignore = self.mutant(Mutant::IgnorePromisedValues);
        let node = &self.s.nodes[n as usize];
        let (ballot, commit) = (node.ballot, node.commit);
        let next = learned
            .iter()
            .rposition(Option::is_some)
            .map_or(commit, |m| m as Slot + 1)
            .max(commit);
        let mut votes = [NodeSet::default(); MAX_SLOTS];
        for slot in commit..next {
            let old = learned[slot as usize].as_ref();
            let command = match old {
                Some(e) if !ignore => e.command,
                _ => Command::Noop,
            };
            if let Some(e) = old {
                if e.ballot.node != n && command != Command::Noop && !ignore {
                    self.s.ghost.reproposed = true;
                }
            }
            let entry = Entry { ballot, command };
            self.s.nodes[n as usize].log[slot as usize] = Some(entry);
            self.vote(n, slot, entry);
            votes[slot as usize] = NodeSet::single(n);
            self.broadcast(
                n,
                Msg::Accept {
                    ballot,
                    slot,
                    command,
                },
            );
        }
        self.s.nodes[n as usize].role = Role::Leader {
            next,
            votes,
            promises: Cover::default(),
            learned: [None; MAX_SLOTS],
        };
        self.advance_commit(n);
    }

    /// `Nack`: a candidate or leader whose ballot was refused steps down.
    pub fn on_nack(&mut self, n: NodeId, ballot: Ballot) {
        let node = &mut self.s.nodes[n as usize];
        if node.ballot == ballot && !matches!(node.role, Role::Follower) {
            node.role = Role::Follower;
        }
    }

    // ----- Phase 2: replication ----------------------------------------------------------

    /// `Accept`: accept if the ballot is at least the promised one, else `Nack`. Only a
    /// voting copy votes, for slots at or after its `since`, and not for a slot whose jury
    /// it knows does not hold it (a removed node stops voting).
    pub fn on_accept(
        &mut self,
        n: NodeId,
        src: NodeId,
        ballot: Ballot,
        slot: Slot,
        command: Command,
    ) {
        let lower_ok = self.mutant(Mutant::AcceptLowerBallot);
        let aba = self.mutant(Mutant::AbaRejoin);
        match self.s.nodes[n as usize].since() {
            Some(since) if slot >= since || aba => {}
            _ => return,
        }
        if self.reconfig() && self.juries(n).at(slot).is_some_and(|j| !j.contains(n)) {
            return;
        }
        let node = &mut self.s.nodes[n as usize];
        if ballot < node.promised && !lower_ok {
            let promised = node.promised;
            self.send_node(n, src, Msg::Nack { ballot, promised });
            return;
        }
        node.promised = node.promised.max(ballot);
        if node.ballot < ballot {
            node.role = Role::Follower;
        }
        let entry = Entry { ballot, command };
        node.log[slot as usize] = Some(entry);
        self.vote(n, slot, entry);
        self.send_node(n, src, Msg::Accepted { ballot, slot });
    }

    /// `Accepted`: the leader counts the vote, if the voter is in the slot's jury, and
    /// commits what a majority of each slot's jury accepted.
    pub fn on_accepted(&mut self, n: NodeId, src: NodeId, ballot: Ballot, slot: Slot) {
        let out_of_order = self.mutant(Mutant::ApplyOutOfOrder);
        let jury = self.slot_jury(n, slot);
        if self.reconfig() && !jury.contains(src) && !self.mutant(Mutant::StaleMemberVotes) {
            return; // a removed node's (or a not yet joined one's) vote never counts here
        }
        let quorum = jury.len() / 2 + 1;
        let node = &mut self.s.nodes[n as usize];
        if node.ballot != ballot {
            return;
        }
        if slot < node.commit {
            return; // already committed: one more vote changes nothing
        }
        let Role::Leader { votes, .. } = &mut node.role else {
            return;
        };
        let who = &mut votes[slot as usize];
        if who.is_empty() {
            return; // not proposed by this leader (committed before it was elected)
        }
        who.insert(src);
        if out_of_order && who.len() >= quorum {
            self.apply_slot(n, slot, true);
        }
        self.advance_commit(n);
    }

    /// Advances the leader's commit index over the prefix of slots a majority of each
    /// slot's jury accepted, applies and answers them in slot order, and tells the other
    /// nodes. With reconfiguration it then steps down if its commit index reached a slot
    /// whose jury does not hold it, asks a jury coming into force in its window for promises
    /// (phase 1 across a change), and re-proposes what the window now admits.
    pub(crate) fn advance_commit(&mut self, n: NodeId) {
        loop {
            let old = self.s.nodes[n as usize].commit;
            let mut commit = old;
            loop {
                let Role::Leader { next, votes, .. } = &self.s.nodes[n as usize].role else {
                    return;
                };
                if commit >= *next {
                    break;
                }
                let who = votes[commit as usize];
                let quorum = self.slot_jury(n, commit).len() / 2 + 1;
                let threshold = if self.mutant(Mutant::CommitOnMinority) {
                    (quorum - 1).max(1)
                } else {
                    quorum
                };
                if who.len() < threshold {
                    break;
                }
                commit += 1;
                // Under `config-effective-early` the next slot's jury may depend on this one.
                self.s.nodes[n as usize].commit = commit;
            }
            if commit == old {
                return;
            }
            let ballot = self.s.nodes[n as usize].ballot;
            for slot in old..commit {
                self.apply_slot(n, slot, true);
            }
            if self.s.crashes > 0 {
                self.s.ghost.committed_after_restart = true;
            }
            self.broadcast(
                n,
                Msg::Commit {
                    ballot,
                    up_to: commit,
                },
            );
            if !self.reconfig() {
                return;
            }
            self.after_commit(n, old);
        }
    }

    // ----- Learning and applying ---------------------------------------------------------

    /// `Commit`: learn every slot below `up_to` whose entry carries the leader's ballot
    /// (at a node holding a copy).
    pub fn on_commit(&mut self, n: NodeId, ballot: Ballot, up_to: Slot) {
        let node = &mut self.s.nodes[n as usize];
        if !node.status.has_copy() {
            return;
        }
        let old = node.commit;
        while node.commit < up_to
            && node.log[node.commit as usize].is_some_and(|e| e.ballot == ballot)
        {
            node.commit += 1;
        }
        let new = node.commit;
        for slot in old..new {
            self.apply_slot(n, slot, false);
        }
        if new > old && self.reconfig() {
            self.promote(n);
        }
    }

    /// Applies `slot` to node `n`'s store unless already applied; an operation already applied
    /// from an earlier slot is skipped (exactly once). The leader answers the client.
    fn apply_slot(&mut self, n: NodeId, slot: Slot, answer: bool) {
        let node = &mut self.s.nodes[n as usize];
        if node.applied & (1 << slot) != 0 {
            return;
        }
        node.applied |= 1 << slot;
        let Some(Entry {
            command: Command::Op { client, op },
            ..
        }) = node.log[slot as usize]
        else {
            return;
        };
        let duplicate = (0..slot).any(|s| {
            node.applied & (1 << s) != 0
                && node.log[s as usize].map(|e| e.command) == Some(Command::Op { client, op })
        });
        if duplicate {
            return;
        }
        let result = node.kv.apply(kv::workload(client, op));
        if answer {
            self.reply(n, client, op, result);
        }
    }

    fn reply(&mut self, n: NodeId, client: ClientId, op: OpSeq, result: TxnResult) {
        self.send(
            Endpoint::Node(n),
            Endpoint::Client(client),
            Msg::Reply { op, result },
        );
    }

    // ----- Clients -----------------------------------------------------------------------

    /// `Request` at a node: the leader proposes it (once); others redirect.
    pub fn on_request(&mut self, n: NodeId, client: ClientId, op: OpSeq) {
        let command = Command::Op { client, op };
        let txn = kv::workload(client, op);
        let node = &self.s.nodes[n as usize];
        let Role::Leader { next, .. } = node.role else {
            if self.mutant(Mutant::StaleRead) {
                if let Some(result) = node.kv.read_only_outcome(txn) {
                    self.reply(n, client, op, result);
                    return;
                }
            }
            let leader =
                (!node.promised.is_zero() && node.promised.node != n).then_some(node.promised.node);
            self.send(
                Endpoint::Node(n),
                Endpoint::Client(client),
                Msg::Redirect { op, leader },
            );
            return;
        };
        if let Some(slot) = node
            .log
            .iter()
            .position(|e| e.map(|e| e.command) == Some(command))
        {
            if (slot as Slot) < node.commit {
                let (_, result) = replay(&node.log[..=slot]);
                if let Some(result) = result {
                    self.reply(n, client, op, result);
                }
            }
            return;
        }
        if self.reproposals_pending(n) || !self.may_propose_at(n, next) {
            return; // the pipeline is full: shed the request, the client retries
        }
        self.propose(n, command);
        if self.mutant(Mutant::ReplyBeforeCommit) {
            let log = &self.s.nodes[n as usize].log[..=next as usize];
            if let (_, Some(result)) = replay(log) {
                self.reply(n, client, op, result);
            }
        }
        self.advance_commit(n);
    }

    /// A client sends its next operation to the node it believes leads.
    pub fn invoke(&mut self, c: ClientId) {
        let mut after = [0; crate::state::MAX_CLIENTS];
        for (a, cl) in after.iter_mut().zip(&self.s.clients) {
            *a = cl.next;
        }
        let client = &mut self.s.clients[c as usize];
        client.pending = true;
        let (op, target) = (client.next, client.target);
        self.s.history[c as usize].push(crate::state::OpRecord {
            after,
            result: None,
        });
        self.send(
            Endpoint::Client(c),
            Endpoint::Node(target),
            Msg::Request { client: c, op },
        );
    }

    /// `Timeout(retry)`: re-send the pending request to the next node.
    pub fn on_retry_timeout(&mut self, c: ClientId) {
        let client = &mut self.s.clients[c as usize];
        client.target = (client.target + 1) % self.cfg.total_nodes();
        let (op, target) = (client.next, client.target);
        self.send(
            Endpoint::Client(c),
            Endpoint::Node(target),
            Msg::Request { client: c, op },
        );
    }

    /// `Redirect` at a client: follow the hint.
    pub fn on_redirect(&mut self, c: ClientId, op: OpSeq, leader: Option<NodeId>) {
        let client = &mut self.s.clients[c as usize];
        let Some(leader) = leader else { return };
        if !client.pending || client.next != op || client.target == leader {
            return;
        }
        client.target = leader;
        self.send(
            Endpoint::Client(c),
            Endpoint::Node(leader),
            Msg::Request { client: c, op },
        );
    }

    /// `Reply` at a client: record the result and move on.
    pub fn on_reply(&mut self, c: ClientId, op: OpSeq, result: TxnResult) {
        let client = &mut self.s.clients[c as usize];
        if !client.pending || client.next != op {
            return;
        }
        client.pending = false;
        client.next += 1;
        self.s.history[c as usize][op as usize].result = Some(result);
    }
}

/// The entries of `log` at slots `>= from`; the others `None`.
fn suffix(log: &Log, from: Slot) -> Log {
    let mut out = *log;
    for e in out.iter_mut().take(from as usize) {
        *e = None;
    }
    out
}

/// Replays a log prefix in slot order, each operation once (an operation already applied
/// from an earlier slot is skipped). Returns the store, and the outcome of the last slot if
/// it applied an operation.
pub fn replay(log: &[Option<Entry>]) -> (kv::KvState, Option<TxnResult>) {
    let mut kv = kv::KvState::default();
    let mut seen: Vec<Command> = Vec::new();
    let mut last = None;
    for e in log {
        last = None;
        if let Some(Entry {
            command: c @ Command::Op { client, op },
            ..
        }) = e
        {
            if !seen.contains(c) {
                seen.push(*c);
                last = Some(kv.apply(kv::workload(*client, *op)));
            }
        }
    }
    (kv, last)
}
