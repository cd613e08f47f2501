//! The safety properties on what one step did: committed prefix, durability and
//! applied-in-slot-order (the ghost-recording half lives in [`crate::spec::properties`]).

use physalia_traces::{ClientId, Endpoint, Msg, OpSeq};

use super::Ctx;
use crate::spec::properties::{
    wrote, APPLIED_IN_ORDER, COMMITTED_PREFIX, DURABILITY, SNAPSHOT_IS_CHOSEN_PREFIX,
};
use crate::spec::{Ghost, Violation};

/// The most `committed prefix` violations one step reports slot by slot.
const MAX_PREFIX_REPORTS: usize = 8;

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
    // At most a few reports per step (the rest summarized): the range is the commit
    // index's advance, which the slot bound caps, but one bogus jump still spans it all.
    let before = out.len();
    let changed: std::collections::BTreeMap<_, _> = ctx
        .ev
        .state
        .accepted
        .iter()
        .map(|e| (e.slot, &e.command))
        .collect();
    let mut more = 0u64;
    for s in from..ctx.ev.state.commit {
        if out.len() - before >= MAX_PREFIX_REPORTS {
            more = ctx.ev.state.commit - s;
            break;
        }
        let slot = &s;
        // Learned from a snapshot (installed, or restarted from): it holds a chosen prefix,
        // so every slot below its point must be chosen.
        if *slot < ctx.w.base {
            if !ghost.chosen.contains_key(slot) {
                out.push(Violation {
                    property: SNAPSHOT_IS_CHOSEN_PREFIX,
                    detail: format!(
                        "{n} holds slot {slot} in a snapshot (up to {}), but no quorum has \
                         accepted anything there",
                        ctx.w.base
                    ),
                });
            }
            continue;
        }
        let mine = match (changed.get(slot), ctx.w.log.get(slot)) {
            (Some(c), _) => *c,
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
                    mine
                ),
            }),
            Some((c, b)) if c != mine => out.push(Violation {
                property: COMMITTED_PREFIX,
                detail: format!(
                    "{n} committed {} at slot {slot}, but {} is chosen there (at ballot {b})",
                    mine, c
                ),
            }),
            Some(_) => {}
        }
    }
    if more > 0 {
        out.push(Violation {
            property: COMMITTED_PREFIX,
            detail: format!(
                "and the {more} slot(s) from there to {n}'s commit index {} are not checked",
                ctx.ev.state.commit
            ),
        });
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
                    result
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
                        result, expected
                    ),
                });
            }
        }
    }
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
