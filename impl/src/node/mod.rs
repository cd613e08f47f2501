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

pub mod conn;
pub mod event;
pub mod frame;
pub mod identity;
pub mod metrics;
pub mod net;
pub mod runtime;
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

/// A node that has recovered its log and made its new incarnation durable.
pub struct Booted {
    log: Arc<dyn Log>,
    replayed: Replayed,
    lock: identity::DirLock,
    identity: identity::Identity,
    standing: wire::Standing,
    rejoined: bool,
    /// How many torn-tail bytes recovery removed.
    pub truncated_tail_bytes: u64,
    /// How many records a repair discarded.
    pub discarded_records: u64,
}

impl Booted {
    /// This run's incarnation.
    pub fn inc(&self) -> u64 {
        self.replayed.boot.inc
    }

    /// Whose state this is.
    pub fn identity(&self) -> identity::Identity {
        self.identity
    }

    /// Whether the node votes, or waits on probation.
    pub fn standing(&self) -> wire::Standing {
        self.standing
    }
}

/// Locks the data directory, checks that its durable state is the state this node voted
/// from (see [`identity`]), opens and replays the log, then appends and syncs this run's
/// boot record. A log damaged in the middle is an error (unless `repair`); so is a missing
/// newest segment, a missing log or identity of a node that has run, and a directory of
/// another node or cluster.
pub fn boot(cfg: &NodeConfig) -> Result<Booted, NodeError> {
    let lock = identity::lock(&cfg.data_dir)?;
    let dir = cfg.data_dir.join("wal");
    let on_file = identity::read(&cfg.data_dir)?;
    let fingerprint = identity::fingerprint(&cfg.key);
    check_owner(cfg, on_file.as_ref(), fingerprint, "identity")?;
    let had_log = identity::wal_present(&dir)?;
    if let (Some(id), false, false) = (&on_file, had_log, cfg.rejoin) {
        return Err(NodeError::Amnesia(format!(
            "node n{} (instance {}) has run from {}, but its write-ahead log {} is gone (no \
             segment, no snapshot): the promises and votes it acknowledged are lost, and it \
             must not vote as if nothing happened. To bring the node back, re-enter it as a \
             new instance: empty the directory, start it with `--rejoin`, and move its old \
             memberships with `physalia cluster replace-node --node {}` (impl/README.md, \
             \"Amnesia\")",
            id.node.0,
            id.instance,
            cfg.data_dir.display(),
            dir.display(),
            id.node.0
        )));
    }
    let opts = crate::wal::WalOptions {
        repair: cfg.repair,
        segment_bytes: cfg.segment_bytes,
    };
    let (wal, recovered) = crate::wal::Wal::open(&dir, opts).map_err(|source| NodeError::Wal {
        dir: dir.display().to_string(),
        source,
    })?;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut replayed = store::replay(recovered.snapshot.as_ref(), &recovered.records, wall)?;
    let in_log = replayed.identity;
    if let Some((id, _)) = &in_log {
        check_owner(
            cfg,
            Some(id),
            fingerprint,
            "write-ahead log's identity record",
        )?;
    }
    let (identity, standing, rejoined, first_record) =
        standing(cfg, on_file, in_log, &replayed, fingerprint)?;
    // The boot file survives a repair of the log, so incarnations never repeat. A rejoined
    // instance's first boot takes the wall clock's second as its incarnation: above any
    // count of restarts of the instance it replaces, whose files are gone (its message ids
    // and trace files must not repeat theirs).
    let boot_file = cfg.data_dir.join("incarnation");
    if let Some((inc, floor)) = read_boot_file(&boot_file)? {
        replayed.boot.inc = replayed.boot.inc.max(inc + 1);
        replayed.boot.lamport = replayed.boot.lamport.max(floor + 1);
    }
    if rejoined && first_record {
        replayed.boot.inc = replayed.boot.inc.max(wall / 1_000_000);
    }
    write_boot_file(&boot_file, replayed.boot.inc, replayed.boot.lamport)?;
    let log: Arc<dyn Log> = Arc::new(WalLog(wal));
    if first_record {
        log.append(&store::encode(&WalRecord::Identity { identity, rejoined }))?;
    }
    let record = WalRecord::Boot {
        inc: replayed.boot.inc,
        lamport: replayed.boot.lamport,
    };
    let lsn = log.append(&store::encode(&record))?;
    log.sync_to(lsn)?;
    Ok(Booted {
        log,
        replayed,
        lock,
        identity,
        standing,
        rejoined,
        truncated_tail_bytes: recovered.truncated_tail_bytes,
        discarded_records: recovered.discarded_records,
    })
}

/// Refuses an identity (`what`: the file, or the log's record) of another node or cluster.
fn check_owner(
    cfg: &NodeConfig,
    id: Option<&identity::Identity>,
    fingerprint: u64,
    what: &str,
) -> Result<(), NodeError> {
    let Some(id) = id else { return Ok(()) };
    if id.node != cfg.id {
        return Err(NodeError::Amnesia(format!(
            "{} belongs to node n{} (its {what} says so), not to n{}: a node must start from \
             its own state; check --id and --data-dir",
            cfg.data_dir.display(),
            id.node.0,
            cfg.id.0
        )));
    }
    if id.cluster != fingerprint {
        return Err(NodeError::Amnesia(format!(
            "{} belongs to another cluster (its {what} names cluster key fingerprint {:016x}; \
             the key given has {fingerprint:016x}): check --key-file and --data-dir",
            cfg.data_dir.display(),
            id.cluster
        )));
    }
    Ok(())
}

/// Decides how the node starts from what the identity file and the log say: its identity,
/// its standing, whether it rejoined, and whether the log still needs its identity record.
fn standing(
    cfg: &NodeConfig,
    on_file: Option<identity::Identity>,
    in_log: Option<(identity::Identity, bool)>,
    replayed: &Replayed,
    fingerprint: u64,
) -> Result<(identity::Identity, wire::Standing, bool, bool), NodeError> {
    use wire::Standing;
    let votes = replayed.holds_votes();
    if cfg.rejoin && votes {
        return Err(NodeError::Config(format!(
            "--rejoin starts a new instance of a node whose state was lost, but the log in {} \
             holds this node's votes: start it without --rejoin (or, to replace this state on \
             purpose, move the directory away first)",
            cfg.data_dir.display()
        )));
    }
    match (on_file, in_log) {
        // A rejoin that has not ended its probation yet: it goes on with `--rejoin`.
        (Some(f), Some((l, true))) if f != l && !cfg.rejoin && !votes => {
            Err(NodeError::Config(format!(
                "{} holds a rejoin in progress (new instance {}, on probation; {}/identity \
                 still names the lost instance {}): start the node with `--rejoin` to go on",
                cfg.data_dir.display(),
                l.instance,
                cfg.data_dir.display(),
                f.instance
            )))
        }
        (Some(f), Some((l, _))) if f != l && !cfg.rejoin => Err(NodeError::Amnesia(format!(
            "the write-ahead log in {} is of instance {} but {}/identity names instance {}: \
             the log is not the one this node voted from",
            cfg.data_dir.display(),
            l.instance,
            cfg.data_dir.display(),
            f.instance
        ))),
        // The identity file is written only after the log's identity record is durable
        // (and snapshots carry it): a log without it lost its beginning.
        // (`--repair` accepts that loss explicitly: it discards a damaged suffix, which may
        // begin at the first record, and the node then runs on what is left.)
        (Some(f), None) if !cfg.rejoin && cfg.repair => Ok((f, Standing::Member, false, true)),
        (Some(f), None) if !cfg.rejoin => Err(NodeError::Amnesia(format!(
            "{}/identity names instance {} of node n{}, but the write-ahead log holds no \
             identity record: the log lost its beginning (a repair that discarded it, or a \
             log from elsewhere), so it is not the whole log this node voted from. Re-enter \
             the node as a new instance (empty the directory, start with `--rejoin`, then \
             `physalia cluster replace-node --node {}`)",
            cfg.data_dir.display(),
            f.instance,
            f.node.0,
            f.node.0
        ))),
        (Some(f), Some((_, rejoined))) if !cfg.rejoin => Ok((f, Standing::Member, rejoined, false)),
        (None, _) if votes => Err(NodeError::Amnesia(format!(
            "{}/identity is missing, but the write-ahead log holds this node's votes: without \
             the identity the node cannot tell whether the log is the whole log it voted \
             from. If the identity file alone was lost, restore it from a backup; otherwise \
             re-enter the node as a new instance (empty the directory, start with \
             `--rejoin`, then `physalia cluster replace-node --node {}`)",
            cfg.data_dir.display(),
            cfg.id.0
        ))),
        // Nothing voted from here yet: a new directory, or one whose probation did not end.
        (_, Some((l, r))) if r == cfg.rejoin => {
            let standing = if r {
                Standing::Rejoin
            } else {
                Standing::Probation
            };
            Ok((l, standing, r, false))
        }
        _ => {
            let mut id = identity::Identity::new(cfg.id, &cfg.key);
            id.cluster = fingerprint;
            let standing = if cfg.rejoin {
                Standing::Rejoin
            } else {
                Standing::Probation
            };
            Ok((id, standing, cfg.rejoin, true))
        }
    }
}

/// Reads `incarnation lamport` from the boot file, if there is one.
fn read_boot_file(path: &std::path::Path) -> Result<Option<(u64, u64)>, NodeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(NodeError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let bad = || {
        NodeError::Config(format!(
            "{} does not hold `INCARNATION LAMPORT`: {text:?}",
            path.display()
        ))
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(i)), Some(Ok(l)), None) => Ok(Some((i, l))),
        _ => Err(bad()),
    }
}

/// Writes the boot file atomically and durably (temporary file, fsync, rename, fsync of
/// the directory).
fn write_boot_file(path: &std::path::Path, inc: u64, lamport: u64) -> Result<(), NodeError> {
    use std::io::Write;
    let io = |what: &str, e: std::io::Error| {
        NodeError::Config(format!("cannot {what} {}: {e}", path.display()))
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    writeln!(f, "{inc} {lamport}").map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename onto", e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync the directory of", e))?;
    }
    Ok(())
}

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
    for (id, paddr) in &cfg.peers {
        let (tx, rx) = mpsc::channel(net::PEER_QUEUE);
        if *id > cfg.id {
            tokio::spawn(net::peer_link(
                cfg.id,
                inc,
                *id,
                paddr.clone(),
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
