//! The rules of one step, grouped by phase as in the model's handlers (`model/src/
//! handlers.rs`): restart, election (phase 1), replication (phase 2), learning and
//! applying, clients, persistence.
//!
//! [`World::step`] predicts the node's state after the event from its state before and the
//! event's input, letting the node choose where the protocol leaves a choice, then compares
//! the prediction with what the node logged. The world moves on with what the node logged
//! (durable writes, sends), so that the ghost variables record what really happened and the
//! safety properties judge it.

use std::collections::BTreeSet;

use physalia_traces::{
    Ballot, Command, DurableWrite, Endpoint, Entry, Kind, Msg, MsgId, NodeId, PersistId, Role,
    Slot, TimeoutKind, TraceEvent,
};

use super::properties;
use super::sends::{check_client_events, check_sends, Expect};
use super::state::{Campaign, Lead, Network, NodeSpec};
use super::{CellFacts, Finding, Refusal, Violation, World};

/// What the replay must record in the network after a step is accepted.
#[derive(Clone, Debug, Default)]
pub struct StepInfo {
    /// For each `Accepted` sent: the acceptances it reports.
    pub reports: Vec<(MsgId, Vec<super::state::Report>)>,
}

/// What the rules need of a node's state before the step.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pre {
    pub up: bool,
    pub inc: Option<u64>,
    pub role: Role,
    pub issued: PersistId,
    pub commit: Slot,
}

/// The step in progress on one node.
pub(super) struct Ctx<'a> {
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
    pub findings: Vec<Finding>,
    pub violations: Vec<Violation>,
}

impl Ctx<'_> {
    fn quorum(&self) -> usize {
        self.facts.quorum
    }

    pub(super) fn find(
        &mut self,
        field: impl Into<String>,
        allowed: impl std::fmt::Display,
        logged: impl std::fmt::Display,
    ) {
        self.findings.push(Finding::new(field, allowed, logged));
    }

    // ----- Phase 1: election -------------------------------------------------------------

    /// A `Prepare` or `Accept` below the promise is answered `Nack` and changes nothing.
    fn refuse_lower(&mut self, src: NodeId, ballot: Ballot) -> bool {
        if ballot >= self.w.promised {
            return false;
        }
        let promised = self.w.promised;
        self.expect = Some(Expect::Nack {
            to: src,
            ballot,
            promised,
        });
        true
    }

    /// Raises the promise to `ballot` (a durable write) and steps down from a lower ballot.
    fn adopt(&mut self, ballot: Ballot) {
        if ballot > self.w.promised {
            self.w.promised = ballot;
            self.writes.push(DurableWrite::Promised { ballot });
        }
        if self.w.role != Role::Follower && self.w.ballot < ballot {
            self.step_down();
        }
    }

    fn step_down(&mut self) {
        if self.w.role == Role::Leader {
            self.stepped_down = true;
        }
        self.w.role = Role::Follower;
        self.w.campaign = None;
        self.w.lead = None;
        self.w.requested.clear(); // queued requests are redirected, never proposed
    }

    /// `Timeout(election)`: a non-leader campaigns with a fresh ballot of its own above its
    /// promise. The round is the node's choice (it is logged); its uniqueness is not.
    fn on_election_timeout(&mut self, ghost_campaigns: &BTreeSet<Ballot>) {
        if self.w.role == Role::Leader {
            return;
        }
        let ballot = self.ev.state.ballot;
        if ballot.node != self.n || ballot <= self.w.promised {
            self.find(
                "state.ballot",
                format!(
                    "a ballot (r, {}) above the promise {}",
                    self.n, self.w.promised
                ),
                ballot,
            );
        } else if ghost_campaigns.contains(&ballot) {
            self.find(
                "state.ballot",
                format!("a ballot {} never campaigned with before", self.n),
                format!("{ballot}, used already (ballots must be unique)"),
            );
        }
        self.w.promised = ballot;
        self.writes.push(DurableWrite::Promised { ballot });
        self.w.role = Role::Candidate;
        self.w.ballot = ballot;
        self.w.lead = None;
        let from = self.w.commit;
        self.w.campaign = Some(Campaign {
            ballot,
            from,
            promised_by: BTreeSet::new(),
            self_durable: false,
            learned: self
                .w
                .log
                .range(from..)
                .map(|(s, e)| (*s, e.clone()))
                .collect(),
        });
    }

    /// `Prepare`: promise (a durable write, answered once durable) or refuse.
    fn on_prepare(&mut self, src: NodeId, ballot: Ballot, from: Slot) {
        if self.refuse_lower(src, ballot) {
            return;
        }
        self.adopt(ballot);
        let accepted = self
            .w
            .log
            .range(from..)
            .map(|(s, (b, c))| Entry {
                slot: *s,
                ballot: *b,
                command: c.clone(),
            })
            .collect();
        self.expect = Some(Expect::Promise {
            to: src,
            ballot,
            accepted,
        });
    }

    /// `Promise` for the current campaign: count it, keep the highest-ballot entries.
    fn on_promise(&mut self, src: NodeId, ballot: Ballot, accepted: &[Entry]) {
        let Some(c) = self.w.campaign.as_mut().filter(|c| c.ballot == ballot) else {
            return;
        };
        c.promised_by.insert(src);
        for e in accepted {
            if c.learned.get(&e.slot).is_none_or(|(b, _)| *b < e.ballot) {
                c.learned.insert(e.slot, (e.ballot, e.command.clone()));
            }
        }
        self.try_win();
    }

    fn try_win(&mut self) {
        let Some(c) = self.w.campaign.as_ref() else {
            return;
        };
        if c.promised_by.len() + usize::from(c.self_durable) >= self.quorum() {
            self.become_leader();
        }
    }

    /// A quorum promised: re-propose the highest-ballot command of every slot learned, a
    /// `Noop` into every hole, from the commit index on (P2c).
    fn become_leader(&mut self) {
        let c = self.w.campaign.take().expect("a candidate campaigns");
        let start = self.w.commit;
        let end = c
            .learned
            .keys()
            .next_back()
            .map_or(start, |s| (s + 1).max(start));
        self.w.role = Role::Leader;
        self.w.requested.clear(); // a new leader's queue starts empty
        self.w.lead = Some(Lead {
            ballot: c.ballot,
            start,
            next_slot: start,
            votes: Default::default(),
        });
        for slot in start..end {
            let command = c
                .learned
                .get(&slot)
                .map_or(Command::Noop, |(_, cmd)| cmd.clone());
            self.propose_at(slot, command);
        }
    }

    /// `Nack`: a candidate or leader of that ballot steps down.
    fn on_nack(&mut self, ballot: Ballot) {
        if self.w.role != Role::Follower && self.w.ballot == ballot {
            self.step_down();
        }
    }

    // ----- Phase 2: replication ----------------------------------------------------------

    /// The leader writes `command` at `slot` at its ballot.
    fn propose_at(&mut self, slot: Slot, command: Command) {
        let lead = self.w.lead.as_mut().expect("only a leader proposes");
        let ballot = lead.ballot;
        lead.next_slot = lead.next_slot.max(slot + 1);
        self.w.put(slot, (ballot, command.clone()));
        self.writes.push(DurableWrite::Accepted {
            entry: Entry {
                slot,
                ballot,
                command,
            },
        });
    }

    /// `Accept`: accept every proposal (durable writes, answered once durable) or refuse.
    fn on_accept(&mut self, src: NodeId, ballot: Ballot, proposals: &[physalia_traces::Proposal]) {
        if self.refuse_lower(src, ballot) {
            return;
        }
        self.adopt(ballot);
        for p in proposals {
            if self.w.log.get(&p.slot) == Some(&(ballot, p.command.clone())) {
                continue;
            }
            self.w.put(p.slot, (ballot, p.command.clone()));
            self.writes.push(DurableWrite::Accepted {
                entry: Entry {
                    slot: p.slot,
                    ballot,
                    command: p.command.clone(),
                },
            });
        }
        self.expect = Some(Expect::Accepted {
            to: src,
            ballot,
            slots: proposals.iter().map(|p| p.slot).collect(),
            commit: self.w.commit,
        });
    }

    /// `Accepted` at the leader of that ballot: count the votes, then commit.
    fn on_accepted(&mut self, src: NodeId, ballot: Ballot, slots: &[Slot]) {
        if !self.facts.is_member(src) || src == self.n {
            return;
        }
        let Some(lead) = self.w.lead.as_mut().filter(|l| l.ballot == ballot) else {
            return;
        };
        for s in slots {
            lead.votes.entry(*s).or_default().insert(src);
        }
        self.advance_commit();
    }

    /// The leader commits the longest prefix of slots a quorum accepted at its ballot.
    fn advance_commit(&mut self) {
        let Some(lead) = self.w.lead.as_ref() else {
            return;
        };
        let mut commit = self.w.commit;
        while commit < lead.next_slot
            && self
                .w
                .log
                .get(&commit)
                .is_some_and(|(b, _)| *b == lead.ballot)
            && lead.votes.get(&commit).map_or(0, |v| v.len()) >= self.facts.quorum
        {
            commit += 1;
        }
        if let Some(lead) = self.w.lead.as_mut() {
            lead.votes.retain(|s, _| *s >= commit);
        }
        self.commit_to(commit);
    }

    // ----- Learning and applying ---------------------------------------------------------

    /// `Commit`: learn every slot below `up_to` whose entry carries exactly `ballot`.
    fn on_commit(&mut self, ballot: Ballot, up_to: Slot) {
        let mut commit = self.w.commit;
        while commit < up_to && self.w.log.get(&commit).is_some_and(|(b, _)| *b == ballot) {
            commit += 1;
        }
        self.commit_to(commit);
    }

    /// Advances the commit index and applies the new slots in slot order.
    fn commit_to(&mut self, commit: Slot) {
        if commit > self.w.commit && self.w.role == Role::Leader {
            self.may_propose = true; // the freed pipeline takes queued requests
        }
        while self.w.commit < commit {
            self.w.commit += 1;
        }
        while self.w.store.applied < self.w.commit {
            let slot = self.w.store.applied;
            let command = self.w.log.get(&slot).map(|(_, c)| c.clone());
            match command {
                Some(c) => {
                    if let Some(r) = self.w.store.apply(&c) {
                        self.applied.push(r);
                    }
                }
                None => self.w.store.applied += 1, // judged by `committed prefix`
            }
        }
    }

    // ----- Clients -----------------------------------------------------------------------

    fn on_request(
        &mut self,
        client: physalia_traces::ClientId,
        op: u64,
        txn: &physalia_traces::Txn,
    ) {
        self.w.requested.insert((client, op), txn.clone());
        if self.w.role == Role::Leader {
            self.may_propose = true;
        }
    }

    /// New client proposals the leader logged beyond what the rules determine: each must be
    /// a requested operation not in the log yet, at the next slot, inside the window α.
    fn accept_new_proposals(&mut self, logged: &[Entry]) {
        let predicted = accepted_entries(&self.writes);
        for (i, e) in logged.iter().enumerate() {
            if predicted.contains(e) {
                continue;
            }
            let field = format!("state.accepted[{i}]");
            let Some(lead) = self.w.lead.as_ref().filter(|_| self.may_propose) else {
                continue; // not a proposal: the comparison of writes reports it
            };
            let (ballot, next, commit) = (lead.ballot, lead.next_slot, self.w.commit);
            let Command::Op { client, seq, txn } = &e.command else {
                self.find(
                    field,
                    "a client operation (no-ops fill holes only at election)",
                    "noop",
                );
                continue;
            };
            let requested = self.w.requested.get(&(*client, *seq)) == Some(txn);
            let in_log = self.w.ops_in_log.contains_key(&(*client, *seq));
            if e.ballot != ballot || e.slot != next {
                self.find(
                    field,
                    format!("a proposal at the next slot {next} at ballot {ballot}"),
                    format!("slot {} at {}", e.slot, e.ballot),
                );
            } else if !requested {
                self.find(
                    field,
                    "an operation a client requested at this node",
                    format!("{client}#{seq}, never requested here"),
                );
            } else if in_log {
                self.find(
                    field,
                    "an operation not yet in the log",
                    format!("{client}#{seq}, proposed twice"),
                );
            } else if e.slot >= commit + self.facts.alpha {
                self.find(
                    field,
                    format!("a slot below commit + α = {}", commit + self.facts.alpha),
                    format!("slot {}", e.slot),
                );
            }
            self.propose_at(e.slot, e.command.clone());
        }
    }

    // ----- Persistence -------------------------------------------------------------------

    /// `Persisted { up_to }`: the batches up to it are durable (the caller writes them to
    /// storage); the node's own votes in them count now (its promise for its campaign, its
    /// acceptances as leader).
    fn on_persisted(&mut self, up_to: PersistId) -> Vec<(PersistId, Vec<DurableWrite>)> {
        let mut done = Vec::new();
        while self.w.pending.first().is_some_and(|(id, _)| *id <= up_to) {
            done.push(self.w.pending.remove(0));
        }
        for (_, writes) in &done {
            for wr in writes {
                match wr {
                    DurableWrite::Promised { ballot } => {
                        if let Some(c) = self.w.campaign.as_mut().filter(|c| c.ballot == *ballot) {
                            c.self_durable = true;
                        }
                    }
                    DurableWrite::Accepted { entry } => {
                        let n = self.n;
                        if let Some(l) = self.w.lead.as_mut().filter(|l| l.ballot == entry.ballot) {
                            l.votes.entry(entry.slot).or_default().insert(n);
                        }
                    }
                }
            }
        }
        self.try_win();
        self.advance_commit();
        done
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
            return Err(Refusal::Failed {
                findings: vec![Finding::new(
                    "node",
                    format!("a member of {:?}", facts.members),
                    n,
                )],
                violations: Vec::new(),
            });
        };
        let mut ctx = Ctx {
            facts,
            n,
            ev,
            pre: Pre {
                up: node.up,
                inc: node.inc,
                role: node.role,
                issued: node.issued,
                commit: node.commit,
            },
            w: std::mem::take(node),
            writes: Vec::new(),
            applied: Vec::new(),
            expect: None,
            may_propose: false,
            stepped_down: false,
            findings: Vec::new(),
            violations: Vec::new(),
        };
        let ghost = &mut self.ghost;
        match &ev.kind {
            Kind::Start { promised, log_len } => {
                if ctx.pre.up {
                    self.nodes.insert(n, ctx.w);
                    return Err(Refusal::Disabled(format!(
                        "{n} is running: a restart needs a crash first"
                    )));
                }
                if ctx.pre.inc.is_some_and(|i| ev.inc <= i) {
                    ctx.find(
                        "inc",
                        format!("an incarnation above {}", ctx.pre.inc.unwrap_or(0)),
                        ev.inc,
                    );
                }
                let storage = std::mem::take(&mut ctx.w.storage);
                ctx.w = NodeSpec {
                    up: true,
                    inc: Some(ev.inc),
                    promised: storage.promised,
                    ..NodeSpec::new()
                };
                if *promised != storage.promised {
                    ctx.find("kind.promised", storage.promised, promised);
                }
                if *log_len != storage.log.len() as u64 {
                    ctx.find("kind.log_len", storage.log.len(), log_len);
                }
                ctx.w.set_log(storage.log.clone());
                ctx.w.storage = storage;
            }
            kind => {
                if !ctx.pre.up {
                    self.nodes.insert(n, ctx.w);
                    return Err(Refusal::Disabled(format!("{n} is not running")));
                }
                if ctx.pre.inc != Some(ev.inc) {
                    ctx.find("inc", ctx.pre.inc.unwrap_or(0), ev.inc);
                }
                match kind {
                    Kind::Deliver { id, lc, msg } => {
                        if let Err(e) = deliver(&mut ctx, ghost, net, *id, *lc, msg) {
                            self.nodes.insert(n, ctx.w);
                            return Err(e);
                        }
                    }
                    Kind::Timeout { timer } => match timer {
                        TimeoutKind::Election => ctx.on_election_timeout(&ghost.campaigns),
                        TimeoutKind::Heartbeat | TimeoutKind::Retry => {}
                    },
                    Kind::Request { client, op, txn } => {
                        ghost.requested.insert((*client, *op));
                        ctx.on_request(*client, *op, txn);
                    }
                    Kind::LocalRead { .. } => {}
                    Kind::Persisted { up_to } => {
                        for (_, writes) in ctx.on_persisted(*up_to) {
                            properties::make_durable(
                                &mut ctx.w.storage,
                                ghost,
                                facts,
                                n,
                                &writes,
                                &mut ctx.violations,
                            );
                        }
                    }
                    Kind::Start { .. } => unreachable!("handled above"),
                }
            }
        }
        if ctx.w.role == Role::Candidate {
            if let Some(c) = &ctx.w.campaign {
                ghost.campaigns.insert(c.ballot);
            }
        }
        ctx.accept_new_proposals(&ev.state.accepted);
        compare_state(&mut ctx);
        compare_writes(&mut ctx);
        check_released(&mut ctx, net);
        let reports = check_sends(&mut ctx, net);
        check_client_events(&mut ctx);
        // The world moves on with what the node logged.
        if let Some(p) = &ev.persist {
            ctx.w.pending.push((p.id, p.writes.clone()));
            ctx.w.issued = p.id;
        }
        let mut violations = std::mem::take(&mut ctx.violations);
        properties::after_step(ghost, &ctx, &mut violations);
        let findings = std::mem::take(&mut ctx.findings);
        self.nodes.insert(n, ctx.w);
        if !findings.is_empty() || !violations.is_empty() {
            return Err(Refusal::Failed {
                findings,
                violations,
            });
        }
        Ok(StepInfo { reports })
    }
}

/// A delivered message: it must have been sent to this node and have a copy in flight.
fn deliver(
    ctx: &mut Ctx<'_>,
    ghost: &mut super::Ghost,
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
            format!("{:?} (as sent)", sent.msg),
            format!("{msg:?}"),
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
    if src == n || !ctx.facts.is_member(src) {
        return Ok(()); // ignored (fail closed)
    }
    match msg {
        Msg::Prepare { ballot, from } => ctx.on_prepare(src, *ballot, *from),
        Msg::Promise { ballot, accepted } => ctx.on_promise(src, *ballot, accepted),
        Msg::Nack { ballot, .. } => ctx.on_nack(*ballot),
        Msg::Accept { ballot, proposals } => ctx.on_accept(src, *ballot, proposals),
        Msg::Accepted { ballot, slots, .. } => ctx.on_accepted(src, *ballot, slots),
        Msg::Commit { ballot, up_to } => ctx.on_commit(*ballot, *up_to),
        Msg::Request { client, op, txn } => {
            ghost.requested.insert((*client, *op));
            ctx.on_request(*client, *op, txn);
        }
        Msg::Redirect { .. } | Msg::Reply { .. } => {}
    }
    Ok(())
}

/// A `persisted` step releases exactly the held messages of the batches it acknowledges
/// (up to the last batch issued); no other step releases anything.
fn check_released(ctx: &mut Ctx<'_>, net: &Network) {
    let due: Vec<MsgId> = match &ctx.ev.kind {
        Kind::Persisted { up_to } => {
            let acked = (*up_to).min(ctx.pre.issued);
            net.held
                .get(&(ctx.n, ctx.ev.inc))
                .map(|v| {
                    v.iter()
                        .filter(|(p, _)| *p <= acked)
                        .map(|(_, id)| *id)
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let mut logged = ctx.ev.released.clone();
    let mut want = due;
    logged.sort();
    want.sort();
    if logged != want {
        let show = |v: &[MsgId]| -> String {
            if v.is_empty() {
                "nothing".into()
            } else {
                v.iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        ctx.find(
            "released",
            format!(
                "the held messages of the acknowledged batches: {}",
                show(&want)
            ),
            show(&logged),
        );
    }
}

/// The logged state after the step against the predicted one, field by field.
fn compare_state(ctx: &mut Ctx<'_>) {
    let s = &ctx.ev.state;
    let mut f = Vec::new();
    if s.promised != ctx.w.promised {
        f.push(Finding::new("state.promised", ctx.w.promised, s.promised));
    }
    if s.role != ctx.w.role {
        f.push(Finding::new("state.role", ctx.w.role, s.role));
    }
    if s.role != Role::Follower && s.ballot != ctx.w.ballot {
        f.push(Finding::new("state.ballot", ctx.w.ballot, s.ballot));
    }
    if s.commit != ctx.w.commit {
        f.push(Finding::new("state.commit", ctx.w.commit, s.commit));
    }
    ctx.findings.extend(f);
}

/// The logged durable writes against the predicted ones (as multisets: a batch is atomic),
/// comparing whole values, transactions included.
fn compare_writes(ctx: &mut Ctx<'_>) {
    let logged: Vec<DurableWrite> = ctx
        .ev
        .persist
        .iter()
        .flat_map(|p| p.writes.clone())
        .collect();
    if !same_multiset(&ctx.writes, &logged) {
        let (allowed, got) = show_pair(&ctx.writes, &logged, fmt_write);
        ctx.find("persist.writes", allowed, got);
    }
    let predicted = accepted_entries(&ctx.writes);
    if !same_multiset(&predicted, &ctx.ev.state.accepted) {
        let (allowed, got) = show_pair(&predicted, &ctx.ev.state.accepted, fmt_entry);
        ctx.find("state.accepted", allowed, got);
    }
    if let Some(p) = &ctx.ev.persist {
        if p.id != ctx.pre.issued + 1 {
            ctx.find("persist.id", ctx.pre.issued + 1, p.id);
        }
    }
}

/// The log entries among durable writes, in order.
fn accepted_entries(writes: &[DurableWrite]) -> Vec<Entry> {
    writes
        .iter()
        .filter_map(|w| match w {
            DurableWrite::Accepted { entry } => Some(entry.clone()),
            DurableWrite::Promised { .. } => None,
        })
        .collect()
}

/// Whether two lists hold the same values, in any order.
fn same_multiset<T: serde::Serialize + PartialEq>(a: &[T], b: &[T]) -> bool {
    if a == b {
        return true; // the usual case, without serialising anything
    }
    if a.len() != b.len() {
        return false;
    }
    let key = |v: &T| serde_json::to_string(v).unwrap_or_default();
    let mut a: Vec<String> = a.iter().map(key).collect();
    let mut b: Vec<String> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

/// Both lists, briefly; in full (JSON) when the brief forms do not tell them apart.
fn show_pair<T: serde::Serialize + PartialEq>(
    a: &[T],
    b: &[T],
    brief: fn(&T) -> String,
) -> (String, String) {
    let list = |v: &[T], f: &dyn Fn(&T) -> String| -> String {
        if v.is_empty() {
            "nothing".into()
        } else {
            format!("[{}]", v.iter().map(f).collect::<Vec<_>>().join(", "))
        }
    };
    let (x, y) = (list(a, &brief), list(b, &brief));
    if x != y {
        return (x, y);
    }
    let full = |v: &T| serde_json::to_string(v).unwrap_or_default();
    (list(a, &full), list(b, &full))
}

/// `slot:command@ballot`.
pub(crate) fn fmt_entry(e: &Entry) -> String {
    format!("{}:{}@{}", e.slot, fmt_command(&e.command), e.ballot)
}

/// `noop` or `c1#4`.
pub(crate) fn fmt_command(c: &Command) -> String {
    match c {
        Command::Noop => "noop".into(),
        Command::Op { client, seq, .. } => format!("{client}#{seq}"),
    }
}

fn fmt_write(w: &DurableWrite) -> String {
    match w {
        DurableWrite::Promised { ballot } => format!("promised {ballot}"),
        DurableWrite::Accepted { entry } => format!("accepted {}", fmt_entry(entry)),
    }
}

impl World {
    /// After a failed step, makes node `ev.node` what it logged (promise, role, ballot, log
    /// entries, commit index), so that replay can go on and the safety properties can judge
    /// the consequences of the divergence. Internal state the trace does not show (a
    /// campaign's promises, a leader's vote tally) starts afresh.
    pub fn resync(&mut self, ev: &TraceEvent) {
        let Some(w) = self.nodes.get_mut(&ev.node) else {
            return;
        };
        let s = &ev.state;
        w.up = true;
        w.inc = Some(ev.inc);
        w.promised = s.promised;
        for e in &s.accepted {
            w.put(e.slot, (e.ballot, e.command.clone()));
        }
        match s.role {
            Role::Leader => {
                if w.lead.as_ref().is_none_or(|l| l.ballot != s.ballot) {
                    let next = w
                        .log
                        .iter()
                        .rev()
                        .find(|(_, (b, _))| *b == s.ballot)
                        .map_or(s.commit, |(slot, _)| slot + 1);
                    w.lead = Some(Lead {
                        ballot: s.ballot,
                        start: s.commit.min(w.commit),
                        next_slot: next.max(s.commit),
                        votes: Default::default(),
                    });
                }
                w.campaign = None;
            }
            Role::Candidate => {
                if w.campaign.as_ref().is_none_or(|c| c.ballot != s.ballot) {
                    let from = w.commit;
                    w.campaign = Some(Campaign {
                        ballot: s.ballot,
                        from,
                        promised_by: BTreeSet::new(),
                        self_durable: false,
                        learned: w.log.range(from..).map(|(k, v)| (*k, v.clone())).collect(),
                    });
                }
                w.lead = None;
            }
            Role::Follower => {
                w.lead = None;
                w.campaign = None;
            }
        }
        w.role = s.role;
        w.ballot = s.ballot;
        w.commit = s.commit;
        while w.store.applied < w.commit {
            let slot = w.store.applied;
            match w.log.get(&slot).map(|(_, c)| c.clone()) {
                Some(c) => {
                    w.store.apply(&c);
                }
                None => w.store.applied += 1,
            }
        }
    }
}
