//! Node-symmetry reduction: it prunes states, and it still finds the broken variants.

use physalia_model::check::{self, CheckOptions, Strategy};
use physalia_model::symmetry::{rename, representative};
use physalia_model::{CellConfig, CellModel, Mutant};
use stateright::Model;

fn small() -> CellConfig {
    CellConfig {
        max_crashes: 0,
        ..CellConfig::default()
    }
}

fn dfs(cfg: CellConfig, symmetry: bool) -> check::CheckReport {
    let opts = CheckOptions {
        strategy: Strategy::Dfs,
        threads: 1,
        symmetry,
    };
    check::run(CellModel::new(cfg), &opts, |_| {}).unwrap()
}

#[test]
fn renaming_is_a_bijection_and_representatives_are_stable() {
    let model = CellModel::new(CellConfig::default());
    let mut state = model.init_state();
    for step in 0..30 {
        let perm = [2, 0, 1];
        let inverse = [1, 2, 0];
        assert_eq!(rename(&rename(&state, &perm), &inverse), state);
        let rep = representative(&state);
        assert_eq!(representative(&rep), rep, "representative is idempotent");
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let Some(next) = actions
            .into_iter()
            .cycle()
            .skip(step * 5)
            .take(64)
            .find_map(|a| model.next_state(&state, a))
        else {
            break;
        };
        state = next;
    }
}

#[test]
fn symmetry_prunes_states_without_changing_the_verdict() {
    let full = dfs(small(), false);
    let reduced = dfs(small(), true);
    assert!(!full.failed() && !reduced.failed());
    assert!(
        reduced.stats.unique < full.stats.unique,
        "{} vs {}",
        reduced.stats.unique,
        full.stats.unique
    );
}

#[test]
fn symmetry_still_finds_every_mutant() {
    for m in Mutant::ALL {
        let cfg = CellConfig {
            mutant: Some(m),
            ..CellConfig::default()
        };
        let report = dfs(cfg, true);
        assert!(
            !report.violations().is_empty(),
            "{m} not caught with symmetry"
        );
    }
}
