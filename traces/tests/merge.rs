//! The merger orders per-node files causally and rejects inconsistent ones.

mod common;

use common::*;
use physalia_traces::*;

fn file(name: &str, events: &[TraceEvent]) -> TraceFile {
    read_str(name, &text(&header(), events)).unwrap()
}

/// n0 sends a Prepare to n1 (lc 1); n1 steps twice on its own (lc 1, 2) then receives.
fn two_nodes(recv_lc: u64) -> (TraceFile, TraceFile) {
    let m = id(0, 0, 0);
    let n0 = vec![send(event(0, 0, 0, 5, timeout()), m, 1, prepare(1, 0))];
    let n1 = vec![
        event(1, 0, 0, 1, timeout()),
        event(1, 0, 1, 2, timeout()),
        event(1, 0, 2, recv_lc, deliver(m, 5, prepare(1, 0))),
    ];
    (file("n0.jsonl", &n0), file("n1.jsonl", &n1))
}

#[test]
fn merges_by_clock_and_edges() {
    let (a, b) = two_nodes(6);
    let merged = merge(vec![b, a]).unwrap();
    let order: Vec<(u32, u64)> = merged
        .events
        .iter()
        .map(|e| (e.event.node.0, e.event.seq))
        .collect();
    assert_eq!(order, vec![(1, 0), (1, 1), (0, 0), (1, 2)]);
}

#[test]
fn rejects_receive_without_send() {
    let (_, b) = two_nodes(6);
    let err = merge(vec![b]).unwrap_err();
    assert!(matches!(
        err,
        MergeError::ReceiveWithoutSend { line: 4, .. }
    ));
    assert!(err
        .to_string()
        .starts_with("n1.jsonl:4: receive of message n0/0/0 without a send"));
}

#[test]
fn rejects_receive_not_after_send() {
    let (a, b) = two_nodes(3);
    let err = merge(vec![a, b]).unwrap_err();
    assert!(matches!(err, MergeError::ClockBeforeSend { .. }), "{err}");
    assert!(err.to_string().contains("n0.jsonl:2"), "{err}");
}

#[test]
fn rejects_sequence_gap() {
    let evs = vec![event(2, 0, 0, 1, timeout()), event(2, 0, 2, 2, timeout())];
    let err = merge(vec![file("n2.jsonl", &evs)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "n2.jsonl:3: sequence gap for n2 incarnation 0: expected seq 1, found 2 \
         (events are missing or duplicated)"
    );
}

#[test]
fn rejects_duplicated_step() {
    let evs = vec![event(2, 0, 0, 1, timeout()), event(2, 0, 0, 2, timeout())];
    let err = merge(vec![file("n2.jsonl", &evs)]).unwrap_err();
    assert!(matches!(
        err,
        MergeError::SeqGap {
            expected: 1,
            found: 0,
            ..
        }
    ));
}

#[test]
fn rejects_clock_running_backwards_across_a_restart() {
    let evs = vec![event(2, 0, 0, 4, timeout()), event(2, 1, 0, 3, timeout())];
    let err = merge(vec![file("n2.jsonl", &evs)]).unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::ClockBackwards {
                previous: 4,
                lc: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn restart_starts_a_new_dense_sequence() {
    let evs = vec![
        event(2, 0, 0, 1, timeout()),
        event(2, 0, 1, 2, timeout()),
        event(2, 1, 0, 3, timeout()),
    ];
    assert_eq!(merge(vec![file("n2.jsonl", &evs)]).unwrap().events.len(), 3);
}

#[test]
fn rejects_mismatched_headers() {
    let (a, mut b) = two_nodes(6);
    b.header.cell = "other".into();
    let err = merge(vec![a, b]).unwrap_err();
    assert!(matches!(err, MergeError::HeaderMismatch { .. }));
}

#[test]
fn rejects_duplicate_send_ids() {
    let m = id(0, 0, 0);
    let evs = vec![
        send(event(0, 0, 0, 1, timeout()), m, 1, prepare(1, 0)),
        send(event(0, 0, 1, 2, timeout()), m, 2, prepare(1, 0)),
    ];
    let err = merge(vec![file("n0.jsonl", &evs)]).unwrap_err();
    assert!(
        matches!(err, MergeError::DuplicateSend { line: 3, .. }),
        "{err}"
    );
}

#[test]
fn duplicate_delivery_of_one_send_is_fine() {
    let (a, b) = two_nodes(6);
    let mut events: Vec<TraceEvent> = b.events.into_iter().map(|l| l.event).collect();
    let mut again = events[2].clone();
    again.seq = 3;
    again.lc = 7;
    events.push(again);
    let merged = merge(vec![a, file("n1.jsonl", &events)]).unwrap();
    assert_eq!(merged.events.len(), 5);
}

#[test]
fn nothing_to_merge() {
    assert_eq!(merge(vec![]), Err(MergeError::NoInput));
}
