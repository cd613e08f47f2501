//! Learning and applying: `Commit`, and the commit index advancing over the applied prefix.

use physalia_traces::{Ballot, Command, Role, Slot, Txn, TxnResult, NO_FLOOR_YET};

use super::Ctx;

impl Ctx<'_> {
    /// `Commit`: learn every slot below `up_to` whose entry carries exactly `ballot`.
    pub(super) fn on_commit(&mut self, ballot: Ballot, up_to: Slot) {
        let mut commit = self.w.commit;
        while commit < up_to && self.w.log.get(&commit).is_some_and(|(b, _)| *b == ballot) {
            commit += 1;
        }
        self.commit_to(commit);
    }

    /// Advances the commit index and applies the new slots in slot order.
    pub(super) fn commit_to(&mut self, commit: Slot) {
        if commit > self.w.commit && self.w.role == Role::Leader {
            self.may_propose = true; // the freed pipeline takes queued requests
        }
        self.w.commit = self.w.commit.max(commit);
        // Over the entries the log holds; a hole is skipped (judged by `committed prefix`).
        while self.w.store.applied < self.w.commit {
            let next = self
                .w
                .log
                .range(self.w.store.applied..self.w.commit)
                .next()
                .map(|(s, (_, c))| (*s, c.clone()));
            let Some((slot, c)) = next else {
                self.w.store.applied = self.w.commit;
                break;
            };
            self.w.store.applied = slot;
            if let Some(r) = self.w.store.apply(&c) {
                self.on_change_applied(&c, &r.2);
                self.applied.push(r);
            }
        }
        self.leave_if_removed();
        self.fill_reproposals();
    }

    /// A valid jury change that adds this node gives its copy its membership from the slot
    /// the change is in force.
    fn on_change_applied(&mut self, command: &Command, result: &TxnResult) {
        let (
            Command::Op {
                txn: Txn::Reconfig { change },
                ..
            },
            TxnResult::Reconfig {
                ok: true,
                jury,
                in_force,
                ..
            },
        ) = (command, result)
        else {
            return;
        };
        if change.leaving() == Some(self.n) && !jury.contains(&self.n) {
            self.w.floor = if self.w.floor == NO_FLOOR_YET {
                *in_force
            } else {
                self.w.floor.max(*in_force)
            };
        }
        // A re-created copy takes only a change in force at or after its floor for the one
        // adding it (the earlier ones were its node's earlier memberships: ABA).
        if change.joining() == Some(self.n)
            && jury.contains(&self.n)
            && self.w.floor != NO_FLOOR_YET
            && *in_force >= self.w.floor
        {
            self.w.since = Some(*in_force);
        }
    }
}
