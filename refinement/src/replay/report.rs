//! What replay reports: its options, the first failure, the consequences, the verdict.

use serde::Serialize;

use crate::history::{LinReport, LivenessBounds, LivenessReport};
use crate::spec::{properties, Finding, Violation};

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

/// The check named when the replay frontier reaches its cap (inconclusive, not a failure).
pub const FRONTIER_CAP: &str = "frontier cap";

impl Report {
    /// Whether the trace conforms: every event matched, every property held, the history
    /// is linearizable and bounded liveness held.
    pub fn conforms(&self) -> bool {
        self.failure.is_none()
            && self.matched == self.events
            && self.linearizability.as_ref().is_some_and(|l| l.holds())
            && self.liveness.as_ref().is_none_or(|l| l.holds())
    }

    /// Why the replay could not decide, if it could not and nothing failed before: the
    /// frontier cap was reached (the events so far have more explanations than the replay
    /// keeps), or the linearizability search ran out of budget. Not a verdict on the trace.
    pub fn inconclusive(&self) -> Option<String> {
        if let Some(f) = &self.failure {
            return (f.check == FRONTIER_CAP).then(|| {
                format!(
                    "{FRONTIER_CAP} reached at event {} ({}:{}): {}",
                    f.index,
                    f.file,
                    f.line,
                    f.disabled.clone().unwrap_or_default()
                )
            });
        }
        if self.liveness.as_ref().is_some_and(|l| !l.holds()) {
            return None;
        }
        let l = self.linearizability.as_ref()?;
        (l.verdict == "undecided").then(|| {
            format!(
                "linearizability undecided: {}",
                l.detail.clone().unwrap_or_default()
            )
        })
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
