//! A Monte Carlo of failures and repairs over simulated time (`physalia colony simulate`).
//!
//! **Fault model** (the same as [`crate::availability`]): every node and every domain at
//! the levels region, az, row, rack and power is a unit that starts up and alternates
//! between up and down for exponentially distributed times with the means of the
//! [`FailureModel`] (`mttf` up, `mttr` down), independently, from a seeded generator. A
//! node is up when it and every domain it is in are up; a cell has its quorum when a
//! majority of its jury is up; a client is up when every domain it names is up. Colors do
//! not fail. Nothing else goes wrong (no partitions that split a domain, no slow nodes).
//!
//! **Measured**: per cell, the hours during which it lacked a quorum while its client was
//! up (for a cell with no client: while it lacked a quorum), and its number of outages; per
//! client, its hours up and, over its cells, the mean availability (the fraction of its up
//! time its cell had a quorum). Each event touches only the cells on the nodes it changes,
//! so the cost is `O(events × cells per node)`.
//!
//! Bounds: at most `max_events` unit transitions (the run says when it stopped early).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::availability::{FailureModel, Rate, FAILING_LEVELS};
use crate::check::quorum;
use crate::placement::Resolved;
use crate::rng::Rng;
use crate::topology::Topology;

/// Options of a simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Simulated hours.
    pub hours: f64,
    /// Seed.
    pub seed: u64,
    /// Failure and repair rates.
    pub model: FailureModel,
    /// The most unit transitions simulated.
    pub max_events: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            hours: 8_760.0,
            seed: 1,
            model: FailureModel::default(),
            max_events: 100_000_000,
        }
    }
}

/// One cell's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellOutcome {
    /// Hours without a quorum while its client was up.
    pub downtime_hours: f64,
    /// Times it lost its quorum while its client was up.
    pub outages: u32,
}

/// One client's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientOutcome {
    /// Hours it was up.
    pub up_hours: f64,
    /// Its cells.
    pub cells: usize,
    /// Mean over its cells of the fraction of its up time the cell had a quorum (1 if it
    /// has no cells or was never up).
    pub availability: f64,
}

/// The result of a simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// Hours simulated (less than asked if `truncated`).
    pub hours: f64,
    /// Unit transitions (failures and repairs).
    pub events: u64,
    /// Node up/down transitions.
    pub node_transitions: u64,
    /// Cell quorum losses and recoveries.
    pub cell_transitions: u64,
    /// Whether `max_events` stopped the run.
    pub truncated: bool,
    /// Per cell.
    pub cells: Vec<CellOutcome>,
    /// Per client.
    pub clients: Vec<ClientOutcome>,
}

#[derive(PartialEq)]
struct Event(f64, usize);

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    // Earliest first in a max-heap; ties by unit for determinism.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

struct State<'a> {
    placement: &'a Resolved,
    q: Vec<u8>,
    up_count: Vec<u8>,
    client_down: Vec<u32>,
    client_since: Vec<f64>,
    bad: Vec<bool>,
    bad_since: Vec<f64>,
    cells: Vec<CellOutcome>,
    client_up_hours: Vec<f64>,
    cell_transitions: u64,
}

impl State<'_> {
    fn client_up(&self, c: usize) -> bool {
        self.placement.client[c].is_none_or(|cl| self.client_down[cl] == 0)
    }

    fn update(&mut self, c: usize, now: f64) {
        let bad = self.up_count[c] < self.q[c] && self.client_up(c);
        if bad == self.bad[c] {
            return;
        }
        self.bad[c] = bad;
        if bad {
            self.bad_since[c] = now;
            self.cells[c].outages += 1;
        } else {
            self.cells[c].downtime_hours += now - self.bad_since[c];
        }
    }
}

/// Who depends on what: units (nodes 0..n, then every domain at a failing level) with
/// their rates, nodes and clients; the cells on each node and of each client.
struct Index {
    unit_rate: Vec<Rate>,
    unit_nodes: Vec<Vec<usize>>,
    unit_clients: Vec<Vec<usize>>,
    node_cells: Vec<Vec<u32>>,
    client_cells: Vec<Vec<u32>>,
}

impl Index {
    fn new(topo: &Topology, placement: &Resolved, model: &FailureModel) -> Index {
        let n = topo.nodes.len();
        let mut unit_rate: Vec<Rate> = vec![model.node; n];
        let mut unit_nodes: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        let mut unit_of_domain = vec![usize::MAX; topo.domains.len()];
        for (d, dom) in topo.domains.iter().enumerate() {
            if !FAILING_LEVELS.contains(&dom.level) {
                continue;
            }
            let Some(rate) = model.level(dom.level) else {
                continue;
            };
            unit_of_domain[d] = unit_rate.len();
            unit_rate.push(rate);
            unit_nodes.push(dom.nodes.clone());
        }
        let mut unit_clients: Vec<Vec<usize>> = vec![Vec::new(); unit_rate.len()];
        for (c, client) in topo.clients.iter().enumerate() {
            for &d in client.domains.iter().flatten() {
                if unit_of_domain[d] != usize::MAX {
                    unit_clients[unit_of_domain[d]].push(c);
                }
            }
        }
        let mut node_cells: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (c, m) in placement.members.iter().enumerate() {
            for &x in m {
                node_cells[x].push(c as u32);
            }
        }
        let mut client_cells: Vec<Vec<u32>> = vec![Vec::new(); topo.clients.len()];
        for (c, cl) in placement.client.iter().enumerate() {
            if let Some(cl) = cl {
                client_cells[*cl].push(c as u32);
            }
        }
        Index {
            unit_rate,
            unit_nodes,
            unit_clients,
            node_cells,
            client_cells,
        }
    }
}

impl<'a> State<'a> {
    fn new(placement: &'a Resolved, clients: usize) -> Self {
        let cells = placement.len();
        State {
            placement,
            q: placement
                .members
                .iter()
                .map(|m| quorum(m.len()) as u8)
                .collect(),
            up_count: placement.members.iter().map(|m| m.len() as u8).collect(),
            client_down: vec![0; clients],
            client_since: vec![0.0; clients],
            bad: vec![false; cells],
            bad_since: vec![0.0; cells],
            cells: vec![
                CellOutcome {
                    downtime_hours: 0.0,
                    outages: 0
                };
                cells
            ],
            client_up_hours: vec![0.0; clients],
            cell_transitions: 0,
        }
    }

    /// Node `x` goes down (`failing`) or comes back: its cells' counts follow.
    fn node_changes(&mut self, ix: &Index, x: usize, failing: bool, now: f64) {
        for &c in &ix.node_cells[x] {
            let c = c as usize;
            let before = self.up_count[c] >= self.q[c];
            if failing {
                self.up_count[c] -= 1;
            } else {
                self.up_count[c] += 1;
            }
            if before != (self.up_count[c] >= self.q[c]) {
                self.cell_transitions += 1;
                self.update(c, now);
            }
        }
    }

    /// One more (or one fewer) of client `cl`'s domains is down.
    fn client_changes(&mut self, ix: &Index, cl: usize, failing: bool, now: f64) {
        let was_up = self.client_down[cl] == 0;
        if failing {
            self.client_down[cl] += 1;
        } else {
            self.client_down[cl] -= 1;
        }
        if was_up == (self.client_down[cl] == 0) {
            return;
        }
        if was_up {
            self.client_up_hours[cl] += now - self.client_since[cl];
        } else {
            self.client_since[cl] = now;
        }
        for &c in &ix.client_cells[cl] {
            self.update(c as usize, now);
        }
    }

    /// Closes the open intervals at `end` and computes the per-client figures.
    fn finish(mut self, ix: &Index, end: f64) -> (Vec<CellOutcome>, Vec<ClientOutcome>) {
        for c in 0..self.cells.len() {
            if self.bad[c] {
                self.cells[c].downtime_hours += end - self.bad_since[c];
            }
        }
        for cl in 0..self.client_down.len() {
            if self.client_down[cl] == 0 {
                self.client_up_hours[cl] += end - self.client_since[cl];
            }
        }
        let clients = (0..self.client_down.len())
            .map(|cl| {
                let up = self.client_up_hours[cl];
                let mine = &ix.client_cells[cl];
                let availability = if mine.is_empty() || up <= 0.0 {
                    1.0
                } else {
                    mine.iter()
                        .map(|&c| 1.0 - self.cells[c as usize].downtime_hours / up)
                        .sum::<f64>()
                        / mine.len() as f64
                };
                ClientOutcome {
                    up_hours: up,
                    cells: mine.len(),
                    availability,
                }
            })
            .collect();
        (self.cells, clients)
    }
}

/// Simulates `placement` on `topo` (module docs).
pub fn simulate(topo: &Topology, placement: &Resolved, opts: &SimOptions) -> SimReport {
    let ix = Index::new(topo, placement, &opts.model);
    let mut st = State::new(placement, topo.clients.len());
    let mut node_down = vec![0u32; topo.nodes.len()];
    let mut unit_down = vec![false; ix.unit_rate.len()];
    let mut rng = Rng::derived(opts.seed, 0x7369_6d75);
    let mut heap: BinaryHeap<Event> = ix
        .unit_rate
        .iter()
        .enumerate()
        .map(|(u, r)| Event(rng.exponential(1.0 / r.mttf_hours), u))
        .collect();
    let (mut events, mut node_transitions) = (0u64, 0u64);
    let mut now = 0.0;
    let mut truncated = false;
    while let Some(Event(t, u)) = heap.pop() {
        if t >= opts.hours {
            break;
        }
        if events >= opts.max_events {
            truncated = true;
            break;
        }
        now = t;
        events += 1;
        let failing = !unit_down[u];
        unit_down[u] = failing;
        for &x in &ix.unit_nodes[u] {
            let was_up = node_down[x] == 0;
            if failing {
                node_down[x] += 1;
            } else {
                node_down[x] -= 1;
            }
            if was_up != (node_down[x] == 0) {
                node_transitions += 1;
                st.node_changes(&ix, x, failing, now);
            }
        }
        for &cl in &ix.unit_clients[u] {
            st.client_changes(&ix, cl, failing, now);
        }
        let rate = ix.unit_rate[u];
        let mean = if failing {
            rate.mttr_hours
        } else {
            rate.mttf_hours
        };
        heap.push(Event(now + rng.exponential(1.0 / mean.max(1e-12)), u));
    }
    let end = if truncated { now } else { opts.hours };
    let cell_transitions = st.cell_transitions;
    let (cells, clients) = st.finish(&ix, end);
    SimReport {
        hours: end,
        events,
        node_transitions,
        cell_transitions,
        truncated,
        cells,
        clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        let mut s = String::new();
        for i in 0..6 {
            s += &format!(
                "[[node]]\nid = \"n{i}\"\nregion = \"r\"\naz = \"a{}\"\n",
                i / 3
            );
        }
        s += "[[client]]\nid = \"x\"\nregion = \"r\"\naz = \"a0\"\n";
        Topology::parse(&s, "t").unwrap()
    }

    #[test]
    fn deterministic_and_a_majority_domain_costs_downtime() {
        let t = topo();
        // Cell 0 has 3 of 5 in a1 (the client is in a0): a1 failing takes it.
        // Cell 1 has 3 of 3 in a0, the client's AZ: never counted.
        let p = Resolved {
            members: vec![vec![0, 1, 3, 4, 5], vec![0, 1, 2]],
            client: vec![Some(0), Some(0)],
        };
        let model = FailureModel {
            az: Rate {
                mttf_hours: 100.0,
                mttr_hours: 10.0,
            },
            ..FailureModel::default()
        };
        let opts = SimOptions {
            hours: 20_000.0,
            seed: 3,
            model,
            max_events: 1_000_000,
        };
        let a = simulate(&t, &p, &opts);
        assert_eq!(a, simulate(&t, &p, &opts));
        assert!(a.cells[0].outages > 10, "{:?}", a.cells[0]);
        // About 10/110 of the client's up time (plus node failures).
        let frac = a.cells[0].downtime_hours / a.clients[0].up_hours;
        assert!(frac > 0.05 && frac < 0.15, "{frac}");
        assert!(a.cells[1].downtime_hours < a.cells[0].downtime_hours / 10.0);
        assert!(!a.truncated);
    }
}
