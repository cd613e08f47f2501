//! The state of the implementation-granularity specification: one [`NodeSpec`] per node
//! (the protocol state `docs/protocol.md` gives every node, plus what the implementation adds
//! and `impl/README.md` lists: persist batches, held self-votes, the leader's vote tally),
//! the [`Ghost`] variables the safety properties read, and the [`Network`] of sent messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use physalia_traces::{
    Ballot, ClientId, Command, Config, DurableWrite, Endpoint, Image, Msg, MsgId, NodeId, OpSeq,
    PersistId, Role, Slot, Txn, TxnResult,
};

use super::jury::Juries;
use crate::kv::KvSpec;

/// What a node's storage holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// The durable promise.
    pub promised: Ballot,
    /// The durable log: slot → (ballot, command).
    pub log: BTreeMap<Slot, (Ballot, Command)>,
    /// A learner's copy's floor, written when the copy was created (`Kind::Start`).
    pub floor: Slot,
    /// The latest snapshot: it replaces every log entry below its point.
    pub image: Option<Image>,
}

impl Storage {
    /// Applies one durable write.
    pub fn apply(&mut self, w: &DurableWrite) {
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

    /// The snapshot's point (0 without one).
    pub fn base(&self) -> Slot {
        self.image.as_ref().map_or(0, |i| i.upto)
    }
}

/// How many configurations a snapshot's jury history keeps (the implementation's bound:
/// the oldest are forgotten first).
pub const IMAGE_CONFIGS: usize = 16;

/// The applied prefix of a node's log: the store, the jury over time and, per client, its
/// latest operation and that operation's first result (exactly-once: a repeat is answered
/// with it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    /// The key-value store.
    pub kv: KvSpec,
    /// The configurations, as the applied jury changes give them.
    pub juries: Juries,
    /// Per client: its latest applied operation and the result.
    pub sessions: BTreeMap<ClientId, (OpSeq, TxnResult)>,
    /// Slots applied.
    pub applied: Slot,
    /// The last applied slot holding a jury change (valid or not, or a repeat).
    pub last_change: Option<Slot>,
}

impl Store {
    /// An empty store of a cell whose initial jury is `juries`'.
    pub fn new(juries: Juries) -> Store {
        Store {
            kv: KvSpec::default(),
            juries,
            sessions: BTreeMap::new(),
            applied: 0,
            last_change: None,
        }
    }

    /// The store as a snapshot of it reads: what the node must write or send as its image.
    pub fn image(&self) -> Image {
        Image {
            upto: self.applied,
            data: self
                .kv
                .entries()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(c, (op, r))| (*c, *op, r.clone()))
                .collect(),
            juries: self
                .juries
                .last_configs(IMAGE_CONFIGS)
                .iter()
                .map(|(s, e, m)| (*s, *e, Config { members: m.clone() }))
                .collect(),
            last_change: self.last_change,
        }
    }

    /// The store a snapshot holds (`None` if no store could have produced it).
    pub fn from_image(&self, image: &Image) -> Option<Store> {
        let configs = image
            .juries
            .iter()
            .map(|(s, e, c)| (*s, *e, c.members.clone()))
            .collect();
        let juries = Juries::from_configs(configs, self.juries.alpha())?;
        let beyond = image
            .juries
            .last()
            .is_some_and(|(s, _, _)| *s >= image.upto.saturating_add(self.juries.alpha()));
        if image.juries.len() > IMAGE_CONFIGS
            || image.last_change.is_some_and(|s| s >= image.upto)
            || beyond
            || image.upto > 1 << 62
        {
            return None;
        }
        Some(Store {
            kv: self.kv.with_entries(image.data.iter().cloned()),
            juries,
            sessions: image
                .sessions
                .iter()
                .map(|(c, op, r)| (*c, (*op, r.clone())))
                .collect(),
            applied: image.upto,
            last_change: image.last_change,
        })
    }

    /// Applies the command of slot `applied`; returns the client result it produces, if any.
    pub fn apply(&mut self, command: &Command) -> Option<(ClientId, OpSeq, TxnResult)> {
        let slot = self.applied;
        self.applied += 1;
        let Command::Op { client, op, txn } = command else {
            return None;
        };
        if txn.is_reconfig() {
            self.last_change = Some(slot);
        }
        match self.sessions.get(client) {
            Some((last, result)) if last == op => return Some((*client, *op, result.clone())),
            Some((last, _)) if last > op => return None,
            _ => {}
        }
        let result = match txn {
            Txn::Reconfig { change } => self.juries.apply(slot, change),
            txn => self.kv.apply(txn),
        };
        self.sessions.insert(*client, (*op, result.clone()));
        Some((*client, *op, result))
    }
}

/// What a candidate knows while it collects promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The ballot it stands with.
    pub ballot: Ballot,
    /// The candidate's commit index when it started: `Prepare.from`.
    pub from: Slot,
    /// Peers whose `Promise` arrived.
    pub promised_by: BTreeSet<NodeId>,
    /// Whether the candidate's own promise is durable (its own vote counts only then).
    pub self_durable: bool,
    /// Per slot `>= from`, the highest-ballot entry reported (its own log included).
    pub learned: BTreeMap<Slot, (Ballot, Command)>,
}

/// Leadership at one ballot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lead {
    /// The ballot led with.
    pub ballot: Ballot,
    /// The commit index when elected: slots from here on are (re-)proposed at `ballot`.
    pub start: Slot,
    /// The first slot not proposed yet.
    pub next_slot: Slot,
    /// Per slot, the nodes whose acceptance at `ballot` is durable (known to the leader).
    pub votes: BTreeMap<Slot, BTreeSet<NodeId>>,
    /// Phase 1 per node: node → the first slot its promise of `ballot` covers.
    pub promised: BTreeMap<NodeId, Slot>,
    /// Node → the `from` of the latest `Prepare` this leader sent it after its election.
    pub prepared: BTreeMap<NodeId, Slot>,
    /// Learned entries not yet re-proposed (re-proposals go slot by slot in the window).
    pub learned: BTreeMap<Slot, (Ballot, Command)>,
    /// One past the last slot learned: every slot below it is re-proposed before any new
    /// command.
    pub end: Slot,
}

/// One node as the specification sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Whether the node is running.
    pub up: bool,
    /// The incarnation running (or last run).
    pub inc: Option<u64>,
    /// The promise as issued (durable once its batch is).
    pub promised: Ballot,
    /// The log as issued.
    pub log: BTreeMap<Slot, (Ballot, Command)>,
    /// What storage holds.
    pub storage: Storage,
    /// Batches issued and not yet acknowledged durable, oldest first.
    pub pending: Vec<(PersistId, Vec<DurableWrite>)>,
    /// The last batch id issued in this incarnation.
    pub issued: PersistId,
    /// Follower, candidate or leader.
    pub role: Role,
    /// The ballot it stands or leads with.
    pub ballot: Ballot,
    /// Slots below it are known chosen.
    pub commit: Slot,
    /// The snapshot's point: slots below it are folded into `store` and gone from `log`.
    pub base: Slot,
    /// The applied prefix.
    pub store: Store,
    /// What it knows as a candidate, while one.
    pub candidate: Option<Candidate>,
    /// The leadership, while a leader.
    pub lead: Option<Lead>,
    /// The copy was created by teaching (not with the cell).
    pub learner: bool,
    /// The first slot it votes and promises for (`None`: a learner's copy that has not
    /// learned the change adding it).
    pub since: Option<Slot>,
    /// No membership from a change in force below it; a change removing this node raises
    /// it (`physalia_traces::NO_FLOOR_YET`: none until one removes it).
    pub floor: Slot,
    /// Client operations that reached this node in its current incarnation as a `Request`
    /// (a leader may propose only those: Validity).
    pub requested: BTreeMap<(ClientId, OpSeq), Txn>,
    /// How many slots of `log` hold each client operation (kept with `log` by [`put`]).
    ///
    /// [`put`]: NodeSpec::put
    pub ops_in_log: HashMap<(ClientId, OpSeq), u32>,
    /// The `now` of its latest step in this incarnation: a node's clock does not run
    /// backwards while it runs (bounded liveness reads it).
    pub now: u64,
}

impl NodeSpec {
    /// Whether the scalar fields and the sizes of the collections agree: a necessary
    /// condition of equality that costs no walk of a log.
    pub fn cheap_eq(&self, o: &NodeSpec) -> bool {
        self.up == o.up
            && self.inc == o.inc
            && self.promised == o.promised
            && self.issued == o.issued
            && self.role == o.role
            && self.ballot == o.ballot
            && self.commit == o.commit
            && self.base == o.base
            && self.learner == o.learner
            && self.since == o.since
            && self.floor == o.floor
            && self.now == o.now
            && self.log.len() == o.log.len()
            && self.pending.len() == o.pending.len()
            && self.requested.len() == o.requested.len()
    }

    /// A node that never ran: a member of the initial jury (`learner` false), or a node
    /// outside it whose copy will be created by teaching.
    pub fn new(juries: Juries, learner: bool) -> NodeSpec {
        NodeSpec {
            up: false,
            inc: None,
            promised: Ballot::ZERO,
            log: BTreeMap::new(),
            storage: Storage::default(),
            pending: Vec::new(),
            issued: 0,
            role: Role::Follower,
            ballot: Ballot::ZERO,
            commit: 0,
            base: 0,
            store: Store::new(juries),
            candidate: None,
            lead: None,
            requested: BTreeMap::new(),
            ops_in_log: HashMap::new(),
            learner,
            since: (!learner).then_some(0),
            floor: 0,
            now: 0,
        }
    }

    /// A placeholder (taken out of the world while a step runs).
    fn placeholder() -> NodeSpec {
        NodeSpec::new(Juries::default(), false)
    }

    /// Whether this copy votes for (and promises from) `slot`: from its `since` on, and not
    /// at a slot whose configuration (known from its applied prefix) does not hold it.
    pub fn votes_at(&self, node: NodeId, slot: Slot) -> bool {
        let known = slot < self.store.applied + self.store.juries.alpha();
        self.since.is_some_and(|s| slot >= s) && (!known || self.store.juries.member_at(node, slot))
    }

    /// Writes `entry` at `slot` of the issued log.
    pub fn put(&mut self, slot: Slot, entry: (Ballot, Command)) {
        if let Command::Op { client, op, .. } = &entry.1 {
            *self.ops_in_log.entry((*client, *op)).or_default() += 1;
        }
        if let Some((_, Command::Op { client, op, .. })) = self.log.insert(slot, entry) {
            if let Some(n) = self.ops_in_log.get_mut(&(client, op)) {
                *n -= 1;
                if *n == 0 {
                    self.ops_in_log.remove(&(client, op));
                }
            }
        }
    }

    /// Replaces the issued log (at a restart).
    pub fn set_log(&mut self, log: BTreeMap<Slot, (Ballot, Command)>) {
        self.ops_in_log.clear();
        for (_, c) in log.values() {
            if let Command::Op { client, op, .. } = c {
                *self.ops_in_log.entry((*client, *op)).or_default() += 1;
            }
        }
        self.log = log;
    }
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec::placeholder()
    }
}

/// Ghost state: never read by the protocol rules, only by the safety properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ghost {
    /// The configurations the chosen prefix gives (applied as far as the chosen log is
    /// contiguous): the jury each slot's quorum is counted in.
    pub juries: Juries,
    /// Slots of the chosen prefix applied to `juries`.
    pub applied: Slot,
    /// Chosen jury changes, by slot (for `one change at a time`).
    pub changes: BTreeSet<Slot>,
    /// Every durable acceptance ever made: `(slot, ballot)` → the command and who accepted it.
    pub votes: BTreeMap<(Slot, Ballot), (Command, BTreeSet<NodeId>)>,
    /// The acceptances in `votes`, counted (the sum of its voter sets' sizes): a summary
    /// that tells two states apart without walking their votes (see `World`'s `eq`).
    pub vote_count: u64,
    /// The command chosen at each slot (accepted durably by a quorum at one ballot), with the
    /// ballot it was first chosen at.
    pub chosen: BTreeMap<Slot, (Command, Ballot)>,
    /// Every ballot a `Prepare` left a node with, in any incarnation (a ballot in use).
    pub candidate_ballots: BTreeSet<Ballot>,
    /// The client operations that reached any node as a `Request`.
    pub requested: BTreeSet<(ClientId, OpSeq)>,
    /// The client operations chosen in some slot.
    pub chosen_ops: BTreeSet<(ClientId, OpSeq)>,
}

impl Ghost {
    /// The ghost of a cell whose initial jury is `juries`'.
    pub fn new(juries: Juries) -> Ghost {
        Ghost {
            juries,
            applied: 0,
            changes: BTreeSet::new(),
            votes: BTreeMap::new(),
            vote_count: 0,
            chosen: BTreeMap::new(),
            candidate_ballots: BTreeSet::new(),
            requested: BTreeSet::new(),
            chosen_ops: BTreeSet::new(),
        }
    }

    /// Applies the chosen prefix to the juries as far as it is contiguous.
    pub fn apply_chosen(&mut self) {
        while let Some((cmd, _)) = self.chosen.get(&self.applied) {
            if let Command::Op {
                txn: Txn::Reconfig { change },
                ..
            } = cmd
            {
                let change = *change;
                self.juries.apply(self.applied, &change);
            }
            self.applied += 1;
        }
    }
}

/// What an `Accepted` reports: `(slot, ballot, command)` accepted durably by its sender.
pub type Report = (Slot, Ballot, Command);

/// A message as sent, kept for the receive that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMsg {
    /// The sending node.
    pub from: NodeId,
    /// Its destination.
    pub to: Endpoint,
    /// The sender's Lamport clock when it created the message.
    pub lc: u64,
    /// The persist batch it waits for, if held.
    pub after_persist: Option<PersistId>,
    /// The message.
    pub msg: Msg,
    /// Copies in flight (a send makes one; a duplication adds one; a delivery takes one).
    pub copies: u32,
    /// For an `Accepted`: the acceptances it reports, `(slot, ballot, command)`.
    pub reports: Vec<Report>,
}

/// Every message sent so far (the same for every state of a frontier: sends are logged).
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Sent messages by id.
    pub msgs: HashMap<MsgId, SentMsg>,
    /// Per `(sender, incarnation)`: the highest batch acknowledged durable.
    pub persisted: HashMap<(NodeId, u64), PersistId>,
    /// Per `(sender, incarnation)`: held messages not released yet, with their batch.
    pub held: HashMap<(NodeId, u64), Vec<(PersistId, MsgId)>>,
    /// Held messages released (they may be delivered).
    pub released: std::collections::HashSet<MsgId>,
}

impl Network {
    /// The message `id`, if it was sent.
    pub fn get(&self, id: &MsgId) -> Option<&SentMsg> {
        self.msgs.get(id)
    }
}
