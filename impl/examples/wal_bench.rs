//! Benchmark of the write-ahead log: group commit against sync-per-record, measured in
//! the same run on the same disk.
//!
//!     cargo run --release -p physalia-impl --example wal_bench -- [SECONDS_PER_CASE] [DIR]
//!
//! For 1, 8 and 64 concurrent writers, each writer loops `append` + `sync_to(its lsn)`
//! with a 128-byte payload for `SECONDS_PER_CASE` (default 1.5, at most 30) or 1 000 000
//! records, whichever comes first:
//!
//! - **group**: the writers call `sync_to` freely; one `fdatasync` covers every pending
//!   caller.
//! - **per-record**: the same writers, but `append` + `sync_to` are serialised by a mutex,
//!   so every record gets its own `fdatasync` (a log without group commit).
//!
//! Prints records/s, fdatasyncs/s, records per fdatasync, the p50/p99 latency of one
//! `append` + `sync_to`, and the ratio of group to per-record throughput, both against
//! per-record with the same writers and against per-record with 1 writer (the rate of
//! one fdatasync after another with no lock handover: with many writers, the serialising
//! mutex itself costs throughput on a small machine, which would flatter group commit).
//! The logs are
//! written in a fresh temporary directory under `DIR` (default: the system temp dir) and
//! deleted afterwards. No thresholds: the figures depend on the disk.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use physalia_impl::wal::{Wal, WalOptions};

const PAYLOAD: usize = 128;
const MAX_RECORDS: u64 = 1_000_000;
const WRITERS: [usize; 3] = [1, 8, 64];

struct Outcome {
    records: u64,
    fsyncs: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i]
    }
}

fn run(base: &std::path::Path, writers: usize, per_record: bool, budget: Duration) -> Outcome {
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open wal");
    let wal = Arc::new(wal);
    let serial = Arc::new(Mutex::new(()));
    let start = Instant::now();
    let deadline = start + budget;
    let per_writer = MAX_RECORDS / writers as u64;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (wal, serial) = (Arc::clone(&wal), Arc::clone(&serial));
            std::thread::spawn(move || {
                let payload = vec![w as u8; PAYLOAD];
                let mut latencies = Vec::new();
                for _ in 0..per_writer {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    let guard = per_record.then(|| serial.lock().expect("bench mutex"));
                    let lsn = wal.append(&payload).expect("append");
                    wal.sync_to(lsn).expect("sync_to");
                    drop(guard);
                    latencies.push(t0.elapsed().as_micros() as u64);
                }
                latencies
            })
        })
        .collect();
    let mut latencies_us: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    let stats = wal.stats();
    Outcome {
        records: stats.appends,
        fsyncs: stats.fsyncs,
        elapsed,
        latencies_us,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args
        .next()
        .map(|s| s.parse().expect("SECONDS_PER_CASE must be a number"))
        .unwrap_or(1.5);
    let secs = secs.clamp(0.1, 30.0);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let budget = Duration::from_secs_f64(secs);
    println!(
        "wal_bench: {PAYLOAD}-byte records, {secs} s per case, logs under {}",
        base.display()
    );
    println!(
        "{:>7}  {:<10}  {:>10}  {:>10}  {:>12}  {:>9}  {:>9}",
        "writers", "mode", "records/s", "fsyncs/s", "recs/fsync", "p50 µs", "p99 µs"
    );
    let mut ceiling = None;
    for writers in WRITERS {
        let per = run(&base, writers, true, budget);
        let group = run(&base, writers, false, budget);
        // One writer syncing each record alone: the rate of a log without group commit
        // when nothing else gets in its way.
        let ceiling = *ceiling.get_or_insert(per.rate(per.records));
        for (mode, o) in [("per-record", &per), ("group", &group)] {
            println!(
                "{:>7}  {:<10}  {:>10.0}  {:>10.0}  {:>12.2}  {:>9}  {:>9}",
                writers,
                mode,
                o.rate(o.records),
                o.rate(o.fsyncs),
                o.records as f64 / o.fsyncs.max(1) as f64,
                o.percentile(0.5),
                o.percentile(0.99),
            );
        }
        let rate = group.rate(group.records);
        println!(
            "{:>7}  group / per-record throughput: {:.2}x with {writers} writers, \
             {:.2}x against 1 writer per-record",
            writers,
            rate / per.rate(per.records).max(f64::MIN_POSITIVE),
            rate / ceiling.max(f64::MIN_POSITIVE),
        );
    }
}
