//! `physalia bench --parts restart`: a full SIGKILL and restart of a 7-node cell holding many
//! slots, tracing on: time to the first commit after the restart, peak RSS per node and
//! trace bytes written, with each cell's log compacted into snapshots (the default) and,
//! as the baseline in the same run, without (`--compact-every 0`: the log grows for ever and
//! a restarted node's `Promise` carries all of it).
//!
//! Bounds: the fill stops at `--restart-slots` or after `--restart-fill-secs`; recovery is
//! waited for at most `--restart-wait-secs`; a node above `--restart-rss-mib` of resident
//! memory stops the run (reported as such): the baseline is known to exhaust memory.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use physalia_traces::{Key, Txn, Value};

use super::{runtime, usage, BenchArgs, LocalCluster};

/// What one run measured.
struct Outcome {
    slots: u64,
    fill_secs: f64,
    trace_before: u64,
    first_commit: Option<f64>,
    peak_rss_kib: Vec<u64>,
    trace_after: u64,
    stopped: Option<String>,
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Peak resident memory (KiB) of a process so far (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `slots` operations (64 closed-loop clients on cell `c0`), bounded by `secs`.
fn fill(cluster: &LocalCluster, slots: u64, secs: u64) -> Result<u64> {
    let rt = runtime()?;
    rt.block_on(cluster.warm(1))?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..64u64 {
        let mut client = cluster.client(c + 1);
        let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
        tasks.push(rt.spawn(async move {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) && done.load(Ordering::Relaxed) < slots {
                let txn = Txn::Put {
                    key: Key(format!("r{c}")),
                    value: Value::Int(i.into()),
                };
                if client.txn("c0", txn).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    while done.load(Ordering::Relaxed) < slots && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), t).await });
    }
    Ok(done.load(Ordering::Relaxed))
}

/// One run: fill, SIGKILL all, restart, wait for the first commit while watching memory.
fn run_once(dir: &Path, args: &BenchArgs, compact_every: u64) -> Result<Outcome> {
    let extra = vec!["--compact-every".to_owned(), compact_every.to_string()];
    let t0 = Instant::now();
    let cluster = LocalCluster::start_with(dir, 7, 1, true, &extra, true)?;
    let slots = fill(&cluster, args.restart_slots, args.restart_fill_secs)?;
    let fill_secs = t0.elapsed().as_secs_f64();
    drop(cluster); // SIGKILL of every node
    let traces = dir.join("traces");
    let trace_before = bytes_under(&traces);
    let restarted = LocalCluster::start_with(dir, 7, 1, true, &extra, false)?;
    let started = Instant::now();
    let pids: Vec<u32> = restarted.children.iter().map(|c| c.id()).collect();
    let rt = runtime()?;
    let committed = Arc::new(AtomicBool::new(false));
    let probe = {
        let mut client = restarted.client(u64::MAX - 7);
        let committed = Arc::clone(&committed);
        rt.spawn(async move {
            loop {
                let txn = Txn::Put {
                    key: Key("after-restart".into()),
                    value: Value::Bool(true),
                };
                if client.txn("c0", txn).await.is_ok() {
                    committed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let limit_kib = args.restart_rss_mib * 1024;
    let wait = Duration::from_secs(args.restart_wait_secs);
    let mut first_commit = None;
    let mut stopped = None;
    while started.elapsed() < wait {
        if committed.load(Ordering::Relaxed) {
            first_commit = Some(started.elapsed().as_secs_f64());
            break;
        }
        if let Some((i, rss)) = pids
            .iter()
            .enumerate()
            .map(|(i, p)| (i, usage(*p).map_or(0, |u| u.0)))
            .find(|(_, rss)| *rss > limit_kib)
        {
            stopped = Some(format!(
                "n{i} reached {} MiB resident (limit {} MiB)",
                rss / 1024,
                args.restart_rss_mib
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if first_commit.is_none() && stopped.is_none() {
        stopped = Some(format!("no commit within {} s", args.restart_wait_secs));
    }
    probe.abort();
    // Recovery traffic for a moment after the first commit, so that trace growth shows.
    std::thread::sleep(Duration::from_secs(2).min(wait));
    let peak_rss_kib = pids.iter().map(|p| peak_rss(*p)).collect();
    drop(restarted);
    let trace_after = bytes_under(&traces).saturating_sub(trace_before);
    Ok(Outcome {
        slots,
        fill_secs,
        trace_before,
        first_commit,
        peak_rss_kib,
        trace_after,
        stopped,
    })
}

fn show(args: &BenchArgs, label: &str, o: &Outcome) -> serde_json::Value {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let peak = o.peak_rss_kib.iter().copied().max().unwrap_or(0);
    let mean = o.peak_rss_kib.iter().sum::<u64>() / o.peak_rss_kib.len().max(1) as u64;
    let first = match (o.first_commit, &o.stopped) {
        (Some(t), _) => format!("first commit {t:.2} s after the restart"),
        (None, Some(why)) => format!("NO commit ({why})"),
        (None, None) => "no commit".to_owned(),
    };
    super::say(args, &format!(
        "restart ({label}): {} slots in cell c0 ({:.0} s to write, {:.1} MiB of trace); SIGKILL of all 7 and restart with tracing: {first}; peak RSS per node max {} MiB, mean {} MiB; trace written after the restart {:.1} MiB",
        o.slots,
        o.fill_secs,
        mib(o.trace_before),
        peak / 1024,
        mean / 1024,
        mib(o.trace_after)
    ));
    serde_json::json!({
        "slots": o.slots, "fill_s": o.fill_secs, "trace_before_bytes": o.trace_before,
        "first_commit_s": o.first_commit, "stopped": o.stopped,
        "peak_rss_kib_max": peak, "peak_rss_kib_mean": mean, "trace_after_bytes": o.trace_after,
    })
}

/// Runs the part: compaction on, then the baseline without it (on its own directory).
pub fn restart(dir: &Path, args: &BenchArgs) -> Result<serde_json::Value> {
    let on = run_once(
        &dir.join("restart-compacted"),
        args,
        physalia_impl::core::Options::default().snapshot_every,
    )
    .context("the restart run with compaction")?;
    let compacted = show(args, "logs compacted", &on);
    let off = run_once(&dir.join("restart-uncompacted"), args, 0)
        .context("the baseline restart run without compaction")?;
    let baseline = show(args, "baseline, no compaction", &off);
    let trace_ratio = on.trace_after as f64 / off.trace_after.max(1) as f64;
    let commit_ratio = match (on.first_commit, off.first_commit) {
        (Some(a), Some(b)) => Some(a / b.max(1e-9)),
        _ => None,
    };
    if let Some(r) = commit_ratio {
        super::say(args, &format!(
            "restart: time to first commit compacted/baseline {r:.3}; trace after restart compacted/baseline {trace_ratio:.3}"
        ));
    }
    Ok(serde_json::json!({
        "compacted": compacted,
        "baseline_uncompacted": baseline,
        "ratio_first_commit": commit_ratio,
        "ratio_trace_after": trace_ratio,
    }))
}
