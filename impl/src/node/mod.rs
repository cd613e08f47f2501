//! The production node: the pure core inside a tokio shell.
//!
//! One process hosts many cells ([`placement`] decides which, identically on every node).
//! Pieces:
//!
//! - [`frame`]: the frame codec (length prefix, postcard, CRC-32C, HMAC-SHA256 with the
//!   cluster key); [`wire`]: what frames carry.
//! - [`net`]: one listener for peers and clients; one connection per pair of nodes carrying
//!   every cell's messages both ways (the lower id dials).
//! - [`store`]: what goes into the node's one write-ahead log ([`crate::wal`]) and how boot
//!   rebuilds every cell from it (incarnation bumped and made durable before serving).
//! - [`runtime`]: the event loop stepping every cell: persist → group commit → `Persisted`
//!   → release; one timer heap; idle cells parked with no timer; coalesced heartbeats.
//! - [`trace`]: per-node, per-cell trace files through the `tracing` layer of `traces/`.
//! - [`metrics`]: counters in Prometheus text over HTTP.
//!
//! Client protocol: the same listener and frames; a connection whose first frame is a
//! [`wire::Wire::Request`] is a client (see [`crate::client`]).

mod boot;
pub mod conn;
pub mod event;
pub mod frame;
pub mod identity;
pub mod metrics;
pub mod net;
pub mod runtime;
pub mod series;
pub mod store;
pub mod trace;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use physalia_traces::{Config, Header, NodeId};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::core::Options;
use event::Event;
use frame::FrameKey;
use metrics::Metrics;
use runtime::{Runtime, Setup};
use store::{Log, Replayed, StoreError, WalLog, WalRecord};
use trace::CellFiles;
use wire::PeerMsg;

/// The clock skew declared in trace headers: the nodes' `now` stamps are wall-clock ms of
/// processes on one host (each sampled once at start, then monotonic).
pub const CLOCK_SKEW_MS: u64 = 10;

/// The size of a cell's jury when the cluster has at least that many nodes.
pub const JURY: usize = 7;

/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Where it listens for peers and clients.
    pub listen: String,
    /// Every other node and its address.
    pub peers: BTreeMap<NodeId, String>,
    /// Peers dialled at another address than `peers` gives (a proxy in front of them);
    /// clients are still told the `peers` address.
    pub dial: BTreeMap<NodeId, String>,
    /// Where its write-ahead log lives.
    pub data_dir: PathBuf,
    /// The cluster key.
    pub key: FrameKey,
    /// Where to write trace files, if anywhere.
    pub trace_dir: Option<PathBuf>,
    /// Where to serve metrics, if anywhere.
    pub metrics_listen: Option<String>,
    /// How many cells the cluster has (`c0..`); this node hosts those whose jury holds it.
    pub cells: u32,
    /// The cells and their initial juries, when a placement (`physalia colony place`)
    /// decides them instead of the rotation of [`placement`] (then `cells` is unused).
    pub placed: Option<Vec<(String, Config)>>,
    /// Discard a damaged log suffix instead of refusing to start.
    pub repair: bool,
    /// Re-enter as a new instance after this node's state was lost (an empty directory, or
    /// one left on probation): host no copy of the initial placement; peers record the new
    /// instance.
    pub rejoin: bool,
    /// Snapshot the durable state after this many WAL appends (0: never).
    pub snapshot_every: u64,
    /// WAL segment size (bytes).
    pub segment_bytes: u64,
    /// Core tunables.
    pub options: Options,
}

/// Why a node cannot start or had to stop.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The log cannot be opened (e.g. damaged in the middle).
    #[error("cannot open the write-ahead log in {dir}")]
    Wal {
        /// The directory.
        dir: String,
        /// The cause.
        source: crate::wal::WalError,
    },
    /// A storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// Another process holds the data directory.
    #[error("the data directory {dir} is in use by another process (its lock file is held); this process changed nothing")]
    Busy {
        /// The directory.
        dir: String,
    },
    /// The durable state is not the state this node acknowledged from: it refuses to start
    /// rather than vote with less than it promised.
    #[error("{0}")]
    Amnesia(String),
}

/// The cells of a cluster of `nodes` with `cells` cells: cell `ci`'s jury is the
/// [`JURY`] nodes (or all, if fewer) starting at position `i mod n` of the sorted node
/// list. Every node computes the same placement.
pub fn placement(nodes: &[NodeId], cells: u32) -> Vec<(String, Config)> {
    let mut sorted = nodes.to_vec();
    sorted.sort();
    sorted.dedup();
    let n = sorted.len();
    let k = JURY.min(n);
    (0..cells)
        .map(|i| {
            let start = i as usize % n.max(1);
            let mut members: Vec<NodeId> = (0..k).map(|j| sorted[(start + j) % n]).collect();
            members.sort();
            (format!("c{i}"), Config { members })
        })
        .collect()
}

impl NodeConfig {
    /// Every node of the cluster.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.peers.keys().copied().collect();
        v.push(self.id);
        v.sort();
        v
    }

    /// The cells this node hosts from the start: those whose initial jury holds it.
    pub fn hosted(&self) -> Vec<(String, Config)> {
        self.initial()
            .into_iter()
            .filter(|(_, c)| c.contains(self.id))
            .collect()
    }

    /// Every cell of the cluster with its initial jury: a node may be taught any of them
    /// (a jury change adding it), and answers for those it forwards.
    pub fn catalog(&self) -> HashMap<String, Config> {
        self.initial().into_iter().collect()
    }

    /// Every cell and its initial jury: the placement given, or the rotation.
    fn initial(&self) -> Vec<(String, Config)> {
        match &self.placed {
            Some(cells) => cells.clone(),
            None => placement(&self.nodes(), self.cells),
        }
    }

    /// The trace header of every cell of the cluster: its initial jury, and every node of
    /// the cluster as a node that may join it.
    pub fn headers(&self) -> HashMap<String, Header> {
        let nodes = self.nodes();
        self.initial()
            .into_iter()
            .map(|(name, config)| {
                let mut h = Header::new(name.clone(), config, self.options.alpha);
                h.nodes = nodes.clone();
                h.clock_skew = CLOCK_SKEW_MS;
                (name, h)
            })
            .collect()
    }
}

pub use boot::{boot, Booted};

/// A handle on a running node.
pub struct Running {
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Stops the node (its loop flushes traces and returns).
    pub events: mpsc::Sender<Event>,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// The metrics address, if any.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The event loop; its result is the node's.
    pub done: tokio::task::JoinHandle<Result<(), StoreError>>,
    /// The data directory's lock, held while the node runs.
    _lock: identity::DirLock,
}

/// Starts a booted node: binds, links to the peers, starts the event loop.
pub async fn start(
    cfg: &NodeConfig,
    booted: Booted,
    trace: Option<Arc<Mutex<CellFiles>>>,
) -> Result<Running, NodeError> {
    let metrics = Metrics::new();
    let (listener, addr) = bind(&cfg.listen).await?;
    let metrics_addr = serve_metrics(cfg.metrics_listen.as_deref(), &metrics).await?;
    let inc = booted.inc();
    let (events, rx) = mpsc::channel(65_536);
    let clocks = net::PeerClocks::new(cfg.peers.keys().copied());
    let mut ctx = net::ListenCtx {
        key: cfg.key.clone(),
        events: events.clone(),
        metrics: Arc::clone(&metrics),
        accepted: Arc::new(Vec::new()),
        clocks: Arc::clone(&clocks),
        admission: conn::Admission::new(
            conn::open_file_limit(),
            if cfg.trace_dir.is_some() {
                cfg.hosted().len()
            } else {
                0
            },
        ),
    };
    let peers = link_peers(cfg, inc, &mut ctx);
    let outs = peers.iter().map(|(_, _, tx)| tx.clone()).collect();
    let every = std::time::Duration::from_millis(cfg.options.heartbeat_interval.max(1));
    let presence = identity::Presence::new(booted.identity.instance, booted.standing);
    tokio::spawn(net::heartbeats(
        cfg.id,
        inc,
        Arc::clone(&presence),
        outs,
        every,
    ));
    let replayed = booted.replayed;
    let catalog = cfg.catalog();
    // Hosted: the cells of the initial placement this node has not deleted its copy of
    // (none for a rejoined instance: those memberships were its lost state's), and the
    // learners' copies it was taught since.
    let mut cells: Vec<(String, Config)> = cfg
        .hosted()
        .into_iter()
        .filter(|(name, _)| !replayed.forwards.contains_key(name) && !booted.rejoined)
        .collect();
    let mut taught: Vec<&String> = replayed
        .cells
        .iter()
        .filter(|(name, d)| d.learner && !cells.iter().any(|(n, _)| n == *name))
        .map(|(name, _)| name)
        .collect();
    taught.sort();
    for name in taught {
        if let Some(config) = catalog.get(name) {
            cells.push((name.clone(), config.clone()));
        }
    }
    let setup = Setup {
        id: cfg.id,
        addr: addr.to_string(),
        boot: replayed.boot,
        options: cfg.options.clone(),
        cells,
        catalog,
        headers: cfg.headers(),
        forwards: replayed.forwards,
        left: replayed.left,
        durable: replayed.cells,
        log: booted.log,
        peers,
        metrics: Arc::clone(&metrics),
        trace,
        clocks,
        snapshot_every: cfg.snapshot_every,
        standing: runtime::StandingSetup {
            identity: booted.identity,
            standing: booted.standing,
            rejoined: booted.rejoined,
            presence,
            peers: replayed.peers,
            data_dir: cfg.data_dir.clone(),
        },
    };
    let runtime = Runtime::new(setup);
    let done = tokio::spawn(runtime.run(rx));
    tokio::spawn(net::accept_loop(listener, ctx));
    Ok(Running {
        metrics,
        events,
        addr,
        metrics_addr,
        done,
        _lock: booted.lock,
    })
}

/// Binds the listener for peers and clients on `listen`; returns it with the address it
/// got (a port 0 is resolved).
async fn bind(listen: &str) -> Result<(TcpListener, SocketAddr), NodeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NodeError::Listen {
        addr: listen.to_string(),
        source,
    })?;
    Ok((listener, addr))
}

/// Serves the metrics over HTTP on `listen`, if given; returns the address it got.
async fn serve_metrics(
    listen: Option<&str>,
    metrics: &Arc<Metrics>,
) -> Result<Option<SocketAddr>, NodeError> {
    let Some(m) = listen else {
        return Ok(None);
    };
    let l = TcpListener::bind(m)
        .await
        .map_err(|source| NodeError::Listen {
            addr: m.to_string(),
            source,
        })?;
    let a = l.local_addr().ok();
    tokio::spawn(metrics::serve(l, Arc::clone(metrics)));
    Ok(a)
}

/// Links to the peers, one connection per pair of nodes: the node with the lower id dials,
/// and both send on it. Dials each peer with a higher id; the queue of each peer with a
/// lower one goes into `ctx.accepted`, for the connection that peer dials. Returns each
/// peer's id, address and outgoing queue.
fn link_peers(
    cfg: &NodeConfig,
    inc: u64,
    ctx: &mut net::ListenCtx,
) -> Vec<(NodeId, String, mpsc::Sender<PeerMsg>)> {
    let mut peers = Vec::new();
    let mut accepted = Vec::new();
    ctx.metrics.peer_links.know(cfg.peers.keys().copied());
    for (id, paddr) in &cfg.peers {
        let (tx, rx) = mpsc::channel(net::PEER_QUEUE);
        if *id > cfg.id {
            tokio::spawn(net::peer_link(
                cfg.id,
                inc,
                *id,
                cfg.dial.get(id).unwrap_or(paddr).clone(),
                rx,
                ctx.clone(),
            ));
        } else {
            accepted.push((*id, Arc::new(tokio::sync::Mutex::new(rx))));
        }
        peers.push((*id, paddr.clone(), tx));
    }
    ctx.accepted = Arc::new(accepted);
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_spreads_juries_and_agrees_everywhere() {
        let nodes: Vec<NodeId> = (0..9).map(NodeId).collect();
        let p = placement(&nodes, 4);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|(_, c)| c.members.len() == JURY));
        assert_eq!(p[1].1.members[0], NodeId(1));
        assert_eq!(p[3].1.members[0], NodeId(0)); // wraps: n3..n8 then n0
        assert_ne!(p[0].1, p[1].1);
        let small = placement(&nodes[..3], 2);
        assert!(small.iter().all(|(_, c)| c.members.len() == 3));
    }
}
