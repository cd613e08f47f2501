//! The linearizability checker on hand-built histories (each a known anomaly or a known
//! subtle-but-correct case) and on random histories built around a sequential execution.

use num_bigint::BigInt;
use physalia_refinement::kv::KvSpec;
use physalia_refinement::linearizability::{
    check, check_with, HistoryError, Operation, Options, Verdict,
};
use physalia_traces::{ClientId, Condition, Key, Txn, TxnResult, Value, WriteOp};
use proptest::prelude::*;

const BUDGET: u64 = 1_000_000;

fn k(s: &str) -> Key {
    Key::from(s)
}
fn int(i: i64) -> Value {
    Value::Int(BigInt::from(i))
}
fn get(key: &str) -> Txn {
    Txn::Get { key: k(key) }
}
fn put(key: &str, v: i64) -> Txn {
    Txn::Put {
        key: k(key),
        value: int(v),
    }
}
fn read(v: Option<i64>) -> Option<TxnResult> {
    Some(TxnResult::Get { value: v.map(int) })
}

/// A completed operation of client `c` (its op number is its position, set by `history`).
fn done(c: u64, txn: Txn, invoke: u64, ret: u64, result: Option<TxnResult>) -> Operation {
    Operation {
        client: ClientId(c),
        op: 0,
        txn,
        invoke,
        ret: Some(ret),
        result,
    }
}

/// Numbers each operation so that `(client, op)` is unique.
fn history(mut ops: Vec<Operation>) -> Vec<Operation> {
    for (i, o) in ops.iter_mut().enumerate() {
        o.op = i as u64;
    }
    ops
}

/// Asserts `order` is a witness: real time respected, and replaying it through the spec
/// gives every recorded result; every completed, applied operation appears exactly once.
fn assert_witness(ops: &[Operation], order: &[usize]) {
    let mut pos = vec![None; ops.len()];
    for (p, &i) in order.iter().enumerate() {
        assert!(pos[i].is_none(), "#{i} twice in {order:?}");
        pos[i] = Some(p);
    }
    for (i, o) in ops.iter().enumerate() {
        let applied = o.result.as_ref().is_some_and(|r| !r.never_applied());
        if applied {
            assert!(pos[i].is_some(), "completed #{i} missing from {order:?}");
        }
    }
    for a in 0..ops.len() {
        for b in 0..ops.len() {
            if let (Some(pa), Some(pb), Some(ret)) = (pos[a], pos[b], ops[a].ret) {
                if ops[a].result.is_some() && ret < ops[b].invoke {
                    assert!(pa < pb, "#{a} returned before #{b} was invoked: {order:?}");
                }
            }
        }
    }
    let mut spec = KvSpec::new();
    for &i in order {
        let got = spec.apply(&ops[i].txn);
        if let Some(r) = &ops[i].result {
            assert_eq!(&got, r, "#{i} replayed in {order:?}");
        }
    }
}

fn linearizable(ops: &[Operation]) -> Vec<usize> {
    match check(ops, BUDGET).expect("well-formed history") {
        Verdict::Linearizable { order } => {
            assert_witness(ops, &order);
            order
        }
        other => panic!("expected linearizable, got {other:?}"),
    }
}

fn violation(ops: &[Operation]) -> String {
    match check(ops, BUDGET).expect("well-formed history") {
        Verdict::NotLinearizable(v) => v.to_string(),
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn read_after_completed_write_sees_it() {
    let ops = history(vec![
        done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
        done(2, get("a"), 20, 30, read(Some(1))),
    ]);
    assert_eq!(linearizable(&ops), vec![0, 1]);
}

#[test]
fn stale_read_after_a_write_completed_is_a_violation() {
    let ops = history(vec![
        done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
        done(2, get("a"), 20, 30, read(None)),
    ]);
    let Verdict::NotLinearizable(v) = check(&ops, BUDGET).unwrap() else {
        panic!("stale read accepted");
    };
    assert_eq!(v.keys, vec![k("a")]);
    assert_eq!(v.prefix, vec![0]);
    assert_eq!(v.state.get(&k("a")), Some(&int(1)));
    assert_eq!(v.pending.len(), 1);
    assert_eq!(v.pending[0].index, 1);
    assert!(v.pending[0].blocking);
    assert_eq!(
        v.pending[0].spec_result,
        TxnResult::Get {
            value: Some(int(1))
        }
    );
    let text = v.to_string();
    assert!(text.contains("#1 c2 op 1"), "{text}");
    assert!(text.contains("[20, 30]"), "{text}");
    assert!(text.contains("the spec gives"), "{text}");
}

#[test]
fn read_concurrent_with_a_write_may_see_either_value() {
    for seen in [None, Some(1)] {
        let ops = history(vec![
            done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
            done(2, get("a"), 5, 15, read(seen)),
        ]);
        linearizable(&ops);
    }
}

#[test]
fn equal_stamps_are_concurrent_but_one_later_is_not() {
    let at = |invoke| {
        history(vec![
            done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
            done(2, get("a"), invoke, 20, read(None)),
        ])
    };
    linearizable(&at(10));
    violation(&at(11));
}

#[test]
fn lost_update_is_a_violation() {
    // Two increments that both saw 0: one update was lost.
    let incr = |c, invoke, ret| {
        done(
            c,
            Txn::Incr {
                key: k("n"),
                by: BigInt::from(1),
            },
            invoke,
            ret,
            Some(TxnResult::Incr {
                value: BigInt::from(1),
            }),
        )
    };
    let text = violation(&history(vec![incr(1, 0, 10), incr(2, 5, 15)]));
    assert!(text.contains("keys {n}"), "{text}");
    // Overwrite lost: a later read sees the first of two sequential writes.
    violation(&history(vec![
        done(1, put("x", 1), 0, 10, Some(TxnResult::Put)),
        done(2, put("x", 2), 20, 30, Some(TxnResult::Put)),
        done(3, get("x"), 40, 50, read(Some(1))),
    ]));
}

#[test]
fn two_concurrent_cas_cannot_both_succeed() {
    let cas = |c, new, invoke, ret| {
        done(
            c,
            Txn::Cas {
                key: k("lock"),
                expected: None,
                new: int(new),
            },
            invoke,
            ret,
            Some(TxnResult::Cas {
                ok: true,
                current: None,
            }),
        )
    };
    violation(&history(vec![cas(1, 1, 0, 10), cas(2, 2, 5, 15)]));
    // One of them failing, seeing the other's value, is fine.
    let mut ops = history(vec![cas(1, 1, 0, 10), cas(2, 2, 5, 15)]);
    ops[1].result = Some(TxnResult::Cas {
        ok: false,
        current: Some(int(1)),
    });
    assert_eq!(linearizable(&ops), vec![0, 1]);
}

#[test]
fn unknown_outcome_write_explains_a_later_read() {
    let ops = history(vec![
        Operation {
            client: ClientId(1),
            op: 0,
            txn: put("a", 7),
            invoke: 0,
            ret: Some(5),
            result: None,
        },
        done(2, get("a"), 100, 110, read(Some(7))),
    ]);
    assert_eq!(linearizable(&ops), vec![0, 1]);
}

#[test]
fn unknown_outcome_write_may_take_effect_after_the_client_gave_up() {
    // "unknown" at 5 is no bound: the write may still be applied later, between two reads.
    let ops = history(vec![
        Operation {
            client: ClientId(1),
            op: 0,
            txn: put("a", 7),
            invoke: 0,
            ret: Some(5),
            result: None,
        },
        done(2, get("a"), 10, 20, read(None)),
        done(2, get("a"), 30, 40, read(Some(7))),
    ]);
    assert_eq!(linearizable(&ops), vec![1, 0, 2]);
}

#[test]
fn never_answered_operation_that_nothing_observed_need_not_take_effect() {
    let ops = history(vec![
        Operation {
            client: ClientId(1),
            op: 0,
            txn: put("a", 7),
            invoke: 0,
            ret: None,
            result: None,
        },
        done(2, get("a"), 100, 110, read(None)),
    ]);
    assert_eq!(linearizable(&ops), vec![1]);
}

#[test]
fn unknown_outcome_cannot_be_invoked_after_the_read_it_would_explain() {
    let ops = history(vec![
        done(2, get("a"), 0, 10, read(Some(7))),
        Operation {
            client: ClientId(1),
            op: 0,
            txn: put("a", 7),
            invoke: 20,
            ret: None,
            result: None,
        },
    ]);
    violation(&ops);
}

#[test]
fn rejected_and_overloaded_operations_never_take_effect() {
    let refused = |result| done(1, put("a", 1), 0, 10, Some(result));
    for result in [
        TxnResult::Rejected {
            reason: "too big".to_owned(),
        },
        TxnResult::Overloaded,
    ] {
        let seen_absent = history(vec![
            refused(result.clone()),
            done(2, get("a"), 20, 30, read(None)),
        ]);
        assert_eq!(linearizable(&seen_absent), vec![1]);
        let seen_written = history(vec![
            refused(result),
            done(2, get("a"), 20, 30, read(Some(1))),
        ]);
        violation(&seen_written);
    }
}

#[test]
fn apply_errors_must_match_the_spec() {
    let incr = |result| {
        history(vec![
            done(
                1,
                Txn::Put {
                    key: k("a"),
                    value: Value::Bool(true),
                },
                0,
                10,
                Some(TxnResult::Put),
            ),
            done(
                2,
                Txn::Incr {
                    key: k("a"),
                    by: BigInt::from(1),
                },
                20,
                30,
                Some(result),
            ),
        ])
    };
    linearizable(&incr(TxnResult::Error {
        error: physalia_traces::ApplyError::NotAnInteger { key: k("a") },
    }));
    violation(&incr(TxnResult::Incr {
        value: BigInt::from(1),
    }));
}

#[test]
fn multi_key_transaction_joins_partitions_and_must_be_atomic() {
    // c1 writes a and b in one transaction; c2 reads both concurrently and sees only a.
    let write_both = Txn::Txn {
        conditions: vec![],
        reads: vec![],
        writes: vec![
            WriteOp::Put {
                key: k("a"),
                value: int(1),
            },
            WriteOp::Put {
                key: k("b"),
                value: int(1),
            },
        ],
    };
    let read_both = Txn::Txn {
        conditions: vec![Condition {
            key: k("c"),
            expected: None,
        }],
        reads: vec![k("a"), k("b")],
        writes: vec![],
    };
    let reads = |b| {
        Some(TxnResult::Txn {
            ok: true,
            reads: vec![(k("a"), Some(int(1))), (k("b"), b)],
        })
    };
    let torn = history(vec![
        done(
            1,
            write_both.clone(),
            0,
            10,
            Some(TxnResult::Txn {
                ok: true,
                reads: vec![],
            }),
        ),
        done(2, read_both.clone(), 5, 15, reads(None)),
        done(3, put("c", 1), 20, 30, Some(TxnResult::Put)),
    ]);
    let text = violation(&torn);
    assert!(text.contains("keys {a, b, c}"), "{text}");
    let whole = history(vec![
        done(
            1,
            write_both,
            0,
            10,
            Some(TxnResult::Txn {
                ok: true,
                reads: vec![],
            }),
        ),
        done(2, read_both, 5, 15, reads(Some(int(1)))),
    ]);
    linearizable(&whole);
}

#[test]
fn independent_keys_are_checked_separately_and_merged_in_real_time() {
    let ops = history(vec![
        done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
        done(2, put("b", 1), 20, 30, Some(TxnResult::Put)),
        done(3, get("a"), 40, 50, read(Some(1))),
        done(4, get("b"), 35, 45, read(Some(1))),
    ]);
    let (verdict, stats) = check_with(&ops, &Options::with_budget(BUDGET)).unwrap();
    assert_eq!(stats.partitions, 2);
    let Verdict::Linearizable { order } = verdict else {
        panic!("{verdict:?}");
    };
    assert_witness(&ops, &order);
}

#[test]
fn budget_exhaustion_is_undecided() {
    let ops = history(vec![
        done(1, put("a", 1), 0, 10, Some(TxnResult::Put)),
        done(2, get("a"), 20, 30, read(Some(1))),
    ]);
    assert_eq!(check(&ops, 1).unwrap(), Verdict::Undecided { explored: 1 });
}

#[test]
fn malformed_histories_are_refused_with_the_operation_named() {
    let mut no_ret = done(1, get("a"), 0, 10, read(None));
    no_ret.ret = None;
    let err = check(&[no_ret], BUDGET).unwrap_err();
    assert!(matches!(
        err,
        HistoryError::ResultWithoutReturn { index: 0, .. }
    ));
    assert!(err.to_string().contains("#0 (c1 op 0)"), "{err}");

    let backwards = done(1, get("a"), 10, 5, read(None));
    let err = check(&[backwards], BUDGET).unwrap_err();
    assert!(err
        .to_string()
        .contains("returns at 5, before its invocation at 10"));

    let twice = vec![
        done(1, get("a"), 0, 5, read(None)),
        done(1, get("a"), 10, 15, read(None)),
    ];
    let err = check(&twice, BUDGET).unwrap_err();
    assert_eq!(
        err,
        HistoryError::Duplicate {
            first: 0,
            second: 1,
            client: ClientId(1),
            op: 0
        }
    );
}

// ---- Random histories around a sequential execution ----

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..4).prop_map(|i| Value::Int(BigInt::from(i))),
        Just(Value::Bytes(b"x".to_vec())),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")].prop_map(Key::from)
}

fn txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        3 => key().prop_map(|key| Txn::Get { key }),
        3 => (key(), value()).prop_map(|(key, value)| Txn::Put { key, value }),
        2 => (key(), proptest::option::of(value()), value())
            .prop_map(|(key, expected, new)| Txn::Cas { key, expected, new }),
        2 => key().prop_map(|key| Txn::Incr { key, by: BigInt::from(1) }),
        1 => (key(), key(), value()).prop_map(|(c, r, v)| Txn::Txn {
            conditions: vec![Condition { key: c, expected: None }],
            reads: vec![r.clone()],
            writes: vec![WriteOp::Put { key: r, value: v }],
        }),
    ]
}

/// One operation of the generated execution: its transaction, how far its interval
/// stretches before and after its linearization point, and whether its outcome is
/// unknown (then: whether it took effect at all, and whether it was ever answered).
type Step = (Txn, u64, u64, Option<(bool, bool)>);

fn step() -> impl Strategy<Value = Step> {
    (
        txn(),
        0u64..30,
        0u64..30,
        prop_oneof![8 => Just(None), 1 => any::<(bool, bool)>().prop_map(Some)],
    )
}

/// The history of a sequential execution whose `i`th operation takes effect at time
/// `10 i + 30`, each interval stretched around that point.
fn around_sequential(steps: &[Step]) -> Vec<Operation> {
    let mut spec = KvSpec::new();
    steps
        .iter()
        .enumerate()
        .map(|(i, (txn, before, after, unknown))| {
            let point = 10 * i as u64 + 30;
            let result = match unknown {
                None => Some(spec.apply(txn)),
                Some((took_effect, _)) => {
                    if *took_effect {
                        spec.apply(txn);
                    }
                    None
                }
            };
            let answered = unknown.is_none_or(|(_, answered)| answered);
            Operation {
                client: ClientId(i as u64 % 4),
                op: i as u64,
                txn: txn.clone(),
                invoke: point - before,
                ret: answered.then_some(point + after),
                result,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn histories_around_a_sequential_execution_are_linearizable(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let ops = around_sequential(&steps);
        for partition_by_key in [true, false] {
            let options = Options { partition_by_key, ..Options::with_budget(BUDGET) };
            let (verdict, _) = check_with(&ops, &options).unwrap();
            let Verdict::Linearizable { order } = verdict else {
                return Err(TestCaseError::fail(format!("{verdict:?}")));
            };
            assert_witness(&ops, &order);
        }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught(
        steps in proptest::collection::vec(step(), 1..40),
        last in key(),
        pick in any::<proptest::sample::Index>(),
    ) {
        let mut steps = steps;
        steps.push((Txn::Get { key: last }, 5, 5, None));
        let mut ops = around_sequential(&steps);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(ops[i].result, Some(TxnResult::Get { .. })))
            .collect();
        let altered = reads[pick.index(reads.len())];
        ops[altered].result = Some(TxnResult::Get {
            value: Some(Value::Bytes(b"never written".to_vec())),
        });
        for partition_by_key in [true, false] {
            let options = Options { partition_by_key, ..Options::with_budget(BUDGET) };
            let (verdict, _) = check_with(&ops, &options).unwrap();
            let Verdict::NotLinearizable(v) = verdict else {
                return Err(TestCaseError::fail(format!("{verdict:?}")));
            };
            prop_assert!(v.pending.iter().any(|p| p.index == altered), "{}", v);
        }
    }
}
