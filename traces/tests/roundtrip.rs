//! Property tests: every event survives writing and reading unchanged.

mod common;

use num_bigint::BigInt;
use physalia_traces::*;
use proptest::prelude::*;

fn key() -> impl Strategy<Value = Key> {
    "[a-z]{1,4}".prop_map(Key)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
        any::<i128>().prop_map(|i| Value::Int(BigInt::from(i) * BigInt::from(i))),
        any::<i64>().prop_map(|i| Value::Int(BigInt::from(i))),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| WriteOp::Put { key, value }),
        key().prop_map(|key| WriteOp::Delete { key }),
        (key(), any::<i64>()).prop_map(|(key, by)| WriteOp::Incr {
            key,
            by: BigInt::from(by)
        }),
        (key(), prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(key, bytes)| WriteOp::Append { key, bytes }),
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
        (
            prop::collection::vec(cond, 0..3),
            prop::collection::vec(key(), 0..3),
            prop::collection::vec(write_op(), 0..3)
        )
            .prop_map(|(conditions, reads, writes)| Txn::Txn {
                conditions,
                reads,
                writes
            }),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (0u64..1000, 0u32..7).prop_map(|(round, n)| Ballot {
        round,
        node: NodeId(n),
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Noop),
        (any::<u64>(), any::<u64>(), txn()).prop_map(|(c, op, txn)| Command::Op {
            client: ClientId(c),
            op,
            txn
        }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u64>(), ballot(), command()).prop_map(|(slot, ballot, command)| Entry {
        slot,
        ballot,
        command,
    })
}

fn result() -> impl Strategy<Value = TxnResult> {
    prop_oneof![
        prop::option::of(value()).prop_map(|value| TxnResult::Get { value }),
        Just(TxnResult::Put),
        (any::<bool>(), prop::option::of(value()))
            .prop_map(|(ok, current)| TxnResult::Cas { ok, current }),
        key().prop_map(|key| TxnResult::Error {
            error: ApplyError::NotAnInteger { key }
        }),
        Just(TxnResult::Overloaded),
    ]
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        (ballot(), any::<u64>()).prop_map(|(ballot, from)| Msg::Prepare { ballot, from }),
        (ballot(), prop::collection::vec(entry(), 0..3))
            .prop_map(|(ballot, accepted)| Msg::Promise { ballot, accepted }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Msg::Nack { ballot, promised }),
        (
            ballot(),
            prop::collection::vec((any::<u64>(), command()), 0..3)
        )
            .prop_map(|(ballot, ps)| Msg::Accept {
                ballot,
                proposals: ps
                    .into_iter()
                    .map(|(slot, command)| Proposal { slot, command })
                    .collect()
            }),
        (
            ballot(),
            prop::collection::vec(any::<u64>(), 0..3),
            any::<u64>()
        )
            .prop_map(|(ballot, slots, commit)| Msg::Accepted {
                ballot,
                slots,
                commit
            }),
        (ballot(), any::<u64>()).prop_map(|(ballot, up_to)| Msg::Commit { ballot, up_to }),
        (any::<u64>(), prop::option::of(0u32..7)).prop_map(|(op, l)| Msg::Redirect {
            op,
            leader: l.map(NodeId)
        }),
        (any::<u64>(), result()).prop_map(|(op, result)| Msg::Reply { op, result }),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (
            ballot(),
            any::<u64>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(promised, log_len, learner, floor, base)| Kind::Start {
                promised,
                log_len,
                learner,
                floor,
                base,
            }),
        (0u32..7, any::<u64>(), any::<u64>(), msg()).prop_map(|(n, s, lc, msg)| {
            Kind::Input(Input::Deliver {
                id: common::id(n, 0, s),
                lc,
                msg,
            })
        }),
        Just(common::timeout()),
        (any::<u64>(), any::<u64>(), txn()).prop_map(|(c, op, txn)| Kind::Input(Input::Request {
            client: ClientId(c),
            op,
            txn
        })),
        any::<u64>().prop_map(|up_to| Kind::Input(Input::Persisted { up_to })),
    ]
}

fn event() -> impl Strategy<Value = TraceEvent> {
    (
        kind(),
        prop::collection::vec(msg(), 0..3),
        prop::collection::vec(entry(), 0..3),
        any::<u64>(),
        txn(),
        result(),
    )
        .prop_map(|(kind, msgs, entries, lc, txn, res)| {
            let mut ev = common::event(1, 2, 3, lc, kind);
            for (i, m) in msgs.into_iter().enumerate() {
                ev = common::send(ev, common::id(1, 2, i as u64), 2, m);
            }
            ev.persist = Some(Persist {
                id: 4,
                writes: entries
                    .iter()
                    .map(|e| DurableWrite::Accepted { entry: e.clone() })
                    .collect(),
            });
            ev.client = vec![
                ClientEvent::Invoke {
                    client: ClientId(9),
                    op: 1,
                    txn,
                },
                ClientEvent::Return {
                    client: ClientId(9),
                    op: 1,
                    result: ClientResult::Known(res),
                },
                ClientEvent::Return {
                    client: ClientId(9),
                    op: 2,
                    result: ClientResult::Unknown,
                },
            ];
            ev.state.accepted = entries;
            ev
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn events_round_trip(events in prop::collection::vec(event(), 0..4)) {
        let h = common::header();
        let text = common::text(&h, &events);
        let read = read_str("t.jsonl", &text).unwrap();
        prop_assert_eq!(read.header, h);
        let got: Vec<TraceEvent> = read.events.into_iter().map(|l| l.event).collect();
        prop_assert_eq!(got, events);
    }

    #[test]
    fn any_prefix_cut_mid_line_is_reported_as_truncated(ev in event(), cut in 1usize..40) {
        let text = common::text(&common::header(), std::slice::from_ref(&ev));
        let body_start = text.find('\n').unwrap() + 1;
        let end = text.len() - 1; // without the final newline
        let at = end.saturating_sub(cut).max(body_start + 1);
        let err = read_str("t.jsonl", &text[..at]).unwrap_err();
        prop_assert!(matches!(err, ReadError::Truncated { line: 2, .. }), "{}", err);
    }
}
