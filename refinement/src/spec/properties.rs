//! The `always` properties of the catalogue (`physalia_traces::properties`, the model's
//! too), restated over the specification's state under the catalogue's names. Each is checked where the state it reads
//! changes, which is every replayed state on which it could fail:
//!
//! | property | checked when |
//! |---|---|
//! | agreement | a durable acceptance is recorded (one command per slot and ballot; one chosen command per slot) |
//! | validity | a command becomes chosen (a no-op, or an operation some node received as a `Request`) |
//! | committed prefix | a node's commit index advances (each newly committed entry is the chosen command) |
//! | promise monotonic | a durable promise is written (never below the durable one) |
//! | durability | a node answers a write that took effect (the operation is chosen) |
//! | applied in slot order | a node answers an operation (the result is what applying the committed log in slot order gives) |
//! | linearizable | at the end, on the whole client history ([`crate::history`]) |
//! | one change at a time | a jury change becomes chosen (no other chosen change within α slots) |
//! | snapshot is a chosen prefix | a node's commit index moves past slots it holds in a snapshot (each is chosen) |
//!
//! Quorums are counted in the configuration of their slot, which the ghost computes from the
//! chosen prefix ([`Ghost::juries`]).

use physalia_traces::{Ballot, Command, DurableWrite, NodeId, Slot};

use physalia_traces::properties as catalogue;

use super::state::{Ghost, Storage};
use super::{CellFacts, Violation};

/// Name of the catalogue's `agreement`.
pub const AGREEMENT: &str = catalogue::AGREEMENT.name;
/// Name of the catalogue's `committed prefix`.
pub const COMMITTED_PREFIX: &str = catalogue::COMMITTED_PREFIX.name;
/// Name of the catalogue's `validity`.
pub const VALIDITY: &str = catalogue::VALIDITY.name;
/// Name of the catalogue's `promise monotonic`.
pub const PROMISE_MONOTONIC: &str = catalogue::PROMISE_MONOTONIC.name;
/// Name of the catalogue's `durability`.
pub const DURABILITY: &str = catalogue::DURABILITY.name;
/// Name of the catalogue's `applied in slot order`.
pub const APPLIED_IN_ORDER: &str = catalogue::APPLIED_IN_ORDER.name;
/// Name of the catalogue's `linearizable`.
pub const LINEARIZABLE: &str = catalogue::LINEARIZABLE.name;
/// Name of the catalogue's `snapshot is a chosen prefix`.
pub const SNAPSHOT_IS_CHOSEN_PREFIX: &str = catalogue::SNAPSHOT_IS_CHOSEN_PREFIX.name;
/// Name of the catalogue's `consistent prefix` (local reads).
pub const CONSISTENT_PREFIX: &str = catalogue::CONSISTENT_PREFIX.name;
/// Name of the catalogue's `monotonic reads` (local reads).
pub const MONOTONIC_READS: &str = catalogue::MONOTONIC_READS.name;
/// Name of the catalogue's `one change at a time`.
pub const ONE_CHANGE_AT_A_TIME: &str = catalogue::ONE_CHANGE_AT_A_TIME.name;

/// Records that `node` durably accepted `command` at `(slot, ballot)`; checks Agreement and
/// Validity on the new state.
pub fn record_vote(
    ghost: &mut Ghost,
    facts: &CellFacts,
    node: NodeId,
    slot: Slot,
    ballot: Ballot,
    command: &Command,
    out: &mut Vec<Violation>,
) {
    let (cmd, who) = ghost
        .votes
        .entry((slot, ballot))
        .or_insert_with(|| (command.clone(), Default::default()));
    if cmd != command {
        out.push(Violation {
            property: AGREEMENT,
            detail: format!(
                "slot {slot}: {node} accepted {} at ballot {ballot}, where others accepted {} \
                 at the same ballot (a ballot proposes one command per slot)",
                command, cmd
            ),
        });
        return;
    }
    if who.insert(node) {
        ghost.vote_count += 1;
    }
    let jury = ghost.juries.at(slot);
    if who.iter().filter(|n| jury.contains(n)).count() < ghost.juries.quorum_at(slot) {
        return;
    }
    match ghost.chosen.get(&slot) {
        Some((c, b)) if c != command => out.push(Violation {
            property: AGREEMENT,
            detail: format!(
                "slot {slot}: {} is chosen at ballot {ballot} ({} accepted it), but {} was \
                 chosen there at ballot {b}",
                command,
                fmt_nodes(who.iter()),
                c
            ),
        }),
        Some(_) => {}
        None => {
            if let Command::Op { client, op, .. } = command {
                if !ghost.requested.contains(&(*client, *op)) {
                    out.push(Violation {
                        property: VALIDITY,
                        detail: format!(
                            "slot {slot}: {} is chosen but no node ever received it as a request",
                            command
                        ),
                    });
                }
                ghost.chosen_ops.insert((*client, *op));
            }
            if matches!(command, Command::Op { txn, .. } if txn.is_reconfig()) {
                let near: Vec<Slot> = ghost
                    .changes
                    .iter()
                    .copied()
                    .filter(|t| t.abs_diff(slot) < facts.alpha)
                    .collect();
                if let Some(t) = near.first() {
                    out.push(Violation {
                        property: ONE_CHANGE_AT_A_TIME,
                        detail: format!(
                            "jury changes are chosen at slots {t} and {slot}, fewer than α = {} \
                             apart: the second was proposed before the first was in force",
                            facts.alpha
                        ),
                    });
                }
                ghost.changes.insert(slot);
            }
            ghost.chosen.insert(slot, (command.clone(), ballot));
            ghost.apply_chosen();
        }
    }
}

/// Writes `writes` to `node`'s storage, as an acknowledged batch or one that survived a
/// crash: the durable promise must never go down (promise monotonic), and each acceptance
/// at a slot the copy votes for (`since` on) is a durable vote (agreement, validity). An
/// entry below `since` is what a learner stores to learn from, not a vote.
pub fn make_durable(
    storage: &mut Storage,
    ghost: &mut Ghost,
    facts: &CellFacts,
    (node, since): (NodeId, Option<Slot>),
    writes: &[DurableWrite],
    out: &mut Vec<Violation>,
) {
    for w in writes {
        match w {
            DurableWrite::Promised { ballot } if *ballot < storage.promised => {
                out.push(Violation {
                    property: PROMISE_MONOTONIC,
                    detail: format!(
                        "{node}'s durable promise goes from {} down to {ballot}",
                        storage.promised
                    ),
                });
            }
            DurableWrite::Accepted { entry } if since.is_none_or(|s| entry.slot < s) => {}
            DurableWrite::Accepted { entry } => record_vote(
                ghost,
                facts,
                node,
                entry.slot,
                entry.ballot,
                &entry.command,
                out,
            ),
            DurableWrite::Promised { .. } | DurableWrite::Snapshot { .. } => {}
        }
        storage.apply(w);
    }
}

/// Whether a result reports a write that took effect (durability is about those; what a
/// read or a failed condition returned is judged by linearizability).
pub(crate) fn wrote(r: &physalia_traces::TxnResult) -> bool {
    use physalia_traces::TxnResult as R;
    matches!(
        r,
        R::Put | R::Cas { ok: true, .. } | R::Incr { .. } | R::Txn { ok: true, .. }
    )
}

fn fmt_nodes<'a>(it: impl Iterator<Item = &'a NodeId>) -> String {
    let v: Vec<String> = it.map(|n| n.to_string()).collect();
    format!("{{{}}}", v.join(","))
}
