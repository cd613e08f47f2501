//! Helpers shared by the trace tests.
#![allow(dead_code)]

use physalia_traces::*;

pub fn header() -> Header {
    Header::new("cell-a", Config::with_nodes(3), 3)
}

pub fn observed() -> Observed {
    Observed {
        promised: Ballot::ZERO,
        role: Role::Follower,
        ballot: Ballot::ZERO,
        commit: 0,
        accepted: vec![],
    }
}

pub fn event(node: u32, inc: u64, seq: u64, lc: u64, kind: Kind) -> TraceEvent {
    TraceEvent {
        released: Vec::new(),
        node: NodeId(node),
        inc,
        seq,
        lc,
        now: 0,
        kind,
        sent: vec![],
        persist: None,
        client: vec![],
        state: observed(),
    }
}

pub fn timeout() -> Kind {
    Kind::Input(Input::Timeout {
        timer: TimeoutKind::Election,
    })
}

pub fn prepare(round: u64, node: u32) -> Msg {
    Msg::Prepare {
        ballot: Ballot {
            round,
            node: NodeId(node),
        },
        from: 0,
    }
}

pub fn id(node: u32, inc: u64, seq: u64) -> MsgId {
    MsgId {
        node: NodeId(node),
        inc,
        seq,
    }
}

pub fn send(mut ev: TraceEvent, mid: MsgId, to: u32, msg: Msg) -> TraceEvent {
    ev.sent.push(Sent {
        id: mid,
        to: Endpoint::Node(NodeId(to)),
        after_persist: None,
        msg,
    });
    ev
}

pub fn deliver(mid: MsgId, lc: u64, msg: Msg) -> Kind {
    Kind::Input(Input::Deliver { id: mid, lc, msg })
}

/// Serialises a header and events into trace text.
pub fn text(header: &Header, events: &[TraceEvent]) -> String {
    let mut w = TraceWriter::new(Vec::new(), header).unwrap();
    for e in events {
        w.write(e).unwrap();
    }
    String::from_utf8(w.into_inner()).unwrap()
}
