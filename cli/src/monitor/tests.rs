//! The monitor's engine against the batch replay: the same simulated traces, arriving in
//! pieces and in any interleaving of the nodes, give the batch verdict, event for event;
//! missing or corrupted pieces give the batch merge's errors.

use std::collections::BTreeMap;
use std::io::Write;

use physalia_impl::sim::{SimConfig, SimRng};
use physalia_refinement::replay::{self, Divergence, Live, Options};
use physalia_traces::{Follow, FollowError, Located, MergeError, Merged, NodeId, TraceWriter};

use super::tail::CellFiles;
use crate::sweep::simulate_merged;

fn recorded(seed: u64) -> Merged {
    let cfg = SimConfig {
        seed,
        steps: 6_000,
        ..SimConfig::default()
    };
    simulate_merged(&cfg).expect("simulates").merged
}

/// Each `(node, incarnation)`'s events in its own order, as a node's file holds them.
fn per_incarnation(m: &Merged) -> BTreeMap<(NodeId, u64), Vec<Located>> {
    let mut out: BTreeMap<(NodeId, u64), Vec<Located>> = BTreeMap::new();
    for e in &m.events {
        out.entry((e.event.node, e.event.inc))
            .or_default()
            .push(e.clone());
    }
    for v in out.values_mut() {
        v.sort_by_key(|e| e.event.seq);
    }
    out
}

/// Feeds the streams to a follower in a random interleaving of random-sized chunks, sealing
/// an incarnation once its last event was given and a newer one of the node exists, and
/// replays what comes out. Returns (events replayed, divergences, the follower's error).
fn follow_all(
    m: &Merged,
    streams: BTreeMap<(NodeId, u64), Vec<Located>>,
    seed: u64,
    window: usize,
) -> (usize, Vec<Divergence>, Option<FollowError>, Live) {
    let mut rng = SimRng::new(seed);
    let mut follow = Follow::new(1 << 20, window);
    follow.add_header("f", &m.header).expect("header");
    let mut live = Live::new(&m.header, &Options::default(), window);
    let keys: Vec<(NodeId, u64)> = streams.keys().copied().collect();
    let mut pos: BTreeMap<(NodeId, u64), usize> = keys.iter().map(|k| (*k, 0)).collect();
    let mut found = Vec::new();
    let mut replayed = 0;
    let drain = |follow: &mut Follow, live: &mut Live, found: &mut Vec<Divergence>| {
        let mut n = 0;
        loop {
            match follow.next_ready() {
                Ok(Some(ev)) => {
                    found.extend(live.push(&ev));
                    n += 1;
                }
                Ok(None) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    };
    loop {
        // A node's newer incarnation starts once the older one ended, as processes do.
        let open: Vec<(NodeId, u64)> = keys
            .iter()
            .copied()
            .filter(|k| pos[k] < streams[k].len())
            .filter(|&(n, i)| {
                streams
                    .iter()
                    .all(|(&(n2, i2), v)| n2 != n || i2 >= i || pos[&(n2, i2)] == v.len())
            })
            .collect();
        if open.is_empty() {
            break;
        }
        let k = open[rng.between(0, open.len() as u64 - 1) as usize];
        let chunk = rng.between(1, 40) as usize;
        let p = pos[&k];
        let end = (p + chunk).min(streams[&k].len());
        for ev in &streams[&k][p..end] {
            if let Err(e) = follow.add(ev.clone()) {
                return (replayed, found, Some(e), live);
            }
        }
        pos.insert(k, end);
        // Seal what is complete and has a successor (the tailer's rule).
        for (&(n, i), v) in &streams {
            let newer = streams.keys().any(|&(n2, i2)| n2 == n && i2 > i);
            if newer && pos[&(n, i)] == v.len() {
                follow.seal(n, i);
            }
        }
        match drain(&mut follow, &mut live, &mut found) {
            Ok(n) => replayed += n,
            Err(e) => return (replayed, found, Some(e), live),
        }
    }
    follow.end_of_input();
    match drain(&mut follow, &mut live, &mut found) {
        Ok(n) => replayed += n,
        Err(e) => return (replayed, found, Some(e), live),
    }
    (replayed, found, follow.leftover(), live)
}

#[test]
fn live_replay_in_any_interleaving_agrees_with_the_batch_replay() {
    for seed in [1, 2, 3] {
        let m = recorded(seed);
        let batch = replay::conform(&m, &Options::default());
        assert!(
            batch.failure.is_none(),
            "seed {seed}: the batch replay fails"
        );
        assert_eq!(batch.matched, m.events.len());
        for order in 0..3 {
            let (n, found, err, live) =
                follow_all(&m, per_incarnation(&m), seed * 10 + order, 1 << 17);
            assert!(err.is_none(), "seed {seed}/{order}: {err:?}");
            assert!(found.is_empty(), "seed {seed}/{order}: {found:?}");
            assert_eq!(n, m.events.len(), "seed {seed}/{order}: every event");
            assert_eq!(live.report().matched, m.events.len());
        }
    }
}

#[test]
fn a_small_window_bounds_the_table_and_never_raises_a_false_alarm() {
    let m = recorded(4);
    let window = 64;
    let (n, found, err, live) = follow_all(&m, per_incarnation(&m), 9, window);
    assert!(err.is_none(), "{err:?}");
    // A message older than the window is "cannot check", never a divergence.
    assert!(found.iter().all(|d| !d.is_divergence()), "{found:?}");
    assert!(
        live.messages() <= 3 * window,
        "{} messages",
        live.messages()
    );
    assert!(n > 0);
}

#[test]
fn a_missing_event_is_the_batch_merge_error() {
    let m = recorded(5);
    let mut streams = per_incarnation(&m);
    // Drop an event from the middle of the longest stream: a sequence gap.
    let key = *streams
        .iter()
        .max_by_key(|(_, v)| v.len())
        .expect("nodes")
        .0;
    let v = streams.get_mut(&key).expect("key");
    let dropped = v.remove(v.len() / 2);
    let (_, found, err, _) = follow_all(&m, streams, 1, 1 << 17);
    assert!(found.is_empty(), "{found:?}");
    match err {
        Some(FollowError::Merge(MergeError::SeqGap { found, .. })) => {
            assert_eq!(found, dropped.event.seq + 1)
        }
        // Or a receive of what it sent, stuck behind the gap, is what waits first.
        Some(FollowError::Merge(MergeError::ReceiveWithoutSend { .. })) => {}
        other => panic!("expected a sequence gap, got {other:?}"),
    }
}

#[test]
fn a_receive_without_its_send_is_reported() {
    let m = recorded(6);
    let mut streams = per_incarnation(&m);
    // Drop a whole incarnation's file whose messages others received.
    let key = *streams
        .iter()
        .filter(|(_, v)| v.iter().any(|e| !e.event.sent.is_empty()))
        .max_by_key(|(_, v)| v.len())
        .expect("a sender")
        .0;
    streams.remove(&key);
    let (_, _, err, _) = follow_all(&m, streams, 2, 1 << 17);
    assert!(
        matches!(
            err,
            Some(FollowError::Merge(MergeError::ReceiveWithoutSend { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn a_changed_event_is_a_divergence_at_that_event() {
    let m = recorded(7);
    // Raise a commit index the node logged: the specification refuses that step.
    let mut streams = per_incarnation(&m);
    let target = m
        .events
        .iter()
        .position(|e| e.event.state.commit > 2)
        .expect("commits");
    let (node, inc, seq) = {
        let e = &m.events[target].event;
        (e.node, e.inc, e.seq)
    };
    let ev = streams
        .get_mut(&(node, inc))
        .and_then(|v| v.iter_mut().find(|e| e.event.seq == seq))
        .expect("the event");
    ev.event.state.commit += 1000;
    let (_, found, err, _) = follow_all(&m, streams, 3, 1 << 17);
    assert!(err.is_none(), "{err:?}");
    let first = found.first().expect("a divergence");
    assert!(first.is_divergence());
    match first {
        Divergence::Failure(f) => assert_eq!(
            (f.node.clone(), f.line),
            (node.to_string(), m.events[target].line)
        ),
        other => panic!("{other:?}"),
    }
}

/// The files a node writes, one per incarnation, as bytes.
fn files_of(m: &Merged) -> BTreeMap<String, Vec<u8>> {
    per_incarnation(m)
        .into_iter()
        .map(|((n, i), evs)| {
            let mut w = TraceWriter::new(Vec::new(), &m.header).expect("header");
            for e in &evs {
                w.write(&e.event).expect("write");
            }
            (format!("{n}.i{i}.jsonl"), w.into_inner())
        })
        .collect()
}

#[test]
fn tailing_files_written_in_pieces_replays_every_event() {
    let m = recorded(8);
    let files = files_of(&m);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cell = CellFiles::new(dir.path().to_path_buf());
    let mut follow = Follow::new(1 << 20, 1 << 17);
    let mut live = Live::new(&m.header, &Options::default(), 1 << 17);
    let mut rng = SimRng::new(42);
    let mut written: BTreeMap<&str, usize> = files.keys().map(|k| (k.as_str(), 0)).collect();
    let mut handles: BTreeMap<&str, std::fs::File> = BTreeMap::new();
    let mut replayed = 0;
    let mut found = Vec::new();
    // A node's newer incarnation appears only once the older one's file is complete.
    let started = |name: &str, written: &BTreeMap<&str, usize>| {
        let (node, inc) = name.split_once(".i").expect("name");
        let inc: u64 = inc.trim_end_matches(".jsonl").parse().expect("inc");
        files.iter().all(|(other, bytes)| {
            let (n2, i2) = other.split_once(".i").expect("name");
            let i2: u64 = i2.trim_end_matches(".jsonl").parse().expect("inc");
            n2 != node || i2 >= inc || written[other.as_str()] == bytes.len()
        })
    };
    loop {
        let open: Vec<&str> = files
            .keys()
            .map(|k| k.as_str())
            .filter(|k| written[k] < files[*k].len() && started(k, &written))
            .collect();
        if open.is_empty() {
            break;
        }
        for _ in 0..3 {
            let k = open[rng.between(0, open.len() as u64 - 1) as usize];
            let at = written[k];
            // Any cut, mid-line too: a line being written is not an error.
            let end = (at + rng.between(1, 3000) as usize).min(files[k].len());
            let f = handles
                .entry(k)
                .or_insert_with(|| std::fs::File::create(dir.path().join(k)).expect("create"));
            f.write_all(&files[k][at..end]).expect("write");
            f.flush().expect("flush");
            written.insert(k, end);
        }
        cell.poll(&mut follow, usize::MAX).expect("poll");
        while let Some(ev) = follow.next_ready().expect("orders") {
            found.extend(live.push(&ev));
            replayed += 1;
        }
    }
    // One more poll sees the last bytes and seals what ended.
    cell.poll(&mut follow, usize::MAX).expect("poll");
    cell.end_of_input(&mut follow).expect("every line whole");
    follow.end_of_input();
    while let Some(ev) = follow.next_ready().expect("orders") {
        found.extend(live.push(&ev));
        replayed += 1;
    }
    assert!(follow.leftover().is_none(), "{:?}", follow.leftover());
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(replayed, m.events.len());
    assert_eq!(cell.files(), files.len());
}

#[test]
fn a_file_that_shrinks_or_holds_garbage_is_named() {
    let m = recorded(9);
    let files = files_of(&m);
    let (name, bytes) = files.iter().next().expect("a file");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let mut cell = CellFiles::new(dir.path().to_path_buf());
    let mut follow = Follow::new(1 << 20, 1 << 17);
    cell.poll(&mut follow, usize::MAX).expect("poll");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("rewrite");
    let e = cell.poll(&mut follow, usize::MAX).expect_err("shrank");
    assert!(e.to_string().contains("shrank"), "{e}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = bytes.clone();
    text.extend_from_slice(b"{\"not\": \"an event\"}\n");
    std::fs::write(dir.path().join(name), &text).expect("write");
    let mut cell = CellFiles::new(dir.path().to_path_buf());
    let mut follow = Follow::new(1 << 20, 1 << 17);
    let e = cell.poll(&mut follow, usize::MAX).expect_err("garbage");
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    assert!(e.to_string().contains(&format!("{name}:{lines}:")), "{e}");
}

#[test]
fn the_backlog_is_bounded() {
    let m = recorded(10);
    let mut streams = per_incarnation(&m);
    // Hold back one node's first incarnation: others' receives from it wait, up to the bound.
    let key = *streams.keys().next().expect("a node");
    streams.get_mut(&key).expect("key").remove(0);
    let mut follow = Follow::new(100, 1 << 17);
    follow.add_header("f", &m.header).expect("header");
    let mut err = None;
    'outer: for v in streams.values() {
        for ev in v {
            if let Err(e) = follow.add(ev.clone()) {
                err = Some(e);
                break 'outer;
            }
            // What can be ordered leaves; what waits for the missing event stays.
            while follow.next_ready().expect("orders").is_some() {}
        }
    }
    assert!(
        matches!(err, Some(FollowError::Backlog { waiting: 100, .. })),
        "{err:?}"
    );
}
