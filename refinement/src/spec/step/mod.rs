//! The rules of one step, grouped by phase as in the core and the model's handlers:
//! [`election`] (phase 1), [`replication`] (phase 2), [`learning`] (commit and apply),
//! [`client`], [`persistence`]; then [`compare`] (the logged step against the predicted
//! one), [`sends`] (which messages and client events a step may produce), [`judge`] (the
//! safety properties on what the step did) and [`resync`] (after a failure).
//!
//! [`World::step`] predicts the node's state after the event from its state before and the
//! event's input, letting the node choose where the protocol leaves a choice, then compares
//! the prediction with what the node logged. The world moves on with what the node logged
//! (durable writes, sends), so that the ghost variables record what really happened and the
//! safety properties judge it.

mod client;
mod client_events;
mod compare;
mod election;
mod judge;
mod learning;
mod membership;
mod persistence;
mod reads;
mod replication;
mod resync;
mod sends;
mod snapshot;

use physalia_traces::{
    DurableWrite, Endpoint, Input, Kind, Msg, MsgId, NodeId, PersistId, Role, Slot, TimeoutKind,
    TraceEvent,
};

use super::properties;
use super::state::{Network, NodeSpec, Report, Storage};
use super::{CellFacts, Finding, Ghost, Refusal, Violation, World};
use sends::Expect;

/// What the replay must record in the network after a step is accepted.
#[derive(Clone, Debug, Default)]
pub struct StepInfo {
    /// For each `Accepted` sent: the acceptances it reports.
    pub reports: Vec<(MsgId, Vec<Report>)>,
}

/// What the rules need of a node's state before the step.
#[derive(Clone, Copy, Debug)]
struct Pre {
    pub up: bool,
    pub inc: Option<u64>,
    pub role: Role,
    pub issued: PersistId,
    pub commit: Slot,
    /// The leader's ballot and next slot, while it leads: a proposal below that slot at
    /// that ballot was made in an earlier step.
    pub lead: Option<(physalia_traces::Ballot, Slot)>,
}

/// The step in progress on one node.
struct Ctx<'a> {
    pub facts: &'a CellFacts,
    pub n: NodeId,
    pub ev: &'a TraceEvent,
    /// The node before the step (what the rules compare against).
    pub pre: Pre,
    /// The node as the rules predict it after the step.
    pub w: NodeSpec,
    /// Durable writes the rules predict (compared as a set with the logged batch).
    pub writes: Vec<DurableWrite>,
    /// Client results produced by applying committed slots in this step.
    pub applied: Vec<(
        physalia_traces::ClientId,
        physalia_traces::OpSeq,
        physalia_traces::TxnResult,
    )>,
    /// The answer the rules require to a delivered message, if any.
    pub expect: Option<Expect>,
    /// Whether the leader may propose requested operations in this step (policy).
    pub may_propose: bool,
    /// Whether the node stepped down from leading in this step.
    pub stepped_down: bool,
    /// The request a leader took in during this step (it must be logged as invoked unless
    /// it is rejected).
    pub took_in: Option<(physalia_traces::ClientId, physalia_traces::OpSeq)>,
    /// The requests a leader stepping down in this step had taken in (it redirects those).
    pub redirectable:
        std::collections::BTreeSet<(physalia_traces::ClientId, physalia_traces::OpSeq)>,
    pub findings: Vec<Finding>,
    pub violations: Vec<Violation>,
}

impl<'a> Ctx<'a> {
    /// The context of `ev` on node `w` (taken out of the world for the step).
    fn new(facts: &'a CellFacts, ev: &'a TraceEvent, w: NodeSpec) -> Ctx<'a> {
        Ctx {
            facts,
            n: ev.node,
            ev,
            pre: Pre {
                up: w.up,
                inc: w.inc,
                role: w.role,
                issued: w.issued,
                commit: w.commit,
                lead: w.lead.as_ref().map(|l| (l.ballot, l.next_slot)),
            },
            w,
            writes: Vec::new(),
            applied: Vec::new(),
            expect: None,
            may_propose: false,
            stepped_down: false,
            took_in: None,
            redirectable: Default::default(),
            findings: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Whether `n` is a member of the configuration in force at `slot`, as this node's
    /// applied prefix gives it.
    fn member_at(&self, n: NodeId, slot: Slot) -> bool {
        self.w.store.juries.member_at(n, slot)
    }

    pub(super) fn find(
        &mut self,
        field: impl Into<String>,
        allowed: impl std::fmt::Display,
        logged: impl std::fmt::Display,
    ) {
        self.findings.push(Finding::new(field, allowed, logged));
    }

    /// `start`: the node must be down; it comes back with its durable state, a `Follower`
    /// with `commit = 0`, in a higher incarnation. A learner's copy with nothing stored is a
    /// new copy (its node's earlier one was deleted, or its disk lost): it starts empty and
    /// votes only once it learns the change that adds it (its `since`). A node outside the
    /// initial jury only ever starts as a learner's copy.
    fn on_start(
        &mut self,
        promised: physalia_traces::Ballot,
        log_len: u64,
        learner: bool,
        (floor, base): (Slot, Slot),
    ) {
        if self.pre.inc.is_some_and(|i| self.ev.inc <= i) {
            let above = format!("an incarnation above {}", self.pre.inc.unwrap_or(0));
            self.find("inc", above, self.ev.inc);
        }
        if !learner && !self.facts.initial.contains(self.n) {
            let allowed = format!("a learner's copy: {} is not in the initial jury", self.n);
            self.find("kind.learner", allowed, false);
        }
        let mut storage = std::mem::take(&mut self.w.storage);
        if learner && log_len == 0 && promised.is_zero() && base == 0 {
            // A new copy: nothing of the old one counts, except where it left the jury.
            if let Some(required) = self.required_floor(&storage) {
                if floor < required {
                    let allowed = if required == physalia_traces::NO_FLOOR_YET {
                        "NO_FLOOR_YET: the copy it replaces was a member when its state was lost, \
                         so a new copy takes no membership before one ends"
                            .to_owned()
                    } else {
                        format!(
                            "at least {required}: the copy it replaces left the jury there, and \
                             a new copy must not take that membership for its own (ABA)"
                        )
                    };
                    self.find("kind.floor", allowed, floor);
                }
            }
            storage = Storage {
                floor,
                ..Storage::default()
            };
        } else if floor != storage.floor {
            self.find("kind.floor", storage.floor, floor);
        }
        self.w = NodeSpec {
            up: true,
            inc: Some(self.ev.inc),
            now: self.ev.now,
            promised: storage.promised,
            ..NodeSpec::new(self.facts.juries(), learner)
        };
        if promised != storage.promised {
            self.find("kind.promised", storage.promised, promised);
        }
        if log_len != storage.log.len() as u64 {
            self.find("kind.log_len", storage.log.len(), log_len);
        }
        self.w.set_log(storage.log.clone());
        self.w.floor = storage.floor;
        // From a snapshot: its store, the commit index at its point, and the memberships
        // its jury history gives.
        if let Some(image) = storage.image.clone() {
            match self.w.store.from_image(&image) {
                Some(store) => {
                    self.w.store = store;
                    self.w.commit = image.upto;
                    self.w.base = image.upto;
                    self.adopt_memberships();
                }
                None => self.find(
                    "kind.base",
                    "a restart from a snapshot a store could hold",
                    format!("snapshot {image}"),
                ),
            }
        }
        if base != self.w.base {
            self.find("kind.base", self.w.base, base);
        }
        self.w.storage = storage;
    }

    /// The least floor a new learner's copy of this node may start with, given the copy it
    /// replaces (`storage` its durable state): the old copy's own floor if nothing of it was
    /// durable or it never joined; the slot it left the jury at, if it was removed; none
    /// known (`NO_FLOOR_YET`) if it was a member still (its state was lost).
    fn required_floor(&self, storage: &Storage) -> Option<Slot> {
        self.pre.inc?;
        let old = &self.w;
        if storage.promised.is_zero() && storage.log.is_empty() && storage.image.is_none() {
            // The same copy restarting before anything of it was durable (it cannot have
            // voted: votes wait for their writes), whatever it had learned in memory.
            return Some(storage.floor);
        }
        let Some(_) = old.since else {
            return Some(storage.floor);
        };
        let juries = &old.store.juries;
        let out = !juries.at(old.commit).contains(&self.n) && !juries.latest().0.contains(&self.n);
        Some(if out {
            juries.start_of(old.commit).max(storage.floor)
        } else {
            physalia_traces::NO_FLOOR_YET
        })
    }

    /// One input to a running node.
    fn on_input(&mut self, ghost: &mut Ghost, net: &Network, input: &Input) -> Result<(), Refusal> {
        match input {
            Input::Deliver { id, lc, msg } => deliver(self, ghost, net, *id, *lc, msg)?,
            Input::Timeout { timer } => match timer {
                TimeoutKind::Election => self.on_election_timeout(&ghost.candidate_ballots),
                TimeoutKind::Heartbeat | TimeoutKind::Prepare => {}
            },
            Input::Request { client, op, txn } => {
                ghost.requested.insert((*client, *op));
                self.on_request(*client, *op, txn);
            }
            Input::LocalRead { .. } => {}
            Input::Persisted { up_to } => {
                for (_, writes) in self.on_persisted(*up_to) {
                    properties::make_durable(
                        &mut self.w.storage,
                        ghost,
                        self.facts,
                        (self.n, self.w.since),
                        &writes,
                        &mut self.violations,
                    );
                }
            }
        }
        Ok(())
    }

    /// After the rules ran: compare the logged step with the prediction, check the sends
    /// and client events, move on with what the node logged, judge the safety properties.
    fn finish(&mut self, ghost: &mut Ghost, net: &Network) -> Result<StepInfo, Refusal> {
        // A ballot is used once a `Prepare` of it leaves the node (sent at once, or released
        // by an acknowledgement): standing again with a ballot whose `Prepare`s all stayed
        // held and died with a crash reaches no acceptor.
        let ev = self.ev;
        let leaving = ev
            .sent
            .iter()
            .filter(|s| s.after_persist.is_none())
            .map(|s| &s.msg)
            .chain(
                ev.released
                    .iter()
                    .filter_map(|id| net.get(id).map(|m| &m.msg)),
            );
        for msg in leaving {
            if let Msg::Prepare { ballot, .. } = msg {
                ghost.candidate_ballots.insert(*ballot);
            }
        }
        self.accept_new_proposals(&ev.state.accepted);
        self.check_compaction();
        compare::compare_state(self);
        compare::compare_writes(self);
        compare::check_released(self, net);
        let reports = sends::check_sends(self, net);
        client_events::check_client_events(self);
        // The world moves on with what the node logged.
        if let Some(p) = &self.ev.persist {
            self.w.pending.push((p.id, p.writes.clone()));
            self.w.issued = p.id;
        }
        let mut violations = std::mem::take(&mut self.violations);
        judge::after_step(ghost, self, &mut violations);
        let findings = std::mem::take(&mut self.findings);
        if !findings.is_empty() || !violations.is_empty() {
            return Err(Refusal::Failed {
                findings,
                violations,
            });
        }
        Ok(StepInfo { reports })
    }
}

impl World {
    /// Replays event `ev` on this state. On success the state is the one after the event.
    /// When the event is [`Refusal::Disabled`] the state is unchanged (an unlogged action may
    /// be tried first); after [`Refusal::Failed`] the state holds what the node logged as far
    /// as the rules got, for diagnosis only.
    pub fn step(
        &mut self,
        facts: &CellFacts,
        net: &Network,
        ev: &TraceEvent,
    ) -> Result<StepInfo, Refusal> {
        let n = ev.node;
        let Some(node) = self.nodes.get_mut(&n) else {
            let members = format!(
                "a node of the cell {}",
                crate::spec::jury::show(facts.members().iter().copied())
            );
            return Err(Refusal::Failed {
                findings: vec![Finding::new("node", members, n)],
                violations: Vec::new(),
            });
        };
        if let Some(finding) = super::bounds::check(ev, facts.slot_bound)
            .or_else(|| super::bounds::check_persist(ev, facts.persist_bound))
        {
            return Err(Refusal::Failed {
                findings: vec![finding],
                violations: Vec::new(),
            });
        }
        let mut ctx = Ctx::new(facts, ev, std::mem::take(node));
        let disabled = match (&ev.kind, ctx.pre.up) {
            (Kind::Start { .. }, true) => {
                Some(format!("{n} is running: a restart needs a crash first"))
            }
            (Kind::Input(_), false) => Some(format!("{n} is not running")),
            _ => None,
        };
        if let Some(why) = disabled {
            self.nodes.insert(n, ctx.w);
            return Err(Refusal::Disabled(why));
        }
        let ghost = &mut self.ghost;
        match &ev.kind {
            Kind::Start {
                promised,
                log_len,
                learner,
                floor,
                base,
            } => ctx.on_start(*promised, *log_len, *learner, (*floor, *base)),
            Kind::Input(input) => {
                if ctx.pre.inc != Some(ev.inc) {
                    ctx.find("inc", ctx.pre.inc.unwrap_or(0), ev.inc);
                }
                if ev.now < ctx.w.now {
                    let allowed = format!(
                        "at least {}: a running node's clock does not run backwards (its \
                         previous step's now)",
                        ctx.w.now
                    );
                    ctx.find("now", allowed, ev.now);
                }
                ctx.w.now = ctx.w.now.max(ev.now);
                if let Err(e) = ctx.on_input(ghost, net, input) {
                    self.nodes.insert(n, ctx.w);
                    return Err(e);
                }
            }
        }
        let result = ctx.finish(ghost, net);
        self.nodes.insert(n, ctx.w);
        result
    }
}

/// A delivered message: it must have been sent to this node and have a copy in flight.
fn deliver(
    ctx: &mut Ctx<'_>,
    ghost: &mut Ghost,
    net: &Network,
    id: MsgId,
    lc: u64,
    msg: &Msg,
) -> Result<(), Refusal> {
    let n = ctx.n;
    let Some(sent) = net.get(&id) else {
        ctx.find("kind.id", "the id of a message sent earlier", id);
        return Ok(());
    };
    if sent.to != Endpoint::Node(n) {
        ctx.find(
            "kind.id",
            format!("a message sent to {n}"),
            format!("{id}, sent to {}", sent.to),
        );
        return Ok(());
    }
    if &sent.msg != msg {
        ctx.find(
            "kind.msg",
            format!("{} (as sent)", sent.msg),
            msg.to_string(),
        );
        return Ok(());
    }
    if sent.lc != lc {
        ctx.find("kind.lc", sent.lc, lc);
    }
    if sent.copies == 0 {
        return Err(Refusal::Disabled(format!(
            "message {id} has no copy in flight (delivered already)"
        )));
    }
    if let Some(p) = sent.after_persist {
        if !net.released.contains(&id) {
            ctx.find(
                "kind.id",
                format!(
                    "a message its sender has released (it waits for batch {p} of {})",
                    sent.from
                ),
                format!("{id}, delivered before its release"),
            );
        }
    }
    // What an `Accepted` reports is a durable acceptance, whoever receives it.
    for (slot, ballot, command) in &sent.reports {
        properties::record_vote(
            ghost,
            ctx.facts,
            sent.from,
            *slot,
            *ballot,
            command,
            &mut ctx.violations,
        );
    }
    let src = sent.from;
    if src == n {
        return Ok(()); // ignored (fail closed): what counts is decided per slot
    }
    match msg {
        Msg::Prepare { ballot, from } => ctx.on_prepare(src, *ballot, *from),
        Msg::Promise { ballot, accepted } => ctx.on_promise(src, *ballot, accepted),
        Msg::Nack { ballot, .. } => ctx.on_nack(*ballot),
        Msg::Accept { ballot, proposals } => ctx.on_accept(src, *ballot, proposals),
        Msg::Accepted { ballot, slots, .. } => ctx.on_accepted(src, *ballot, slots),
        Msg::Commit { ballot, up_to } => ctx.on_commit(*ballot, *up_to),
        Msg::Snapshot { ballot, image } => ctx.on_snapshot(src, *ballot, image),
        Msg::Request { client, op, txn } => {
            ghost.requested.insert((*client, *op));
            ctx.on_request(*client, *op, txn);
        }
        Msg::Redirect { .. } | Msg::Reply { .. } => {}
    }
    Ok(())
}
