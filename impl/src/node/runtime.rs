//! The node's event loop: one task owns every hosted cell and steps them one input at a
//! time, carrying out each [`Output`] in the order of the core's contract.
//!
//! - **Persist**: a batch becomes one WAL record ([`WalRecord::Persist`]); one blocking
//!   group commit runs at a time and covers everything appended before it started; when it
//!   returns, each cell with batches now durable steps `Persisted { up_to }`, which releases
//!   the messages and votes the core held.
//! - **Timers**: one min-heap of `(deadline, cell, kind)` for all cells (stale entries are
//!   skipped when popped), and one node tick for the coalesced per-peer heartbeat.
//! - **Idle cells go quiet**: a leader with nothing in flight for [`IDLE_BEATS`] heartbeats
//!   is *parked* (its heartbeat timer is not re-armed); a follower whose election timer
//!   fires while the node of its leader is alive (its node heartbeat arrived within
//!   `2 × election_timeout`, in the incarnation the follower last heard the leader's cell
//!   from) is parked under that node. A parked cell holds no timer. Any input to a cell
//!   unparks it; a peer whose heartbeats stop, or that restarts, unparks the followers
//!   parked under it (their election timers are re-armed with jitter) and every parked
//!   leader (to teach the restarted node). Parking only decides *when* timers fire, which
//!   the protocol leaves to the shell; the core's behaviour is unchanged.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use physalia_traces::{
    ClientId, Config, Envelope, Msg, NodeId, OpSeq, PersistId, Role, TimeoutKind,
};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use super::store::{encode, Log, Lsn, StoreError, WalRecord};
use super::trace::CellFiles;
use super::wire::{ClientRequest, ClientResponse, PeerMsg};
use crate::core::{Boot, Cell, ClientReply, Durable, Input, Options, Output, Timers};
use crate::sm::LocalRead;

mod clients;
mod idle;

use idle::designated;

/// Heartbeats with nothing in flight (each re-sends `Commit`) before a leader is parked.
pub const IDLE_BEATS: u8 = 1;
/// Most timers fired per loop iteration (the loop stays responsive to I/O).
const MAX_FIRE: usize = 4096;
/// Most queued events handled per loop iteration before timers are looked at.
const MAX_BATCH: usize = 1024;
/// Most campaigns in flight on one node; further election timeouts are postponed by a
/// random fraction of the election timeout (a shell decision about when timers fire).
pub const MAX_CAMPAIGNS: usize = 1024;
/// Most cells listed in one status answer (it must fit in a frame).
pub const MAX_STATUS_CELLS: usize = 10_000;
/// A client operation not answered within this long is forgotten (the client retries).
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// An input to the event loop from the network tasks.
#[derive(Debug)]
pub enum Event {
    /// A frame from a peer (already authenticated).
    Peer {
        /// The peer.
        from: NodeId,
        /// The message.
        msg: PeerMsg,
    },
    /// A client's request and where to answer it.
    Client {
        /// The request.
        req: ClientRequest,
        /// The answer goes here.
        reply: oneshot::Sender<ClientResponse>,
    },
    /// Stop the loop.
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parked {
    No,
    Follower(NodeId),
    Leader,
}

struct Replica {
    name: String,
    cell: Cell,
    armed: [Option<u64>; 3],
    parked: Parked,
    idle_beats: u8,
    /// The incarnation of the leader's node in which this replica last heard from it.
    heard: Option<(NodeId, u64)>,
    /// A cell that has never promised anything fires no election before this time (ms),
    /// unless this node is the cell's designated first proposer (see [`Runtime::new`]).
    not_before: u64,
    /// The member that runs the cell's first election.
    designated: Option<NodeId>,
}

struct Peer {
    out: mpsc::Sender<PeerMsg>,
    addr: String,
    inc: Option<u64>,
    live: bool,
}

struct Waiting {
    op: OpSeq,
    reply: oneshot::Sender<ClientResponse>,
    since: Instant,
}

/// Everything the event loop needs at start.
pub struct Setup {
    /// This node.
    pub id: NodeId,
    /// Its address, for the directory.
    pub addr: String,
    /// This run's boot record.
    pub boot: Boot,
    /// Core tunables (the cell name is set per cell).
    pub options: Options,
    /// The hosted cells and their juries.
    pub cells: Vec<(String, Config)>,
    /// Each cell's durable state from the log.
    pub durable: HashMap<String, Durable>,
    /// The log.
    pub log: Arc<dyn Log>,
    /// The peers: outgoing queue and address.
    pub peers: Vec<(NodeId, String, mpsc::Sender<PeerMsg>)>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The trace files, if tracing.
    pub trace: Option<Arc<Mutex<CellFiles>>>,
    /// When each peer was last heard from.
    pub clocks: Arc<super::net::PeerClocks>,
    /// Snapshot the durable state after this many appends (0: never).
    pub snapshot_every: u64,
}

/// The event loop's state.
pub struct Runtime {
    id: NodeId,
    addr: String,
    inc: u64,
    opts: Options,
    start: Instant,
    /// Wall-clock ms (Unix epoch) at `start`: the steps' `now` is `base_ms` plus the
    /// monotonic time since `start`, so the `now` stamps of different nodes and runs are
    /// comparable (up to clock skew), as the trace's linearizability check needs.
    base_ms: u64,
    replicas: Vec<Replica>,
    index: HashMap<String, u32>,
    timers: BinaryHeap<Reverse<(u64, u32, u8)>>,
    log: Arc<dyn Log>,
    unsynced: VecDeque<(Lsn, u32, PersistId)>,
    appended: Lsn,
    syncing: bool,
    peers: HashMap<NodeId, Peer>,
    waiting: HashMap<(u32, ClientId), Waiting>,
    parked_by: HashMap<NodeId, Vec<u32>>,
    parked_leaders: Vec<u32>,
    local_reads: Vec<(ClientId, LocalRead)>,
    metrics: Arc<Metrics>,
    trace: Option<Arc<Mutex<CellFiles>>>,
    clocks: Arc<super::net::PeerClocks>,
    floor: u64,
    snapshot_every: u64,
    since_snapshot: u64,
    snapshotting: Arc<std::sync::atomic::AtomicBool>,
    /// Group-commit completions, taken before any other event (they release acks).
    synced_tx: mpsc::UnboundedSender<(Lsn, Result<(), String>)>,
    synced_rx: Option<mpsc::UnboundedReceiver<(Lsn, Result<(), String>)>>,
    /// Replicas campaigning right now (role `Candidate`).
    campaigning: usize,
    rng: u64,
}

const KINDS: [TimeoutKind; 3] = [
    TimeoutKind::Election,
    TimeoutKind::Heartbeat,
    TimeoutKind::Retry,
];

impl Runtime {
    /// Builds the replicas (each restarted from its durable state) and the loop's state.
    pub fn new(setup: Setup) -> Runtime {
        let start = Instant::now();
        let (synced_tx, synced_rx) = mpsc::unbounded_channel();
        let mut rt = Runtime {
            id: setup.id,
            addr: setup.addr,
            inc: setup.boot.incarnation,
            opts: setup.options.clone(),
            start,
            base_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            replicas: Vec::with_capacity(setup.cells.len()),
            index: HashMap::with_capacity(setup.cells.len()),
            timers: BinaryHeap::new(),
            log: setup.log,
            unsynced: VecDeque::new(),
            appended: 0,
            syncing: false,
            peers: setup
                .peers
                .into_iter()
                .map(|(id, addr, out)| {
                    let peer = Peer {
                        out,
                        addr,
                        inc: None,
                        live: false,
                    };
                    (id, peer)
                })
                .collect(),
            waiting: HashMap::new(),
            parked_by: HashMap::new(),
            parked_leaders: Vec::new(),
            local_reads: Vec::new(),
            metrics: setup.metrics,
            trace: setup.trace,
            clocks: setup.clocks,
            floor: setup.boot.lamport,
            snapshot_every: setup.snapshot_every,
            since_snapshot: 0,
            snapshotting: Arc::default(),
            synced_tx,
            synced_rx: Some(synced_rx),
            campaigning: 0,
            rng: setup.boot.lamport ^ (u64::from(setup.id.0) << 32),
        };
        let mut durable = setup.durable;
        for (i, (name, config)) in setup.cells.into_iter().enumerate() {
            let mut opts = setup.options.clone();
            opts.cell = name.clone();
            opts.seed = rt.random();
            let stored = durable.remove(&name).unwrap_or_default();
            // A fresh cell's first election is left to one designated member (as if the
            // control plane had put a distinguished proposer in place); the others hold
            // their election timers for a few timeouts, and campaign only if it fails.
            // This keeps thousands of fresh cells from duelling at start.
            let designated = designated(&name, &config);
            let not_before = if designated == Some(rt.id) || !stored.promised.is_zero() {
                0
            } else {
                rt.base_ms + 4 * setup.options.election_timeout
            };
            let now = rt.now_ms();
            let (cell, out) = Cell::restart(rt.id, config, opts, stored, setup.boot, now);
            rt.index.insert(name.clone(), i as u32);
            rt.replicas.push(Replica {
                name,
                cell,
                armed: [None; 3],
                parked: Parked::No,
                idle_beats: 0,
                heard: None,
                not_before,
                designated,
            });
            rt.output(i as u32, out);
        }
        rt.metrics.cells.store(
            rt.replicas.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        rt
    }

    fn random(&mut self) -> u64 {
        crate::rng::splitmix64(&mut self.rng)
    }

    fn rng_below(&mut self, n: u64) -> u64 {
        self.random() % n.max(1)
    }

    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }

    /// Runs the loop until [`Event::Shutdown`] or a storage failure.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Event>) -> Result<(), StoreError> {
        let tick = Duration::from_millis(self.opts.heartbeat_interval.max(1));
        let mut next_tick = Instant::now();
        let mut synced = self.synced_rx.take().expect("run is called once");
        loop {
            let next_timer = self.timers.peek().map(|Reverse((d, _, _))| {
                self.start + Duration::from_millis(d.saturating_sub(self.base_ms))
            });
            let wake = next_timer.map_or(next_tick, |t| t.min(next_tick));
            tokio::select! {
                biased;
                done = synced.recv() => {
                    let Some((lsn, result)) = done else { return Ok(()) };
                    result.map_err(StoreError::Log)?;
                    self.on_synced(lsn);
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    if !self.handle(ev)? { return self.stop() }
                    for _ in 0..MAX_BATCH {
                        match rx.try_recv() {
                            Ok(ev) => if !self.handle(ev)? { return self.stop() },
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            self.fire_due();
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + tick;
            }
        }
    }

    fn stop(&mut self) -> Result<(), StoreError> {
        self.flush_trace();
        Ok(())
    }

    fn flush_trace(&self) {
        if let Some(t) = &self.trace {
            if let Ok(mut t) = t.lock() {
                let _ = t.flush();
            }
        }
    }

    /// Handles one event; `false` stops the loop.
    fn handle(&mut self, ev: Event) -> Result<bool, StoreError> {
        match ev {
            Event::Peer { from, msg } => self.on_peer(from, msg),
            Event::Client { req, reply } => self.on_client(req, reply),
            Event::Shutdown => return Ok(false),
        }
        Ok(true)
    }

    fn step(&mut self, idx: u32, input: Input) {
        let now = self.now_ms();
        self.unpark(idx);
        let r = &mut self.replicas[idx as usize];
        if !matches!(input, Input::Timeout(TimeoutKind::Heartbeat)) {
            r.idle_beats = 0;
        }
        let from = match &input {
            Input::Deliver(env) => Some((env.from(), env.id.inc)),
            _ => None,
        };
        let before = r.cell.commit();
        let was = r.cell.role() == Role::Candidate;
        let out = r.cell.step(now, input);
        let after = r.cell.commit();
        let is = r.cell.role() == Role::Candidate;
        if let Some((node, inc)) = from.filter(|(n, _)| r.cell.leader_hint() == Some(*n)) {
            r.heard = Some((node, inc));
        }
        self.campaigning = self.campaigning + usize::from(is) - usize::from(was);
        self.metrics.commits.fetch_add(
            after.saturating_sub(before),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.output(idx, out);
    }

    /// Carries out one output: trace, persist, send, answer, arm timers.
    fn output(&mut self, idx: u32, out: Output) {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.steps.fetch_add(1, Relaxed);
        if self.trace.is_some() {
            super::trace::record(idx, &out.trace);
        }
        if let Some(p) = out.persist {
            let record = WalRecord::Persist {
                cell: self.replicas[idx as usize].name.clone(),
                writes: p.writes,
            };
            match self.log.append(&encode(&record)) {
                Ok(lsn) => {
                    self.metrics.wal_appends.fetch_add(1, Relaxed);
                    self.since_snapshot += 1;
                    self.appended = self.appended.max(lsn);
                    self.unsynced.push_back((lsn, idx, p.id));
                    self.kick_sync();
                }
                Err(e) => {
                    // The batch is not durable and never will be: the held messages stay
                    // held. Stop the node rather than run on.
                    tracing::error!("cannot append to the WAL: {e}; stopping");
                    let _ = self.synced_tx.send((0, Err(e.to_string())));
                }
            }
        }
        let name = &self.replicas[idx as usize].name;
        for env in out.send {
            self.send(name.clone(), env);
        }
        for reply in out.replies {
            self.reply(idx, reply);
        }
        self.arm(idx, out.timers);
    }

    fn send(&self, cell: String, env: Envelope) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(peer) = self.peers.get(&env.to) else {
            tracing::warn!(to = %env.to, "a message for a node without an address is dropped");
            self.metrics.frames_dropped_out.fetch_add(1, Relaxed);
            return;
        };
        match peer.out.try_send(PeerMsg::Cell { cell, env }) {
            Ok(()) => self.metrics.frames_out.fetch_add(1, Relaxed),
            Err(_) => self.metrics.frames_dropped_out.fetch_add(1, Relaxed),
        };
    }

    fn reply(&mut self, idx: u32, reply: ClientReply) {
        use std::sync::atomic::Ordering::Relaxed;
        match reply {
            ClientReply::Msg { client, msg } => {
                let (op, resp) = match msg {
                    Msg::Reply { op, result } => (op, ClientResponse::Reply { result }),
                    Msg::Redirect { op, leader } => (op, ClientResponse::Redirect { leader }),
                    _ => return,
                };
                let key = (idx, client);
                if self.waiting.get(&key).is_some_and(|w| w.op == op) {
                    let w = self.waiting.remove(&key).expect("checked");
                    if matches!(resp, ClientResponse::Reply { .. }) {
                        self.metrics.replies.fetch_add(1, Relaxed);
                        self.metrics
                            .observe_latency(w.since.elapsed().as_micros() as u64);
                    } else {
                        self.metrics.redirects.fetch_add(1, Relaxed);
                    }
                    let _ = w.reply.send(resp);
                }
            }
            ClientReply::LocalRead { client, read } => self.local_reads.push((client, read)),
        }
    }

    fn arm(&mut self, idx: u32, timers: Timers) {
        let wanted = [timers.election, timers.heartbeat, timers.retry];
        let r = &mut self.replicas[idx as usize];
        if r.parked != Parked::No {
            return;
        }
        for (k, want) in wanted.into_iter().enumerate() {
            if r.armed[k] == want {
                continue;
            }
            r.armed[k] = want;
            if let Some(d) = want {
                self.timers.push(Reverse((d, idx, k as u8)));
            }
        }
    }

    fn fire_due(&mut self) {
        let now = self.now_ms();
        for _ in 0..MAX_FIRE {
            let Some(Reverse((d, idx, k))) = self.timers.peek().copied() else {
                return;
            };
            if d > now {
                return;
            }
            self.timers.pop();
            let r = &mut self.replicas[idx as usize];
            if r.armed[k as usize] != Some(d) || r.parked != Parked::No {
                continue; // replaced or parked since
            }
            r.armed[k as usize] = None;
            self.fire(idx, KINDS[k as usize]);
        }
    }

    fn kick_sync(&mut self) {
        if self.syncing || self.unsynced.is_empty() {
            return;
        }
        self.syncing = true;
        let log = Arc::clone(&self.log);
        let target = self.appended;
        let done = self.synced_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = log.sync_to(target).map_err(|e| e.to_string());
            let _ = done.send((target, result));
        });
    }

    fn on_synced(&mut self, lsn: Lsn) {
        self.syncing = false;
        self.metrics
            .fsyncs
            .store(self.log.fsyncs(), std::sync::atomic::Ordering::Relaxed);
        let mut durable: Vec<(u32, PersistId)> = Vec::new();
        while self.unsynced.front().is_some_and(|(l, _, _)| *l <= lsn) {
            let (_, idx, id) = self.unsynced.pop_front().expect("checked");
            match durable.iter_mut().find(|(i, _)| *i == idx) {
                Some(e) => e.1 = e.1.max(id),
                None => durable.push((idx, id)),
            }
        }
        for (idx, up_to) in durable {
            self.step(idx, Input::Persisted { up_to });
        }
        self.kick_sync();
        self.maybe_snapshot();
    }

    /// Writes a snapshot of every cell's durable state if enough was appended since the
    /// last one and every issued batch is durable (then the cores' promises and logs are
    /// exactly what storage holds).
    fn maybe_snapshot(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let lsn = self.appended;
        if self.snapshot_every == 0
            || self.since_snapshot < self.snapshot_every
            || !self.unsynced.is_empty()
            || self.syncing
            || lsn == 0
            || self.snapshotting.load(Relaxed)
        {
            return;
        }
        let cells = self
            .replicas
            .iter()
            .filter(|r| !r.cell.promised().is_zero() || !r.cell.log().is_empty())
            .map(|r| {
                let log = r
                    .cell
                    .log()
                    .iter()
                    .map(|(s, (b, c))| (*s, *b, c.clone()))
                    .collect();
                (r.name.clone(), r.cell.promised(), log)
            })
            .collect();
        let snap = super::store::Snapshot {
            boot: (self.inc, self.floor),
            cells,
        };
        let bytes = match postcard::to_stdvec(&snap) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode a snapshot: {e}");
                return;
            }
        };
        self.since_snapshot = 0;
        self.snapshotting.store(true, Relaxed);
        let (log, flag) = (Arc::clone(&self.log), Arc::clone(&self.snapshotting));
        tokio::task::spawn_blocking(move || {
            match log.snapshot(lsn, &bytes) {
                Ok(()) => tracing::info!(lsn, bytes = bytes.len(), "wrote a snapshot"),
                Err(e) => tracing::error!("snapshot at lsn {lsn} failed: {e}"),
            }
            flag.store(false, Relaxed);
        });
    }

    fn on_peer(&mut self, from: NodeId, msg: PeerMsg) {
        use std::sync::atomic::Ordering::Relaxed;
        match msg {
            PeerMsg::Hello { node, inc } | PeerMsg::Heartbeat { node, inc } => {
                if node != from {
                    self.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    return;
                }
                self.seen(from, Some(inc));
            }
            PeerMsg::Cell { cell, env } => {
                self.seen(from, None);
                let Some(&idx) = self.index.get(&cell) else {
                    self.metrics.unknown_cell.fetch_add(1, Relaxed);
                    if let Some(p) = self.peers.get(&from) {
                        let _ = p.out.try_send(PeerMsg::UnknownCell { cell });
                    }
                    return;
                };
                if env.to != self.id || env.from() != from {
                    self.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    return;
                }
                self.step(idx, Input::Deliver(env));
            }
            PeerMsg::UnknownCell { cell } => {
                self.metrics.unknown_cell.fetch_add(1, Relaxed);
                tracing::warn!(peer = %from, cell, "the peer does not host this cell");
            }
        }
    }

    /// Notes that `from` is alive (in incarnation `inc`, if the message says).
    fn seen(&mut self, from: NodeId, inc: Option<u64>) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let restarted = inc.is_some_and(|i| p.inc.is_some_and(|old| old != i));
        let revived = !p.live && inc.is_some();
        if let Some(i) = inc {
            p.inc = Some(i);
            p.live = true;
        }
        if restarted {
            tracing::info!(peer = %from, "peer restarted");
            self.wake_followers_of(from);
        }
        if restarted || revived {
            self.wake_leaders();
        }
    }

    /// The node tick: peer liveness (the heartbeats themselves are sent by
    /// [`super::net::heartbeats`]), forgotten waiters, trace flush.
    fn tick(&mut self) {
        let dead_after = Duration::from_millis(2 * self.opts.election_timeout.max(1));
        let mut died = Vec::new();
        for (id, p) in &mut self.peers {
            let silent = self.clocks.silent_for(*id);
            if p.live && silent.map_or(true, |s| s > dead_after) {
                p.live = false;
                died.push(*id);
            }
        }
        for id in died {
            tracing::info!(peer = %id, "peer silent; waking the cells it led");
            self.wake_followers_of(id);
        }
        self.waiting.retain(|_, w| w.since.elapsed() < WAIT_LIMIT);
        self.flush_trace();
    }
}
