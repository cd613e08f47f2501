//! `physalia check`: model-check the cell specification and report every property.

use std::io::Write;

use anyhow::Result;
use clap::{Args, ValueEnum};
use physalia_model::check::{self, CheckOptions, CheckReport, Progress, Strategy, Verdict};
use physalia_model::render;
use physalia_model::{CellConfig, CellModel, Mutant, NetworkKind};
use serde_json::{json, Value};
use stateright::Expectation;

/// The bounds of the model, shared by `check` and `explore`. Every bound is optional: it
/// overrides the default configuration (`physalia_model::CellConfig::default()`) or, with
/// `--mutant`, the smallest configuration that exposes that mutant.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Nodes in the cell, 1..=7 [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub nodes: Option<u8>,
    /// Clients, each running its fixed workload (`physalia_model::kv::workload`), 0..=3 [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub clients: Option<u8>,
    /// Operations per client, issued one after the other, 0..=3 [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub ops: Option<u8>,
    /// Highest ballot round a node may use, 1..=9 [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub max_round: Option<u8>,
    /// Log slots, 1..=4 [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub max_slots: Option<u8>,
    /// Crashes (each a crash and a restart from durable state), 0..=9 [default: 0].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub crashes: Option<u8>,
    /// Elections, i.e. failovers after the bootstrap leader, 0..=9 [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub elections: Option<u8>,
    /// Pipeline window α: proposals in flight at once, 1..=4 [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub window: Option<u8>,
    /// Start with no leader: every node a follower, the first leader elected too.
    #[arg(long)]
    pub no_bootstrap_leader: bool,
    /// Network semantics [default: duplicating].
    #[arg(long, value_enum)]
    pub network: Option<NetworkArg>,
    /// Whether messages may be lost [default: true].
    #[arg(long, action = clap::ArgAction::Set)]
    pub lossy: Option<bool>,
    /// Jury changes the distinguished proposer may propose, 0..=3 [default: 0: the jury never
    /// changes, and the state space is the one without reconfiguration].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub reconfigs: Option<u8>,
    /// Spare nodes outside the initial jury that a change may add [default: 1 with
    /// --reconfigs above 0, else 0]; the jury and the spares are at most 8 nodes. Range: 0..=5.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub spares: Option<u8>,
    /// The kinds of jury change proposed, comma-separated: replace, add, remove
    /// [default: replace].
    #[arg(long, value_name = "KINDS")]
    pub changes: Option<String>,
    /// Run a deliberately broken variant (see `--list-mutants`), starting from the smallest
    /// bounds known to expose it.
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
        let mut cfg = match mutant {
            Some(m) => m.config(),
            None => CellConfig::default(),
        };
        let set = |field: &mut u8, v: Option<u8>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut cfg.nodes, self.nodes);
        set(&mut cfg.clients, self.clients);
        set(&mut cfg.ops_per_client, self.ops);
        set(&mut cfg.max_round, self.max_round);
        set(&mut cfg.max_slots, self.max_slots);
        set(&mut cfg.max_crashes, self.crashes);
        set(&mut cfg.max_elections, self.elections);
        set(&mut cfg.window, self.window);
        if self.no_bootstrap_leader {
            cfg.bootstrap_leader = false;
        }
        if let Some(n) = self.network {
            cfg.network = match n {
                NetworkArg::Ordered => NetworkKind::Ordered,
                NetworkArg::Unordered => NetworkKind::Unordered,
                NetworkArg::Duplicating => NetworkKind::Duplicating,
            };
        }
        if let Some(l) = self.lossy {
            cfg.lossy = l;
        }
        set(&mut cfg.reconfigs, self.reconfigs);
        match self.spares {
            Some(s) => cfg.spares = s,
            // A change needs a node to move to: one spare unless the mutant's bounds say
            // otherwise.
            None if cfg.mutant.is_none() => cfg.spares = u8::from(cfg.reconfigs > 0),
            None => {}
        }
        if let Some(kinds) = &self.changes {
            cfg.changes = kinds.parse().map_err(anyhow::Error::msg)?;
        }
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

/// Whether to use node symmetry.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymmetryArg {
    /// When it is exact for the bounds and the strategy is DFS.
    Auto,
    /// Always (DFS only); a clean run is not a proof when it is not exact.
    On,
    /// Never.
    Off,
}

/// Arguments of `physalia check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Search strategy [default: dfs; bfs with --mutant].
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Checker threads, 1..=256 [default: 2 for dfs, 1 for bfs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Prune states that differ only by a renaming of nodes (DFS only). `auto` uses it when
    /// it is exact for the bounds (see the README).
    #[arg(long, value_enum, default_value_t = SymmetryArg::Auto)]
    pub symmetry: SymmetryArg,
    /// Print the broken variants, one name per line, and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Print the result as one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write each property's verdict as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// No progress: on a terminal a spinner with the states, depth and rate; into a file or
    /// a pipe one line per progress report.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the first counterexample (of the first violated property) to this file in the
    /// ITF trace format (Apalache/Quint), one state per step.
    #[arg(long, value_name = "FILE")]
    pub itf: Option<std::path::PathBuf>,
}

/// Runs `physalia check`; returns the exit code (0 clean, 1 a property failed).
pub fn run(args: &CheckArgs) -> Result<u8> {
    if args.list_mutants {
        if args.json {
            let mutants: Vec<Value> = Mutant::ALL
                .iter()
                .map(|m| json!({"name": m.name(), "description": m.description(), "expected_violations": m.expected_violations()}))
                .collect();
            crate::output::print_json("physalia-check-mutants", json!({ "mutants": mutants }))?;
        } else {
            let names: String = Mutant::ALL
                .iter()
                .map(|m| format!("{}\n", m.name()))
                .collect();
            crate::output::emit(&names)?;
        }
        return Ok(0);
    }
    let cfg = args.model.config()?;
    let strategy = match args.strategy {
        Some(StrategyArg::Bfs) => Strategy::Bfs,
        Some(StrategyArg::Dfs) => Strategy::Dfs,
        None if cfg.mutant.is_some() => Strategy::Bfs,
        None => Strategy::Dfs,
    };
    let symmetry = match args.symmetry {
        SymmetryArg::On => true,
        SymmetryArg::Off => false,
        SymmetryArg::Auto => strategy == Strategy::Dfs && physalia_model::symmetry::is_exact(&cfg),
    };
    let opts = CheckOptions {
        strategy,
        threads: args.threads.map_or(
            match strategy {
                Strategy::Dfs => 2,
                Strategy::Bfs => 1,
            },
            usize::from,
        ),
        symmetry,
    };
    if !args.json {
        print_header(&cfg, &opts);
    }
    let quiet = args.json || args.quiet;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let spinner = crate::progress::spinner(quiet || !terminal);
    let report = check::run(CellModel::new(cfg.clone()), &opts, |p| {
        match (quiet, terminal) {
            (true, _) => {}
            (false, true) => spinner.set_message(progress_line(&p)),
            (false, false) => print_progress(&p),
        }
    })
    .map_err(anyhow::Error::msg)?;
    spinner.finish_and_clear();
    if let Some(path) = &args.junit {
        crate::junit::write(path, "check", &junit_cases(&report))?;
    }
    if let Some(path) = &args.itf {
        let violated = report.properties.iter().find_map(|p| match &p.verdict {
            Verdict::Violated(path) => Some((p.name, path.clone().into_vec())),
            _ => None,
        });
        match violated {
            Some((name, steps)) => crate::itf::write(path, &itf_path(name, &steps))?,
            None => eprintln!(
                "note: no counterexample, so no ITF file written to {}",
                path.display()
            ),
        }
    }
    if args.json {
        crate::output::print_json("physalia-check", to_json(&cfg, &opts, &report))?;
    } else {
        print_report(&report, &CellModel::new(cfg.clone()));
    }
    Ok(if report.failed() { 1 } else { 0 })
}

/// A counterexample of `property` as an ITF document: per step the action taken and each
/// node's, client's and the network's state.
fn itf_path(property: &str, steps: &Steps) -> Value {
    use crate::itf::{int, map, tup};
    use physalia_model::state::Role;
    let ballot = |b: &physalia_model::types::Ballot| tup(vec![int(b.round), int(b.node)]);
    let states = steps
        .iter()
        .enumerate()
        .map(|(i, (state, _))| {
            let action = match i.checked_sub(1).and_then(|j| steps[j].1.as_ref()) {
                Some(a) => format!("{a:?}"),
                None => "init".to_owned(),
            };
            let nodes = state
                .nodes
                .iter()
                .enumerate()
                .map(|(n, node)| {
                    let role = match node.role {
                        Role::Follower => "follower",
                        Role::Candidate { .. } => "candidate",
                        Role::Leader { .. } => "leader",
                    };
                    let log = node
                        .log
                        .iter()
                        .enumerate()
                        .filter_map(|(slot, e)| {
                            let e = e.as_ref()?;
                            Some((
                                int(slot as u64),
                                json!({"ballot": ballot(&e.ballot), "command": format!("{:?}", e.command)}),
                            ))
                        })
                        .collect();
                    let record = json!({
                        "status": format!("{:?}", node.status), "role": role,
                        "promised": ballot(&node.promised), "ballot": ballot(&node.ballot),
                        "commit": int(node.commit), "log": map(log),
                        "line": format!("{node:?}"),
                    });
                    (int(n as u64), record)
                })
                .collect();
            let clients = state
                .clients
                .iter()
                .enumerate()
                .map(|(c, client)| {
                    let record = json!({
                        "next": int(client.next), "pending": client.pending,
                        "target": int(client.target),
                    });
                    (int(c as u64), record)
                })
                .collect();
            let network: Vec<Value> = format!("{:?}", state.network)
                .lines()
                .map(|l| json!(l.trim()))
                .collect();
            let mut s = serde_json::Map::new();
            s.insert("action_taken".into(), json!(action));
            s.insert("nodes".into(), map(nodes));
            s.insert("clients".into(), map(clients));
            s.insert("network".into(), json!(network));
            s
        })
        .collect();
    crate::itf::document(
        "physalia check (the stateright model)",
        &format!("a counterexample: \"{property}\" is violated at the last state"),
        &["action_taken", "nodes", "clients", "network"],
        states,
        0,
    )
}

/// Where `physalia explore` serves by default.
const EXPLORER_ADDR: &str = "127.0.0.1:3000";

/// The Explorer's path to the last state of `steps` (`#/steps/I/A1/A2/...`: the index of
/// the initial state, then of each action among those the model enables, as the Explorer
/// of the same model options numbers them), or `None` if a step is not among the model's
/// (a path through symmetry representatives).
pub fn explorer_path(model: &CellModel, steps: &Steps) -> Option<String> {
    use stateright::Model;
    let (init, _) = steps.first()?;
    let mut out = vec![model
        .init_states()
        .iter()
        .position(|s| s == init)?
        .to_string()];
    for (state, action) in steps {
        let Some(action) = action else {
            continue;
        };
        let mut actions = Vec::new();
        model.actions(state, &mut actions);
        out.push(actions.iter().position(|a| a == action)?.to_string());
    }
    Some(format!("#/steps/{}", out.join("/")))
}

fn describe(cfg: &CellConfig) -> String {
    let reconfig = if cfg.reconfigs > 0 {
        format!(
            ", {} jury change(s) ({}) with {} spare(s), in force α = {} slots later",
            cfg.reconfigs,
            cfg.changes.names().join("/"),
            cfg.spares,
            cfg.window
        )
    } else {
        String::new()
    };
    format!(
        "{} nodes, {} clients × {} ops, rounds ≤ {}, {} slots, {} election(s){}, {} crash(es){}, {} {} network",
        cfg.nodes,
        cfg.clients,
        cfg.ops_per_client,
        cfg.max_round,
        cfg.max_slots,
        cfg.max_elections,
        if cfg.bootstrap_leader { " after n0 leads" } else { "" },
        cfg.max_crashes,
        reconfig,
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
        "checker: {}, {} {}{}",
        format!("{:?}", opts.strategy).to_lowercase(),
        opts.threads,
        if opts.threads == 1 {
            "thread"
        } else {
            "threads"
        },
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

/// One progress report: states generated and unique, depth, elapsed time and rate.
fn progress_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64();
    format!(
        "{:>12} generated, {:>11} unique, depth {:>3}, {:>6.1} s, {:>9.0} states/s",
        p.generated,
        p.unique,
        p.depth,
        secs,
        p.generated as f64 / secs.max(1e-9)
    )
}

fn print_progress(p: &Progress) {
    eprintln!("  … {}", progress_line(p));
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
        Verdict::NotApplicable => "not applicable to these bounds",
    }
}

fn print_report(r: &CheckReport, model: &CellModel) {
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
        let mark = match p.verdict {
            Verdict::Undecided => "?",
            Verdict::NotApplicable => "-",
            _ => mark,
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
            let steps = path.clone().into_vec();
            match explorer_path(model, &steps) {
                Some(at) => println!(
                    "in the Explorer: `physalia explore` with the same model options, then \
                     http://{EXPLORER_ADDR}/{at}"
                ),
                None => println!(
                    "(no Explorer path: the counterexample passes through symmetry \
                     representatives; rerun with --symmetry off for one)"
                ),
            }
            print_path(steps);
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
    print!("{}", path_text(steps));
}

/// A counterexample as numbered steps, what each sent and changed, and the final state.
fn path_text(steps: Steps) -> String {
    let mut t = String::new();
    for (i, step) in render::explain_path(&steps).iter().enumerate() {
        t += &format!("{:>3}. {}\n", i + 1, step.action);
        for m in &step.sent {
            t += &format!("       sends {m}\n");
        }
        for line in &step.changed {
            t += &format!("       {line}\n");
        }
    }
    if let Some((last, _)) = steps.last() {
        t += "  final state:\n";
        for line in format!("{last:?}").lines() {
            t += &format!("    {line}\n");
        }
    }
    t
}

/// One JUnit case per property.
fn junit_cases(r: &CheckReport) -> Vec<crate::junit::Case> {
    use crate::junit::{Case, Status};
    r.properties
        .iter()
        .map(|p| {
            let name = format!("{} {}", kind(&p.expectation), p.name);
            match &p.verdict {
                Verdict::Holds | Verdict::Reached(_) => Case::new(name, Status::Passed),
                Verdict::Violated(path) => Case::new(name, Status::Failed("violated".into()))
                    .detail(path_text(path.clone().into_vec())),
                Verdict::Unreached => Case::new(
                    name,
                    Status::Failed("never reached in the explored state space".into()),
                ),
                Verdict::Undecided => Case::new(
                    name,
                    Status::Skipped("undecided: the search stopped at a violation".into()),
                ),
                Verdict::NotApplicable => Case::new(
                    name,
                    Status::Skipped("not applicable to these bounds".into()),
                ),
            }
        })
        .collect()
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
                Verdict::NotApplicable => ("not applicable", None),
            };
            let mut v =
                json!({"name": p.name, "expectation": kind(&p.expectation), "verdict": verdict});
            if let (Some(path), "violated") = (path, verdict) {
                v["counterexample"] = path;
                if let Verdict::Violated(p) = &p.verdict {
                    let at = explorer_path(&CellModel::new(cfg.clone()), &p.clone().into_vec());
                    v["explorer_path"] = json!(at);
                }
            }
            v
        })
        .collect();
    let s = &r.stats;
    json!({
        "config": {
            "nodes": cfg.nodes, "clients": cfg.clients, "ops_per_client": cfg.ops_per_client,
            "max_round": cfg.max_round, "max_slots": cfg.max_slots, "max_crashes": cfg.max_crashes, "max_elections": cfg.max_elections, "window": cfg.window, "bootstrap_leader": cfg.bootstrap_leader,
            "reconfigs": cfg.reconfigs, "spares": cfg.spares, "changes": cfg.changes.names(),
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
