//! The swap heuristic: local search that moves one member of a cell at a time, as the
//! paper's control plane improves its placements.
//!
//! **Objective** (minimised, lexicographically):
//! 1. `U = Σ_cells J(cell)`, where `J` ([`cell_objective`]) is the probability, to second
//!    order in the per-unit failure probabilities of [`FailureModel`], that the cell has lost
//!    its quorum while its client is up. `U` is the expected number of (client, cell)
//!    pairs that are unavailable at a random time.
//! 2. then `V = Σ_nodes load²` (balance), under the hard constraint that every node
//!    carries at most `cap` cells.
//!
//! A move replaces member `a` of a cell by a node `b` of the same color in the cell's scope
//! (the smallest of its client's row, AZ, region that holds the whole jury), with
//! `load(b) < cap`, keeping the placement rule if the cell kept it. It is taken if it
//! lowers `J` (by more than a relative 10⁻⁹) or keeps `J` and lowers `V`. Each pass visits
//! every cell once and tries, for each member, up to `candidates` nodes (a seeded rotation of
//! the scope's list); the search stops after `passes` passes or a pass without a move, so it
//! is deterministic for a seed, never raises `U` and never breaks the load cap.

use std::collections::HashMap;

use crate::availability::{cell_objective, FailureModel, Scratch};
use crate::check::tolerance;
use crate::placement::Resolved;
use crate::rng::mix;
use crate::topology::{DomainIx, Level, Topology};

/// Options of the swap heuristic.
#[derive(Clone, Debug)]
pub struct SwapOptions {
    /// The most passes over the cells.
    pub passes: usize,
    /// Candidate nodes tried per member per pass.
    pub candidates: usize,
    /// Seed of the candidate rotation.
    pub seed: u64,
}

impl Default for SwapOptions {
    fn default() -> Self {
        SwapOptions {
            passes: 4,
            candidates: 32,
            seed: 0,
        }
    }
}

/// What the swaps did.
#[derive(Clone, Debug, PartialEq)]
pub struct SwapStats {
    /// `U` before.
    pub objective_before: f64,
    /// `U` after.
    pub objective_after: f64,
    /// Moves made.
    pub moves: usize,
    /// Passes run.
    pub passes: usize,
}

/// `U`: the sum over cells of [`cell_objective`].
pub fn objective(topo: &Topology, model: &FailureModel, placement: &Resolved) -> f64 {
    let mut s = Scratch::default();
    placement
        .members
        .iter()
        .zip(&placement.client)
        .map(|(m, &c)| cell_objective(topo, model, m, c, &mut s))
        .sum()
}

/// Whether `members` keep the placement rule for `client`.
pub fn keeps_rule(topo: &Topology, members: &[usize], client: Option<usize>) -> bool {
    let t = tolerance(members.len());
    let mut counts: Vec<(DomainIx, usize)> = Vec::with_capacity(32);
    for &n in members {
        for &l in &Level::RULE {
            let Some(d) = topo.nodes[n].domain(l) else {
                continue;
            };
            if client.is_some_and(|c| topo.client_in(c, d)) {
                continue;
            }
            match counts.iter_mut().find(|(x, _)| *x == d) {
                Some((_, k)) => {
                    *k += 1;
                    if *k > t {
                        return false;
                    }
                }
                None => {
                    if t == 0 {
                        return false;
                    }
                    counts.push((d, 1));
                }
            }
        }
    }
    true
}

/// The smallest client domain (row, AZ, region) holding every member, or with no client
/// the members' common region; `None` if there is none.
fn scope(topo: &Topology, members: &[usize], client: Option<usize>) -> Option<DomainIx> {
    let all_in = |d: DomainIx| {
        let l = topo.domains[d].level;
        members.iter().all(|&n| topo.nodes[n].domain(l) == Some(d))
    };
    match client {
        Some(c) => [Level::Row, Level::Az, Level::Region]
            .iter()
            .filter_map(|&l| topo.clients[c].domain(l))
            .find(|&d| all_in(d)),
        None => members
            .first()
            .and_then(|&n| topo.nodes[n].domain(Level::Region))
            .filter(|&d| all_in(d)),
    }
}

fn color(topo: &Topology, members: &[usize]) -> Option<DomainIx> {
    let first = topo.nodes[*members.first()?].domain(Level::Color);
    members
        .iter()
        .all(|&n| topo.nodes[n].domain(Level::Color) == first)
        .then_some(first)
        .flatten()
}

/// Improves `placement` in place (module docs); `cap` is the load bound to keep.
pub fn improve(
    topo: &Topology,
    model: &FailureModel,
    placement: &mut Resolved,
    cap: u32,
    opts: &SwapOptions,
) -> SwapStats {
    let before = objective(topo, model, placement);
    let mut load = placement.load(topo.nodes.len());
    let mut lists: HashMap<(Option<DomainIx>, Option<DomainIx>), Vec<usize>> = HashMap::new();
    let mut scratch = Scratch::default();
    let mut moves = 0;
    let mut passes = 0;
    let mut trial = Vec::with_capacity(7);
    for pass in 0..opts.passes {
        passes += 1;
        let mut moved = 0;
        for c in 0..placement.len() {
            let client = placement.client[c];
            let members = &placement.members[c];
            let current = cell_objective(topo, model, members, client, &mut scratch);
            let kept = keeps_rule(topo, members, client);
            let key = (scope(topo, members, client), color(topo, members));
            let list = lists.entry(key).or_insert_with(|| {
                (0..topo.nodes.len())
                    .filter(|&n| {
                        key.0
                            .is_none_or(|d| topo.nodes[n].domain(topo.domains[d].level) == Some(d))
                            && key
                                .1
                                .is_none_or(|d| topo.nodes[n].domain(Level::Color) == Some(d))
                    })
                    .collect()
            });
            if list.is_empty() {
                continue;
            }
            let offset = (mix(&[opts.seed, pass as u64, c as u64]) % list.len() as u64) as usize;
            let sample: Vec<usize> = list[offset..]
                .iter()
                .chain(&list[..offset])
                .copied()
                .filter(|&b| load[b] < cap && !members.contains(&b))
                .take(opts.candidates)
                .collect();
            // Best move: lowest J, then the largest load relief.
            let mut best: Option<(f64, i64, usize, usize)> = None;
            for (i, &a) in members.iter().enumerate() {
                for &b in &sample {
                    trial.clear();
                    trial.extend_from_slice(members);
                    trial[i] = b;
                    // Sorted, as the jury will be stored: J is then bit-for-bit what a
                    // later evaluation of the stored jury computes.
                    trial.sort_unstable();
                    if kept && !keeps_rule(topo, &trial, client) {
                        continue;
                    }
                    let j = cell_objective(topo, model, &trial, client, &mut scratch);
                    let relief = i64::from(load[a]) - i64::from(load[b]) - 1;
                    let better = j < current * (1.0 - 1e-9) || (j <= current && relief > 0);
                    if !better {
                        continue;
                    }
                    let wins = best.is_none_or(|(bj, br, _, _)| {
                        j.total_cmp(&bj).then(br.cmp(&relief)).is_lt()
                    });
                    if wins {
                        best = Some((j, relief, i, b));
                    }
                }
            }
            if let Some((_, _, i, b)) = best {
                let cell = &mut placement.members[c];
                load[cell[i]] -= 1;
                load[b] += 1;
                cell[i] = b;
                cell.sort_unstable();
                moved += 1;
            }
        }
        moves += moved;
        if moved == 0 {
            break;
        }
    }
    SwapStats {
        objective_before: before,
        objective_after: objective(topo, model, placement),
        moves,
        passes,
    }
}
