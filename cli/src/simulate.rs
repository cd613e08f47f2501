//! `physalia simulate`: one seeded, deterministic run of the implementation core under the
//! simulator's fault model (`impl/src/sim/mod.rs`), with online invariant checks and,
//! optionally, per-node traces written through the `tracing` layer of `traces/`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::sim::{run_with_progress, Faults, SimConfig, SimReport};
use physalia_traces::{Config, Header, NodeId, TraceLayer, TraceWriter};
use tracing_subscriber::layer::SubscriberExt;

/// Arguments of `physalia simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The seed: the same seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Nodes in the cell's initial jury. Range: 1..=7.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=7))]
    pub nodes: u32,
    /// Nodes outside the initial jury that moves (`reconfigure`) may add. Range: 0..=8.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub spares: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 3)]
    pub clients: u32,
    /// Simulator events to run.
    #[arg(long, default_value_t = 20_000)]
    pub steps: u64,
    /// Simulated time (ms) after which no fault is injected (GST).
    #[arg(long, default_value_t = 5_000)]
    pub gst: u64,
    /// Faults before GST: `all`, `none`, or a comma-separated subset of
    /// drop,duplicate,partition,crash,reconfigure,disk-loss.
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Compaction: each replica folds its applied prefix into a snapshot every this many
    /// slots (0: never), so that lagging and restarted replicas are taught by snapshot
    /// install.
    #[arg(long, default_value_t = SimConfig::default().options.snapshot_every)]
    pub snapshot_every: u64,
    /// Write one trace file per node into this directory (`n0.jsonl`, ...). Refused if it
    /// already holds trace files (a stale `n8.jsonl` of a larger run would join the next
    /// `conform`), unless `--force`.
    #[arg(long, value_name = "DIR")]
    pub trace_out: Option<PathBuf>,
    /// No progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON document (schema `physalia-simulate`) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// With `--trace-out`: delete the trace files (`*.jsonl`) already in DIR first.
    #[arg(long, requires = "trace_out")]
    pub force: bool,
    /// Run every replica with this injected bug (only in a build with `--features bugs`):
    /// promise-before-durable, accept-lower-ballot, skip-prepare, ignore-promised-values,
    /// commit-on-minority, reply-before-commit, apply-out-of-order, stale-read,
    /// ballot-reuse-after-restart, catchup-without-ballots, config-effective-early,
    /// concurrent-changes, phase1-old-jury, stale-member-votes, vote-after-amnesia,
    /// stale-snapshot.
    #[cfg(feature = "bugs")]
    #[arg(long, value_name = "NAME")]
    pub bug: Option<physalia_impl::bugs::Bug>,
}

fn faults(list: &str) -> Result<Faults> {
    let all = Faults::all();
    let mut f = Faults::none();
    match list {
        "all" => return Ok(all),
        "none" => return Ok(f),
        _ => {}
    }
    for name in list.split(',') {
        match name.trim() {
            "drop" => f.drop_ppm = all.drop_ppm,
            "duplicate" => f.duplicate_ppm = all.duplicate_ppm,
            "partition" => {
                f.partition_ppm = all.partition_ppm;
                f.partition_ms = all.partition_ms;
            }
            "crash" => {
                f.crash_ppm = all.crash_ppm;
                f.restart_min = all.restart_min;
                f.restart_max = all.restart_max;
            }
            "reconfigure" => f.reconfig_ppm = all.reconfig_ppm,
            "disk-loss" => {
                f.disk_loss_ppm = all.disk_loss_ppm;
                f.restart_min = all.restart_min;
                f.restart_max = all.restart_max;
            }
            other => bail!(
                "unknown fault {other:?} in --faults: expected all, none, or a list of \
                 drop, duplicate, partition, crash, reconfigure, disk-loss"
            ),
        }
    }
    Ok(f)
}

/// Runs `physalia simulate`; exit code 0 when every online check held, 1 otherwise.
pub fn run(args: &SimulateArgs) -> Result<u8> {
    let mut cfg = SimConfig {
        seed: args.seed,
        nodes: args.nodes,
        spares: args.spares,
        clients: args.clients,
        steps: args.steps,
        gst: args.gst,
        faults: faults(&args.faults)?,
        #[cfg(feature = "bugs")]
        bug: args.bug,
        ..SimConfig::default()
    };
    cfg.options.snapshot_every = args.snapshot_every;
    #[cfg(feature = "bugs")]
    if let Some(bug) = cfg.bug.filter(|_| !args.json) {
        println!("injected bug: {bug} ({})", bug.description());
    }
    let started = Instant::now();
    let every = (cfg.steps / 100).max(1);
    let bar = crate::progress::bar(cfg.steps, "events", args.quiet || args.json);
    let mut progress = |done: u64, sim_ms: u64| {
        bar.set_position(done);
        bar.set_message(format!("{sim_ms} ms simulated"));
    };
    if let Some(dir) = &args.trace_out {
        clear_traces(dir, args.force)?;
    }
    let report = match &args.trace_out {
        None => run_with_progress(&cfg, every, &mut progress),
        Some(dir) => traced(&cfg, dir, every, &mut progress)?,
    };
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    if args.json {
        #[allow(unused_mut)]
        let mut doc = to_json(&report, wall, args.trace_out.as_deref());
        #[cfg(feature = "bugs")]
        {
            doc["bug"] = serde_json::json!(cfg.bug.map(|b| b.name()));
        }
        crate::output::print_json("physalia-simulate", doc)?;
        return Ok(if report.violations.is_empty() { 0 } else { 1 });
    }
    print_summary(&report, wall);
    if let Some(dir) = &args.trace_out {
        println!(
            "traces: {}/n0.jsonl … n{}.jsonl",
            dir.display(),
            cfg.nodes + cfg.spares - 1
        );
    }
    Ok(if report.violations.is_empty() { 0 } else { 1 })
}

/// The trace header of a simulation: its cell, initial jury, every node (the spares too),
/// α, GST and clock skew.
pub fn sim_header(cfg: &SimConfig) -> Header {
    let mut header = Header::new(
        format!("sim-seed-{}", cfg.seed),
        Config::with_nodes(cfg.nodes),
        cfg.options.alpha,
    );
    header.nodes = (0..cfg.nodes + cfg.spares).map(NodeId).collect();
    header.gst = Some(cfg.gst);
    header.clock_skew = cfg.clock_skew;
    header
}

/// Refuses a trace directory that already holds trace files (`*.jsonl`), or with `force`
/// deletes them; a directory that does not exist yet is fine.
fn clear_traces(dir: &std::path::Path, force: bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut old: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    old.sort();
    if old.is_empty() {
        return Ok(());
    }
    if !force {
        let names: Vec<String> = old
            .iter()
            .take(3)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let more = if old.len() > 3 { ", …" } else { "" };
        bail!(
            "--trace-out {}: the directory already holds {} trace file(s) ({}{more}); \
             `conform` would read them with this run's: choose an empty directory, or add \
             --force to delete them first",
            dir.display(),
            old.len(),
            names.join(", ")
        );
    }
    for p in old {
        std::fs::remove_file(&p).with_context(|| format!("deleting {}", p.display()))?;
    }
    Ok(())
}

/// Runs with the `traces` layer as the default subscriber, one file per node.
fn traced(
    cfg: &SimConfig,
    dir: &std::path::Path,
    every: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimReport> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let header = sim_header(cfg);
    let mut sinks = BTreeMap::new();
    for n in 0..cfg.nodes + cfg.spares {
        let path = dir.join(format!("n{n}.jsonl"));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let writer = TraceWriter::new(BufWriter::new(file), &header)
            .with_context(|| format!("writing {}", path.display()))?;
        sinks.insert(NodeId(n), writer);
    }
    let layer = TraceLayer::new(sinks);
    let (sink, failed) = (layer.sink(), layer.failed());
    let subscriber = tracing_subscriber::registry().with(layer);
    let report =
        tracing::subscriber::with_default(subscriber, || run_with_progress(cfg, every, progress));
    let mut sinks = sink
        .lock()
        .map_err(|_| anyhow::anyhow!("trace sink poisoned"))?;
    for w in sinks.values_mut() {
        w.flush().context("flushing a trace file")?;
    }
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        bail!(
            "{failed} trace events could not be written to {}",
            dir.display()
        );
    }
    Ok(report)
}

/// What a run did not exercise, in words.
fn unexercised(r: &SimReport) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.committed_ops == 0 {
        out.push(
            "no client operation committed: durability, linearizability and the answers' \
             liveness were not exercised",
        );
    }
    if r.simulated_ms <= r.gst {
        out.push("the run ended before GST: liveness was not judged");
    }
    out
}

/// The `--json` document.
fn to_json(r: &SimReport, wall: f64, traces: Option<&std::path::Path>) -> serde_json::Value {
    let l = r.liveness();
    let judged = r.simulated_ms > r.gst;
    serde_json::json!({
        "seed": r.seed,
        "events": r.steps,
        "core_steps": r.core_steps,
        "simulated_ms": r.simulated_ms,
        "wall_s": wall,
        "operations_committed": r.committed_ops,
        "local_reads": r.local_reads,
        "slots_decided": r.decided_slots,
        "gst_ms": r.gst,
        "faults": {
            "dropped": r.dropped, "duplicated": r.duplicated, "partitions": r.partitions,
            "crashes": r.crashes, "disk_losses": r.disk_losses, "moves": r.moves,
            "copies_deleted": r.copies_deleted,
        },
        "commit_index": r.commits,
        "liveness": judged.then(|| serde_json::json!({
            "first_answer_ms": l.first_commit,
            "slowest_answer_ms": l.max_latency,
            "unanswered": l.unanswered,
        })),
        "not_exercised": unexercised(r),
        "violations": r.violations.iter().map(|v| serde_json::json!({
            "property": v.property().name,
            "detail": v.to_string(),
        })).collect::<Vec<_>>(),
        "verdict": if r.violations.is_empty() { "held" } else { "violated" },
        "traces": traces.map(|d| d.display().to_string()),
    })
}

fn print_summary(r: &SimReport, wall: f64) {
    let sim_s = r.simulated_ms as f64 / 1000.0;
    println!(
        "seed {}: {} events, {} core steps, {:.1} s simulated in {:.2} s real ({:.1}× real time)",
        r.seed,
        r.steps,
        r.core_steps,
        sim_s,
        wall,
        sim_s / wall.max(1e-9)
    );
    println!(
        "operations committed: {} ({:.0}/simulated s), local reads: {}, slots decided: {}",
        r.committed_ops,
        r.committed_ops as f64 / sim_s.max(1e-9),
        r.local_reads,
        r.decided_slots
    );
    println!(
        "faults before GST ({} ms): {} dropped, {} duplicated, {} partitions, {} crashes, {} \
         disk losses, {} moves ({} copies deleted)",
        r.gst,
        r.dropped,
        r.duplicated,
        r.partitions,
        r.crashes,
        r.disk_losses,
        r.moves,
        r.copies_deleted
    );
    let commits: Vec<String> = r
        .commits
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Some(c) => format!("n{i} {c}"),
            None => format!("n{i} down"),
        })
        .collect();
    println!("commit index per node at the end: {}", commits.join(", "));
    let l = r.liveness();
    let ms = |v: Option<u64>| v.map_or_else(|| "none".to_owned(), |v| format!("{v} ms"));
    if r.simulated_ms <= r.gst {
        println!(
            "after GST: not judged: the run ended at {} ms, before GST ({} ms)",
            r.simulated_ms, r.gst
        );
    } else {
        println!(
            "after GST: first answer after {}, slowest answer {}, {} unanswered",
            ms(l.first_commit),
            ms(l.max_latency),
            l.unanswered
        );
    }
    for u in unexercised(r) {
        println!("not exercised: {u}");
    }
    if r.violations.is_empty() {
        println!("online checks: all held");
    } else {
        println!("online checks: {} VIOLATION(S)", r.violations.len());
        for v in &r.violations {
            println!("  {v}");
        }
    }
    let _ = std::io::stdout().flush();
}
