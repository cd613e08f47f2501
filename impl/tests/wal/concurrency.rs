//! Group commit and concurrent writers, and crash images taken while they write.

use super::*;

/// 8 threads × 200 records, each appending then syncing in lock step: every round's
/// records are covered by exactly one fdatasync (the first caller's).
#[test]
fn group_commit_shares_one_fdatasync_among_the_pending_callers() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 200;
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), opts(64 << 20)).unwrap();
    let wal = Arc::new(wal);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, barrier) = (Arc::clone(&wal), Arc::clone(&barrier));
            std::thread::spawn(move || {
                for r in 0..ROUNDS {
                    let lsn = wal.append(format!("t{t} r{r}").as_bytes()).unwrap();
                    barrier.wait();
                    wal.sync_to(lsn).unwrap();
                    assert!(wal.durable_lsn() >= lsn);
                    barrier.wait();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.appends, THREADS as u64 * ROUNDS);
    assert_eq!(
        stats.fsyncs, ROUNDS,
        "one fdatasync per round of 8 records: {stats:?}"
    );
    assert_eq!(stats.group_commits, ROUNDS);
}

/// 8 free-running threads × 200 records: every record comes back, in each thread's
/// order, with dense LSNs, and fewer fdatasyncs than records.
#[test]
fn concurrent_writers_get_every_record_back_with_fewer_fsyncs_than_records() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 200;
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), opts(16 << 10)).unwrap();
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut lsns = Vec::new();
                for i in 0..PER_THREAD {
                    let lsn = wal.append(format!("{t}:{i}").as_bytes()).unwrap();
                    wal.sync_to(lsn).unwrap();
                    assert!(wal.is_durable(lsn));
                    lsns.push(lsn);
                }
                lsns
            })
        })
        .collect();
    let mut acked = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        for (i, lsn) in h.join().unwrap().into_iter().enumerate() {
            acked.push((lsn, format!("{t}:{i}").into_bytes()));
        }
    }
    let stats = wal.stats();
    drop(wal);
    acked.sort();
    let total = THREADS * PER_THREAD;
    assert!(stats.segments > 1, "16 KiB segments roll over: {stats:?}");
    assert!(
        stats.group_commits < total && stats.fsyncs < total,
        "group commit never shared an fdatasync: {stats:?}"
    );
    let (_, rec) = Wal::open(tmp.path(), opts(16 << 10)).unwrap();
    assert_eq!(rec.records.len() as u64, total);
    assert_eq!(rec.records, acked, "every acknowledged record at its LSN");
}

#[test]
fn the_log_is_shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Wal>();
    send_sync::<WalError>();
}

/// Copies the segment files of `dir` newest first, as a crash image: a segment is never
/// written again once the next one exists, so only the newest copy can end in a partial
/// record.
fn crash_image(dir: &Path) -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    for path in segment_files(dir).into_iter().rev() {
        fs::copy(&path, image.path().join(path.file_name().unwrap())).unwrap();
    }
    image
}

/// Images of the log taken while 4 threads append and sync (rolling over): each opens
/// without repair, and holds every record acknowledged before the image was taken,
/// identical to the final log's record at the same LSN.
#[test]
fn a_crash_image_taken_at_any_moment_keeps_every_acknowledged_record() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 300;
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
    let mut images = Vec::new();
    for _ in 0..12 {
        let acked = wal.durable_lsn();
        images.push((acked, crash_image(tmp.path())));
        std::thread::yield_now();
    }
    for h in writers {
        h.join().unwrap();
    }
    drop(wal);
    let (_, last) = Wal::open(tmp.path(), opts(4096)).unwrap();
    assert_eq!(last.records.len() as u64, THREADS * PER_THREAD);
    for (acked, image) in images {
        let (_, rec) = Wal::open(image.path(), opts(4096)).unwrap();
        assert!(
            rec.records.len() as u64 >= acked,
            "image lost an acknowledged record"
        );
        assert_eq!(rec.records[..], last.records[..rec.records.len()]);
    }
}
