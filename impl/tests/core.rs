//! The core's contract: persist before send, own votes only once durable, fail closed,
//! and a dense, causally stamped trace.

use physalia_impl::core::{Cell, ClientReply, Input, Options, Output};
use physalia_traces::*;

fn cell(id: u32, n: u32) -> Cell {
    Cell::new(NodeId(id), Config::with_nodes(n), Options::default(), 0).0
}

fn deliver(from: u32, to: u32, msg: Msg) -> Input {
    Input::deliver(Envelope {
        id: MsgId {
            node: NodeId(from),
            inc: 0,
            seq: 0,
        },
        to: NodeId(to),
        lc: 1,
        msg,
    })
}

fn b(round: u64, node: u32) -> Ballot {
    Ballot {
        round,
        node: NodeId(node),
    }
}

fn put() -> Txn {
    Txn::Put {
        key: "k".into(),
        value: Value::Bool(true),
    }
}

fn replies(out: &Output) -> Vec<Msg> {
    out.replies
        .iter()
        .filter_map(|r| match r {
            ClientReply::Msg { msg, .. } => Some(msg.clone()),
            ClientReply::LocalRead { .. } => None,
        })
        .collect()
}

#[test]
fn a_promise_is_sent_only_after_its_write_is_acknowledged() {
    let mut n1 = cell(1, 3);
    let out = n1.step(
        5,
        deliver(
            0,
            1,
            Msg::Prepare {
                ballot: b(1, 0),
                from: 0,
            },
        ),
    );
    let persist = out.persist.clone().expect("the promise is written");
    assert_eq!(
        persist.writes,
        vec![DurableWrite::Promised { ballot: b(1, 0) }]
    );
    assert!(
        out.send.is_empty(),
        "nothing may leave before the write is durable"
    );
    assert_eq!(out.after_persist.batch(), Some(persist.id));
    assert_eq!(out.after_persist.ids().len(), 1);
    assert_eq!(out.trace.sent[0].after_persist, Some(persist.id));
    // An acknowledgement of an earlier batch releases nothing.
    let out = n1.step(
        6,
        Input::Persisted {
            up_to: persist.id - 1,
        },
    );
    assert!(out.send.is_empty());
    let out = n1.step(7, Input::Persisted { up_to: persist.id });
    assert_eq!(out.send.len(), 1);
    assert!(matches!(out.send[0].msg, Msg::Promise { ballot, .. } if ballot == b(1, 0)));
}

#[test]
fn a_repeated_prepare_waits_for_the_pending_write_too() {
    let mut n1 = cell(1, 3);
    let prepare = Msg::Prepare {
        ballot: b(1, 0),
        from: 0,
    };
    n1.step(5, deliver(0, 1, prepare.clone()));
    let out = n1.step(6, deliver(0, 1, prepare));
    assert!(out.persist.is_none(), "nothing new to write");
    assert!(out.send.is_empty(), "but the promise is not durable yet");
    assert_eq!(n1.step(7, Input::Persisted { up_to: 1 }).send.len(), 2);
}

#[test]
fn a_single_node_leader_commits_only_once_its_own_write_is_durable() {
    let mut n0 = cell(0, 1);
    let out = n0.step(
        1,
        Input::Timeout {
            timer: TimeoutKind::Election,
        },
    );
    assert_eq!(
        n0.role(),
        Role::Candidate,
        "its own promise is not durable yet"
    );
    n0.step(
        2,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    assert_eq!(n0.role(), Role::Leader);
    let request = Input::Request {
        client: ClientId(1),
        op: 1,
        txn: put(),
    };
    let out = n0.step(3, request);
    assert!(
        out.replies.is_empty(),
        "no reply before the entry is durable"
    );
    let out = n0.step(
        4,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    assert_eq!(
        replies(&out),
        vec![Msg::Reply {
            op: 1,
            result: TxnResult::Put
        }]
    );
    assert_eq!(n0.commit(), 1);
}

#[test]
fn the_leader_refuses_what_it_does_not_understand_before_the_log() {
    let mut n0 = cell(0, 1);
    let out = n0.step(
        1,
        Input::Timeout {
            timer: TimeoutKind::Election,
        },
    );
    n0.step(
        2,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    let bad = Txn::Get { key: "".into() };
    let out = n0.step(
        3,
        Input::Request {
            client: ClientId(1),
            op: 1,
            txn: bad,
        },
    );
    assert!(out.persist.is_none(), "nothing reaches the log");
    assert!(matches!(
        replies(&out)[..],
        [Msg::Reply {
            result: TxnResult::Rejected { .. },
            ..
        }]
    ));
    assert!(n0.log().is_empty());
}

#[test]
fn an_accept_below_the_promise_is_refused() {
    let mut n1 = cell(1, 3);
    let out = n1.step(
        1,
        deliver(
            2,
            1,
            Msg::Prepare {
                ballot: b(2, 2),
                from: 0,
            },
        ),
    );
    n1.step(
        2,
        Input::Persisted {
            up_to: out.persist.unwrap().id,
        },
    );
    let accept = Msg::Accept {
        ballot: b(1, 0),
        proposals: vec![Proposal {
            slot: 0,
            command: Command::Noop,
        }],
    };
    let out = n1.step(3, deliver(0, 1, accept));
    assert!(out.persist.is_none());
    assert_eq!(
        out.send.iter().map(|e| e.msg.clone()).collect::<Vec<_>>(),
        vec![Msg::Nack {
            ballot: b(1, 0),
            promised: b(2, 2)
        }]
    );
    assert!(n1.log().is_empty());
}

#[test]
fn trace_events_are_dense_and_clocks_follow_messages() {
    let (mut n0, start) = Cell::new(NodeId(0), Config::with_nodes(3), Options::default(), 0);
    assert_eq!((start.trace.seq, start.trace.lc), (0, 1));
    let out = n0.step(
        1,
        Input::Timeout {
            timer: TimeoutKind::Election,
        },
    );
    assert_eq!((out.trace.seq, out.trace.lc), (1, 2));
    assert!(out.send.iter().all(|e| e.lc == 2 && e.id.node == NodeId(0)));
    let mut env = Envelope {
        id: MsgId {
            node: NodeId(1),
            inc: 0,
            seq: 0,
        },
        to: NodeId(0),
        lc: 40,
        msg: Msg::Promise {
            ballot: b(9, 9),
            accepted: vec![],
        },
    };
    let out = n0.step(2, Input::deliver(env.clone()));
    assert_eq!((out.trace.seq, out.trace.lc), (2, 41));
    env.lc = 3;
    let out = n0.step(3, Input::deliver(env));
    assert_eq!(out.trace.lc, 42, "a clock never goes back");
    assert!(matches!(
        out.trace.kind,
        Kind::Input(Input::Deliver { lc: 3, .. })
    ));
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let (mut c, _) = Cell::new(NodeId(2), Config::with_nodes(7), Options::default(), 0);
        (0..5)
            .map(|t| {
                c.step(
                    t * 100,
                    Input::Timeout {
                        timer: TimeoutKind::Election,
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// The shell routes a message by its destination (`Envelope::to`; the node counts a frame
/// for another node as malformed) and authenticates its sender; the core ignores a message
/// that claims to come from itself. A vote or promise counts only from a member of the
/// slot's configuration (see the reconfiguration tests), but anyone may be taught.
#[test]
fn messages_from_itself_are_ignored() {
    let mut n1 = cell(1, 3);
    let prepare = |node| Msg::Prepare {
        ballot: b(1, node),
        from: 0,
    };
    let out = n1.step(2, deliver(1, 1, prepare(1)));
    assert!(out.persist.is_none() && out.send.is_empty());
    assert_eq!(n1.promised(), Ballot::ZERO);
    let out = n1.step(3, deliver(0, 1, prepare(0)));
    assert!(out.persist.is_some(), "a member's Prepare is taken");
}
