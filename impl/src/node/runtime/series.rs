//! The per-cell metrics, gathered from the replicas when a scrape asks for them.

use super::{Parked, Runtime};

impl Runtime {
    /// Publishes the per-cell metrics of at most
    /// [`MAX_CELL_SERIES`](crate::node::series::MAX_CELL_SERIES) hosted cells, the active
    /// (not parked) ones first, and how many were left out. Runs only when a scrape asked
    /// for it (one pass over the cells per scrape).
    pub(super) fn publish_cell_series(&self) {
        use crate::node::series::{CellGauge, MAX_CELL_SERIES};
        let hosted = || self.replicas.iter().filter(|r| !r.retired);
        let active = hosted().filter(|r| r.parked == Parked::No);
        let parked = hosted().filter(|r| r.parked != Parked::No);
        let mut shown: Vec<CellGauge> = active
            .chain(parked)
            .take(MAX_CELL_SERIES)
            .map(|r| CellGauge {
                cell: r.name.clone(),
                role: r.cell.role(),
                ballot_round: r.cell.promised().round,
                commit: r.cell.commit(),
                applied: r.cell.state_machine().applied(),
                leader_changes: r.leader_changes,
                elections: r.elections,
            })
            .collect();
        let omitted = (hosted().count() - shown.len()) as u64;
        shown.sort_by(|a, b| a.cell.cmp(&b.cell));
        self.metrics.cell_series.publish(shown, omitted);
    }
}
