//! The labelled metrics of a node, each with a bound on its label values: latency
//! histograms, one gauge per peer link, and per-cell series for at most
//! [`MAX_CELL_SERIES`] cells (a node may host 10⁶ cells; a series per cell would swamp any
//! monitoring system, so active cells come first, and how many were left out is said).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use physalia_traces::{NodeId, Role};

/// Per-cell series are exported for at most this many cells: the active (not parked)
/// cells first, then parked ones, in the node's order.
pub const MAX_CELL_SERIES: usize = 64;

/// Peer link gauges are kept for at most this many peers (a cluster's nodes are far
/// fewer; only authenticated links are counted).
pub const MAX_PEER_SERIES: usize = 1024;

/// Bucket bounds (µs) of the client-latency histogram.
const REQUEST_BOUNDS_US: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000,
    5_000_000,
];

/// Bucket bounds (µs) of the group-commit (fdatasync) latency histogram.
const FSYNC_BOUNDS_US: [u64; 13] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Client operation latency at the node.
#[derive(Debug)]
pub struct RequestLatency(pub Histogram);

impl Default for RequestLatency {
    fn default() -> Self {
        RequestLatency(Histogram::new(&REQUEST_BOUNDS_US))
    }
}

/// Latency of one WAL group commit (`fdatasync`), from its start to its return.
#[derive(Debug)]
pub struct FsyncLatency(pub Histogram);

impl Default for FsyncLatency {
    fn default() -> Self {
        FsyncLatency(Histogram::new(&FSYNC_BOUNDS_US))
    }
}

/// A latency histogram with fixed bucket bounds (seconds), updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds_us: &'static [u64],
    buckets: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram whose buckets end at `bounds_us` (microseconds, increasing) and `+Inf`.
    pub fn new(bounds_us: &'static [u64]) -> Histogram {
        Histogram {
            bounds_us,
            buckets: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation of `micros`.
    pub fn observe(&self, micros: u64) {
        let i = self
            .bounds_us
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(self.bounds_us.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The Prometheus text of the histogram `name` (in seconds).
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in self.bounds_us.iter().enumerate() {
            cumulative += get(&self.buckets[i]);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        cumulative += get(&self.buckets[self.bounds_us.len()]);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {}\n{name}_count {}",
            get(&self.sum_us) as f64 / 1e6,
            get(&self.count)
        );
    }
}

/// A per-cell series: name, type, help, and how to read it off a cell.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&CellGauge) -> u64,
);

/// One cell's figures as its replica on this node sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellGauge {
    /// The cell.
    pub cell: String,
    /// The replica's role.
    pub role: Role,
    /// The round of its promised ballot.
    pub ballot_round: u64,
    /// Its commit index.
    pub commit: u64,
    /// Slots applied to its state machine.
    pub applied: u64,
    /// Times the leader this replica follows (or is) changed.
    pub leader_changes: u64,
    /// Times this replica stood for election.
    pub elections: u64,
}

/// The per-cell series last published by the event loop, and whether a scrape asked for
/// fresh ones (the loop publishes only then, so an unscraped node pays nothing).
#[derive(Debug, Default)]
pub struct CellSeries {
    published: Mutex<(Vec<CellGauge>, u64)>,
    wanted: AtomicBool,
}

impl CellSeries {
    /// Whether a scrape asked for fresh series since the last publication (and clears it).
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    /// Publishes at most [`MAX_CELL_SERIES`] cells, and how many hosted cells were left
    /// out.
    pub fn publish(&self, mut cells: Vec<CellGauge>, omitted: u64) {
        let beyond = cells.len().saturating_sub(MAX_CELL_SERIES) as u64;
        cells.truncate(MAX_CELL_SERIES);
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = (cells, omitted + beyond);
    }

    /// Renders the last publication and asks the loop for a fresh one.
    pub fn render(&self, out: &mut String) {
        self.wanted.store(true, Ordering::Relaxed);
        let guard = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let (cells, omitted) = &*guard;
        let _ = writeln!(
            out,
            "# HELP physalia_cell_series_omitted hosted cells left out of the per-cell series (at most {MAX_CELL_SERIES} are exported)\n# TYPE physalia_cell_series_omitted gauge\nphysalia_cell_series_omitted {omitted}"
        );
        let series: [Series; 6] = [
            (
                "physalia_cell_ballot_round",
                "gauge",
                "round of the replica's promised ballot",
                |c| c.ballot_round,
            ),
            (
                "physalia_cell_commit_index",
                "gauge",
                "the replica's commit index",
                |c| c.commit,
            ),
            (
                "physalia_cell_applied_index",
                "gauge",
                "slots the replica applied",
                |c| c.applied,
            ),
            (
                "physalia_cell_leader_changes_total",
                "counter",
                "times the replica's leader changed",
                |c| c.leader_changes,
            ),
            (
                "physalia_cell_elections_total",
                "counter",
                "times the replica stood for election",
                |c| c.elections,
            ),
            (
                "physalia_cell_is_leader",
                "gauge",
                "1 if the replica is the cell's distinguished proposer",
                |c| u64::from(c.role == Role::Leader),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for c in cells {
                let _ = writeln!(out, "{name}{{cell=\"{}\"}} {}", escape(&c.cell), get(c));
            }
        }
        let _ = writeln!(
            out,
            "# HELP physalia_cell_role the replica's role (1 for the role it has)\n# TYPE physalia_cell_role gauge"
        );
        for c in cells {
            let role = match c.role {
                Role::Leader => "leader",
                Role::Candidate => "candidate",
                Role::Follower => "follower",
            };
            let _ = writeln!(
                out,
                "physalia_cell_role{{cell=\"{}\",role=\"{role}\"}} 1",
                escape(&c.cell)
            );
        }
    }
}

/// Open authenticated connections per peer node (normally one each way it is dialed).
#[derive(Debug, Default)]
pub struct PeerLinks(Mutex<BTreeMap<u32, i64>>);

/// Counts one open link to a peer until dropped.
#[derive(Debug)]
pub struct LinkGuard {
    links: Arc<super::metrics::Metrics>,
    peer: u32,
    counted: bool,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if self.counted {
            self.links.peer_links.add(self.peer, -1);
        }
    }
}

impl PeerLinks {
    fn add(&self, peer: u32, delta: i64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !m.contains_key(&peer) && m.len() >= MAX_PEER_SERIES {
            return false;
        }
        let n = m.entry(peer).or_insert(0);
        *n = (*n + delta).max(0);
        true
    }

    /// Records that a link to `peer` is open; it counts until the guard is dropped.
    pub fn open(metrics: &Arc<super::metrics::Metrics>, peer: NodeId) -> LinkGuard {
        let counted = metrics.peer_links.add(peer.0, 1);
        LinkGuard {
            links: Arc::clone(metrics),
            peer: peer.0,
            counted,
        }
    }

    /// Marks `peers` as known (a gauge of 0 until a link opens), so that a peer that never
    /// connected shows as disconnected rather than missing.
    pub fn know(&self, peers: impl IntoIterator<Item = NodeId>) {
        for p in peers {
            self.add(p.0, 0);
        }
    }

    /// Open links to `peer` right now.
    pub fn open_to(&self, peer: NodeId) -> i64 {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&peer.0).copied().unwrap_or(0)
    }

    /// `physalia_peer_connected{peer}` (1 while at least one authenticated link is open)
    /// and `physalia_peer_links{peer}`.
    pub fn render(&self, out: &mut String) {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP physalia_peer_connected 1 while an authenticated connection with the peer is open\n# TYPE physalia_peer_connected gauge"
        );
        for (p, n) in m.iter() {
            let _ = writeln!(
                out,
                "physalia_peer_connected{{peer=\"n{p}\"}} {}",
                u8::from(*n > 0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP physalia_peer_links authenticated connections open with the peer\n# TYPE physalia_peer_links gauge"
        );
        for (p, n) in m.iter() {
            let _ = writeln!(out, "physalia_peer_links{{peer=\"n{p}\"}} {n}");
        }
    }
}

/// A label value with `\`, `"` and newlines escaped (the text format's rule).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_cumulatively() {
        static BOUNDS: [u64; 3] = [100, 1_000, 10_000];
        let h = Histogram::new(&BOUNDS);
        h.observe(50);
        h.observe(1_000);
        h.observe(20_000);
        let mut t = String::new();
        h.render(&mut t, "x_seconds", "x");
        assert!(t.contains("x_seconds_bucket{le=\"0.0001\"} 1"), "{t}");
        assert!(t.contains("x_seconds_bucket{le=\"0.001\"} 2"), "{t}");
        assert!(t.contains("x_seconds_bucket{le=\"0.01\"} 2"), "{t}");
        assert!(t.contains("x_seconds_bucket{le=\"+Inf\"} 3"), "{t}");
        assert!(t.contains("x_seconds_count 3"), "{t}");
    }

    #[test]
    fn cell_series_are_bounded_and_published_on_demand() {
        let s = CellSeries::default();
        assert!(!s.take_wanted());
        let mut t = String::new();
        s.render(&mut t);
        assert!(s.take_wanted(), "a scrape asks for a publication");
        assert!(!s.take_wanted());
        let cells: Vec<CellGauge> = (0..MAX_CELL_SERIES + 10)
            .map(|i| CellGauge {
                cell: format!("c{i}\"x"),
                role: if i == 0 { Role::Leader } else { Role::Follower },
                ballot_round: 2,
                commit: 7,
                applied: 7,
                leader_changes: 1,
                elections: 0,
            })
            .collect();
        s.publish(cells, 10);
        let mut t = String::new();
        s.render(&mut t);
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("physalia_cell_commit_index{"))
                .count(),
            MAX_CELL_SERIES
        );
        assert!(t.contains("physalia_cell_series_omitted 20"), "{t}");
        assert!(
            t.contains("physalia_cell_role{cell=\"c0\\\"x\",role=\"leader\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("physalia_cell_is_leader{cell=\"c0\\\"x\"} 1"),
            "{t}"
        );
    }
}
