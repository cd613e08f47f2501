//! Every broken variant is caught, by the property we expect, on the smallest configuration
//! known to expose it (`Mutant::config`: the default, with a crash or a second election
//! where the bug needs one; a spare and the fewest jury changes for the reconfiguration
//! bugs). Each run stops at the first violation. One variant, `config-from-unchosen`, is
//! not a bug of this protocol: the test shows the model runs it, acting on unchosen
//! changes, and every property holds.

use physalia_model::check::{self, CheckOptions, Strategy, Verdict};
use physalia_model::jury;
use physalia_model::state::Status;
use physalia_model::{CellConfig, CellModel, Mutant};
use stateright::{Checker, Model, StateRecorder};

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
fn config_effective_early_is_caught() {
    assert_caught(Mutant::ConfigEffectiveEarly);
}

#[test]
fn concurrent_changes_is_caught() {
    assert_caught(Mutant::ConcurrentChanges);
}

#[test]
fn phase1_old_jury_is_caught() {
    assert_caught(Mutant::Phase1OldJury);
}

#[test]
fn stale_member_votes_is_caught() {
    assert_caught(Mutant::StaleMemberVotes);
}

#[test]
fn aba_rejoin_is_caught() {
    assert_caught(Mutant::AbaRejoin);
}

/// `config-from-unchosen` is not a bug of this protocol. A node acts on a jury inside its
/// pipeline window `[commit, commit + α)`, where the jury of every slot is a function of
/// slots below `commit`, which it knows are chosen: reading juries from accepted entries
/// changes nothing there. Outside the window a node reads a jury only to stop voting (a
/// liveness cost), to decide whom it may teach (teaching is not a vote) and to retire.
/// Retiring on an unchosen removal deletes the copy of a node that is still in the jury: its
/// votes stay cast, its promise stays binding (kept beside the forwarding pointer), and it
/// never promises or votes again for a slot of that membership, because a later copy is a
/// member only from the first slot of a chosen change that adds it back, proposed after the
/// node retired, so after every slot it voted for. That is an acceptor that stops for good,
/// which Paxos tolerates (liveness, not safety). (TLA+'s `mutant-config-from-unchosen` also
/// drops the pipeline window, so a leader proposes where its jury comes from unchosen
/// entries: that is a bug, the window's.) The model shows both halves: it reaches a state
/// where a node retired although its removal was never chosen, and the exhaustive search at
/// these bounds finds every property holding.
#[test]
fn config_from_unchosen_is_not_a_bug() {
    let m = Mutant::ConfigFromUnchosen;
    assert!(m.expected_violations().is_empty());
    let cfg = m.config();
    let model = CellModel::new(cfg.clone());
    let (recorder, states) = StateRecorder::new_with_accessor();
    let report = model.clone().checker().visitor(recorder).spawn_bfs().join();
    for p in model.properties() {
        if p.expectation == stateright::Expectation::Always {
            assert!(report.discovery(p.name).is_none(), "{} violated", p.name);
        }
    }
    let acted = states().iter().any(|s| {
        let chosen = jury::chosen(&cfg, s);
        s.nodes.iter().enumerate().any(|(x, n)| match n.status {
            // Retired at `left`, but the chosen log keeps it in the jury of that slot.
            Status::Retired { left } => chosen
                .juries
                .get(left as usize)
                .copied()
                .flatten()
                .is_some_and(|j| j.contains(x as u8)),
            _ => false,
        })
    });
    assert!(acted, "no node ever retired on an unchosen removal");
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
