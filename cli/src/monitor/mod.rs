//! `physalia monitor`: conformance of a live cluster. It tails every node's trace files while
//! they are written, merges them by the rules of `conform` one event at a time
//! ([`physalia_traces::Follow`]), replays each event against the specification as it comes
//! ([`physalia_refinement::replay::Live`]) and reports each divergence the moment it is
//! found, with a periodic line of throughput and lag.
//!
//! Without `--follow` it reads what the files hold, reports, and exits: the same replay as
//! `conform` without the checks that need a finished history (linearizability, liveness).
//!
//! Bounds, each enforced where named: bytes read per file per poll ([`tail::READ_CHUNK`]), a
//! line being written ([`physalia_traces::MAX_LINE`]), events waiting to be ordered
//! (`--backlog`, [`physalia_traces::Follow`]), message ids and messages kept (`--window`,
//! in the follower and the replay), specification states (`--frontier-cap`), divergences
//! kept per cell ([`MAX_KEPT`]), one metrics connection at a time with 2 s timeouts.

mod metrics;
mod tail;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use clap::Args;
use physalia_refinement::replay::{Divergence, Live, Options, DEFAULT_WINDOW};
use physalia_traces::Follow;
use serde_json::{json, Value};

use tail::CellFiles;

/// The default of `--backlog`: events read and waiting to be ordered, per cell.
pub const DEFAULT_BACKLOG: usize = 200_000;

/// A node's share of `--backlog`: reading its files pauses once `backlog / HOLD_SHARES` of
/// its events wait to be ordered.
pub const HOLD_SHARES: usize = 8;

/// Divergences kept per cell for the summary (each is also printed as it is found).
pub const MAX_KEPT: usize = 32;

/// Arguments of `physalia monitor`.
#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// A cluster directory (`physalia cluster up --trace`, `physalia nemesis`): follow the
    /// cells under DIR/traces.
    #[arg(long, value_name = "DIR", conflicts_with = "traces")]
    pub cluster: Option<PathBuf>,
    /// Trace directories: one cell's files (`*.jsonl`), or a directory of cells' directories
    /// (as a node's `--trace-dir` lays them out).
    #[arg(value_name = "TRACE_DIR", required_unless_present = "cluster")]
    pub traces: Vec<PathBuf>,
    /// Keep following the files as they grow (and cells and files that appear), until
    /// Ctrl-C or `--seconds`; without it, check what the files hold and exit.
    #[arg(long)]
    pub follow: bool,
    /// Stop following after this many seconds.
    #[arg(long, value_name = "S", requires = "follow")]
    pub seconds: Option<f64>,
    /// Seconds between two status lines (events/s, lag, cells followed).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub interval: f64,
    /// Milliseconds between two polls of the files.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub poll_ms: u64,
    /// Report an event that waited this many seconds for an event that never came (the
    /// send of the message it receives: is a node's directory not followed?).
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub stall: f64,
    /// Serve the monitor's own metrics, in Prometheus text format, at this address
    /// (`127.0.0.1:0` picks a port; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Print JSON Lines: one document per divergence, status and summary.
    #[arg(long)]
    pub json: bool,
    /// Most specification states kept in a cell's replay frontier.
    #[arg(long, value_name = "N", default_value_t = Options::default().frontier_cap)]
    pub frontier_cap: usize,
    /// Message ids (and sent messages) kept per cell to check receives against.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WINDOW)]
    pub window: usize,
    /// Most events read and waiting to be ordered, per cell.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG)]
    pub backlog: usize,
}

/// How a cell's following ended, if it did.
#[derive(Clone, Debug, PartialEq)]
enum End {
    /// The replay stopped after a divergence (and its consequences).
    Diverged,
    /// The files cannot be used (unreadable, malformed, do not merge).
    Unusable(String),
    /// The replay cannot decide (frontier cap, a message older than the window).
    Inconclusive(String),
}

/// One cell being followed.
struct Cell {
    name: String,
    files: CellFiles,
    follow: Follow,
    live: Option<Live>,
    end: Option<End>,
    divergences: usize,
    kept: Vec<Value>,
    last_progress: Instant,
}

/// Counters over one status interval.
#[derive(Default)]
struct Interval {
    events: u64,
    delay_ms_sum: u64,
    delay_ms_max: u64,
}

/// The monitor's state across polls.
struct Monitor<'a> {
    args: &'a MonitorArgs,
    opts: Options,
    roots: Vec<PathBuf>,
    cells: BTreeMap<PathBuf, Cell>,
    interval: Interval,
    events_total: u64,
    started: Instant,
    metrics: Option<metrics::Shared>,
}

/// Runs `physalia monitor`: exit 0 when no divergence was found, 1 when one was, 2 when a
/// cell's trace cannot be used or checked (and no divergence was found).
pub fn run(args: &MonitorArgs) -> Result<u8> {
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        bail!("--interval must be a positive number of seconds");
    }
    if !(args.stall > 0.0 && args.stall.is_finite()) {
        bail!("--stall must be a positive number of seconds");
    }
    if let Some(s) = args.seconds {
        if !(s >= 0.0 && s.is_finite()) {
            bail!("--seconds must be a number of seconds");
        }
        seconds(s, "--seconds")?;
    }
    seconds(args.interval, "--interval")?;
    seconds(args.stall, "--stall")?;
    let roots = match &args.cluster {
        Some(dir) => {
            if !dir.join("cluster.json").is_file() {
                bail!(
                    "{}: not a cluster directory (no cluster.json; `physalia cluster up --trace` makes one)",
                    dir.display()
                );
            }
            vec![dir.join("traces")]
        }
        None => args.traces.clone(),
    };
    for r in &roots {
        if !args.follow && !r.exists() {
            bail!("{}: no such directory", r.display());
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    let metrics = match &args.metrics {
        Some(addr) => {
            let (shared, bound) = metrics::serve(addr)?;
            if !args.json {
                println!("monitor: metrics at http://{bound}/metrics");
            } else {
                line(json!({ "type": "metrics", "address": bound.to_string() }))?;
            }
            Some(shared)
        }
        None => None,
    };
    let mut m = Monitor {
        args,
        opts: Options {
            frontier_cap: args.frontier_cap,
            ..Options::default()
        },
        roots,
        cells: BTreeMap::new(),
        interval: Interval::default(),
        events_total: 0,
        started: Instant::now(),
        metrics,
    };
    m.run(&stop)
}

impl Monitor<'_> {
    fn run(&mut self, stop: &AtomicBool) -> Result<u8> {
        let poll = Duration::from_millis(self.args.poll_ms.max(1));
        let interval = seconds(self.args.interval, "--interval")?;
        let deadline = self
            .args
            .seconds
            .map(|s| seconds(s, "--seconds"))
            .transpose()?;
        let mut last_status = Instant::now();
        let mut announced = 0;
        loop {
            let progress = self.poll_all(&mut announced)?;
            if !self.args.follow && !progress {
                break;
            }
            if self.args.follow {
                if stop.load(Ordering::Relaxed)
                    || deadline.is_some_and(|d| self.started.elapsed() >= d)
                {
                    // What the nodes wrote before the stop is read and replayed first
                    // (bounded: STOP_CATCH_UP).
                    let until = Instant::now() + STOP_CATCH_UP;
                    while Instant::now() < until && self.poll_all(&mut announced)? {}
                    break;
                }
                if last_status.elapsed() >= interval {
                    self.status(last_status.elapsed())?;
                    last_status = Instant::now();
                }
                if !progress {
                    std::thread::sleep(poll);
                }
            }
        }
        if !self.args.follow {
            self.end_of_input()?;
            if self.cells.is_empty() {
                bail!("no trace file found under {}", self.roots_text());
            }
        }
        self.publish();
        self.summary()
    }

    /// One poll of every cell (discovering new ones); whether anything was read or
    /// replayed.
    fn poll_all(&mut self, announced: &mut usize) -> Result<bool> {
        self.discover()?;
        if self.cells.len() != *announced {
            *announced = self.cells.len();
            self.announce()?;
        }
        let mut progress = false;
        let names: Vec<PathBuf> = self.cells.keys().cloned().collect();
        for dir in names {
            progress |= self.poll(&dir)?;
        }
        self.publish();
        Ok(progress)
    }

    fn roots_text(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Finds the cells under the roots: a root holding `.jsonl` files is a cell, and so is
    /// each of its subdirectories that holds some.
    fn discover(&mut self) -> Result<()> {
        for root in &self.roots {
            let mut dirs = vec![root.clone()];
            if let Ok(entries) = std::fs::read_dir(root) {
                let mut subs: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect();
                subs.sort();
                dirs.extend(subs);
            } else if root.is_file() {
                bail!(
                    "{}: give the directory of the trace files, not a file",
                    root.display()
                );
            }
            for dir in dirs {
                if self.cells.contains_key(&dir) {
                    continue;
                }
                let has = tail::list(&dir).map(|l| !l.is_empty()).unwrap_or(false);
                if has {
                    let cell = Cell {
                        name: dir.display().to_string(),
                        files: CellFiles::new(dir.clone()),
                        follow: Follow::new(self.args.backlog, self.args.window),
                        live: None,
                        end: None,
                        divergences: 0,
                        kept: Vec::new(),
                        last_progress: Instant::now(),
                    };
                    self.cells.insert(dir, cell);
                }
            }
        }
        Ok(())
    }

    fn announce(&self) -> Result<()> {
        let names: Vec<&str> = self.cells.values().map(|c| c.name.as_str()).collect();
        if self.args.json {
            line(json!({ "type": "cells", "cells": names, "follow": self.args.follow }))
        } else {
            println!(
                "monitor: {} {} cell(s): {}",
                if self.args.follow {
                    "following"
                } else {
                    "checking"
                },
                names.len(),
                names.join(", ")
            );
            Ok(())
        }
    }

    /// One poll of one cell: read, order, replay. Returns whether anything was read or
    /// replayed.
    fn poll(&mut self, dir: &Path) -> Result<bool> {
        let hold = (self.args.backlog / HOLD_SHARES).max(1);
        let cell = self.cells.get_mut(dir).expect("discovered");
        if cell.end.is_some() {
            return Ok(false);
        }
        let read = match cell.files.poll(&mut cell.follow, hold) {
            Ok(n) => n,
            Err(e) => {
                self.end(dir, End::Unusable(e.to_string()))?;
                return Ok(false);
            }
        };
        if read > 0 {
            cell.last_progress = Instant::now();
        }
        let replayed = self.drain(dir)?;
        let stall = seconds(self.args.stall, "--stall")?;
        let cell = self.cells.get_mut(dir).expect("discovered");
        if cell.end.is_none() && cell.follow.waiting() >= cell.follow.backlog() {
            // Reading stops at the bound; full after replaying what was ready: stuck.
            let why = format!(
                "{} events wait to be ordered, the bound (--backlog); the oldest: {}",
                cell.follow.waiting(),
                cell.follow.stuck()
            );
            self.end(dir, End::Unusable(why))?;
            return Ok(read > 0 || replayed > 0);
        }
        if self.args.follow
            && cell.end.is_none()
            && cell.follow.waiting() > 0
            && cell.last_progress.elapsed() >= stall
        {
            let e = cell.follow.stuck();
            let why = format!(
                "{e} (nothing read or replayed for {:.0} s)",
                self.args.stall
            );
            self.end(dir, End::Unusable(why))?;
        }
        Ok(read > 0 || replayed > 0)
    }

    /// Replays every event of `dir` that is ready; how many.
    fn drain(&mut self, dir: &Path) -> Result<u64> {
        let mut replayed = 0;
        loop {
            let cell = self.cells.get_mut(dir).expect("discovered");
            if cell.end.is_some() {
                return Ok(replayed);
            }
            let ev = match cell.follow.next_ready() {
                Ok(Some(ev)) => ev,
                Ok(None) => return Ok(replayed),
                Err(e) => {
                    self.end(dir, End::Unusable(e.to_string()))?;
                    return Ok(replayed);
                }
            };
            replayed += 1;
            cell.last_progress = Instant::now();
            if cell.live.is_none() {
                let header = cell
                    .follow
                    .header()
                    .expect("a file's header precedes its events");
                cell.live = Some(Live::new(header, &self.opts, self.args.window));
            }
            let live = cell.live.as_mut().expect("just made");
            let found = live.push(&ev);
            let stopped = live.stopped();
            let delay = now_ms().saturating_sub(ev.event.now);
            self.interval.events += 1;
            self.interval.delay_ms_sum = self.interval.delay_ms_sum.saturating_add(delay);
            self.interval.delay_ms_max = self.interval.delay_ms_max.max(delay);
            self.events_total += 1;
            for d in found {
                self.report(dir, &d)?;
            }
            if stopped {
                let cell = self.cells.get_mut(dir).expect("discovered");
                let why = match cell.kept.last() {
                    _ if cell.divergences > 0 => End::Diverged,
                    Some(v) => End::Inconclusive(v["why"].as_str().unwrap_or("").to_owned()),
                    None => End::Inconclusive("the replay stopped".into()),
                };
                self.end(dir, why)?;
                return Ok(replayed);
            }
        }
    }

    /// At the end of the files (without `--follow`): every incarnation is complete.
    fn end_of_input(&mut self) -> Result<()> {
        let dirs: Vec<PathBuf> = self.cells.keys().cloned().collect();
        for dir in dirs {
            let cell = self.cells.get_mut(&dir).expect("discovered");
            if cell.end.is_some() {
                continue;
            }
            if let Err(e) = cell.files.end_of_input(&mut cell.follow) {
                self.end(&dir, End::Unusable(e.to_string()))?;
                continue;
            }
            cell.follow.end_of_input();
            self.drain(&dir)?;
            let cell = self.cells.get_mut(&dir).expect("discovered");
            if cell.end.is_some() {
                continue;
            }
            if let Some(e) = cell.follow.leftover() {
                self.end(&dir, End::Unusable(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Prints a divergence (or a reason the replay cannot go on) of cell `dir`.
    fn report(&mut self, dir: &Path, d: &Divergence) -> Result<()> {
        let cell = self.cells.get_mut(dir).expect("discovered");
        let mut v = serde_json::to_value(d)?;
        v["cell"] = json!(cell.name);
        if d.is_divergence() {
            cell.divergences += 1;
        } else {
            v["why"] = json!(why_inconclusive(d));
        }
        if cell.kept.len() < MAX_KEPT {
            cell.kept.push(v.clone());
        }
        if self.args.json {
            v["type"] = json!(if d.is_divergence() {
                "divergence"
            } else {
                "inconclusive"
            });
            return line(v);
        }
        print_divergence(&cell.name, d);
        Ok(())
    }

    /// Ends the following of cell `dir`, saying why.
    fn end(&mut self, dir: &Path, end: End) -> Result<()> {
        let cell = self.cells.get_mut(dir).expect("discovered");
        let text = match &end {
            End::Diverged => None,
            End::Unusable(why) => Some(("unusable", why.clone())),
            End::Inconclusive(why) => Some(("inconclusive", why.clone())),
        };
        cell.end = Some(end);
        if let Some((kind, why)) = text {
            if self.args.json {
                line(json!({ "type": kind, "cell": cell.name, "why": why }))?;
            } else {
                println!(
                    "monitor: cell {} no longer followed ({kind}): {why}",
                    cell.name
                );
            }
        } else if !self.args.json {
            println!(
                "monitor: cell {} no longer replayed: it diverged (its other cells go on)",
                cell.name
            );
        }
        Ok(())
    }

    /// The periodic status line.
    fn status(&mut self, over: Duration) -> Result<()> {
        let iv = std::mem::take(&mut self.interval);
        let rate = iv.events as f64 / over.as_secs_f64().max(1e-9);
        let waiting: usize = self.cells.values().map(|c| c.follow.waiting()).sum();
        let followed = self.cells.values().filter(|c| c.end.is_none()).count();
        let divergences: usize = self.cells.values().map(|c| c.divergences).sum();
        let files: usize = self.cells.values().map(|c| c.files.files()).sum();
        let mean = iv.delay_ms_sum.checked_div(iv.events).unwrap_or(0);
        if let Some(m) = &self.metrics {
            m.set_lag(iv.delay_ms_max as f64 / 1000.0);
        }
        if self.args.json {
            return line(json!({
                "type": "status",
                "seconds": self.started.elapsed().as_secs_f64(),
                "events_per_second": rate,
                "events": self.events_total,
                "waiting": waiting,
                "lag_ms_mean": mean,
                "lag_ms_max": iv.delay_ms_max,
                "cells_followed": followed,
                "cells": self.cells.len(),
                "files": files,
                "divergences": divergences,
            }));
        }
        println!(
            "monitor: {:>8.0} events/s, {} events replayed, lag {} ms (max {} ms), {} waiting, {followed}/{} cells followed, {files} files, {divergences} divergence(s)",
            rate,
            self.events_total,
            mean,
            iv.delay_ms_max,
            waiting,
            self.cells.len(),
        );
        Ok(())
    }

    /// Updates the metrics served, if any.
    fn publish(&self) {
        let Some(m) = &self.metrics else {
            return;
        };
        let cells = self
            .cells
            .values()
            .map(|c| metrics::CellSample {
                cell: c.name.clone(),
                events: c.live.as_ref().map_or(0, |l| l.events() as u64),
                divergences: c.divergences as u64,
                waiting: c.follow.waiting() as u64,
                frontier: c.live.as_ref().map_or(0, |l| l.frontier() as u64),
                files: c.files.files() as u64,
                bytes: c.files.bytes(),
                followed: c.end.is_none(),
            })
            .collect();
        m.set_cells(cells);
    }

    /// The final summary and the exit code.
    fn summary(&self) -> Result<u8> {
        let divergences: usize = self.cells.values().map(|c| c.divergences).sum();
        let undecided = self
            .cells
            .values()
            .filter(|c| matches!(c.end, Some(End::Unusable(_) | End::Inconclusive(_))))
            .count();
        let verdict = if divergences > 0 {
            "diverged"
        } else if undecided > 0 {
            "undecided"
        } else {
            "conforms"
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let cells: Vec<Value> = self
            .cells
            .values()
            .map(|c| {
                let (matched, frontier_max, crashes) = c.live.as_ref().map_or((0, 0, 0), |l| {
                    let r = l.report();
                    (r.matched, r.frontier_max, r.silent_crashes)
                });
                json!({
                    "cell": c.name,
                    "events": c.live.as_ref().map_or(0, |l| l.events()),
                    "matched": matched,
                    "frontier_max": frontier_max,
                    "silent_crashes": crashes,
                    "files": c.files.files(),
                    "bytes": c.files.bytes(),
                    "waiting": c.follow.waiting(),
                    "divergences": c.divergences,
                    "end": match &c.end {
                        None => json!(null),
                        Some(End::Diverged) => json!("diverged"),
                        Some(End::Unusable(w)) => json!({ "unusable": w }),
                        Some(End::Inconclusive(w)) => json!({ "inconclusive": w }),
                    },
                    "found": c.kept,
                })
            })
            .collect();
        if self.args.json {
            line(json!({
                "type": "summary",
                "verdict": verdict,
                "seconds": seconds,
                "events": self.events_total,
                "events_per_second": self.events_total as f64 / seconds.max(1e-9),
                "divergences": divergences,
                "cells": cells,
            }))?;
        } else {
            println!(
                "monitor: {} events replayed in {seconds:.1} s ({:.0} events/s) over {} cell(s)",
                self.events_total,
                self.events_total as f64 / seconds.max(1e-9),
                self.cells.len()
            );
            for c in &cells {
                println!(
                    "  {}: {} events, {} matched, frontier ≤ {}, {} divergence(s){}",
                    c["cell"].as_str().unwrap_or(""),
                    c["events"],
                    c["matched"],
                    c["frontier_max"],
                    c["divergences"],
                    match &c["end"] {
                        Value::Null => String::new(),
                        Value::String(s) => format!(" ({s})"),
                        other => format!(" ({})", other.to_string().trim_matches(['{', '}'])),
                    }
                );
            }
            println!(
                "verdict: {}",
                match verdict {
                    "diverged" => format!("DIVERGED ({divergences} divergence(s))"),
                    "undecided" => format!(
                        "UNDECIDED ({undecided} cell(s) could not be checked to the end: exit 2)"
                    ),
                    _ => "CONFORMS (every event replayed was allowed by the specification)"
                        .to_owned(),
                }
            );
        }
        Ok(match verdict {
            "diverged" => 1,
            "undecided" => 2,
            _ => 0,
        })
    }
}

/// How long the monitor goes on reading after Ctrl-C, SIGTERM or `--seconds`, while the
/// files still hold lines it has not replayed.
const STOP_CATCH_UP: Duration = Duration::from_secs(10);

/// `s` seconds as a duration, or an error naming the option.
fn seconds(s: f64, option: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("{option}: {s} is not a number of seconds this can wait"))
}

/// Why an event cannot be checked, in words.
fn why_inconclusive(d: &Divergence) -> String {
    match d {
        Divergence::Beyond { file, line, id, window } => format!(
            "{file}:{line}: delivers message {id}, sent more than {window} messages earlier (raise --window)"
        ),
        Divergence::Failure(f) => format!(
            "{}:{}: {} ({})",
            f.file,
            f.line,
            f.check,
            f.disabled.clone().unwrap_or_default()
        ),
        Divergence::Consequence(_) => String::new(),
    }
}

/// Prints one divergence for a person.
fn print_divergence(cell: &str, d: &Divergence) {
    match d {
        Divergence::Failure(f) if d.is_divergence() => {
            println!();
            println!(
                "DIVERGENCE in cell {cell} at event {} ({}:{}), {}: {}",
                f.index, f.file, f.line, f.node, f.event
            );
            println!("  check failed: {}", f.check);
            if let Some(why) = &f.disabled {
                println!("  why: {why}");
            }
            if !f.findings.is_empty() {
                println!("  what the specification allows vs what the node logged:");
                for x in &f.findings {
                    println!("    {}:", x.field);
                    println!("      allowed: {}", x.allowed);
                    println!("      logged:  {}", x.logged);
                }
            }
            for v in &f.violations {
                println!("  safety property `{}` broken: {}", v.property, v.detail);
            }
            println!("  enabled at {} before the event:", f.node);
            for e in &f.enabled {
                println!("    - {e}");
            }
            println!();
        }
        Divergence::Consequence(c) => {
            for v in &c.violations {
                println!(
                    "  then at event {} ({}:{}), {}: {}: `{}` broken: {}",
                    c.index, c.file, c.line, c.node, c.event, v.property, v.detail
                );
            }
        }
        other => println!(
            "monitor: cell {cell}: cannot check on: {}",
            why_inconclusive(other)
        ),
    }
}

/// Prints one JSON Lines document.
fn line(mut v: Value) -> Result<()> {
    if let Value::Object(m) = &mut v {
        m.insert("schema".into(), json!("physalia-monitor"));
    }
    let doc = crate::output::stamp("physalia-monitor", v);
    crate::output::emit(&format!("{}\n", serde_json::to_string(&doc)?))
}

/// Wall-clock ms since the Unix epoch (the clock of the events' `now`).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sets `stop` on Ctrl-C or SIGTERM.
fn watch_signals(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}
