//! Pins the work-arounds for stateright 0.31's measured pitfalls (see `check.rs`).

use std::collections::BTreeSet;

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::{CellConfig, CellModel, Mutant};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Property};

/// A chain 0 → 1 → … → 20 with a shortcut 0 → 19 … no: two ways to reach a "bad" state, one
/// short (depth 2) and one long (depth 12), explored by BFS.
struct TwoRoutes;

impl Model for TwoRoutes {
    type State = (u8, u8); // (route, position)
    type Action = u8;
    fn init_states(&self) -> Vec<(u8, u8)> {
        vec![(0, 0)]
    }
    fn actions(&self, s: &(u8, u8), actions: &mut Vec<u8>) {
        if s.0 == 0 && s.1 == 0 {
            actions.extend([1, 2]);
        } else if s.1 < 12 {
            actions.push(0);
        }
    }
    fn next_state(&self, s: &(u8, u8), a: u8) -> Option<(u8, u8)> {
        Some(if a == 0 { (s.0, s.1 + 1) } else { (a, 1) })
    }
    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            // Bad at position 2 of route 2, and at every position >= 3 of route 1.
            Property::always("never bad", |_, s| {
                !((s.0 == 2 && s.1 == 2) || (s.0 == 1 && s.1 >= 3))
            }),
            Property::sometimes("far", |_, s| s.1 == 12),
        ]
    }
}

#[test]
fn bfs_stopping_at_first_failure_returns_the_shortest_counterexample() {
    let checker = TwoRoutes
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let path = checker.discovery("never bad").expect("found");
    assert_eq!(path.into_actions().len(), 2);
}

/// The same on the cell model: reply-before-commit is violated three steps in (invoke,
/// deliver the request, deliver the premature reply); BFS must report exactly that.
#[test]
fn cell_bfs_counterexample_is_shortest() {
    let cfg = CellConfig {
        mutant: Some(Mutant::ReplyBeforeCommit),
        ..CellConfig::default()
    };
    let report = check::run(CellModel::new(cfg), &CheckOptions::default(), |_| {}).unwrap();
    let lens: Vec<usize> = report
        .properties
        .iter()
        .filter_map(|p| match &p.verdict {
            Verdict::Violated(path) => Some(path.clone().into_actions().len()),
            _ => None,
        })
        .collect();
    assert_eq!(lens, vec![3]);
}

#[test]
fn bfs_with_symmetry_is_refused() {
    let opts = CheckOptions {
        strategy: Strategy::Bfs,
        threads: 1,
        symmetry: true,
    };
    let err = check::run(CellModel::new(CellConfig::default()), &opts, |_| {}).unwrap_err();
    assert!(err.contains("dfs"), "{err}");
}

#[test]
fn model_has_no_eventually_property() {
    let model = CellModel::new(CellConfig::default());
    assert!(model
        .properties()
        .iter()
        .all(|p| p.expectation != Expectation::Eventually));
    let names: BTreeSet<_> = model.properties().iter().map(|p| p.name).collect();
    assert_eq!(
        names.len(),
        model.properties().len(),
        "property names are unique"
    );
}

/// Counterexamples are stored as action indices, so `actions` must list the same actions in
/// the same order every time (stateright panics rebuilding a path otherwise).
#[test]
fn actions_are_deterministic_along_a_long_walk() {
    let model = CellModel::new(CellConfig::default());
    let mut state = model.init_state();
    for step in 0..40 {
        let mut a1 = Vec::new();
        let mut a2 = Vec::new();
        model.actions(&state, &mut a1);
        model.actions(&state, &mut a2);
        assert_eq!(a1, a2);
        // Walk along a pseudo-random enabled action.
        let next = a1
            .into_iter()
            .cycle()
            .skip(step * 7)
            .take(64)
            .find_map(|a| model.next_state(&state, a));
        match next {
            Some(s) => state = s,
            None => break,
        }
    }
}
