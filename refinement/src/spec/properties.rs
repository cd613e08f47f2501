//! The model's `always` properties (`model/src/properties.rs`), restated over the
//! specification's state under the model's names. Each is checked where the state it reads
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

use physalia_traces::{Ballot, Command, DurableWrite, NodeId, Slot};

pub use physalia_model::properties::{
    AGREEMENT, APPLIED_IN_ORDER, COMMITTED_PREFIX, DURABILITY, LINEARIZABLE, PROMISE_MONOTONIC,
    VALIDITY,
};

use super::state::{Ghost, Storage};

use super::{CellFacts, Violation};

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
    who.insert(node);
    let jury = facts.jury_at(slot);
    if who.iter().filter(|n| jury.contains(**n)).count() < jury.quorum() {
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
            ghost.chosen.insert(slot, (command.clone(), ballot));
        }
    }
}

/// Writes `writes` to `node`'s storage, as an acknowledged batch or one that survived a
/// crash: the durable promise must never go down (promise monotonic), and each acceptance
/// is a durable vote (agreement, validity).
pub fn make_durable(
    storage: &mut Storage,
    ghost: &mut Ghost,
    facts: &CellFacts,
    node: NodeId,
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
            DurableWrite::Accepted { entry } => record_vote(
                ghost,
                facts,
                node,
                entry.slot,
                entry.ballot,
                &entry.command,
                out,
            ),
            DurableWrite::Promised { .. } => {}
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
