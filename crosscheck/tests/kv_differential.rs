//! Differential test: the specification [`KvSpec`] and the implementation's state machine
//! (`physalia_impl::kv::StateMachine`) give the same result for every transaction of random
//! sequences over a small key set with values of every type.

use num_bigint::BigInt;
use physalia_impl::kv::{Applied, Limits, StateMachine};
use physalia_refinement::kv::KvSpec;
use physalia_traces::{ClientId, Command, Condition, Config, Key, Txn, TxnResult, Value, WriteOp};
use proptest::prelude::*;

/// A bound small enough that increments reach it: `IntegerTooLarge` is exercised.
const MAX_INT_BITS: u64 = 8;

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(Key::from)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-100i64..100).prop_map(|i| Value::Int(BigInt::from(i))),
        prop_oneof![Just(b"x".to_vec()), Just(b"y".to_vec()), Just(vec![0xff])]
            .prop_map(Value::Bytes),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn by() -> impl Strategy<Value = BigInt> {
    (-120i64..120).prop_map(BigInt::from)
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| WriteOp::Put { key, value }),
        key().prop_map(|key| WriteOp::Delete { key }),
        (key(), by()).prop_map(|(key, by)| WriteOp::Incr { key, by }),
        (key(), prop::collection::vec(any::<u8>(), 0..3000))
            .prop_map(|(key, bytes)| WriteOp::Append { key, bytes }),
    ]
}

fn txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        key().prop_map(|key| Txn::Get { key }),
        (key(), value()).prop_map(|(key, value)| Txn::Put { key, value }),
        (key(), proptest::option::of(value()), value()).prop_map(|(key, expected, new)| Txn::Cas {
            key,
            expected,
            new
        }),
        (key(), by()).prop_map(|(key, by)| Txn::Incr { key, by }),
        (
            proptest::collection::vec(
                (key(), proptest::option::of(value()))
                    .prop_map(|(key, expected)| Condition { key, expected }),
                0..3
            ),
            proptest::collection::vec(key(), 0..3),
            proptest::collection::vec(write_op(), 1..4),
        )
            .prop_map(|(conditions, reads, writes)| Txn::Txn {
                conditions,
                reads,
                writes
            }),
    ]
}

#[test]
fn the_spec_bounds_appends_as_the_implementation_does() {
    assert_eq!(
        Limits::default().max_bytes_len,
        physalia_refinement::kv::MAX_BYTES_LEN
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn spec_and_state_machine_agree(txns in proptest::collection::vec(txn(), 1..40)) {
        let limits = Limits { max_int_bits: MAX_INT_BITS, ..Limits::default() };
        let mut sm = StateMachine::new(Config::with_nodes(3), limits, 3);
        let mut spec = KvSpec::with_max_int_bits(MAX_INT_BITS);
        for (i, txn) in txns.iter().enumerate() {
            let command = Command::Op { client: ClientId(1), op: i as u64 + 1, txn: txn.clone() };
            let Applied::Result { result: impl_result, .. } = sm.apply(&command) else {
                panic!("step {i}: the state machine gave no result for a fresh operation");
            };
            if impl_result.never_applied() {
                // Refused by validation: treated as never applied, the spec is not stepped.
                let rejected = matches!(impl_result, TxnResult::Rejected { .. });
                prop_assert!(rejected, "step {}: {:?}", i, impl_result);
                continue;
            }
            let spec_result = spec.apply(txn);
            prop_assert_eq!(&spec_result, &impl_result, "step {}: {:?}", i, txn);
            let impl_state: Vec<(&Key, &Value)> = sm.entries().collect();
            let spec_state: Vec<(&Key, &Value)> = spec.entries().collect();
            prop_assert_eq!(spec_state, impl_state, "state after step {}: {:?}", i, txn);
        }
    }
}
