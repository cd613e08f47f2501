//! `physalia bench`: one benchmark command. `--suite` picks what runs: `model` (the
//! stateright model on the CI configuration), `tla` (TLC on `safety`), `replay` (traces of
//! 10⁴ events and up, end to end), `lin` (the linearizability checker against a baseline
//! search), `sim` (the simulator with traces off and on), `node` (the production node on
//! loopback with real processes, the parts below), or `all`; the figures are then compared
//! with the performance targets ([`targets`]). See [`suites`].
//!
//! Every part is bounded in time and prints absolute figures (and same-run ratios where
//! there is a baseline). The node's parts (`--parts`):
//! - `latency`: one client on a 7-node cell (fsync on): commit latency p50/p99.
//! - `throughput`: 64 clients on one cell, and 64 clients spread over 64 cells.
//! - `tracing`: the one-cell throughput with per-node trace files on versus off.
//! - `idle`: memory per idle cell and idle CPU with N cells (default 10k and 100k) on each
//!   of 3 nodes, against a 1-cell baseline in the same run.
//! - `restart`: SIGKILL and restart of 7 nodes holding many slots, tracing on, with each
//!   cell's log compacted and, as the baseline, without (see [`restart`]).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::client::{Client, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{ClientId, Key, Txn, Value as KvValue};
use serde_json::{json, Value};

use crate::cluster::{free_port, write_key};

mod restart;
mod suites;
mod targets;

/// Options of `physalia bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which suites to run (comma-separated): model, tla, replay, lin, sim, node, all.
    #[arg(long, default_value = "node")]
    pub suite: String,
    /// The replay suite's largest trace (events): 10⁴, then ×10 up to this.
    #[arg(long, default_value_t = 100_000)]
    pub replay_events: u64,
    /// Operations of the lin suite's history.
    #[arg(long, default_value_t = 10_000)]
    pub lin_ops: usize,
    /// Simulator events of the sim suite's run.
    #[arg(long, default_value_t = 300_000)]
    pub sim_steps: u64,
    /// The node suite's parts to run (comma-separated): latency, throughput, tracing, idle, restart
    /// (not in the default set: it writes 10⁵ slots twice).
    #[arg(long, default_value = "latency,throughput,tracing,idle")]
    pub parts: String,
    /// Seconds each throughput or latency run lasts.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent clients of the throughput runs.
    #[arg(long, default_value_t = 64)]
    pub clients: u64,
    /// Cell counts of the idle runs (comma-separated).
    #[arg(long, default_value = "10000,100000")]
    pub idle_cells: String,
    /// Slots the `restart` part writes into its cell before killing every node.
    #[arg(long, default_value_t = 100_000)]
    pub restart_slots: u64,
    /// Longest time (s) the `restart` part spends writing them.
    #[arg(long, default_value_t = 600)]
    pub restart_fill_secs: u64,
    /// Longest wait (s) for the first commit after the restart.
    #[arg(long, default_value_t = 120)]
    pub restart_wait_secs: u64,
    /// The `restart` part stops a run where a node exceeds this resident memory (MiB).
    #[arg(long, default_value_t = 2048)]
    pub restart_rss_mib: u64,
    /// Working directory (node data, logs, traces); a temporary one if not given.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON document (schema `physalia-bench`) with every part's figures; the
    /// text lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

/// Prints a result line: on stdout, or on stderr when stdout carries the JSON document.
fn say(args: &BenchArgs, line: &str) {
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Node processes for one benchmark run; killed on drop.
struct LocalCluster {
    addrs: Vec<String>,
    metrics: Vec<String>,
    children: Vec<Child>,
    key: FrameKey,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl LocalCluster {
    fn start(dir: &Path, nodes: u32, cells: u32, trace: bool) -> Result<LocalCluster> {
        LocalCluster::start_with(dir, nodes, cells, trace, &[], true)
    }

    /// Starts `nodes` node processes with `extra` arguments each; `fresh`: in a new
    /// directory (otherwise on the data, key and traces already in `dir`, as after a crash).
    fn start_with(
        dir: &Path,
        nodes: u32,
        cells: u32,
        trace: bool,
        extra: &[String],
        fresh: bool,
    ) -> Result<LocalCluster> {
        let key_file = dir.join("key");
        if fresh {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir.join("logs"))?;
            write_key(&key_file)?;
        }
        let key = FrameKey::from_file(&key_file)?;
        let mut addrs = Vec::new();
        let mut metrics = Vec::new();
        let ports = dir.join("ports");
        if fresh {
            for _ in 0..nodes {
                addrs.push(format!("127.0.0.1:{}", free_port()?));
                metrics.push(format!("127.0.0.1:{}", free_port()?));
            }
            fs::write(
                &ports,
                format!("{}\n{}\n", addrs.join(","), metrics.join(",")),
            )?;
        } else {
            // A restart listens where the nodes listened before.
            let text = fs::read_to_string(&ports)?;
            let mut lines = text.lines();
            let mut next = || -> Vec<String> {
                lines
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            };
            addrs = next();
            metrics = next();
        }
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for i in 0..nodes {
            let peers: Vec<String> = (0..nodes)
                .filter(|j| *j != i)
                .map(|j| format!("{j}={}", addrs[j as usize]))
                .collect();
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("logs").join(format!("n{i}.log")))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("node")
                .args(["--id", &i.to_string(), "--listen", &addrs[i as usize]])
                .args(["--peers", &peers.join(",")])
                .arg("--data-dir")
                .arg(dir.join("data").join(format!("n{i}")))
                .arg("--key-file")
                .arg(&key_file)
                .args(["--metrics-listen", &metrics[i as usize]])
                .args(["--cells", &cells.to_string()])
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            if trace {
                cmd.arg("--trace-dir").arg(dir.join("traces"));
            }
            children.push(cmd.spawn().context("cannot start a node")?);
        }
        let c = LocalCluster {
            addrs,
            metrics,
            children,
            key,
        };
        for i in 0..nodes as usize {
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.metric(i, "physalia_cells ").is_err() {
                if Instant::now() > deadline {
                    bail!(
                        "node n{i} did not come up; see {}",
                        dir.join("logs").display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(c)
    }

    fn metric(&self, i: usize, prefix: &str) -> Result<u64> {
        let mut s = TcpStream::connect(&self.metrics[i])?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no metric {prefix}"))
    }

    fn client(&self, id: u64) -> Client {
        let opts = ClientOptions {
            deadline: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        Client::new(self.addrs.clone(), self.key.clone(), ClientId(id), opts)
    }

    /// Waits until `cell` commits a write (a leader is in place).
    async fn warm(&self, cells: u32) -> Result<()> {
        let mut c = self.client(u64::MAX - 3);
        for i in 0..cells {
            c.put(&format!("c{i}"), "warm", KvValue::Bool(true))
                .await
                .with_context(|| format!("cell c{i} never served a write"))?;
        }
        Ok(())
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs `clients` closed-loop clients for `secs` seconds (client `c` on cell
/// `c % cells`); returns (operations, latencies in µs).
fn load(
    rt: &tokio::runtime::Runtime,
    cluster: &LocalCluster,
    clients: u64,
    cells: u32,
    secs: u64,
) -> Result<(u64, Vec<u64>)> {
    rt.block_on(cluster.warm(cells))?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = cluster.client(c + 1);
        let (stop, done, lat, errors) = (
            Arc::clone(&stop),
            Arc::clone(&done),
            Arc::clone(&lat),
            Arc::clone(&errors),
        );
        let cell = format!("c{}", c % u64::from(cells.max(1)));
        tasks.push(rt.spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let txn = Txn::Put {
                    key: Key(format!("b{c}")),
                    value: KvValue::Int(i.into()),
                };
                let t = Instant::now();
                match client.txn(&cell, txn).await {
                    Ok(_) => {
                        mine.push(t.elapsed().as_micros() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            lat.lock().expect("not poisoned").extend(mine);
        }));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let ops = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), t).await });
    }
    let e = errors.load(Ordering::Relaxed);
    if e > 0 {
        eprintln!("    ({e} operations failed or timed out)");
    }
    let mut l = std::mem::take(&mut *lat.lock().expect("not poisoned"));
    l.sort_unstable();
    let per_sec = (ops as f64 / elapsed.as_secs_f64()) as u64;
    Ok((per_sec, l))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn latency(dir: &Path, args: &BenchArgs) -> Result<Value> {
    let rt = runtime()?;
    let cluster = LocalCluster::start(&dir.join("latency"), 7, 1, false)?;
    let (per_sec, l) = load(&rt, &cluster, 1, 1, args.seconds)?;
    let (p50, p99, max) = (
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 1.0),
    );
    say(args, &format!(
        "latency: 1 client, 7-node cell, fsync on: p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms  ({} commits, {per_sec}/s)",
        l.len()
    ));
    Ok(json!({
        "clients": 1, "nodes": 7, "commits": l.len(), "commits_per_s": per_sec,
        "p50_ms": p50, "p99_ms": p99, "max_ms": max,
    }))
}

fn throughput(dir: &Path, args: &BenchArgs) -> Result<Value> {
    let rt = runtime()?;
    let one = LocalCluster::start(&dir.join("tp-one"), 7, 1, false)?;
    let (a, la) = load(&rt, &one, args.clients, 1, args.seconds)?;
    drop(one);
    let cells = args.clients.min(u64::from(u32::MAX)) as u32;
    let many = LocalCluster::start(&dir.join("tp-many"), 7, cells, false)?;
    let (b, lb) = load(&rt, &many, args.clients, cells, args.seconds)?;
    let ratio = b as f64 / a.max(1) as f64;
    say(args, &format!(
        "throughput: {} clients, 7 nodes: one cell {a} ops/s (p50 {:.1} ms, p99 {:.1} ms); spread over {cells} cells {b} ops/s (p50 {:.1} ms, p99 {:.1} ms); ratio {ratio:.2}",
        args.clients,
        percentile(&la, 0.5),
        percentile(&la, 0.99),
        percentile(&lb, 0.5),
        percentile(&lb, 0.99),
    ));
    Ok(json!({
        "clients": args.clients, "nodes": 7,
        "one_cell": {"ops_per_s": a, "p50_ms": percentile(&la, 0.5), "p99_ms": percentile(&la, 0.99)},
        "spread": {"cells": cells, "ops_per_s": b, "p50_ms": percentile(&lb, 0.5), "p99_ms": percentile(&lb, 0.99)},
        "ratio_spread_to_one_cell": ratio,
    }))
}

fn tracing_cost(dir: &Path, args: &BenchArgs) -> Result<Value> {
    let rt = runtime()?;
    let off = LocalCluster::start(&dir.join("trace-off"), 7, 1, false)?;
    let (a, _) = load(&rt, &off, args.clients, 1, args.seconds)?;
    drop(off);
    let on = LocalCluster::start(&dir.join("trace-on"), 7, 1, true)?;
    let (b, _) = load(&rt, &on, args.clients, 1, args.seconds)?;
    let ratio = b as f64 / a.max(1) as f64;
    say(
        args,
        &format!(
            "tracing: {} clients on one 7-node cell: off {a} ops/s, on {b} ops/s, on/off {ratio:.2}",
            args.clients,
        ),
    );
    Ok(json!({
        "clients": args.clients, "off_ops_per_s": a, "on_ops_per_s": b, "ratio_on_to_off": ratio,
    }))
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> Result<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(") ").context("stat format")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok((rss, ticks))
}

/// Starts 3 nodes with `cells` cells each, waits until every cell is parked, and returns
/// (mean RSS KiB per node, mean CPU % per node over `secs`, seconds to settle).
fn idle_run(dir: &Path, cells: u32, secs: u64) -> Result<(u64, f64, f64)> {
    let t0 = Instant::now();
    let cluster = LocalCluster::start(dir, 3, cells, false)?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let parked: Vec<u64> = (0..3)
            .map(|i| cluster.metric(i, "physalia_parked_cells ").unwrap_or(0))
            .collect();
        if parked.iter().all(|p| *p >= u64::from(cells)) {
            break;
        }
        if Instant::now() > deadline {
            bail!("{cells} cells did not all go idle within 180 s: parked {parked:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let settle = t0.elapsed().as_secs_f64();
    let pids: Vec<u32> = cluster.children.iter().map(Child::id).collect();
    let before: Vec<(u64, u64)> = pids.iter().map(|p| usage(*p)).collect::<Result<_>>()?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<(u64, u64)> = pids.iter().map(|p| usage(*p)).collect::<Result<_>>()?;
    let wall = start.elapsed().as_secs_f64();
    let rss = after.iter().map(|a| a.0).sum::<u64>() / 3;
    let ticks: u64 = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).sum();
    let cpu = ticks as f64 / 100.0 / wall / 3.0 * 100.0;
    Ok((rss, cpu, settle))
}

fn idle(dir: &Path, args: &BenchArgs) -> Result<Value> {
    let counts: Vec<u32> = args
        .idle_cells
        .split(',')
        .map(|s| s.trim().parse().context("--idle-cells"))
        .collect::<Result<_>>()?;
    let secs = args.seconds.max(1);
    let (base_rss, base_cpu, _) = idle_run(&dir.join("idle-1"), 1, secs)?;
    say(args, &format!(
        "idle: baseline 1 cell on each of 3 nodes: RSS {base_rss} KiB per node, CPU {base_cpu:.2} % per node"
    ));
    let mut runs = Vec::new();
    for n in counts {
        let (rss, cpu, settle) = match idle_run(&dir.join(format!("idle-{n}")), n, secs) {
            Ok(r) => r,
            Err(e) => {
                // Reported, and the other counts still measured.
                say(
                    args,
                    &format!("idle: {n} cells on each of 3 nodes: could not run: {e:#}"),
                );
                runs.push(json!({ "cells_per_node": n, "error": format!("{e:#}") }));
                continue;
            }
        };
        let per_cell = (rss.saturating_sub(base_rss)) as f64 * 1024.0 / f64::from(n);
        say(args, &format!(
            "idle: {n} cells on each of 3 nodes: RSS {rss} KiB per node, {per_cell:.0} bytes per idle cell, CPU {cpu:.2} % per node (baseline {base_cpu:.2} %), all parked {settle:.1} s after start"
        ));
        runs.push(json!({
            "cells_per_node": n, "rss_kib_per_node": rss, "bytes_per_idle_cell": per_cell,
            "cpu_percent_per_node": cpu, "seconds_to_park": settle,
        }));
    }
    Ok(json!({
        "nodes": 3,
        "baseline": {"cells_per_node": 1, "rss_kib_per_node": base_rss, "cpu_percent_per_node": base_cpu},
        "runs": runs,
    }))
}

/// Runs the chosen suites (the node's chosen parts among them).
pub fn run(args: &BenchArgs) -> Result<u8> {
    let mut chosen: Vec<&str> = args.suite.split(',').map(str::trim).collect();
    if let Some(bad) = chosen.iter().find(|s| !SUITES.contains(s) && **s != "all") {
        bail!("unknown suite `{bad}` ({}, all)", SUITES.join(", "));
    }
    if chosen.contains(&"all") {
        chosen = SUITES.to_vec();
    }
    let parts: Vec<&str> = args.parts.split(',').map(str::trim).collect();
    if let Some(bad) = parts.iter().find(|p| !PARTS.contains(p)) {
        bail!("unknown part `{bad}` ({})", PARTS.join(", "));
    }
    let mut suites = serde_json::Map::new();
    let mut failed = 0;
    for suite in SUITES.iter().filter(|s| chosen.contains(s)) {
        let v = match *suite {
            "model" => suites::model(args),
            "tla" => suites::tla(args),
            "replay" => suites::replay(args),
            "lin" => suites::lin(args),
            "sim" => suites::sim(args),
            _ => node_parts(args, &parts, &mut failed).map(Value::Object),
        };
        // A suite that cannot run is reported and the others still run.
        let v = v.unwrap_or_else(|e| {
            failed += 1;
            say(args, &format!("{suite}: could not run: {e:#}"));
            json!({ "error": format!("{e:#}") })
        });
        suites.insert((*suite).to_owned(), v);
    }
    let targets = targets::compare(&suites);
    if chosen != ["node"] {
        for line in targets::render(&targets) {
            say(args, &line);
        }
    }
    if args.json {
        let parts = suites.get("node").cloned().unwrap_or_else(|| json!({}));
        crate::output::print_json(
            "physalia-bench",
            json!({
                "seconds_per_run": args.seconds, "parts": parts, "suites": suites,
                "targets": targets, "could_not_run": failed,
            }),
        )?;
    }
    // 2: some figure could not be measured (nothing here judges a figure).
    Ok(if failed > 0 { 2 } else { 0 })
}

/// The node suite: the chosen parts, on loopback with real processes.
fn node_parts(
    args: &BenchArgs,
    parts: &[&str],
    failed: &mut usize,
) -> Result<serde_json::Map<String, Value>> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("physalia-bench-{}", std::process::id()));
            tmp
        }
    };
    fs::create_dir_all(&dir)?;
    say(
        args,
        &format!(
            "physalia bench in {} ({} s per run)",
            dir.display(),
            args.seconds
        ),
    );
    let mut figures = serde_json::Map::new();
    for part in parts {
        let v = match *part {
            "latency" => latency(&dir, args),
            "throughput" => throughput(&dir, args),
            "tracing" => tracing_cost(&dir, args),
            "idle" => idle(&dir, args),
            _ => restart::restart(&dir, args),
        };
        let v = v.unwrap_or_else(|e| {
            *failed += 1;
            say(args, &format!("{part}: could not run: {e:#}"));
            json!({ "error": format!("{e:#}") })
        });
        figures.insert((*part).to_owned(), v);
    }
    if args.dir.is_none() {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(figures)
}

/// The suites `--suite` may name (besides `all`), in the order they run.
const SUITES: [&str; 6] = ["model", "tla", "replay", "lin", "sim", "node"];

/// The parts `--parts` may name.
const PARTS: [&str; 5] = ["latency", "throughput", "tracing", "idle", "restart"];
