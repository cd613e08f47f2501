//! After a failed step: the node becomes what it logged, so that replay can go on and the
//! safety properties can judge what the divergence leads to.

use std::collections::BTreeSet;

use physalia_traces::{Role, TraceEvent};

use crate::spec::state::{Candidate, Lead};
use crate::spec::World;

impl World {
    /// After a failed step, makes node `ev.node` what it logged (promise, role, ballot, log
    /// entries, commit index), so that replay can go on and the safety properties can judge
    /// the consequences of the divergence. Internal state the trace does not show (a
    /// candidate's promises, a leader's vote tally) starts afresh.
    pub fn resync(&mut self, ev: &TraceEvent) {
        let Some(w) = self.nodes.get_mut(&ev.node) else {
            return;
        };
        let s = &ev.state;
        w.up = true;
        w.inc = Some(ev.inc);
        w.now = ev.now;
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
                        promised: Default::default(),
                        prepared: Default::default(),
                        learned: Default::default(),
                        end: s.commit,
                    });
                }
                w.candidate = None;
            }
            Role::Candidate => {
                if w.candidate.as_ref().is_none_or(|c| c.ballot != s.ballot) {
                    let from = w.commit;
                    w.candidate = Some(Candidate {
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
                w.candidate = None;
            }
        }
        w.role = s.role;
        w.ballot = s.ballot;
        w.commit = s.commit;
        // Over the entries the log holds (a hole is skipped): never slot by slot up to a
        // logged commit index, which trace input sets.
        while w.store.applied < w.commit {
            let next = w
                .log
                .range(w.store.applied..w.commit)
                .next()
                .map(|(s, (_, c))| (*s, c.clone()));
            match next {
                Some((slot, c)) => {
                    w.store.applied = slot;
                    w.store.apply(&c);
                }
                None => w.store.applied = w.commit,
            }
        }
    }
}
