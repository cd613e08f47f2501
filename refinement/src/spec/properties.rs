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

use physalia_traces::{
    Ballot, ClientId, Command, DurableWrite, Endpoint, Msg, NodeId, OpSeq, Slot,
};

pub use physalia_model::properties::{
    AGREEMENT, APPLIED_IN_ORDER, COMMITTED_PREFIX, DURABILITY, LINEARIZABLE, PROMISE_MONOTONIC,
    VALIDITY,
};

use super::state::{Ghost, Storage};
use super::step::{fmt_command, Ctx};
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
                fmt_command(command),
                fmt_command(cmd)
            ),
        });
        return;
    }
    who.insert(node);
    if who.len() < facts.quorum {
        return;
    }
    match ghost.chosen.get(&slot) {
        Some((c, b)) if c != command => out.push(Violation {
            property: AGREEMENT,
            detail: format!(
                "slot {slot}: {} is chosen at ballot {ballot} ({} accepted it), but {} was \
                 chosen there at ballot {b}",
                fmt_command(command),
                fmt_nodes(who.iter()),
                fmt_command(c)
            ),
        }),
        Some(_) => {}
        None => {
            if let Command::Op { client, seq, .. } = command {
                if !ghost.requested.contains(&(*client, *seq)) {
                    out.push(Violation {
                        property: VALIDITY,
                        detail: format!(
                            "slot {slot}: {} is chosen but no node ever received it as a request",
                            fmt_command(command)
                        ),
                    });
                }
                ghost.chosen_ops.insert((*client, *seq));
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

/// Committed prefix, durability and applied-in-slot-order on what the step did.
pub(super) fn after_step(ghost: &Ghost, ctx: &Ctx<'_>, out: &mut Vec<Violation>) {
    let n = ctx.n;
    // The commit index the node logged, whatever the rules predicted: the ghost judges what
    // happened.
    let from = if matches!(ctx.ev.kind, physalia_traces::Kind::Start { .. }) {
        0
    } else {
        ctx.pre.commit
    };
    for slot in &(from..ctx.ev.state.commit).collect::<Vec<_>>() {
        let logged = ctx.ev.state.accepted.iter().find(|e| e.slot == *slot);
        let mine = match (logged, ctx.w.log.get(slot)) {
            (Some(e), _) => &e.command,
            (None, Some((_, c))) => c,
            (None, None) => {
                out.push(Violation {
                    property: COMMITTED_PREFIX,
                    detail: format!("{n} committed slot {slot}, which its log lacks"),
                });
                continue;
            }
        };
        match ghost.chosen.get(slot) {
            None => out.push(Violation {
                property: COMMITTED_PREFIX,
                detail: format!(
                    "{n} committed slot {slot} ({}), which no quorum has accepted",
                    fmt_command(mine)
                ),
            }),
            Some((c, b)) if c != mine => out.push(Violation {
                property: COMMITTED_PREFIX,
                detail: format!(
                    "{n} committed {} at slot {slot}, but {} is chosen there (at ballot {b})",
                    fmt_command(mine),
                    fmt_command(c)
                ),
            }),
            Some(_) => {}
        }
    }
    for sent in &ctx.ev.sent {
        let (Endpoint::Client(client), Msg::Reply { op, result }) = (&sent.to, &sent.msg) else {
            continue;
        };
        if result.never_applied() {
            continue;
        }
        if wrote(result) && !ghost.chosen_ops.contains(&(*client, *op)) {
            out.push(Violation {
                property: DURABILITY,
                detail: format!(
                    "{n} answered {client}#{op} with {} but the operation is not chosen in any \
                     slot: a failure can still lose it",
                    crate::history::fmt_result(result)
                ),
            });
            continue;
        }
        if let Some(expected) = applied_result(ctx, *client, *op) {
            if &expected != result {
                out.push(Violation {
                    property: APPLIED_IN_ORDER,
                    detail: format!(
                        "{n} answered {client}#{op} with {}, but applying the committed log in \
                         slot order gives {}",
                        crate::history::fmt_result(result),
                        crate::history::fmt_result(&expected)
                    ),
                });
            }
        }
    }
}

/// Whether a result reports a write that took effect (durability is about those; what a
/// read or a failed condition returned is judged by linearizability).
fn wrote(r: &physalia_traces::TxnResult) -> bool {
    use physalia_traces::TxnResult as R;
    matches!(
        r,
        R::Put | R::Cas { ok: true, .. } | R::Incr { .. } | R::Txn { ok: true, .. }
    )
}

/// The result the specification's in-order application gives `(client, op)` at this node,
/// if it applied it (in this step, or earlier for an answered repeat).
fn applied_result(
    ctx: &Ctx<'_>,
    client: ClientId,
    op: OpSeq,
) -> Option<physalia_traces::TxnResult> {
    ctx.applied
        .iter()
        .find(|(c, o, _)| *c == client && *o == op)
        .map(|(_, _, r)| r.clone())
        .or_else(|| match ctx.w.store.sessions.get(&client) {
            Some((o, r)) if *o == op => Some(r.clone()),
            _ => None,
        })
}

fn fmt_nodes<'a>(it: impl Iterator<Item = &'a NodeId>) -> String {
    let v: Vec<String> = it.map(|n| n.to_string()).collect();
    format!("{{{}}}", v.join(","))
}
