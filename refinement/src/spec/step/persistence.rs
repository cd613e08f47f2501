//! Persistence: `Persisted { up_to }` acknowledges batches; the node's own votes count.

use physalia_traces::{DurableWrite, PersistId};

use super::Ctx;

impl Ctx<'_> {
    /// `Persisted { up_to }`: the batches up to it are durable (the caller writes them to
    /// storage); the node's own votes in them count now (its promise for its own candidacy, its
    /// acceptances as leader).
    pub(super) fn on_persisted(&mut self, up_to: PersistId) -> Vec<(PersistId, Vec<DurableWrite>)> {
        let mut done = Vec::new();
        while self.w.pending.first().is_some_and(|(id, _)| *id <= up_to) {
            done.push(self.w.pending.remove(0));
        }
        for (_, writes) in &done {
            for wr in writes {
                match wr {
                    DurableWrite::Promised { ballot } => {
                        if let Some(c) = self.w.candidate.as_mut().filter(|c| c.ballot == *ballot) {
                            c.self_durable = true;
                        }
                    }
                    DurableWrite::Accepted { entry } => {
                        let n = self.n;
                        if let Some(l) = self.w.lead.as_mut().filter(|l| l.ballot == entry.ballot) {
                            l.votes.entry(entry.slot).or_default().insert(n);
                        }
                    }
                    DurableWrite::Snapshot { .. } => {}
                }
            }
        }
        self.try_win();
        self.advance_commit();
        done
    }
}
