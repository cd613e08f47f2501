//! `physalia verify`: the workbench's main job on built-in defaults. Model-check the default
//! configuration, simulate a set of seeds of a 7-node cell under faults, replay every trace
//! against the specification, check linearizability and bounded liveness, and print one
//! summary table.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use physalia_impl::sim::SimConfig;
use physalia_model::check::{self, CheckOptions, Strategy};
use physalia_model::{CellConfig, CellModel};
use physalia_refinement::replay::Options;

use crate::shard::{Counts, Failure, Shard, ShardResult, Sweep};
use crate::sweep::{simulate_and_conform, SeedRun};

/// Arguments of `physalia verify`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
#[command(group(clap::ArgGroup::new("sharded").args(["shard", "shards"])))]
pub struct VerifyArgs {
    /// `merge`: combine the results of a sharded sweep.
    #[command(subcommand)]
    pub command: Option<VerifyCommand>,
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
    /// Run only shard I of N of the sweep (seeds `first + k` with `k % N == I`; shard 0
    /// also runs the model check) and print its result (schema `physalia-verify-shard`) for
    /// `physalia verify merge`.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["shards", "json", "junit"])]
    pub shard: Option<String>,
    /// Run one shard of N, its index taken from the batch engine: $JOB_COMPLETION_INDEX (a
    /// Kubernetes Indexed Job) or $SLURM_ARRAY_TASK_ID (a Slurm job array).
    #[arg(long, value_name = "N", conflicts_with_all = ["json", "junit"])]
    pub shards: Option<u64>,
    /// Write a shard's result to this file instead of stdout.
    #[arg(long, value_name = "FILE", requires = "sharded")]
    pub out: Option<std::path::PathBuf>,
    /// Skip the model check (simulation and trace checks only: the large sweep).
    #[arg(long)]
    pub skip_model: bool,
    /// Run every replica with this injected bug (a build with `--features bugs` only) and
    /// stop at the first seed on which a check fails, saying which checks caught it (not
    /// with a sharded sweep: each shard would stop at its own first failing seed).
    #[cfg(feature = "bugs")]
    #[arg(long, value_name = "NAME", conflicts_with = "sharded")]
    pub bug: Option<physalia_impl::bugs::Bug>,
}

/// `physalia verify merge`.
#[derive(clap::Subcommand, Debug)]
pub enum VerifyCommand {
    /// Combine the results of every shard of one sweep into the table a single run prints
    /// (exit 1 if a check failed; 2 if a shard is missing, duplicated, or of another sweep).
    Merge(MergeArgs),
}

/// Arguments of `physalia verify merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' result files.
    #[arg(value_name = "RESULT", required = true)]
    pub results: Vec<std::path::PathBuf>,
    /// Print one JSON document (schema `physalia-verify`) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the checks as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
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

    fn counts(&self) -> Counts {
        Counts {
            runs: self.runs,
            passed: self.passed,
            seconds: self.seconds,
        }
    }

    fn add(&mut self, c: &Counts) {
        self.runs += c.runs;
        self.passed += c.passed;
        self.seconds += c.seconds;
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

/// Runs `physalia verify` (or one shard of it, or `merge`); exit 0 if every check passed,
/// 1 otherwise.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    if let Some(VerifyCommand::Merge(m)) = &args.command {
        return merge(m);
    }
    if args.first_seed.checked_add(args.seeds).is_none() {
        anyhow::bail!(
            "--first-seed {} + --seeds {} overflows",
            args.first_seed,
            args.seeds
        );
    }
    let shard = match (&args.shard, args.shards) {
        (Some(s), _) => Some(Shard::parse(s)?),
        (None, Some(n)) => Some(Shard::from_env(n, |v| std::env::var(v).ok())?),
        (None, None) => None,
    };
    let whole = shard.unwrap_or(Shard::WHOLE);
    let mut rows: Vec<(&str, Row)> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    if !args.skip_model && whole.runs_model() {
        rows.push((
            MODEL_ROW,
            model_check(&mut failures, args.quiet || args.json || shard.is_some())?,
        ));
    }
    let seeds = simulate_seeds(args, whole, &mut failures)?;
    if let Some(shard) = shard {
        return write_shard(args, shard, rows.pop().map(|(_, r)| r), seeds, failures);
    }
    let detected = seeds.detected.clone();
    rows.extend(seeds.rows(args.nodes, args.gst, args.steps));
    report(&rows, &failures, detected, args.json, args.junit.as_deref())
}

/// The model check's row name.
const MODEL_ROW: &str = "model check (default config)";

/// Prints the verification's outcome (table or JSON, and JUnit if asked); 1 if it failed.
fn report(
    rows: &[(&str, Row)],
    failures: &[Failure],
    detected: Option<String>,
    json: bool,
    junit: Option<&std::path::Path>,
) -> Result<u8> {
    let failures: Vec<String> = failures.iter().map(|f| f.text.clone()).collect();
    if let Some(path) = junit {
        crate::junit::write(path, "verify", &junit_cases(rows, &failures))?;
    }
    if json {
        let failed = verdict_failed(rows);
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
    let failed = print_summary(rows, &failures);
    let _ = std::io::stdout().flush();
    Ok(u8::from(failed))
}

/// Writes one shard's result (to `--out`, or stdout); 1 if a check failed in it.
fn write_shard(
    args: &VerifyArgs,
    shard: Shard,
    model: Option<Row>,
    seeds: SeedRows,
    failures: Vec<Failure>,
) -> Result<u8> {
    let failed = !failures.is_empty() || model.as_ref().is_some_and(|m| m.failed() > 0);
    let result = ShardResult {
        schema: crate::shard::SCHEMA.into(),
        tool_version: crate::output::TOOL_VERSION.into(),
        shard,
        sweep: Sweep {
            seeds: args.seeds,
            first_seed: args.first_seed,
            steps: args.steps,
            nodes: args.nodes,
            gst: args.gst,
            skip_model: args.skip_model,
        },
        model: model.map(|m| (m.counts(), m.note)),
        rows: [
            seeds.sim.counts(),
            seeds.conf.counts(),
            seeds.lin.counts(),
            seeds.live.counts(),
        ],
        events: seeds.events,
        ops: seeds.ops,
        bytes: seeds.bytes,
        seeds_run: seeds.seeds_run,
        failures,
    };
    let text = serde_json::to_string_pretty(&result)? + "\n";
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => crate::output::emit(&text)?,
    }
    Ok(u8::from(failed))
}

/// The most bytes read of one shard result.
const MAX_RESULT_BYTES: u64 = 64 << 20;

/// `physalia verify merge`: the table of the whole sweep from its shards' results.
fn merge(m: &MergeArgs) -> Result<u8> {
    let mut results = Vec::new();
    for path in &m.results {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| {
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(f, MAX_RESULT_BYTES),
                    &mut text,
                )
            })
            .with_context(|| format!("reading {}", path.display()))?;
        let r: ShardResult = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a shard result of physalia verify",
                path.display()
            )
        })?;
        results.push((path.display().to_string(), r));
    }
    let shards = crate::shard::complete(results)?;
    let sweep = shards[0].sweep.clone();
    let mut rows: Vec<(&str, Row)> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let mut seeds = SeedRows::default();
    for r in &shards {
        if let Some((counts, note)) = &r.model {
            let mut row = Row {
                note: note.clone(),
                ..Row::default()
            };
            row.add(counts);
            rows.push((MODEL_ROW, row));
        }
        for (row, c) in [
            &mut seeds.sim,
            &mut seeds.conf,
            &mut seeds.lin,
            &mut seeds.live,
        ]
        .into_iter()
        .zip(&r.rows)
        {
            row.add(c);
        }
        seeds.events += r.events;
        seeds.ops += r.ops;
        seeds.bytes += r.bytes;
        failures.extend(r.failures.iter().cloned());
    }
    if !sweep.skip_model && rows.is_empty() {
        anyhow::bail!("no shard holds the model check (shard 0 runs it)");
    }
    // The order of a single run: the model check's failures, then by seed.
    failures.sort_by_key(|f| f.seed.map_or(0, |s| u128::from(s) + 1));
    rows.extend(seeds.rows(sweep.nodes, sweep.gst, sweep.steps));
    report(&rows, &failures, None, m.json, m.junit.as_deref())
}

/// Model-checks the default configuration (depth-first, with symmetry when it is exact)
/// and returns its row; the properties that fail are noted in `failures`.
fn model_check(failures: &mut Vec<Failure>, quiet: bool) -> Result<Row> {
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
        failures.push(Failure {
            seed: None,
            text: format!(
                "model check: {} (run `physalia check` for the counterexamples)",
                report
                    .properties
                    .iter()
                    .filter(|p| p.verdict.is_failure())
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
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
    /// The seeds run.
    seeds_run: Vec<u64>,
}

impl SeedRows {
    /// Counts one seed's run in each row; every check that failed on it is noted in
    /// `failures`, with `repro`, the commands that reproduce the seed.
    fn record(&mut self, seed: u64, r: &SeedRun, repro: &str, failures: &mut Vec<Failure>) {
        let mut fail = |text: String| {
            failures.push(Failure {
                seed: Some(seed),
                text,
            })
        };
        self.seeds_run.push(seed);
        self.events += r.conform.events;
        self.bytes += r.trace_bytes;
        self.sim.runs += 1;
        self.sim.seconds += r.sim_seconds;
        if r.sim.violations.is_empty() {
            self.sim.passed += 1;
        } else {
            let broken: Vec<String> = r.sim.violations.iter().map(ToString::to_string).collect();
            fail(format!(
                "seed {seed}: online checks: {} ({repro})",
                broken.join("; ")
            ));
        }
        self.conf.runs += 1;
        self.conf.seconds += r.conform.replay_seconds;
        match &r.conform.failure {
            None => self.conf.passed += 1,
            Some(f) => fail(format!(
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
                fail(format!(
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
                fail(format!(
                    "seed {seed}: liveness: {} ({repro})",
                    l.failures.join("; ")
                ));
            }
        }
    }

    /// The four rows, each with its note.
    fn rows(self, nodes: u32, gst: u64, steps: u64) -> [(&'static str, Row); 4] {
        let SeedRows {
            mut sim,
            mut conf,
            mut lin,
            mut live,
            events,
            ops,
            bytes,
            ..
        } = self;
        sim.note = format!("{nodes} nodes, faults until GST {gst} ms, {steps} events each");
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
fn simulate_seeds(
    args: &VerifyArgs,
    shard: Shard,
    failures: &mut Vec<Failure>,
) -> Result<SeedRows> {
    let mut rows = SeedRows::default();
    let opts = Options::default();
    let mine: Vec<u64> = shard.seeds(args.first_seed, args.seeds).collect();
    let bar = crate::progress::bar(mine.len() as u64, "seeds", args.quiet || args.json);
    for seed in mine {
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
