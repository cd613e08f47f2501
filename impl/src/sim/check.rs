//! Online invariant checks, run by the simulator after every step. Each is named after the
//! property of `docs/protocol.md` ("Properties") it checks.

use std::collections::BTreeMap;
use std::fmt;

use physalia_traces::properties::{self, Property};
use physalia_traces::{Ballot, ClientId, Command, Config, Key, NodeId, OpSeq, Slot, Txn, Value};

use crate::core::{Cell, Durable};
use crate::kv::{Limits, StateMachine};

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
    Durability {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// The logical time.
        at: u64,
    },
    /// ConsistentPrefix: a local read returned a value that the decided log does not give
    /// at the applied index it claimed.
    ConsistentPrefix {
        /// The node that served it.
        node: NodeId,
        /// The key.
        key: Key,
        /// The applied index the node claimed.
        applied: Slot,
        /// The logical time.
        at: u64,
    },
    /// MonotonicReads: a client's session saw its applied index go down.
    MonotonicReads {
        /// The client.
        client: ClientId,
        /// The session floor.
        floor: Slot,
        /// The applied index returned.
        applied: Slot,
    },
    /// A node whose disk was lost sent a promise or a vote before it was a member again.
    VoteFromLostState {
        /// The node.
        node: NodeId,
        /// What it sent (`Promise`, or `Accepted` with the slots voted).
        what: String,
        /// The logical time.
        at: u64,
    },
    /// CommitNeverRegresses: a running node's commit index went down (a chosen prefix it knew
    /// was rolled back, e.g. by installing a stale snapshot).
    CommitRegressed {
        /// The node.
        node: NodeId,
        /// The commit index before the step.
        was: Slot,
        /// After it.
        now: Slot,
        /// The logical time.
        at: u64,
    },
    /// PromiseMonotonic: a node's durable promise went down.
    PromiseMonotonic {
        /// The node.
        node: NodeId,
        /// The promise before.
        was: Ballot,
        /// The promise after.
        now: Ballot,
    },
}

impl Violation {
    /// The property of the catalogue (`physalia_traces::properties`) this breaks.
    pub fn property(&self) -> &'static Property {
        match self {
            Violation::Agreement { .. } => &properties::AGREEMENT,
            Violation::CommitRegressed { .. } => &properties::COMMIT_NEVER_REGRESSES,
            Violation::Durability { .. } => &properties::DURABILITY,
            Violation::ConsistentPrefix { .. } => &properties::CONSISTENT_PREFIX,
            Violation::MonotonicReads { .. } => &properties::MONOTONIC_READS,
            Violation::PromiseMonotonic { .. } => &properties::PROMISE_MONOTONIC,
            Violation::VoteFromLostState { .. } => &properties::NO_VOTE_FROM_LOST_STATE,
        }
    }
}

impl fmt::Display for Violation {
    /// `property: what broke it`, the property named as in the catalogue.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.property())?;
        match self {
            Violation::Agreement { slot, node, at } => {
                write!(
                    f,
                    "{node} committed another command at slot {slot} (t={at})"
                )
            }
            Violation::Durability { client, op, at } => write!(
                f,
                "{client}#{op} acknowledged but not durable on a quorum (t={at})"
            ),
            Violation::ConsistentPrefix {
                node,
                key,
                applied,
                at,
            } => write!(
                f,
                "{node} served {key} at applied {applied} with a value the decided log does not \
                 give there (t={at})"
            ),
            Violation::MonotonicReads {
                client,
                floor,
                applied,
            } => write!(f, "{client} read at applied {applied} after seeing {floor}"),
            Violation::VoteFromLostState { node, what, at } => write!(
                f,
                "{node} lost its disk and sent {what} before it was a member again (t={at})"
            ),
            Violation::CommitRegressed { node, was, now, at } => write!(
                f,
                "{node}'s commit index went from {was} down to {now} within one run (t={at})"
            ),
            Violation::PromiseMonotonic { node, was, now } => {
                write!(f, "{node}'s durable promise went from {was} to {now}")
            }
        }
    }
}

/// The checker's memory: what was decided, a reference state machine applying it with the
/// history of every key's value, and each node's last durable promise.
#[derive(Debug)]
pub struct Checker {
    decided: BTreeMap<Slot, Command>,
    reference: StateMachine,
    history: BTreeMap<Key, Vec<(Slot, Option<Value>)>>,
    op_slot: BTreeMap<(ClientId, OpSeq), Slot>,
    promises: BTreeMap<NodeId, Ballot>,
    /// Operations acknowledged so far (each is checked at its first acknowledgement; a
    /// retry answered later from a leader's table adds nothing, and after a disk loss may
    /// rightly find fewer copies than a quorum while the value stays chosen). Bounded by
    /// the operations of the run.
    acked: std::collections::BTreeSet<(ClientId, OpSeq)>,
    /// Nodes already found voting from a lost state (reported once each).
    voted_lost: std::collections::BTreeSet<NodeId>,
    /// Violations found so far, in order.
    pub violations: Vec<Violation>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new(Config::with_nodes(1), Limits::default(), 3)
    }
}

impl Checker {
    /// A checker for a cell whose initial jury is `config`, whose reference state machine
    /// has the nodes' `limits` and applies jury changes `alpha` slots after their own, as
    /// the replicas do: the jury of every slot comes from the decided log.
    pub fn new(config: Config, limits: Limits, alpha: u64) -> Checker {
        Checker {
            decided: BTreeMap::new(),
            reference: StateMachine::new(config, limits, alpha),
            history: BTreeMap::new(),
            op_slot: BTreeMap::new(),
            promises: BTreeMap::new(),
            acked: std::collections::BTreeSet::new(),
            voted_lost: std::collections::BTreeSet::new(),
            violations: Vec::new(),
        }
    }

    /// Slots decided so far (committed by some node).
    pub fn decided(&self) -> usize {
        self.decided.len()
    }

    /// After a step of `cell` whose commit index was `before`: the commit index did not go
    /// down, and every newly committed slot must hold the command decided there (the first
    /// node to commit it decides it).
    pub fn after_step(&mut self, cell: &Cell, before: Slot, at: u64) {
        if cell.commit() < before {
            self.violations.push(Violation::CommitRegressed {
                node: cell.id(),
                was: before,
                now: cell.commit(),
                at,
            });
        }
        for slot in before..cell.commit() {
            let Some((_, cmd)) = cell.committed_entry(slot) else {
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
                    if let Command::Op { client, op, .. } = cmd {
                        self.op_slot.entry((*client, *op)).or_insert(slot);
                    }
                    self.decided.insert(slot, cmd.clone());
                }
            }
        }
        self.apply_decided();
    }

    /// Applies the decided prefix to the reference, recording each written key's value.
    fn apply_decided(&mut self) {
        while let Some(cmd) = self.decided.get(&self.reference.applied()) {
            self.reference.apply(cmd);
            let after = self.reference.applied();
            for key in written_keys(cmd) {
                let value = self.reference.get(&key).cloned();
                self.history.entry(key).or_default().push((after, value));
            }
        }
    }

    /// A local read served by `node`: each value must be the one the decided log gives
    /// after `applied` slots.
    pub fn on_local_read(
        &mut self,
        node: NodeId,
        applied: Slot,
        values: &[(Key, Option<Value>)],
        at: u64,
    ) {
        if applied > self.reference.applied() {
            return; // not decided as far yet: checked by Agreement instead
        }
        for (key, value) in values {
            let expected = self
                .history
                .get(key)
                .and_then(|h| h.iter().rev().find(|(a, _)| *a <= applied))
                .and_then(|(_, v)| v.as_ref());
            if expected != value.as_ref() {
                let key = key.clone();
                self.violations.push(Violation::ConsistentPrefix {
                    node,
                    key,
                    applied,
                    at,
                });
            }
        }
    }

    /// A client's session received a read at `applied` after having seen `floor`.
    pub fn on_read_answer(&mut self, client: ClientId, floor: Slot, applied: Slot) {
        if applied < floor {
            self.violations.push(Violation::MonotonicReads {
                client,
                floor,
                applied,
            });
        }
    }

    /// When an operation is acknowledged (the first time): its slot must be decided and
    /// durable (in synced storage), among `storages`, on enough members of the slot's jury
    /// or of a later one (from the decided log) that every quorum able to decide the slot
    /// again meets one of them. Without disk loss that is a quorum. A node whose disk was
    /// lost (`amnesiac`) cannot promise or vote until it is moved out and back, so it is in
    /// no such quorum: with `w` of them in a jury of `n` and quorum `q`, `n − w − q + 1`
    /// holders suffice. A later jury counts because once a removed member has deleted its
    /// copy, the slot lives on in the jury that took over.
    pub fn on_ack(
        &mut self,
        client: ClientId,
        op: OpSeq,
        storages: &[(NodeId, &Durable)],
        amnesiac: &[NodeId],
        at: u64,
    ) {
        if !self.acked.insert((client, op)) {
            return;
        }
        let durable = self.op_slot.get(&(client, op)).is_some_and(|slot| {
            let cmd = &self.decided[slot];
            let start = self.reference.jury().start_of(*slot);
            let holds = |jury: &Config| {
                let holders = storages
                    .iter()
                    .filter(|(n, s)| {
                        jury.contains(*n)
                            && !amnesiac.contains(n)
                            && (s.log.get(slot).is_some_and(|(_, c)| c == cmd)
                                // Folded into a snapshot: a chosen prefix holds it.
                                || s.base() > *slot)
                    })
                    .count();
                let lost = jury.members.iter().filter(|n| amnesiac.contains(n)).count();
                let needed = (jury.members.len() + 1).saturating_sub(lost + jury.quorum());
                holders >= needed.max(1)
            };
            self.reference
                .jury()
                .configs()
                .filter(|(first, _, _)| *first >= start)
                .any(|(_, _, jury)| holds(jury))
        });
        if !durable {
            self.violations
                .push(Violation::Durability { client, op, at });
        }
    }

    /// A step of `node`, whose disk was lost, sent `msgs`: while its copy is not a member
    /// (`since` unset), none may be a promise or a vote.
    pub fn on_lost_state_sends(
        &mut self,
        node: NodeId,
        member: bool,
        msgs: &[physalia_traces::Envelope],
        at: u64,
    ) {
        if member || self.voted_lost.contains(&node) {
            return;
        }
        for env in msgs {
            let what = match &env.msg {
                physalia_traces::Msg::Promise { ballot, .. } => format!("a Promise of {ballot}"),
                physalia_traces::Msg::Accepted { ballot, slots, .. } if !slots.is_empty() => {
                    format!("an Accepted of {ballot} for slots {slots:?}")
                }
                _ => continue,
            };
            self.violations
                .push(Violation::VoteFromLostState { node, what, at });
            self.voted_lost.insert(node);
            return;
        }
    }

    /// The jury over time as the decided log gives it.
    pub fn jury(&self) -> &crate::kv::Jury {
        self.reference.jury()
    }

    /// A node deleted its copy of the cell (its removal is in force): the next copy is a
    /// new acceptor, whose promise starts afresh.
    pub fn on_copy_deleted(&mut self, node: NodeId) {
        self.promises.remove(&node);
    }

    /// When a node's storage changed: its promise must not go down.
    pub fn on_storage(&mut self, node: NodeId, storage: &Durable) {
        let was = self.promises.entry(node).or_default();
        if storage.promised < *was {
            self.violations.push(Violation::PromiseMonotonic {
                node,
                was: *was,
                now: storage.promised,
            });
        }
        *was = (*was).max(storage.promised);
    }
}

/// The keys a command may write.
fn written_keys(cmd: &Command) -> Vec<Key> {
    let Command::Op { txn, .. } = cmd else {
        return Vec::new();
    };
    match txn {
        Txn::Get { .. } => Vec::new(),
        Txn::Put { key, .. } | Txn::Cas { key, .. } | Txn::Incr { key, .. } => vec![key.clone()],
        Txn::Reconfig { .. } => Vec::new(),
        Txn::Txn { writes, .. } => writes.iter().map(|w| w.key().clone()).collect(),
    }
}
