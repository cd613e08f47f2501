//! `physalia nemesis`: Jepsen-style testing of a real cluster. Starts node processes on
//! 127.0.0.1 (peers linked through proxies the nemesis can cut), runs concurrent clients of
//! every transaction kind against every cell, injects faults on a seeded schedule, heals,
//! waits for recovery, reads every key back, and checks the clients' own history
//! (`physalia lin`), every acknowledged write, the counters, and every cell's traces
//! (`physalia conform`).
//!
//! `DIR` keeps what reproduces a run: `history.jsonl` (the clients' operations, the format
//! of `physalia lin`), `faults.jsonl` (one fault per line), `report.json` (the summary and
//! the command line, seed included), `logs/`, `traces/` and, with `--keep` or after an
//! anomaly, `data/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{Key, Txn, TxnResult, Value};
use serde_json::{json, Value as Json};

mod faults;
mod live;
mod procs;
mod proxy;
mod workload;

use faults::{Env, Fault, Kind, Nemesis};
use procs::Nodes;
use proxy::Partitions;
use workload::{Op, Recorder, Worker};

/// Options of `physalia nemesis`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 valid; 1 an anomaly was found; 2 the run could not be \
carried out (or was interrupted)."
)]
pub struct NemesisArgs {
    /// Directory of the run (created; must not hold a cluster).
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of nodes, 3..=15.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(3..=15))]
    pub nodes: u32,
    /// Number of cells (`c0..`), each on 7 nodes (or all, if fewer), 1..=64.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cells: u32,
    /// How long the clients run while faults are injected (seconds), 5..=86400.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub seconds: u64,
    /// Number of concurrent clients, 1..=64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub clients: u32,
    /// Faults to inject, comma-separated: kill, pause, partition, disk, restart-all,
    /// duplicate-process, hostile; `all` or `none`.
    #[arg(long, default_value = "all", value_parser = Kind::parse_list)]
    pub faults: faults::FaultList,
    /// Seed of the schedule and of the clients' choices [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the nodes' data directories even when the run is valid.
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON document (schema `physalia-nemesis`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not run the live monitor (`physalia monitor --follow`) on the traces during the
    /// run; the traces are still checked by `conform` afterwards.
    #[arg(long)]
    pub no_monitor: bool,
    /// Run every node with this injected bug (only in a build with `--features bugs`; names
    /// as `physalia simulate --bug`).
    #[cfg(feature = "bugs")]
    #[arg(long, value_name = "NAME")]
    pub bug: Option<physalia_impl::bugs::Bug>,
}

/// How long every cell has, after the last fault healed, to serve a write again.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// How long the cluster has to elect a leader in every cell before the run starts.
const WARM_UP: Duration = Duration::from_secs(30);
/// Keys read per final-read transaction.
const READ_BATCH: usize = 64;
/// The time budget of the history and trace checks (seconds, per cell).
const CHECK_TIMEOUT_S: u64 = 300;

/// Runs `physalia nemesis`.
pub fn run(args: &NemesisArgs) -> Result<u8> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let faults: Vec<Kind> = args.faults.0.clone();
    if args.dir.join("cluster.json").exists() {
        bail!(
            "{} already holds a cluster; pick another directory",
            args.dir.display()
        );
    }
    for sub in ["logs", "traces", "data"] {
        fs::create_dir_all(args.dir.join(sub))
            .with_context(|| format!("cannot create {}", args.dir.join(sub).display()))?;
    }
    let dir = fs::canonicalize(&args.dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let outcome = rt.block_on(async {
        tokio::select! {
            r = nemesis(args, &dir, seed, &faults) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C); every node stopped")),
        }
    });
    // Dropping the runtime drops the cluster (every process stopped) if a task still holds it.
    rt.shutdown_timeout(Duration::from_secs(5));
    let report = outcome?;
    let valid = report["verdict"] == "valid";
    let code = match report["verdict"].as_str() {
        Some("valid") => 0,
        Some("anomaly") => 1,
        _ => 2,
    };
    fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if valid && !args.keep {
        let _ = fs::remove_dir_all(dir.join("data"));
    }
    if args.json {
        crate::output::print_json("physalia-nemesis", report)?;
    } else {
        crate::output::emit(&text(&report))?;
    }
    Ok(code)
}

/// Starts the proxies and the nodes, warms up, runs the clients and the schedule, heals,
/// recovers, reads back and checks: the report.
async fn nemesis(args: &NemesisArgs, dir: &Path, seed: u64, kinds: &[Kind]) -> Result<Json> {
    let n = args.nodes;
    let key_file = dir.join("key");
    crate::cluster::write_key(&key_file)?;
    let key = FrameKey::from_file(&key_file)?;
    let net = Partitions::new();
    let mut addrs = Vec::new();
    let mut metrics = Vec::new();
    for _ in 0..n {
        addrs.push(format!("127.0.0.1:{}", crate::cluster::free_port()?));
        metrics.push(format!("127.0.0.1:{}", crate::cluster::free_port()?));
    }
    // The proxy of each pair (lo, hi), dialled by lo.
    let mut dial = vec![Vec::new(); n as usize];
    for lo in 0..n {
        for hi in lo + 1..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = l.local_addr()?.port();
            dial[lo as usize].push(format!("{hi}=127.0.0.1:{port}"));
            tokio::spawn(proxy::serve(
                lo,
                hi,
                l,
                addrs[hi as usize].clone(),
                Arc::clone(&net),
            ));
        }
    }
    let mut common: Vec<String> = [
        "--election-timeout-ms",
        "300",
        "--wal-segment-bytes",
        "262144",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    #[cfg(feature = "bugs")]
    if let Some(b) = args.bug {
        common.extend(["--bug".to_owned(), b.to_string()]);
    }
    common.shrink_to_fit();
    let nodes = Nodes {
        exe: std::env::current_exe().context("cannot find the physalia binary")?,
        dir: dir.to_owned(),
        key_file,
        addrs: addrs.clone(),
        metrics,
        dial: dial.into_iter().map(|d| d.join(",")).collect(),
        cells: args.cells,
        common,
        children: (0..n).map(|_| None).collect(),
        runs: vec![0; n as usize],
        paused: vec![false; n as usize],
        extra: Vec::new(),
    };
    let env = Arc::new(Env {
        nodes: Arc::new(Mutex::new(nodes)),
        net: Arc::clone(&net),
        key: key.clone(),
        dir: dir.to_owned(),
        addrs: addrs.clone(),
        started: Instant::now(),
    });
    let monitor = if args.no_monitor {
        None
    } else {
        Some(live::LiveMonitor::start(dir)?)
    };
    let result = run_phases(args, &env, seed, kinds).await;
    // Stop every process, gracefully (traces flushed), whatever happened; the monitor
    // last, so that it reads every line.
    let env2 = Arc::clone(&env);
    tokio::task::spawn_blocking(move || env2.with(|n| n.stop_all(Duration::from_secs(5))))
        .await
        .ok();
    let monitored = match monitor {
        Some(m) => Some(tokio::task::spawn_blocking(move || m.stop()).await?),
        None => None,
    };
    let mut report = result?;
    check_afterwards(args, dir, &mut report, monitored.as_deref())?;
    Ok(report)
}

/// The phases that need the cluster up; the report so far (before the offline checks).
async fn run_phases(args: &NemesisArgs, env: &Arc<Env>, seed: u64, kinds: &[Kind]) -> Result<Json> {
    for i in 0..args.nodes {
        env.with(|nodes| nodes.start(i, &[]))?;
    }
    for i in 0..args.nodes {
        env.wait_answering(i, WARM_UP)
            .await
            .map_err(|e| anyhow::anyhow!("the cluster did not start: {e}"))?;
    }
    let recorder = Arc::new(Recorder::default());
    let seeds = env.addrs.clone();
    // Every cell elects a leader and serves a write before the clock of the run starts.
    let mut warm = Worker::new(
        u64::from(args.clients) + 1,
        seeds.clone(),
        &env.key,
        seed,
        env.started,
        Arc::clone(&recorder),
    );
    if let Err(cell) = serve_every_cell(&mut warm, args.cells, WARM_UP).await {
        bail!(
            "{cell} did not serve a write within {} s of the start",
            WARM_UP.as_secs()
        );
    }
    let run_start = Instant::now();
    let until = run_start + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let w = Worker::new(
            u64::from(c) + 1,
            seeds.clone(),
            &env.key,
            seed,
            env.started,
            Arc::clone(&recorder),
        );
        clients.push(tokio::spawn(workload::drive(
            w,
            args.cells,
            until,
            Duration::from_millis(20),
        )));
    }
    // The schedule: faults in turn (every kind once before any twice), a rest between them,
    // none begun in the last two seconds.
    let mut nemesis = Nemesis::new(Arc::clone(env), seed);
    let mut order = kinds.to_vec();
    for i in (1..order.len()).rev() {
        order.swap(i, nemesis.rng.below(i as u64 + 1) as usize);
    }
    let mut faults: Vec<Fault> = Vec::new();
    let mut k = 0;
    loop {
        let rest = Duration::from_millis(300 + nemesis.rng.below(900));
        if order.is_empty() || Instant::now() + rest + Duration::from_secs(2) > until {
            break;
        }
        tokio::time::sleep(rest).await;
        let kind = order[k % order.len()];
        k += 1;
        let f = nemesis.inject(kind, args.cells).await;
        if !args.json {
            eprintln!(
                "[{:>7.1} s] {}: {} -> {}{}",
                f.start_ms as f64 / 1000.0,
                kind.name(),
                f.detail,
                f.outcome,
                f.anomaly
                    .as_ref()
                    .map(|a| format!("  ANOMALY: {a}"))
                    .unwrap_or_default()
            );
        }
        faults.push(f);
    }
    let mut workers = Vec::new();
    for c in clients {
        workers.push(c.await.context("a client task failed")?);
    }
    // Heal everything; every node running; then every cell must serve a write in time.
    env.net.heal();
    let mut down = Vec::new();
    for i in 0..args.nodes {
        env.with(|nodes| nodes.resume(i));
        if !env.with(|nodes| nodes.running(i)) {
            down.push(i);
            env.with(|nodes| nodes.start(i, &[]))?;
        }
    }
    let healed = Instant::now();
    let recovered = serve_every_cell(&mut warm, args.cells, RECOVERY_BOUND).await;
    let recovery_ms = healed.elapsed().as_millis() as u64;
    let final_reads = read_back(&mut warm, args.cells, &recorder).await;
    let ops = recorder.ops.lock().map(|o| o.clone()).unwrap_or_default();
    let mut lines = String::new();
    for o in &ops {
        lines += &o.json().to_string();
        lines.push('\n');
    }
    fs::write(env.dir.join("history.jsonl"), lines)?;
    let mut flines = String::new();
    for f in &faults {
        flines += &serde_json::to_string(f)?;
        flines.push('\n');
    }
    fs::write(env.dir.join("faults.jsonl"), flines)?;
    let mut anomalies: Vec<Json> = faults
        .iter()
        .filter_map(|f| {
            f.anomaly
                .as_ref()
                .map(|a| json!({"check": "fault", "fault": f.kind.name(), "what": a}))
        })
        .collect();
    if let Err(cell) = &recovered {
        anomalies.push(json!({"check": "recovery", "what": format!("{cell} served no write within {} s after the last fault healed", RECOVERY_BOUND.as_secs())}));
    }
    if !down.is_empty() {
        anomalies.push(json!({"check": "recovery", "what": format!("nodes {down:?} were not running at the end of the run (restarted)")}));
    }
    let writes = check_writes(&ops, &final_reads, &mut anomalies);
    let counters = check_counters(&ops, &final_reads, &mut anomalies);
    let mut cmd = vec![
        "physalia".to_owned(),
        "nemesis".to_owned(),
        "--dir".into(),
        args.dir.display().to_string(),
        "--nodes".into(),
        args.nodes.to_string(),
        "--cells".into(),
        args.cells.to_string(),
        "--seconds".into(),
        args.seconds.to_string(),
        "--clients".into(),
        args.clients.to_string(),
        "--faults".into(),
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        "--seed".into(),
        seed.to_string(),
    ];
    #[cfg(feature = "bugs")]
    if let Some(b) = args.bug {
        cmd.extend(["--bug".to_owned(), b.to_string()]);
    }
    cmd.shrink_to_fit();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &faults {
        *by_kind.entry(f.kind.name()).or_default() += 1;
    }
    let missing: Vec<&str> = kinds
        .iter()
        .map(|k| k.name())
        .filter(|k| !by_kind.contains_key(k))
        .collect();
    Ok(json!({
        "command": cmd.join(" "), "seed": seed.to_string(), "dir": env.dir.display().to_string(),
        "nodes": args.nodes, "cells": args.cells, "clients": args.clients, "seconds": args.seconds,
        "operations": op_counts(&ops),
        "faults": {"total": faults.len(), "by_kind": by_kind, "not_injected": missing, "list": faults},
        "recovery_ms": recovered.as_ref().ok().map(|()| recovery_ms),
        "acknowledged_writes": writes, "counters": counters,
        "anomalies": anomalies,
    }))
}

/// Writes a key of every cell until each has served one (a leader elected and a majority
/// reachable); `Err(cell)` for the first that did not within `limit`.
async fn serve_every_cell(w: &mut Worker, cells: u32, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    for c in 0..cells {
        let cell = format!("c{c}");
        loop {
            let txn = Txn::Put {
                key: Key("nemesis-probe".into()),
                value: Value::Int(w.issued.into()),
            };
            if matches!(w.run(&cell, txn).await, Some(TxnResult::Put)) {
                break;
            }
            if Instant::now() > deadline {
                return Err(cell);
            }
        }
    }
    Ok(())
}

/// After the run: every register, the counter and every key a client wrote once, read
/// through the log, in batches, and recorded in the history. The values read, per cell.
async fn read_back(
    w: &mut Worker,
    cells: u32,
    rec: &Recorder,
) -> BTreeMap<String, BTreeMap<Key, Option<Value>>> {
    let mut out = BTreeMap::new();
    let ops = rec.ops.lock().map(|o| o.clone()).unwrap_or_default();
    for c in 0..cells {
        let cell = format!("c{c}");
        let mut seen = BTreeMap::new();
        // The registers and the counter one by one (a read of several keys joins them into
        // one search of the linearizability check), the keys written once in batches.
        let mut singles: Vec<Key> = (0..workload::REGISTERS)
            .map(|r| Key(format!("r{r}")))
            .collect();
        singles.push(Key(workload::COUNTER.into()));
        for key in singles {
            for _ in 0..5 {
                let txn = Txn::Get { key: key.clone() };
                if let Some(TxnResult::Get { value }) = w.run(&cell, txn).await {
                    seen.insert(key.clone(), value);
                    break;
                }
            }
        }
        let mut keys = Vec::new();
        for o in ops.iter().filter(|o| o.cell == cell) {
            if let Txn::Put { key, .. } = &o.txn {
                if key.0.starts_with('w') {
                    keys.push(key.clone());
                }
            }
        }
        for batch in keys.chunks(READ_BATCH) {
            let txn = Txn::Txn {
                conditions: vec![],
                reads: batch.to_vec(),
                writes: vec![],
            };
            // A read may time out right after the faults: a few tries.
            for _ in 0..5 {
                if let Some(TxnResult::Txn { reads, .. }) = w.run(&cell, txn.clone()).await {
                    seen.extend(reads);
                    break;
                }
            }
        }
        out.insert(cell, seen);
    }
    out
}

/// Every acknowledged write of a key written once must be read back with its value.
fn check_writes(
    ops: &[Op],
    reads: &BTreeMap<String, BTreeMap<Key, Option<Value>>>,
    anomalies: &mut Vec<Json>,
) -> Json {
    let (mut acked, mut present, mut unread) = (0u64, 0u64, 0u64);
    for o in ops {
        let (Txn::Put { key, value }, Some(TxnResult::Put)) = (&o.txn, &o.result) else {
            continue;
        };
        if !key.0.starts_with('w') {
            continue;
        }
        acked += 1;
        match reads.get(&o.cell).and_then(|r| r.get(key)) {
            Some(Some(v)) if v == value => present += 1,
            Some(got) => anomalies.push(json!({"check": "acknowledged write", "what": format!(
                "{}: the write of {key} = {value} by client {} (op {}) was acknowledged, but {key} reads {}",
                o.cell, o.client, o.op, got.as_ref().map_or("absent".to_owned(), ToString::to_string))})),
            None => unread += 1,
        }
    }
    if unread > 0 {
        anomalies.push(json!({"check": "acknowledged write", "what": format!("{unread} acknowledged writes could not be read back")}));
    }
    json!({"acknowledged": acked, "present": present, "unread": unread})
}

/// Each cell's counter must lie between its acknowledged increments and those plus the
/// increments of unknown outcome.
fn check_counters(
    ops: &[Op],
    reads: &BTreeMap<String, BTreeMap<Key, Option<Value>>>,
    anomalies: &mut Vec<Json>,
) -> Json {
    let mut out = Vec::new();
    for (cell, seen) in reads {
        let (mut acked, mut unknown) = (0u64, 0u64);
        for o in ops
            .iter()
            .filter(|o| &o.cell == cell && matches!(o.txn, Txn::Incr { .. }))
        {
            match &o.result {
                Some(TxnResult::Incr { .. }) => acked += 1,
                None => unknown += 1,
                Some(_) => {}
            }
        }
        let key = Key(workload::COUNTER.into());
        let value = match seen.get(&key) {
            Some(Some(Value::Int(v))) => Some(v.to_string()),
            Some(None) => Some("0".to_owned()),
            _ => None,
        };
        let in_range = value
            .as_ref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v >= acked && v <= acked + unknown);
        if !in_range {
            anomalies.push(json!({"check": "counter", "what": format!(
                "{cell}: the counter reads {}, outside [{acked}, {}] (acknowledged increments, plus those of unknown outcome)",
                value.clone().unwrap_or_else(|| "nothing (unread)".into()), acked + unknown)}));
        }
        out.push(json!({"cell": cell, "value": value, "acknowledged": acked, "unknown": unknown, "exact": in_range}));
    }
    json!(out)
}

/// Operations by kind and outcome.
fn op_counts(ops: &[Op]) -> Json {
    let mut by: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for o in ops {
        let kind = match &o.txn {
            Txn::Get { .. } => "get",
            Txn::Put { .. } => "put",
            Txn::Cas { .. } => "cas",
            Txn::Incr { .. } => "incr",
            Txn::Txn { .. } => "txn",
            Txn::Reconfig { .. } => "reconfig",
        };
        let outcome = match &o.result {
            None => "unknown",
            Some(TxnResult::Rejected { .. } | TxnResult::Overloaded) => "rejected",
            Some(TxnResult::Cas { ok: false, .. } | TxnResult::Txn { ok: false, .. }) => {
                "condition failed"
            }
            Some(TxnResult::Error { .. }) => "failed",
            Some(_) => "ok",
        };
        *by.entry(kind).or_default().entry(outcome).or_default() += 1;
        *totals.entry(outcome).or_default() += 1;
    }
    json!({"total": ops.len(), "by_outcome": totals, "by_kind": by})
}

/// The checks on the files once every node stopped: the history (`physalia lin`) and each
/// cell's traces (`physalia conform`), each a real run of the command; then the verdict.
fn check_afterwards(
    args: &NemesisArgs,
    dir: &Path,
    report: &mut Json,
    monitored: Option<&[Json]>,
) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut anomalies = report["anomalies"].as_array().cloned().unwrap_or_default();
    let mut could_not = Vec::new();
    let started = Instant::now();
    let lin = run_json(
        Command::new(&exe)
            .arg("lin")
            .arg(dir.join("history.jsonl"))
            .args([
                "--sessions",
                "--json",
                "--timeout",
                &CHECK_TIMEOUT_S.to_string(),
            ]),
    )?;
    let mut lin_cells = Vec::new();
    for d in lin["histories"]
        .as_array()
        .or_else(|| lin.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let cell = d["cell"].as_str().unwrap_or("?").to_owned();
        let verdict = d["verdict"].as_str().unwrap_or("?").to_owned();
        match verdict.as_str() {
            "linearizable" => {}
            "not linearizable" => anomalies
                .push(json!({"check": "linearizability", "cell": cell, "what": d["report"]})),
            _ => could_not.push(format!("lin {cell}: {verdict} {}", d["error"])),
        }
        lin_cells.push(json!({"cell": cell, "verdict": verdict, "operations": d["operations"], "seconds": d["seconds"]}));
    }
    if lin_cells.is_empty() {
        could_not.push(format!("physalia lin gave no verdict: {lin}"));
    }
    let lin_s = started.elapsed().as_secs_f64();
    let mut conform_cells = Vec::new();
    let started = Instant::now();
    for c in 0..args.cells {
        let cell = format!("c{c}");
        let d = run_json(
            Command::new(&exe)
                .arg("conform")
                .arg(dir.join("traces").join(&cell))
                .arg("--json"),
        )?;
        let verdict = d["verdict"].as_str().unwrap_or("?").to_owned();
        match verdict.as_str() {
            "conforms" => {}
            "does not conform" => anomalies.push(json!({"check": "conformance", "cell": cell, "what": conform_failure(&cell, &d), "report": d.clone()})),
            _ => could_not.push(format!("conform {cell}: {verdict} {} {}", d["error"], d["inconclusive"])),
        }
        conform_cells.push(json!({"cell": cell, "verdict": verdict, "events": d["events"]}));
    }
    let conform_s = started.elapsed().as_secs_f64();
    if let Some(docs) = monitored {
        let events: Vec<(String, Json)> = conform_cells
            .iter()
            .map(|c| {
                (
                    c["cell"].as_str().unwrap_or("?").to_owned(),
                    c["events"].clone(),
                )
            })
            .collect();
        report["monitor"] = live::check(docs, &events, &mut anomalies, &mut could_not);
    }
    report["linearizability"] = json!({"cells": lin_cells, "seconds": lin_s});
    report["conformance"] = json!({"cells": conform_cells, "seconds": conform_s});
    report["could_not_check"] = json!(could_not);
    report["verdict"] = json!(if !anomalies.is_empty() {
        "anomaly"
    } else if !could_not.is_empty() {
        "unknown"
    } else {
        "valid"
    });
    report["anomalies"] = json!(anomalies);
    Ok(())
}

/// One line on why a cell's traces do not conform (the first finding of the replay, or
/// the trace's own history or liveness verdict).
fn conform_failure(cell: &str, d: &Json) -> String {
    let f = &d["failure"];
    if f.is_object() {
        let finding = &f["findings"][0];
        let detail = if finding.is_object() {
            format!(
                ": logged {}, where {}",
                finding["logged"].as_str().unwrap_or("?"),
                finding["allowed"].as_str().unwrap_or("?")
            )
        } else {
            String::new()
        };
        format!(
            "{cell}: {} at {}:{} (event {}){detail}",
            f["check"].as_str().unwrap_or("?"),
            f["file"].as_str().unwrap_or("?"),
            f["line"],
            f["event"].as_str().unwrap_or("?")
        )
    } else {
        format!(
            "{cell}: the traces' own checks fail: linearizability {}, liveness {}",
            d["linearizability"], d["liveness"]
        )
    }
}

/// Runs a `physalia ... --json` child and parses its document (stdout).
fn run_json(cmd: &mut Command) -> Result<Json> {
    let out = cmd.output().context("cannot run a physalia check")?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).with_context(|| {
        format!(
            "a check printed no JSON document (exit {:?}): {}{}",
            out.status.code(),
            text.chars().take(2000).collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        )
    })
}

/// The Jepsen-style summary.
fn text(r: &Json) -> String {
    let mut t = format!(
        "physalia nemesis: {} nodes, {} cells, {} clients, {} s, seed {}\n",
        r["nodes"],
        r["cells"],
        r["clients"],
        r["seconds"],
        r["seed"].as_str().unwrap_or("?")
    );
    let ops = &r["operations"];
    t += &format!("operations: {}", ops["total"]);
    if let Some(m) = ops["by_outcome"].as_object() {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        t += &format!(" ({})", parts.join(", "));
    }
    t.push('\n');
    if let Some(m) = ops["by_kind"].as_object() {
        for (kind, outs) in m {
            let parts: Vec<String> = outs
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            t += &format!("  {kind:<5} {}\n", parts.join(", "));
        }
    }
    let f = &r["faults"];
    t += &format!("faults: {}", f["total"]);
    if let Some(m) = f["by_kind"].as_object() {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        t += &format!(" ({})", parts.join(", "));
    }
    t.push('\n');
    for x in f["list"].as_array().into_iter().flatten() {
        t += &format!(
            "  {:>6.1}-{:<6.1} s  {:<17} {} -> {}\n",
            x["start_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            x["end_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            x["kind"].as_str().unwrap_or("?"),
            x["detail"].as_str().unwrap_or(""),
            x["outcome"].as_str().unwrap_or("")
        );
    }
    if let Some(n) = f["not_injected"].as_array().filter(|a| !a.is_empty()) {
        t += &format!(
            "  not injected (no time left): {}\n",
            n.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    t += &match r["recovery_ms"].as_u64() {
        Some(ms) => format!(
            "recovery: every cell served a write {:.1} s after the last fault healed\n",
            ms as f64 / 1000.0
        ),
        None => format!("recovery: NOT within {} s\n", RECOVERY_BOUND.as_secs()),
    };
    let w = &r["acknowledged_writes"];
    t += &format!(
        "acknowledged writes present: {} of {}\n",
        w["present"], w["acknowledged"]
    );
    for c in r["counters"].as_array().into_iter().flatten() {
        t += &format!(
            "counter {}: {} (acknowledged increments {}, of unknown outcome {}) {}\n",
            c["cell"].as_str().unwrap_or("?"),
            c["value"].as_str().unwrap_or("unread"),
            c["acknowledged"],
            c["unknown"],
            if c["exact"] == true { "exact" } else { "WRONG" }
        );
    }
    for c in r["linearizability"]["cells"]
        .as_array()
        .into_iter()
        .flatten()
    {
        t += &format!(
            "history {}: {} operations, {}\n",
            c["cell"].as_str().unwrap_or("?"),
            c["operations"],
            c["verdict"].as_str().unwrap_or("?")
        );
    }
    for c in r["conformance"]["cells"].as_array().into_iter().flatten() {
        t += &format!(
            "traces {}: {} events, {}\n",
            c["cell"].as_str().unwrap_or("?"),
            c["events"],
            c["verdict"].as_str().unwrap_or("?")
        );
    }
    let m = &r["monitor"];
    if m.is_object() {
        t += &format!(
            "live monitor: {} events replayed while the run went on, largest lag {} ms, {}\n",
            m["events"],
            m["lag_ms_max"],
            m["verdict"].as_str().unwrap_or("?")
        );
    }
    for a in r["anomalies"].as_array().into_iter().flatten() {
        let what = match &a["what"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Its first line, shortened: the whole of it is in report.json.
        let first: String = what
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        let more = if first.len() < what.len() {
            " ... (all of it in report.json)"
        } else {
            ""
        };
        t += &format!(
            "ANOMALY ({}): {first}{more}\n",
            a["check"].as_str().unwrap_or("?")
        );
    }
    for c in r["could_not_check"].as_array().into_iter().flatten() {
        t += &format!("could not check: {}\n", c.as_str().unwrap_or("?"));
    }
    t += &format!(
        "verdict: {}  (kept in {})\n",
        r["verdict"].as_str().unwrap_or("?").to_uppercase(),
        r["dir"].as_str().unwrap_or("?")
    );
    t
}

#[cfg(test)]
mod tests;
