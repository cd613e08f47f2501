//! `physalia check`: model-check the cell specification and report every property.

use std::io::Write;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use physalia_model::check::{self, CheckOptions, CheckReport, Progress, Strategy, Verdict};
use physalia_model::render;
use physalia_model::{CellConfig, CellModel, Mutant, NetworkKind};
use serde_json::{json, Value};
use stateright::Expectation;

/// The bounds of the model, shared by `check` and `explore`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Nodes in the cell (3 is exhaustive in CI; 5 and 7 need tight bounds).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub nodes: u8,
    /// Clients, each running its fixed workload (see `physalia_model::kv::workload`).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub clients: u8,
    /// Operations per client, issued one after the other.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub ops: u8,
    /// Highest ballot round a node may use (bounds elections).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub max_round: u8,
    /// Log slots.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub max_slots: u8,
    /// Crashes allowed in a run (a crashed node may restart from its durable state).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub crashes: u8,
    /// Elections allowed in a run, across all nodes (failovers, with the bootstrap leader).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub elections: u8,
    /// Pipeline window α: proposals in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub window: u8,
    /// Start with no leader: every node a follower, the first leader elected too.
    #[arg(long)]
    pub no_bootstrap_leader: bool,
    /// Network semantics.
    #[arg(long, value_enum, default_value_t = NetworkArg::Duplicating)]
    pub network: NetworkArg,
    /// Messages may be lost (on by default; `--lossy false` for a reliable network).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub lossy: bool,
    /// Run a deliberately broken variant (see `--list-mutants`).
    #[arg(long, value_name = "NAME")]
    pub mutant: Option<String>,
}

/// Network semantics on the command line.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum NetworkArg {
    /// FIFO per pair of endpoints.
    Ordered,
    /// Any order, each message delivered at most once.
    Unordered,
    /// Any order, any number of times.
    Duplicating,
}

impl ModelArgs {
    /// The model configuration these arguments describe.
    pub fn config(&self) -> Result<CellConfig> {
        let mutant = match &self.mutant {
            Some(name) => Some(name.parse::<Mutant>().map_err(anyhow::Error::msg)?),
            None => None,
        };
        let cfg = CellConfig {
            nodes: self.nodes,
            clients: self.clients,
            ops_per_client: self.ops,
            max_round: self.max_round,
            max_slots: self.max_slots,
            max_crashes: self.crashes,
            max_elections: self.elections,
            window: self.window,
            bootstrap_leader: !self.no_bootstrap_leader,
            network: match self.network {
                NetworkArg::Ordered => NetworkKind::Ordered,
                NetworkArg::Unordered => NetworkKind::Unordered,
                NetworkArg::Duplicating => NetworkKind::Duplicating,
            },
            lossy: self.lossy,
            mutant,
        };
        cfg.validate().map_err(anyhow::Error::msg)?;
        Ok(cfg)
    }
}

/// Search strategy on the command line.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum StrategyArg {
    /// Breadth-first: shortest counterexamples with one thread; memory grows with states.
    Bfs,
    /// Depth-first: a fingerprint per state; needed for --symmetry.
    Dfs,
}

/// Arguments of `physalia check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Search strategy.
    #[arg(long, value_enum, default_value_t = StrategyArg::Bfs)]
    pub strategy: StrategyArg,
    /// Checker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Prune states that differ only by a renaming of nodes (DFS only; see the README for
    /// what a clean run with it does and does not prove).
    #[arg(long)]
    pub symmetry: bool,
    /// Print the broken variants, one name per line, and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `physalia check`; returns the exit code (0 clean, 1 a property failed).
pub fn run(args: &CheckArgs) -> Result<u8> {
    if args.list_mutants {
        for m in Mutant::ALL {
            println!("{}", m.name());
        }
        return Ok(0);
    }
    let cfg = args.model.config()?;
    let opts = CheckOptions {
        strategy: match args.strategy {
            StrategyArg::Bfs => Strategy::Bfs,
            StrategyArg::Dfs => Strategy::Dfs,
        },
        threads: args.threads,
        symmetry: args.symmetry,
    };
    if opts.symmetry && opts.strategy == Strategy::Bfs {
        bail!(
            "--symmetry needs --strategy dfs: stateright 0.31's BFS ignores symmetry and would \
             silently check the full state space"
        );
    }
    if !args.json {
        print_header(&cfg, &opts);
    }
    let quiet = args.json;
    let report = check::run(CellModel::new(cfg.clone()), &opts, |p| {
        if !quiet {
            print_progress(&p);
        }
    })
    .map_err(anyhow::Error::msg)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&cfg, &opts, &report))?
        );
    } else {
        print_report(&report);
    }
    Ok(if report.failed() { 1 } else { 0 })
}

fn describe(cfg: &CellConfig) -> String {
    format!(
        "{} nodes, {} clients × {} ops, rounds ≤ {}, {} slots, {} election(s){}, {} crash(es), {} {} network",
        cfg.nodes,
        cfg.clients,
        cfg.ops_per_client,
        cfg.max_round,
        cfg.max_slots,
        cfg.max_elections,
        if cfg.bootstrap_leader { " after n0 leads" } else { "" },
        cfg.max_crashes,
        if cfg.lossy { "lossy" } else { "reliable" },
        cfg.network.name()
    )
}

fn print_header(cfg: &CellConfig, opts: &CheckOptions) {
    println!("model: {}", describe(cfg));
    if let Some(m) = cfg.mutant {
        println!("mutant: {} — {}", m.name(), m.description());
    }
    println!(
        "checker: {:?}, {} thread(s){}",
        opts.strategy,
        opts.threads,
        if !opts.symmetry {
            ""
        } else if physalia_model::symmetry::is_exact(cfg) {
            ", node symmetry (exact for these bounds)"
        } else {
            ", node symmetry (INCOMPLETE for these bounds: ballots may tie on the round or \
             clients retry round-robin; counterexamples are real, a clean run is not a proof)"
        }
    );
}

fn print_progress(p: &Progress) {
    let secs = p.elapsed.as_secs_f64();
    eprintln!(
        "  … {:>12} generated, {:>11} unique, depth {:>3}, {:>6.1} s, {:>9.0} states/s",
        p.generated,
        p.unique,
        p.depth,
        secs,
        p.generated as f64 / secs.max(1e-9)
    );
    let _ = std::io::stderr().flush();
}

fn kind(e: &Expectation) -> &'static str {
    match e {
        Expectation::Always => "always",
        Expectation::Sometimes => "sometimes",
        Expectation::Eventually => "eventually",
    }
}

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Holds => "holds",
        Verdict::Violated(_) => "VIOLATED",
        Verdict::Reached(_) => "reached",
        Verdict::Unreached => "NEVER REACHED",
        Verdict::Undecided => "undecided (search stopped at a violation)",
    }
}

fn print_report(r: &CheckReport) {
    let s = &r.stats;
    let secs = s.elapsed.as_secs_f64();
    println!();
    println!(
        "{} generated, {} unique states, depth {}, {:.2} s, {:.0} states/s{}",
        s.generated,
        s.unique,
        s.depth,
        secs,
        s.generated as f64 / secs.max(1e-9),
        if r.stopped_early {
            " (stopped at the first violation)"
        } else {
            " (state space exhausted)"
        }
    );
    println!();
    for p in &r.properties {
        let mark = if p.verdict.is_failure() { "✗" } else { "✓" };
        let mark = if matches!(p.verdict, Verdict::Undecided) {
            "?"
        } else {
            mark
        };
        println!(
            "  {mark} {:<9} {:<38} {}",
            kind(&p.expectation),
            p.name,
            verdict_word(&p.verdict)
        );
    }
    for p in &r.properties {
        if let Verdict::Violated(path) = &p.verdict {
            println!();
            println!(
                "counterexample: \"{}\" is violated after these steps",
                p.name
            );
            print_path(path.clone().into_vec());
        }
    }
    for p in &r.properties {
        if matches!(p.verdict, Verdict::Unreached) {
            println!();
            println!(
                "\"{}\" is never reached: the bounds (or the model) cannot exercise it",
                p.name
            );
        }
    }
}

type Steps = Vec<(physalia_model::CellState, Option<physalia_model::Action>)>;

fn print_path(steps: Steps) {
    for (i, step) in render::explain_path(&steps).iter().enumerate() {
        println!("{:>3}. {}", i + 1, step.action);
        for m in &step.sent {
            println!("       sends {m}");
        }
        for line in &step.changed {
            println!("       {line}");
        }
    }
    if let Some((last, _)) = steps.last() {
        println!("  final state:");
        for line in format!("{last:?}").lines() {
            println!("    {line}");
        }
    }
}

fn path_json(steps: Steps) -> Value {
    let explained: Vec<Value> = render::explain_path(&steps)
        .into_iter()
        .enumerate()
        .map(|(i, s)| json!({"step": i + 1, "action": s.action, "sent": s.sent, "changed": s.changed}))
        .collect();
    let last = steps.last().map(|(s, _)| format!("{s:?}"));
    json!({"steps": explained, "final_state": last})
}

fn to_json(cfg: &CellConfig, opts: &CheckOptions, r: &CheckReport) -> Value {
    let props: Vec<Value> = r
        .properties
        .iter()
        .map(|p| {
            let (verdict, path) = match &p.verdict {
                Verdict::Holds => ("holds", None),
                Verdict::Violated(path) => ("violated", Some(path_json(path.clone().into_vec()))),
                Verdict::Reached(path) => ("reached", Some(path_json(path.clone().into_vec()))),
                Verdict::Unreached => ("unreached", None),
                Verdict::Undecided => ("undecided", None),
            };
            let mut v =
                json!({"name": p.name, "expectation": kind(&p.expectation), "verdict": verdict});
            if let (Some(path), "violated") = (path, verdict) {
                v["counterexample"] = path;
            }
            v
        })
        .collect();
    let s = &r.stats;
    json!({
        "config": {
            "nodes": cfg.nodes, "clients": cfg.clients, "ops_per_client": cfg.ops_per_client,
            "max_round": cfg.max_round, "max_slots": cfg.max_slots, "max_crashes": cfg.max_crashes, "max_elections": cfg.max_elections, "window": cfg.window, "bootstrap_leader": cfg.bootstrap_leader,
            "network": cfg.network.name(), "lossy": cfg.lossy,
            "mutant": cfg.mutant.map(|m| m.name()),
        },
        "checker": {
            "strategy": format!("{:?}", opts.strategy).to_lowercase(),
            "threads": opts.threads,
            "symmetry": opts.symmetry,
            "symmetry_exact": opts.symmetry && physalia_model::symmetry::is_exact(cfg),
        },
        "generated_states": s.generated,
        "unique_states": s.unique,
        "max_depth": s.depth,
        "seconds": s.elapsed.as_secs_f64(),
        "states_per_second": s.generated as f64 / s.elapsed.as_secs_f64().max(1e-9),
        "stopped_at_violation": r.stopped_early,
        "ok": !r.failed(),
        "properties": props,
    })
}
