//! Moves (`reconfigure` faults): an operator that replaces a member of the jury by a node
//! outside it, and removed nodes deleting their copy once the change is in force and a
//! successor quorum has the prefix.

use physalia_traces::{JuryChange, Msg, NodeId, OpSeq, Txn, TxnResult};

use super::run::{Event, Sim};
use crate::core::Durable;

/// How often the operator looks at the cell, and re-sends a change still in progress (ms).
const OPERATOR_EVERY: u64 = 100;

/// Probability, per request of the operator, that another controller sends a change of its
/// own at the same time.
const SECOND_CONTROLLER_PPM: u32 = 300_000;

impl Sim {
    /// Considers a move: before GST, with probability `reconfig_ppm` per look, replaces a
    /// random member of the decided jury by a random node outside it.
    pub(super) fn operator_next(&mut self) {
        if self.operator.pending.is_some() {
            return;
        }
        let looks = OPERATOR_EVERY.max(1);
        // `reconfig_ppm` is per simulator step; the operator looks every `looks` ms, about
        // as many steps at the default rates.
        let chance = self.cfg.faults.reconfig_ppm.saturating_mul(looks as u32);
        let (members, _) = self.checker.jury().latest();
        let members = members.members.clone();
        // A member whose disk was lost is moved out first (`cluster replace-node`), before
        // GST or after: until then it costs the jury a voter.
        let wiped = members
            .iter()
            .copied()
            .find(|n| self.nodes[n.0 as usize].wiped);
        if wiped.is_none() && (!self.before_gst() || !self.rng.chance(chance)) {
            if self.before_gst() {
                self.at(self.now + looks, Event::OperatorNext);
            }
            return;
        }
        let outside: Vec<NodeId> = (0..self.universe())
            .map(NodeId)
            .filter(|n| !members.contains(n) && !self.nodes[n.0 as usize].wiped)
            .collect();
        if members.is_empty() || outside.is_empty() {
            if self.before_gst() {
                self.at(self.now + looks, Event::OperatorNext);
            }
            return;
        }
        let from =
            wiped.unwrap_or_else(|| members[(self.rng.next_u64() % members.len() as u64) as usize]);
        let to = outside[(self.rng.next_u64() % outside.len() as u64) as usize];
        let op = self.operator.next_op;
        self.operator.next_op += 1;
        let target = self.operator.leader;
        self.operator.pending = Some((op, JuryChange::Replace { from, to }, target, 0));
        self.operator_send();
    }

    /// A request of another controller: the same kind of move, sent once, its answer
    /// ignored.
    fn second_controller(&mut self) {
        let (members, _) = self.checker.jury().latest();
        let members = members.members.clone();
        let outside: Vec<NodeId> = (0..self.universe())
            .map(NodeId)
            .filter(|n| !members.contains(n))
            .collect();
        if members.is_empty() || outside.is_empty() {
            return;
        }
        let from = members[(self.rng.next_u64() % members.len() as u64) as usize];
        let to = outside[(self.rng.next_u64() % outside.len() as u64) as usize];
        let op = self.operator.next_op;
        self.operator.next_op += 1;
        let txn = Txn::Reconfig {
            change: JuryChange::Replace { from, to },
        };
        let (target, client) = (self.operator.leader, self.operator.client);
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        self.at(self.now + delay, Event::Request(target, client, op, txn));
    }

    /// Sends (or re-sends) the pending change to the node the operator believes leads; now
    /// and then another controller acts on the same cell at the same moment (its request
    /// must be refused while a change is in flight: one change at a time).
    fn operator_send(&mut self) {
        if self.before_gst() && self.rng.chance(SECOND_CONTROLLER_PPM) {
            self.second_controller();
        }
        self.seq += 1;
        let gen = self.seq;
        let Some(p) = self.operator.pending.as_mut() else {
            return;
        };
        p.3 = gen;
        let (op, change, target) = (p.0, p.1, p.2);
        self.at(
            self.now + OPERATOR_EVERY * 3,
            Event::OperatorRetry(op, gen, true),
        );
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        let txn = Txn::Reconfig { change };
        let client = self.operator.client;
        self.at(self.now + delay, Event::Request(target, client, op, txn));
    }

    /// No answer in time: ask the next node (`next`), or the same one again.
    pub(super) fn operator_retry(&mut self, op: OpSeq, gen: u64, next: bool) {
        let universe = self.universe();
        let Some(p) = self.operator.pending.as_mut() else {
            return;
        };
        if (p.0, p.3) != (op, gen) {
            return;
        }
        if next {
            p.2 = NodeId((p.2 .0 + 1) % universe);
        }
        self.operator_send();
    }

    /// A node answers the operator: a rejection (the node is being taught, or a change is
    /// in flight) is retried a little later; a result ends the move.
    pub(super) fn operator_answer(&mut self, from: NodeId, msg: Msg) {
        let universe = self.universe();
        let Some(p) = self.operator.pending.as_mut() else {
            return;
        };
        match msg {
            Msg::Reply { op, result } if op == p.0 => match result {
                TxnResult::Reconfig { ok, .. } => {
                    self.operator.pending = None;
                    self.operator.leader = from;
                    if ok {
                        self.report.moves += 1;
                    }
                    // Half the time the next move is asked for at once: it must wait until
                    // this one is in force.
                    let next = if self.rng.next_u64() & 1 == 0 {
                        0
                    } else {
                        OPERATOR_EVERY
                    };
                    self.at(self.now + next, Event::OperatorNext);
                }
                _ => {
                    // Rejected or overloaded: never applied; a fresh request later.
                    self.operator.leader = from;
                    let (op2, change) = (self.operator.next_op, p.1);
                    self.operator.next_op += 1;
                    let target = from;
                    self.operator.pending = Some((op2, change, target, 0));
                    let later = self.now + OPERATOR_EVERY;
                    self.seq += 1;
                    let gen = self.seq;
                    if let Some(p) = self.operator.pending.as_mut() {
                        p.3 = gen;
                    }
                    self.at(later, Event::OperatorRetry(op2, gen, false));
                }
            },
            Msg::Redirect { op, leader } if op == p.0 => {
                p.2 = leader.unwrap_or(NodeId((p.2 .0 + 1) % universe));
                self.operator.leader = p.2;
                self.operator_send();
            }
            _ => {}
        }
    }

    /// A node whose removal is in force deletes its copy once a majority of the jury in
    /// force at its commit index has committed past the change (the successor quorum holds
    /// the prefix); it hosts a fresh learner's copy from then on.
    pub(super) fn retire(&mut self, id: NodeId) {
        let Some(cell) = self.nodes[id.0 as usize].cell.as_ref() else {
            // Down: look again once it is back.
            self.at(self.now + 500, Event::Retire(id));
            return;
        };
        let Some(from) = cell.removed_from() else {
            self.nodes[id.0 as usize].retiring = false; // added back before it retired
            return;
        };
        let jury = cell.state_machine().jury().at(cell.commit()).clone();
        let past = jury
            .members
            .iter()
            .filter(|n| {
                self.nodes[n.0 as usize]
                    .cell
                    .as_ref()
                    .is_some_and(|c| c.commit() > from)
            })
            .count();
        if past < jury.quorum() {
            self.at(self.now + 200, Event::Retire(id));
            return;
        }
        self.delete_copy(id);
    }

    /// Deletes node `id`'s copy of the cell and starts a fresh learner's copy, whose floor
    /// is the slot the deleted copy left the jury at (the node keeps that, as a real node
    /// keeps it beside its forwarding pointer).
    fn delete_copy(&mut self, id: NodeId) {
        let node = &mut self.nodes[id.0 as usize];
        let mut floor = node.storage.floor;
        if let Some(cell) = node.cell.take() {
            floor = floor.max(cell.removed_from().unwrap_or(0));
            node.keep_clock(&cell);
        }
        node.storage = Durable {
            learner: true,
            floor,
            ..Durable::default()
        };
        node.forget_pending();
        node.retiring = false;
        self.checker.on_copy_deleted(id);
        self.report.copies_deleted += 1;
        self.start_node(id);
    }
}
