//! Benchmark (not a test): how fast a fully observed trace replays against the
//! specification, and how it scales from 10⁴ to 10⁶ events.
//!
//!     cargo run --release -p physalia-crosscheck --example replay_bench -- [MAX_EVENTS]
//!
//! For each size it simulates a 7-node cell under faults with the trace recorded in memory,
//! then times reading, merging, replaying (conformance) and the linearizability check, and
//! prints events per second with the ratio to the smallest size measured in the same run
//! (1.0 means linear scaling).

use std::time::Instant;

use physalia_impl::sim::{run, SimConfig};
use physalia_refinement::replay::{conform, Options};
use physalia_traces::{merge, read_str, Config, Header, TraceLayer, TraceWriter};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let max: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("MAX_EVENTS is a number"))
        .unwrap_or(1_000_000);
    println!(
        "{:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>11} {:>6} {:>7} {:>7}",
        "events",
        "MB",
        "sim s",
        "read s",
        "merge s",
        "replay s",
        "events/s",
        "ratio",
        "ops",
        "lin s"
    );
    let mut base = None;
    let mut target = 10_000u64;
    while target <= max {
        // About 0.62 core steps per simulator event with 3 clients and every fault.
        let cfg = SimConfig {
            seed: 1,
            steps: target * 100 / 62,
            ..SimConfig::default()
        };
        let mut header = Header::new("bench", Config::with_nodes(cfg.nodes), cfg.options.alpha);
        header.gst = Some(cfg.gst);
        header.clock_skew = cfg.clock_skew;
        let started = Instant::now();
        let layer = TraceLayer::new(TraceWriter::new(Vec::new(), &header).unwrap());
        let sink = layer.sink();
        let subscriber = tracing_subscriber::registry().with(layer);
        let _report = tracing::subscriber::with_default(subscriber, || run(&cfg));
        let sim_s = started.elapsed().as_secs_f64();
        let bytes = {
            let mut w = sink.lock().unwrap();
            let fresh = TraceWriter::new(Vec::new(), &header).unwrap();
            std::mem::replace(&mut *w, fresh).into_inner()
        };
        let text = String::from_utf8(bytes).unwrap();
        let t = Instant::now();
        let file = read_str("bench.jsonl", &text).unwrap();
        let read_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let merged = merge(vec![file]).unwrap();
        let merge_s = t.elapsed().as_secs_f64();
        let report = conform(&merged, &Options::default());
        assert!(
            report.conforms(),
            "the clean trace must conform: {:?}",
            report.failure
        );
        let rate = report.events as f64 / report.replay_seconds.max(1e-9);
        let ratio = rate / *base.get_or_insert(rate);
        println!(
            "{:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>11.0} {:>6.2} {:>7} {:>7.3}",
            report.events,
            text.len() as f64 / 1e6,
            sim_s,
            read_s,
            merge_s,
            report.replay_seconds,
            rate,
            ratio,
            report.linearizability.as_ref().map_or(0, |l| l.operations),
            report.lin_seconds
        );
        target *= 10;
    }
}
