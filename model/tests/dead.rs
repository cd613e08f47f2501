//! Removing dead messages loses no behaviour: on small configurations, the states reached
//! with collection on are exactly the states reached without it, once their dead messages
//! are removed.

use std::collections::HashSet;

use physalia_model::{dead, CellConfig, CellModel, CellState, NetworkKind};
use stateright::{Checker, Model, StateRecorder};

fn reachable(model: CellModel) -> Vec<CellState> {
    let (recorder, states) = StateRecorder::new_with_accessor();
    let _ = model.checker().visitor(recorder).spawn_bfs().join();
    states()
}

fn assert_exact(cfg: CellConfig) {
    let with = CellModel::new(cfg.clone());
    let may_crash = cfg.max_crashes;
    let mut without = CellModel::new(cfg.clone());
    without.collect_dead = false;
    let collected: HashSet<CellState> = reachable(with).into_iter().collect();
    let full = reachable(without);
    let projected: HashSet<CellState> = full
        .iter()
        .map(|s| {
            let mut s = s.clone();
            let crashes_left = s.crashes < may_crash || cfg.reconfigs > 0;
            dead::collect(&cfg, &mut s, crashes_left);
            s
        })
        .collect();
    assert!(
        collected.len() < full.len(),
        "collection should prune something"
    );
    assert_eq!(collected.len(), projected.len());
    assert!(
        collected == projected,
        "collection changed the reachable states"
    );
}

#[test]
fn collection_is_exact_with_a_failover() {
    assert_exact(CellConfig {
        max_crashes: 0,
        max_slots: 1,
        ..CellConfig::default()
    });
}

#[test]
fn collection_is_exact_with_a_crash() {
    assert_exact(CellConfig {
        max_elections: 0,
        max_crashes: 1,
        ..CellConfig::default()
    });
}

#[test]
fn collection_is_exact_without_a_bootstrap_leader() {
    assert_exact(CellConfig {
        max_crashes: 0,
        max_slots: 1,
        clients: 1,
        bootstrap_leader: false,
        network: NetworkKind::Duplicating,
        ..CellConfig::default()
    });
}

#[test]
fn collection_is_exact_with_a_move_and_a_failover() {
    assert_exact(CellConfig {
        reconfigs: 1,
        spares: 1,
        clients: 0,
        window: 1,
        ..CellConfig::default()
    });
}

#[test]
fn collection_is_exact_with_a_move_and_back() {
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
fn collection_is_exact_with_a_move_in_a_pipeline() {
    // α = 2: the spare's future copy never votes below slot 2, so every `Accept` to it is
    // dead; no crash, so neither is any `Commit` to it.
    assert_exact(CellConfig {
        reconfigs: 1,
        spares: 1,
        clients: 1,
        max_elections: 0,
        max_slots: 3,
        ..CellConfig::default()
    });
}

#[test]
fn collection_is_exact_with_a_crash_across_a_move() {
    assert_exact(CellConfig {
        reconfigs: 1,
        spares: 1,
        clients: 1,
        window: 1,
        max_elections: 0,
        max_crashes: 1,
        ..CellConfig::default()
    });
}
