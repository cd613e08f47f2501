//! The suites of `physalia bench --suite` beside the node's parts: the model checker, TLC,
//! trace replay, the linearizability checker and the simulator. Each prints absolute
//! figures and, where a baseline exists, the ratio measured in the same run; none asserts a
//! threshold (the targets are compared in [`super::targets`]).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use physalia_impl::sim::{run as simulate, SimConfig};
use physalia_refinement::linearizability::{check_with, synth, Options as LinOptions, Verdict};
use physalia_refinement::replay::{conform, Options as ReplayOptions};
use physalia_traces::{merge, read_str, TraceLayer, TraceWriter};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

use super::{say, BenchArgs};

/// Runs this binary with `args` and reads the JSON document it prints.
fn own_json(what: &str, args: &[&str]) -> Result<(Value, f64)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let out = Command::new(exe)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `physalia {}`", args.join(" ")))?;
    let secs = started.elapsed().as_secs_f64();
    let v: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{what}: `physalia {}` printed no JSON document (exit {:?}): {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok((v, secs))
}

/// `model`: the stateright model on the default (CI) configuration of `physalia check`.
pub(super) fn model(args: &BenchArgs) -> Result<Value> {
    let (v, wall) = own_json("model", &["check", "--json", "--quiet"])?;
    if v["ok"] != json!(true) {
        bail!("model: the default configuration did not pass: {v}");
    }
    let unique = v["unique_states"].as_u64().unwrap_or(0);
    let secs = v["seconds"].as_f64().unwrap_or(wall);
    let rate = unique as f64 / secs.max(1e-9);
    say(
        args,
        &format!(
            "model: default configuration: {unique} unique states ({} generated), depth {}, {secs:.1} s, {rate:.0} unique states/s",
            v["generated_states"], v["max_depth"]
        ),
    );
    Ok(json!({
        "configuration": v["config"], "unique_states": unique,
        "generated_states": v["generated_states"], "max_depth": v["max_depth"],
        "seconds": secs, "unique_states_per_s": rate,
    }))
}

/// `tla`: TLC on the `safety` configuration of `tla/configs.txt`.
pub(super) fn tla(args: &BenchArgs) -> Result<Value> {
    let (v, _) = own_json(
        "tla",
        &["tla", "check", "--config", "safety", "--json", "--quiet"],
    )?;
    let c = &v["configurations"][0];
    if c["ok"] != json!(true) {
        bail!("tla: TLC's verdict on `safety` is not the expected one: {c}");
    }
    let distinct = c["distinct_states"].as_u64().unwrap_or(0);
    let secs = c["seconds"].as_f64().unwrap_or(0.0);
    let rate = distinct as f64 / secs.max(1e-9);
    say(
        args,
        &format!(
            "tla: TLC on `safety` ({} {}): {distinct} distinct states ({} generated), {secs:.1} s wall (JVM start included), {rate:.0} distinct states/s",
            c["module"].as_str().unwrap_or("?"),
            c["cfg"].as_str().unwrap_or("?"),
            c["states_generated"]
        ),
    );
    Ok(json!({
        "configuration": "safety", "module": c["module"], "cfg": c["cfg"],
        "distinct_states": distinct, "states_generated": c["states_generated"],
        "seconds": secs, "tlc_time": c["tlc_time"], "distinct_states_per_s": rate,
    }))
}

/// A simulated 7-node run under faults with its trace recorded in memory (`on`), or
/// untraced; returns the report, the trace text (empty when untraced) and the seconds.
fn simulated(cfg: &SimConfig, traced: bool) -> (physalia_impl::sim::SimReport, String, f64) {
    if !traced {
        let t = Instant::now();
        let report = simulate(cfg);
        return (report, String::new(), t.elapsed().as_secs_f64());
    }
    let header = crate::simulate::sim_header(cfg);
    let writer = TraceWriter::new(Vec::new(), &header).expect("writes to memory");
    let layer = TraceLayer::new(writer);
    let sink = layer.sink();
    let subscriber = tracing_subscriber::registry().with(layer);
    let t = Instant::now();
    let report = tracing::subscriber::with_default(subscriber, || simulate(cfg));
    let secs = t.elapsed().as_secs_f64();
    let bytes = {
        let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = TraceWriter::new(Vec::new(), &header).expect("writes to memory");
        std::mem::replace(&mut *w, fresh).into_inner()
    };
    (report, String::from_utf8_lossy(&bytes).into_owned(), secs)
}

/// `replay`: traces of 10⁴ events up to `--replay-events`, each read, merged and replayed
/// end to end; the rate of each size against the 10⁴-event rate of the same run (1.0 is
/// linear scaling).
pub(super) fn replay(args: &BenchArgs) -> Result<Value> {
    let mut rows = Vec::new();
    let mut base: Option<f64> = None;
    let mut target = 10_000u64;
    while target <= args.replay_events.max(10_000) {
        // About 0.62 core steps (trace events) per simulator event with every fault.
        let cfg = SimConfig {
            seed: 1,
            steps: target * 100 / 62,
            ..SimConfig::default()
        };
        let (_, text, _) = simulated(&cfg, true);
        let t = Instant::now();
        let file = read_str("bench.jsonl", &text).context("replay: reading the trace")?;
        let read_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let merged = merge(vec![file]).context("replay: merging the trace")?;
        let merge_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = conform(&merged, &ReplayOptions::default());
        let check_s = t.elapsed().as_secs_f64();
        if !report.conforms() {
            bail!(
                "replay: the clean simulated trace of {} events does not conform: {}",
                report.events,
                report.failure.as_ref().map_or_else(
                    || report.failed_check().unwrap_or_default(),
                    |f| format!(
                        "{} at event {} ({}): {:?}",
                        f.check, f.index, f.event, f.findings
                    )
                )
            );
        }
        let events = report.events as f64;
        let total = read_s + merge_s + check_s;
        let rate = events / total.max(1e-9);
        let ratio = rate / *base.get_or_insert(rate);
        let bytes_per_event = text.len() as f64 / events.max(1.0);
        say(args, &format!(
            "replay: {:>8} events, {bytes_per_event:.0} bytes/event: read {read_s:.2} s, merge {merge_s:.2} s, replay + linearizability {check_s:.2} s; {rate:.0} events/s end to end, {ratio:.2} of the 10^4-event rate",
            report.events
        ));
        rows.push(json!({
            "target_events": target, "events": report.events, "bytes": text.len(), "bytes_per_event": bytes_per_event,
            "read_s": read_s, "merge_s": merge_s, "replay_s": report.replay_seconds,
            "lin_s": report.lin_seconds, "end_to_end_s": total, "events_per_s": rate,
            "ratio_to_smallest": ratio,
        }));
        target *= 10;
    }
    Ok(json!({ "sizes": rows }))
}

/// `lin`: a synthetic linearizable history of `--lin-ops` operations (1 % unknown
/// outcomes) checked as `conform` checks one (partitioned by key, client sessions), against
/// the same search over the whole history (no partitioning) as the baseline.
pub(super) fn lin(args: &BenchArgs) -> Result<Value> {
    let ops = synth::history(args.lin_ops, 5, true, 4);
    let budget = 5_000_000;
    let time = |options: LinOptions| -> Result<(f64, &'static str, u64)> {
        let t = Instant::now();
        let (verdict, stats) = check_with(&ops, &options).context("lin: the history")?;
        let outcome = match verdict {
            Verdict::Linearizable { .. } => "linearizable",
            Verdict::NotLinearizable(_) => "not linearizable",
            Verdict::Undecided { .. } => "undecided",
        };
        Ok((t.elapsed().as_secs_f64(), outcome, stats.explored))
    };
    let project = LinOptions {
        client_sessions: true,
        ..LinOptions::with_budget(budget)
    };
    let (secs, outcome, nodes) = time(project)?;
    if outcome != "linearizable" {
        bail!("lin: the synthetic linearizable history was judged {outcome}");
    }
    let whole = LinOptions {
        partition_by_key: false,
        ..project
    };
    let (base_secs, base_outcome, base_nodes) = time(whole)?;
    let ratio = base_secs / secs.max(1e-9);
    let bound = if base_outcome == "undecided" {
        " (a lower bound: the baseline ran out of its budget)"
    } else {
        ""
    };
    say(args, &format!(
        "lin: {} operations: {secs:.3} s ({:.0} ops/s, {nodes} search nodes); baseline without partitioning {base_secs:.3} s ({base_outcome}, {base_nodes} nodes); speed-up {ratio:.1}x{bound}",
        ops.len(),
        ops.len() as f64 / secs.max(1e-9)
    ));
    Ok(json!({
        "operations": ops.len(), "seconds": secs, "ops_per_s": ops.len() as f64 / secs.max(1e-9),
        "search_nodes": nodes, "baseline": "the same search over the whole history (no partitioning by key)",
        "baseline_seconds": base_secs, "baseline_outcome": base_outcome,
        "baseline_search_nodes": base_nodes, "ratio_baseline_to_project": ratio,
    }))
}

/// `sim`: the simulator's core steps per second with traces off and on (the trace written
/// to memory), and simulated seconds per wall second.
pub(super) fn sim(args: &BenchArgs) -> Result<Value> {
    let cfg = SimConfig {
        seed: 1,
        steps: args.sim_steps,
        ..SimConfig::default()
    };
    let (off, _, off_s) = simulated(&cfg, false);
    let (on, text, on_s) = simulated(&cfg, true);
    let off_rate = off.core_steps as f64 / off_s.max(1e-9);
    let on_rate = on.core_steps as f64 / on_s.max(1e-9);
    let sim_per_wall = off.simulated_ms as f64 / 1000.0 / off_s.max(1e-9);
    let ratio = on_rate / off_rate.max(1e-9);
    say(args, &format!(
        "sim: 7 nodes under faults, {} core steps: traces off {off_rate:.0} steps/s ({sim_per_wall:.0} simulated s per wall s); traces on {on_rate:.0} steps/s, {:.0} bytes/event; on/off {ratio:.2}",
        off.core_steps,
        text.len() as f64 / (on.core_steps.max(1)) as f64
    ));
    Ok(json!({
        "nodes": cfg.nodes, "core_steps": off.core_steps, "simulated_ms": off.simulated_ms,
        "off": {"seconds": off_s, "core_steps_per_s": off_rate, "simulated_s_per_wall_s": sim_per_wall},
        "on": {"seconds": on_s, "core_steps_per_s": on_rate, "bytes": text.len()},
        "ratio_on_to_off": ratio,
    }))
}
