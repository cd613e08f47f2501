//! Round trips: rollover, reopen, misuse, random payload sequences.

use super::*;

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
