//! `physalia colony place|check|report|simulate|gen-topology`: the colony layer
//! (`colony/README.md` documents the file formats, the rule and the objective).
//!
//! Exit codes: 0 done (for `check`: every single-domain failure leaves every cell whose
//! client survives a quorum); 1 `check` found cells that a single-domain failure takes;
//! 2 the input is unusable (the message names file, line and field). A closed stdout
//! ends the command quietly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use physalia_colony::check::check;
use physalia_colony::gen::GenParams;
use physalia_colony::placement::{Demand, Placement, Resolved};
use physalia_colony::report::{place_with, ReportOptions};
use physalia_colony::simulate::SimOptions;
use physalia_colony::swap::{self, SwapOptions};
use physalia_colony::topology::MAX_JURY;
use physalia_colony::Topology;
use serde_json::{json, Value};

mod check;
mod report;
mod simulate;

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
        ColonyCommand::Check(a) => check::run(a),
        ColonyCommand::Report(a) => report::run(a),
        ColonyCommand::Simulate(a) => simulate::run(a),
        ColonyCommand::GenTopology(a) => gen(a),
    }
}

use crate::output::emit;

/// Prints one `--json` document of a colony command (schema `physalia-colony-<command>`).
fn emit_json(command: &str, v: &Value) -> Result<()> {
    crate::output::print_json(&format!("physalia-colony-{command}"), v.clone())
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
    let (resolved, label, swaps) = place_with(&topo, &demand, name, a.swaps, &opts)?;
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
                emit_json("place", &summary)?;
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
