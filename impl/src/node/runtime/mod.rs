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

use super::event::Event;
use super::metrics::Metrics;
use super::store::{Log, Lsn, StoreError};
use super::trace::CellFiles;
use super::wire::{ClientResponse, PeerMsg};
use crate::core::{Boot, Cell, ClientReply, Durable, Input, Options, Output, Timers};
use crate::kv::LocalRead;

mod clients;
mod idle;
mod membership;
mod peers;
mod persist;
mod series;
mod standing;

pub use standing::StandingSetup;

use idle::designated;

/// Heartbeats with nothing in flight (each re-sends `Commit`) before a leader is parked.
pub const IDLE_BEATS: u8 = 1;
/// Most timers fired per loop iteration (the loop stays responsive to I/O).
const MAX_FIRE: usize = 4096;
/// Most queued events handled per loop iteration before timers are looked at.
const MAX_BATCH: usize = 1024;
/// Most candidates standing at once on one node; further election timeouts are postponed by a
/// random fraction of the election timeout (a shell decision about when timers fire).
pub const MAX_CANDIDATES: usize = 1024;
/// Most cells listed in one status answer (it must fit in a frame).
pub const MAX_STATUS_CELLS: usize = 10_000;
/// A client operation not answered within this long is forgotten (the client retries).
const WAIT_LIMIT: Duration = Duration::from_secs(30);

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
    /// unless this node is the cell's designated first proposer (see
    /// [`Runtime::restart_replica`]).
    not_before: u64,
    /// The member that runs the cell's first election.
    designated: Option<NodeId>,
    /// The copy was deleted (its removal was in force): it forwards, never steps.
    retired: bool,
    /// When this node first saw its removal from the cell in force.
    removed_seen: Option<Instant>,
    /// When this learner's copy was created (until it learns it joined).
    taught_at: Option<Instant>,
    /// The copy's floor, as created (see [`Durable::floor`]).
    floor: physalia_traces::Slot,
    /// The leader this replica last followed (or was), for the leader-change count.
    last_leader: Option<NodeId>,
    /// Times that leader changed (metrics).
    leader_changes: u64,
    /// Times this replica stood for election (metrics).
    elections: u64,
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
    /// The hosted cells and their initial juries.
    pub cells: Vec<(String, Config)>,
    /// Every cell of the cluster and its initial jury (a node may be taught any of them).
    pub catalog: HashMap<String, Config>,
    /// The trace header of every cell of the cluster.
    pub headers: HashMap<String, physalia_traces::Header>,
    /// The cells whose copy this node deleted, and the jury each forwards to.
    pub forwards: HashMap<String, Vec<NodeId>>,
    /// The slot this node's copy of each cell last left the jury at.
    pub left: HashMap<String, physalia_traces::Slot>,
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
    /// Its identity and standing with its peers.
    pub standing: StandingSetup,
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
    /// Replicas standing for election right now (role `Candidate`).
    candidates: usize,
    rng: u64,
    catalog: HashMap<String, Config>,
    headers: HashMap<String, physalia_traces::Header>,
    /// Deleted copies: the cell and the jury its clients are forwarded to (bounded by the
    /// cluster's cells: one entry per cell).
    forwards: HashMap<String, Vec<NodeId>>,
    /// The slot this node's copy of each cell last left the jury at (kept for good).
    left: HashMap<String, physalia_traces::Slot>,
    /// Its standing with its peers (probation, recorded peer instances).
    st: standing::Standings,
    /// This run's boot record (cells started at the end of probation restart from it).
    boot: Boot,
}

const KINDS: [TimeoutKind; 3] = [
    TimeoutKind::Election,
    TimeoutKind::Heartbeat,
    TimeoutKind::Prepare,
];

impl Runtime {
    /// Builds the replicas (each restarted from its durable state) and the loop's state.
    /// A node on probation builds none yet: they start when it ends.
    pub fn new(mut setup: Setup) -> Runtime {
        let cells = std::mem::take(&mut setup.cells);
        let durable = std::mem::take(&mut setup.durable);
        let mut rt = Runtime::without_cells(setup, cells.len());
        if rt.st.member() {
            rt.start_cells(cells, durable);
        } else {
            tracing::warn!(
                instance = %rt.st.identity.instance,
                needed = rt.vouches_needed(),
                peers = rt.peers.len(),
                "on probation: this node's data directory is new; it steps no cell until a \
                 majority of its peers confirm they never knew it under another instance"
            );
            rt.st.deferred = Some((cells, durable));
            // A node without peers has no one to remember it: nothing to wait for.
            if rt.peers.is_empty() {
                rt.leave_probation();
            }
        }
        rt
    }

    /// Builds the replicas of `cells`, each restarted from its durable state.
    fn start_cells(&mut self, cells: Vec<(String, Config)>, mut durable: HashMap<String, Durable>) {
        let boot = self.boot;
        for (name, config) in cells {
            let stored = durable.remove(&name).unwrap_or_default();
            let idx = self.replicas.len() as u32;
            self.restart_replica(idx, name, config, stored, boot);
        }
        self.metrics.cells.store(
            self.replicas.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The loop's state for `setup` (whose cells and durable state are ignored), with room
    /// for `cells` replicas and none built yet.
    fn without_cells(setup: Setup, cells: usize) -> Runtime {
        let start = Instant::now();
        let (synced_tx, synced_rx) = mpsc::unbounded_channel();
        Runtime {
            id: setup.id,
            addr: setup.addr,
            inc: setup.boot.inc,
            opts: setup.options,
            start,
            base_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            replicas: Vec::with_capacity(cells),
            index: HashMap::with_capacity(cells),
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
            candidates: 0,
            rng: setup.boot.lamport ^ (u64::from(setup.id.0) << 32),
            catalog: setup.catalog,
            headers: setup.headers,
            forwards: setup.forwards,
            left: setup.left,
            st: standing::Standings::new(setup.standing),
            boot: setup.boot,
        }
    }

    /// Restarts cell `name` (jury `config`) from its durable state `stored` as replica
    /// `idx`, and carries out the restart's output.
    fn restart_replica(
        &mut self,
        idx: u32,
        name: String,
        config: Config,
        stored: Durable,
        boot: Boot,
    ) {
        let mut opts = self.opts.clone();
        opts.cell = name.clone();
        opts.seed = self.random();
        // A fresh cell's first election is left to one designated member (as if the
        // control plane had put a distinguished proposer in place); the others hold
        // their election timers for a few timeouts, and stand only if it fails.
        // This keeps thousands of fresh cells from duelling at start.
        let designated = designated(&name, &config);
        let not_before = if designated == Some(self.id) || !stored.promised.is_zero() {
            0
        } else {
            self.base_ms + 4 * self.opts.election_timeout
        };
        let now = self.now_ms();
        let (learner, floor) = (stored.learner, stored.floor);
        if let (Some(t), Some(h)) = (&self.trace, self.headers.get(&name)) {
            if let Ok(mut files) = t.lock() {
                files.set_header(idx, h.clone());
            }
        }
        let (cell, out) = Cell::restart(self.id, config, opts, stored, boot, now);
        self.index.insert(name.clone(), idx);
        self.replicas.push(Replica {
            name,
            cell,
            armed: [None; 3],
            parked: Parked::No,
            idle_beats: 0,
            heard: None,
            not_before,
            designated,
            retired: false,
            removed_seen: None,
            taught_at: learner.then(Instant::now),
            floor,
            last_leader: None,
            leader_changes: 0,
            elections: 0,
        });
        self.output(idx, out);
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
        // A node with no peers ends its probation in `new`; a failure there stops it here.
        self.check_fatal()?;
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
            Event::Peer { from, msg } => {
                self.on_peer(from, msg);
                self.check_fatal()?;
            }
            Event::Client { req, reply } => self.on_client(req, reply),
            Event::Shutdown => return Ok(false),
        }
        Ok(true)
    }

    fn step(&mut self, idx: u32, input: Input) {
        if self.replicas[idx as usize].retired {
            return; // a deleted copy never steps: it forwards
        }
        let now = self.now_ms();
        self.unpark(idx);
        let r = &mut self.replicas[idx as usize];
        if !matches!(
            input,
            Input::Timeout {
                timer: TimeoutKind::Heartbeat
            }
        ) {
            r.idle_beats = 0;
        }
        let from = match &input {
            Input::Deliver { id, .. } => Some((id.node, id.inc)),
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
        self.candidates = self.candidates + usize::from(is) - usize::from(was);
        r.elections += u64::from(is && !was);
        if let Some(l) = r.cell.leader_hint().filter(|l| r.last_leader != Some(*l)) {
            r.last_leader = Some(l);
            r.leader_changes += 1;
        }
        self.metrics.commits.fetch_add(
            after.saturating_sub(before),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.note_changes(idx, &out);
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
            self.append_batch(idx, p);
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
        let wanted = [timers.election, timers.heartbeat, timers.prepare];
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

    /// The node tick: peer liveness (the heartbeats themselves are sent by
    /// [`super::net::heartbeats`]), forgotten waiters, trace flush.
    fn tick(&mut self) {
        let dead_after = Duration::from_millis(2 * self.opts.election_timeout.max(1));
        let mut died = Vec::new();
        for (id, p) in &mut self.peers {
            let silent = self.clocks.silent_for(*id);
            if p.live && silent.is_none_or(|s| s > dead_after) {
                p.live = false;
                died.push(*id);
            }
        }
        for id in died {
            tracing::info!(peer = %id, "peer silent; waking the cells it led");
            self.wake_followers_of(id);
        }
        self.waiting.retain(|_, w| w.since.elapsed() < WAIT_LIMIT);
        self.retire_removed();
        self.flush_trace();
        if self.metrics.cell_series.take_wanted() {
            self.publish_cell_series();
        }
    }
}
