//! The protocol handlers, grouped by phase: election (phase 1), replication (phase 2),
//! learning and applying, and the client side. Each handler changes one node (or client) and
//! puts the messages it sends on the network, exactly as `docs/protocol.md` describes.

use crate::config::{CellConfig, Mutant};
use crate::kv::{self, TxnResult};
use crate::state::{CellState, Role};
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

    fn send_node(&mut self, src: NodeId, dst: NodeId, msg: Msg) {
        self.send(Endpoint::Node(src), Endpoint::Node(dst), msg);
    }

    fn broadcast(&mut self, src: NodeId, msg: Msg) {
        for dst in 0..self.cfg.nodes {
            if dst != src {
                self.send_node(src, dst, msg);
            }
        }
    }

    fn mutant(&self, m: Mutant) -> bool {
        self.cfg.has(m)
    }

    /// Records that `node` accepted `entry` at `slot` (ghost: used to define "chosen").
    fn vote(&mut self, node: NodeId, slot: Slot, entry: Entry) {
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
        let learned = suffix(&node.log, commit);
        if self.mutant(Mutant::SkipPrepare) {
            self.become_leader(n, learned);
            return;
        }
        self.s.nodes[n as usize].role = Role::Candidate {
            promises: NodeSet::single(n),
            learned,
        };
        self.broadcast(
            n,
            Msg::Prepare {
                ballot,
                from: commit,
            },
        );
        self.maybe_win(n);
    }

    /// `Prepare`: promise if the ballot is at least the promised one, else `Nack`.
    pub fn on_prepare(&mut self, n: NodeId, src: NodeId, ballot: Ballot, from: Slot) {
        let omit = self.mutant(Mutant::PromiseOmitsAccepted);
        let node = &mut self.s.nodes[n as usize];
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
        let accepted = suffix(&node.log, start);
        self.send_node(n, src, Msg::Promise { ballot, accepted });
    }

    /// `Promise`: a candidate counts it and keeps the highest-ballot entry per slot.
    pub fn on_promise(&mut self, n: NodeId, src: NodeId, ballot: Ballot, accepted: &Log) {
        let node = &mut self.s.nodes[n as usize];
        if node.ballot != ballot {
            return;
        }
        let Role::Candidate { promises, learned } = &mut node.role else {
            return;
        };
        if promises.contains(src) {
            return;
        }
        promises.insert(src);
        for (mine, theirs) in learned.iter_mut().zip(accepted) {
            if let Some(e) = theirs {
                if mine.is_none_or(|old| old.ballot < e.ballot) {
                    *mine = Some(*e);
                }
            }
        }
        self.maybe_win(n);
    }

    fn maybe_win(&mut self, n: NodeId) {
        let node = &self.s.nodes[n as usize];
        if let Role::Candidate { promises, learned } = &node.role {
            if promises.len() >= self.cfg.quorum() {
                let learned = *learned;
                self.become_leader(n, learned);
            }
        }
    }

    /// A quorum promised: re-propose the highest-ballot value of every slot learned in phase 1,
    /// fill holes with `Noop`, and lead.
    fn become_leader(&mut self, n: NodeId, learned: Log) {
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
        self.s.nodes[n as usize].role = Role::Leader { next, votes };
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

    /// `Accept`: accept if the ballot is at least the promised one, else `Nack`.
    pub fn on_accept(
        &mut self,
        n: NodeId,
        src: NodeId,
        ballot: Ballot,
        slot: Slot,
        command: Command,
    ) {
        let lower_ok = self.mutant(Mutant::AcceptLowerBallot);
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

    /// `Accepted`: the leader counts the vote and commits what a quorum accepted.
    pub fn on_accepted(&mut self, n: NodeId, src: NodeId, ballot: Ballot, slot: Slot) {
        let out_of_order = self.mutant(Mutant::ApplyOutOfOrder);
        let quorum = self.cfg.quorum();
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

    /// Advances the leader's commit index over the prefix of slots a quorum accepted, applies
    /// and answers them in slot order, and tells the other nodes.
    fn advance_commit(&mut self, n: NodeId) {
        let threshold = if self.mutant(Mutant::CommitOnMinority) {
            (self.cfg.quorum() - 1).max(1)
        } else {
            self.cfg.quorum()
        };
        let node = &mut self.s.nodes[n as usize];
        let Role::Leader { next, votes } = &node.role else {
            return;
        };
        let old = node.commit;
        let mut commit = old;
        while commit < *next && votes[commit as usize].len() >= threshold {
            commit += 1;
        }
        if commit == old {
            return;
        }
        node.commit = commit;
        let ballot = node.ballot;
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
    }

    // ----- Learning and applying ---------------------------------------------------------

    /// `Commit`: learn every slot below `up_to` whose entry carries the leader's ballot.
    pub fn on_commit(&mut self, n: NodeId, ballot: Ballot, up_to: Slot) {
        let node = &mut self.s.nodes[n as usize];
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
        if next >= self.cfg.max_slots || next >= node.commit + self.cfg.window {
            return; // the pipeline is full: shed the request, the client retries
        }
        let ballot = node.ballot;
        let entry = Entry { ballot, command };
        let node = &mut self.s.nodes[n as usize];
        node.log[next as usize] = Some(entry);
        if let Role::Leader { next, votes } = &mut node.role {
            votes[*next as usize] = NodeSet::single(n);
            *next += 1;
        }
        self.vote(n, next, entry);
        self.broadcast(
            n,
            Msg::Accept {
                ballot,
                slot: next,
                command,
            },
        );
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
        client.target = (client.target + 1) % self.cfg.nodes;
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
