//! `physalia colony report`: every strategy side by side, as text, JSON or HTML.

use std::time::Instant;

use anyhow::{Context, Result};
use physalia_colony::html;
use physalia_colony::report::{self, Outcome, ReportOptions};
use physalia_colony::swap::SwapOptions;
use physalia_colony::{FailureModel, Level};
use serde_json::json;

use super::{demand, emit, emit_json, ReportArgs};

pub(super) fn run(a: &ReportArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let demand = demand(&topo, a.cells, a.jury)?;
    let opts = ReportOptions {
        seed: a.seed,
        model: FailureModel::default(),
        max_load: a.max_load,
        swaps: SwapOptions {
            passes: a.swap_passes,
            candidates: a.swap_candidates,
            seed: a.seed,
        },
    };
    let started = Instant::now();
    let r = report::compare(&topo, &demand, &opts);
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(path) = &a.html {
        std::fs::write(path, html::render(&r))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["ratios_vs_domain_aware_swaps"] = json!(report::STRATEGIES
            .iter()
            .map(|s| (s.to_string(), json!(r.ratio(s, "domain-aware+swaps"))))
            .collect::<serde_json::Map<_, _>>());
        v["elapsed_s"] = json!(elapsed);
        emit_json("report", &v)?;
        return Ok(0);
    }
    let mut t = format!(
        "topology {}: {}\n{} cells per strategy, seed {}; failure model: node {}, rack {}, power {}, row {}, az {}, region {} (P(down))\n\n",
        r.topology,
        r.summary,
        r.cells,
        r.seed,
        sci(r.model.node.unavailability()),
        sci(r.model.rack.unavailability()),
        sci(r.model.power.unavailability()),
        sci(r.model.row.unavailability()),
        sci(r.model.az.unavailability()),
        sci(r.model.region.unavailability()),
    );
    t += &format!(
        "{:<20} {:>22} {:>14} {:>12} {:>10} {:>10} {:>10} {:>14}\n",
        "strategy", "rule", "P(avail|client)", "P(unavail)", "x best", "worst", "U", "load min/max"
    );
    for o in &r.strategies {
        match o {
            Outcome::Placed(e) => {
                let rule = if e.violating_cells == 0 {
                    "holds".to_string()
                } else {
                    format!("{} cells fail", e.violating_cells)
                };
                let ratio = r
                    .ratio(&e.strategy, "domain-aware+swaps")
                    .map_or("-".into(), |x| format!("{x:.2}"));
                t += &format!(
                    "{:<20} {:>22} {:>14.10} {:>12} {:>10} {:>10} {:>10} {:>14}\n",
                    e.strategy,
                    rule,
                    1.0 - e.mean_unavailability,
                    sci(e.mean_unavailability),
                    ratio,
                    sci(e.max_unavailability),
                    sci(e.objective),
                    format!("{}/{}", e.load.0, e.load.2)
                );
            }
            Outcome::Failed { strategy, error } => {
                t += &format!("{strategy:<20} cannot place: {error}\n");
            }
        }
    }
    if let Some(e) = r.get("domain-aware+swaps") {
        if let Some(s) = &e.swaps {
            t += &format!(
                "\nswaps: {} moves in {} passes; U {} -> {}\n",
                s.moves,
                s.passes,
                sci(s.objective_before),
                sci(s.objective_after)
            );
        }
    }
    t += "\nlargest blast radius per level (cells whose quorum is lost while their client survives / surviving clients that lose a cell; colors and regions not judged; every domain in --json and --html):\n";
    for o in &r.strategies {
        if let Outcome::Placed(e) = o {
            let mut parts = Vec::new();
            for level in Level::ALL {
                if let Some(b) = e
                    .blast
                    .iter()
                    .filter(|b| b.level == level)
                    .max_by_key(|b| b.cells_lost)
                {
                    parts.push(format!("{} {}/{}", level, b.cells_lost, b.clients_lost));
                }
            }
            t += &format!("  {:<20} {}\n", e.strategy, parts.join(", "));
        }
    }
    if let Some(path) = &a.html {
        t += &format!("\nwrote {}\n", path.display());
    }
    t += &format!("report computed in {elapsed:.2} s\n");
    emit(&t)?;
    Ok(0)
}

fn sci(x: f64) -> String {
    format!("{x:.2e}")
}
