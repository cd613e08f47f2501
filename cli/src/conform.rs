//! `physalia conform`: replay a recorded trace (one file, or the per-node files of one run)
//! against the specification, and check linearizability and bounded liveness on it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use physalia_refinement::history::LivenessBounds;
use physalia_refinement::replay::{self, Failure, Options, Report, MAPPING};

/// Arguments of `physalia conform`.
#[derive(Args, Debug)]
pub struct ConformArgs {
    /// Trace files (JSON Lines) of one run, or directories holding them (every `.jsonl`).
    #[arg(value_name = "TRACE", required_unless_present = "mapping")]
    pub traces: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// B₁: a distinguished proposer must exist within this many ms after GST.
    #[arg(long, default_value_t = LivenessBounds::default().leader_ms, value_name = "MS")]
    pub leader_bound: u64,
    /// B₂: every request first received after GST must be answered within this many ms.
    #[arg(long, default_value_t = LivenessBounds::default().answer_ms, value_name = "MS")]
    pub answer_bound: u64,
    /// Most specification states kept in the replay frontier.
    #[arg(long, default_value_t = Options::default().frontier_cap)]
    pub frontier_cap: usize,
    /// Print the mapping from trace event kinds to specification actions, and exit.
    #[arg(long)]
    pub mapping: bool,
    /// When the trace does not conform, write its shortest failing prefix into this
    /// directory, one file per node (`n0.jsonl`, ...), for a smaller reproduction.
    #[arg(long, value_name = "DIR")]
    pub save_prefix: Option<PathBuf>,
    /// Write the trace (when it does not conform, its shortest failing prefix) to this file
    /// in the ITF trace format (Apalache/Quint): per event, the event and every node's
    /// logged state (the last 10 000 events of a longer one).
    #[arg(long, value_name = "FILE")]
    pub itf: Option<PathBuf>,
    /// Also write the verdicts (replay and safety, linearizability, liveness) as JUnit XML
    /// to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

impl ConformArgs {
    fn options(&self) -> Options {
        Options {
            frontier_cap: self.frontier_cap,
            liveness: LivenessBounds {
                leader_ms: self.leader_bound,
                answer_ms: self.answer_bound,
            },
            ..Options::default()
        }
    }
}

/// Runs `physalia conform`: exit 0 if the trace conforms, 1 if it does not, 2 if it cannot
/// be used or the replay cannot decide (frontier cap, linearizability budget), with why.
pub fn run(args: &ConformArgs) -> Result<u8> {
    if args.mapping {
        print_mapping();
        return Ok(0);
    }
    let merged = match replay::load(&args.traces) {
        Ok(m) => m,
        Err(e) => {
            if let Some(path) = &args.junit {
                let case = crate::junit::Case::new(
                    "trace usable",
                    crate::junit::Status::Error(e.to_string()),
                );
                crate::junit::write(path, "conform", &[case])?;
            }
            if args.json {
                let v = serde_json::json!({ "verdict": "unusable", "error": e.to_string() });
                crate::output::print_json("physalia-conform", v)?;
            } else {
                eprintln!("error: the trace cannot be used: {e}");
            }
            return Ok(2);
        }
    };
    let report = replay::conform(&merged, &args.options());
    if let Some(path) = &args.junit {
        crate::junit::write(path, "conform", &junit_cases(&report))?;
    }
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["verdict"] = serde_json::json!(if report.conforms() {
            "conforms"
        } else if report.inconclusive().is_some() {
            "inconclusive"
        } else {
            "does not conform"
        });
        if let Some(why) = report.inconclusive() {
            v["inconclusive"] = serde_json::json!(why);
        }
        crate::output::print_json("physalia-conform", v)?;
    } else {
        let files: std::collections::BTreeSet<&str> =
            merged.events.iter().map(|l| l.file.as_str()).collect();
        print_report(&report, merged.header.config.members.len(), files.len());
    }
    if let Some(path) = &args.itf {
        let len = report
            .failure
            .as_ref()
            .map_or(merged.events.len(), |f| f.prefix_len);
        let what = if report.conforms() {
            "a conforming trace"
        } else if report.inconclusive().is_some() {
            "a trace the replay could not decide (inconclusive)"
        } else if report.failure.is_some() {
            "the shortest failing prefix: its last event is the one the specification refuses"
        } else {
            "a trace whose every step the specification allows, whose client history or \
             liveness fails"
        };
        crate::itf::write(path, &itf_trace(&merged, len, what))?;
    }
    if let (Some(dir), Some(f)) = (&args.save_prefix, &report.failure) {
        save_prefix(&merged, f.prefix_len, dir)?;
        if !args.json {
            println!(
                "shortest failing prefix written to {} (`physalia conform {}` reproduces the failure)",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(if report.conforms() {
        0
    } else if report.inconclusive().is_some() {
        2
    } else {
        1
    })
}

/// The first `len` events of `merged` as an ITF document: after each event, the event and
/// the state every node logged last (its incarnation, role, promise, ballot, commit index).
fn itf_trace(merged: &physalia_traces::Merged, len: usize, what: &str) -> serde_json::Value {
    use crate::itf::{int, map, tup};
    use serde_json::json;
    let ballot = |b: &physalia_traces::Ballot| tup(vec![int(b.round), int(b.node.0)]);
    let first = len.saturating_sub(crate::itf::MAX_STATES);
    let mut nodes: std::collections::BTreeMap<u32, serde_json::Value> = Default::default();
    let mut states = Vec::new();
    for (i, loc) in merged.events[..len].iter().enumerate() {
        let ev = &loc.event;
        nodes.insert(
            ev.node.0,
            json!({
                "inc": int(ev.inc), "now": int(ev.now), "role": ev.state.role.to_string(),
                "promised": ballot(&ev.state.promised), "ballot": ballot(&ev.state.ballot),
                "commit": int(ev.state.commit),
            }),
        );
        if i < first {
            continue;
        }
        let mut s = serde_json::Map::new();
        s.insert(
            "event".into(),
            json!({
                "index": int(i as u64), "file": loc.file, "line": int(loc.line as u64),
                "node": int(ev.node.0), "kind": ev.kind.to_string(),
            }),
        );
        let pairs = nodes.iter().map(|(n, v)| (int(*n), v.clone())).collect();
        s.insert("nodes".into(), map(pairs));
        states.push(s);
    }
    let description = if first > 0 {
        format!(
            "{what} (its last {} events, from event {first})",
            len - first
        )
    } else {
        what.to_owned()
    };
    crate::itf::document(
        &format!("physalia conform (cell {})", merged.header.cell),
        &description,
        &["event", "nodes"],
        states,
        first,
    )
}

/// The three verdicts of a replay as JUnit cases.
fn junit_cases(r: &physalia_refinement::replay::Report) -> Vec<crate::junit::Case> {
    use crate::junit::{Case, Status};
    let replay = match &r.failure {
        Some(f) if f.check == physalia_refinement::replay::FRONTIER_CAP => Case::new(
            "replay and safety",
            Status::Error(r.inconclusive().unwrap_or_default()),
        ),
        Some(f) => Case::new(
            "replay and safety",
            Status::Failed(format!(
                "{} at event {} ({}:{}, {} {})",
                f.check, f.index, f.file, f.line, f.node, f.event
            )),
        )
        .detail(format!(
            "{} of {} events matched; shortest failing prefix {} events",
            r.matched, r.events, f.prefix_len
        )),
        None if r.matched < r.events => Case::new(
            "replay and safety",
            Status::Failed(format!("{} of {} events matched", r.matched, r.events)),
        ),
        None => Case::new("replay and safety", Status::Passed)
            .detail(format!("{} events matched", r.events)),
    }
    .seconds(r.replay_seconds);
    let lin = match &r.linearizability {
        None => Case::new(
            "linearizability",
            Status::Skipped("not checked: the replay stopped first".into()),
        ),
        Some(l) if l.holds() => Case::new("linearizability", Status::Passed)
            .detail(format!("{} operations", l.operations)),
        Some(l) => {
            let status = if l.verdict == "undecided" {
                Status::Error(l.verdict.clone())
            } else {
                Status::Failed(l.verdict.clone())
            };
            let c = Case::new("linearizability", status);
            match &l.detail {
                Some(d) => c.detail(d.clone()),
                None => c,
            }
        }
    }
    .seconds(r.lin_seconds);
    let live = match &r.liveness {
        None if r.failure.is_some() => Case::new(
            "bounded liveness",
            Status::Skipped("not judged: the replay stopped first".into()),
        ),
        None => Case::new(
            "bounded liveness",
            Status::Skipped("not judged: the trace states no GST".into()),
        ),
        Some(l) if !l.judged() => Case::new(
            "bounded liveness",
            Status::Skipped("not judged: the trace ends before GST".into()),
        ),
        Some(l) if l.holds() => Case::new("bounded liveness", Status::Passed),
        Some(l) => Case::new("bounded liveness", Status::Failed(l.failures.join("; "))),
    };
    vec![replay, lin, live]
}

/// Writes the first `len` events of `merged` as per-node trace files in `dir`.
fn save_prefix(merged: &physalia_traces::Merged, len: usize, dir: &std::path::Path) -> Result<()> {
    use anyhow::Context;
    use std::collections::BTreeMap;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut writers = BTreeMap::new();
    for loc in &merged.events[..len.min(merged.events.len())] {
        let node = loc.event.node;
        let w = match writers.entry(node) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = dir.join(format!("n{}.jsonl", node.0));
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let w = physalia_traces::TraceWriter::new(
                    std::io::BufWriter::new(file),
                    &merged.header,
                )
                .with_context(|| format!("writing {}", path.display()))?;
                e.insert(w)
            }
        };
        w.write(&loc.event).context("writing the prefix")?;
    }
    for w in writers.values_mut() {
        w.flush().context("writing the prefix")?;
    }
    Ok(())
}

fn print_mapping() {
    println!("trace event kind → specification actions ([X]: unlogged, inserted only when the event is otherwise disabled)\n");
    for (kind, actions, cond) in MAPPING {
        println!("  {kind:<32} {actions}");
        if !cond.is_empty() {
            println!("  {:<32}   ({cond})", "");
        }
    }
}

/// Prints the human report.
pub fn print_report(r: &Report, nodes: usize, files: usize) {
    println!(
        "trace: cell {} ({nodes} nodes), {} events from {files} file{}",
        r.cell,
        r.events,
        if files == 1 { "" } else { "s" }
    );
    println!(
        "replay: {}/{} events matched in {:.3} s (frontier ≤ {}; unlogged actions inserted: {} crash(es), {} duplicate(s))",
        r.matched, r.events, r.replay_seconds, r.frontier_max, r.silent_crashes, r.silent_duplicates
    );
    match &r.failure {
        None => println!(
            "safety: agreement, committed prefix, validity, promise monotonic, durability, applied in slot order held on every replayed state"
        ),
        Some(f) => print_failure(r, f),
    }
    print_linearizability(r);
    print_liveness(r);
    if r.unacknowledged_at_end > 0 {
        println!(
            "note: {} held message(s) never left their sender: the write each waits for was not acknowledged before the trace ends (or the sender crashed first)",
            r.unacknowledged_at_end
        );
    }
    println!(
        "verdict: {}",
        if r.conforms() {
            "CONFORMS".to_owned()
        } else if let Some(why) = r.inconclusive() {
            format!("INCONCLUSIVE ({why}; not a verdict on the trace: exit 2)")
        } else {
            format!(
                "DOES NOT CONFORM ({})",
                r.failed_check().unwrap_or_default()
            )
        }
    );
    let _ = std::io::stdout().flush();
}

/// Prints where the replay failed: the event, the check, what the specification allowed
/// against what the node logged, the shortest failing prefix, and what the divergence
/// leads to when the replay goes on from what the node logged.
fn print_failure(r: &Report, f: &Failure) {
    println!();
    println!(
        "FAILED at event {} ({}:{}), {}: {}",
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
    println!(
        "  shortest failing prefix: the first {} events of the merged trace",
        f.prefix_len
    );
    if !r.consequences.is_empty() {
        println!("  replaying on from what the node logged, the divergence leads to:");
        // One line per event and property (the first instance, and how many more), at most
        // `SHOWN` events: a wrong value re-chosen at every slot is one finding, not 64.
        const SHOWN: usize = 12;
        for c in r.consequences.iter().take(SHOWN) {
            let mut seen: Vec<(&str, &str, usize)> = Vec::new();
            for v in &c.violations {
                match seen.iter_mut().find(|(p, _, _)| *p == v.property) {
                    Some(entry) => entry.2 += 1,
                    None => seen.push((v.property, v.detail.as_str(), 0)),
                }
            }
            for (property, detail, more) in seen {
                let more = match more {
                    0 => String::new(),
                    1 => " (and 1 more like it at this event)".to_owned(),
                    n => format!(" (and {n} more like it at this event)"),
                };
                println!(
                    "    event {} ({}:{}), {}: {}: `{property}` broken: {detail}{more}",
                    c.index, c.file, c.line, c.node, c.event
                );
            }
        }
        if r.consequences.len() > SHOWN {
            let rest = &r.consequences[SHOWN..];
            let breaks: usize = rest.iter().map(|c| c.violations.len()).sum();
            println!(
                "    … and {breaks} more broken properties at {} later events (`--json` lists them all)",
                rest.len()
            );
        }
    }
}

/// Prints the linearizability verdict on the trace's client history, if it was checked.
fn print_linearizability(r: &Report) {
    if let Some(l) = &r.linearizability {
        println!(
            "linearizability: {} operations, {} ({:.3} s){}",
            l.operations,
            l.verdict,
            r.lin_seconds,
            l.detail
                .as_ref()
                .map(|d| format!("\n  {d}"))
                .unwrap_or_default()
        );
    }
}

/// Prints the bounded liveness verdict after GST (a distinguished proposer within B₁,
/// every request answered within B₂), or why it was not checked.
fn print_liveness(r: &Report) {
    match &r.liveness {
        Some(l) if !l.judged() => println!(
            "liveness: not judged: the trace ends at {} ms, before GST ({} ms)",
            l.trace_end, l.gst
        ),
        Some(l) => {
            println!(
                "liveness after GST {} ms: leader {} (bound {} ms); {} request(s) answered, slowest {} ms (bound {} ms); {} too late in the trace to judge",
                l.gst,
                l.leader_after_ms.map_or("never seen".into(), |t| format!("after {t} ms")),
                l.bounds.leader_ms,
                l.requests_checked,
                l.slowest_answer_ms,
                l.bounds.answer_ms,
                l.undecided
            );
            for f in &l.failures {
                println!("  {f}");
            }
        }
        None if r.failure.is_none() => println!("liveness: not checked (the trace states no GST)"),
        None => {}
    }
}
