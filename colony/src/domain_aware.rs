//! The domain-aware placement: each cell gets its jury close to its client, under the
//! placement rule ([`crate::check`]), of one color, with every node under a load cap.
//!
//! For each cell in order (`c0`, `c1`, ...):
//! 1. **Scopes**, nearest first: the client's row, its AZ, its region (a cell with no
//!    client: the region with the most spare capacity).
//! 2. In a scope, **colors** by spare capacity (most first): the candidates are the nodes
//!    of the scope and the color below the load cap.
//! 3. **Greedy with bounded backtracking**: repeatedly add the candidate that keeps every
//!    non-exempt rule domain at most `k − q` members and minimises, in order, its
//!    concentration `Σ_L p_L · (members already in its domain at level L)` over the failing
//!    levels the client survives, its load, and a seeded hash of (cell, node) (so nodes
//!    carry different mixes). A dead end backtracks over sets of nodes (a node whose
//!    subtree failed is not tried again below its siblings), at most [`SEARCH_BUDGET`]
//!    steps per (scope, color): exhaustive for small scopes, so on them a cell fails to
//!    place only if no jury exists.
//! 4. The first (scope, color) with a jury wins; if none has one, placement fails with
//!    [`PlaceError::Infeasible`] naming the cell, its client and what was tried.
//!
//! **Load bound**: no node carries more than `cap` cells, by default
//! `max(⌈1.25 · mean⌉, ⌈mean⌉ + 1)` with `mean = Σ jury sizes / nodes`.

use std::collections::HashMap;

use crate::availability::{FailureModel, FAILING_LEVELS};
use crate::check::tolerance;
use crate::placement::{Demand, Resolved};
use crate::rng::mix;
use crate::topology::{DomainIx, Level, Topology};

/// Steps of backtracking search allowed per (cell, scope, color).
pub const SEARCH_BUDGET: usize = 2_000;

/// Options of the domain-aware strategy.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Seed of the tie-breaks.
    pub seed: u64,
    /// The most cells a node may carry; `None`: the default bound (module docs).
    pub max_load: Option<u32>,
    /// The failure model whose probabilities weigh concentration.
    pub model: FailureModel,
}

/// Why a placement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// No jury for a cell satisfies the rule, one color and the load cap.
    #[error(
        "cell {cell} ({client}, jury of {k}): no {k} nodes of one color in {tried} keep \
         every domain its client survives to at most {t} members with every node under \
         the load cap of {cap} cells; give the topology more racks/power domains/AZs \
         near the client, ask for a smaller jury, or raise --max-load"
    )]
    Infeasible {
        /// The cell.
        cell: String,
        /// Its client (`no client` if none).
        client: String,
        /// The jury size asked for.
        k: usize,
        /// The most members one domain may hold.
        t: usize,
        /// The scopes tried.
        tried: String,
        /// The load cap.
        cap: u32,
    },
    /// The topology has fewer nodes than a jury needs.
    #[error("cell {cell}: a jury of {k} needs {k} nodes; the topology has {nodes}")]
    TooFewNodes {
        /// The cell.
        cell: String,
        /// The jury size.
        k: usize,
        /// The nodes there are.
        nodes: usize,
    },
}

/// Facts about a domain-aware placement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceStats {
    /// The load cap used.
    pub cap: u32,
    /// How many cells were placed in the client's row, AZ, region (or, with no client,
    /// a region).
    pub by_scope: [usize; 3],
}

/// The default load cap for `demand` on `topo`.
pub fn default_cap(topo: &Topology, demand: &Demand) -> u32 {
    let total: usize = demand.jury.iter().sum();
    let n = topo.nodes.len().max(1);
    let mean_ceil = total.div_ceil(n);
    let quarter = (total * 5).div_ceil(4 * n);
    u32::try_from(quarter.max(mean_ceil + 1)).unwrap_or(u32::MAX)
}

struct Ctx<'a> {
    topo: &'a Topology,
    opts: &'a Options,
    load: Vec<u32>,
    cap: u32,
    lists: HashMap<(DomainIx, DomainIx), Vec<usize>>,
    colors: Vec<DomainIx>,
}

impl Ctx<'_> {
    fn list(&mut self, scope: DomainIx, color: DomainIx) -> Vec<usize> {
        let topo = self.topo;
        self.lists
            .entry((scope, color))
            .or_insert_with(|| {
                topo.domains[scope]
                    .nodes
                    .iter()
                    .copied()
                    .filter(|&n| topo.nodes[n].domain(Level::Color) == Some(color))
                    .collect()
            })
            .clone()
    }

    fn spare(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .map(|&n| u64::from(self.cap.saturating_sub(self.load[n])))
            .sum()
    }
}

/// One search for a jury: the state of the greedy/backtracking.
struct Search<'a> {
    topo: &'a Topology,
    model: &'a FailureModel,
    exempt: &'a [DomainIx],
    t: usize,
    k: usize,
    cell: u64,
    seed: u64,
    counts: HashMap<DomainIx, usize>,
    chosen: Vec<usize>,
    /// Nodes that no completion of the current prefix can contain (their subtree was
    /// searched to the end): the search enumerates sets, not orders.
    banned: Vec<usize>,
    budget: usize,
}

impl Search<'_> {
    fn fits(&self, n: usize) -> bool {
        Level::RULE
            .iter()
            .all(|&l| match self.topo.nodes[n].domain(l) {
                Some(d) if !self.exempt.contains(&d) => {
                    self.counts.get(&d).copied().unwrap_or(0) < self.t
                }
                _ => true,
            })
    }

    fn concentration(&self, n: usize) -> f64 {
        FAILING_LEVELS
            .iter()
            .filter_map(|&l| self.topo.nodes[n].domain(l).map(|d| (l, d)))
            .filter(|(_, d)| !self.exempt.contains(d))
            .map(|(l, d)| self.model.p(l) * self.counts.get(&d).copied().unwrap_or(0) as f64)
            .sum()
    }

    fn add(&mut self, n: usize, delta: isize) {
        for d in self.topo.nodes[n].domains.iter().flatten() {
            let c = self.counts.entry(*d).or_insert(0);
            *c = c.saturating_add_signed(delta);
        }
    }

    fn run(&mut self, candidates: &[usize], load: &[u32]) -> bool {
        if self.chosen.len() == self.k {
            return true;
        }
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let mut ranked: Vec<(f64, u32, u64, usize)> = candidates
            .iter()
            .copied()
            .filter(|n| !self.chosen.contains(n) && !self.banned.contains(n) && self.fits(*n))
            .map(|n| {
                let tie = mix(&[self.seed, self.cell, n as u64]);
                (self.concentration(n), load[n], tie, n)
            })
            .collect();
        if ranked.len() < self.k - self.chosen.len() {
            return false;
        }
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let banned_here = self.banned.len();
        for &(_, _, _, n) in &ranked {
            self.chosen.push(n);
            self.add(n, 1);
            if self.run(candidates, load) {
                return true;
            }
            self.add(n, -1);
            self.chosen.pop();
            if self.budget == 0 {
                return false;
            }
            self.banned.push(n);
        }
        self.banned.truncate(banned_here);
        false
    }
}

/// A cell's scopes, nearest first, each with its tier (0 row, 1 AZ, 2 region), and the
/// domains its client is in (exempt from the rule).
fn scopes(ctx: &Ctx<'_>, client: Option<usize>) -> (Vec<(usize, DomainIx)>, Vec<DomainIx>) {
    let topo = ctx.topo;
    match client {
        Some(cl) => {
            let cd = &topo.clients[cl];
            let s = [Level::Row, Level::Az, Level::Region]
                .iter()
                .enumerate()
                .filter_map(|(i, &l)| cd.domain(l).map(|d| (i, d)))
                .collect();
            (s, cd.domains.iter().flatten().copied().collect())
        }
        None => {
            let best = topo
                .domains_at(Level::Region)
                .max_by_key(|&r| (ctx.spare(&topo.domains[r].nodes), std::cmp::Reverse(r)))
                .unwrap_or(0);
            (vec![(2, best)], Vec::new())
        }
    }
}

/// The first jury found for cell `c` over its scopes and colors: its tier and nodes.
fn place_cell(
    ctx: &mut Ctx<'_>,
    c: usize,
    k: usize,
    scopes: &[(usize, DomainIx)],
    exempt: &[DomainIx],
) -> Option<(usize, Vec<usize>)> {
    for &(tier, scope) in scopes {
        let mut colors: Vec<(u64, DomainIx, Vec<usize>)> = ctx
            .colors
            .clone()
            .into_iter()
            .map(|col| {
                let all = ctx.list(scope, col);
                let free: Vec<usize> = all.into_iter().filter(|&n| ctx.load[n] < ctx.cap).collect();
                (ctx.spare(&free), col, free)
            })
            .filter(|(_, _, free)| free.len() >= k)
            .collect();
        colors.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, free) in colors {
            let mut s = Search {
                topo: ctx.topo,
                model: &ctx.opts.model,
                exempt,
                t: tolerance(k),
                k,
                cell: c as u64,
                seed: ctx.opts.seed,
                counts: HashMap::new(),
                chosen: Vec::with_capacity(k),
                banned: Vec::new(),
                budget: SEARCH_BUDGET,
            };
            if s.run(&free, &ctx.load) {
                return Some((tier, s.chosen));
            }
        }
    }
    None
}

/// Places `demand` on `topo` domain-aware (module docs).
pub fn place(
    topo: &Topology,
    demand: &Demand,
    opts: &Options,
) -> Result<(Resolved, PlaceStats), PlaceError> {
    let cap = opts.max_load.unwrap_or_else(|| default_cap(topo, demand));
    let mut ctx = Ctx {
        topo,
        opts,
        load: vec![0; topo.nodes.len()],
        cap,
        lists: HashMap::new(),
        colors: topo.domains_at(Level::Color).collect(),
    };
    let mut members = Vec::with_capacity(demand.len());
    let mut by_scope = [0usize; 3];
    for c in 0..demand.len() {
        let (k, client) = (demand.jury[c], demand.client[c]);
        if k > topo.nodes.len() {
            return Err(PlaceError::TooFewNodes {
                cell: format!("c{c}"),
                k,
                nodes: topo.nodes.len(),
            });
        }
        let (scopes, exempt) = scopes(&ctx, client);
        let Some((tier, mut jury)) = place_cell(&mut ctx, c, k, &scopes, &exempt) else {
            let tried = scopes
                .iter()
                .map(|&(_, d)| topo.domains[d].to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PlaceError::Infeasible {
                cell: format!("c{c}"),
                client: client.map_or("no client".into(), |cl| {
                    format!("client {}", topo.clients[cl].name)
                }),
                k,
                t: tolerance(k),
                tried,
                cap,
            });
        };
        by_scope[tier] += 1;
        for &n in &jury {
            ctx.load[n] += 1;
        }
        jury.sort_unstable();
        members.push(jury);
    }
    Ok((
        Resolved {
            members,
            client: demand.client.clone(),
        },
        PlaceStats { cap, by_scope },
    ))
}
