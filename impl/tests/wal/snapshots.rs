//! Snapshots: compaction, reopen, damage, and snapshots during concurrent appends.

use super::*;

#[test]
fn snapshot_compacts_old_segments_and_reopen_yields_snapshot_and_later_records() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(tmp.path(), opts(4096)).unwrap();
        append_all(&wal, 1, 200);
        let before = segment_files(tmp.path()).len();
        wal.snapshot(150, b"state at 150").unwrap();
        let stats = wal.stats();
        assert!(stats.segments_deleted > 0, "{stats:?}");
        assert_eq!(segment_files(tmp.path()).len() as u64, stats.segments);
        assert_eq!(before as u64 - stats.segments_deleted, stats.segments);
        // What is left starts at or below 151: nothing after the snapshot was deleted.
        let first = segment_files(tmp.path())[0].clone();
        let name = first.file_name().unwrap().to_str().unwrap();
        let first_lsn: u64 = name[4..24].parse().unwrap();
        assert!(first_lsn <= 151, "{name}");
        append_all(&wal, 201, 210);
    }
    let (wal, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
    assert_eq!(rec.snapshot, Some((150, b"state at 150".to_vec())));
    assert_eq!(rec.records, expected(151, 210));
    // A second snapshot replaces the first; only one snapshot file is kept.
    wal.snapshot(210, b"state at 210").unwrap();
    append_all(&wal, 211, 215);
    drop(wal);
    let snaps = fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "snap")
        })
        .count();
    assert_eq!(snaps, 1);
    let (_, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
    assert_eq!(rec.snapshot, Some((210, b"state at 210".to_vec())));
    assert_eq!(rec.records, expected(211, 215));
}

#[test]
fn a_damaged_snapshot_or_a_log_ending_below_it_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
        append_all(&wal, 1, 10);
        wal.snapshot(10, b"ten").unwrap();
    }
    // Tearing record 10 loses a record the snapshot proves was durable.
    let seg = segment_files(tmp.path()).pop().unwrap();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(offset_of(1, 10) + 5).unwrap();
    let e = open_err(tmp.path(), opts(1 << 20));
    assert!(e.to_string().contains("below the snapshot"), "{e}");
    let (wal, rec) = Wal::open(tmp.path(), repair(1 << 20)).unwrap();
    assert_eq!(rec.snapshot, Some((10, b"ten".to_vec())));
    assert!(rec.records.is_empty());
    assert_eq!(wal.append(b"eleven").unwrap(), 11);
    wal.sync_to(11).unwrap();
    drop(wal);
    let (_, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.records, vec![(11, b"eleven".to_vec())]);

    let snap = tmp.path().join("snap-00000000000000000010.snap");
    flip_byte(&snap, 33);
    let e = open_err(tmp.path(), repair(1 << 20));
    assert!(matches!(e, WalError::CorruptSnapshot { .. }), "{e}");
    assert!(
        e.to_string().contains("snap-00000000000000000010.snap"),
        "{e}"
    );
}

/// Snapshots taken while 4 threads append and sync (with rollovers): after reopen, the
/// latest snapshot plus the records after it account for every acknowledged record.
#[test]
fn snapshots_taken_during_concurrent_appends_leave_a_consistent_log() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 150;
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), opts(4096)).unwrap();
    let wal = Arc::new(wal);
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let lsn = wal.append(&payload(t * 1000 + i)).unwrap();
                    wal.sync_to(lsn).unwrap();
                }
            })
        })
        .collect();
    let mut taken = Vec::new();
    for _ in 0..20 {
        let lsn = wal.durable_lsn();
        wal.snapshot(lsn, format!("state at {lsn}").as_bytes())
            .unwrap();
        taken.push(lsn);
        std::thread::yield_now();
    }
    for h in writers {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.snapshots, 20);
    assert_eq!(stats.last_lsn, THREADS * PER_THREAD);
    drop(wal);
    let last_snapshot = *taken.last().unwrap();
    let (_, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
    assert_eq!(
        rec.snapshot,
        Some((
            last_snapshot,
            format!("state at {last_snapshot}").into_bytes()
        ))
    );
    let lsns: Vec<Lsn> = rec.records.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        lsns,
        (last_snapshot + 1..=THREADS * PER_THREAD).collect::<Vec<_>>()
    );
}
