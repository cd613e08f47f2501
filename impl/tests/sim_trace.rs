//! Traces recorded through the `tracing` stack by the simulator.
//!
//! These tests live in their own test binary and take a lock: `tracing` caches each
//! callsite's interest globally, and a thread running without a subscriber while another
//! installs one with `with_default` can leave the trace callsites disabled for both, so
//! events are silently lost. (A node installs its layer in the global default subscriber,
//! where this cannot happen; the merger would report the gap as a missing sequence number.)

use std::sync::{Arc, Mutex};

use physalia_impl::sim::{run, SimConfig, SimReport};
use physalia_traces::*;
use tracing_subscriber::layer::SubscriberExt;

static SERIAL: Mutex<()> = Mutex::new(());

fn config(seed: u64, steps: u64) -> SimConfig {
    SimConfig {
        seed,
        steps,
        gst: 3_000,
        ..SimConfig::default()
    }
}

/// Runs with a tracing layer capturing every node's events in one in-memory trace.
fn traced(cfg: &SimConfig) -> (SimReport, String) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tracing::callsite::rebuild_interest_cache();
    let header = Header::new("sim", Config::with_nodes(cfg.nodes), cfg.options.alpha);
    let layer = TraceLayer::new(TraceWriter::new(Vec::new(), &header).unwrap());
    let sink: Arc<Mutex<TraceWriter<Vec<u8>>>> = layer.sink();
    let subscriber = tracing_subscriber::registry().with(layer);
    let report = tracing::subscriber::with_default(subscriber, || run(cfg));
    let mut guard = sink.lock().unwrap();
    let w = std::mem::replace(&mut *guard, TraceWriter::new(Vec::new(), &header).unwrap());
    (report, String::from_utf8(w.into_inner()).unwrap())
}

#[test]
fn the_same_seed_gives_the_same_trace_byte_for_byte() {
    let cfg = config(7, 4_000);
    let (a, ta) = traced(&cfg);
    let (b, tb) = traced(&cfg);
    assert_eq!(a, b);
    assert_eq!(ta, tb);
    assert_eq!(ta.lines().count() as u64, a.core_steps + 1);
    let (_, tc) = traced(&config(8, 4_000));
    assert_ne!(ta, tc, "another seed gives another run");
}

#[test]
fn a_faulty_run_yields_a_trace_that_reads_and_merges() {
    let (report, text) = traced(&config(3, 6_000));
    assert!(report.crashes + report.partitions > 0, "{report:?}");
    let file = read_str("sim.jsonl", &text).unwrap();
    let merged = merge(vec![file]).unwrap();
    assert_eq!(merged.events.len() as u64, report.core_steps);
}

#[test]
fn no_event_is_lost() {
    let (report, text) = traced(&config(11, 3_000));
    assert_eq!(text.lines().count() as u64, report.core_steps + 1);
}
