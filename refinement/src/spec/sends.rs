//! Which messages and client events a step may produce. Every message the node logged as
//! sent must be justified by a rule; the answer a delivered `Prepare` or `Accept` requires
//! must be among them; a message reporting durable state must be held until the write it
//! reports is durable.

use physalia_traces::{
    Ballot, ClientEvent, ClientResult, DurableWrite, Endpoint, Entry, Kind, Msg, MsgId, NodeId,
    PersistId, Role, Slot, TimeoutKind,
};

use super::state::Network;
use super::step::{fmt_entry, Ctx};

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
}

impl Expect {
    fn to(&self) -> NodeId {
        match self {
            Expect::Nack { to, .. } | Expect::Promise { to, .. } | Expect::Accepted { to, .. } => {
                *to
            }
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
        }
    }
}

/// Checks every logged send; returns what each `Accepted` reports, for the ghost.
pub(super) fn check_sends(
    ctx: &mut Ctx<'_>,
    _net: &Network,
) -> Vec<(MsgId, Vec<super::state::Report>)> {
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
            (Endpoint::Node(p), _) if *p == ctx.n || !ctx.facts.is_member(*p) => {
                ctx.find(format!("{field}.to"), "another member of the jury", p);
            }
            (Endpoint::Node(p), msg @ (Msg::Promise { .. } | Msg::Nack { .. }))
            | (Endpoint::Node(p), msg @ Msg::Accepted { .. })
                if ctx
                    .expect
                    .as_ref()
                    .is_some_and(|e| e.to() == *p && e.msg().name() == msg.name()) =>
            {
                let expect = ctx.expect.clone().expect("checked");
                let want = expect.msg();
                if &want != msg {
                    ctx.find(format!("{field}.msg"), show(&want), show(msg));
                } else if answered {
                    ctx.find(
                        format!("{field}.msg"),
                        "one answer to the delivered message",
                        "a second one",
                    );
                }
                answered = true;
                durable_first(ctx, &field, s.after_persist, msg);
                if let Msg::Accepted { ballot, slots, .. } = msg {
                    let r = slots
                        .iter()
                        .filter_map(|sl| {
                            ctx.w
                                .log
                                .get(sl)
                                .map(|(b, c)| (*sl, *b, c.clone()))
                                .filter(|(_, b, _)| b == ballot)
                        })
                        .collect();
                    reports.push((s.id, r));
                }
            }
            (
                Endpoint::Node(p),
                Msg::Accepted {
                    ballot,
                    slots,
                    commit,
                },
            ) => {
                // A follower's catch-up request after a `Commit` it could not reach.
                let ok = matches!(&ev.kind, Kind::Deliver { msg: Msg::Commit { ballot: b, up_to }, id, .. }
                    if id.node == *p && b == ballot && ctx.w.commit < *up_to)
                    && slots.is_empty()
                    && *commit == ctx.w.commit
                    && *ballot >= ctx.w.promised
                    && ctx.w.role == Role::Follower;
                if !ok {
                    ctx.find(
                        format!("{field}.msg"),
                        "an Accepted only in answer to an Accept, or (without slots, carrying the \
                         commit index) to a Commit of a current leader that this node cannot reach",
                        show(&s.msg),
                    );
                }
            }
            (Endpoint::Node(_), Msg::Prepare { ballot, from }) => {
                let campaign = ctx.w.campaign.as_ref().filter(|c| c.ballot == *ballot);
                let timer = matches!(
                    ev.kind,
                    Kind::Timeout {
                        timer: TimeoutKind::Election | TimeoutKind::Retry
                    }
                );
                if campaign.is_none_or(|c| c.from != *from) || !timer {
                    let allowed = match &ctx.w.campaign {
                        Some(c) => format!(
                            "Prepare {{ {}, from {} }} on an election or retry timeout",
                            c.ballot, c.from
                        ),
                        None => "no Prepare: the node is not campaigning".into(),
                    };
                    ctx.find(format!("{field}.msg"), allowed, show(&s.msg));
                }
            }
            (Endpoint::Node(_), Msg::Accept { ballot, proposals }) => {
                check_accept(ctx, &field, *ballot, proposals);
            }
            (Endpoint::Node(_), Msg::Commit { ballot, up_to }) => {
                let ok =
                    ctx.w.role == Role::Leader && ctx.w.ballot == *ballot && *up_to <= ctx.w.commit;
                if !ok {
                    ctx.find(
                        format!("{field}.msg"),
                        format!(
                            "a Commit only from the leader of {ballot}, up to its commit index {}",
                            ctx.w.commit
                        ),
                        format!(
                            "{} (role {}, ballot {})",
                            show(&s.msg),
                            ctx.w.role,
                            ctx.w.ballot
                        ),
                    );
                }
            }
            (Endpoint::Client(c), Msg::Redirect { op, .. }) => {
                let asked = requested(ev, *c) == Some(*op) && ctx.pre.role != Role::Leader;
                if !asked && !ctx.stepped_down {
                    ctx.find(
                        format!("{field}.msg"),
                        "a Redirect only from a non-leader asked by that client, or from a leader \
                         stepping down",
                        show(&s.msg),
                    );
                }
            }
            (Endpoint::Client(_), Msg::Reply { .. })
                if ctx.pre.role != Role::Leader && ctx.w.role != Role::Leader =>
            {
                ctx.find(
                    format!("{field}.msg"),
                    "a Reply only from the leader",
                    format!("{} from a {}", show(&s.msg), ctx.w.role),
                );
            }
            (Endpoint::Client(c), Msg::Reply { op, result }) => {
                let ok = if result.never_applied() {
                    requested(ev, *c) == Some(*op) && ctx.pre.role == Role::Leader
                } else {
                    ctx.applied
                        .iter()
                        .any(|(cl, o, r)| cl == c && o == op && r == result)
                        || (requested(ev, *c) == Some(*op)
                            && ctx.w.store.sessions.get(c) == Some(&(*op, result.clone())))
                };
                if !ok {
                    let allowed = match ctx.applied.iter().find(|(cl, o, _)| cl == c && o == op) {
                        Some((_, _, r)) => format!("Reply {{ {c}#{op}: {} }}", crate::history::fmt_result(r)),
                        None => format!(
                            "no Reply for {c}#{op}: it is not applied at {} (a reply follows the commit and apply of the operation)",
                            ctx.n
                        ),
                    };
                    ctx.find(format!("{field}.msg"), allowed, show(&s.msg));
                }
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
            ctx.find(
                "sent",
                format!("{} to {}", show(&e.msg()), e.to()),
                "no answer",
            );
        }
    }
    reports
}

/// The client named by the step's request, with its operation.
fn requested(ev: &physalia_traces::TraceEvent, client: physalia_traces::ClientId) -> Option<u64> {
    match &ev.kind {
        Kind::Request { client: c, op, .. } if *c == client => Some(*op),
        Kind::Deliver {
            msg: Msg::Request { client: c, op, .. },
            ..
        } if *c == client => Some(*op),
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
                Some((b, c)) => format!(
                    "slot {}: {}",
                    p.slot,
                    fmt_entry(&Entry {
                        slot: p.slot,
                        ballot: b,
                        command: c
                    })
                ),
                None => format!(
                    "no proposal at slot {}: the leader's log has nothing there",
                    p.slot
                ),
            };
            ctx.find(
                format!("{field}.msg.proposals[{j}]"),
                format!("the leader's own entry ({allowed})"),
                format!("slot {}: {}", p.slot, super::step::fmt_command(&p.command)),
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
            format!("{}, which no write of this node makes durable", show(msg)),
        ),
    }
}

/// Client events: an invocation is a leader taking in the requested operation; a return
/// is the reply sent in the same step.
pub(super) fn check_client_events(ctx: &mut Ctx<'_>) {
    let ev = ctx.ev;
    for (i, c) in ev.client.iter().enumerate() {
        let field = format!("client[{i}]");
        match c {
            ClientEvent::Invoke { client, op, txn } => {
                let ok = ctx.pre.role == Role::Leader
                    && match &ev.kind {
                        Kind::Request {
                            client: c,
                            op: o,
                            txn: t,
                        } => c == client && o == op && t == txn,
                        Kind::Deliver {
                            msg:
                                Msg::Request {
                                    client: c,
                                    op: o,
                                    txn: t,
                                },
                            ..
                        } => c == client && o == op && t == txn,
                        _ => false,
                    };
                if !ok {
                    ctx.find(
                        field,
                        "an invocation only where a leader takes in the requested operation",
                        format!("invoke {client}#{op}"),
                    );
                }
            }
            ClientEvent::Return { client, op, result } => {
                let ClientResult::Known(r) = result else {
                    continue;
                };
                let replied = ev.sent.iter().any(|s| {
                    s.to == Endpoint::Client(*client)
                        && matches!(&s.msg, Msg::Reply { op: o, result: rr } if o == op && rr == r)
                });
                if !replied {
                    ctx.find(
                        field,
                        "a return only with the Reply sent in the same step",
                        format!("return {client}#{op}"),
                    );
                }
            }
        }
    }
}

fn show(m: &Msg) -> String {
    match m {
        Msg::Prepare { ballot, from } => format!("Prepare {{ {ballot}, from {from} }}"),
        Msg::Promise { ballot, accepted } => format!(
            "Promise {{ {ballot}, [{}] }}",
            accepted
                .iter()
                .map(fmt_entry)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Msg::Nack { ballot, promised } => format!("Nack {{ {ballot}, promised {promised} }}"),
        Msg::Accept { ballot, proposals } => format!(
            "Accept {{ {ballot}, [{}] }}",
            proposals
                .iter()
                .map(|p| format!("{}:{}", p.slot, super::step::fmt_command(&p.command)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Msg::Accepted {
            ballot,
            slots,
            commit,
        } => {
            format!("Accepted {{ {ballot}, slots {slots:?}, commit {commit} }}")
        }
        Msg::Commit { ballot, up_to } => format!("Commit {{ {ballot}, up_to {up_to} }}"),
        Msg::Request { client, op, .. } => format!("Request {{ {client}#{op} }}"),
        Msg::Redirect { op, leader } => match leader {
            Some(l) => format!("Redirect {{ #{op}, leader {l} }}"),
            None => format!("Redirect {{ #{op}, leader unknown }}"),
        },
        Msg::Reply { op, result } => {
            format!("Reply {{ #{op}, {} }}", crate::history::fmt_result(result))
        }
    }
}
