//! The comparison of the logged step with the predicted one: state, durable writes,
//! released messages.

use physalia_traces::{DurableWrite, Entry, Input, Kind, MsgId, Role};

use super::Ctx;
use crate::spec::{Finding, Network};

/// A `persisted` step releases exactly the held messages of the batches it acknowledges
/// (up to the last batch issued); no other step releases anything.
pub(super) fn check_released(ctx: &mut Ctx<'_>, net: &Network) {
    let due: Vec<MsgId> = match &ctx.ev.kind {
        Kind::Input(Input::Persisted { up_to }) => {
            let acked = (*up_to).min(ctx.pre.issued);
            net.held
                .get(&(ctx.n, ctx.ev.inc))
                .map(|v| {
                    v.iter()
                        .filter(|(p, _)| *p <= acked)
                        .map(|(_, id)| *id)
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let mut logged = ctx.ev.released.clone();
    let mut want = due;
    logged.sort();
    want.sort();
    if logged != want {
        let show = |v: &[MsgId]| -> String {
            if v.is_empty() {
                "nothing".into()
            } else {
                v.iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        ctx.find(
            "released",
            format!(
                "the held messages of the acknowledged batches: {}",
                show(&want)
            ),
            show(&logged),
        );
    }
}

/// The logged state after the step against the predicted one, field by field.
pub(super) fn compare_state(ctx: &mut Ctx<'_>) {
    let s = &ctx.ev.state;
    let mut f = Vec::new();
    if s.promised != ctx.w.promised {
        f.push(Finding::new("state.promised", ctx.w.promised, s.promised));
    }
    if s.role != ctx.w.role {
        f.push(Finding::new("state.role", ctx.w.role, s.role));
    }
    if s.role != Role::Follower && s.ballot != ctx.w.ballot {
        f.push(Finding::new("state.ballot", ctx.w.ballot, s.ballot));
    }
    if s.commit != ctx.w.commit {
        f.push(Finding::new("state.commit", ctx.w.commit, s.commit));
    }
    ctx.findings.extend(f);
}

/// The logged durable writes against the predicted ones (as multisets: a batch is atomic),
/// comparing whole values, transactions included.
pub(super) fn compare_writes(ctx: &mut Ctx<'_>) {
    let logged: Vec<DurableWrite> = ctx
        .ev
        .persist
        .iter()
        .flat_map(|p| p.writes.clone())
        .collect();
    if !same_multiset(&ctx.writes, &logged) {
        let (allowed, got) = show_pair(&ctx.writes, &logged);
        ctx.find("persist.writes", allowed, got);
    }
    let predicted = accepted_entries(&ctx.writes);
    if !same_multiset(&predicted, &ctx.ev.state.accepted) {
        let (allowed, got) = show_pair(&predicted, &ctx.ev.state.accepted);
        ctx.find("state.accepted", allowed, got);
    }
    if let Some(p) = &ctx.ev.persist {
        let next = ctx.pre.issued.saturating_add(1);
        if p.id != next {
            ctx.find("persist.id", next, p.id);
        }
    }
}

/// The log entries among durable writes, in order.
pub(super) fn accepted_entries(writes: &[DurableWrite]) -> Vec<Entry> {
    writes
        .iter()
        .filter_map(|w| match w {
            DurableWrite::Accepted { entry } => Some(entry.clone()),
            DurableWrite::Promised { .. } | DurableWrite::Snapshot { .. } => None,
        })
        .collect()
}

/// Whether two lists hold the same values, in any order.
fn same_multiset<T: serde::Serialize + PartialEq>(a: &[T], b: &[T]) -> bool {
    if a == b {
        return true; // the usual case, without serialising anything
    }
    if a.len() != b.len() {
        return false;
    }
    let key = |v: &T| serde_json::to_string(v).unwrap_or_default();
    let mut a: Vec<String> = a.iter().map(key).collect();
    let mut b: Vec<String> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// Both lists, briefly; in full (JSON) when the brief forms do not tell them apart.
fn show_pair<T: serde::Serialize + PartialEq + std::fmt::Display>(
    a: &[T],
    b: &[T],
) -> (String, String) {
    let brief = |v: &T| v.to_string();
    let list = |v: &[T], f: &dyn Fn(&T) -> String| -> String {
        if v.is_empty() {
            "nothing".into()
        } else {
            format!("[{}]", v.iter().map(f).collect::<Vec<_>>().join(", "))
        }
    };
    let (x, y) = (list(a, &brief), list(b, &brief));
    if x != y {
        return (x, y);
    }
    let full = |v: &T| serde_json::to_string(v).unwrap_or_default();
    (list(a, &full), list(b, &full))
}
