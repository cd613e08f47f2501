//! Recovery: torn tails, damage in the middle (refused, then repaired), LSN gaps,
//! format versions, and one flipped bit anywhere.

use super::*;

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

#[test]
fn a_missing_newest_segment_is_refused_even_with_repair_and_a_lost_marker_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, 4096);
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    // The marker alone gone: the log opens whole and the marker is written again.
    let marker = tmp.path().join("NEWEST");
    fs::remove_file(&marker).unwrap();
    let (wal, rec) = Wal::open(tmp.path(), opts(4096)).unwrap();
    assert_eq!(rec.records, expected(1, 100));
    drop(wal);
    assert!(marker.exists());
    // The newest segment gone: refused, with repair too (nothing is damaged).
    fs::remove_file(segs.last().unwrap()).unwrap();
    for o in [opts(4096), repair(4096)] {
        match open_err(tmp.path(), o) {
            WalError::MissingSegment { newest, found, .. } => {
                assert!(found.is_some_and(|f| f < newest), "{newest} {found:?}");
            }
            other => panic!("expected MissingSegment, got {other}"),
        }
    }
}

#[test]
fn a_damaged_header_of_the_segment_the_marker_names_is_corruption_not_a_torn_creation() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, 4096);
    let newest = segment_files(tmp.path()).pop().unwrap();
    // The marker was written after this header was durable: cutting the segment to a
    // partial header is damage, and the segment is kept for the operator.
    fs::write(&newest, b"PHYSWAL\0\x01\0").unwrap();
    match open_err(tmp.path(), opts(4096)) {
        WalError::Corrupt { file, reason, .. } => {
            assert_eq!(file, newest);
            assert!(reason.contains("NEWEST"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(newest.exists());
}
