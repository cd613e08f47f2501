//! Pins the work-arounds for stateright 0.31's measured pitfalls (see `check.rs`).

use std::collections::BTreeSet;

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::{CellConfig, CellModel, Mutant};
use stateright::{Expectation, Model};

/// reply-before-commit is violated three steps in (invoke, deliver the request, deliver the
/// premature reply). stateright's BFS alone reported a 6-step path here (discoveries are
/// overwritten within a block of states, `finish_when` notwithstanding); with the bounded
/// probes of `check::shortest_violation` the report is the 3-step path.
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
    walk_deterministically(CellConfig::default());
    walk_deterministically(CellConfig {
        reconfigs: 2,
        spares: 1,
        window: 1,
        changes: physalia_model::ChangeKinds::ALL,
        ..CellConfig::default()
    });
}

fn walk_deterministically(cfg: CellConfig) {
    let model = CellModel::new(cfg);
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
