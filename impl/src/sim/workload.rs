//! The workload: clients with one operation in flight, retrying and following redirects.

use physalia_traces::{ClientId, Msg, NodeId, OpSeq};

use super::report::HistoryEntry;
use super::run::*;
use crate::core::Durable;

/// The workload: clients with one operation in flight, retrying and following redirects.
impl Sim {
    pub(super) fn client_next(&mut self, c: ClientId) {
        if self.clients[c.0 as usize].pending.is_some() {
            return;
        }
        if self.rng.chance(250_000) {
            self.local_read(c);
        }
        let client = &mut self.clients[c.0 as usize];
        let op = client.next_op;
        client.next_op += 1;
        let target = client.leader;
        let txn = random_txn(&mut self.rng, self.cfg.keys);
        self.report.history.push(HistoryEntry {
            client: c,
            op,
            txn: txn.clone(),
            invoked: self.now,
            returned: None,
        });
        let index = self.report.history.len() - 1;
        self.clients[c.0 as usize].pending = Some((op, txn, target, 0, index));
        self.send_request(c);
    }

    pub(super) fn send_request(&mut self, c: ClientId) {
        self.seq += 1;
        let gen = self.seq;
        let Some(p) = self.clients[c.0 as usize].pending.as_mut() else {
            return;
        };
        p.3 = gen;
        let (op, txn, target) = (p.0, p.1.clone(), p.2);
        self.at(
            self.now + self.cfg.client_retry,
            Event::ClientRetry(c, op, gen),
        );
        if self.before_gst() && self.rng.chance(self.cfg.faults.drop_ppm) {
            self.report.dropped += 1;
            return;
        }
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        self.at(self.now + delay, Event::Request(target, c, op, txn));
    }

    pub(super) fn client_retry(&mut self, c: ClientId, op: OpSeq, gen: u64) {
        let n = self.universe();
        let Some(p) = self.clients[c.0 as usize].pending.as_mut() else {
            return;
        };
        if (p.0, p.3) != (op, gen) {
            return;
        }
        p.2 = NodeId((p.2 .0 + 1) % n);
        self.send_request(c);
    }

    /// A node answers a client: checked at once if it acknowledges an applied operation,
    /// then carried over the network.
    pub(super) fn answer(&mut self, from: NodeId, client: ClientId, msg: Msg) {
        if let Msg::Reply { op, result } = &msg {
            if !result.never_applied() {
                let storages: Vec<(NodeId, &Durable)> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (NodeId(i as u32), &n.storage))
                    .collect();
                let amnesiac: Vec<NodeId> = (0..self.nodes.len() as u32)
                    .map(NodeId)
                    .filter(|n| self.nodes[n.0 as usize].wiped)
                    .collect();
                self.checker
                    .on_ack(client, *op, &storages, &amnesiac, self.now);
            }
        }
        if self.before_gst() && self.rng.chance(self.cfg.faults.drop_ppm) {
            self.report.dropped += 1;
            return;
        }
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        self.at(self.now + delay, Event::Answer(from, client, msg));
    }

    pub(super) fn on_answer(&mut self, from: NodeId, c: ClientId, msg: Msg) {
        if c == self.operator.client {
            return self.operator_answer(from, msg);
        }
        let n = self.universe();
        let client = &mut self.clients[c.0 as usize];
        let Some(p) = client.pending.as_mut() else {
            return;
        };
        match msg {
            Msg::Reply { op, result } if op == p.0 => {
                let index = p.4;
                client.pending = None;
                client.leader = from;
                if !result.never_applied() {
                    self.report.committed_ops += 1;
                }
                self.report.history[index].returned = Some((self.now, result));
                let think = self.rng.between(0, 20);
                self.at(self.now + think, Event::ClientNext(c));
            }
            Msg::Redirect { op, leader } if op == p.0 => {
                p.2 = leader.unwrap_or(NodeId((p.2 .0 + 1) % n));
                client.leader = p.2;
                self.send_request(c);
            }
            _ => {}
        }
    }
}
