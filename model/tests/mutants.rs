//! Every broken variant is caught, by the property we expect, on the smallest configuration
//! known to expose it (`Mutant::config`: the default, with a crash or a second election
//! where the bug needs one). Each run stops at the first violation.

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::{CellConfig, CellModel, Mutant};

fn check_mutant(m: Mutant, strategy: Strategy) -> Vec<&'static str> {
    let cfg = m.config();
    let opts = CheckOptions {
        strategy,
        threads: 1,
        symmetry: false,
    };
    let report = check::run(CellModel::new(cfg), &opts, |_| {}).expect("checker runs");
    assert!(
        report.stopped_early,
        "{m}: the search should stop at a violation"
    );
    report.violations()
}

fn assert_caught(m: Mutant) {
    let found = check_mutant(m, Strategy::Bfs);
    assert!(
        !found.is_empty(),
        "{m}: no property violated; expected one of {:?}",
        m.expected_violations()
    );
    assert!(
        found.iter().any(|f| m.expected_violations().contains(f)),
        "{m}: violated {found:?}, expected one of {:?}",
        m.expected_violations()
    );
}

#[test]
fn accept_lower_ballot_is_caught() {
    assert_caught(Mutant::AcceptLowerBallot);
}

#[test]
fn ignore_promised_values_is_caught() {
    assert_caught(Mutant::IgnorePromisedValues);
}

#[test]
fn commit_on_minority_is_caught() {
    assert_caught(Mutant::CommitOnMinority);
}

#[test]
fn promise_not_durable_is_caught() {
    assert_caught(Mutant::PromiseNotDurable);
}

#[test]
fn accepted_not_durable_is_caught() {
    assert_caught(Mutant::AcceptedNotDurable);
}

#[test]
fn ballot_not_unique_is_caught() {
    assert_caught(Mutant::BallotNotUnique);
}

#[test]
fn skip_prepare_is_caught() {
    assert_caught(Mutant::SkipPrepare);
}

#[test]
fn promise_omits_accepted_is_caught() {
    assert_caught(Mutant::PromiseOmitsAccepted);
}

#[test]
fn apply_out_of_order_is_caught() {
    assert_caught(Mutant::ApplyOutOfOrder);
}

#[test]
fn reply_before_commit_is_caught() {
    assert_caught(Mutant::ReplyBeforeCommit);
}

#[test]
fn stale_read_is_caught() {
    assert_caught(Mutant::StaleRead);
}

#[test]
fn catalogue_is_complete_and_named_uniquely() {
    let names: std::collections::BTreeSet<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names.len(), Mutant::ALL.len());
    assert!(Mutant::ALL.len() >= 8);
    for m in Mutant::ALL {
        assert_eq!(m.name().parse::<Mutant>(), Ok(m));
    }
    assert!("no-such-bug".parse::<Mutant>().is_err());
}

/// A counterexample is a real path: replaying its actions from the initial state reaches a
/// state that violates the property.
#[test]
fn counterexamples_replay_to_a_violating_state() {
    let cfg = CellConfig {
        mutant: Some(Mutant::ReplyBeforeCommit),
        ..CellConfig::default()
    };
    let model = CellModel::new(cfg);
    let report = check::run(model.clone(), &CheckOptions::default(), |_| {}).unwrap();
    let p = report
        .properties
        .iter()
        .find(|p| matches!(p.verdict, Verdict::Violated(_)))
        .expect("a violation");
    let Verdict::Violated(path) = &p.verdict else {
        unreachable!()
    };
    let last = path.last_state().clone();
    assert!(!physalia_model::properties::durability(&model.cfg, &last));
}
