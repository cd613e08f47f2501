//! The client history of a trace and the checks on it: linearizability against
//! [`crate::kv::KvSpec`] and bounded liveness after `GST`.
//!
//! An operation is `(client, op)`. Its interval runs from the first time any node received
//! it (`request`) to the first time a node answered it with a result (`Reply`), in the
//! nodes' `now` stamps; the header's `clock_skew` widens every return so that stamps of
//! different nodes are compared soundly. An operation never answered with an applied result
//! has an unknown outcome: it may or may not have taken effect.

use std::collections::BTreeMap;

use physalia_traces::{ClientId, Endpoint, Input, Kind, Merged, Msg, OpSeq, Txn, TxnResult};
use serde::Serialize;

use crate::linearizability::{self, Operation, Verdict};

/// One operation as the trace shows it.
#[derive(Clone, Debug)]
struct Seen {
    txn: Txn,
    first_request: u64,
    first_request_event: usize,
    answered: Option<(u64, usize)>,
    refused: Option<TxnResult>,
    applied: Option<(TxnResult, u64, usize)>,
    conflicting: Option<(TxnResult, usize)>,
}

/// The client history extracted from a merged trace.
#[derive(Clone, Debug, Default)]
pub struct ClientHistory {
    ops: BTreeMap<(ClientId, OpSeq), Seen>,
    skew: u64,
    end: u64,
}

impl ClientHistory {
    /// Collects every operation of `merged`.
    pub fn of(merged: &Merged) -> ClientHistory {
        let mut h = ClientHistory {
            skew: merged.header.clock_skew,
            ..ClientHistory::default()
        };
        // The merged order is causal, not real time: take the earliest stamps.
        for (i, loc) in merged.events.iter().enumerate() {
            let ev = &loc.event;
            h.end = h.end.max(ev.now);
            let request = match &ev.kind {
                Kind::Input(Input::Request { client, op, txn }) => Some((*client, *op, txn)),
                Kind::Input(Input::Deliver {
                    msg: Msg::Request { client, op, txn },
                    ..
                }) => Some((*client, *op, txn)),
                _ => None,
            };
            // A jury change is not an operation of the store: linearizability and the
            // answer bound are about the store's clients.
            if let Some((client, op, txn)) = request.filter(|(_, _, t)| !t.is_reconfig()) {
                let seen = h.ops.entry((client, op)).or_insert_with(|| Seen {
                    txn: txn.clone(),
                    first_request: ev.now,
                    first_request_event: i,
                    answered: None,
                    refused: None,
                    applied: None,
                    conflicting: None,
                });
                if ev.now < seen.first_request {
                    seen.first_request = ev.now;
                    seen.first_request_event = i;
                }
            }
        }
        for (i, loc) in merged.events.iter().enumerate() {
            let ev = &loc.event;
            for s in &ev.sent {
                let (Endpoint::Client(client), Msg::Reply { op, result }) = (&s.to, &s.msg) else {
                    continue;
                };
                let Some(seen) = h.ops.get_mut(&(*client, *op)) else {
                    continue; // a reply to a request the trace never shows: the spec reports it
                };
                // Liveness counts an answer that ends the operation: applied, or refused
                // for good; `overloaded` asks the client to come back.
                if !matches!(result, TxnResult::Overloaded)
                    && seen.answered.is_none_or(|(t, _)| ev.now < t)
                {
                    seen.answered = Some((ev.now, i));
                }
                if result.never_applied() {
                    seen.refused.get_or_insert_with(|| result.clone());
                    continue;
                }
                match &mut seen.applied {
                    None => seen.applied = Some((result.clone(), ev.now, i)),
                    Some((r, t, j)) if r == result => {
                        if ev.now < *t {
                            (*t, *j) = (ev.now, i);
                        }
                    }
                    Some(_) => {
                        if seen.conflicting.is_none() {
                            seen.conflicting = Some((result.clone(), i));
                        }
                    }
                }
            }
        }
        h
    }

    /// How many operations the history holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The history as the linearizability checker takes it. `chosen(client, op)` says
    /// whether the operation is chosen in some slot: an operation answered only `Overloaded`
    /// or `Rejected` that is chosen all the same has an unknown outcome, not "never applied".
    pub fn operations(&self, chosen: impl Fn(ClientId, OpSeq) -> bool) -> Vec<Operation> {
        self.ops
            .iter()
            .map(|((client, op), s)| {
                let (ret, result) = match (&s.applied, s.answered) {
                    (Some((r, t, _)), _) => (Some(t.saturating_add(self.skew)), Some(r.clone())),
                    (None, Some((t, _))) if !chosen(*client, *op) && s.refused.is_some() => {
                        // Answered without effect (overloaded or rejected).
                        (Some(t.saturating_add(self.skew)), s.refused.clone())
                    }
                    _ => (None, None),
                };
                Operation {
                    client: *client,
                    op: *op,
                    txn: s.txn.clone(),
                    invoke: s.first_request,
                    ret,
                    result,
                }
            })
            .collect()
    }

    /// Operations answered with two different applied results.
    pub fn conflicting(&self) -> Vec<String> {
        self.ops
            .iter()
            .filter_map(|((c, o), s)| {
                let (first, _, i) = s.applied.as_ref()?;
                let (second, j) = s.conflicting.as_ref()?;
                Some(format!(
                    "{c}#{o} answered {} (event {i}) and {} (event {j})",
                    first, second
                ))
            })
            .collect()
    }
}

/// The linearizability verdict on a trace's history.
#[derive(Clone, Debug, Serialize)]
pub struct LinReport {
    /// Operations in the history.
    pub operations: usize,
    /// `linearizable`, `not linearizable`, `undecided`.
    pub verdict: String,
    /// Why not, with the offending operations.
    pub detail: Option<String>,
}

impl LinReport {
    /// Whether the history is linearizable.
    pub fn holds(&self) -> bool {
        self.verdict == "linearizable"
    }
}

/// Checks the history of `merged` (with at most `budget` search nodes).
pub fn check_linearizable(
    history: &ClientHistory,
    chosen: impl Fn(ClientId, OpSeq) -> bool,
    budget: u64,
) -> LinReport {
    let ops = history.operations(chosen);
    let conflicting = history.conflicting();
    if !conflicting.is_empty() {
        return LinReport {
            operations: ops.len(),
            verdict: "not linearizable".into(),
            detail: Some(format!(
                "an operation takes effect once, but {}",
                conflicting.join("; ")
            )),
        };
    }
    // The cell's client sessions hold (one result kept per client; an older operation is
    // never applied after a newer one: `impl/README.md`, item 7), so an unknown-outcome
    // operation expires when its client's next operation returns.
    let options = linearizability::Options {
        client_sessions: true,
        ..linearizability::Options::with_budget(budget)
    };
    match linearizability::check_with(&ops, &options).map(|(v, _)| v) {
        Ok(Verdict::Linearizable { .. }) => LinReport {
            operations: ops.len(),
            verdict: "linearizable".into(),
            detail: None,
        },
        Ok(Verdict::NotLinearizable(v)) => LinReport {
            operations: ops.len(),
            verdict: "not linearizable".into(),
            detail: Some(v.to_string()),
        },
        Ok(Verdict::Undecided { explored }) => LinReport {
            operations: ops.len(),
            verdict: "undecided".into(),
            detail: Some(format!("the search budget ran out after {explored} nodes")),
        },
        Err(e) => LinReport {
            operations: ops.len(),
            verdict: "undecided".into(),
            detail: Some(format!("the history is malformed: {e}")),
        },
    }
}

/// The bounds of bounded liveness after `GST` (ms of `now`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LivenessBounds {
    /// A distinguished proposer exists within this long after `GST` (B₁).
    pub leader_ms: u64,
    /// Every request first received after `GST` is answered within this long (B₂).
    pub answer_ms: u64,
}

impl Default for LivenessBounds {
    fn default() -> Self {
        LivenessBounds {
            leader_ms: 2_000,
            answer_ms: 3_000,
        }
    }
}

/// Bounded liveness on a trace.
#[derive(Clone, Debug, Serialize)]
pub struct LivenessReport {
    /// The trace's `GST`.
    pub gst: u64,
    /// The bounds checked.
    pub bounds: LivenessBounds,
    /// When a leader was first seen at or after `GST` (ms after `GST`).
    pub leader_after_ms: Option<u64>,
    /// Requests received after `GST` and checked.
    pub requests_checked: usize,
    /// The longest time one of them took to be answered (ms).
    pub slowest_answer_ms: u64,
    /// Requests the trace ends too early to judge.
    pub undecided: usize,
    /// The last `now` of the trace (ms): at or before `gst`, liveness was not judged.
    pub trace_end: u64,
    /// What failed.
    pub failures: Vec<String>,
}

impl LivenessReport {
    /// Whether the trace runs past `GST` at all (otherwise nothing was judged).
    pub fn judged(&self) -> bool {
        self.trace_end > self.gst
    }

    /// Whether both bounds held.
    pub fn holds(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks bounded liveness after the header's `GST`; `None` if the trace states none.
pub fn check_liveness(
    merged: &Merged,
    history: &ClientHistory,
    bounds: LivenessBounds,
) -> Option<LivenessReport> {
    let gst = merged.header.gst?;
    let skew = merged.header.clock_skew;
    let end = history.end;
    // A distinguished proposer is established when a node acts as one at or after GST (a
    // leader that crashed silently logs nothing more, so it does not count).
    let mut leader_at = None;
    for loc in &merged.events {
        let ev = &loc.event;
        if ev.now.saturating_add(skew) >= gst && ev.state.role == physalia_traces::Role::Leader {
            leader_at = Some(ev.now.saturating_sub(gst));
            break;
        }
    }
    let mut failures = Vec::new();
    match leader_at {
        Some(t) if t > bounds.leader_ms.saturating_add(skew) => failures.push(format!(
            "no distinguished proposer until {t} ms after GST (bound {} ms)",
            bounds.leader_ms
        )),
        None if end > gst.saturating_add(bounds.leader_ms).saturating_add(skew) => {
            failures.push(format!(
                "no distinguished proposer in the {} ms after GST (bound {} ms)",
                end - gst,
                bounds.leader_ms
            ))
        }
        _ => {}
    }
    let (mut checked, mut undecided, mut slowest) = (0, 0, 0);
    for ((client, op), s) in &history.ops {
        if s.first_request < gst {
            continue;
        }
        match s.answered {
            Some((t, _)) => {
                checked += 1;
                let took = t.saturating_sub(s.first_request);
                slowest = slowest.max(took);
                if took > bounds.answer_ms.saturating_add(skew) {
                    failures.push(format!(
                        "{client}#{op}, first received at {} (event {}), was answered only {took} ms later (bound {} ms)",
                        s.first_request, s.first_request_event, bounds.answer_ms
                    ));
                }
            }
            None if end
                > s.first_request
                    .saturating_add(bounds.answer_ms)
                    .saturating_add(skew) =>
            {
                checked += 1;
                failures.push(format!(
                    "{client}#{op}, first received at {} (event {}), was never answered in the {} ms the trace still runs (bound {} ms)",
                    s.first_request,
                    s.first_request_event,
                    end - s.first_request,
                    bounds.answer_ms
                ));
            }
            None => undecided += 1,
        }
    }
    Some(LivenessReport {
        gst,
        bounds,
        leader_after_ms: leader_at,
        requests_checked: checked,
        slowest_answer_ms: slowest,
        undecided,
        trace_end: end,
        failures,
    })
}
