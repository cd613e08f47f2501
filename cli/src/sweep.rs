//! Simulate a seed with traces recorded in memory, then replay them: the building block of
//! `physalia verify` and of the detection tests.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use physalia_impl::sim::{run, SimConfig, SimReport};
use physalia_refinement::replay::{self, Options, Report};
use physalia_traces::{merge, read_str, TraceLayer, TraceWriter};
use tracing_subscriber::layer::SubscriberExt;

use crate::simulate::sim_header;

/// One seed simulated and checked.
pub struct SeedRun {
    /// The simulator's own report (with its online checks).
    pub sim: SimReport,
    /// The refinement report on the trace.
    pub conform: Report,
    /// Seconds simulating (with tracing).
    pub sim_seconds: f64,
    /// Bytes of trace.
    pub trace_bytes: usize,
}

/// Simulates `cfg` with every node's trace recorded in memory, merges the trace and replays
/// it against the specification.
pub fn simulate_and_conform(cfg: &SimConfig, opts: &Options) -> Result<SeedRun> {
    let rec = simulate_merged(cfg)?;
    let conform = replay::conform(&rec.merged, opts);
    Ok(SeedRun {
        sim: rec.sim,
        conform,
        sim_seconds: rec.sim_seconds,
        trace_bytes: rec.trace_bytes,
    })
}

/// One seed simulated with its trace recorded and merged.
pub struct Recorded {
    /// The simulator's own report.
    pub sim: SimReport,
    /// The trace, merged.
    pub merged: physalia_traces::Merged,
    /// Seconds simulating (with tracing).
    pub sim_seconds: f64,
    /// Bytes of trace.
    pub trace_bytes: usize,
}

/// Simulates `cfg` with every node's trace recorded in memory, and merges the trace.
pub fn simulate_merged(cfg: &SimConfig) -> Result<Recorded> {
    let header = sim_header(cfg);
    let started = Instant::now();
    let writer = TraceWriter::new(Vec::new(), &header).context("starting the trace")?;
    let layer = TraceLayer::new(writer);
    let (sink, failed) = (layer.sink(), layer.failed());
    let subscriber = tracing_subscriber::registry().with(layer);
    let sim = tracing::subscriber::with_default(subscriber, || run(cfg));
    let sim_seconds = started.elapsed().as_secs_f64();
    if failed.load(std::sync::atomic::Ordering::Relaxed) > 0 {
        return Err(anyhow!(
            "trace events were lost while recording seed {}",
            cfg.seed
        ));
    }
    let bytes = {
        let mut w = sink.lock().map_err(|_| anyhow!("trace sink poisoned"))?;
        let fresh = TraceWriter::new(Vec::new(), &header).context("resetting the trace")?;
        std::mem::replace(&mut *w, fresh).into_inner()
    };
    let text = String::from_utf8(bytes).context("the trace is not UTF-8")?;
    let name = format!("sim-seed-{}.jsonl", cfg.seed);
    let file = read_str(&name, &text).map_err(|e| anyhow!("{e}"))?;
    let merged = merge(vec![file]).map_err(|e| anyhow!("{e}"))?;
    Ok(Recorded {
        sim,
        merged,
        sim_seconds,
        trace_bytes: text.len(),
    })
}
