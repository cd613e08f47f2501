//! Which messages a step may produce (its client events: [`super::client_events`]). Every message the node logged as
//! sent must be justified by a rule; the answer a delivered `Prepare` or `Accept` requires
//! must be among them; a message reporting durable state must be held until the write it
//! reports is durable.

use physalia_traces::{
    Ballot, DurableWrite, Endpoint, Entry, Input, Kind, Msg, MsgId, NodeId, PersistId, Role, Slot,
    TimeoutKind,
};

use super::Ctx;
use crate::spec::state::{Network, Report};

/// The answer a delivered message requires.
#[derive(Clone, Debug)]
pub(super) enum Expect {
    /// A refusal of a lower ballot.
    Nack {
        to: NodeId,
        ballot: Ballot,
        promised: Ballot,
    },
    /// Phase 1b.
    Promise {
        to: NodeId,
        ballot: Ballot,
        accepted: Vec<Entry>,
    },
    /// Phase 2b.
    Accepted {
        to: NodeId,
        ballot: Ballot,
        slots: Vec<Slot>,
        commit: Slot,
    },
    /// The answer to a `Prepare` from below the node's snapshot.
    Snapshot {
        to: NodeId,
        ballot: Ballot,
        image: physalia_traces::Image,
    },
}

impl Expect {
    fn to(&self) -> NodeId {
        match self {
            Expect::Nack { to, .. }
            | Expect::Promise { to, .. }
            | Expect::Accepted { to, .. }
            | Expect::Snapshot { to, .. } => *to,
        }
    }

    fn msg(&self) -> Msg {
        match self.clone() {
            Expect::Nack {
                ballot, promised, ..
            } => Msg::Nack { ballot, promised },
            Expect::Promise {
                ballot, accepted, ..
            } => Msg::Promise { ballot, accepted },
            Expect::Accepted {
                ballot,
                slots,
                commit,
                ..
            } => Msg::Accepted {
                ballot,
                slots,
                commit,
            },
            Expect::Snapshot { ballot, image, .. } => Msg::Snapshot { ballot, image },
        }
    }
}

/// Checks every logged send; returns what each `Accepted` reports, for the ghost.
pub(super) fn check_sends(ctx: &mut Ctx<'_>, _net: &Network) -> Vec<(MsgId, Vec<Report>)> {
    let mut reports = Vec::new();
    let mut answered = false;
    let ev = ctx.ev;
    for (i, s) in ev.sent.iter().enumerate() {
        let field = format!("sent[{i}]");
        if s.id.node != ctx.n || Some(s.id.inc) != ctx.w.inc {
            ctx.find(
                format!("{field}.id"),
                format!("an id of {} in this incarnation", ctx.n),
                s.id,
            );
        }
        match (&s.to, &s.msg) {
            (Endpoint::Node(p), _) if *p == ctx.n || !ctx.facts.nodes.contains(p) => {
                ctx.find(format!("{field}.to"), "another node of the cell", p);
            }
            (Endpoint::Node(p), msg) if is_expected_answer(ctx, *p, msg) => {
                if let Some(r) = check_answer(ctx, &field, s, &mut answered) {
                    reports.push((s.id, r));
                }
            }
            (Endpoint::Node(p), Msg::Accepted { .. }) => check_catchup_request(ctx, &field, *p, s),
            (Endpoint::Node(p), Msg::Prepare { ballot, from }) => {
                check_prepare(ctx, &field, *p, (*ballot, *from), s)
            }
            (Endpoint::Node(_), Msg::Accept { ballot, proposals }) => {
                check_accept(ctx, &field, *ballot, proposals);
            }
            (Endpoint::Node(_), Msg::Commit { ballot, up_to }) => {
                check_commit(ctx, &field, *ballot, *up_to, s)
            }
            (Endpoint::Node(p), Msg::Snapshot { ballot, image }) => {
                super::snapshot::check_snapshot_send(ctx, &field, *p, *ballot, image)
            }
            (Endpoint::Client(c), Msg::Redirect { op, leader }) => {
                check_redirect(ctx, &field, *c, (*op, *leader), s)
            }
            (Endpoint::Client(c), Msg::Reply { op, result }) => {
                check_reply(ctx, &field, *c, *op, result, s)
            }
            (to, msg) => {
                ctx.find(
                    format!("{field}.msg"),
                    "a protocol message a node sends to that endpoint",
                    format!("{} to {to}", msg.name()),
                );
            }
        }
    }
    if let Some(e) = ctx.expect.clone() {
        if !answered {
            ctx.find("sent", format!("{} to {}", e.msg(), e.to()), "no answer");
        }
    }
    reports
}

/// Whether `msg` to `to` is of the kind the delivered message requires as its answer.
fn is_expected_answer(ctx: &Ctx<'_>, to: NodeId, msg: &Msg) -> bool {
    matches!(
        msg,
        Msg::Promise { .. } | Msg::Nack { .. } | Msg::Accepted { .. } | Msg::Snapshot { .. }
    ) && ctx
        .expect
        .as_ref()
        .is_some_and(|e| e.to() == to && e.msg().name() == msg.name())
}

/// The answer to a delivered `Prepare` or `Accept` (`Promise`, `Nack`, `Accepted`): exactly
/// the required one, once, held until the state it reports is durable. Returns what an
/// `Accepted` reports.
fn check_answer(
    ctx: &mut Ctx<'_>,
    field: &str,
    s: &physalia_traces::Sent,
    answered: &mut bool,
) -> Option<Vec<Report>> {
    let msg = &s.msg;
    let want = ctx.expect.as_ref().map(Expect::msg)?;
    if &want != msg {
        ctx.find(format!("{field}.msg"), &want, msg);
    } else if *answered {
        ctx.find(
            format!("{field}.msg"),
            "one answer to the delivered message",
            "a second one",
        );
    }
    *answered = true;
    durable_first(ctx, field, s.after_persist, msg);
    let Msg::Accepted { ballot, slots, .. } = msg else {
        return None;
    };
    Some(
        slots
            .iter()
            .filter_map(|sl| {
                ctx.w
                    .log
                    .get(sl)
                    .map(|(b, c)| (*sl, *b, c.clone()))
                    .filter(|(_, b, _)| b == ballot)
            })
            .collect(),
    )
}

/// An `Accepted` that answers no `Accept`: a follower's catch-up request after a `Commit`
/// it could not reach (no slots, carrying its commit index).
fn check_catchup_request(ctx: &mut Ctx<'_>, field: &str, to: NodeId, s: &physalia_traces::Sent) {
    let Msg::Accepted {
        ballot,
        slots,
        commit,
    } = &s.msg
    else {
        return;
    };
    let after_commit = matches!(&ctx.ev.kind, Kind::Input(Input::Deliver { msg: Msg::Commit { ballot: b, up_to }, id, .. })
        if id.node == to && b == ballot && ctx.w.commit < *up_to);
    // After a leader's snapshot, installed or not: the commit index, so that it ships on.
    let after_snapshot = matches!(&ctx.ev.kind, Kind::Input(Input::Deliver { msg: Msg::Snapshot { ballot: b, .. }, id, .. })
        if id.node == to && b == ballot && b.node == to);
    let ok = slots.is_empty()
        && *commit == ctx.w.commit
        && *ballot >= ctx.w.promised
        && ((after_commit && ctx.w.role == Role::Follower) || after_snapshot);
    if !ok {
        ctx.find(
            format!("{field}.msg"),
            "an Accepted only in answer to an Accept, or (without slots, carrying the commit \
             index) to a Commit of a current leader that this node cannot reach or to a \
             snapshot of a current leader",
            &s.msg,
        );
    }
}

/// A `Prepare`: a candidate's, for its ballot and `from`, on an election or prepare
/// timeout, to a member of its window's configurations; or a leader's phase 1 across a
/// change, to a member of the configuration of an uncovered slot of its window.
fn check_prepare(
    ctx: &mut Ctx<'_>,
    field: &str,
    to: NodeId,
    (ballot, from): (Ballot, Slot),
    s: &physalia_traces::Sent,
) {
    if ctx.w.role == Role::Leader {
        if !ctx.leader_prepare_ok(to, ballot, from) {
            ctx.find(
                format!("{field}.msg"),
                "a leader's Prepare only for phase 1 across a change: its ballot, from a slot of \
                 its window whose jury has no promised majority, to a member of that jury",
                format!("{} to {to}", s.msg),
            );
        }
        return;
    }
    if !ctx.window_members(from).contains(&to) {
        let allowed = format!(
            "a Prepare to a member of the window's juries {}",
            crate::spec::jury::show(ctx.window_members(from))
        );
        ctx.find(format!("{field}.to"), allowed, to);
    }
    let candidate = ctx.w.candidate.as_ref().filter(|c| c.ballot == ballot);
    let timer = matches!(
        ctx.ev.kind,
        Kind::Input(Input::Timeout {
            timer: TimeoutKind::Election | TimeoutKind::Prepare
        })
    );
    if candidate.is_none_or(|c| c.from != from) || !timer {
        let allowed = match &ctx.w.candidate {
            Some(c) => format!(
                "Prepare b={} from={} on an election or prepare timeout",
                c.ballot, c.from
            ),
            None => "no Prepare: the node is not a candidate".into(),
        };
        ctx.find(format!("{field}.msg"), allowed, &s.msg);
    }
}

/// A `Commit`: only from the leader of its ballot, up to its commit index, in a step that
/// tells the commit index: its heartbeat, the step its commit index advanced in, or the step
/// it was elected in.
fn check_commit(
    ctx: &mut Ctx<'_>,
    field: &str,
    ballot: Ballot,
    up_to: Slot,
    s: &physalia_traces::Sent,
) {
    // A leader that left the jury in this step tells the others the commit index it reached.
    let leading = ctx.w.role == Role::Leader || (ctx.stepped_down && ctx.pre.role == Role::Leader);
    let ok = leading && ctx.w.ballot == ballot && up_to <= ctx.w.commit;
    if !ok {
        ctx.find(
            format!("{field}.msg"),
            format!(
                "a Commit only from the leader of {ballot}, up to its commit index {}",
                ctx.w.commit
            ),
            format!("{} (role {}, ballot {})", s.msg, ctx.w.role, ctx.w.ballot),
        );
        return;
    }
    let heartbeat = heartbeat(ctx);
    let advanced = ctx.w.commit > ctx.pre.commit;
    let elected = ctx.pre.role != Role::Leader && ctx.w.role == Role::Leader;
    if !(heartbeat || advanced || elected) {
        ctx.find(
            format!("{field}.msg"),
            "a Commit only on the leader's heartbeat timeout, in the step its commit index \
             advances, or in the step it is elected",
            format!(
                "{} in a step `{}` that does none of these",
                s.msg, ctx.ev.kind
            ),
        );
    }
}

/// Whether the step is a heartbeat timeout at a node that led before it.
fn heartbeat(ctx: &Ctx<'_>) -> bool {
    ctx.pre.role == Role::Leader
        && matches!(
            ctx.ev.kind,
            Kind::Input(Input::Timeout {
                timer: TimeoutKind::Heartbeat
            })
        )
}

/// A `Redirect`: from a non-leader asked by that client, or from a leader stepping down;
/// its `leader` hint as `docs/protocol.md` defines it (never the node itself).
fn check_redirect(
    ctx: &mut Ctx<'_>,
    field: &str,
    client: physalia_traces::ClientId,
    (op, leader): (u64, Option<NodeId>),
    s: &physalia_traces::Sent,
) {
    let asked = requested(ctx.ev, client) == Some(op) && ctx.pre.role != Role::Leader;
    if !asked && !ctx.stepped_down {
        ctx.find(
            format!("{field}.msg"),
            "a Redirect only from a non-leader asked by that client, or from a leader stepping \
             down",
            &s.msg,
        );
        return;
    }
    if !asked && !ctx.redirectable.contains(&(client, op)) {
        // Stepping down redirects the queued requests: each reached this node.
        ctx.find(
            format!("{field}.msg"),
            format!("a Redirect of a request this node took in (its queue), not of {client}#{op}"),
            &s.msg,
        );
        return;
    }
    let show = |n: Option<NodeId>| n.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let (latest, _) = ctx.w.store.juries.latest();
    let promised = (!ctx.w.promised.is_zero()).then_some(ctx.w.promised.node);
    let hint = promised.filter(|p| *p != ctx.n);
    let (ok, allowed) = if asked && latest.contains(&ctx.n) && ctx.w.since.is_some() {
        // A member: the node of its promise.
        (
            leader == hint,
            format!("the node of its promise ({})", show(hint)),
        )
    } else if asked {
        // Removed, or a learner not yet added: a forwarding pointer into the latest jury.
        let others: Vec<NodeId> = latest.iter().copied().filter(|m| *m != ctx.n).collect();
        let ok = match leader {
            Some(l) => others.contains(&l),
            None => others.is_empty(),
        };
        (
            ok,
            format!(
                "a member of the latest jury {} other than {} (a forwarding pointer)",
                crate::spec::jury::show(others.iter().copied()),
                ctx.n
            ),
        )
    } else {
        // Stepping down: the node of the higher ballot that deposed it, if known.
        let mut known: Vec<NodeId> = promised.into_iter().collect();
        if let Kind::Input(Input::Deliver { msg, .. }) = &ctx.ev.kind {
            match msg {
                Msg::Nack { promised: p, .. } => known.push(p.node),
                Msg::Prepare { ballot: b, .. }
                | Msg::Accept { ballot: b, .. }
                | Msg::Commit { ballot: b, .. }
                | Msg::Snapshot { ballot: b, .. } => known.push(b.node),
                _ => {}
            }
        }
        known.retain(|k| *k != ctx.n);
        let ok = leader.is_none_or(|l| known.contains(&l));
        (
            ok,
            format!(
                "none, or the node of a higher ballot it knows ({})",
                crate::spec::jury::show(known.iter().copied())
            ),
        )
    };
    if !ok {
        ctx.find(format!("{field}.msg.leader"), allowed, show(leader));
    }
}

/// A `Reply`: only from the leader, with the result applying the committed log gives (or a
/// refusal of the request of this step).
fn check_reply(
    ctx: &mut Ctx<'_>,
    field: &str,
    c: physalia_traces::ClientId,
    op: u64,
    result: &physalia_traces::TxnResult,
    s: &physalia_traces::Sent,
) {
    if ctx.pre.role != Role::Leader && ctx.w.role != Role::Leader {
        ctx.find(
            format!("{field}.msg"),
            "a Reply only from the leader",
            format!("{} from a {}", s.msg, ctx.w.role),
        );
        return;
    }
    let ok = if result.never_applied() {
        requested(ctx.ev, c) == Some(op) && ctx.pre.role == Role::Leader
    } else {
        ctx.applied
            .iter()
            .any(|(cl, o, r)| *cl == c && *o == op && r == result)
            || (requested(ctx.ev, c) == Some(op)
                && ctx.w.store.sessions.get(&c) == Some(&(op, result.clone())))
    };
    if !ok {
        let allowed = match ctx.applied.iter().find(|(cl, o, _)| *cl == c && *o == op) {
            Some((_, _, r)) => format!("Reply op={op} {r}"),
            None => format!(
                "no Reply for {c}#{op}: it is not applied at {} (a reply follows the commit and \
                 apply of the operation)",
                ctx.n
            ),
        };
        ctx.find(format!("{field}.msg"), allowed, &s.msg);
    }
}

/// The client named by the step's request, with its operation.
fn requested(ev: &physalia_traces::TraceEvent, client: physalia_traces::ClientId) -> Option<u64> {
    match &ev.kind {
        Kind::Input(Input::Request { client: c, op, .. }) if *c == client => Some(*op),
        Kind::Input(Input::Deliver {
            msg: Msg::Request { client: c, op, .. },
            ..
        }) if *c == client => Some(*op),
        _ => None,
    }
}

/// An `Accept` from the leader: each proposal is what its own log holds at that slot, at
/// its ballot from its election on, and below its election only a committed slot.
fn check_accept(
    ctx: &mut Ctx<'_>,
    field: &str,
    ballot: Ballot,
    proposals: &[physalia_traces::Proposal],
) {
    let Some((start, next_slot)) = ctx
        .w
        .lead
        .as_ref()
        .filter(|l| l.ballot == ballot)
        .map(|l| (l.start, l.next_slot))
    else {
        ctx.find(
            format!("{field}.msg"),
            format!("an Accept only from the leader of {ballot}"),
            format!(
                "Accept at {ballot} from a {} at {}",
                ctx.w.role, ctx.w.ballot
            ),
        );
        return;
    };
    if proposals.is_empty() {
        ctx.find(
            format!("{field}.msg.proposals"),
            "at least one proposal",
            "none",
        );
    }
    // A slot proposed in an earlier step is shipped again only by the heartbeat (catch-up).
    // (Below its election's start a slot is committed and was proposed before, even in
    // the step the node is elected.)
    let earlier = |slot: Slot| {
        slot < start
            || ctx
                .pre
                .lead
                .is_some_and(|(b, next)| b == ballot && slot < next)
    };
    if let Some(p) = proposals.iter().find(|p| earlier(p.slot)) {
        if !heartbeat(ctx) {
            ctx.find(
                format!("{field}.msg"),
                "a re-shipment of slots proposed in an earlier step only on the leader's \
                 heartbeat timeout (catch-up)",
                format!(
                    "Accept of slot {} (proposed before) in a step `{}`",
                    p.slot, ctx.ev.kind
                ),
            );
        }
    }
    let mut wrong = 0;
    for (j, p) in proposals.iter().enumerate() {
        let mine = ctx.w.log.get(&p.slot).cloned();
        let ok = p.slot < next_slot
            && mine.as_ref().is_some_and(|(b, c)| {
                c == &p.command
                    && (if p.slot >= start {
                        *b == ballot
                    } else {
                        p.slot < ctx.w.commit
                    })
            });
        if !ok {
            wrong += 1;
            if wrong > 3 {
                continue;
            }
            let allowed = match mine {
                Some((b, c)) => Entry {
                    slot: p.slot,
                    ballot: b,
                    command: c,
                }
                .to_string(),
                None => format!(
                    "no proposal at slot {}: the leader's log has nothing there",
                    p.slot
                ),
            };
            ctx.find(
                format!("{field}.msg.proposals[{j}]"),
                format!("the leader's own entry ({allowed})"),
                format!("slot {}: {}", p.slot, p.command),
            );
        }
    }
    if wrong > 3 {
        ctx.find(
            format!("{field}.msg.proposals"),
            "each proposal the leader's own entry",
            format!("{} more proposals differ", wrong - 3),
        );
    }
}

/// A message that reports durable state (`Promise`, `Accepted` with slots) must be held
/// until the batch that makes that state durable is acknowledged.
fn durable_first(ctx: &mut Ctx<'_>, field: &str, after: Option<PersistId>, msg: &Msg) {
    let mut batches: Vec<(PersistId, &[physalia_traces::DurableWrite])> = ctx
        .w
        .pending
        .iter()
        .map(|(id, w)| (*id, w.as_slice()))
        .collect();
    if let Some(p) = &ctx.ev.persist {
        batches.push((p.id, p.writes.as_slice()));
    }
    // The first batch from which the promise is durable, and per reported slot the last
    // batch that writes it (`Some(0)`: durable already; `None`: never written as reported).
    let promise_need = |ballot: Ballot| -> Option<PersistId> {
        if ctx.w.storage.promised >= ballot {
            return Some(0);
        }
        batches.iter().find_map(|(id, ws)| {
            ws.iter()
                .any(|w| matches!(w, DurableWrite::Promised { ballot: b } if *b >= ballot))
                .then_some(*id)
        })
    };
    let slot_need = |slot: Slot, ballot: Ballot| -> Option<PersistId> {
        let last = batches.iter().rev().find_map(|(id, ws)| {
            ws.iter().rev().find_map(|w| match w {
                DurableWrite::Accepted { entry } if entry.slot == slot => Some((*id, entry.ballot)),
                _ => None,
            })
        });
        if slot < ctx.w.storage.base() {
            return Some(0); // chosen and folded into the durable snapshot
        }
        if slot < ctx.w.base {
            // Folded into a snapshot not durable yet: the vote waits for it.
            return batches.iter().find_map(|(id, ws)| {
                ws.iter()
                    .any(|w| matches!(w, DurableWrite::Snapshot { image } if image.upto > slot))
                    .then_some(*id)
            });
        }
        match last {
            Some((id, b)) => (b == ballot).then_some(id),
            None => (ctx.w.storage.log.get(&slot).map(|(b, _)| *b) == Some(ballot)).then_some(0),
        }
    };
    let need = match msg {
        Msg::Promise { ballot, .. } => promise_need(*ballot),
        Msg::Accepted { ballot, slots, .. } => {
            let mut need = promise_need(*ballot);
            for s in slots {
                need = match (need, slot_need(*s, *ballot)) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            need
        }
        _ => Some(0),
    };
    match (need, after) {
        (Some(0), _) => {}
        (Some(need), Some(p)) if p >= need => {}
        (Some(need), _) => ctx.find(
            format!("{field}.after_persist"),
            format!("held until batch {need} is durable (the state it reports)"),
            match after {
                Some(p) => format!("held only until batch {p}"),
                None => "sent at once, before the write is durable".into(),
            },
        ),
        (None, _) => ctx.find(
            format!("{field}.msg"),
            "a report of state this node has written",
            format!("{msg}, which no write of this node makes durable"),
        ),
    }
}
