//! The strategies side by side (`physalia colony report`): for each, whether it keeps the
//! placement rule, its blast radius per domain, the exact `P(cell available | client
//! available)` of every cell under the [`FailureModel`], the swap objective and the load.

use serde::Serialize;

use crate::availability::{cell_unavailability, FailureModel};
use crate::check::{check, CheckReport};
use crate::domain_aware::{self, PlaceError};
use crate::placement::{self, Demand, Resolved};
use crate::swap::{self, SwapOptions, SwapStats};
use crate::topology::{Level, Topology};

/// The strategies a report compares, in order.
pub const STRATEGIES: [&str; 4] = ["rotation", "random", "domain-aware", "domain-aware+swaps"];

/// One domain's blast radius under one strategy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Blast {
    /// The domain's level.
    pub level: Level,
    /// The domain's name.
    pub domain: String,
    /// Cells losing their quorum while their client survives.
    pub cells_lost: usize,
    /// Surviving clients losing a cell.
    pub clients_lost: usize,
    /// Cells down together with their client.
    pub cells_down_with_client: usize,
}

/// One strategy's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// The strategy.
    pub strategy: String,
    /// Cells that some single rule-level domain failure takes while the client survives.
    pub violating_cells: usize,
    /// Rule-level domains whose failure takes such a cell.
    pub violating_domains: usize,
    /// Mean over cells of the exact `P(cell unavailable | client available)`.
    pub mean_unavailability: f64,
    /// The largest per-cell value.
    pub max_unavailability: f64,
    /// The swap objective `U` (second order; the expected number of unavailable (client,
    /// cell) pairs).
    pub objective: f64,
    /// Cells per node: least, mean, most.
    pub load: (u32, f64, u32),
    /// Distinct juries (nodes carry different mixes when this is close to the cell count).
    pub distinct_juries: usize,
    /// Per domain, every level.
    pub blast: Vec<Blast>,
    /// Per cell, the exact `P(cell unavailable | client available)`.
    #[serde(skip)]
    pub per_cell: Vec<f64>,
    /// What the swaps did (for `domain-aware+swaps`).
    pub swaps: Option<SwapSummary>,
}

/// [`SwapStats`] for output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwapSummary {
    /// `U` before the swaps.
    pub objective_before: f64,
    /// `U` after.
    pub objective_after: f64,
    /// Moves made.
    pub moves: usize,
    /// Passes run.
    pub passes: usize,
}

impl From<SwapStats> for SwapSummary {
    fn from(s: SwapStats) -> Self {
        SwapSummary {
            objective_before: s.objective_before,
            objective_after: s.objective_after,
            moves: s.moves,
            passes: s.passes,
        }
    }
}

/// A strategy's outcome: evaluated, or why it could not place.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// Placed and evaluated.
    Placed(Box<Evaluation>),
    /// Could not place.
    Failed {
        /// The strategy.
        strategy: String,
        /// Why.
        error: String,
    },
}

/// The report: every strategy on one demand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The topology's file.
    pub topology: String,
    /// Its summary line.
    pub summary: String,
    /// Cells placed.
    pub cells: usize,
    /// Seed of `random` and `domain-aware`.
    pub seed: u64,
    /// The failure model.
    pub model: FailureModel,
    /// Per strategy, in [`STRATEGIES`] order.
    pub strategies: Vec<Outcome>,
}

impl Report {
    /// The evaluation of a strategy, if it placed.
    pub fn get(&self, strategy: &str) -> Option<&Evaluation> {
        self.strategies.iter().find_map(|o| match o {
            Outcome::Placed(e) if e.strategy == strategy => Some(&**e),
            _ => None,
        })
    }

    /// `mean_unavailability(strategy) / mean_unavailability(baseline)`, where both placed
    /// and the baseline's is not zero.
    pub fn ratio(&self, strategy: &str, baseline: &str) -> Option<f64> {
        let (a, b) = (self.get(strategy)?, self.get(baseline)?);
        (b.mean_unavailability > 0.0).then(|| a.mean_unavailability / b.mean_unavailability)
    }
}

/// Evaluates one placement.
pub fn evaluate(
    topo: &Topology,
    model: &FailureModel,
    strategy: &str,
    placement: &Resolved,
) -> Evaluation {
    let report: CheckReport = check(topo, placement, false);
    let per_cell: Vec<f64> = placement
        .members
        .iter()
        .zip(&placement.client)
        .map(|(m, &c)| cell_unavailability(topo, model, m, c))
        .collect();
    let cells = per_cell.len().max(1) as f64;
    let load = placement.load(topo.nodes.len());
    let mut juries: Vec<&Vec<usize>> = placement.members.iter().collect();
    juries.sort();
    juries.dedup();
    let blast = report
        .singles
        .iter()
        .map(|f| Blast {
            level: topo.domains[f.domain].level,
            domain: topo.domains[f.domain].name.clone(),
            cells_lost: f.cells_lost.len(),
            clients_lost: f.clients_lost.len(),
            cells_down_with_client: f.cells_down_with_client,
        })
        .collect();
    Evaluation {
        strategy: strategy.to_string(),
        violating_cells: report.violating_cells(topo).len(),
        violating_domains: report.violations(topo).count(),
        mean_unavailability: per_cell.iter().sum::<f64>() / cells,
        max_unavailability: per_cell.iter().copied().fold(0.0, f64::max),
        objective: swap::objective(topo, model, placement),
        load: (
            load.iter().copied().min().unwrap_or(0),
            load.iter().map(|&l| f64::from(l)).sum::<f64>() / load.len().max(1) as f64,
            load.iter().copied().max().unwrap_or(0),
        ),
        distinct_juries: juries.len(),
        blast,
        per_cell,
        swaps: None,
    }
}

/// Options of a report run.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Seed of `random`, `domain-aware` and the swaps.
    pub seed: u64,
    /// The failure model.
    pub model: FailureModel,
    /// The load cap (`None`: the default bound).
    pub max_load: Option<u32>,
    /// The swap heuristic's options.
    pub swaps: SwapOptions,
}

/// Places `demand` with every strategy and evaluates each.
pub fn compare(topo: &Topology, demand: &Demand, opts: &ReportOptions) -> Report {
    let mut strategies = vec![
        Outcome::Placed(Box::new(evaluate(
            topo,
            &opts.model,
            "rotation",
            &placement::rotation(topo, demand),
        ))),
        Outcome::Placed(Box::new(evaluate(
            topo,
            &opts.model,
            "random",
            &placement::random(topo, demand, opts.seed),
        ))),
    ];
    let da_opts = domain_aware::Options {
        seed: opts.seed,
        max_load: opts.max_load,
        model: opts.model,
    };
    match domain_aware::place(topo, demand, &da_opts) {
        Ok((mut p, stats)) => {
            strategies.push(Outcome::Placed(Box::new(evaluate(
                topo,
                &opts.model,
                "domain-aware",
                &p,
            ))));
            let swap_opts = SwapOptions {
                seed: opts.seed,
                ..opts.swaps.clone()
            };
            let s = swap::improve(topo, &opts.model, &mut p, stats.cap, &swap_opts);
            let mut e = evaluate(topo, &opts.model, "domain-aware+swaps", &p);
            e.swaps = Some(s.into());
            strategies.push(Outcome::Placed(Box::new(e)));
        }
        Err(e) => {
            let error = e.to_string();
            for s in ["domain-aware", "domain-aware+swaps"] {
                strategies.push(Outcome::Failed {
                    strategy: s.into(),
                    error: error.clone(),
                });
            }
        }
    }
    Report {
        topology: topo.source.clone(),
        summary: topo.summary(),
        cells: demand.len(),
        seed: opts.seed,
        model: opts.model,
        strategies,
    }
}

/// Places with one named strategy: `rotation`, `random` or `domain-aware` (`swaps` adds the
/// swap heuristic to the last). Returns the placement, the strategy's label and, for
/// domain-aware, the swap stats.
pub fn place_with(
    topo: &Topology,
    demand: &Demand,
    strategy: &str,
    swaps: bool,
    opts: &ReportOptions,
) -> Result<(Resolved, String, Option<SwapStats>), PlaceError> {
    match strategy {
        "rotation" => Ok((placement::rotation(topo, demand), "rotation".into(), None)),
        "random" => Ok((
            placement::random(topo, demand, opts.seed),
            "random".into(),
            None,
        )),
        _ => {
            let da = domain_aware::Options {
                seed: opts.seed,
                max_load: opts.max_load,
                model: opts.model,
            };
            let (mut p, stats) = domain_aware::place(topo, demand, &da)?;
            if !swaps {
                return Ok((p, "domain-aware".into(), None));
            }
            let so = SwapOptions {
                seed: opts.seed,
                ..opts.swaps.clone()
            };
            let s = swap::improve(topo, &opts.model, &mut p, stats.cap, &so);
            Ok((p, "domain-aware+swaps".into(), Some(s)))
        }
    }
}
