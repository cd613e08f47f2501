//! Runs the simulator over a range of seeds and prints a summary per seed, the speed
//! relative to real time, and the trace size per event (measured through the tracing
//! layer). Usage: `cargo run -p physalia-impl --example simulate -- [SEEDS] [STEPS] [OUT_DIR] [NODES] [FIRST_SEED]`;
//! with `OUT_DIR`, the first seed's trace is written there, one file per node.

use std::collections::BTreeMap;
use std::time::Instant;

use physalia_impl::sim::{run, SimConfig, SimReport};
use physalia_traces::{Config, Header, NodeId, TraceLayer, TraceWriter};
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let steps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let out_dir = args.get(3).filter(|d| !d.is_empty());
    let nodes: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(7);
    let first: u64 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (mut sim_ms, mut wall_ms, mut ops, mut events, mut bytes) = (0u64, 0f64, 0, 0, 0);
    for seed in first..first + seeds {
        // No spares: one trace file per node of the jury (moves are `physalia simulate`'s).
        let mut faults = physalia_impl::sim::Faults::all();
        faults.reconfig_ppm = 0;
        let cfg = SimConfig {
            seed,
            steps,
            nodes,
            spares: 0,
            faults,
            ..SimConfig::default()
        };
        let header = Header::new("sim", Config::with_nodes(cfg.nodes), cfg.options.alpha);
        let (r, sinks, wall) = traced_run(&cfg, &header);
        let seed_bytes: u64 = sinks.values().map(|w| w.bytes()).sum();
        let header_bytes = (serde_json::to_string(&header).unwrap().len() + 1) as u64;
        bytes += seed_bytes - header_bytes * u64::from(cfg.nodes);
        events += r.core_steps;
        if seed == first {
            if let Some(dir) = out_dir {
                std::fs::create_dir_all(dir).unwrap();
                for (n, w) in sinks {
                    let path = format!("{dir}/n{}.jsonl", n.0);
                    std::fs::write(path, w.into_inner()).unwrap();
                }
            }
        }
        println!(
            "seed {seed}: {} events, {} core steps, {} ms simulated, {} ops committed, \
             {} local reads, {} slots, dropped {} duplicated {} partitions {} crashes {}, \
             violations {}",
            r.steps,
            r.core_steps,
            r.simulated_ms,
            r.committed_ops,
            r.local_reads,
            r.decided_slots,
            r.dropped,
            r.duplicated,
            r.partitions,
            r.crashes,
            r.violations.len()
        );
        println!("  commit index per node at the end: {:?}", r.commits);
        println!("  after GST ({} ms): {:?}", r.gst, r.liveness());
        for v in &r.violations {
            println!("  {v}");
        }
        sim_ms += r.simulated_ms;
        wall_ms += wall;
        ops += r.committed_ops;
    }
    println!(
        "total: {ops} ops committed in {sim_ms} ms simulated, {wall_ms:.0} ms real: \
         {:.1}x real time, {:.0} simulated ops/s, {:.0} trace bytes/event",
        sim_ms as f64 / wall_ms,
        ops as f64 / (sim_ms as f64 / 1000.0),
        bytes as f64 / events as f64
    );
}

/// Runs `cfg` with a tracing layer writing one in-memory trace per node; returns the report,
/// the traces and the wall-clock time (ms).
fn traced_run(
    cfg: &SimConfig,
    header: &Header,
) -> (SimReport, BTreeMap<NodeId, TraceWriter<Vec<u8>>>, f64) {
    let sinks: BTreeMap<NodeId, TraceWriter<Vec<u8>>> = (0..cfg.nodes)
        .map(|n| (NodeId(n), TraceWriter::new(Vec::new(), header).unwrap()))
        .collect();
    let layer = TraceLayer::new(sinks);
    let sink = layer.sink();
    let subscriber = tracing_subscriber::registry().with(layer);
    let started = Instant::now();
    let report = tracing::subscriber::with_default(subscriber, || run(cfg));
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    let sinks = std::mem::take(&mut *sink.lock().unwrap());
    (report, sinks, wall)
}
