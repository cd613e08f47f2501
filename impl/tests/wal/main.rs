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

mod concurrency;
mod recovery;
mod round_trip;
mod snapshots;

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

/// Writes records 1..=n (rolling over at `segment_bytes`) into a fresh directory.
fn write_log(dir: &Path, n: u64, segment_bytes: u64) {
    let (wal, _) = Wal::open(dir, opts(segment_bytes)).unwrap();
    append_all(&wal, 1, n);
}
