//! No input makes the core panic: arbitrary messages from peers (any ballot, slot, batch),
//! timers, requests and acknowledgements, in any order. The core's own invariant
//! assertions (`debug_assert!` after every step) run throughout.

use physalia_impl::core::{Cell, Input, Options};
use physalia_traces::*;
use proptest::prelude::*;

/// Mostly `(1,n0)`, the ballot n0 first stands with, so that leader paths are reached.
fn ballot() -> impl Strategy<Value = Ballot> {
    let any = (0u64..4, 0u32..3).prop_map(|(round, n)| Ballot {
        round,
        node: NodeId(n),
    });
    prop_oneof![
        2 => Just(Ballot { round: 1, node: NodeId(0) }),
        1 => any,
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Noop),
        (0u64..2, 0u64..3).prop_map(|(c, op)| Command::Op {
            client: ClientId(c),
            op,
            txn: Txn::Incr {
                key: "k".into(),
                by: 1.into()
            }
        }),
    ]
}

fn msg() -> impl Strategy<Value = Msg> {
    let slot = 0u64..6;
    prop_oneof![
        (ballot(), slot.clone()).prop_map(|(ballot, from)| Msg::Prepare { ballot, from }),
        (
            ballot(),
            prop::collection::vec((slot.clone(), ballot(), command()), 0..3)
        )
            .prop_map(|(ballot, es)| Msg::Promise {
                ballot,
                accepted: es
                    .into_iter()
                    .map(|(slot, ballot, command)| Entry {
                        slot,
                        ballot,
                        command
                    })
                    .collect()
            }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Msg::Nack { ballot, promised }),
        (
            ballot(),
            prop::collection::vec((slot.clone(), command()), 0..3)
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
            prop::collection::vec(slot.clone(), 0..3),
            0u64..100
        )
            .prop_map(|(ballot, slots, commit)| Msg::Accepted {
                ballot,
                slots,
                commit
            }),
        (ballot(), 0u64..100).prop_map(|(ballot, up_to)| Msg::Commit { ballot, up_to }),
        (0u64..3).prop_map(|op| Msg::Redirect { op, leader: None }),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (1u32..3, msg(), any::<u64>()).prop_map(|(from, msg, seq)| Input::deliver(Envelope {
            id: MsgId { node: NodeId(from), inc: 0, seq },
            to: NodeId(0),
            lc: seq % 50,
            msg,
        })),
        1 => prop_oneof![
            Just(TimeoutKind::Election),
            Just(TimeoutKind::Heartbeat),
            Just(TimeoutKind::Prepare)
        ]
        .prop_map(|timer| Input::Timeout { timer }),
        1 => (0u64..2, 0u64..3).prop_map(|(c, op)| Input::Request {
            client: ClientId(c),
            op,
            txn: Txn::Get { key: "k".into() },
        }),
        2 => (0u64..8).prop_map(|up_to| Input::Persisted { up_to }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_input_makes_the_core_panic(inputs in prop::collection::vec(input(), 0..60)) {
        let (mut cell, _) = Cell::new(NodeId(0), Config::with_nodes(3), Options::default(), 0);
        let mut promised = cell.promised();
        for (t, input) in inputs.into_iter().enumerate() {
            let out = cell.step(t as u64, input);
            prop_assert!(cell.promised() >= promised, "the promise never goes down");
            promised = cell.promised();
            prop_assert_eq!(out.trace.seq, t as u64 + 1);
        }
    }
}
