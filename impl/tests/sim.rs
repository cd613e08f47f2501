//! The simulator: deterministic, fault-injecting, and its online checks hold on the clean
//! build (and do fire when a property is broken).

use physalia_impl::core::{Cell, Durable, Input, Options};
use physalia_impl::sim::check::Checker;
use physalia_impl::sim::{run, Faults, SimConfig, Violation};
use physalia_traces::*;
use proptest::prelude::*;

fn config(seed: u64, steps: u64) -> SimConfig {
    SimConfig {
        seed,
        steps,
        gst: 3_000,
        ..SimConfig::default()
    }
}

#[test]
fn a_clean_run_commits_and_checks_hold() {
    let cfg = SimConfig {
        faults: Faults::none(),
        ..config(1, 5_000)
    };
    let r = run(&cfg);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.committed_ops > 50, "{r:?}");
    assert_eq!((r.dropped, r.crashes), (0, 0));
}

#[test]
fn after_gst_the_cell_makes_progress() {
    for seed in 0..3 {
        let r = run(&config(seed, 15_000));
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        let after = r
            .history
            .iter()
            .filter(|h| {
                h.returned
                    .as_ref()
                    .is_some_and(|(t, res)| *t > r.gst && !res.never_applied())
            })
            .count();
        assert!(after > 0, "seed {seed}: nothing committed after GST: {r:?}");
        // Bounded liveness: a commit soon after GST, every later request answered within
        // B2 = 1 s of simulated time, except those still in flight at the end.
        let l = r.liveness();
        assert!(
            l.first_commit.is_some_and(|t| t < 1_000),
            "seed {seed}: {l:?}"
        );
        assert!(
            l.max_latency.is_some_and(|t| t < 1_000),
            "seed {seed}: {l:?}"
        );
        assert!(l.unanswered <= 3, "seed {seed}: {l:?}");
        // Every node is up again, and every member of the final jury caught up to within
        // the pipeline window (a node outside it is not taught).
        assert!(r.commits.iter().all(Option::is_some), "seed {seed}: {r:?}");
        let commits: Vec<u64> = r
            .jury
            .iter()
            .map(|n| r.commits[n.0 as usize].expect("up after GST"))
            .collect();
        let (lo, hi) = (commits.iter().min().unwrap(), commits.iter().max().unwrap());
        assert!(hi - lo <= 3, "seed {seed}: commit indexes {commits:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// No online invariant fails in the clean build, whatever the seed.
    #[test]
    fn no_invariant_fails_under_faults(seed in any::<u64>()) {
        let r = run(&config(seed, 6_000));
        prop_assert!(r.violations.is_empty(), "seed {}: {:?}", seed, r.violations);
    }
}

/// A single-node cell that committed `txn` at slot 0.
fn committed(txn: Txn) -> Cell {
    let (mut c, _) = Cell::new(NodeId(0), Config::with_nodes(1), Options::default(), 0);
    let out = c.step(
        1,
        Input::Timeout {
            timer: TimeoutKind::Election,
        },
    );
    c.step(
        2,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    let out = c.step(
        3,
        Input::Request {
            client: ClientId(1),
            op: 1,
            txn,
        },
    );
    c.step(
        4,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    assert_eq!(c.commit(), 1);
    c
}

#[test]
fn a_commit_index_going_down_within_a_run_is_flagged() {
    let mut checker = Checker::default();
    let a = committed(Txn::Get { key: "a".into() });
    let at = a.commit();
    checker.after_step(&a, at, 1);
    assert!(checker.violations.is_empty(), "{:?}", checker.violations);
    checker.after_step(&a, at + 2, 2);
    assert!(
        matches!(
            checker.violations.as_slice(),
            [Violation::CommitRegressed { was, now, .. }] if *was == at + 2 && *now == at
        ),
        "{:?}",
        checker.violations
    );
    assert_eq!(
        checker.violations[0].property().name,
        "commit never regresses"
    );
}

#[test]
fn the_checks_fire_on_broken_properties() {
    let mut checker = Checker::default();
    let a = committed(Txn::Get { key: "a".into() });
    let b = committed(Txn::Get { key: "b".into() });
    checker.after_step(&a, 0, 1);
    checker.after_step(&b, 0, 2);
    checker.on_ack(ClientId(9), 1, &[], &[], 3);
    let put = committed(Txn::Put {
        key: "k".into(),
        value: Value::Bool(true),
    });
    let mut fresh = Checker::default();
    fresh.after_step(&put, 0, 1);
    fresh.on_local_read(NodeId(0), 1, &[("k".into(), Some(Value::Bool(true)))], 2);
    fresh.on_local_read(NodeId(0), 0, &[("k".into(), None)], 2);
    assert!(fresh.violations.is_empty(), "{:?}", fresh.violations);
    fresh.on_local_read(NodeId(0), 1, &[("k".into(), None)], 3);
    fresh.on_read_answer(ClientId(1), 5, 4);
    checker.violations.extend(fresh.violations);
    let high = Durable {
        promised: Ballot {
            round: 2,
            node: NodeId(0),
        },
        ..Durable::default()
    };
    checker.on_storage(NodeId(0), &high);
    checker.on_storage(NodeId(0), &Durable::default());
    // A node whose disk was lost: a Commit is fine, a Promise is a vote from nothing (once
    // reported), and once it is a member again its votes are its own.
    let env = |msg| physalia_traces::Envelope {
        id: physalia_traces::MsgId {
            node: NodeId(3),
            inc: 1,
            seq: 0,
        },
        to: NodeId(0),
        lc: 1,
        msg,
    };
    let promise = env(physalia_traces::Msg::Promise {
        ballot: Ballot::ZERO,
        accepted: vec![],
    });
    let commit = env(physalia_traces::Msg::Commit {
        ballot: Ballot::ZERO,
        up_to: 0,
    });
    checker.on_lost_state_sends(NodeId(3), false, std::slice::from_ref(&commit), 4);
    checker.on_lost_state_sends(NodeId(3), true, std::slice::from_ref(&promise), 4);
    checker.on_lost_state_sends(NodeId(3), false, &[commit, promise.clone()], 5);
    checker.on_lost_state_sends(NodeId(3), false, &[promise], 6);
    let names: Vec<&str> = checker
        .violations
        .iter()
        .map(|v| match v {
            Violation::Agreement { .. } => "agreement",
            Violation::Durability { .. } => "durability",
            Violation::PromiseMonotonic { .. } => "promise",
            Violation::ConsistentPrefix { .. } => "stale read",
            Violation::MonotonicReads { .. } => "read went back",
            Violation::VoteFromLostState { .. } => "vote from lost state",
            Violation::CommitRegressed { .. } => "commit went back",
        })
        .collect();
    assert_eq!(
        names,
        [
            "agreement",
            "durability",
            "stale read",
            "read went back",
            "promise",
            "vote from lost state"
        ]
    );
}
