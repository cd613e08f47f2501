//! Clients: requests, and the proposals a leader may add for them.

use physalia_traces::{ClientId, Command, Entry, OpSeq, Role, Txn};

use super::compare::accepted_entries;
use super::Ctx;

impl Ctx<'_> {
    /// A client operation arrives: remembered; a leader may propose it in this step.
    pub(super) fn on_request(&mut self, client: ClientId, op: OpSeq, txn: &Txn) {
        self.w.requested.insert((client, op), txn.clone());
        if self.w.role == Role::Leader {
            self.may_propose = true;
            self.took_in = Some((client, op));
        }
    }

    /// New client proposals the leader logged beyond what the rules determine: each must be
    /// a requested operation not in the log yet, at the next slot, inside the window α.
    pub(super) fn accept_new_proposals(&mut self, logged: &[Entry]) {
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
            if e.slot < lead.end && e.slot == next && e.ballot == ballot {
                // A re-proposal the rules did not make here: its slot's jury has no promised
                // majority, or it lies outside the window.
                let learned = lead
                    .learned
                    .get(&e.slot)
                    .map_or(Command::Noop, |(_, c)| c.clone());
                let why = if learned == e.command {
                    format!(
                        "the re-proposal at slot {} only once a majority of its jury {} \
                         promised {ballot}, inside the window (commit {commit} + α)",
                        e.slot,
                        crate::spec::jury::show(self.w.store.juries.at(e.slot).iter().copied())
                    )
                } else {
                    format!(
                        "the value learned at election for slot {}: {learned}",
                        e.slot
                    )
                };
                self.find(field, why, &e.command);
                self.propose_at(e.slot, e.command.clone());
                continue;
            }
            let Command::Op { client, op, txn } = &e.command else {
                self.find(
                    field,
                    "a client operation (no-ops fill holes only at election)",
                    "noop",
                );
                continue;
            };
            let requested = self.w.requested.get(&(*client, *op)) == Some(txn);
            let in_log = self.w.ops_in_log.contains_key(&(*client, *op))
                || lead.learned.values().any(|(_, c)| {
                    matches!(c, Command::Op { client: c2, op: o2, .. } if (c2, o2) == (client, op))
                });
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
                    format!("{client}#{op}, never requested here"),
                );
            } else if in_log {
                self.find(
                    field,
                    "an operation not yet in the log",
                    format!("{client}#{op}, proposed twice"),
                );
            } else if e.slot >= commit + self.facts.alpha {
                self.find(
                    field,
                    format!("a slot below commit + α = {}", commit + self.facts.alpha),
                    format!("slot {}", e.slot),
                );
            } else if lead.end > e.slot {
                self.find(
                    field,
                    format!("the value learned at election for slot {} first", e.slot),
                    format!("{client}#{op} before the re-proposals"),
                );
            } else if !self.may_propose_at(e.slot) {
                self.find(
                    field,
                    format!(
                        "a proposal only where a majority of the slot's jury {} promised {ballot} \
                         and the leader is a member",
                        crate::spec::jury::show(self.w.store.juries.at(e.slot).iter().copied())
                    ),
                    format!("slot {}", e.slot),
                );
            } else if txn.is_reconfig() && self.change_before(e.slot) {
                self.find(
                    field,
                    "a jury change only at the commit index, once the previous one is in force (one change at a time)",
                    format!("{txn} at slot {} (commit {commit})", e.slot),
                );
            }
            self.propose_at(e.slot, e.command.clone());
        }
    }
}
