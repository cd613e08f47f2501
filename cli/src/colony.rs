//! `physalia colony place|check|report|simulate|gen-topology`: the colony layer
//! (`colony/README.md` documents the file formats, the rule and the objective).
//!
//! Exit codes: 0 done (for `check`: every single-domain failure leaves every cell whose
//! client survives a quorum); 1 `check` found cells that a single-domain failure takes;
//! 2 the input is unusable (the message names file, line and field). A closed stdout
//! ends the command quietly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use physalia_colony::check::{check, CheckReport};
use physalia_colony::gen::GenParams;
use physalia_colony::html;
use physalia_colony::placement::{Demand, Placement, Resolved};
use physalia_colony::report::{self, Outcome, ReportOptions};
use physalia_colony::simulate::{simulate, SimOptions};
use physalia_colony::swap::{self, SwapOptions};
use physalia_colony::topology::MAX_JURY;
use physalia_colony::{FailureModel, Topology};
use serde_json::{json, Value};

/// `physalia colony` subcommands.
#[derive(Subcommand, Debug)]
pub enum ColonyCommand {
    /// Place cells on the topology's nodes and write the placement.
    Place(PlaceArgs),
    /// For every single-domain failure (and every pair with --pairs): which cells lose
    /// their quorum and which clients lose their cell. Exit 1 if a single failure takes a
    /// cell whose client survives.
    Check(CheckArgs),
    /// Every strategy side by side: rule, blast radius, P(cell available | client
    /// available), objective, load; optionally as a self-contained HTML page.
    Report(ReportArgs),
    /// Monte Carlo of domain failures and repairs over time: availability per client and
    /// the worst cells.
    Simulate(SimulateArgs),
    /// Generate a large topology (seeded, deterministic).
    GenTopology(GenArgs),
}

/// A placement strategy.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Close to the client, no majority in any domain the client survives, one color.
    DomainAware,
    /// Uniformly random juries (seeded).
    Random,
    /// The old behaviour: rotation over the node list sorted by id.
    Rotation,
}

/// The topology (and optional clients file) every subcommand reads.
#[derive(Args, Debug)]
pub struct TopologyArgs {
    /// The topology file (TOML).
    #[arg(long, value_name = "FILE")]
    pub topology: PathBuf,
    /// A clients file (`[[client]]` entries) replacing the topology's clients.
    #[arg(long, value_name = "FILE")]
    pub clients: Option<PathBuf>,
}

impl TopologyArgs {
    fn load(&self) -> Result<Topology> {
        let mut t = Topology::load(&self.topology)?;
        if let Some(c) = &self.clients {
            t.load_clients(c)?;
        }
        Ok(t)
    }
}

/// Options of `colony place`.
#[derive(Args, Debug)]
pub struct PlaceArgs {
    #[command(flatten)]
    topo: TopologyArgs,
    /// Number of cells (`c0..`), given to the clients round-robin.
    #[arg(long)]
    cells: usize,
    /// The strategy.
    #[arg(long, value_enum, default_value_t = Strategy::DomainAware)]
    strategy: Strategy,
    /// Improve a domain-aware placement with the swap heuristic.
    #[arg(long)]
    swaps: bool,
    /// Seed of random choices and tie-breaks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Jury size of cells whose client does not ask for one.
    #[arg(long, default_value_t = MAX_JURY)]
    jury: usize,
    /// The most cells one node may carry (default: max(⌈1.25·mean⌉, ⌈mean⌉+1)).
    #[arg(long)]
    max_load: Option<u32>,
    /// Write the placement here (JSON if it ends in .json, TOML otherwise) and print a
    /// summary; without it the placement goes to stdout and the summary to stderr.
    #[arg(long, value_name = "PLACEMENT")]
    out: Option<PathBuf>,
    /// JSON instead of text (the summary, or the placement when there is no --out).
    #[arg(long)]
    json: bool,
}

/// Options of `colony check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    topo: TopologyArgs,
    /// The placement file (TOML, or JSON if it ends in .json).
    #[arg(long, value_name = "PLACEMENT")]
    placement: PathBuf,
    /// Also every pair of rule-level domains failing together (reported, not judged).
    #[arg(long)]
    pairs: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Cells and pairs named per line of the text output.
    #[arg(long, default_value_t = 10)]
    limit: usize,
}

/// Options of `colony report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    topo: TopologyArgs,
    /// Number of cells each strategy places.
    #[arg(long, default_value_t = 1000)]
    cells: usize,
    /// Seed of random choices and tie-breaks.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Jury size of cells whose client does not ask for one.
    #[arg(long, default_value_t = MAX_JURY)]
    jury: usize,
    /// The most cells one node may carry (default: max(⌈1.25·mean⌉, ⌈mean⌉+1)).
    #[arg(long)]
    max_load: Option<u32>,
    /// Passes of the swap heuristic.
    #[arg(long, default_value_t = SwapOptions::default().passes)]
    swap_passes: usize,
    /// Candidate nodes the swap heuristic tries per member per pass.
    #[arg(long, default_value_t = SwapOptions::default().candidates)]
    swap_candidates: usize,
    /// Write a self-contained HTML page here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `colony simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    #[command(flatten)]
    topo: TopologyArgs,
    /// The placement file.
    #[arg(long, value_name = "PLACEMENT")]
    placement: PathBuf,
    /// Simulated hours.
    #[arg(long)]
    hours: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The most failures and repairs simulated.
    #[arg(long, default_value_t = SimOptions::default().max_events)]
    max_events: u64,
    /// Worst cells and clients listed.
    #[arg(long, default_value_t = 10)]
    worst: usize,
    /// Print JSON (every client's availability, the worst cells).
    #[arg(long)]
    json: bool,
}

/// Options of `colony gen-topology` (defaults: 1,008 nodes).
#[derive(Args, Debug)]
pub struct GenArgs {
    /// Regions.
    #[arg(long, default_value_t = GenParams::default().regions)]
    regions: u32,
    /// AZs per region.
    #[arg(long, default_value_t = GenParams::default().azs)]
    azs: u32,
    /// Rows per AZ.
    #[arg(long, default_value_t = GenParams::default().rows)]
    rows: u32,
    /// Racks per row.
    #[arg(long, default_value_t = GenParams::default().racks)]
    racks: u32,
    /// Nodes per rack.
    #[arg(long, default_value_t = GenParams::default().nodes_per_rack)]
    nodes_per_rack: u32,
    /// Power domains per AZ.
    #[arg(long, default_value_t = GenParams::default().power)]
    power: u32,
    /// Colors.
    #[arg(long, default_value_t = GenParams::default().colors)]
    colors: u32,
    /// Clients.
    #[arg(long, default_value_t = GenParams::default().clients)]
    clients: u32,
    /// Seed.
    #[arg(long, default_value_t = GenParams::default().seed)]
    seed: u64,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs a `physalia colony` subcommand.
pub fn run(cmd: &ColonyCommand) -> Result<u8> {
    match cmd {
        ColonyCommand::Place(a) => place(a),
        ColonyCommand::Check(a) => check_cmd(a),
        ColonyCommand::Report(a) => report_cmd(a),
        ColonyCommand::Simulate(a) => simulate_cmd(a),
        ColonyCommand::GenTopology(a) => gen(a),
    }
}

/// Writes to stdout; a closed pipe is not an error.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn emit_json(v: &Value) -> Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(v)?))
}

fn demand(topo: &Topology, cells: usize, jury: usize) -> Result<Demand> {
    if !(1..=MAX_JURY).contains(&jury) {
        bail!("--jury {jury}: a jury has 1 to {MAX_JURY} nodes");
    }
    if cells == 0 || cells > 2_000_000 {
        bail!("--cells {cells}: give 1 to 2,000,000");
    }
    Ok(Demand::round_robin(topo, cells, jury))
}

fn place(a: &PlaceArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let demand = demand(&topo, a.cells, a.jury)?;
    if a.swaps && a.strategy != Strategy::DomainAware {
        bail!("--swaps improves a domain-aware placement; drop it or use --strategy domain-aware");
    }
    let name = match a.strategy {
        Strategy::DomainAware => "domain-aware",
        Strategy::Random => "random",
        Strategy::Rotation => "rotation",
    };
    let opts = ReportOptions {
        seed: a.seed,
        max_load: a.max_load,
        ..ReportOptions::default()
    };
    let started = Instant::now();
    let (resolved, label, swaps) = report::place_with(&topo, &demand, name, a.swaps, &opts)?;
    let elapsed = started.elapsed().as_secs_f64();
    let seed = (a.strategy != Strategy::Rotation).then_some(a.seed);
    let placement = resolved.to_placement(&topo, &label, seed);
    let verdict = check(&topo, &resolved, false);
    let load = resolved.load(topo.nodes.len());
    let objective = swap::objective(&topo, &opts.model, &resolved);
    let summary = json!({
        "topology": topo.source,
        "strategy": label,
        "seed": seed,
        "cells": resolved.len(),
        "load": {
            "min": load.iter().min(),
            "mean": load.iter().map(|&l| f64::from(l)).sum::<f64>() / load.len().max(1) as f64,
            "max": load.iter().max(),
        },
        "rule_violations": verdict.violating_cells(&topo).len(),
        "objective": objective,
        "swaps": swaps.as_ref().map(|s| json!({
            "objective_before": s.objective_before,
            "objective_after": s.objective_after,
            "moves": s.moves,
            "passes": s.passes,
        })),
        "elapsed_s": elapsed,
        "out": a.out.as_ref().map(|p| p.display().to_string()),
    });
    let mut text = format!(
        "placed {} cells on {} ({}) with {label} in {elapsed:.2} s\n",
        resolved.len(),
        topo.source,
        topo.summary()
    );
    text += &format!(
        "load: {} to {} cells per node (mean {:.1})\nrule: {}\nobjective U (expected (client, cell) pairs unavailable): {objective:.3e}\n",
        summary["load"]["min"],
        summary["load"]["max"],
        summary["load"]["mean"].as_f64().unwrap_or(0.0),
        match verdict.violating_cells(&topo).len() {
            0 => "every single-domain failure leaves every cell whose client survives a quorum".to_string(),
            n => format!("{n} cells lose their quorum to a single-domain failure their client survives (see `colony check`)"),
        },
    );
    if let Some(s) = &swaps {
        text += &format!(
            "swaps: {} moves in {} passes, U {:.3e} -> {:.3e}\n",
            s.moves, s.passes, s.objective_before, s.objective_after
        );
    }
    match &a.out {
        Some(path) => {
            placement
                .save(path)
                .with_context(|| format!("writing {}", path.display()))?;
            text += &format!("wrote {}\n", path.display());
            if a.json {
                emit_json(&summary)?;
            } else {
                emit(&text)?;
            }
        }
        None => {
            eprint!("{text}");
            emit(&if a.json {
                placement.to_json() + "\n"
            } else {
                placement.to_toml()
            })?;
        }
    }
    Ok(0)
}

fn load_placement(topo: &Topology, path: &Path) -> Result<(Placement, Resolved)> {
    Ok(Placement::load(path, topo)?)
}

fn domain_json(topo: &Topology, d: usize) -> Value {
    json!({ "level": topo.domains[d].level, "name": topo.domains[d].name })
}

fn names(p: &Placement, cells: &[usize], limit: usize) -> String {
    let mut s: Vec<&str> = cells
        .iter()
        .take(limit)
        .map(|&c| p.cells[c].id.as_str())
        .collect();
    if cells.len() > limit {
        s.push("...");
    }
    s.join(", ")
}

fn check_cmd(a: &CheckArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let (placement, resolved) = load_placement(&topo, &a.placement)?;
    let started = Instant::now();
    let report: CheckReport = check(&topo, &resolved, a.pairs);
    let elapsed = started.elapsed().as_secs_f64();
    let violating = report.violating_cells(&topo);
    let code = u8::from(!violating.is_empty());
    let mixed = mixed_colors(&topo, &resolved);
    if a.json {
        let mut v = check_json(&topo, &placement, &report, &violating, elapsed);
        v["cells_mixing_colors"] = json!(mixed.len());
        emit_json(&v)?;
        return Ok(code);
    }
    let mut t = format!(
        "topology {}: {}\nplacement {}: {} cells ({})\n",
        topo.source,
        topo.summary(),
        a.placement.display(),
        resolved.len(),
        placement.strategy
    );
    let rule_domains = report
        .singles
        .iter()
        .filter(|f| physalia_colony::Level::RULE.contains(&topo.domains[f.domain].level))
        .count();
    t += &format!("single-domain failures: {rule_domains} domains at az, row, rack, power\n");
    for f in report.violations(&topo) {
        t += &format!(
            "  {} takes the quorum of {} cells whose client survives ({}); {} clients lose a cell\n",
            topo.domains[f.domain],
            f.cells_lost.len(),
            names(&placement, &f.cells_lost, a.limit),
            f.clients_lost.len()
        );
    }
    for f in &report.singles {
        let level = topo.domains[f.domain].level;
        if !physalia_colony::Level::RULE.contains(&level) && !f.cells_lost.is_empty() {
            t += &format!(
                "  (not judged) {} takes {} cells whose client survives\n",
                topo.domains[f.domain],
                f.cells_lost.len()
            );
        }
    }
    if let Some(p) = &report.pairs {
        t += &format!(
            "pairs: {} examined ({} nested pairs skipped); {} take at least one quorum; {} cells lost to some pair\n",
            p.examined,
            p.nested,
            p.failing.len(),
            p.cells_ever_lost
        );
        for f in p.failing.iter().take(a.limit) {
            t += &format!(
                "  {} + {}: {} cells ({}), {} clients\n",
                topo.domains[f.a],
                topo.domains[f.b],
                f.cells_lost,
                names(&placement, &f.example_cells, 5),
                f.clients_lost
            );
        }
    }
    if !mixed.is_empty() {
        t += &format!(
            "colors (reported, not judged): {} cells mix colors ({})\n",
            mixed.len(),
            names(&placement, &mixed, a.limit)
        );
    }
    t += &format!("checked in {elapsed:.3} s\n");
    t += &if violating.is_empty() {
        "verdict: PASS: every single-domain failure leaves every cell whose client survives a quorum\n".to_string()
    } else {
        format!(
            "verdict: FAIL: {} cells lose their quorum to a single-domain failure their client survives: {}\n",
            violating.len(),
            names(&placement, &violating, a.limit)
        )
    };
    emit(&t)?;
    Ok(code)
}

/// Cells whose members are not all of one color.
fn mixed_colors(topo: &Topology, p: &Resolved) -> Vec<usize> {
    let color = |n: usize| topo.nodes[n].domain(physalia_colony::Level::Color);
    (0..p.len())
        .filter(|&c| {
            let m = &p.members[c];
            m.iter().any(|&n| color(n) != color(m[0]))
        })
        .collect()
}

fn check_json(
    topo: &Topology,
    placement: &Placement,
    report: &CheckReport,
    violating: &[usize],
    elapsed: f64,
) -> Value {
    let ids = |cells: &[usize]| -> Vec<&str> {
        cells
            .iter()
            .map(|&c| placement.cells[c].id.as_str())
            .collect()
    };
    let clients =
        |cl: &[usize]| -> Vec<&str> { cl.iter().map(|&c| topo.clients[c].name.as_str()).collect() };
    json!({
        "verdict": if violating.is_empty() { "pass" } else { "fail" },
        "topology": topo.source,
        "cells": placement.cells.len(),
        "strategy": placement.strategy,
        "violating_cells": ids(violating),
        "violations": report.violations(topo).map(|f| json!({
            "domain": domain_json(topo, f.domain),
            "cells": ids(&f.cells_lost),
            "clients": clients(&f.clients_lost),
        })).collect::<Vec<_>>(),
        "singles": report.singles.iter().map(|f| json!({
            "domain": domain_json(topo, f.domain),
            "cells_lost": f.cells_lost.len(),
            "clients_lost": f.clients_lost.len(),
            "cells_down_with_client": f.cells_down_with_client,
        })).collect::<Vec<_>>(),
        "pairs": report.pairs.as_ref().map(|p| json!({
            "examined": p.examined,
            "nested": p.nested,
            "cells_ever_lost": p.cells_ever_lost,
            "failing": p.failing.iter().map(|f| json!({
                "a": domain_json(topo, f.a),
                "b": domain_json(topo, f.b),
                "cells_lost": f.cells_lost,
                "clients_lost": f.clients_lost,
                "example_cells": ids(&f.example_cells),
            })).collect::<Vec<_>>(),
        })),
        "elapsed_s": elapsed,
    })
}

fn report_cmd(a: &ReportArgs) -> Result<u8> {
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
        emit_json(&v)?;
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
            for level in physalia_colony::Level::ALL {
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

fn simulate_cmd(a: &SimulateArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let (placement, resolved) = load_placement(&topo, &a.placement)?;
    if !(a.hours.is_finite() && a.hours > 0.0 && a.hours <= 1e9) {
        bail!(
            "--hours {}: give a positive number of hours, at most 1e9",
            a.hours
        );
    }
    let opts = SimOptions {
        hours: a.hours,
        seed: a.seed,
        model: FailureModel::default(),
        max_events: a.max_events,
    };
    let started = Instant::now();
    let r = simulate(&topo, &resolved, &opts);
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let mut worst_cells: Vec<usize> = (0..r.cells.len()).collect();
    worst_cells.sort_by(|&x, &y| {
        r.cells[y]
            .downtime_hours
            .total_cmp(&r.cells[x].downtime_hours)
            .then(x.cmp(&y))
    });
    worst_cells.truncate(a.worst);
    worst_cells.retain(|&c| r.cells[c].downtime_hours > 0.0);
    let mut worst_clients: Vec<usize> = (0..r.clients.len()).collect();
    worst_clients.sort_by(|&x, &y| {
        r.clients[x]
            .availability
            .total_cmp(&r.clients[y].availability)
            .then(x.cmp(&y))
    });
    worst_clients.truncate(a.worst);
    let cell_hours: f64 = r.cells.iter().map(|c| c.downtime_hours).sum();
    let mean_client = if r.clients.is_empty() {
        1.0
    } else {
        r.clients.iter().map(|c| c.availability).sum::<f64>() / r.clients.len() as f64
    };
    let rate = json!({
        "wall_s": elapsed,
        "simulated_hours_per_s": r.hours / elapsed,
        "events_per_s": r.events as f64 / elapsed,
    });
    if a.json {
        emit_json(&json!({
            "topology": topo.source,
            "placement": a.placement.display().to_string(),
            "cells": r.cells.len(),
            "hours": r.hours,
            "seed": a.seed,
            "model": opts.model,
            "events": r.events,
            "node_transitions": r.node_transitions,
            "cell_transitions": r.cell_transitions,
            "truncated": r.truncated,
            "cell_hours_without_quorum": cell_hours,
            "mean_client_availability": mean_client,
            "clients": topo.clients.iter().zip(&r.clients).map(|(c, o)| json!({
                "client": c.name, "up_hours": o.up_hours, "cells": o.cells, "availability": o.availability,
            })).collect::<Vec<_>>(),
            "worst_cells": worst_cells.iter().map(|&c| json!({
                "cell": placement.cells[c].id,
                "downtime_hours": r.cells[c].downtime_hours,
                "outages": r.cells[c].outages,
            })).collect::<Vec<_>>(),
            "rate": rate,
        }))?;
        return Ok(0);
    }
    let mut t = format!(
        "simulated {:.0} h of {} ({} cells, {}) with seed {}{}\n",
        r.hours,
        topo.source,
        r.cells.len(),
        placement.strategy,
        a.seed,
        if r.truncated {
            " (stopped at --max-events)"
        } else {
            ""
        }
    );
    t += &format!(
        "{} failures and repairs, {} node transitions, {} cell quorum losses/recoveries\n",
        r.events, r.node_transitions, r.cell_transitions
    );
    t += &format!(
        "cell-hours without a quorum while the client was up: {cell_hours:.3}\nmean availability per client: {mean_client:.9}\n"
    );
    if !worst_clients.is_empty() {
        t += "worst clients (availability of their cells while they were up):\n";
        for &c in &worst_clients {
            let o = &r.clients[c];
            t += &format!(
                "  {:<16} {:.9} over {} cells, up {:.0} h\n",
                topo.clients[c].name, o.availability, o.cells, o.up_hours
            );
        }
    }
    if worst_cells.is_empty() {
        t += "no cell lost its quorum while its client was up\n";
    } else {
        t += "worst cells:\n";
        for &c in &worst_cells {
            t += &format!(
                "  {:<10} {:.3} h without quorum in {} outages\n",
                placement.cells[c].id, r.cells[c].downtime_hours, r.cells[c].outages
            );
        }
    }
    t += &format!(
        "speed: {elapsed:.2} s wall, {:.0} simulated hours/s, {:.0} events/s\n",
        r.hours / elapsed,
        r.events as f64 / elapsed
    );
    emit(&t)?;
    Ok(0)
}

fn gen(a: &GenArgs) -> Result<u8> {
    let p = GenParams {
        regions: a.regions,
        azs: a.azs,
        rows: a.rows,
        racks: a.racks,
        nodes_per_rack: a.nodes_per_rack,
        power: a.power,
        colors: a.colors,
        clients: a.clients,
        seed: a.seed,
    };
    let text = p.generate().map_err(anyhow::Error::msg)?;
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} ({} nodes)", path.display(), p.nodes());
        }
        None => emit(&text)?,
    }
    Ok(0)
}
