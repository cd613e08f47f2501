//! The write-ahead log on real files in a temporary directory: round trips with rollover
//! and reopen, torn tails at every byte offset, damage in the middle (refused, then
//! repaired), snapshots with compaction, and group commit under concurrent writers.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use physalia_impl::wal::{
    Lsn, Recovered, Wal, WalError, WalOptions, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use proptest::prelude::*;

fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        repair: false,
    }
}

fn repair(segment_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes,
        repair: true,
    }
}

/// A payload that names its LSN, of a length that varies with it.
fn payload(i: u64) -> Vec<u8> {
    let len = 20 + (i * 37 % 150) as usize;
    let mut p = format!("record {i} ").into_bytes();
    p.resize(len, (i % 251) as u8);
    p
}

fn append_all(wal: &Wal, from: u64, to: u64) {
    for i in from..=to {
        assert_eq!(wal.append(&payload(i)).unwrap(), i);
    }
    wal.sync_to(to).unwrap();
}

fn expected(from: u64, to: u64) -> Vec<(Lsn, Vec<u8>)> {
    (from..=to).map(|i| (i, payload(i))).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Byte offset of record `lsn` in a segment starting at `first`, all written by `payload`.
fn offset_of(first: u64, lsn: u64) -> u64 {
    SEGMENT_HEADER_LEN as u64
        + (first..lsn)
            .map(|i| (RECORD_HEADER_LEN + payload(i).len()) as u64)
            .sum::<u64>()
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn open_err(dir: &Path, o: WalOptions) -> WalError {
    match Wal::open(dir, o) {
        Ok(_) => panic!("open of a damaged log succeeded"),
        Err(e) => e,
    }
}

#[test]
fn round_trip_with_rollover_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let (wal, rec) = Wal::open(&dir, opts(4096)).unwrap();
        assert_eq!(rec, Recovered::default());
        append_all(&wal, 1, 300);
        let stats = wal.stats();
        assert_eq!(
            (stats.appends, stats.last_lsn, stats.durable_lsn),
            (300, 300, 300)
        );
        assert!(
            stats.segments > 5,
            "4 KiB segments must roll over: {stats:?}"
        );
        assert_eq!(stats.segments as usize, segment_files(&dir).len());
        for f in segment_files(&dir) {
            assert!(
                fs::metadata(&f).unwrap().len() <= 4096,
                "{f:?} exceeds segment_bytes"
            );
        }
    }
    let (wal, rec) = Wal::open(&dir, opts(4096)).unwrap();
    assert_eq!(rec.records, expected(1, 300));
    assert_eq!((rec.truncated_tail_bytes, rec.discarded_records), (0, 0));
    assert_eq!(rec.snapshot, None);
    assert_eq!(wal.durable_lsn(), 300);
    append_all(&wal, 301, 320);
    drop(wal);
    let (_, rec) = Wal::open(&dir, opts(4096)).unwrap();
    assert_eq!(rec.records, expected(1, 320));
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(tmp.path(), opts(4096)).unwrap();
    let big = vec![7u8; 10_000];
    assert_eq!(wal.append(b"small").unwrap(), 1);
    assert_eq!(wal.append(&big).unwrap(), 2);
    assert_eq!(wal.append(b"after").unwrap(), 3);
    wal.sync_to(3).unwrap();
    assert_eq!(segment_files(tmp.path()).len(), 3);
    drop(wal);
    let (_, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
    let want = vec![(1, b"small".to_vec()), (2, big), (3, b"after".to_vec())];
    assert_eq!(rec.records, want);
}

#[test]
fn misuse_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Wal::open(tmp.path(), opts(100)).unwrap_err();
    assert!(matches!(e, WalError::InvalidOptions(_)), "{e}");
    let (wal, _) = Wal::open(tmp.path(), opts(4096)).unwrap();
    wal.append(b"x").unwrap();
    let e = wal.sync_to(2).unwrap_err();
    assert!(
        matches!(e, WalError::NotAppended { lsn: 2, last: 1 }),
        "{e}"
    );
    let e = wal
        .append(&vec![0; physalia_impl::wal::MAX_PAYLOAD + 1])
        .unwrap_err();
    assert!(matches!(e, WalError::RecordTooLarge { .. }), "{e}");
    wal.snapshot(1, b"s").unwrap();
    let e = wal.snapshot(0, b"s").unwrap_err();
    assert!(
        matches!(e, WalError::SnapshotRegressed { lsn: 0, current: 1 }),
        "{e}"
    );
    let e = wal.snapshot(5, b"s").unwrap_err();
    assert!(
        matches!(e, WalError::NotAppended { lsn: 5, last: 1 }),
        "{e}"
    );
    drop(wal);
    fs::write(tmp.path().join("wal-7.log"), b"").unwrap();
    let e = open_err(tmp.path(), opts(4096));
    assert!(matches!(e, WalError::UnrecognisedFile { .. }), "{e}");
    assert!(e.to_string().contains("wal-7.log"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random payloads, synced at random points, come back exactly after reopen, across
    /// rollovers and a second session.
    #[test]
    fn random_payload_sequences_survive_reopen(
        first in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..600), any::<bool>()), 0..40),
        second in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..20),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut want = Vec::new();
        {
            let (wal, _) = Wal::open(tmp.path(), opts(4096)).unwrap();
            for (p, sync) in &first {
                let lsn = wal.append(p).unwrap();
                want.push((lsn, p.clone()));
                if *sync {
                    wal.sync_to(lsn).unwrap();
                    prop_assert!(wal.is_durable(lsn));
                }
            }
            wal.sync_to(wal.last_lsn()).unwrap();
        }
        {
            let (wal, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
            prop_assert_eq!(&rec.records, &want);
            for p in &second {
                want.push((wal.append(p).unwrap(), p.clone()));
            }
            wal.sync_to(wal.last_lsn()).unwrap();
        }
        let (_, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
        prop_assert_eq!(rec.records, want.clone());
        let lsns: Vec<Lsn> = want.iter().map(|(l, _)| *l).collect();
        prop_assert_eq!(lsns, (1..=want.len() as u64).collect::<Vec<_>>());
    }
}

/// Writes records 1..=n (rolling over at `segment_bytes`) into a fresh directory.
fn write_log(dir: &Path, n: u64, segment_bytes: u64) {
    let (wal, _) = Wal::open(dir, opts(segment_bytes)).unwrap();
    append_all(&wal, 1, n);
}

#[test]
fn a_torn_tail_at_every_byte_of_the_last_record_recovers_exactly_the_previous_records() {
    let src = tempfile::tempdir().unwrap();
    write_log(src.path(), 8, 1 << 20);
    let seg = segment_files(src.path()).pop().unwrap();
    let bytes = fs::read(&seg).unwrap();
    let start = offset_of(1, 8);
    assert_eq!(offset_of(1, 9), bytes.len() as u64);
    for cut in start..bytes.len() as u64 {
        let tmp = tempfile::tempdir().unwrap();
        let name = seg.file_name().unwrap();
        fs::write(tmp.path().join(name), &bytes[..cut as usize]).unwrap();
        let (wal, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
        assert_eq!(rec.records, expected(1, 7), "cut at byte {cut}");
        assert_eq!(rec.truncated_tail_bytes, cut - start, "cut at byte {cut}");
        assert_eq!(rec.discarded_records, 0);
        assert_eq!(fs::metadata(tmp.path().join(name)).unwrap().len(), start);
        // The log goes on at LSN 8 and the next open sees no tail.
        assert_eq!(wal.append(&payload(8)).unwrap(), 8);
        wal.sync_to(8).unwrap();
        drop(wal);
        let (_, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
        assert_eq!((rec.records, rec.truncated_tail_bytes), (expected(1, 8), 0));
    }
}

#[test]
fn a_zero_filled_or_garbled_last_record_is_a_torn_tail() {
    for damage in ["zeros", "flip"] {
        let tmp = tempfile::tempdir().unwrap();
        write_log(tmp.path(), 5, 1 << 20);
        let seg = segment_files(tmp.path()).pop().unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        let extra = match damage {
            "zeros" => {
                // The file grew but the data never reached the disk.
                OpenOptions::new()
                    .write(true)
                    .open(&seg)
                    .unwrap()
                    .set_len(len + 300)
                    .unwrap();
                300
            }
            _ => {
                // A damaged last record cannot be told apart from a torn write.
                flip_byte(&seg, offset_of(1, 5) + 20);
                len - offset_of(1, 5)
            }
        };
        let (_, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
        let last = if damage == "zeros" { 5 } else { 4 };
        assert_eq!(rec.records, expected(1, last), "{damage}");
        assert_eq!(rec.truncated_tail_bytes, extra, "{damage}");
    }
}

#[test]
fn a_segment_torn_while_being_created_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 4, 1 << 20);
    let torn = tmp.path().join("wal-00000000000000000005.log");
    fs::write(&torn, b"PHYSWAL\0\x01\0").unwrap();
    let (wal, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
    assert_eq!(
        (rec.records, rec.truncated_tail_bytes),
        (expected(1, 4), 10)
    );
    assert!(!torn.exists());
    assert_eq!(wal.append(b"next").unwrap(), 5);
}

#[test]
fn a_flipped_byte_in_a_middle_record_refuses_to_open_and_repair_keeps_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 10, 1 << 20);
    let seg = segment_files(tmp.path()).pop().unwrap();
    let at = offset_of(1, 5);
    flip_byte(&seg, at + RECORD_HEADER_LEN as u64 + 3); // inside record 5's payload
    let before = fs::read(&seg).unwrap();

    let e = open_err(tmp.path(), opts(1 << 20));
    match &e {
        WalError::Corrupt {
            file, offset, lsn, ..
        } => assert_eq!((file, *offset, *lsn), (&seg, at, 5)),
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = e.to_string();
    for needle in [
        "wal-00000000000000000001.log",
        &format!("at byte {at}"),
        "LSN 5",
        "CRC",
        "repair",
    ] {
        assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
    }
    assert_eq!(
        fs::read(&seg).unwrap(),
        before,
        "a refused open changes nothing"
    );

    let (wal, rec) = Wal::open(tmp.path(), repair(1 << 20)).unwrap();
    assert_eq!(rec.records, expected(1, 4));
    assert_eq!(
        rec.discarded_records, 6,
        "record 5 and the 5 valid records after it"
    );
    assert_eq!(wal.append(b"after repair").unwrap(), 5);
    wal.sync_to(5).unwrap();
    drop(wal);
    let (_, rec) = Wal::open(tmp.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.records.len(), 5);
    assert_eq!(rec.records[4], (5, b"after repair".to_vec()));
}

#[test]
fn a_damaged_length_field_in_the_middle_is_found_by_resynchronising() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 10, 1 << 20);
    let seg = segment_files(tmp.path()).pop().unwrap();
    let at = offset_of(1, 3);
    flip_byte(&seg, at + 2); // record 3 now claims ~4 MiB, past the end of the file
    let e = open_err(tmp.path(), opts(1 << 20));
    assert!(
        matches!(e, WalError::Corrupt { offset, lsn: 3, .. } if offset == at),
        "{e}"
    );
    assert!(e.to_string().contains("valid record follows"), "{e}");
}

#[test]
fn damage_at_the_end_of_an_earlier_segment_is_not_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, 4096);
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 3);
    // Garble the last record of the first segment.
    let first_len = fs::metadata(&segs[0]).unwrap().len();
    flip_byte(&segs[0], first_len - 1);
    let e = open_err(tmp.path(), opts(4096));
    match &e {
        WalError::Corrupt { file, reason, .. } => {
            assert_eq!(file, &segs[0]);
            assert!(reason.contains("not the last"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let (_, rec) = Wal::open(tmp.path(), repair(4096)).unwrap();
    let kept = rec.records.len() as u64;
    assert_eq!(rec.records, expected(1, kept));
    assert_eq!(kept + rec.discarded_records, 100);
    assert_eq!(segment_files(tmp.path()).len(), 1);
}

#[test]
fn a_missing_middle_segment_is_an_lsn_gap() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, 4096);
    let segs = segment_files(tmp.path());
    fs::remove_file(&segs[1]).unwrap();
    let e = open_err(tmp.path(), opts(4096));
    match &e {
        WalError::Corrupt {
            file,
            offset,
            reason,
            ..
        } => {
            assert_eq!((file, *offset), (&segs[2], 0));
            assert!(reason.contains("gap"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_newer_format_version_is_refused_even_with_repair() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 3, 4096);
    let seg = segment_files(tmp.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8] = 2;
    // Recompute the header CRC so that only the version is wrong.
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg, bytes).unwrap();
    let e = open_err(tmp.path(), repair(4096));
    assert!(
        matches!(
            e,
            WalError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e}"
    );
}

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

/// Where each record and segment header of a log written by `write_payloads` lies.
struct Layout {
    /// `(segment file, its first LSN)`.
    segments: Vec<(PathBuf, Lsn)>,
    /// `(segment index, start, end, lsn)` of every record.
    records: Vec<(usize, u64, u64, Lsn)>,
}

fn write_payloads(dir: &Path, payloads: &[Vec<u8>], segment_bytes: u64) -> Layout {
    let (wal, _) = Wal::open(dir, opts(segment_bytes)).unwrap();
    for p in payloads {
        wal.append(p).unwrap();
    }
    wal.sync_to(wal.last_lsn()).unwrap();
    drop(wal);
    let mut layout = Layout {
        segments: Vec::new(),
        records: Vec::new(),
    };
    let mut lsn = 1;
    for (i, path) in segment_files(dir).into_iter().enumerate() {
        let len = fs::metadata(&path).unwrap().len();
        layout.segments.push((path, lsn));
        let mut at = SEGMENT_HEADER_LEN as u64;
        while at < len {
            let end = at + (RECORD_HEADER_LEN + payloads[lsn as usize - 1].len()) as u64;
            layout.records.push((i, at, end, lsn));
            at = end;
            lsn += 1;
        }
        assert_eq!(at, len, "the layout walk ends at the end of the file");
    }
    assert_eq!(lsn as usize, payloads.len() + 1);
    layout
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One flipped byte anywhere in a multi-segment log: without repair, `open` either
    /// truncates exactly the last record (a torn tail) or refuses, naming the segment and
    /// the offset of the damaged record or header; with repair it keeps exactly the
    /// records before the damage and counts every record after it. Never a changed record.
    #[test]
    fn one_flipped_byte_anywhere_is_truncated_refused_or_repaired_exactly(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..900), 1..40),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let layout = write_payloads(tmp.path(), &payloads, 4096);
        let orig: Vec<(Lsn, Vec<u8>)> =
            payloads.iter().cloned().enumerate().map(|(i, p)| (i as u64 + 1, p)).collect();
        // Pick a byte: every byte of every segment file is equally likely.
        let sizes: Vec<u64> = layout.segments.iter().map(|(p, _)| fs::metadata(p).unwrap().len()).collect();
        let mut at = pick.index(sizes.iter().sum::<u64>() as usize) as u64;
        let mut seg = 0;
        while at >= sizes[seg] {
            at -= sizes[seg];
            seg += 1;
        }
        let (path, first) = layout.segments[seg].clone();
        let mut bytes = fs::read(&path).unwrap();
        bytes[at as usize] ^= 1 << bit;
        fs::write(&path, bytes).unwrap();
        let hit = layout.records.iter().find(|r| r.0 == seg && r.1 <= at && at < r.2);
        let (kept, offset) = match hit {
            Some(&(_, start, _, lsn)) => (lsn - 1, start),
            None => (first - 1, 0),
        };
        let is_last_record = hit.is_some_and(|r| r.3 as usize == payloads.len());
        let empty_last_segment = hit.is_none() && seg + 1 == sizes.len() && sizes[seg] == SEGMENT_HEADER_LEN as u64;

        let copy = tempfile::tempdir().unwrap();
        for (p, _) in &layout.segments {
            fs::copy(p, copy.path().join(p.file_name().unwrap())).unwrap();
        }
        match Wal::open(tmp.path(), opts(4096)) {
            Ok((_, rec)) => {
                prop_assert!(is_last_record || empty_last_segment, "damage at {at} of {path:?} accepted");
                prop_assert_eq!(&rec.records[..], &orig[..kept as usize]);
                prop_assert_eq!(rec.truncated_tail_bytes, sizes[seg] - offset);
            }
            Err(WalError::Corrupt { file, offset: o, lsn, .. }) => {
                prop_assert!(!is_last_record && !empty_last_segment);
                prop_assert_eq!((file, o, lsn), (path.clone(), offset, kept + 1));
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
        let (_, rec) = Wal::open(copy.path(), repair(4096)).unwrap();
        prop_assert_eq!(&rec.records[..], &orig[..kept as usize]);
        if !(is_last_record || empty_last_segment) {
            prop_assert_eq!(rec.discarded_records, orig.len() as u64 - kept);
        }
    }
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
