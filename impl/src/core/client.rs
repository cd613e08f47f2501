//! Client handlers: linearizable operations through the log (with redirects, fail-closed
//! validation, exactly-once, the α window and a bounded queue) and local reads.

use physalia_traces::{ClientId, Key, Msg, OpSeq, Role, Slot, Txn, TxnResult};

use super::Cell;
use crate::kv::validate;

impl Cell {
    /// A client operation. Non-leaders redirect; the leader refuses what it does not
    /// understand, answers a repeat of an applied operation with its first result, and
    /// otherwise proposes it (or queues it behind a full pipeline, or sheds it).
    pub(super) fn on_request(&mut self, client: ClientId, op: OpSeq, txn: Txn) {
        if self.role != Role::Leader {
            let leader = self.redirect_hint();
            return self.reply(client, Msg::Redirect { op, leader });
        }
        if let Err(why) = validate(&txn, self.sm.limits()) {
            let result = TxnResult::Rejected {
                reason: why.to_string(),
            };
            return self.reply(client, Msg::Reply { op, result });
        }
        self.invoked(client, op, &txn);
        if let Some(result) = self.sm.result_of(client, op).cloned() {
            return self.reply(client, Msg::Reply { op, result });
        }
        if self.sm.seen(client, op) {
            return; // superseded by a later operation of the same client
        }
        #[cfg(feature = "bugs")]
        if self.bug(crate::bugs::Bug::StaleRead) {
            // The bug: a read-only transaction is answered from this leader's applied state,
            // without the log, so a deposed leader that has not heard of it yet reads stale.
            let mut copy = self.sm.clone();
            let applied = copy.apply(&physalia_traces::Command::Op {
                client,
                op,
                txn: txn.clone(),
            });
            let read_only = copy.entries().eq(self.sm.entries());
            if let (true, crate::kv::Applied::Result { result, .. }) = (read_only, applied) {
                return self.reply(client, Msg::Reply { op, result });
            }
        }
        if let Txn::Reconfig { change } = &txn {
            if let Some(reason) = self.refuse_change(change) {
                let result = TxnResult::Rejected { reason };
                return self.reply(client, Msg::Reply { op, result });
            }
        }
        let lead = self.lead.as_mut().expect("a leader has leadership state");
        let relearned = |(_, cmd): &(physalia_traces::Ballot, physalia_traces::Command)| matches!(cmd, physalia_traces::Command::Op { client: c, op: o, .. } if (*c, *o) == (client, op));
        let known = lead.pending.contains(&(client, op))
            || lead.queue.iter().any(|(c, o, _)| (*c, *o) == (client, op))
            || lead.phase1.learned.values().any(relearned);
        if known {
            return; // answered once committed and applied
        }
        if lead.queue.len() >= self.opts.max_queue {
            let result = TxnResult::Overloaded;
            return self.reply(client, Msg::Reply { op, result });
        }
        lead.queue.push_back((client, op, txn));
        self.fill_pipeline();
    }

    /// An eventually consistent read from the applied prefix (any role), refused if this
    /// node has applied less than the client's session has already seen.
    pub(super) fn on_local_read(&mut self, client: ClientId, keys: &[Key], min_applied: Slot) {
        let read = self.sm.read_local(keys, min_applied);
        self.reply_local(client, read);
    }
}
