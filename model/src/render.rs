//! Readable counterexamples: each step as the action taken, the messages it put on the
//! network, and the lines of state it changed.

use crate::model::Action;
use crate::state::CellState;

/// One step of a path, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepText {
    /// What happened (`Deliver n0→n1 Prepare{(1,n0), from 0}`, `Crash n2`, ...).
    pub action: String,
    /// Messages this step sent, as `src→dst Msg`.
    pub sent: Vec<String>,
    /// Lines of the state (one per node and client) that changed, as they are after the step.
    pub changed: Vec<String>,
}

fn state_lines(s: &CellState) -> Vec<String> {
    format!("{s:?}")
        .lines()
        .take(s.nodes.len() + s.clients.len())
        .map(str::to_string)
        .collect()
}

/// Explains the step from `before` to `after` taken by `action`.
pub fn explain(before: &CellState, action: &Action, after: &CellState) -> StepText {
    let old_msgs = before.network.envelopes();
    let mut old_left = old_msgs.clone();
    let mut sent = Vec::new();
    for env in after.network.envelopes() {
        if let Some(i) = old_left.iter().position(|e| *e == env) {
            old_left.swap_remove(i);
        } else {
            sent.push(format!("{env:?}"));
        }
    }
    let changed = state_lines(before)
        .into_iter()
        .zip(state_lines(after))
        .filter(|(a, b)| a != b)
        .map(|(_, b)| b)
        .collect();
    StepText {
        action: format!("{action:?}"),
        sent,
        changed,
    }
}

/// Explains every step of a path given as `(state, action taken from it)` pairs, the last
/// state with no action.
pub fn explain_path(steps: &[(CellState, Option<Action>)]) -> Vec<StepText> {
    steps
        .windows(2)
        .filter_map(|w| {
            let (before, action) = &w[0];
            let (after, _) = &w[1];
            action.as_ref().map(|a| explain(before, a, after))
        })
        .collect()
}
