//! The unlogged actions replay may insert (a crash), the network's record of each accepted
//! event, and the actions enabled at a node (for a failure's report).

use std::collections::BTreeMap;

use physalia_traces::{Input, Kind, NodeId, PersistId, Role, TraceEvent};

use crate::spec::{properties, CellFacts, Network, Refusal, SentMsg, StepInfo, Violation, World};

/// What [`enabled`] needs of a node: taken before each step, since a failed step leaves
/// the state half-changed.
#[derive(Clone, Copy, Debug)]
pub struct NodeSummary {
    /// Whether it runs.
    pub up: bool,
    /// Its role.
    pub role: Role,
    /// Its last unacknowledged batch.
    pub last_pending: Option<physalia_traces::PersistId>,
}

impl NodeSummary {
    pub(super) fn of(w: &World, n: NodeId) -> Option<NodeSummary> {
        w.nodes.get(&n).map(|node| NodeSummary {
            up: node.up,
            role: node.role,
            last_pending: node.pending.last().map(|(id, _)| *id),
        })
    }
}

/// Keeps the most informative refusal: a failed step over a disabled one.
pub(super) fn keep_worst(slot: &mut Option<Refusal>, r: Refusal) {
    match (&slot, &r) {
        (None, _) | (Some(Refusal::Disabled(_)), Refusal::Failed { .. }) => *slot = Some(r),
        _ => {}
    }
}

pub(super) fn push_unique(v: &mut Vec<World>, w: World) {
    if !v.contains(&w) {
        v.push(w);
    }
}

/// The unlogged crash of node `n` with the first `k` unacknowledged batches on disk.
pub(super) fn crash(
    w: &mut World,
    facts: &CellFacts,
    n: NodeId,
    k: usize,
    out: &mut Vec<Violation>,
) {
    let Some(node) = w.nodes.get_mut(&n) else {
        return;
    };
    let pending = std::mem::take(&mut node.pending);
    let since = node.since;
    for (_, writes) in pending.into_iter().take(k) {
        let who = (n, since);
        properties::make_durable(&mut node.storage, &mut w.ghost, facts, who, &writes, out);
    }
    let Some(node) = w.nodes.get_mut(&n) else {
        return;
    };
    node.up = false;
    node.role = Role::Follower;
    node.candidate = None;
    node.lead = None;
}

/// Records the event's sends and receive in the network.
pub(super) fn record(net: &mut Network, ev: &TraceEvent, info: StepInfo, issued: PersistId) {
    let reports: BTreeMap<_, _> = info.reports.into_iter().collect();
    for id in &ev.released {
        if let Some(m) = net.msgs.get_mut(id) {
            net.released.insert(*id);
            m.lc = ev.lc; // it leaves with the releasing step's clock
        }
        if let Some(list) = net.held.get_mut(&(ev.node, ev.inc)) {
            list.retain(|(_, m)| m != id);
        }
    }
    for s in &ev.sent {
        if let Some(p) = s.after_persist {
            net.held
                .entry((ev.node, ev.inc))
                .or_default()
                .push((p, s.id));
        }
        net.msgs.insert(
            s.id,
            SentMsg {
                from: ev.node,
                to: s.to,
                lc: ev.lc,
                after_persist: s.after_persist,
                msg: s.msg.clone(),
                copies: 1,
                reports: reports.get(&s.id).cloned().unwrap_or_default(),
            },
        );
    }
    match &ev.kind {
        Kind::Input(Input::Deliver { id, .. }) => {
            if let Some(m) = net.msgs.get_mut(id) {
                m.copies = m.copies.saturating_sub(1);
            }
        }
        Kind::Input(Input::Persisted { up_to }) => {
            // An acknowledgement beyond the last batch issued covers only what was issued.
            let e = net.persisted.entry((ev.node, ev.inc)).or_insert(0);
            *e = (*e).max((*up_to).min(issued));
        }
        _ => {}
    }
}

/// The specification actions enabled at node `n`.
pub fn enabled(node: Option<NodeSummary>, net: &Network, n: NodeId) -> Vec<String> {
    let Some(node) = node else {
        return vec![format!("none: {n} is not a member")];
    };
    if !node.up {
        return vec![format!("Restart({n}) (a `start` event)")];
    }
    let mut out = Vec::new();
    let mut inbox: Vec<String> = net
        .msgs
        .iter()
        .filter(|(_, m)| m.to == physalia_traces::Endpoint::Node(n) && m.copies > 0)
        .map(|(id, m)| format!("{} {id}", m.msg.name()))
        .collect();
    inbox.sort();
    let count = inbox.len();
    if count > 0 {
        inbox.truncate(6);
        out.push(format!(
            "Deliver one of {count} message(s) in flight to {n}: {}{}",
            inbox.join(", "),
            if count > 6 { ", …" } else { "" }
        ));
    }
    out.push(match node.role {
        Role::Leader => "Timeout(heartbeat)".into(),
        Role::Candidate => "Timeout(election), Timeout(retry)".into(),
        Role::Follower => "Timeout(election)".into(),
    });
    out.push("Request(any client operation), LocalRead".into());
    if let Some(last) = node.last_pending {
        out.push(format!("Persisted(up_to ≤ {last})"));
    }
    out.push(format!("Crash({n}) then Restart({n})"));
    out
}
