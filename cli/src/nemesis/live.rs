//! The live monitor during a nemesis run: a `physalia monitor --follow` child tails the
//! nodes' traces while the faults happen, and its verdict is one more check of the run
//! (a divergence is an anomaly; a trace it cannot check is "could not check"). Its JSON
//! Lines are kept in `DIR/monitor.jsonl`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value as Json};

/// How long the monitor has to finish its last poll and print its summary once told to
/// stop; then it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The monitor child; killed on drop if it was not stopped.
pub struct LiveMonitor {
    child: Option<Child>,
    out: PathBuf,
}

impl LiveMonitor {
    /// Starts `physalia monitor DIR/traces --follow --json`.
    pub fn start(dir: &Path) -> Result<LiveMonitor> {
        let exe = std::env::current_exe().context("cannot find the physalia binary")?;
        let out = dir.join("monitor.jsonl");
        let stdout =
            fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
        let stderr = fs::File::create(dir.join("logs").join("monitor.log"))?;
        let child = Command::new(exe)
            .arg("monitor")
            .arg(dir.join("traces"))
            .args(["--follow", "--json", "--interval", "5", "--stall", "60"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("cannot start physalia monitor")?;
        Ok(LiveMonitor {
            child: Some(child),
            out,
        })
    }

    /// Stops the monitor (SIGTERM: it polls once more, then prints its summary) once every
    /// node stopped, and returns what it printed.
    pub fn stop(mut self) -> Vec<Json> {
        if let Some(mut child) = self.child.take() {
            crate::cluster::signal(child.id(), "-TERM");
            let deadline = Instant::now() + STOP_GRACE;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for LiveMonitor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The monitor's check: its part of the report, anomalies and could-not-checks. `events`
/// gives, per cell (`c0`, ...), the events the batch replay counted, to compare.
pub fn check(
    docs: &[Json],
    events: &[(String, Json)],
    anomalies: &mut Vec<Json>,
    could_not: &mut Vec<String>,
) -> Json {
    for d in docs.iter().filter(|d| d["type"] == "divergence") {
        anomalies.push(json!({
            "check": "monitor",
            "cell": short(&d["cell"]),
            "what": format!(
                "{}: {} at {}:{} ({}), found live",
                short(&d["cell"]),
                d["check"].as_str().unwrap_or("?"),
                d["file"].as_str().unwrap_or("?"),
                d["line"],
                d["event"].as_str().unwrap_or("?")
            ),
        }));
    }
    for d in docs
        .iter()
        .filter(|d| d["type"] == "unusable" || d["type"] == "inconclusive")
    {
        could_not.push(format!(
            "monitor {}: {} ({})",
            short(&d["cell"]),
            d["type"].as_str().unwrap_or("?"),
            d["why"].as_str().unwrap_or("?")
        ));
    }
    let Some(summary) = docs.iter().find(|d| d["type"] == "summary") else {
        could_not.push("the live monitor printed no summary (see logs/monitor.log)".into());
        return json!({ "verdict": "none" });
    };
    let lag_max = docs
        .iter()
        .filter(|d| d["type"] == "status")
        .filter_map(|d| d["lag_ms_max"].as_u64())
        .max()
        .unwrap_or(0);
    let mut cells = Vec::new();
    for c in summary["cells"].as_array().cloned().unwrap_or_default() {
        let name = short(&c["cell"]);
        let batch = events
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e.clone())
            .unwrap_or(Json::Null);
        if batch.is_u64() && c["events"] != batch && c["divergences"] == 0 && c["end"].is_null() {
            could_not.push(format!(
                "monitor {name}: replayed {} events live, the batch replay {batch}",
                c["events"]
            ));
        }
        cells.push(json!({ "cell": name, "events": c["events"], "divergences": c["divergences"] }));
    }
    json!({
        "verdict": summary["verdict"],
        "events": summary["events"],
        "seconds": summary["seconds"],
        "lag_ms_max": lag_max,
        "cells": cells,
    })
}

/// `c0` from `/run/traces/c0`.
fn short(cell: &Json) -> String {
    let s = cell.as_str().unwrap_or("?");
    s.rsplit('/').next().unwrap_or(s).to_owned()
}
