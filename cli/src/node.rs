//! `physalia node`: run one production node until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::core::Options;
use physalia_impl::node::{self, event::Event, frame::FrameKey, trace::CellFiles, NodeConfig};
use physalia_traces::{NodeId, TraceLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Options of `physalia node`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's id (its number: `3` is n3).
    #[arg(long)]
    pub id: u32,
    /// Address to listen on for peers and clients (e.g. 127.0.0.1:7000).
    #[arg(long)]
    pub listen: String,
    /// Every other node as ID=ADDR, comma-separated (e.g. `1=127.0.0.1:7001,2=...`).
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Dial these peers at another address than `--peers` gives, as ID=ADDR,... (a proxy in
    /// front of them, such as the partitions of `physalia nemesis`); clients are still told
    /// the `--peers` address.
    #[arg(long, default_value = "")]
    pub dial: String,
    /// Directory of this node's write-ahead log.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// File holding the cluster key (at least 64 hex digits).
    #[arg(long)]
    pub key_file: PathBuf,
    /// Write per-cell trace files here (`DIR/<cell>/n<id>.i<inc>.jsonl`).
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Number of cells in the cluster (`c0..`, at least 1); this node hosts those whose
    /// jury holds it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub cells: u32,
    /// Host the cells of this placement file (`physalia colony place`, TOML or JSON) on
    /// their placed juries instead of the rotation over `--cells`; needs `--topology`.
    #[arg(long, requires = "topology")]
    pub placement: Option<PathBuf>,
    /// The topology the placement was made for (its nodes are the cluster's: `n<id>`).
    #[arg(long, requires = "placement")]
    pub topology: Option<PathBuf>,
    /// Discard a damaged suffix of the write-ahead log instead of refusing to start.
    #[arg(long)]
    pub repair: bool,
    /// Re-enter as a new instance after this node's state was lost (a wiped or replaced data
    /// directory, which the node refuses to start from): it hosts no copy of any cell until
    /// reconfiguration adds it again; peers record the new instance. Then run `physalia
    /// cluster replace-node --node ID` to move its old memberships.
    #[arg(long)]
    pub rejoin: bool,
    /// Snapshot the durable state (compacting the log) after this many WAL appends; 0: never.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Fold each cell's applied prefix into a per-cell snapshot every this many slots (the
    /// bound on a cell's log, and on what a `Promise` carries); 0: never (logs grow for ever
    /// and a restarted node's promises carry them whole: only for comparison).
    #[arg(long, default_value_t = Options::default().snapshot_every)]
    pub compact_every: u64,
    /// Size of a WAL segment (bytes; at least 4096).
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(4096..))]
    pub wal_segment_bytes: u64,
    /// Base election timeout (ms), 1..=600000.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub election_timeout_ms: u64,
    /// Leader heartbeat interval (ms), 1..=600000; also the node's coalesced heartbeat.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub heartbeat_ms: u64,
    /// Run this node's replicas with an injected bug (only in a build with `--features
    /// bugs`; names as `physalia simulate --bug`).
    #[cfg(feature = "bugs")]
    #[arg(long, value_name = "NAME")]
    pub bug: Option<physalia_impl::bugs::Bug>,
}

/// Parses `ID=ADDR,ID=ADDR`.
pub fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, String>> {
    parse_id_addrs("--peers", s)
}

/// Parses `ID=ADDR,ID=ADDR` given as `flag`.
fn parse_id_addrs(flag: &str, s: &str) -> Result<BTreeMap<NodeId, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, addr)) = part.split_once('=') else {
            bail!("{flag}: `{part}` is not ID=ADDR");
        };
        let id: u32 = id
            .trim()
            .parse()
            .with_context(|| format!("{flag}: `{id}` in `{part}` is not a node number"))?;
        if out.insert(NodeId(id), addr.trim().to_owned()).is_some() {
            bail!("{flag}: node {id} is listed twice");
        }
    }
    Ok(out)
}

impl NodeArgs {
    fn config(&self) -> Result<NodeConfig> {
        let peers = parse_peers(&self.peers)?;
        if peers.contains_key(&NodeId(self.id)) {
            bail!("--peers lists this node ({}) itself", self.id);
        }
        if self.cells == 0 {
            bail!("--cells must be at least 1");
        }
        let dial = parse_id_addrs("--dial", &self.dial)?;
        if let Some(id) = dial.keys().find(|id| !peers.contains_key(id)) {
            bail!("--dial: {id} is not one of the --peers");
        }
        let key = FrameKey::from_file(&self.key_file)?;
        let placed = match (&self.placement, &self.topology) {
            (Some(p), Some(t)) => Some(placed_cells(NodeId(self.id), &peers, t, p)?),
            _ => None,
        };
        let options = Options {
            election_timeout: self.election_timeout_ms.max(1),
            heartbeat_interval: self.heartbeat_ms.max(1),
            // A candidate re-sends Prepare at half the election timeout: often enough to
            // win soon, rarely enough not to swamp peers when many cells stand for election.
            prepare_interval: (self.election_timeout_ms / 2).max(1),
            snapshot_every: self.compact_every,
            #[cfg(feature = "bugs")]
            bug: self.bug,
            ..Options::default()
        };
        Ok(NodeConfig {
            id: NodeId(self.id),
            listen: self.listen.clone(),
            peers,
            dial,
            data_dir: self.data_dir.clone(),
            key,
            trace_dir: self.trace_dir.clone(),
            metrics_listen: self.metrics_listen.clone(),
            cells: self.cells,
            placed,
            repair: self.repair,
            rejoin: self.rejoin,
            snapshot_every: self.snapshot_every,
            segment_bytes: self.wal_segment_bytes,
            options,
        })
    }
}

/// The cells of a placement file, each with its placed jury, checked against the cluster:
/// the topology's nodes must be exactly this node and its peers, so that every node hosts
/// what the placement says and nothing outside the cluster is a member.
pub fn placed_cells(
    me: NodeId,
    peers: &BTreeMap<NodeId, String>,
    topology: &std::path::Path,
    placement: &std::path::Path,
) -> Result<Vec<(String, physalia_traces::Config)>> {
    let topo = physalia_colony::topology::Topology::load(topology)?;
    let (placed, _) = physalia_colony::placement::Placement::load(placement, &topo)?;
    let mut cluster: Vec<NodeId> = peers.keys().copied().chain([me]).collect();
    cluster.sort();
    let nodes: Vec<NodeId> = topo.nodes.iter().map(|n| n.id).collect();
    if nodes != cluster {
        bail!(
            "the topology {} has nodes [{}], but this cluster (--id and --peers) is [{}]: they \
             must be the same nodes",
            topology.display(),
            nodes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","),
            cluster
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    if placed.cells.is_empty() {
        bail!("the placement {} has no cell", placement.display());
    }
    Ok(placed
        .cells
        .into_iter()
        .map(|c| {
            let mut members = c.jury;
            members.sort();
            (c.id, physalia_traces::Config { members })
        })
        .collect())
}

/// Installs the global subscriber: env-filtered logs on stderr (`RUST_LOG`, default
/// `info`), plus the trace layer when tracing. Trace events never reach the log output.
fn install_subscriber(trace: Option<&Arc<Mutex<CellFiles>>>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("physalia::trace=off".parse().expect("a valid directive"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(logs);
    match trace {
        Some(sink) => registry
            .with(TraceLayer::new(SharedSink(Arc::clone(sink))))
            .init(),
        None => registry.init(),
    }
}

/// A [`physalia_traces::LineSink`] behind a shared lock.
pub struct SharedSink(Arc<Mutex<CellFiles>>);

impl physalia_traces::LineSink for SharedSink {
    fn write_line(&mut self, node: NodeId, json: &str) -> std::io::Result<()> {
        match self.0.lock() {
            Ok(mut s) => s.write_line(node, json),
            Err(_) => Err(std::io::Error::other("trace sink poisoned")),
        }
    }
}

/// Runs the node; returns when it is told to stop (exit 0) or fails (an error).
pub fn run(args: &NodeArgs) -> Result<u8> {
    let cfg = args.config()?;
    let booted = node::boot(&cfg).with_context(|| format!("node n{} cannot start", args.id))?;
    let trace = cfg
        .trace_dir
        .as_ref()
        .map(|dir| Arc::new(Mutex::new(CellFiles::new(dir.clone(), booted.inc()))));
    install_subscriber(trace.as_ref());
    tracing::info!(
        node = args.id,
        inc = booted.inc(),
        truncated_tail_bytes = booted.truncated_tail_bytes,
        discarded_records = booted.discarded_records,
        cells = cfg.hosted().len(),
        "recovered the write-ahead log"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let running = node::start(&cfg, booted, trace.clone()).await?;
        tracing::info!(listen = %running.addr, metrics = ?running.metrics_addr, "serving");
        let mut done = running.done;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        let signalled = tokio::select! {
            r = &mut done => Some(r),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        };
        let result = match signalled {
            Some(r) => r,
            None => {
                let _ = running.events.try_send(Event::Shutdown);
                // An overloaded loop may take long to reach the shutdown event: stop anyway
                // after a bound (nothing unsynced was acknowledged, so nothing is lost).
                match tokio::time::timeout(std::time::Duration::from_secs(3), &mut done).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!("the event loop did not stop within 3 s; exiting");
                        Ok(Ok(()))
                    }
                }
            }
        };
        if let Some(t) = &trace {
            if let Ok(mut t) = t.lock() {
                let _ = t.flush();
            }
        }
        match result {
            Ok(Ok(())) => Ok(0),
            Ok(Err(e)) => bail!("node n{} stopped: {e}", cfg.id.0),
            Err(e) => bail!("node n{} event loop panicked: {e}", cfg.id.0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_errors_name_the_part() {
        let p = parse_peers("1=127.0.0.1:1, 2=127.0.0.1:2").unwrap();
        assert_eq!(p[&NodeId(2)], "127.0.0.1:2");
        let e = parse_peers("1=a,x=b").unwrap_err().to_string();
        assert!(e.contains("`x`"), "{e}");
        let e = parse_peers("1=a,1=b").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        assert!(parse_peers("nonsense").is_err());
    }
}
