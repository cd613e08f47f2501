//! The pure protocol core of one cell replica: Multi-Paxos with a distinguished proposer,
//! following `docs/protocol.md`.
//!
//! # Contract
//!
//! The shell calls [`Cell::step`] with the current logical time and one [`Input`] (the
//! vocabulary's step input, `physalia_traces::Input`: the same value the trace records and
//! the specification replays), and gets an [`Output`]. The shell routes a message to the
//! replica it is addressed to (`Envelope::to`) and steps [`Input::deliver`] of it. The core does no I/O, reads no clock and draws no OS randomness (election
//! jitter comes from a generator seeded by [`Options::seed`] and the node id). For every
//! output, the shell:
//!
//! 1. writes [`Output::persist`] (if any) to durable storage, in order, atomically;
//! 2. sends [`Output::send`] at once (these never depend on an unsynced write);
//! 3. delivers [`Output::replies`] to clients;
//! 4. arms the timers of [`Output::timers`] (each deadline replaces the previous one);
//! 5. records [`Output::trace`] (e.g. with `physalia_traces::record`);
//! 6. once persist batch `p` is durable (fsync returned), steps
//!    [`Input::Persisted`]` { up_to: p }`.
//!
//! Messages that report durable state (`Promise`, `Accepted`) and the node's own votes are
//! *held by the core* until the write they depend on is acknowledged by step 6; they then
//! appear in the `send` of that step. [`Output::after_persist`] names them but gives no access
//! to them, so "persist before you send the dependent message" is enforced by the types: the
//! only way to obtain those envelopes is to acknowledge the write.
//!
//! After a crash, the shell rebuilds the replica with [`Cell::restart`] from what its storage
//! holds ([`Durable`]) and a [`Boot`] record (a fresh incarnation and a Lamport floor).

mod acceptor;
mod client;
mod effects;
mod membership;
mod proposer;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use physalia_traces::Input;
use physalia_traces::{
    Ballot, ClientId, Command, Config, DurableWrite, Envelope, Image, Kind, Msg, MsgId, NodeId,
    OpSeq, Persist, PersistId, Role, Slot, TimeoutKind, TraceEvent, Txn,
};

use crate::kv::{Limits, LocalRead, StateMachine};
use effects::{Effects, Held};

/// Tunables of a replica. Every queue and batch has a bound here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The cell's name (its partition key), for traces.
    pub cell: String,
    /// The pipeline window α: at most this many client slots proposed and not committed.
    pub alpha: u64,
    /// Most slots in one `Accept` (batching and catch-up segment size).
    pub max_batch: usize,
    /// Most client requests queued behind a full pipeline; beyond it, `Overloaded`.
    pub max_queue: usize,
    /// Base election timeout (ms); the actual one is uniform in `[t, 2t)`.
    pub election_timeout: u64,
    /// Leader heartbeat interval (ms).
    pub heartbeat_interval: u64,
    /// Candidate's interval for re-sending `Prepare` (ms): `Timeout(prepare)`.
    pub prepare_interval: u64,
    /// Seed of the election-jitter generator.
    pub seed: u64,
    /// Compaction: once this many slots are applied above the snapshot, the applied prefix
    /// is folded into a new snapshot and its log entries dropped, which bounds the log to
    /// about this many slots plus the pipeline (0: never compact).
    pub snapshot_every: u64,
    /// Keep the entries a step folds into a snapshot until the next step, for a shell that
    /// checks every committed slot ([`Cell::committed_entry`]; the simulator). Off in a
    /// node: a parked cell would hold them for good.
    pub keep_folded: bool,
    /// Transaction limits (fail closed).
    pub limits: Limits,
    /// The injected bug, if any (feature `bugs` only).
    #[cfg(feature = "bugs")]
    pub bug: Option<crate::bugs::Bug>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cell: "cell".to_owned(),
            alpha: 3,
            max_batch: 16,
            max_queue: 64,
            election_timeout: 150,
            heartbeat_interval: 50,
            prepare_interval: 50,
            seed: 0,
            snapshot_every: 1024,
            keep_folded: false,
            limits: Limits::default(),
            #[cfg(feature = "bugs")]
            bug: None,
        }
    }
}

/// An answer to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    /// A protocol message to a client: `Reply` or `Redirect`.
    Msg {
        /// The client.
        client: ClientId,
        /// The message.
        msg: physalia_traces::Msg,
    },
    /// The answer to a local read.
    LocalRead {
        /// The client.
        client: ClientId,
        /// The answer.
        read: LocalRead,
    },
}

/// The timers the shell should have armed after a step (absolute logical times, ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    /// When to fire `Timeout(election)`; `None` while leading.
    pub election: Option<u64>,
    /// When to fire `Timeout(heartbeat)`; only while leading.
    pub heartbeat: Option<u64>,
    /// When to fire `Timeout(prepare)`; only while a candidate.
    pub prepare: Option<u64>,
}

/// Messages held by the core until a persist batch is durable. Opaque on purpose: the
/// envelopes come out only in the `send` of the step that acknowledges the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfterPersist {
    batch: Option<PersistId>,
    ids: Vec<MsgId>,
}

impl AfterPersist {
    /// The batch by whose acknowledgement the messages held by this step are released
    /// (each waits for the latest batch issued when it was created), if any are held.
    pub fn batch(&self) -> Option<PersistId> {
        self.batch
    }

    /// The ids of the held messages.
    pub fn ids(&self) -> &[MsgId] {
        &self.ids
    }
}

/// Everything a step asks of the shell; see the module documentation for the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// What must be made durable.
    pub persist: Option<Persist>,
    /// What will be sent once that (and every earlier batch) is durable.
    pub after_persist: AfterPersist,
    /// What may be sent now.
    pub send: Vec<Envelope>,
    /// Answers to clients.
    pub replies: Vec<ClientReply>,
    /// The timers to arm.
    pub timers: Timers,
    /// This step's trace event.
    pub trace: TraceEvent,
}

/// What a node's storage holds: its promise and its log, and how the copy was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// The durable promise.
    pub promised: Ballot,
    /// The durable log: slot → (ballot, command).
    pub log: BTreeMap<Slot, (Ballot, Command)>,
    /// The copy was created by teaching (a node added after the cell began, or added back
    /// after its earlier copy was deleted), not with the cell: it votes and promises only
    /// for slots from the start of the membership it learns it was added for.
    pub learner: bool,
    /// The latest snapshot: the state machine as of a chosen prefix, which replaces the
    /// log entries below its `upto` (none below it are kept).
    pub image: Option<Image>,
    /// A learner's copy takes its membership only from a change in force at or after this
    /// slot (`Kind::Start`'s `floor`): the slot where an earlier copy of its node left the
    /// jury, so that a copy re-created while it catches up never takes the *old* change
    /// that added its node for its own (ABA); [`physalia_traces::NO_FLOOR_YET`] when that
    /// slot is unknown (the node's earlier state was lost): then only a change applied
    /// after one removing the node counts. Written once, when the copy is created.
    pub floor: Slot,
}

impl Durable {
    /// Applies a persist batch, as storage does once it is written.
    pub fn apply(&mut self, writes: &[DurableWrite]) {
        for w in writes {
            match w {
                DurableWrite::Promised { ballot } => self.promised = *ballot,
                DurableWrite::Accepted { entry } => {
                    self.log
                        .insert(entry.slot, (entry.ballot, entry.command.clone()));
                }
                DurableWrite::Snapshot { image } => {
                    self.log = self.log.split_off(&image.upto);
                    self.image = Some(image.clone());
                }
            }
        }
    }

    /// The snapshot's point: every slot below it is chosen and folded into the snapshot.
    pub fn base(&self) -> Slot {
        self.image.as_ref().map_or(0, |i| i.upto)
    }
}

/// What a restarted node must know beyond its protocol state: a new incarnation (strictly
/// greater than every earlier one) and a Lamport floor (at least the last clock it traced),
/// both kept by the shell in a durable boot record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// The incarnation number.
    pub inc: u64,
    /// The Lamport clock to continue from.
    pub lamport: u64,
}

/// What a node collecting promises knows (role `Candidate`).
#[derive(Clone, Debug)]
struct Candidate {
    ballot: Ballot,
    from: Slot,
    promised_by: BTreeSet<NodeId>,
    self_durable: bool,
    learned: BTreeMap<Slot, (Ballot, Command)>,
}

/// The leader's phase 1, per node: which nodes promised its ballot, from which slot their
/// `Promise` reports entries, and what is left to re-propose.
#[derive(Clone, Debug, Default)]
struct Phase1 {
    /// Node → the first slot its promise covers (the `from` of the `Prepare` it answered).
    promised: BTreeMap<NodeId, Slot>,
    /// Node → the `from` of the latest `Prepare` sent to it by this leader.
    prepared: BTreeMap<NodeId, Slot>,
    /// Learned entries (highest ballot reported) not yet re-proposed, by slot.
    learned: BTreeMap<Slot, (Ballot, Command)>,
    /// One past the last slot learned: every slot below it is re-proposed (a `Noop` where
    /// nothing was learned) before any new command.
    end: Slot,
}

/// What the leader knows of one peer.
#[derive(Clone, Debug, Default)]
struct Peer {
    commit: Slot,
    acked: BTreeSet<Slot>,
    /// The peer's incarnation its last `Accepted` came from: a restart may have lost what
    /// it acknowledged before (a torn or repaired log), so a new one forgets the acks.
    inc: Option<u64>,
}

/// Leadership state (role `Leader`).
#[derive(Clone, Debug)]
struct Lead {
    ballot: Ballot,
    next_slot: Slot,
    votes: BTreeMap<Slot, BTreeSet<NodeId>>,
    peers: BTreeMap<NodeId, Peer>,
    queue: VecDeque<(ClientId, OpSeq, Txn)>,
    pending: BTreeSet<(ClientId, OpSeq)>,
    phase1: Phase1,
    /// Nodes being taught before a jury change adds them (non-voting).
    learners: BTreeSet<NodeId>,
}

/// One replica of a cell: the pure protocol core.
#[derive(Debug)]
pub struct Cell {
    id: NodeId,
    opts: Options,
    promised: Ballot,
    log: BTreeMap<Slot, (Ballot, Command)>,
    role: Role,
    ballot: Ballot,
    commit: Slot,
    max_round: u64,
    sm: StateMachine,
    candidate: Option<Candidate>,
    lead: Option<Lead>,
    now: u64,
    timers: Timers,
    rng: u64,
    issued: PersistId,
    durable: PersistId,
    held: VecDeque<Held>,
    inc: u64,
    step_seq: u64,
    msg_seq: u64,
    lc: u64,
    fx: Effects,
    /// The copy was created by teaching (see [`Durable::learner`]).
    learner: bool,
    /// The first slot this copy may vote and promise for (`None`: not a member yet).
    since: Option<Slot>,
    /// No membership from a change in force below this slot (see [`Durable::floor`]); a
    /// change removing this node raises it to the slot the removal is in force.
    floor: Slot,
    /// The snapshot's point: slots below it are chosen, folded into the state machine and
    /// gone from the log (see [`Durable::image`]).
    base: Slot,
    /// The snapshot at `base` as persisted (what storage holds beside the log).
    image: Option<Image>,
    /// The entries the latest step folded into a snapshot of its own (kept until the next
    /// step, for a shell that checks what each step committed: see [`Cell::committed_entry`]).
    folded: BTreeMap<Slot, (Ballot, Command)>,
}

impl Cell {
    /// A fresh replica `id` of a cell whose initial jury is `config`, with empty storage,
    /// created with the cell (a member of the initial jury).
    pub fn new(id: NodeId, config: Config, opts: Options, now: u64) -> (Cell, Output) {
        Cell::restart(id, config, opts, Durable::default(), Boot::default(), now)
    }

    /// A fresh copy created by teaching, for a node a jury change is about to add (or add
    /// back): a learner until it learns the chosen change that adds it.
    pub fn new_learner(
        id: NodeId,
        config: Config,
        opts: Options,
        boot: Boot,
        now: u64,
    ) -> (Cell, Output) {
        let durable = Durable {
            learner: true,
            ..Durable::default()
        };
        Cell::restart(id, config, opts, durable, boot, now)
    }

    /// A replica restarted from `durable` storage: a `Follower` whose commit index is its
    /// snapshot's point (0 without one). The shell checks the snapshot first
    /// ([`StateMachine::from_image`] refuses one no state machine could have written).
    pub fn restart(
        id: NodeId,
        config: Config,
        opts: Options,
        durable: Durable,
        boot: Boot,
        now: u64,
    ) -> (Cell, Output) {
        #[cfg(feature = "bugs")]
        let durable_round = if opts.bug == Some(crate::bugs::Bug::BallotReuseAfterRestart) {
            0 // the bug: the rounds used before the crash are forgotten
        } else {
            durable.promised.round
        };
        #[cfg(not(feature = "bugs"))]
        let durable_round = durable.promised.round;
        let rng = opts.seed ^ (u64::from(id.0) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        #[cfg(feature = "bugs")]
        let change_delay = if opts.bug == Some(crate::bugs::Bug::ConfigEffectiveEarly) {
            1 // the bug: a change is in force at the next slot, not α slots later
        } else {
            opts.alpha
        };
        #[cfg(not(feature = "bugs"))]
        let change_delay = opts.alpha;
        let fresh = StateMachine::new(config, opts.limits, change_delay);
        let sm = match durable.image.as_ref().map(|i| fresh.from_image(i)) {
            Some(Ok(sm)) => sm,
            Some(Err(why)) => {
                debug_assert!(
                    false,
                    "the shell restarts only from a valid snapshot: {why}"
                );
                fresh
            }
            None => fresh,
        };
        let base = sm.applied();
        let image = durable.image.filter(|_| base > 0);
        let kind = Kind::Start {
            promised: durable.promised,
            log_len: durable.log.len() as u64,
            learner: durable.learner,
            floor: durable.floor,
            base,
        };
        let mut cell = Cell {
            id,
            promised: durable.promised,
            max_round: durable_round,
            log: durable.log,
            role: Role::Follower,
            ballot: Ballot::ZERO,
            commit: base,
            sm,
            candidate: None,
            lead: None,
            now,
            timers: Timers::default(),
            rng,
            issued: 0,
            durable: 0,
            held: VecDeque::new(),
            inc: boot.inc,
            step_seq: 0,
            msg_seq: 0,
            lc: boot.lamport,
            fx: Effects::default(),
            learner: durable.learner,
            since: (!durable.learner).then_some(0),
            floor: durable.floor,
            base,
            image,
            folded: BTreeMap::new(),
            opts,
        };
        if cell.base > 0 {
            cell.adopt_memberships();
        }
        cell.begin(now, kind, None);
        cell.arm_election();
        let out = cell.finish();
        (cell, out)
    }

    /// Takes one input and returns what the shell must do.
    pub fn step(&mut self, now: u64, input: Input) -> Output {
        let received = match &input {
            Input::Deliver { lc, .. } => Some(*lc),
            _ => None,
        };
        self.begin(now, Kind::Input(input.clone()), received);
        match input {
            Input::Deliver { id, msg, .. } => self.on_message(id, msg),
            Input::Timeout {
                timer: TimeoutKind::Election,
            } => self.on_election_timeout(),
            Input::Timeout {
                timer: TimeoutKind::Heartbeat,
            } => self.on_heartbeat(),
            Input::Timeout {
                timer: TimeoutKind::Prepare,
            } => self.on_prepare_timeout(),
            Input::Request { client, op, txn } => self.on_request(client, op, txn),
            Input::LocalRead {
                client,
                keys,
                min_applied,
            } => self.on_local_read(client, &keys, min_applied),
            Input::Persisted { up_to } => self.on_persisted(up_to),
        }
        self.compact();
        self.check_invariants();
        self.finish()
    }

    fn on_message(&mut self, id: MsgId, msg: Msg) {
        let from = id.node;
        // Fail closed: a message claiming to come from this node is ignored. Who else may
        // talk is the shell's business (it authenticates every peer); what counts is decided
        // per slot where it matters: a vote or a promise counts only from a member of the
        // slot's configuration (a learner, a lagging member or a removed node may still send
        // and receive, and must, to be taught or to learn it was removed).
        if from == self.id {
            return;
        }
        match msg {
            Msg::Prepare { ballot, from: slot } => self.on_prepare(from, ballot, slot),
            Msg::Promise { ballot, accepted } => self.on_promise(from, ballot, accepted),
            Msg::Nack { ballot, promised } => self.on_nack(ballot, promised),
            Msg::Accept { ballot, proposals } => self.on_accept(from, ballot, proposals),
            Msg::Accepted {
                ballot,
                slots,
                commit,
            } => self.on_accepted((from, id.inc), ballot, &slots, commit),
            Msg::Commit { ballot, up_to } => self.on_commit(from, ballot, up_to),
            Msg::Snapshot { ballot, image } => self.on_snapshot(from, ballot, image),
            Msg::Request { client, op, txn } => self.on_request(client, op, txn),
            // Client-bound messages carry nothing for a node: fail closed, ignore.
            Msg::Redirect { .. } | Msg::Reply { .. } => {}
        }
    }

    /// This replica's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The highest ballot promised (as issued).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The ballot this node stands or leads with.
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }

    /// Slots `< commit` are known chosen.
    pub fn commit(&self) -> Slot {
        self.commit
    }

    /// The log as issued (durable once its batches are acknowledged).
    pub fn log(&self) -> &BTreeMap<Slot, (Ballot, Command)> {
        &self.log
    }

    /// The snapshot's point: slots below it are folded into the state machine and gone from
    /// the log.
    pub fn base(&self) -> Slot {
        self.base
    }

    /// The entry at `slot`: in the log, or folded into a snapshot by the latest step (so
    /// that a shell checking each step's newly committed slots sees them all).
    pub fn committed_entry(&self, slot: Slot) -> Option<&(Ballot, Command)> {
        self.log.get(&slot).or_else(|| self.folded.get(&slot))
    }

    /// The latest snapshot as persisted (with the log, what storage holds).
    pub fn snapshot_image(&self) -> Option<&Image> {
        self.image.as_ref()
    }

    /// The state machine (applied prefix of the log).
    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    /// The current incarnation.
    pub fn inc(&self) -> u64 {
        self.inc
    }

    /// The Lamport clock of the last step (a restart must continue above it).
    pub fn lamport(&self) -> u64 {
        self.lc
    }

    /// The node this replica believes leads, if any: the node of its promised ballot.
    pub fn leader_hint(&self) -> Option<NodeId> {
        (!self.promised.is_zero()).then_some(self.promised.node)
    }

    /// Whether the injected bug `bug` is on.
    #[cfg(feature = "bugs")]
    fn bug(&self, bug: crate::bugs::Bug) -> bool {
        self.opts.bug == Some(bug)
    }

    /// A uniform draw in `[0, n)` from the seeded generator (splitmix64).
    fn random_below(&mut self, n: u64) -> u64 {
        crate::rng::splitmix64(&mut self.rng) % n.max(1)
    }

    fn arm_election(&mut self) {
        let t = self.opts.election_timeout;
        self.timers.election = Some(self.now + t + self.random_below(t));
    }

    /// Assertions on the state every step relies on (TigerBeetle style).
    fn check_invariants(&self) {
        debug_assert!(self.sm.applied() <= self.commit, "applied beyond commit");
        debug_assert!(self.base <= self.sm.applied(), "snapshot beyond applied");
        debug_assert!(
            self.log.keys().next().is_none_or(|s| *s >= self.base),
            "a log entry below the snapshot"
        );
        debug_assert!(
            self.commit == self.base || self.log.contains_key(&(self.commit - 1)),
            "the last committed slot is missing from the log"
        );
        debug_assert!(self.ballot <= self.promised || self.role == Role::Follower);
        debug_assert_eq!(self.role == Role::Leader, self.lead.is_some());
        debug_assert_eq!(self.role == Role::Candidate, self.candidate.is_some());
    }
}
