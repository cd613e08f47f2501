//! `physalia verify`: the workbench's main job on built-in defaults. Model-check the default
//! configuration, simulate a set of seeds of a 7-node cell under faults, replay every trace
//! against the specification, check linearizability and bounded liveness, and print one
//! summary table.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use physalia_impl::sim::SimConfig;
use physalia_model::check::{self, CheckOptions, Strategy};
use physalia_model::{CellConfig, CellModel};
use physalia_refinement::replay::Options;

use crate::sweep::{simulate_and_conform, SeedRun};

/// Arguments of `physalia verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Seeds to simulate and check.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Simulator events per seed.
    #[arg(long, default_value_t = 20_000)]
    pub steps: u64,
    /// Nodes in the simulated cell. Range: 1..=7.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=7))]
    pub nodes: u32,
    /// Simulated time (ms) after which no fault is injected (GST).
    #[arg(long, default_value_t = 5_000)]
    pub gst: u64,
    /// No progress display (it is drawn only when stderr is a terminal anyway).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON document (schema `physalia-verify`) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the checks as JUnit XML to this file (one test case per row).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Skip the model check (simulation and trace checks only: the large sweep).
    #[arg(long)]
    pub skip_model: bool,
    /// Run every replica with this injected bug (a build with `--features bugs` only) and
    /// stop at the first seed on which a check fails, saying which checks caught it.
    #[cfg(feature = "bugs")]
    #[arg(long, value_name = "NAME")]
    pub bug: Option<physalia_impl::bugs::Bug>,
}

/// One row of the summary.
#[derive(Default)]
struct Row {
    runs: u64,
    passed: u64,
    seconds: f64,
    note: String,
}

impl Row {
    fn failed(&self) -> u64 {
        self.runs - self.passed
    }
}

/// One line saying which checks caught an injected bug: `detected: seed S (N seeds run);
/// online checks: …; conformance: CHECK at event E of T; linearizability: …; liveness: …`.
#[cfg(feature = "bugs")]
fn detection(seed: u64, seeds_run: u64, r: &SeedRun) -> String {
    let mut parts = vec![format!("detected: seed {seed} ({seeds_run} seeds run)")];
    parts.push(format!(
        "online checks: {}",
        if r.sim.violations.is_empty() {
            "held".to_owned()
        } else {
            format!(
                "{} violation(s), first {}",
                r.sim.violations.len(),
                r.sim.violations[0]
            )
        }
    ));
    parts.push(match &r.conform.failure {
        None => "conformance: held".to_owned(),
        Some(f) => format!(
            "conformance: {} at event {} of {}",
            f.check, f.prefix_len, r.conform.events
        ),
    });
    if let Some(l) = &r.conform.linearizability {
        parts.push(format!("linearizability: {}", l.verdict));
    }
    if let Some(l) = &r.conform.liveness {
        parts.push(format!(
            "liveness: {}",
            if l.holds() { "held" } else { "failed" }
        ));
    }
    parts.join("; ")
}

/// Runs `physalia verify`; exit 0 if every check passed, 1 otherwise.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    let mut rows: Vec<(&str, Row)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    if !args.skip_model {
        rows.push((
            "model check (default config)",
            model_check(&mut failures, args.quiet || args.json)?,
        ));
    }
    let seeds = simulate_seeds(args, &mut failures)?;
    let detected = seeds.detected.clone();
    rows.extend(seeds.rows(args));
    if let Some(path) = &args.junit {
        crate::junit::write(path, "verify", &junit_cases(&rows, &failures))?;
    }
    if args.json {
        let failed = verdict_failed(&rows);
        let doc = serde_json::json!({
            "checks": rows.iter().map(|(name, r)| serde_json::json!({
                "check": name,
                "runs": r.runs,
                "passed": r.passed,
                "failed": r.failed(),
                "seconds": r.seconds,
                "detail": r.note,
            })).collect::<Vec<_>>(),
            "failures": failures,
            "detected": detected,
            "verdict": if failed { "failed" } else { "passed" },
        });
        crate::output::print_json("physalia-verify", doc)?;
        return Ok(u8::from(failed));
    }
    let failed = print_summary(&rows, &failures);
    let _ = std::io::stdout().flush();
    Ok(u8::from(failed))
}

/// Model-checks the default configuration (depth-first, with symmetry when it is exact)
/// and returns its row; the properties that fail are noted in `failures`.
fn model_check(failures: &mut Vec<String>, quiet: bool) -> Result<Row> {
    let cfg = CellConfig::default();
    let symmetry = physalia_model::symmetry::is_exact(&cfg);
    let opts = CheckOptions {
        strategy: Strategy::Dfs,
        threads: 1,
        symmetry,
    };
    let spinner = crate::progress::spinner(quiet);
    spinner.set_message("model check of the default configuration (physalia check)");
    let started = Instant::now();
    let report = check::run(CellModel::new(cfg.clone()), &opts, |p| {
        spinner.set_message(format!(
            "model check of the default configuration: {} states, depth {}",
            p.unique, p.depth
        ));
    })
    .map_err(anyhow::Error::msg)?;
    spinner.finish_and_clear();
    let ok = !report.failed();
    if !ok {
        failures.push(format!(
            "model check: {} (run `physalia check` for the counterexamples)",
            report
                .properties
                .iter()
                .filter(|p| p.verdict.is_failure())
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Row {
        runs: 1,
        passed: u64::from(ok),
        seconds: started.elapsed().as_secs_f64(),
        note: format!(
            "{} states{}, {} properties",
            report.stats.unique,
            if symmetry { " up to symmetry" } else { "" },
            report.properties.len()
        ),
    })
}

/// The rows of the simulation and conformance sweep, and the totals their notes give.
#[derive(Default)]
struct SeedRows {
    sim: Row,
    conf: Row,
    lin: Row,
    live: Row,
    events: usize,
    ops: usize,
    bytes: usize,
    /// With an injected bug: the line saying which checks caught it, if any did.
    detected: Option<String>,
}

impl SeedRows {
    /// Counts one seed's run in each row; every check that failed on it is noted in
    /// `failures`, with `repro`, the commands that reproduce the seed.
    fn record(&mut self, seed: u64, r: &SeedRun, repro: &str, failures: &mut Vec<String>) {
        self.events += r.conform.events;
        self.bytes += r.trace_bytes;
        self.sim.runs += 1;
        self.sim.seconds += r.sim_seconds;
        if r.sim.violations.is_empty() {
            self.sim.passed += 1;
        } else {
            failures.push(format!(
                "seed {seed}: online checks: {:?} ({repro})",
                r.sim.violations
            ));
        }
        self.conf.runs += 1;
        self.conf.seconds += r.conform.replay_seconds;
        match &r.conform.failure {
            None => self.conf.passed += 1,
            Some(f) => failures.push(format!(
                "seed {seed}: conformance: {} at event {} ({}: {}) ({repro})",
                f.check, f.index, f.node, f.event
            )),
        }
        if let Some(l) = &r.conform.linearizability {
            self.lin.runs += 1;
            self.lin.seconds += r.conform.lin_seconds;
            self.ops += l.operations;
            if l.holds() {
                self.lin.passed += 1;
            } else {
                failures.push(format!(
                    "seed {seed}: linearizability: {} ({repro})",
                    l.verdict
                ));
            }
        }
        if let Some(l) = &r.conform.liveness {
            self.live.runs += 1;
            if l.holds() {
                self.live.passed += 1;
            } else {
                failures.push(format!(
                    "seed {seed}: liveness: {} ({repro})",
                    l.failures.join("; ")
                ));
            }
        }
    }

    /// The four rows, each with its note.
    fn rows(self, args: &VerifyArgs) -> [(&'static str, Row); 4] {
        let SeedRows {
            mut sim,
            mut conf,
            mut lin,
            mut live,
            events,
            ops,
            bytes,
            detected: _,
        } = self;
        sim.note = format!(
            "{} nodes, faults until GST {} ms, {} events each",
            args.nodes, args.gst, args.steps
        );
        conf.note = format!(
            "{events} events, {:.0} events/s, {:.1} MB of trace",
            events as f64 / conf.seconds.max(1e-9),
            bytes as f64 / 1e6
        );
        lin.note = format!("{ops} operations");
        live.note = "leader within 2000 ms, answers within 3000 ms".into();
        [
            ("simulation (online checks)", sim),
            ("conformance (trace replay)", conf),
            ("linearizability", lin),
            ("liveness after GST", live),
        ]
    }
}

/// Simulates every seed of the sweep and replays its trace against the specification;
/// with an injected bug, stops at the first seed on which a check fails.
fn simulate_seeds(args: &VerifyArgs, failures: &mut Vec<String>) -> Result<SeedRows> {
    let mut rows = SeedRows::default();
    let opts = Options::default();
    let bar = crate::progress::bar(args.seeds, "seeds", args.quiet || args.json);
    for seed in args.first_seed..args.first_seed + args.seeds {
        bar.set_message(format!("seed {seed}: simulating and replaying"));
        let cfg = SimConfig {
            seed,
            nodes: args.nodes,
            steps: args.steps,
            gst: args.gst,
            #[cfg(feature = "bugs")]
            bug: args.bug,
            ..SimConfig::default()
        };
        #[cfg(feature = "bugs")]
        let failures_before = failures.len();
        let r = simulate_and_conform(&cfg, &opts)?;
        bar.inc(1);
        let repro = format!(
            "physalia simulate --seed {seed} --nodes {} --steps {} --trace-out DIR && physalia conform DIR",
            args.nodes, args.steps
        );
        rows.record(seed, &r, &repro, failures);
        #[cfg(feature = "bugs")]
        if args.bug.is_some() && failures.len() > failures_before {
            bar.finish_and_clear();
            let line = detection(seed, seed - args.first_seed + 1, &r);
            if !args.json {
                println!("{line}");
            }
            rows.detected = Some(line);
            break;
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Whether the verification failed: a check failed, or a row ran nothing.
/// One JUnit case per row: failed when a run failed or the row ran nothing.
fn junit_cases(rows: &[(&str, Row)], failures: &[String]) -> Vec<crate::junit::Case> {
    use crate::junit::{Case, Status};
    rows.iter()
        .map(|(name, r)| {
            let status = if r.runs == 0 {
                Status::Failed("ran nothing".into())
            } else if r.failed() > 0 {
                Status::Failed(format!("{} of {} runs failed", r.failed(), r.runs))
            } else {
                Status::Passed
            };
            let mut detail = format!("{} runs, {} passed; {}", r.runs, r.passed, r.note);
            if matches!(status, Status::Failed(_)) && !failures.is_empty() {
                detail += &format!("\nfailures:\n{}", failures.join("\n"));
            }
            Case::new(*name, status).seconds(r.seconds).detail(detail)
        })
        .collect()
}

fn verdict_failed(rows: &[(&str, Row)]) -> bool {
    rows.iter().any(|(_, r)| r.failed() > 0 || r.runs == 0)
}

/// Prints the summary table and, if a check failed or a row ran nothing, the failures;
/// returns whether the verification failed.
fn print_summary(rows: &[(&str, Row)], failures: &[String]) -> bool {
    println!();
    println!(
        "{:<30} {:>5} {:>7} {:>7} {:>9}",
        "check", "runs", "passed", "failed", "time"
    );
    for (name, r) in rows {
        println!(
            "{:<30} {:>5} {:>7} {:>7} {:>7.1} s   {}",
            name,
            r.runs,
            r.passed,
            r.failed(),
            r.seconds,
            r.note
        );
    }
    let failed = verdict_failed(rows);
    if failed {
        println!("\nFAILURES:");
        for f in failures {
            println!("  {f}");
        }
        println!("verdict: FAILED");
    } else {
        println!("\nverdict: every check passed");
    }
    failed
}
