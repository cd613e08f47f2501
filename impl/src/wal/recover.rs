//! Recovery at open: read the snapshot and the segments, decide what is a torn tail and
//! what is damage, and only then change the directory. The rules are the module
//! documentation of [`super`].

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format::{
    self, classify, count_valid_records, decode_segment_header, find_valid_record, read_record,
    FileKind, HeaderError, RecordRead, SnapshotError, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::{Lsn, Recovered, WalError, WalOptions, MIN_SEGMENT_BYTES};

/// The log as [`super::Wal`] takes it over after recovery.
pub(super) struct Opened {
    pub recovered: Recovered,
    /// First LSNs of the segment files that exist, ascending; the last is the active one.
    pub segments: Vec<Lsn>,
    /// The active segment, opened for appending.
    pub active: File,
    /// The active segment's length in bytes.
    pub active_len: u64,
    /// The LSN the next append gets.
    pub next_lsn: Lsn,
    /// The current snapshot's LSN, if any.
    pub snapshot_lsn: Option<Lsn>,
}

/// How the scan of one segment ended.
#[derive(Debug)]
enum SegmentEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// A torn tail starts at this offset (0: the header itself is incomplete).
    Torn { at: usize },
    /// Damage at this offset.
    Damaged { at: usize, reason: String },
}

/// What the directory holds, by name.
struct Listing {
    segments: Vec<Lsn>,
    snapshots: Vec<Lsn>,
    temps: Vec<PathBuf>,
}

/// The changes recovery makes once it has decided the log is usable.
#[derive(Default)]
struct Plan {
    /// `(segment index, new length)`; a length of 0 deletes the file.
    cut: Option<(usize, usize)>,
    /// Segments from this index on are deleted (a repair).
    drop_from: Option<usize>,
    remove: Vec<PathBuf>,
}

pub(super) fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync directory", dir, e))
}

fn list(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing {
        segments: Vec::new(),
        snapshots: Vec::new(),
        temps: Vec::new(),
    };
    let entries = fs::read_dir(dir).map_err(|e| WalError::io("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match classify(name) {
            FileKind::Segment(lsn) => listing.segments.push(lsn),
            FileKind::Snapshot(lsn) => listing.snapshots.push(lsn),
            FileKind::SnapshotTemp => listing.temps.push(entry.path()),
            FileKind::Malformed => return Err(WalError::UnrecognisedFile { file: entry.path() }),
            FileKind::Other => {}
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    Ok(listing)
}

fn read_snapshot(dir: &Path, lsn: Lsn) -> Result<Vec<u8>, WalError> {
    let path = dir.join(format::snapshot_name(lsn));
    let bytes = fs::read(&path).map_err(|e| WalError::io("read snapshot", &path, e))?;
    match format::decode_snapshot(&bytes) {
        Ok((inner, state)) if inner == lsn => Ok(state.to_vec()),
        Ok((inner, _)) => Err(WalError::CorruptSnapshot {
            file: path,
            reason: format!("the header names LSN {inner}, the file name LSN {lsn}"),
        }),
        Err(SnapshotError::Header(HeaderError::Version(found))) => {
            Err(WalError::UnsupportedVersion {
                file: path,
                found,
                supported: format::FORMAT_VERSION,
            })
        }
        Err(e) => Err(WalError::CorruptSnapshot {
            file: path,
            reason: e.to_string(),
        }),
    }
}

/// Scans one segment whose records must start at `expect`; pushes its valid records and
/// returns how it ended and the LSN expected after it.
fn scan_segment(
    bytes: &[u8],
    expect: Lsn,
    is_last: bool,
    records: &mut Vec<(Lsn, Vec<u8>)>,
) -> (SegmentEnd, Lsn) {
    let mut expect = expect;
    let mut at = SEGMENT_HEADER_LEN;
    // Bounded: `at` strictly increases (every record is at least a header long).
    while at < bytes.len() {
        let reason = match read_record(bytes, at) {
            RecordRead::Valid {
                lsn,
                payload_start,
                end,
            } if lsn == expect => {
                records.push((lsn, bytes[payload_start..end].to_vec()));
                expect += 1;
                at = end;
                continue;
            }
            RecordRead::Valid { lsn, .. } => {
                // A valid checksum with the wrong LSN is never a torn write.
                let reason = format!(
                    "the record carries LSN {lsn}, expected {expect} (an LSN gap or duplicate)"
                );
                return (SegmentEnd::Damaged { at, reason }, expect);
            }
            RecordRead::ShortHeader => "the record header is incomplete".to_string(),
            RecordRead::BadLength(len) => {
                format!("the length field says {len} bytes, more than any record")
            }
            RecordRead::PastEnd => "the record runs past the end of the file".to_string(),
            RecordRead::BadChecksum => "the record's CRC-32C does not match".to_string(),
        };
        let plausible = expect..=expect + (bytes.len() - at) as u64 / RECORD_HEADER_LEN as u64;
        return match find_valid_record(bytes, at + 1, plausible) {
            None if is_last => (SegmentEnd::Torn { at }, expect),
            None => {
                let reason = format!("{reason}, in a segment that is not the last");
                (SegmentEnd::Damaged { at, reason }, expect)
            }
            Some(valid) => {
                let reason = format!("{reason}, and a valid record follows at byte {valid}");
                (SegmentEnd::Damaged { at, reason }, expect)
            }
        };
    }
    (SegmentEnd::Clean, expect)
}

/// Checks one segment's header against its name and the LSN expected; `Ok(None)` when
/// the header is a torn creation (last segment, nothing after the header).
fn check_header(
    bytes: &[u8],
    path: &Path,
    name_lsn: Lsn,
    is_last: bool,
) -> Result<Result<Lsn, String>, WalError> {
    match decode_segment_header(bytes) {
        Ok(lsn) if lsn == name_lsn => Ok(Ok(lsn)),
        Ok(lsn) => Ok(Err(format!(
            "the header names first LSN {lsn}, the file name LSN {name_lsn}"
        ))),
        Err(HeaderError::Version(found)) => Err(WalError::UnsupportedVersion {
            file: path.to_path_buf(),
            found,
            supported: format::FORMAT_VERSION,
        }),
        Err(_) if is_last && bytes.len() <= SEGMENT_HEADER_LEN => Ok(Err(String::new())),
        Err(e) => Ok(Err(format!("segment header: {e}"))),
    }
}

/// Opens (creating if needed) the log in `dir` and recovers it.
pub(super) fn open(dir: &Path, opts: &WalOptions) -> Result<Opened, WalError> {
    if opts.segment_bytes < MIN_SEGMENT_BYTES {
        return Err(WalError::InvalidOptions(format!(
            "segment_bytes is {}, the minimum is {MIN_SEGMENT_BYTES}",
            opts.segment_bytes
        )));
    }
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    let listing = list(dir)?;
    refuse_missing_newest(dir, &listing.segments)?;
    let mut plan = Plan {
        remove: listing.temps.clone(),
        ..Plan::default()
    };
    let snapshot = match listing.snapshots.last() {
        Some(&lsn) => Some((lsn, read_snapshot(dir, lsn)?)),
        None => None,
    };
    let snap = snapshot.as_ref().map_or(0, |(lsn, _)| *lsn);
    for &older in &listing.snapshots[..listing.snapshots.len().saturating_sub(1)] {
        plan.remove.push(dir.join(format::snapshot_name(older)));
    }
    // Segments wholly covered by the snapshot are deleted unread.
    let mut live = listing.segments.clone();
    let covered = live.windows(2).take_while(|w| w[1] <= snap + 1).count();
    for first in live.drain(..covered) {
        plan.remove.push(dir.join(format::segment_name(first)));
    }

    let scan = scan_live(dir, &live, snap, opts.repair)?;
    plan.cut = scan.cut;
    plan.drop_from = scan.drop_from;
    let last_lsn = scan.expect - 1;
    if !opts.repair {
        refuse_missing_records(dir, &live, &scan, snapshot.is_some(), snap)?;
    }
    let recovered = Recovered {
        snapshot,
        records: scan
            .records
            .into_iter()
            .filter(|(lsn, _)| *lsn > snap)
            .collect(),
        truncated_tail_bytes: scan.truncated_tail_bytes,
        discarded_records: scan.discarded_records,
    };
    let (segments, active, active_len, next_lsn) = apply(dir, &live, plan, last_lsn, snap)?;
    Ok(Opened {
        recovered,
        segments,
        active,
        active_len,
        next_lsn,
        snapshot_lsn: (snap > 0 || !listing.snapshots.is_empty()).then_some(snap),
    })
}

/// What the scan of the live segments found.
struct Scan {
    /// Every valid record in order, those covered by the snapshot included.
    records: Vec<(Lsn, Vec<u8>)>,
    /// The LSN after the last valid record.
    expect: Lsn,
    /// `(segment index, offset)` where the log is cut (torn tail or repair).
    cut: Option<(usize, usize)>,
    /// Segments from this index on are dropped (a repair).
    drop_from: Option<usize>,
    /// The length of the last segment read.
    last_len: usize,
    truncated_tail_bytes: u64,
    discarded_records: u64,
}

/// Reads the live segments in order, checking that they are contiguous from the
/// snapshot on; stops at a torn tail, or at damage (an error unless `repair`).
fn scan_live(dir: &Path, live: &[Lsn], snap: Lsn, repair: bool) -> Result<Scan, WalError> {
    let mut scan = Scan {
        records: Vec::new(),
        expect: snap + 1,
        cut: None,
        drop_from: None,
        last_len: 0,
        truncated_tail_bytes: 0,
        discarded_records: 0,
    };
    for (i, &first) in live.iter().enumerate() {
        let path = dir.join(format::segment_name(first));
        let bytes = fs::read(&path).map_err(|e| WalError::io("read segment", &path, e))?;
        let is_last = i + 1 == live.len();
        scan.last_len = bytes.len();
        let expect = scan.expect;
        let start = if i == 0 { 1..=expect } else { expect..=expect };
        let end = match check_header(&bytes, &path, first, is_last)? {
            Ok(lsn) if start.contains(&lsn) => {
                let (end, next) = scan_segment(&bytes, lsn, is_last, &mut scan.records);
                scan.expect = next;
                end
            }
            Ok(lsn) if i == 0 => SegmentEnd::Damaged {
                at: 0,
                reason: format!(
                    "the log starts at LSN {lsn} but the snapshot covers only up to LSN {snap}: \
                     records {expect}..{} are missing",
                    lsn.saturating_sub(1)
                ),
            },
            Ok(lsn) => SegmentEnd::Damaged {
                at: 0,
                reason: format!(
                    "the segment starts at LSN {lsn}, expected {expect} (an LSN gap or duplicate)"
                ),
            },
            Err(reason) if reason.is_empty() => SegmentEnd::Torn { at: 0 },
            Err(reason) => SegmentEnd::Damaged { at: 0, reason },
        };
        match end {
            SegmentEnd::Clean => {}
            SegmentEnd::Torn { at } => {
                scan.truncated_tail_bytes = (bytes.len() - at) as u64;
                scan.cut = Some((i, at));
            }
            SegmentEnd::Damaged { at, reason } => {
                if !repair {
                    return Err(WalError::Corrupt {
                        file: path,
                        offset: at as u64,
                        lsn: scan.expect,
                        reason,
                    });
                }
                scan.discarded_records = discarded_count(dir, &live[i..], &bytes, at, scan.expect)?;
                scan.cut = Some((i, at));
                scan.drop_from = Some(i + 1);
                break;
            }
        }
    }
    Ok(scan)
}

/// Refuses a log that lost records the snapshot proves were durable: no segment at all
/// beside a snapshot, or a log ending below the snapshot's LSN.
fn refuse_missing_records(
    dir: &Path,
    live: &[Lsn],
    scan: &Scan,
    has_snapshot: bool,
    snap: Lsn,
) -> Result<(), WalError> {
    if live.is_empty() && has_snapshot {
        return Err(WalError::Corrupt {
            file: dir.join(format::segment_name(snap + 1)),
            offset: 0,
            lsn: snap + 1,
            reason: format!(
                "no segment file exists, although the snapshot at LSN {snap} means one did: \
                 records after the snapshot may be missing"
            ),
        });
    }
    let last_lsn = scan.expect - 1;
    if last_lsn >= snap {
        return Ok(());
    }
    let (file, offset) = match (scan.cut, live.last()) {
        (Some((i, at)), _) => (dir.join(format::segment_name(live[i])), at as u64),
        (None, Some(&first)) => (dir.join(format::segment_name(first)), scan.last_len as u64),
        (None, None) => unreachable!("an empty log with a snapshot was refused above"),
    };
    Err(WalError::Corrupt {
        file,
        offset,
        lsn: last_lsn + 1,
        reason: format!(
            "the log ends at LSN {last_lsn}, below the snapshot's LSN {snap}: \
             records that were acknowledged durable are missing"
        ),
    })
}

/// The records a repair discards: the damaged one (when the damage is at a record) and
/// every record still recognisable after it.
fn discarded_count(
    dir: &Path,
    dropped: &[Lsn],
    damaged: &[u8],
    at: usize,
    expect: Lsn,
) -> Result<u64, WalError> {
    let mut later = Vec::new();
    for &first in &dropped[1..] {
        let path = dir.join(format::segment_name(first));
        later.push(fs::read(&path).map_err(|e| WalError::io("read segment", &path, e))?);
    }
    let total: usize = damaged.len() + later.iter().map(Vec::len).sum::<usize>();
    let lsns = expect..=expect + (total / RECORD_HEADER_LEN) as u64;
    let mut count = u64::from(at > 0) + count_valid_records(damaged, at + 1, lsns.clone());
    for bytes in &later {
        count += count_valid_records(bytes, SEGMENT_HEADER_LEN, lsns.clone());
    }
    Ok(count)
}

/// Carries out the plan and opens the active segment (creating one when no kept segment
/// can take the next LSN). Returns the live segments, the active file, its length and the
/// next LSN.
fn apply(
    dir: &Path,
    live: &[Lsn],
    mut plan: Plan,
    last_lsn: Lsn,
    snap: Lsn,
) -> Result<(Vec<Lsn>, File, u64, Lsn), WalError> {
    let mut kept = live.to_vec();
    if let Some(from) = plan.drop_from {
        for first in kept.drain(from.min(kept.len())..) {
            plan.remove.push(dir.join(format::segment_name(first)));
        }
    }
    if let Some((i, at)) = plan.cut {
        let path = dir.join(format::segment_name(live[i]));
        if at == 0 && read_marker(dir).ok().flatten() == Some(live[i]) {
            // The marker is written after the header is durable: this header is damaged,
            // not a torn creation.
            return Err(WalError::Corrupt {
                file: path,
                offset: 0,
                lsn: live[i],
                reason: format!(
                    "the segment header is damaged, and {MARKER} records that it was complete"
                ),
            });
        }
        if at == 0 {
            plan.remove.push(path);
            kept.truncate(i);
        } else {
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io("open segment", &path, e))?;
            f.set_len(at as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| WalError::io("truncate segment", &path, e))?;
        }
    }
    let next_lsn = last_lsn.max(snap) + 1;
    if last_lsn < snap {
        // Only after a repair: the kept records are all covered by the snapshot.
        for first in kept.drain(..) {
            plan.remove.push(dir.join(format::segment_name(first)));
        }
    }
    // Segments are about to go (a repair, a torn creation): the marker first names the
    // newest segment that stays, or goes if none stays (the next segment writes it), so
    // that a crash in between never leaves it naming a deleted segment.
    let drops_segment = plan
        .remove
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "log"));
    if drops_segment {
        match kept.last() {
            Some(&first) => write_marker(dir, first)?,
            None => match fs::remove_file(dir.join(MARKER)) {
                Ok(()) => fsync_dir(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(WalError::io("delete marker", dir.join(MARKER), e)),
            },
        }
    }
    for path in &plan.remove {
        fs::remove_file(path).map_err(|e| WalError::io("delete", path, e))?;
    }
    // Always, not only after deletions: a snapshot renamed or a segment created just
    // before a process crash may not have its directory entry on disk yet.
    fsync_dir(dir)?;
    if let Some(&first) = kept.last() {
        // A lost marker, or one naming a segment a repair dropped, names the active one.
        if read_marker(dir).ok().flatten() != Some(first) {
            write_marker(dir, first)?;
        }
        let path = dir.join(format::segment_name(first));
        let active = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| WalError::io("open segment", &path, e))?;
        // After a process crash (not a machine crash) the page cache still holds records
        // that were never synced; recovery reports them, so make them durable first.
        active
            .sync_data()
            .map_err(|e| WalError::io("fdatasync", &path, e))?;
        let len = active
            .metadata()
            .map_err(|e| WalError::io("stat segment", &path, e))?
            .len();
        return Ok((kept, active, len, next_lsn));
    }
    let active = create_segment(dir, next_lsn)?;
    Ok((vec![next_lsn], active, SEGMENT_HEADER_LEN as u64, next_lsn))
}

/// The marker file naming the newest segment (see the module documentation).
pub(super) const MARKER: &str = "NEWEST";

/// Reads the marker: the first LSN of the newest segment the log created, if it says.
fn read_marker(dir: &Path) -> Result<Option<Lsn>, WalError> {
    let path = dir.join(MARKER);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io("read marker", &path, e)),
    };
    let shown = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim_end().strip_prefix("newest segment "))
        .and_then(|n| n.parse::<Lsn>().ok())
        .map(Some)
        .ok_or(WalError::BadMarker {
            file: path,
            text: shown,
        })
}

/// Writes the marker naming `first` as the newest segment: temporary file, fsync, rename,
/// directory fsync (a crash leaves the old marker or the new one).
pub(super) fn write_marker(dir: &Path, first: Lsn) -> Result<(), WalError> {
    let path = dir.join(MARKER);
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| WalError::io("create marker", &tmp, e))?;
    f.write_all(format!("newest segment {first}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| WalError::io("write marker", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| WalError::io("rename marker", &path, e))?;
    fsync_dir(dir)
}

/// Refuses a log whose newest segment, as the marker names it, is gone.
fn refuse_missing_newest(dir: &Path, segments: &[Lsn]) -> Result<(), WalError> {
    let Some(newest) = read_marker(dir)? else {
        return Ok(());
    };
    let found = segments.last().copied();
    if found.is_some_and(|f| f >= newest) {
        return Ok(());
    }
    Err(WalError::MissingSegment {
        dir: dir.to_path_buf(),
        marker: dir.join(MARKER),
        newest,
        found,
    })
}

/// Creates the segment starting at `first`: header written and synced, directory fsynced,
/// then the marker names it.
pub(super) fn create_segment(dir: &Path, first: Lsn) -> Result<File, WalError> {
    let path = dir.join(format::segment_name(first));
    let mut f = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io("create segment", &path, e))?;
    f.write_all(&format::encode_segment_header(first))
        .and_then(|()| f.sync_data())
        .map_err(|e| WalError::io("write segment header", &path, e))?;
    fsync_dir(dir)?;
    write_marker(dir, first)?;
    Ok(f)
}
