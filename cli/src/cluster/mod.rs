//! `physalia cluster up|status|start|stop|kill|restart|move|replace-node|down`: a local
//! cluster of real node processes on 127.0.0.1.
//!
//! `up` writes everything into `DIR`: `key` (the cluster key), `cluster.json` (each node's
//! id, address, metrics address, pid, data directory, log file and command line),
//! `data/n<i>/`,
//! `logs/n<i>.log` and, with `--trace`, `traces/`. `status` and `down` read `cluster.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use physalia_impl::client::{Client, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_impl::node::wire::{NodeStatus, Standing};
use physalia_traces::{Ballot, NodeId, Role};
use serde::{Deserialize, Serialize};

mod lifecycle;
pub(crate) mod moves;
mod replace;

/// `physalia cluster` subcommands.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Start N node processes and wait until each answers.
    Up(UpArgs),
    /// Show each node (up or down, domains) and each cell's jury, distinguished proposer
    /// and commit index. Exit 1 if a node is down.
    Status(StatusArgs),
    /// Start one node by the command line `cluster.json` recorded for it (refused if it
    /// runs) and wait until it answers.
    Start(lifecycle::NodeArgs),
    /// Stop one node (SIGTERM, then SIGKILL after 5 s).
    Stop(lifecycle::NodeArgs),
    /// Kill one node (SIGKILL).
    Kill(lifecycle::NodeArgs),
    /// Stop one node, then start it again by its recorded command line.
    Restart(lifecycle::NodeArgs),
    /// Move a cell: replace one member of its jury by another node (taught first), wait
    /// until the change is in force and print the new jury.
    Move(moves::MoveArgs),
    /// Move every membership of a node to other nodes (one cell, one change at a time, as
    /// `move` does): the recovery of a node whose state was lost, once it rejoined.
    ReplaceNode(replace::ReplaceArgs),
    /// Stop every node (SIGTERM, then SIGKILL after 5 s).
    Down(DirArgs),
}

/// Options of `cluster up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Number of nodes (at least 1).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub nodes: u32,
    /// The cluster's directory (created; must not hold a running cluster).
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of cells (`c0..`, at least 1), each on 7 nodes (or all, if fewer).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub cells: u32,
    /// Record per-node trace files under DIR/traces.
    #[arg(long)]
    pub trace: bool,
    /// Base election timeout (ms) of every node.
    #[arg(long, default_value_t = 300)]
    pub election_timeout_ms: u64,
    /// A topology file (`colony/README.md`): its nodes `n0..n<N-1>` are the cluster's
    /// nodes, labelled with their domains (`--nodes` is then the topology's count).
    #[arg(long, requires = "placement")]
    pub topology: Option<PathBuf>,
    /// A placement file for that topology (`physalia colony place`): every node hosts the
    /// cells placed on it, on their placed juries (`--cells` is then the placement's count).
    #[arg(long, requires = "topology")]
    pub placement: Option<PathBuf>,
}

/// Options naming a cluster directory.
#[derive(Args, Debug)]
pub struct DirArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Options of `cluster status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Print one JSON document (schema `physalia-cluster-status`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `DIR/cluster.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The key file.
    pub key_file: PathBuf,
    /// Number of cells.
    pub cells: u32,
    /// The nodes.
    pub nodes: Vec<NodeEntry>,
}

/// One node of `cluster.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Its id.
    pub id: u32,
    /// Its listen address.
    pub addr: String,
    /// Its metrics address.
    pub metrics: String,
    /// Its process id.
    pub pid: u32,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    /// Its domains in the topology (`region/az/row/rack/power/color`, the levels it has),
    /// if the cluster has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<String>,
    /// Its command line (the program, then its arguments), as `cluster start|restart` run
    /// it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// Runs a `cluster` subcommand.
pub fn run(cmd: &ClusterCommand) -> Result<u8> {
    match cmd {
        ClusterCommand::Up(a) => up(a),
        ClusterCommand::Status(a) => status(a),
        ClusterCommand::Start(a) => lifecycle::run(a, lifecycle::Action::Start),
        ClusterCommand::Stop(a) => lifecycle::run(a, lifecycle::Action::Stop),
        ClusterCommand::Kill(a) => lifecycle::run(a, lifecycle::Action::Kill),
        ClusterCommand::Restart(a) => lifecycle::run(a, lifecycle::Action::Restart),
        ClusterCommand::Move(a) => moves::run(a),
        ClusterCommand::ReplaceNode(a) => replace::run(a),
        ClusterCommand::Down(a) => down(&a.dir),
    }
}

/// A port on 127.0.0.1 that was free a moment ago, below Linux's ephemeral range
/// (32768..) so that outgoing connections do not take it before the node binds it.
pub fn free_port() -> Result<u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
    });
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7919)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port found in 20000..32000")
}

/// Writes a fresh random cluster key (32 bytes, hex) to `path`.
pub fn write_key(path: &Path) -> Result<()> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the cluster key")?;
    fs::write(path, format!("{}\n", hex::encode(bytes)))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `DIR/cluster.json` (a temporary file renamed over it: a reader never sees half).
pub(crate) fn write_cluster(dir: &Path, file: &ClusterFile) -> Result<()> {
    let tmp = dir.join("cluster.json.tmp");
    fs::write(&tmp, serde_json::to_string_pretty(file)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, dir.join("cluster.json"))?;
    Ok(())
}

pub(crate) fn read_cluster(dir: &Path) -> Result<ClusterFile> {
    let path = dir.join("cluster.json");
    let text = fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} (is a cluster up there?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a cluster file", path.display()))
}

/// `cluster up`: starts the node processes, writes `cluster.json` (before waiting, so
/// that `cluster down` can stop them if one never answers), then waits until each node
/// answers a status request.
fn up(a: &UpArgs) -> Result<u8> {
    let placed = placed(a)?;
    let a = &UpArgs {
        nodes: placed.as_ref().map_or(a.nodes, |p| p.domains.len() as u32),
        cells: placed.as_ref().map_or(a.cells, |p| p.cells),
        dir: a.dir.clone(),
        trace: a.trace,
        election_timeout_ms: a.election_timeout_ms,
        topology: a.topology.clone(),
        placement: a.placement.clone(),
    };
    let (dir, key_file) = prepare_dir(a)?;
    let mut nodes = spawn_nodes(a, &dir, &key_file, placed.as_ref())?;
    if let Some(p) = &placed {
        for n in &mut nodes {
            n.domains = p.domains.get(n.id as usize).cloned();
        }
    }
    let file = ClusterFile {
        key_file: key_file.clone(),
        cells: a.cells,
        nodes,
    };
    write_cluster(&dir, &file)?;
    wait_until_answering(&file, &key_file)?;
    println!(
        "cluster of {} nodes and {} cells up in {}",
        a.nodes,
        a.cells,
        dir.display()
    );
    for n in &file.nodes {
        let domains = n
            .domains
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        println!(
            "  n{}  {}  metrics http://{}/metrics  pid {}{domains}",
            n.id, n.addr, n.metrics, n.pid
        );
    }
    Ok(0)
}

/// A cluster laid out by a topology and a placement: each node's domains, the number of
/// cells, and the files (absolute) every node reads.
struct Placed {
    domains: Vec<String>,
    cells: u32,
    topology: PathBuf,
    placement: PathBuf,
}

/// Reads `--topology` and `--placement`, if given: the topology's nodes must be `n0..`
/// without a gap (the cluster's node ids), and the placement must fit it.
fn placed(a: &UpArgs) -> Result<Option<Placed>> {
    let (Some(t), Some(p)) = (&a.topology, &a.placement) else {
        return Ok(None);
    };
    let topo = physalia_colony::topology::Topology::load(t)?;
    let (placement, _) = physalia_colony::placement::Placement::load(p, &topo)?;
    for (i, n) in topo.nodes.iter().enumerate() {
        if n.id.0 as usize != i {
            bail!(
                "{}: a cluster's nodes are n0..n{}, but the topology's node {} is {} (node ids \
                 must run from n0 without a gap)",
                t.display(),
                topo.nodes.len() - 1,
                i,
                n.id
            );
        }
    }
    let domains = topo
        .nodes
        .iter()
        .map(|n| {
            n.domains
                .iter()
                .flatten()
                .map(|d| topo.domains[*d].name.clone())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    Ok(Some(Placed {
        domains,
        cells: u32::try_from(placement.cells.len()).context("too many cells")?,
        topology: fs::canonicalize(t)?,
        placement: fs::canonicalize(p)?,
    }))
}

/// Checks the options, refuses a directory that already holds a cluster, creates it (with
/// `logs/`) and writes a fresh cluster key; returns the canonical directory and the key file.
fn prepare_dir(a: &UpArgs) -> Result<(PathBuf, PathBuf)> {
    if a.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if a.dir.join("cluster.json").exists() {
        bail!(
            "{} already holds a cluster; run `physalia cluster down --dir {}` first or pick another directory",
            a.dir.display(),
            a.dir.display()
        );
    }
    fs::create_dir_all(a.dir.join("logs"))?;
    let dir = fs::canonicalize(&a.dir)?;
    let key_file = dir.join("key");
    write_key(&key_file)?;
    Ok((dir, key_file))
}

/// Picks a listen and a metrics port for every node and starts the node processes, each
/// knowing all the others as peers.
fn spawn_nodes(
    a: &UpArgs,
    dir: &Path,
    key_file: &Path,
    placed: Option<&Placed>,
) -> Result<Vec<NodeEntry>> {
    let mut ports = Vec::new();
    for _ in 0..a.nodes {
        ports.push((free_port()?, free_port()?));
    }
    let addrs: Vec<String> = ports
        .iter()
        .map(|(p, _)| format!("127.0.0.1:{p}"))
        .collect();
    let exe = std::env::current_exe().context("cannot find the physalia binary")?;
    let mut nodes = Vec::new();
    for i in 0..a.nodes {
        let metrics = format!("127.0.0.1:{}", ports[i as usize].1);
        let mut cmd = node_command(a, i, &addrs, &metrics, &exe, dir, key_file)?;
        if let Some(p) = placed {
            cmd.arg("--topology").arg(&p.topology);
            cmd.arg("--placement").arg(&p.placement);
        }
        let command: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start node n{i}"))?;
        nodes.push(NodeEntry {
            id: i,
            addr: addrs[i as usize].clone(),
            metrics,
            pid: child.id(),
            data_dir: dir.join("data").join(format!("n{i}")),
            log: dir.join("logs").join(format!("n{i}.log")),
            domains: None,
            command,
        });
    }
    Ok(nodes)
}

/// The command line of node `i` (`physalia node`, its output into `logs/n<i>.log`)
/// listening on `addrs[i]` with the other addresses as its peers and its metrics on
/// `metrics`.
fn node_command(
    a: &UpArgs,
    i: u32,
    addrs: &[String],
    metrics: &str,
    exe: &Path,
    dir: &Path,
    key_file: &Path,
) -> Result<Command> {
    let peers: Vec<String> = (0..a.nodes)
        .filter(|j| *j != i)
        .map(|j| format!("{j}={}", addrs[j as usize]))
        .collect();
    let data_dir = dir.join("data").join(format!("n{i}"));
    let log = dir.join("logs").join(format!("n{i}.log"));
    let out = fs::File::create(&log)?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .args(["--id", &i.to_string(), "--listen", &addrs[i as usize]])
        .args(["--peers", &peers.join(",")])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--key-file")
        .arg(key_file)
        .args(["--metrics-listen", metrics])
        .args(["--cells", &a.cells.to_string()])
        .args(["--election-timeout-ms", &a.election_timeout_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if a.trace {
        cmd.arg("--trace-dir").arg(dir.join("traces"));
    }
    Ok(cmd)
}

/// Waits until every node of `file` answers a status request, or fails naming the first
/// node that did not within 20 s and its log.
fn wait_until_answering(file: &ClusterFile, key_file: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let key = FrameKey::from_file(key_file)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    rt.block_on(async {
        for n in &file.nodes {
            let mut client = probe_client(&key);
            loop {
                if client.status(&n.addr, 0).await.is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node n{} did not answer within 20 s; see {}",
                        n.id,
                        n.log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    })
}

pub(crate) fn probe_client(key: &FrameKey) -> Client {
    let opts = ClientOptions {
        attempt_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    Client::new(Vec::new(), key.clone(), Client::random_id(), opts)
}

/// One cell as the nodes see it.
#[derive(Debug, Default)]
struct CellView {
    /// The latest jury of the most advanced replica, its epoch and first slot.
    jury: Vec<NodeId>,
    epoch: u64,
    in_force_from: u64,
    /// The commit index of that replica.
    seen_commit: Option<u64>,
    leader: Option<(Ballot, NodeId)>,
    commit: u64,
    replicas: usize,
    /// Each replica: its node, role, promised ballot, commit and applied index, the slot
    /// it votes from (`None`: a learner), and whether it is parked.
    rows: Vec<Row>,
}

/// One replica's row of `cluster status`.
type Row = (NodeId, Role, Ballot, u64, u64, Option<u64>, bool);

fn status(args: &StatusArgs) -> Result<u8> {
    let file = read_cluster(&args.dir)?;
    let key = FrameKey::from_file(&file.key_file)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let views: Vec<(u32, Option<NodeStatus>)> = rt.block_on(async {
        let mut out = Vec::new();
        for n in &file.nodes {
            let mut client = probe_client(&key);
            out.push((n.id, client.status(&n.addr, u32::MAX).await.ok()));
        }
        out
    });
    let mut text = String::new();
    let mut nodes_json = Vec::new();
    let mut cells: BTreeMap<String, CellView> = BTreeMap::new();
    let mut up = 0;
    for (id, s) in &views {
        let entry = file.nodes.iter().find(|n| n.id == *id);
        let domains = entry.and_then(|n| n.domains.clone());
        let addr = entry.map(|n| n.addr.clone());
        let Some(s) = s else {
            text += &format!("n{id}: down\n");
            nodes_json.push(serde_json::json!({
                "node": format!("n{id}"), "addr": addr, "domains": domains, "up": false,
            }));
            continue;
        };
        up += 1;
        let (standing, standing_name) = match s.standing {
            Standing::Member => ("member", "member"),
            Standing::Probation => (
                "on probation (waiting for its peers to confirm its instance)",
                "probation",
            ),
            Standing::Rejoin => ("rejoining as a new instance", "rejoin"),
        };
        let shown_domains = domains
            .as_deref()
            .map(|d| format!(" [{d}]"))
            .unwrap_or_default();
        text += &format!(
            "n{id}{shown_domains}: up, incarnation {}, instance {}, {standing}, {} {}\n",
            s.inc,
            s.instance,
            s.cells_total,
            if s.cells_total == 1 { "cell" } else { "cells" }
        );
        nodes_json.push(serde_json::json!({
            "node": format!("n{id}"), "addr": addr, "domains": domains, "up": true,
            "incarnation": s.inc, "instance": s.instance.to_string(), "standing": standing_name,
            "cells": s.cells_total,
        }));
        for c in &s.cells {
            let v = cells.entry(c.cell.clone()).or_default();
            if v.seen_commit.is_none_or(|seen| c.commit > seen) {
                v.seen_commit = Some(c.commit);
                (v.jury, v.epoch, v.in_force_from) = (c.jury.clone(), c.epoch, c.in_force_from);
            }
            v.commit = v.commit.max(c.commit);
            v.replicas += 1;
            v.rows.push((
                s.node, c.role, c.promised, c.commit, c.applied, c.since, c.parked,
            ));
            if c.role == Role::Leader && v.leader.is_none_or(|(b, _)| b < c.promised) {
                v.leader = Some((c.promised, s.node));
            }
        }
    }
    let total = file.nodes.len();
    text += &format!(
        "{up}/{total} {} up\n",
        if total == 1 { "node" } else { "nodes" }
    );
    let mut cells_json = Vec::new();
    for (name, v) in &cells {
        let members: Vec<String> = v.jury.iter().map(|m| m.to_string()).collect();
        let leader = v
            .leader
            .map_or("none".to_owned(), |(b, n)| format!("{n} (ballot {b})"));
        let change = if v.epoch == 0 {
            "initial jury".to_owned()
        } else {
            format!("epoch {}, in force from slot {}", v.epoch, v.in_force_from)
        };
        text += &format!(
            "{name}: jury [{}] ({change})  distinguished proposer {leader}  commit {}  \
             replicas answering {}\n",
            members.join(","),
            v.commit,
            v.replicas
        );
        let mut rows = Vec::new();
        for (node, role, ballot, commit, applied, since, parked) in &v.rows {
            let votes = since.map_or("learner (not voting)".to_owned(), |s| {
                format!("voting from slot {s}")
            });
            let idle = if *parked { ", parked" } else { "" };
            text += &format!(
                "  {node}: {role:?}, ballot {ballot}, commit {commit}, applied {applied}, {votes}{idle}\n"
            );
            rows.push(serde_json::json!({
                "node": node.to_string(), "role": format!("{role:?}"),
                "ballot": ballot.to_string(), "commit": commit, "applied": applied,
                "since": since, "parked": parked,
            }));
        }
        cells_json.push(serde_json::json!({
            "replicas": rows,
            "cell": name, "jury": members, "epoch": v.epoch, "in_force_from": v.in_force_from,
            "leader": v.leader.map(|(_, n)| n.to_string()),
            "leader_ballot": v.leader.map(|(b, _)| b.to_string()),
            "commit": v.commit, "replicas_answering": v.replicas,
        }));
    }
    if args.json {
        crate::output::print_json(
            "physalia-cluster-status",
            serde_json::json!({
                "dir": args.dir.display().to_string(),
                "nodes_up": up, "nodes_total": total,
                "nodes": nodes_json, "cells": cells_json,
            }),
        )?;
    } else {
        crate::output::emit(&text)?;
    }
    Ok(if up == total { 0 } else { 1 })
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn down(dir: &Path) -> Result<u8> {
    let file = read_cluster(dir)?;
    for n in &file.nodes {
        if alive(n.pid) {
            signal(n.pid, "-TERM");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while file.nodes.iter().any(|n| alive(n.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in &file.nodes {
        if alive(n.pid) {
            println!("n{} (pid {}) ignored SIGTERM; sending SIGKILL", n.id, n.pid);
            signal(n.pid, "-KILL");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while file.nodes.iter().any(|n| alive(n.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive_still: Vec<String> = file
        .nodes
        .iter()
        .filter(|n| alive(n.pid))
        .map(|n| format!("n{} (pid {})", n.id, n.pid))
        .collect();
    if !alive_still.is_empty() {
        println!(
            "still alive after SIGKILL: {}; cluster.json kept",
            alive_still.join(", ")
        );
        return Ok(1);
    }
    fs::rename(dir.join("cluster.json"), dir.join("cluster.json.down"))?;
    println!("cluster in {} is down", dir.display());
    Ok(0)
}
