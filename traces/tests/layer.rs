//! The tracing layer writes the events recorded through `tracing` as trace lines.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use physalia_traces::*;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn records_events_through_tracing_into_one_file() {
    let writer = TraceWriter::new(Vec::new(), &header()).unwrap();
    let layer = TraceLayer::new(writer);
    let sink = layer.sink();
    let events = vec![
        event(0, 0, 0, 1, timeout()),
        send(event(1, 0, 0, 2, timeout()), id(1, 0, 0), 0, prepare(1, 1)),
    ];
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("an ordinary log line is not a trace event");
        for e in &events {
            record(e);
        }
    });
    let written = sink.lock().unwrap().events();
    assert_eq!(written, 2);
    let text = String::from_utf8(TraceWriterAccess(&sink).buffer()).unwrap();
    let read = read_str("layer.jsonl", &text).unwrap();
    let got: Vec<TraceEvent> = read.events.into_iter().map(|l| l.event).collect();
    assert_eq!(got, events);
}

/// Takes the bytes out of a shared in-memory writer.
struct TraceWriterAccess<'a>(&'a std::sync::Arc<std::sync::Mutex<TraceWriter<Vec<u8>>>>);

impl TraceWriterAccess<'_> {
    fn buffer(&self) -> Vec<u8> {
        let mut guard = self.0.lock().unwrap();
        let w = std::mem::replace(
            &mut *guard,
            TraceWriter::new(Vec::new(), &header()).unwrap(),
        );
        w.into_inner()
    }
}

#[test]
fn routes_each_node_to_its_own_file_and_counts_failures() {
    let mut sinks = BTreeMap::new();
    for n in 0..2 {
        sinks.insert(NodeId(n), TraceWriter::new(Vec::new(), &header()).unwrap());
    }
    let layer = TraceLayer::new(sinks);
    let (sink, failed) = (layer.sink(), layer.failed());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        record(&event(0, 0, 0, 1, timeout()));
        record(&event(1, 0, 0, 1, timeout()));
        record(&event(1, 0, 1, 2, timeout()));
        record(&event(2, 0, 0, 1, timeout())); // no writer for n2
    });
    let sinks = sink.lock().unwrap();
    assert_eq!(sinks[&NodeId(0)].events(), 1);
    assert_eq!(sinks[&NodeId(1)].events(), 2);
    assert_eq!(failed.load(Ordering::Relaxed), 1);
}

#[test]
fn without_a_subscriber_recording_is_a_no_op() {
    record(&event(0, 0, 0, 1, timeout()));
}
