//! The state machine: every operation fully specified, apply total and deterministic,
//! exactly once per (client, op), invalid operations refused before the log.

use num_bigint::BigInt;
use physalia_impl::kv::{validate, Applied, Limits, LocalRead, Rejection, StateMachine};
use physalia_traces::*;
use proptest::prelude::*;

fn sm() -> StateMachine {
    StateMachine::new(Config::with_nodes(3), Limits::default(), 3)
}

fn op(client: u64, op: u64, txn: Txn) -> Command {
    Command::Op {
        client: ClientId(client),
        op,
        txn,
    }
}

fn result(a: Applied) -> TxnResult {
    match a {
        Applied::Result { result, .. } => result,
        Applied::Nothing => panic!("expected a result"),
    }
}

fn int(i: i64) -> Value {
    Value::Int(BigInt::from(i))
}

fn bytes(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[test]
fn increments_count_absent_as_zero_and_refuse_non_integers() {
    let mut m = sm();
    let incr = |k: &str, by: i64| Txn::Incr {
        key: k.into(),
        by: by.into(),
    };
    assert_eq!(
        result(m.apply(&op(1, 1, incr("n", 5)))),
        TxnResult::Incr { value: 5.into() }
    );
    m.apply(&op(
        1,
        2,
        Txn::Put {
            key: "s".into(),
            value: bytes("x"),
        },
    ));
    let r = result(m.apply(&op(1, 3, incr("s", 1))));
    assert_eq!(
        r,
        TxnResult::Error {
            error: ApplyError::NotAnInteger { key: "s".into() }
        }
    );
    assert_eq!(m.get(&"s".into()), Some(&bytes("x")));
}

#[test]
fn increments_beyond_the_integer_bound_are_a_defined_error() {
    let limits = Limits {
        max_int_bits: 8,
        ..Limits::default()
    };
    let mut m = StateMachine::new(Config::with_nodes(1), limits, 3);
    let incr = Txn::Incr {
        key: "n".into(),
        by: 200.into(),
    };
    assert_eq!(
        result(m.apply(&op(1, 1, incr.clone()))),
        TxnResult::Incr { value: 200.into() }
    );
    let r = result(m.apply(&op(1, 2, incr)));
    assert!(matches!(
        r,
        TxnResult::Error {
            error: ApplyError::IntegerTooLarge { .. }
        }
    ));
    assert_eq!(m.get(&"n".into()), Some(&int(200)));
}

/// A store holding `a = 1` and `s = "x"`, and a transaction builder: conditions
/// `a == expected` and `z` absent, reads `a` and `z`, then `writes`.
fn compound_setup() -> (StateMachine, impl Fn(Vec<WriteOp>, Option<Value>) -> Txn) {
    let mut m = sm();
    m.apply(&op(
        1,
        1,
        Txn::Put {
            key: "a".into(),
            value: int(1),
        },
    ));
    m.apply(&op(
        1,
        2,
        Txn::Put {
            key: "s".into(),
            value: bytes("x"),
        },
    ));
    let txn = |writes: Vec<WriteOp>, expected: Option<Value>| Txn::Txn {
        conditions: vec![
            Condition {
                key: "a".into(),
                expected,
            },
            Condition {
                key: "z".into(),
                expected: None,
            },
        ],
        reads: vec!["a".into(), "z".into()],
        writes,
    };
    (m, txn)
}

#[test]
fn compound_transaction_with_failing_conditions_only_reads() {
    let (mut m, txn) = compound_setup();
    let r = result(m.apply(&op(
        1,
        3,
        txn(vec![WriteOp::Delete { key: "a".into() }], Some(int(2))),
    )));
    assert_eq!(
        r,
        TxnResult::Txn {
            ok: false,
            reads: vec![("a".into(), Some(int(1))), ("z".into(), None)]
        }
    );
    assert_eq!(m.get(&"a".into()), Some(&int(1)));
}

#[test]
fn compound_transaction_is_all_or_nothing() {
    let (mut m, txn) = compound_setup();
    let writes = vec![
        WriteOp::Put {
            key: "b".into(),
            value: int(7),
        },
        WriteOp::Incr {
            key: "s".into(),
            by: 1.into(),
        },
    ];
    let r = result(m.apply(&op(1, 4, txn(writes, Some(int(1))))));
    assert!(matches!(r, TxnResult::Error { .. }));
    assert_eq!(
        m.get(&"b".into()),
        None,
        "the put before the failing increment is undone"
    );
}

#[test]
fn compound_transaction_applies_writes_in_order() {
    let (mut m, txn) = compound_setup();
    let writes = vec![
        WriteOp::Put {
            key: "b".into(),
            value: int(7),
        },
        WriteOp::Incr {
            key: "b".into(),
            by: 3.into(),
        },
        WriteOp::Delete { key: "a".into() },
    ];
    let r = result(m.apply(&op(1, 5, txn(writes, Some(int(1))))));
    assert_eq!(
        r,
        TxnResult::Txn {
            ok: true,
            reads: vec![("a".into(), Some(int(1))), ("z".into(), None)]
        }
    );
    assert_eq!(m.get(&"b".into()), Some(&int(10)));
    assert_eq!(m.get(&"a".into()), None);
}

#[test]
fn cas_compares_with_absent_and_present() {
    let mut m = sm();
    let cas = |exp: Option<Value>, new: Value| Txn::Cas {
        key: "k".into(),
        expected: exp,
        new,
    };
    let r = result(m.apply(&op(1, 1, cas(None, int(1)))));
    assert_eq!(
        r,
        TxnResult::Cas {
            ok: true,
            current: None
        }
    );
    let r = result(m.apply(&op(1, 2, cas(None, int(2)))));
    assert_eq!(
        r,
        TxnResult::Cas {
            ok: false,
            current: Some(int(1))
        }
    );
    let r = result(m.apply(&op(1, 3, cas(Some(int(1)), Value::Bool(true)))));
    assert_eq!(
        r,
        TxnResult::Cas {
            ok: true,
            current: Some(int(1))
        }
    );
}

#[test]
fn each_operation_takes_effect_once() {
    let mut m = sm();
    let incr = op(
        1,
        1,
        Txn::Incr {
            key: "n".into(),
            by: 1.into(),
        },
    );
    let first = m.apply(&incr);
    assert_eq!(
        m.apply(&incr),
        first,
        "a repeat is answered with the first result"
    );
    assert_eq!(m.get(&"n".into()), Some(&int(1)));
    m.apply(&op(1, 2, Txn::Get { key: "n".into() }));
    assert_eq!(
        m.apply(&incr),
        Applied::Nothing,
        "an older operation is not answered"
    );
    assert_eq!(m.get(&"n".into()), Some(&int(1)));
    assert_eq!(m.applied(), 4);
}

#[test]
fn validation_fails_closed() {
    let l = Limits::default();
    let bad_key = Txn::Get { key: "".into() };
    assert!(matches!(
        validate(&bad_key, &l),
        Err(Rejection::BadKey { .. })
    ));
    let big = Txn::Put {
        key: "k".into(),
        value: Value::Bytes(vec![0; 5000]),
    };
    assert!(matches!(
        validate(&big, &l),
        Err(Rejection::BytesTooLong { .. })
    ));
    let huge = Txn::Incr {
        key: "k".into(),
        by: BigInt::from(1) << 2000,
    };
    assert!(matches!(
        validate(&huge, &l),
        Err(Rejection::IntegerTooLarge { .. })
    ));
    let empty = Txn::Txn {
        conditions: vec![],
        reads: vec![],
        writes: vec![],
    };
    assert!(matches!(
        validate(&empty, &l),
        Err(Rejection::BadSize { .. })
    ));
    // An invalid command found in the log anyway is answered, without effect.
    let mut m = sm();
    let r = result(m.apply(&op(1, 1, big)));
    assert!(r.never_applied());
    assert_eq!(m.entries().count(), 0);
}

#[test]
fn local_reads_are_monotonic_per_session() {
    let mut m = sm();
    m.apply(&op(
        1,
        1,
        Txn::Put {
            key: "k".into(),
            value: int(1),
        },
    ));
    let LocalRead::Values { applied, values } = m.read_local(&["k".into()], 0) else {
        panic!("served");
    };
    assert_eq!((applied, values), (1, vec![("k".into(), Some(int(1)))]));
    assert_eq!(
        m.read_local(&["k".into()], 2),
        LocalRead::Behind { applied: 1 }
    );
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        Just(Key::from("a")),
        Just(Key::from("b")),
        Just(Key::from("")),
        "[a-c]{1,3}".prop_map(Key)
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(int),
        Just(Value::Int(BigInt::from(1) << 1030)),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::Bytes),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| WriteOp::Put { key, value }),
        key().prop_map(|key| WriteOp::Delete { key }),
        (key(), any::<i64>()).prop_map(|(key, by)| WriteOp::Incr { key, by: by.into() }),
    ]
}

fn txn() -> impl Strategy<Value = Txn> {
    let cond =
        (key(), prop::option::of(value())).prop_map(|(key, expected)| Condition { key, expected });
    prop_oneof![
        key().prop_map(|key| Txn::Get { key }),
        (key(), value()).prop_map(|(key, value)| Txn::Put { key, value }),
        (key(), prop::option::of(value()), value()).prop_map(|(key, expected, new)| Txn::Cas {
            key,
            expected,
            new
        }),
        (key(), any::<i64>()).prop_map(|(key, by)| Txn::Incr { key, by: by.into() }),
        (
            prop::collection::vec(cond, 0..3),
            prop::collection::vec(key(), 0..3),
            prop::collection::vec(write_op(), 0..4)
        )
            .prop_map(|(conditions, reads, writes)| Txn::Txn {
                conditions,
                reads,
                writes
            }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        1 => Just(Command::Noop),
        6 => (0u64..3, 0u64..6, txn()).prop_map(|(c, s, t)| op(c, s, t)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Apply is total (no input panics) and deterministic (two replicas applying the same
    /// commands agree on every result and on the final state).
    #[test]
    fn apply_is_total_and_deterministic(cmds in prop::collection::vec(command(), 0..40)) {
        let (mut a, mut b) = (sm(), sm());
        for c in &cmds {
            prop_assert_eq!(a.apply(c), b.apply(c));
        }
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.applied(), cmds.len() as u64);
    }

    /// A valid operation never comes back `Rejected`; integers stay within their bound.
    #[test]
    fn valid_operations_are_never_rejected(cmds in prop::collection::vec(command(), 0..40)) {
        let mut m = sm();
        for (i, c) in cmds.iter().enumerate() {
            // Fresh sequence numbers, so that no result is a repeat's first result.
            let c = match c {
                Command::Op { client, txn, .. } => op(client.0, i as u64, txn.clone()),
                Command::Noop => Command::Noop,
            };
            let c = &c;
            let applied = m.apply(c);
            if let (Command::Op { txn, .. }, Applied::Result { result, .. }) = (c, &applied) {
                if validate(txn, m.limits()).is_ok() {
                    let rejected = matches!(result, TxnResult::Rejected { .. });
                    prop_assert!(!rejected, "{:?} rejected", txn);
                }
            }
        }
        for (_, v) in m.entries() {
            if let Value::Int(i) = v {
                prop_assert!(i.bits() <= m.limits().max_int_bits);
            }
        }
    }
}
