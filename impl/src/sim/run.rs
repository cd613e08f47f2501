//! The simulation loop: one event queue ordered by logical time, nodes with their storage,
//! clients with one operation in flight, and the fault injector of the module's fault model.

use std::collections::{BTreeMap, BTreeSet};

use physalia_traces::{
    ClientId, Condition, Config, Envelope, JuryChange, Key, Msg, NodeId, OpSeq, Persist,
    TimeoutKind, Txn, Value, WriteOp,
};

use super::check::Checker;
use super::report::SimReport;
use super::{SimConfig, SimRng};
use crate::core::{Boot, Cell, ClientReply, Durable, Input, Output};
use crate::kv::LocalRead;

#[derive(Debug)]
pub(super) enum Event {
    Net(Envelope),
    Request(NodeId, ClientId, OpSeq, Txn),
    Answer(NodeId, ClientId, Msg),
    LocalRead(NodeId, ClientId, Vec<Key>, u64),
    ReadAnswer(ClientId, u64, LocalRead),
    Timer(NodeId, TimeoutKind, u64),
    Synced(NodeId, u64, u64),
    Restart(NodeId),
    ClientNext(ClientId),
    ClientRetry(ClientId, OpSeq, u64),
    Heal,
    /// The operator considers its next jury change.
    OperatorNext,
    /// The operator re-sends its change request if `(op, generation)` is still pending: to
    /// the next node (no answer came), or to the same one (`false`: it asked to retry).
    OperatorRetry(OpSeq, u64, bool),
    /// A removed node deletes its copy if its removal is in force and a successor quorum
    /// has the prefix (else it looks again later).
    Retire(NodeId),
}

pub(super) struct Node {
    pub(super) cell: Option<Cell>,
    pub(super) storage: Durable,
    pub(super) pending: Vec<Persist>,
    pub(super) last_sync: u64,
    pub(super) boot: Boot,
    pub(super) started: bool,
    pub(super) offset: u64,
    pub(super) armed: BTreeMap<TimeoutKind, (u64, u64)>,
    /// A deletion of this node's copy is scheduled.
    pub(super) retiring: bool,
    /// Its disk was lost: it re-entered as a new instance (its copy votes nowhere until a
    /// change removing it, then one adding it, apply), and the operator moves it out.
    pub(super) wiped: bool,
}

impl Node {
    /// Keeps what a cell's traces need across the end of its copy: the Lamport clock and
    /// the incarnation (the next copy starts above both).
    pub(super) fn keep_clock(&mut self, cell: &Cell) {
        self.boot.lamport = cell.lamport();
        self.boot.inc = cell.inc();
    }

    /// Forgets the batches not yet durable (the copy they belong to is gone).
    pub(super) fn forget_pending(&mut self) {
        self.pending.clear();
        self.armed.clear();
    }
}

pub(super) struct Client {
    pub(super) next_op: OpSeq,
    pub(super) floor: u64,
    pub(super) pending: Option<(OpSeq, Txn, NodeId, u64, usize)>,
    pub(super) leader: NodeId,
}

pub(super) struct Sim {
    pub(super) cfg: SimConfig,
    pub(super) config: Config,
    pub(super) rng: SimRng,
    pub(super) now: u64,
    pub(super) seq: u64,
    pub(super) queue: BTreeMap<(u64, u64), Event>,
    pub(super) nodes: Vec<Node>,
    pub(super) clients: Vec<Client>,
    pub(super) cut: Option<BTreeSet<NodeId>>,
    pub(super) after_gst: bool,
    /// The session floor sent with the local read being served.
    pub(super) read_floor: u64,
    pub(super) checker: Checker,
    pub(super) report: SimReport,
    /// The operator that moves the cell (`reconfigure` faults).
    pub(super) operator: Operator,
}

/// Runs one simulation and reports what happened. Deterministic in `cfg`.
pub fn run(cfg: &SimConfig) -> SimReport {
    run_with_progress(cfg, u64::MAX, &mut |_, _| {})
}

/// [`run`], calling `progress(steps done, simulated ms)` every `every` steps (for progress
/// bars; it cannot influence the run).
pub fn run_with_progress(
    cfg: &SimConfig,
    every: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> SimReport {
    let mut sim = Sim::new(cfg.clone());
    for i in 0..cfg.steps {
        let Some(((t, _), event)) = sim.queue.pop_first() else {
            break;
        };
        sim.now = t;
        sim.report.steps = i + 1;
        sim.faults();
        sim.handle(event);
        if (i + 1) % every.max(1) == 0 {
            progress(i + 1, sim.now);
        }
    }
    sim.finish()
}

impl Sim {
    pub(super) fn new(cfg: SimConfig) -> Sim {
        let config = Config::with_nodes(cfg.nodes);
        let checker = Checker::new(config.clone(), cfg.options.limits, cfg.options.alpha);
        let mut rng = SimRng::new(cfg.seed);
        let report = SimReport {
            seed: cfg.seed,
            steps: 0,
            core_steps: 0,
            simulated_ms: 0,
            gst: cfg.gst,
            committed_ops: 0,
            local_reads: 0,
            decided_slots: 0,
            dropped: 0,
            duplicated: 0,
            partitions: 0,
            crashes: 0,
            disk_losses: 0,
            moves: 0,
            copies_deleted: 0,
            jury: Vec::new(),
            violations: Vec::new(),
            commits: Vec::new(),
            history: Vec::new(),
        };
        let nodes = (0..cfg.nodes + cfg.spares)
            .map(|n| Node {
                cell: None,
                storage: Durable {
                    learner: n >= cfg.nodes, // a spare's copy is taught
                    ..Durable::default()
                },
                pending: Vec::new(),
                last_sync: 0,
                boot: Boot::default(),
                started: false,
                offset: rng.between(0, cfg.clock_skew),
                armed: BTreeMap::new(),
                retiring: false,
                wiped: false,
            })
            .collect();
        let clients = (0..cfg.clients)
            .map(|c| Client {
                next_op: 1,
                floor: 0,
                pending: None,
                leader: NodeId(c % cfg.nodes),
            })
            .collect();
        let cfg_clients = cfg.clients;
        let mut sim = Sim {
            cfg,
            config,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            clients,
            cut: None,
            after_gst: false,
            read_floor: 0,
            checker,
            report,
            operator: Operator::new(u64::from(cfg_clients)),
        };
        for n in 0..sim.universe() {
            sim.start_node(NodeId(n));
        }
        if sim.cfg.faults.reconfig_ppm > 0 && sim.cfg.spares > 0 {
            sim.at(0, Event::OperatorNext);
        }
        for c in 0..sim.cfg.clients {
            let at = sim.rng.between(0, 50);
            sim.at(at, Event::ClientNext(ClientId(u64::from(c))));
        }
        sim
    }

    /// Every node that may host the cell: the initial jury and the spares.
    pub(super) fn universe(&self) -> u32 {
        self.cfg.nodes + self.cfg.spares
    }

    pub(super) fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((time.max(self.now), self.seq), event);
    }

    pub(super) fn before_gst(&self) -> bool {
        self.now < self.cfg.gst
    }

    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Net(env) => {
                let (from, to) = (env.from(), env.to);
                if self.separated(from, to) {
                    self.report.dropped += 1;
                } else {
                    self.step(to, Input::deliver(env));
                }
            }
            Event::Request(to, client, op, txn) => {
                self.step(to, Input::Request { client, op, txn })
            }
            Event::Answer(from, client, msg) => self.on_answer(from, client, msg),
            Event::LocalRead(to, client, keys, min_applied) => {
                self.read_floor = min_applied;
                let input = Input::LocalRead {
                    client,
                    keys,
                    min_applied,
                };
                self.step(to, input);
            }
            Event::ReadAnswer(client, floor, read) => self.on_read_answer(client, floor, read),
            Event::Timer(node, kind, gen) => {
                let current = self.nodes[node.0 as usize].armed.get(&kind).map(|a| a.1);
                if current == Some(gen) {
                    self.nodes[node.0 as usize].armed.remove(&kind);
                    self.step(node, Input::Timeout { timer: kind });
                }
            }
            Event::Synced(node, inc, up_to) => self.synced(node, inc, up_to),
            Event::Restart(node) => {
                if self.nodes[node.0 as usize].cell.is_none() {
                    self.start_node(node);
                }
            }
            Event::ClientNext(c) => self.client_next(c),
            Event::ClientRetry(c, op, gen) => self.client_retry(c, op, gen),
            Event::Heal => self.cut = None,
            Event::OperatorNext => self.operator_next(),
            Event::OperatorRetry(op, gen, next) => self.operator_retry(op, gen, next),
            Event::Retire(node) => self.retire(node),
        }
    }

    pub(super) fn separated(&self, a: NodeId, b: NodeId) -> bool {
        self.cut
            .as_ref()
            .is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    pub(super) fn local_now(&self, node: NodeId) -> u64 {
        self.now + self.nodes[node.0 as usize].offset
    }

    pub(super) fn start_node(&mut self, id: NodeId) {
        let now = self.local_now(id);
        let mut opts = self.cfg.options.clone();
        opts.seed = self.cfg.seed ^ self.rng.next_u64();
        #[cfg(feature = "bugs")]
        {
            opts.bug = self.cfg.bug;
        }
        let node = &mut self.nodes[id.0 as usize];
        if node.cell.is_some() {
            return;
        }
        if node.started {
            node.boot.inc += 1;
        }
        node.started = true;
        let durable = node.storage.clone();
        let (cell, out) = Cell::restart(id, self.config.clone(), opts, durable, node.boot, now);
        node.cell = Some(cell);
        node.armed.clear();
        self.output(id, 0, out);
    }

    /// Steps node `id` if it is up (a message to a down node is lost).
    pub(super) fn step(&mut self, id: NodeId, input: Input) {
        let now = self.local_now(id);
        let Some(cell) = self.nodes[id.0 as usize].cell.as_mut() else {
            self.report.dropped += 1;
            return;
        };
        let before = cell.commit();
        let out = cell.step(now, input);
        let removed = cell.removed_from().is_some();
        self.output(id, before, out);
        if removed && !self.nodes[id.0 as usize].retiring {
            self.nodes[id.0 as usize].retiring = true;
            let later = self.now + self.rng.between(100, 1_000);
            self.at(later, Event::Retire(id));
        }
    }

    /// Carries out a step's output: check, trace, persist, send, answer, arm timers.
    pub(super) fn output(&mut self, id: NodeId, before: u64, out: Output) {
        let at = self.now;
        if let Some(cell) = self.nodes[id.0 as usize].cell.as_ref() {
            self.checker.after_step(cell, before, at);
            if self.nodes[id.0 as usize].wiped {
                let member = cell.since().is_some();
                self.checker.on_lost_state_sends(id, member, &out.send, at);
            }
        }
        self.report.core_steps += 1;
        physalia_traces::record(&out.trace);
        if let Some(p) = out.persist {
            self.issue(id, p);
        }
        for env in out.send {
            self.transmit(env);
        }
        for reply in out.replies {
            match reply {
                ClientReply::Msg { client, msg } => self.answer(id, client, msg),
                ClientReply::LocalRead { client, read } => self.read_answer(id, client, read),
            }
        }
        self.arm(id, out.timers);
    }

    pub(super) fn issue(&mut self, id: NodeId, p: Persist) {
        let latency = self.rng.between(self.cfg.fsync_min, self.cfg.fsync_max);
        let node = &mut self.nodes[id.0 as usize];
        let inc = node.cell.as_ref().map_or(0, |c| c.inc());
        let when = (self.now + latency).max(node.last_sync);
        node.last_sync = when;
        let up_to = p.id;
        node.pending.push(p);
        self.at(when, Event::Synced(id, inc, up_to));
    }

    pub(super) fn synced(&mut self, id: NodeId, inc: u64, up_to: u64) {
        let node = &mut self.nodes[id.0 as usize];
        if node.cell.as_ref().map(|c| c.inc()) != Some(inc) {
            return; // a sync of an incarnation that crashed
        }
        while node.pending.first().is_some_and(|p| p.id <= up_to) {
            let p = node.pending.remove(0);
            node.storage.apply(&p.writes);
        }
        // Borrow, not clone: the storage holds the whole log.
        self.checker
            .on_storage(id, &self.nodes[id.0 as usize].storage);
        self.step(id, Input::Persisted { up_to });
    }

    /// Puts a message on the network: lost or duplicated before `GST`, always delayed.
    pub(super) fn transmit(&mut self, env: Envelope) {
        if self.before_gst() && self.rng.chance(self.cfg.faults.drop_ppm) {
            self.report.dropped += 1;
            return;
        }
        let copies = if self.before_gst() && self.rng.chance(self.cfg.faults.duplicate_ppm) {
            self.report.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
            self.at(self.now + delay, Event::Net(env.clone()));
        }
    }

    pub(super) fn arm(&mut self, id: NodeId, timers: crate::core::Timers) {
        let offset = self.nodes[id.0 as usize].offset;
        let wanted = [
            (TimeoutKind::Election, timers.election),
            (TimeoutKind::Heartbeat, timers.heartbeat),
            (TimeoutKind::Prepare, timers.prepare),
        ];
        for (kind, deadline) in wanted {
            let node = &mut self.nodes[id.0 as usize];
            let Some(deadline) = deadline else {
                node.armed.remove(&kind);
                continue;
            };
            if node.armed.get(&kind).map(|a| a.0) == Some(deadline) {
                continue;
            }
            self.seq += 1;
            let gen = self.seq;
            node.armed.insert(kind, (deadline, gen));
            self.at(deadline.saturating_sub(offset), Event::Timer(id, kind, gen));
        }
    }

    pub(super) fn finish(mut self) -> SimReport {
        self.report.simulated_ms = self.now;
        self.report.decided_slots = self.checker.decided();
        self.report.jury = self.checker.jury().latest().0.members.clone();
        self.report.violations = std::mem::take(&mut self.checker.violations);
        self.report.commits = self
            .nodes
            .iter()
            .map(|n| n.cell.as_ref().map(|c| c.commit()))
            .collect();
        self.report
    }
}

/// Eventually consistent reads: fire-and-forget to a random node, with the session floor.
impl Sim {
    pub(super) fn local_read(&mut self, c: ClientId) {
        let node = NodeId((self.rng.next_u64() % u64::from(self.universe())) as u32);
        let keys = (0..self.cfg.keys).map(|k| Key(format!("k{k}"))).collect();
        let floor = self.clients[c.0 as usize].floor;
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        self.at(self.now + delay, Event::LocalRead(node, c, keys, floor));
    }

    /// A node serves a local read: checked at once against the decided log.
    pub(super) fn read_answer(&mut self, from: NodeId, client: ClientId, read: LocalRead) {
        if let LocalRead::Values { applied, values } = &read {
            self.checker.on_local_read(from, *applied, values, self.now);
        }
        let delay = self.rng.between(self.cfg.min_delay, self.cfg.max_delay);
        let floor = self.read_floor;
        self.at(self.now + delay, Event::ReadAnswer(client, floor, read));
    }

    /// A read answered at `applied` must be at least as recent as the session floor sent
    /// with it (reads in flight together may return in any order).
    pub(super) fn on_read_answer(&mut self, c: ClientId, floor: u64, read: LocalRead) {
        if let LocalRead::Values { applied, .. } = read {
            self.checker.on_read_answer(c, floor, applied);
            let client = &mut self.clients[c.0 as usize];
            client.floor = client.floor.max(applied);
            self.report.local_reads += 1;
        }
    }
}

pub(super) fn random_txn(rng: &mut SimRng, keys: u32) -> Txn {
    let key = |rng: &mut SimRng| Key(format!("k{}", rng.next_u64() % u64::from(keys.max(1))));
    let small = |rng: &mut SimRng| Value::Int((rng.next_u64() % 10).into());
    match rng.next_u64() % 6 {
        0 => Txn::Get { key: key(rng) },
        1 => Txn::Put {
            key: key(rng),
            value: small(rng),
        },
        2 => Txn::Incr {
            key: key(rng),
            by: 1.into(),
        },
        3 => Txn::Cas {
            key: key(rng),
            expected: Some(small(rng)),
            new: small(rng),
        },
        4 => Txn::Put {
            key: key(rng),
            value: Value::Bytes(b"x".to_vec()),
        },
        _ => {
            let (a, b) = (key(rng), key(rng));
            Txn::Txn {
                conditions: vec![Condition {
                    key: a.clone(),
                    expected: Some(small(rng)),
                }],
                reads: vec![a, b.clone()],
                writes: vec![WriteOp::Incr {
                    key: b,
                    by: 1.into(),
                }],
            }
        }
    }
}

/// The operator's state: at most one move in progress.
#[derive(Debug)]
pub(super) struct Operator {
    /// The operator's client id (after the workload's clients).
    pub(super) client: ClientId,
    pub(super) next_op: OpSeq,
    /// The change in progress: `(op, change, node asked, generation)`.
    pub(super) pending: Option<(OpSeq, JuryChange, NodeId, u64)>,
    pub(super) leader: NodeId,
}

impl Operator {
    /// An idle operator with client id `client`.
    pub(super) fn new(client: u64) -> Operator {
        Operator {
            client: ClientId(client),
            next_op: 1,
            pending: None,
            leader: NodeId(0),
        }
    }
}
