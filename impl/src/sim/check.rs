//! Online invariant checks, run by the simulator after every step. Each is named after the
//! property of `docs/protocol.md` ("Properties") it checks.

use std::collections::BTreeMap;
use std::fmt;

use physalia_traces::{Ballot, ClientId, Command, NodeId, OpSeq, Slot};

use crate::core::{Cell, Durable};

/// A violated property, with what is needed to find it in the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Agreement / CommittedPrefix: two nodes committed different commands at one slot.
    Agreement {
        /// The slot.
        slot: Slot,
        /// The node that committed a different command.
        node: NodeId,
        /// The logical time.
        at: u64,
    },
    /// Durability: an operation was acknowledged while its slot was durable on fewer than a
    /// quorum of nodes (or was not chosen at all).
    AckNotDurable {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// The logical time.
        at: u64,
    },
    /// PromiseMonotonic: a node's durable promise went down.
    PromiseRegressed {
        /// The node.
        node: NodeId,
        /// The promise before.
        was: Ballot,
        /// The promise after.
        now: Ballot,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement { slot, node, at } => {
                write!(
                    f,
                    "Agreement: {node} committed another command at slot {slot} (t={at})"
                )
            }
            Violation::AckNotDurable { client, op, at } => {
                write!(
                    f,
                    "Durability: {client}#{op} acknowledged but not durable on a quorum (t={at})"
                )
            }
            Violation::PromiseRegressed { node, was, now } => {
                write!(
                    f,
                    "PromiseMonotonic: {node}'s durable promise went from {was} to {now}"
                )
            }
        }
    }
}

/// The checker's memory: what was decided, and each node's last durable promise.
#[derive(Debug, Default)]
pub struct Checker {
    decided: BTreeMap<Slot, Command>,
    op_slot: BTreeMap<(ClientId, OpSeq), Slot>,
    promises: BTreeMap<NodeId, Ballot>,
    /// Violations found so far, in order.
    pub violations: Vec<Violation>,
}

impl Checker {
    /// Slots decided so far (committed by some node).
    pub fn decided(&self) -> usize {
        self.decided.len()
    }

    /// After a step of `cell` whose commit index was `before`: every newly committed slot
    /// must hold the command decided there (the first node to commit it decides it).
    pub fn after_step(&mut self, cell: &Cell, before: Slot, at: u64) {
        for slot in before..cell.commit() {
            let Some((_, cmd)) = cell.log().get(&slot) else {
                continue;
            };
            match self.decided.get(&slot) {
                Some(d) if d != cmd => self.violations.push(Violation::Agreement {
                    slot,
                    node: cell.id(),
                    at,
                }),
                Some(_) => {}
                None => {
                    if let Command::Op { client, seq, .. } = cmd {
                        self.op_slot.entry((*client, *seq)).or_insert(slot);
                    }
                    self.decided.insert(slot, cmd.clone());
                }
            }
        }
    }

    /// When an operation is acknowledged: its slot must be decided and durable (in synced
    /// storage) on a quorum of `storages`.
    pub fn on_ack(
        &mut self,
        client: ClientId,
        op: OpSeq,
        storages: &[&Durable],
        quorum: usize,
        at: u64,
    ) {
        let durable = self.op_slot.get(&(client, op)).is_some_and(|slot| {
            let cmd = &self.decided[slot];
            let holders = storages
                .iter()
                .filter(|s| s.log.get(slot).is_some_and(|(_, c)| c == cmd))
                .count();
            holders >= quorum
        });
        if !durable {
            self.violations
                .push(Violation::AckNotDurable { client, op, at });
        }
    }

    /// When a node's storage changed: its promise must not go down.
    pub fn on_storage(&mut self, node: NodeId, storage: &Durable) {
        let was = self.promises.entry(node).or_default();
        if storage.promised < *was {
            self.violations.push(Violation::PromiseRegressed {
                node,
                was: *was,
                now: storage.promised,
            });
        }
        *was = (*was).max(storage.promised);
    }
}
