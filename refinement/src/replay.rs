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

use std::collections::BTreeMap;
use std::time::Instant;

use physalia_traces::{Kind, Merged, NodeId, Role, TimeoutKind};
use serde::Serialize;

use crate::history::{self, ClientHistory, LinReport, LivenessBounds, LivenessReport};
use crate::spec::{properties, CellFacts, Finding, Network, Refusal, SentMsg, Violation, World};

/// The mapping from trace event kinds to specification actions, as `(kind, actions,
/// condition)`. `[X]` is an unlogged action inserted only when the event is otherwise
/// disabled; `·` is sequential composition; `*` is zero or more.
pub const MAPPING: &[(&str, &str, &str)] = &[
    ("start", "[Crash(n, k)] · Restart(n)", "Crash only if n is running; k ∈ 0..=unacknowledged batches"),
    ("deliver Prepare", "[Duplicate(m)] · Deliver(m) · (Promise | Nack)", "Duplicate only if m has no copy in flight"),
    ("deliver Promise", "[Duplicate(m)] · Deliver(m) · [BecomeLeader · Propose*(re-proposals, no-ops)]", "BecomeLeader when a quorum promised (own vote once durable)"),
    ("deliver Nack", "[Duplicate(m)] · Deliver(m) · [StepDown]", ""),
    ("deliver Accept", "[Duplicate(m)] · Deliver(m) · Accept* · (Accepted | Nack)", "one Accept per proposal of the batch"),
    ("deliver Accepted", "[Duplicate(m)] · Deliver(m) · AdvanceCommit · Apply* · Reply* · Commit · Propose*(queued)", ""),
    ("deliver Commit", "[Duplicate(m)] · Deliver(m) · Learn · Apply* · [Accepted(catch-up request)]", ""),
    ("deliver Request/Redirect/Reply", "[Duplicate(m)] · Deliver(m) · (Request as below | ignored)", "client-bound messages are ignored by nodes"),
    ("timeout election", "Timeout(election) · Campaign · Prepare*", "a leader ignores it"),
    ("timeout heartbeat", "Timeout(heartbeat) · Accept*(catch-up) · Commit*", "a non-leader ignores it"),
    ("timeout retry", "Timeout(retry) · Prepare*", "a non-candidate ignores it"),
    ("request", "Request · (Redirect | Reply(rejected/overloaded/repeat) | Invoke · (Propose | queue))", ""),
    ("local_read", "LocalRead (stutter: no state change, nothing sent)", ""),
    ("persisted", "Persisted(up_to) · SelfVote* · [BecomeLeader] · AdvanceCommit · Apply* · Reply* · Propose*(queued)", ""),
];

/// Replay options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most states in the frontier.
    pub frontier_cap: usize,
    /// Most unlogged actions inserted before one event.
    pub max_silent: usize,
    /// Search budget of the linearizability check (search nodes).
    pub lin_budget: u64,
    /// Bounded liveness after `GST` (checked when the header states a `GST`).
    pub liveness: LivenessBounds,
    /// After the first failure, replay goes on from what the failing node logged and
    /// records up to this many later safety violations (the failure's consequences); 0
    /// stops at the first failure.
    pub consequences: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            frontier_cap: 64,
            max_silent: 2,
            lin_budget: 5_000_000,
            liveness: LivenessBounds::default(),
            consequences: 10,
        }
    }
}

/// Where and why replay stopped.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Index of the event in the merged trace (0-based).
    pub index: usize,
    /// The file it came from.
    pub file: String,
    /// Its line there.
    pub line: usize,
    /// The node that stepped.
    pub node: String,
    /// The event's kind, briefly.
    pub event: String,
    /// Which check failed: `step mismatch`, a safety property's name, `disabled`, or
    /// `frontier cap`.
    pub check: String,
    /// The specification actions enabled at that node before the event.
    pub enabled: Vec<String>,
    /// Field by field: what the specification allows and what the node logged.
    pub findings: Vec<Finding>,
    /// Safety properties the logged step breaks.
    pub violations: Vec<Violation>,
    /// Why the event was disabled, if it was.
    pub disabled: Option<String>,
    /// Length of the shortest failing prefix of the merged trace (every shorter prefix
    /// conforms).
    pub prefix_len: usize,
}

/// A safety violation found after the first failure.
#[derive(Clone, Debug, Serialize)]
pub struct Consequence {
    /// Index of the event in the merged trace.
    pub index: usize,
    /// The file it came from.
    pub file: String,
    /// Its line there.
    pub line: usize,
    /// The node that stepped.
    pub node: String,
    /// The event, briefly.
    pub event: String,
    /// The properties broken there.
    pub violations: Vec<Violation>,
}

/// The whole result of checking one trace.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The cell.
    pub cell: String,
    /// Events in the merged trace.
    pub events: usize,
    /// Events matched before replay stopped.
    pub matched: usize,
    /// The largest frontier seen.
    pub frontier_max: usize,
    /// Unlogged crashes inserted.
    pub silent_crashes: usize,
    /// Unlogged duplications inserted.
    pub silent_duplicates: usize,
    /// Why replay stopped early, if it did.
    pub failure: Option<Failure>,
    /// Linearizability of the client history (checked when every event matched).
    pub linearizability: Option<LinReport>,
    /// Bounded liveness after `GST` (when the header states one and every event matched).
    pub liveness: Option<LivenessReport>,
    /// Safety violations found after the first failure, replaying on from what each failing
    /// node logged: what the divergence led to.
    pub consequences: Vec<Consequence>,
    /// Held messages never released by the end of the trace (their write was not
    /// acknowledged, or the sender crashed first): noted, not a failure.
    pub unacknowledged_at_end: usize,
    /// Seconds spent replaying.
    pub replay_seconds: f64,
    /// Seconds spent on linearizability.
    pub lin_seconds: f64,
}

impl Report {
    /// Whether the trace conforms: every event matched, every property held, the history
    /// is linearizable and bounded liveness held.
    pub fn conforms(&self) -> bool {
        self.failure.is_none()
            && self.matched == self.events
            && self.linearizability.as_ref().is_some_and(|l| l.holds())
            && self.liveness.as_ref().is_none_or(|l| l.holds())
    }

    /// The first check that failed, if any: `step mismatch`, a property name,
    /// `linearizable`, `liveness`.
    pub fn failed_check(&self) -> Option<String> {
        if let Some(f) = &self.failure {
            return Some(f.check.clone());
        }
        if self.linearizability.as_ref().is_some_and(|l| !l.holds()) {
            return Some(properties::LINEARIZABLE.to_owned());
        }
        if self.liveness.as_ref().is_some_and(|l| !l.holds()) {
            return Some("liveness".to_owned());
        }
        None
    }
}

/// Replays `merged` and checks linearizability and liveness.
pub fn conform(merged: &Merged, opts: &Options) -> Report {
    let started = Instant::now();
    let facts = CellFacts::from_header(&merged.header);
    let mut net = Network::default();
    let mut frontier = vec![World::initial(&facts)];
    let mut report = Report {
        cell: merged.header.cell.clone(),
        events: merged.events.len(),
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
    };
    for (index, loc) in merged.events.iter().enumerate() {
        let ev = &loc.event;
        let summary = frontier.first().and_then(|w| NodeSummary::of(w, ev.node));
        let fail = |check: &str, net: &Network, refusal: Option<Refusal>| {
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
                event: describe(&ev.kind),
                check,
                enabled: enabled(summary, net, ev.node),
                findings,
                violations,
                disabled,
                prefix_len: index + 1,
            }
        };
        // A deliver of a message with no copy in flight: the network duplicated it.
        if let Kind::Deliver { id, .. } = &ev.kind {
            if let Some(m) = net.msgs.get_mut(id) {
                if m.copies == 0 && opts.max_silent > 0 {
                    m.copies += 1;
                    report.silent_duplicates += 1;
                }
            }
        }
        let mut next: Vec<World> = Vec::new();
        let mut refused: Vec<World> = Vec::new();
        let mut refusal: Option<Refusal> = None;
        let mut infos = None;
        for mut w in std::mem::take(&mut frontier) {
            match w.step(&facts, &net, ev) {
                Ok(info) => {
                    infos.get_or_insert(info);
                    push_unique(&mut next, w);
                }
                Err(Refusal::Disabled(why))
                    if matches!(ev.kind, Kind::Start { .. }) && opts.max_silent > 0 =>
                {
                    // The node is running: it crashed first, with any prefix of its
                    // unacknowledged batches on disk.
                    let pending = w.nodes.get(&ev.node).map_or(0, |n| n.pending.len());
                    let mut any = false;
                    for k in 0..=pending {
                        let mut c = w.clone();
                        let mut violations = Vec::new();
                        crash(&mut c, &facts, ev.node, k, &mut violations);
                        if !violations.is_empty() {
                            refusal.get_or_insert(Refusal::Failed {
                                findings: Vec::new(),
                                violations,
                            });
                            continue;
                        }
                        match c.step(&facts, &net, ev) {
                            Ok(info) => {
                                any = true;
                                infos.get_or_insert(info);
                                push_unique(&mut next, c);
                            }
                            Err(r) => {
                                keep_worst(&mut refusal, r);
                                refused.push(c);
                            }
                        }
                    }
                    if any {
                        report.silent_crashes += 1;
                    } else if refusal.is_none() {
                        refusal = Some(Refusal::Disabled(why));
                        refused.push(w);
                    }
                }
                Err(r) => {
                    keep_worst(&mut refusal, r);
                    refused.push(w);
                }
            }
        }
        if next.is_empty() {
            if report.failure.is_none() {
                report.failure = Some(fail("", &net, refusal));
            } else if let Some(Refusal::Failed { violations, .. }) = refusal {
                if !violations.is_empty() {
                    report.consequences.push(Consequence {
                        index,
                        file: loc.file.clone(),
                        line: loc.line,
                        node: ev.node.to_string(),
                        event: describe(&ev.kind),
                        violations,
                    });
                }
            }
            // Go on from what the node logged, to see what the divergence leads to.
            let Some(mut w) = refused.into_iter().next() else {
                break;
            };
            if report.consequences.len() >= opts.consequences {
                frontier = vec![w];
                break;
            }
            w.resync(ev);
            next.push(w);
        }
        report.frontier_max = report.frontier_max.max(next.len());
        if next.len() > opts.frontier_cap {
            if report.failure.is_some() {
                break; // replaying on for consequences: stop, keep the first failure
            }
            report.failure = Some(fail(
                "frontier cap",
                &net,
                Some(Refusal::Disabled(format!(
                    "{} specification states explain the trace so far, above the cap of {}",
                    next.len(),
                    opts.frontier_cap
                ))),
            ));
            break;
        }
        let issued = next
            .first()
            .and_then(|w| w.nodes.get(&ev.node))
            .map_or(0, |n| n.issued);
        record(&mut net, ev, infos.unwrap_or_default(), issued);
        frontier = next;
        if report.failure.is_none() {
            report.matched = index + 1;
        }
    }
    report.replay_seconds = started.elapsed().as_secs_f64();
    if !frontier.is_empty() {
        report.unacknowledged_at_end = net.held.values().map(|v| v.len()).sum();
        let lin_started = Instant::now();
        let history = ClientHistory::of(merged);
        report.linearizability = Some(history::check_linearizable(
            &history,
            |c, o| {
                frontier
                    .iter()
                    .any(|w| w.ghost.chosen_ops.contains(&(c, o)))
            },
            opts.lin_budget,
        ));
        report.liveness = history::check_liveness(merged, &history, opts.liveness);
        report.lin_seconds = lin_started.elapsed().as_secs_f64();
    }
    report
}

/// What [`enabled`] needs of a node: taken before each step, since a failed step leaves
/// the state half-changed.
#[derive(Clone, Copy, Debug)]
pub struct NodeSummary {
    /// Whether it runs.
    pub up: bool,
    /// Its role.
    pub role: Role,
    /// Its last unacknowledged batch.
    pub last_pending: Option<physalia_traces::PersistId>,
}

impl NodeSummary {
    fn of(w: &World, n: NodeId) -> Option<NodeSummary> {
        w.nodes.get(&n).map(|node| NodeSummary {
            up: node.up,
            role: node.role,
            last_pending: node.pending.last().map(|(id, _)| *id),
        })
    }
}

/// Keeps the most informative refusal: a failed step over a disabled one.
fn keep_worst(slot: &mut Option<Refusal>, r: Refusal) {
    match (&slot, &r) {
        (None, _) | (Some(Refusal::Disabled(_)), Refusal::Failed { .. }) => *slot = Some(r),
        _ => {}
    }
}

fn push_unique(v: &mut Vec<World>, w: World) {
    if !v.contains(&w) {
        v.push(w);
    }
}

/// The unlogged crash of node `n` with the first `k` unacknowledged batches on disk.
fn crash(w: &mut World, facts: &CellFacts, n: NodeId, k: usize, out: &mut Vec<Violation>) {
    let Some(node) = w.nodes.get_mut(&n) else {
        return;
    };
    let pending = std::mem::take(&mut node.pending);
    for (_, writes) in pending.into_iter().take(k) {
        properties::make_durable(&mut node.storage, &mut w.ghost, facts, n, &writes, out);
    }
    let Some(node) = w.nodes.get_mut(&n) else {
        return;
    };
    node.up = false;
    node.role = Role::Follower;
    node.campaign = None;
    node.lead = None;
}

/// Records the event's sends and receive in the network.
fn record(
    net: &mut Network,
    ev: &physalia_traces::TraceEvent,
    info: crate::spec::StepInfo,
    issued: physalia_traces::PersistId,
) {
    let reports: BTreeMap<_, _> = info.reports.into_iter().collect();
    for id in &ev.released {
        net.released.insert(*id);
        if let Some(m) = net.msgs.get_mut(id) {
            m.lc = ev.lc; // it leaves with the releasing step's clock
        }
        if let Some(list) = net.held.get_mut(&(ev.node, ev.inc)) {
            list.retain(|(_, m)| m != id);
        }
    }
    for s in &ev.sent {
        if let Some(p) = s.after_persist {
            net.held
                .entry((ev.node, ev.inc))
                .or_default()
                .push((p, s.id));
        }
        net.msgs.insert(
            s.id,
            SentMsg {
                from: ev.node,
                to: s.to,
                lc: ev.lc,
                after_persist: s.after_persist,
                msg: s.msg.clone(),
                copies: 1,
                reports: reports.get(&s.id).cloned().unwrap_or_default(),
            },
        );
    }
    match &ev.kind {
        Kind::Deliver { id, .. } => {
            if let Some(m) = net.msgs.get_mut(id) {
                m.copies = m.copies.saturating_sub(1);
            }
        }
        Kind::Persisted { up_to } => {
            // An acknowledgement beyond the last batch issued covers only what was issued.
            let e = net.persisted.entry((ev.node, ev.inc)).or_insert(0);
            *e = (*e).max((*up_to).min(issued));
        }
        _ => {}
    }
}

/// The specification actions enabled at node `n`.
pub fn enabled(node: Option<NodeSummary>, net: &Network, n: NodeId) -> Vec<String> {
    let Some(node) = node else {
        return vec![format!("none: {n} is not a member")];
    };
    if !node.up {
        return vec![format!("Restart({n}) (a `start` event)")];
    }
    let mut out = Vec::new();
    let mut inbox: Vec<String> = net
        .msgs
        .iter()
        .filter(|(_, m)| m.to == physalia_traces::Endpoint::Node(n) && m.copies > 0)
        .map(|(id, m)| format!("{} {id}", m.msg.name()))
        .collect();
    inbox.sort();
    let count = inbox.len();
    if count > 0 {
        inbox.truncate(6);
        out.push(format!(
            "Deliver one of {count} message(s) in flight to {n}: {}{}",
            inbox.join(", "),
            if count > 6 { ", …" } else { "" }
        ));
    }
    out.push(match node.role {
        Role::Leader => "Timeout(heartbeat)".into(),
        Role::Candidate => "Timeout(election), Timeout(retry)".into(),
        Role::Follower => "Timeout(election)".into(),
    });
    out.push("Request(any client operation), LocalRead".into());
    if let Some(last) = node.last_pending {
        out.push(format!("Persisted(up_to ≤ {last})"));
    }
    out.push(format!("Crash({n}) then Restart({n})"));
    out
}

/// The event's kind, briefly.
pub fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Start { promised, log_len } => {
            format!("start (promised {promised}, {log_len} log entries)")
        }
        Kind::Deliver { id, msg, .. } => format!("deliver {} {id}", msg.name()),
        Kind::Timeout { timer } => format!(
            "timeout {}",
            match timer {
                TimeoutKind::Election => "election",
                TimeoutKind::Heartbeat => "heartbeat",
                TimeoutKind::Retry => "retry",
            }
        ),
        Kind::Request { client, op, .. } => format!("request {client}#{op}"),
        Kind::LocalRead { client, .. } => format!("local_read {client}"),
        Kind::Persisted { up_to } => format!("persisted up_to {up_to}"),
    }
}

/// Why a set of trace files cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory holds no `.jsonl` file.
    #[error("{0}: no .jsonl trace file in this directory")]
    EmptyDir(String),
    /// A file is not a valid trace.
    #[error(transparent)]
    Read(#[from] physalia_traces::ReadError),
    /// The files do not merge into one causal order.
    #[error(transparent)]
    Merge(#[from] physalia_traces::MergeError),
}

/// Reads and merges trace files; a directory stands for every `.jsonl` file in it.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Merged, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<std::path::PathBuf> = std::fs::read_dir(p)
                .map_err(|source| LoadError::Io {
                    path: p.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                return Err(LoadError::EmptyDir(p.display().to_string()));
            }
            for f in inside {
                files.push(physalia_traces::read_path(&f)?);
            }
        } else {
            files.push(physalia_traces::read_path(p)?);
        }
    }
    Ok(physalia_traces::merge(files)?)
}
