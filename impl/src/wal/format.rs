//! The on-disk format: file names, the segment header, record framing and the snapshot
//! file. Pure functions over byte slices; no I/O here. The layout is documented in the
//! module documentation of [`super`].

use crc::{Crc, Table, CRC_32_ISCSI};

use super::Lsn;

/// CRC-32C (Castagnoli, the iSCSI polynomial) with a 16-entry slicing table.
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// The format version written into every segment header and snapshot file.
pub const FORMAT_VERSION: u32 = 1;
/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PHYSWAL\0";
/// The first 8 bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"PHYSSNAP";
/// Bytes of a segment header: magic (8), version (4), first LSN (8), CRC-32C (4).
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Bytes of a record header: payload length (4), CRC-32C (4), LSN (8).
pub const RECORD_HEADER_LEN: usize = 16;
/// Bytes of a snapshot header: magic (8), version (4), LSN (8), state length (8), CRC-32C (4).
pub const SNAPSHOT_HEADER_LEN: usize = 32;
/// The largest payload one record may carry (64 MiB). A length field above this is damage.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// The name of the segment whose first record has LSN `first`.
pub fn segment_name(first: Lsn) -> String {
    format!("wal-{first:020}.log")
}

/// The name of the snapshot covering every record up to `lsn`.
pub fn snapshot_name(lsn: Lsn) -> String {
    format!("snap-{lsn:020}.snap")
}

/// What a directory entry is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// `wal-<first lsn>.log`.
    Segment(Lsn),
    /// `snap-<lsn>.snap`.
    Snapshot(Lsn),
    /// `snap-<lsn>.snap.tmp`: a snapshot whose write did not finish.
    SnapshotTemp,
    /// Starts with `wal-` or `snap-` but does not parse: refused, never ignored.
    Malformed,
    /// Anything else: not ours, left alone.
    Other,
}

/// Classifies a directory entry by its name.
pub fn classify(name: &str) -> FileKind {
    let number = |s: &str| {
        (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<Lsn>().ok())
            .flatten()
    };
    if let Some(rest) = name.strip_prefix("wal-") {
        return match rest.strip_suffix(".log").and_then(number) {
            Some(lsn) => FileKind::Segment(lsn),
            None => FileKind::Malformed,
        };
    }
    if let Some(rest) = name.strip_prefix("snap-") {
        if let Some(n) = rest.strip_suffix(".snap.tmp") {
            return match number(n) {
                Some(_) => FileKind::SnapshotTemp,
                None => FileKind::Malformed,
            };
        }
        return match rest.strip_suffix(".snap").and_then(number) {
            Some(lsn) => FileKind::Snapshot(lsn),
            None => FileKind::Malformed,
        };
    }
    FileKind::Other
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes the header of the segment whose first record has LSN `first`.
pub fn encode_segment_header(first: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first.to_le_bytes());
    let crc = CRC32C.checksum(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    Short,
    /// The magic is not [`SEGMENT_MAGIC`] / [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// The checksum does not match.
    BadChecksum,
    /// A version this build does not read.
    Version(u32),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short => write!(f, "the header is incomplete"),
            HeaderError::BadMagic => write!(f, "the header's magic is wrong"),
            HeaderError::BadChecksum => write!(f, "the header's CRC-32C does not match"),
            HeaderError::Version(v) => write!(
                f,
                "format version {v} is not supported (this build reads version {FORMAT_VERSION})"
            ),
        }
    }
}

/// Decodes a segment header; returns the segment's first LSN.
pub fn decode_segment_header(bytes: &[u8]) -> Result<Lsn, HeaderError> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(HeaderError::Short);
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    if CRC32C.checksum(&bytes[0..20]) != u32_at(bytes, 20) {
        return Err(HeaderError::BadChecksum);
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(u64_at(bytes, 12))
}

/// The CRC of a record: over the length, the LSN and the payload (the header without
/// its CRC field, then the payload).
fn record_crc(len: u32, lsn: Lsn, payload: &[u8]) -> u32 {
    let mut d = CRC32C.digest();
    d.update(&len.to_le_bytes());
    d.update(&lsn.to_le_bytes());
    d.update(payload);
    d.finalize()
}

/// Appends the framed record `(lsn, payload)` to `out`. The caller bounds the payload by
/// [`MAX_PAYLOAD`].
pub fn encode_record(lsn: Lsn, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_PAYLOAD,
        "payload bounded by the caller"
    );
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, lsn, payload).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The outcome of reading one record at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRead {
    /// A whole record whose checksum matches: its LSN and payload range in the buffer;
    /// the next record starts at `end`.
    Valid {
        /// The record's LSN.
        lsn: Lsn,
        /// Start of the payload.
        payload_start: usize,
        /// End of the record (start of the next one).
        end: usize,
    },
    /// Fewer bytes left than a record header.
    ShortHeader,
    /// The length field exceeds [`MAX_PAYLOAD`].
    BadLength(u64),
    /// The record would extend past the end of the buffer.
    PastEnd,
    /// The checksum does not match.
    BadChecksum,
}

/// Reads the record starting at `at` in `bytes`.
pub fn read_record(bytes: &[u8], at: usize) -> RecordRead {
    let rest = bytes.len().saturating_sub(at);
    if rest < RECORD_HEADER_LEN {
        return RecordRead::ShortHeader;
    }
    let len = u32_at(bytes, at);
    if len as usize > MAX_PAYLOAD {
        return RecordRead::BadLength(len.into());
    }
    let payload_start = at + RECORD_HEADER_LEN;
    let end = payload_start + len as usize;
    if end > bytes.len() {
        return RecordRead::PastEnd;
    }
    let lsn = u64_at(bytes, at + 8);
    if record_crc(len, lsn, &bytes[payload_start..end]) != u32_at(bytes, at + 4) {
        return RecordRead::BadChecksum;
    }
    RecordRead::Valid {
        lsn,
        payload_start,
        end,
    }
}

/// Finds the first offset at or after `from` at which a valid record with an LSN in
/// `lsns` starts. Used to tell a torn tail (nothing valid follows) from damage in the
/// middle. The LSN range is the filter that keeps this linear in practice: the CRC is
/// computed only where the header's LSN is plausible.
pub fn find_valid_record(
    bytes: &[u8],
    from: usize,
    lsns: std::ops::RangeInclusive<Lsn>,
) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_HEADER_LEN)?;
    (from..=last_start).find(|&p| {
        lsns.contains(&u64_at(bytes, p + 8))
            && matches!(read_record(bytes, p), RecordRead::Valid { .. })
    })
}

/// Counts the records recognisable in `bytes[from..]` with an LSN in `lsns`, resynchronising
/// byte by byte over damage. Used only to report what a repair discarded.
pub fn count_valid_records(bytes: &[u8], from: usize, lsns: std::ops::RangeInclusive<Lsn>) -> u64 {
    let mut count = 0;
    let mut at = from;
    // Bounded: `at` strictly increases each round (a record is at least a header long),
    // and the search ends at the buffer's end.
    while let Some(p) = find_valid_record(bytes, at, lsns.clone()) {
        let RecordRead::Valid { end, .. } = read_record(bytes, p) else {
            unreachable!("find_valid_record returns valid offsets")
        };
        count += 1;
        at = end;
    }
    count
}

/// Encodes a snapshot file: header, then the state.
pub fn encode_snapshot(lsn: Lsn, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + state.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&(state.len() as u64).to_le_bytes());
    let mut d = CRC32C.digest();
    d.update(&out[0..28]);
    d.update(state);
    out.extend_from_slice(&d.finalize().to_le_bytes());
    out.extend_from_slice(state);
    out
}

/// Why a snapshot file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The header is damaged or of another version.
    Header(HeaderError),
    /// The file's length disagrees with the header's state length.
    Length {
        /// Bytes the header announces after itself.
        expected: u64,
        /// Bytes actually there.
        found: u64,
    },
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Header(h) => write!(f, "{h}"),
            SnapshotError::Length { expected, found } => write!(
                f,
                "the header announces {expected} bytes of state but the file holds {found}"
            ),
        }
    }
}

/// Decodes a snapshot file; returns its LSN and state.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Lsn, &[u8]), SnapshotError> {
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(SnapshotError::Header(HeaderError::Short));
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotError::Header(HeaderError::BadMagic));
    }
    let expected = u64_at(bytes, 20);
    let found = (bytes.len() - SNAPSHOT_HEADER_LEN) as u64;
    if expected != found {
        return Err(SnapshotError::Length { expected, found });
    }
    let state = &bytes[SNAPSHOT_HEADER_LEN..];
    let mut d = CRC32C.digest();
    d.update(&bytes[0..28]);
    d.update(state);
    if d.finalize() != u32_at(bytes, 28) {
        return Err(SnapshotError::Header(HeaderError::BadChecksum));
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Header(HeaderError::Version(version)));
    }
    Ok((u64_at(bytes, 12), state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_classify() {
        assert_eq!(classify(&segment_name(42)), FileKind::Segment(42));
        assert_eq!(classify(&snapshot_name(7)), FileKind::Snapshot(7));
        assert_eq!(
            classify(&format!("{}.tmp", snapshot_name(7))),
            FileKind::SnapshotTemp
        );
        assert_eq!(classify("wal-12.log"), FileKind::Malformed);
        assert_eq!(classify("LOCK"), FileKind::Other);
    }

    #[test]
    fn a_record_round_trips_and_any_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        encode_record(9, b"hello", &mut buf);
        assert_eq!(
            read_record(&buf, 0),
            RecordRead::Valid {
                lsn: 9,
                payload_start: RECORD_HEADER_LEN,
                end: buf.len()
            }
        );
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[byte] ^= 1 << bit;
                assert!(
                    !matches!(read_record(&b, 0), RecordRead::Valid { .. }),
                    "flip of bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn headers_refuse_damage_and_other_versions() {
        let h = encode_segment_header(5);
        assert_eq!(decode_segment_header(&h), Ok(5));
        assert_eq!(decode_segment_header(&h[..10]), Err(HeaderError::Short));
        let mut bad = h;
        bad[14] ^= 1;
        assert_eq!(decode_segment_header(&bad), Err(HeaderError::BadChecksum));
        let snap = encode_snapshot(3, b"state");
        assert_eq!(decode_snapshot(&snap), Ok((3, &b"state"[..])));
        assert!(matches!(
            decode_snapshot(&snap[..snap.len() - 1]),
            Err(SnapshotError::Length { .. })
        ));
    }
}
