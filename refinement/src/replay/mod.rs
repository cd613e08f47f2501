//! Replaying a merged trace against the specification ([`crate::spec`]): conformance.
//!
//! # The mapping
//!
//! Every event kind maps to a short composition of specification actions ([`MAPPING`]). An
//! event kind with no row is an error, never a silent stutter (the trace reader rejects
//! unknown kinds, and the match below is exhaustive). Two specification actions are never
//! logged, because no node observes them:
//!
//! - `Crash(n, k)`: node `n` stops; of its batches issued and not acknowledged, the first
//!   `k` reached the disk (any `k`: the disk may have written some before the crash).
//! - `Duplicate(m)`: the network delivers message `m` once more.
//!
//! An unlogged action is inserted only when the next event is otherwise disabled (a `start`
//! of a running node; a `deliver` of a message with no copy in flight), at most
//! [`Options::max_silent`] in a row. A message loss is never needed to enable an event (a
//! lost message is one never delivered), so it is not inserted.
//!
//! # The frontier
//!
//! Replay keeps the set of specification states consistent with the events so far. It is
//! one state for a fully observed trace, except after a crash: each `k` gives a state, and
//! the `start` that follows (its durable promise and log length) and later events (a
//! `Promise` lists the log) keep only those that explain them. The frontier is capped at
//! [`Options::frontier_cap`]; reaching the cap is reported as the failing check
//! `frontier cap`, never truncated.

mod actions;
mod live;
mod load;
mod report;

use std::time::Instant;

use physalia_traces::{Input, Kind, Located, Merged};

use crate::history::{self, ClientHistory};
use crate::spec::{CellFacts, Network, Refusal, StepInfo, World};
use actions::{crash, keep_worst, push_unique, record, NodeSummary};

pub use actions::enabled;
pub use live::{Divergence, Live, DEFAULT_WINDOW};
pub use load::{load, LoadError};
pub use report::{Consequence, Failure, Options, Report, FRONTIER_CAP};

/// The mapping from trace event kinds to specification actions, as `(kind, actions,
/// condition)`. `[X]` is an unlogged action inserted only when the event is otherwise
/// disabled; `·` is sequential composition; `*` is zero or more.
pub const MAPPING: &[(&str, &str, &str)] = &[
    ("start", "[Crash(n, k)] · Restart(n)", "Crash only if n is running; k ∈ 0..=unacknowledged batches"),
    ("deliver Prepare", "[Duplicate(m)] · Deliver(m) · (Promise | Nack)", "Duplicate only if m has no copy in flight"),
    ("deliver Promise", "[Duplicate(m)] · Deliver(m) · [BecomeLeader · Propose*(re-proposals, no-ops)]", "BecomeLeader when a quorum promised (own vote once durable)"),
    ("deliver Nack", "[Duplicate(m)] · Deliver(m) · [StepDown]", ""),
    ("deliver Accept", "[Duplicate(m)] · Deliver(m) · Accept* · (Accepted | Nack)", "one Accept per proposal of the batch"),
    ("deliver Accepted", "[Duplicate(m)] · Deliver(m) · AdvanceCommit · Apply* · Reply* · Commit · Propose*(queued)", "Commit only if the commit index advanced (or on a heartbeat or election)"),
    ("deliver Commit", "[Duplicate(m)] · Deliver(m) · Learn · Apply* · [Accepted(catch-up request)]", ""),
    ("deliver Request/Redirect/Reply", "[Duplicate(m)] · Deliver(m) · (Request as below | ignored)", "client-bound messages are ignored by nodes"),
    ("timeout election", "Timeout(election) · Stand · Prepare*", "a leader ignores it"),
    ("timeout heartbeat", "Timeout(heartbeat) · Accept*(catch-up) · Commit*", "a non-leader ignores it; only this step re-ships slots proposed in an earlier step"),
    ("timeout prepare", "Timeout(prepare) · Prepare*", "a non-candidate ignores it"),
    ("request", "Request · (Redirect | Reply(rejected/overloaded/repeat) | Invoke · (Propose | queue))", ""),
    ("local_read", "LocalRead · Read(answer) (stutter: no state change, nothing sent)", "the answer is the node's applied prefix, never below the client's floor (v3)"),
    ("persisted", "Persisted(up_to) · SelfVote* · [BecomeLeader] · AdvanceCommit · Apply* · Reply* · Propose*(queued)", ""),
];

/// Replays `merged` and checks linearizability and liveness.
pub fn conform(merged: &Merged, opts: &Options) -> Report {
    let mut replay = Replay::new(CellFacts::of(merged), &merged.header.cell, opts);
    replay.report.events = merged.events.len();
    for (index, loc) in merged.events.iter().enumerate() {
        if !replay.event(index, loc) {
            break;
        }
    }
    replay.finish(merged)
}

/// One replay, fed one event at a time in a causal order: the frontier of specification
/// states consistent with the events so far, the network of sent messages, and the report
/// being built.
struct Replay {
    opts: Options,
    facts: CellFacts,
    net: Network,
    frontier: Vec<World>,
    report: Report,
    started: Instant,
}

/// What stepping the frontier through one event gave.
#[derive(Default)]
struct Stepped {
    /// The states that explain the event.
    next: Vec<World>,
    /// The states that refused it (kept to replay on from what the node logged).
    refused: Vec<World>,
    /// The most informative refusal.
    refusal: Option<Refusal>,
    /// What the first accepting state says the network must record.
    info: Option<StepInfo>,
    /// Whether an unlogged crash explained the event.
    crashed: bool,
}

impl Replay {
    /// A replay of the cell `cell` whose facts are `facts`, from the initial state.
    fn new(facts: CellFacts, cell: &str, opts: &Options) -> Replay {
        let frontier = vec![World::initial(&facts)];
        Replay {
            opts: opts.clone(),
            net: Network::default(),
            frontier,
            report: Report {
                cell: cell.to_owned(),
                events: 0,
                matched: 0,
                frontier_max: 1,
                silent_crashes: 0,
                silent_duplicates: 0,
                failure: None,
                consequences: Vec::new(),
                linearizability: None,
                liveness: None,
                unacknowledged_at_end: 0,
                replay_seconds: 0.0,
                lin_seconds: 0.0,
            },
            facts,
            started: Instant::now(),
        }
    }

    /// Replays event `index` of the causal order, `loc`; `false` when replay must stop.
    fn event(&mut self, index: usize, loc: &Located) -> bool {
        let ev = &loc.event;
        let summary = self
            .frontier
            .first()
            .and_then(|w| NodeSummary::of(w, ev.node));
        self.duplicate_if_needed(ev);
        let mut stepped = self.step_frontier(ev);
        if stepped.crashed {
            self.report.silent_crashes += 1;
        }
        if stepped.next.is_empty() {
            let refusal = stepped.refusal.take();
            self.note_refusal(index, loc, summary, refusal);
            // Go on from what the node logged, to see what the divergence leads to.
            let Some(mut w) = stepped.refused.into_iter().next() else {
                return false;
            };
            // Stop at an out-of-bounds value: replaying on would take it for the node's
            // state (a commit index of 2^64-1), and no consequence of it is meaningful.
            let absurd = crate::spec::bounds::check(ev, self.facts.slot_bound)
                .or_else(|| crate::spec::bounds::check_persist(ev, self.facts.persist_bound))
                .is_some();
            if absurd || self.report.consequences.len() >= self.opts.consequences {
                self.frontier = vec![w];
                return false;
            }
            w.resync(ev);
            stepped.next.push(w);
        }
        let next = stepped.next;
        self.report.frontier_max = self.report.frontier_max.max(next.len());
        if next.len() > self.opts.frontier_cap {
            if self.report.failure.is_none() {
                let why = format!(
                    "{} specification states explain the trace so far, above the cap of {}",
                    next.len(),
                    self.opts.frontier_cap
                );
                let why = Some(Refusal::Disabled(why));
                let f = self.failure(index, loc, summary, FRONTIER_CAP, why);
                self.report.failure = Some(f);
            }
            return false; // after a failure: stop replaying on, keep the first failure
        }
        let issued = next
            .first()
            .and_then(|w| w.nodes.get(&ev.node))
            .map_or(0, |n| n.issued);
        record(&mut self.net, ev, stepped.info.unwrap_or_default(), issued);
        self.frontier = next;
        if self.report.failure.is_none() {
            self.report.matched = index + 1;
        }
        true
    }

    /// A deliver of a message with no copy in flight: the network duplicated it.
    fn duplicate_if_needed(&mut self, ev: &physalia_traces::TraceEvent) {
        if let Kind::Input(Input::Deliver { id, .. }) = &ev.kind {
            if let Some(m) = self.net.msgs.get_mut(id) {
                if m.copies == 0 && self.opts.max_silent > 0 {
                    m.copies += 1;
                    self.report.silent_duplicates += 1;
                }
            }
        }
    }

    /// Steps every state of the frontier through `ev`; a `start` of a running node is
    /// explained by an unlogged crash with any prefix of its unacknowledged batches on disk.
    fn step_frontier(&mut self, ev: &physalia_traces::TraceEvent) -> Stepped {
        let mut out = Stepped::default();
        for mut w in std::mem::take(&mut self.frontier) {
            match w.step(&self.facts, &self.net, ev) {
                Ok(info) => {
                    out.info.get_or_insert(info);
                    push_unique(&mut out.next, w);
                }
                Err(Refusal::Disabled(why))
                    if matches!(ev.kind, Kind::Start { .. }) && self.opts.max_silent > 0 =>
                {
                    self.crash_then_start(w, ev, why, &mut out);
                }
                Err(r) => {
                    keep_worst(&mut out.refusal, r);
                    out.refused.push(w);
                }
            }
        }
        out
    }

    /// The branches of an unlogged crash of `ev.node` before its `start`.
    fn crash_then_start(
        &self,
        w: World,
        ev: &physalia_traces::TraceEvent,
        why: String,
        out: &mut Stepped,
    ) {
        let pending = w.nodes.get(&ev.node).map_or(0, |n| n.pending.len());
        let mut any = false;
        for k in 0..=pending {
            let mut c = w.clone();
            let mut violations = Vec::new();
            crash(&mut c, &self.facts, ev.node, k, &mut violations);
            if !violations.is_empty() {
                out.refusal.get_or_insert(Refusal::Failed {
                    findings: Vec::new(),
                    violations,
                });
                continue;
            }
            match c.step(&self.facts, &self.net, ev) {
                Ok(info) => {
                    any = true;
                    out.info.get_or_insert(info);
                    push_unique(&mut out.next, c);
                }
                Err(r) => {
                    keep_worst(&mut out.refusal, r);
                    out.refused.push(c);
                }
            }
        }
        if any {
            out.crashed = true;
        } else if out.refusal.is_none() {
            out.refusal = Some(Refusal::Disabled(why));
            out.refused.push(w);
        }
    }

    /// Records the first failure, or a safety violation after it (a consequence).
    fn note_refusal(
        &mut self,
        index: usize,
        loc: &Located,
        summary: Option<NodeSummary>,
        refusal: Option<Refusal>,
    ) {
        if self.report.failure.is_none() {
            let f = self.failure(index, loc, summary, "", refusal);
            self.report.failure = Some(f);
        } else if let Some(Refusal::Failed { violations, .. }) = refusal {
            if !violations.is_empty() {
                self.report.consequences.push(Consequence {
                    index,
                    file: loc.file.clone(),
                    line: loc.line,
                    node: loc.event.node.to_string(),
                    event: loc.event.kind.to_string(),
                    violations,
                });
            }
        }
    }

    /// The failure at event `index`: `check` names it, or the refusal does.
    fn failure(
        &self,
        index: usize,
        loc: &Located,
        summary: Option<NodeSummary>,
        check: &str,
        refusal: Option<Refusal>,
    ) -> Failure {
        let ev = &loc.event;
        let (findings, violations, disabled) = match refusal {
            Some(Refusal::Failed {
                findings,
                violations,
            }) => (findings, violations, None),
            Some(Refusal::Disabled(why)) => (Vec::new(), Vec::new(), Some(why)),
            None => (Vec::new(), Vec::new(), None),
        };
        let check = match (check, violations.first()) {
            ("", Some(v)) => v.property.to_owned(),
            ("", None) if disabled.is_some() => "disabled".to_owned(),
            ("", None) => "step mismatch".to_owned(),
            (c, _) => c.to_owned(),
        };
        Failure {
            index,
            file: loc.file.clone(),
            line: loc.line,
            node: ev.node.to_string(),
            event: ev.kind.to_string(),
            check,
            enabled: enabled(summary, &self.net, ev.node),
            findings,
            violations,
            disabled,
            prefix_len: index + 1,
        }
    }

    /// Linearizability and liveness on the client history, when a frontier remains.
    fn finish(mut self, merged: &Merged) -> Report {
        self.report.replay_seconds = self.started.elapsed().as_secs_f64();
        if self.frontier.is_empty() {
            return self.report;
        }
        self.report.unacknowledged_at_end = self.net.held.values().map(|v| v.len()).sum();
        let lin_started = Instant::now();
        let history = ClientHistory::of(merged);
        let frontier = &self.frontier;
        self.report.linearizability = Some(history::check_linearizable(
            &history,
            |c, o| {
                frontier
                    .iter()
                    .any(|w| w.ghost.chosen_ops.contains(&(c, o)))
            },
            self.opts.lin_budget,
        ));
        self.report.liveness = history::check_liveness(merged, &history, self.opts.liveness);
        self.report.lin_seconds = lin_started.elapsed().as_secs_f64();
        self.report
    }
}
