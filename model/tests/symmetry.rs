//! Node-symmetry reduction: exact where `symmetry::is_exact` says so, and always able to
//! find the broken variants.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use physalia_model::check::{self, CheckOptions, Strategy};
use physalia_model::symmetry::{is_exact, rename, representative};
use physalia_model::{CellConfig, CellModel, CellState, Mutant};
use stateright::{Checker, Model, StateRecorder};

/// An exact canonical form: the least hash of `s` renamed by each permutation of the 3
/// nodes of the initial jury (a spare, `n3`, keeps its name: renamings never mix the initial
/// jury with the spares).
fn canonical(s: &CellState) -> u64 {
    const PERMS: [[u8; 4]; 6] = [
        [0, 1, 2, 3],
        [0, 2, 1, 3],
        [1, 0, 2, 3],
        [1, 2, 0, 3],
        [2, 0, 1, 3],
        [2, 1, 0, 3],
    ];
    PERMS
        .iter()
        .map(|p| {
            let mut h = DefaultHasher::new();
            rename(s, &p[..s.nodes.len()]).hash(&mut h);
            h.finish()
        })
        .min()
        .unwrap()
}

fn classes(cfg: &CellConfig, symmetry: bool) -> (usize, HashSet<u64>) {
    let (recorder, states) = StateRecorder::new_with_accessor();
    let mut b = CellModel::new(cfg.clone()).checker().visitor(recorder);
    if symmetry {
        b = b.symmetry_fn(representative);
    }
    let _ = b.spawn_dfs().join();
    let states = states();
    let n = states.len();
    (n, states.iter().map(canonical).collect())
}

fn assert_exact(cfg: CellConfig) {
    assert!(is_exact(&cfg));
    let (full_n, full) = classes(&cfg, false);
    let (reduced_n, reduced) = classes(&cfg, true);
    assert!(
        reduced_n < full_n,
        "{reduced_n} vs {full_n}: nothing pruned"
    );
    assert_eq!(full, reduced, "the reduced search missed a class of states");
}

#[test]
fn exact_with_a_failover() {
    assert_exact(CellConfig {
        max_crashes: 0,
        max_slots: 1,
        ..CellConfig::default()
    });
}

#[test]
fn exact_with_a_crash() {
    assert_exact(CellConfig {
        max_elections: 0,
        max_crashes: 1,
        ..CellConfig::default()
    });
}

#[test]
fn exact_with_a_move_and_a_failover() {
    assert_exact(CellConfig {
        reconfigs: 1,
        spares: 1,
        clients: 0,
        window: 1,
        ..CellConfig::default()
    });
}

#[test]
fn exact_with_a_move_and_back() {
    assert_exact(CellConfig {
        reconfigs: 2,
        spares: 1,
        clients: 1,
        window: 1,
        max_elections: 0,
        changes: physalia_model::ChangeKinds::ALL,
        ..CellConfig::default()
    });
}

#[test]
fn not_claimed_exact_where_ballots_can_tie_or_clients_retry() {
    let two = CellConfig {
        max_elections: 2,
        ..CellConfig::default()
    };
    assert!(!is_exact(&two));
    let unordered = CellConfig {
        network: physalia_model::NetworkKind::Unordered,
        ..CellConfig::default()
    };
    assert!(!is_exact(&unordered));
}

#[test]
fn renaming_is_a_bijection_and_representatives_are_stable() {
    walk_renamings(CellConfig::default(), [2, 0, 1], [1, 2, 0]);
    let reconfig = CellConfig {
        reconfigs: 2,
        spares: 2,
        changes: physalia_model::ChangeKinds::ALL,
        window: 1,
        ..CellConfig::default()
    };
    walk_renamings(reconfig, [2, 0, 1, 4, 3], [1, 2, 0, 4, 3]);
}

fn walk_renamings<const N: usize>(cfg: CellConfig, perm: [u8; N], inverse: [u8; N]) {
    let model = CellModel::new(cfg);
    let mut state = model.init_state();
    for step in 0..30 {
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

/// Symmetry prunes only states equivalent to visited ones, so DFS with it still finds bugs.
/// (These are the mutants DFS reaches within seconds; the others need BFS's breadth, and
/// BFS ignores symmetry.)
#[test]
fn symmetry_still_finds_mutants() {
    for m in [
        Mutant::AcceptLowerBallot,
        Mutant::CommitOnMinority,
        Mutant::PromiseNotDurable,
        Mutant::SkipPrepare,
        Mutant::ApplyOutOfOrder,
        Mutant::ReplyBeforeCommit,
        Mutant::StaleRead,
    ] {
        let opts = CheckOptions {
            strategy: Strategy::Dfs,
            threads: 1,
            symmetry: true,
        };
        let report = check::run(CellModel::new(m.config()), &opts, |_| {}).unwrap();
        assert!(
            !report.violations().is_empty(),
            "{m} not caught with symmetry"
        );
    }
}
