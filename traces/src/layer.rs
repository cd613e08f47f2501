//! Recording trace events through the ordinary `tracing` stack.
//!
//! The core returns a [`TraceEvent`] from every step; the shell hands it to [`record`],
//! which emits one `tracing` event on the dedicated target [`TRACE_TARGET`] with two
//! fields: `node` and `event` (the event's JSON line). A [`TraceLayer`] installed in the
//! subscriber picks out that target and appends the line to a [`LineSink`]: one writer for
//! all nodes, or one writer per node. Nothing is sampled; a failed write is counted.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::event::TraceEvent;
use crate::io::TraceWriter;
use crate::vocab::NodeId;

/// The `tracing` target that carries trace events.
pub const TRACE_TARGET: &str = "physalia::trace";

/// Emits `event` on [`TRACE_TARGET`] if any subscriber wants it (no serialisation
/// otherwise).
pub fn record(event: &TraceEvent) {
    if !tracing::enabled!(target: TRACE_TARGET, tracing::Level::INFO) {
        return;
    }
    match serde_json::to_string(event) {
        Ok(json) => {
            tracing::info!(target: TRACE_TARGET, node = event.node.0, event = json.as_str());
        }
        Err(err) => {
            tracing::error!(node = event.node.0, "cannot serialise a trace event: {err}");
        }
    }
}

/// Where a [`TraceLayer`] puts event lines.
pub trait LineSink: Send + 'static {
    /// Appends one event line (without its newline) recorded by `node`.
    fn write_line(&mut self, node: NodeId, json: &str) -> io::Result<()>;
}

/// One writer for every node's events.
impl<W: Write + Send + 'static> LineSink for TraceWriter<W> {
    fn write_line(&mut self, _node: NodeId, json: &str) -> io::Result<()> {
        self.write_raw(json)
    }
}

/// One writer per node; an event of a node without a writer is an error.
impl<W: Write + Send + 'static> LineSink for BTreeMap<NodeId, TraceWriter<W>> {
    fn write_line(&mut self, node: NodeId, json: &str) -> io::Result<()> {
        match self.get_mut(&node) {
            Some(w) => w.write_raw(json),
            None => Err(io::Error::other(format!("no trace writer for {node}"))),
        }
    }
}

/// A `tracing` layer that writes the events of [`TRACE_TARGET`] to a [`LineSink`].
pub struct TraceLayer<S: LineSink> {
    sink: Arc<Mutex<S>>,
    failed: Arc<AtomicU64>,
}

impl<S: LineSink> TraceLayer<S> {
    /// A layer writing to `sink`.
    pub fn new(sink: S) -> Self {
        TraceLayer {
            sink: Arc::new(Mutex::new(sink)),
            failed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle on the sink, to flush it or take its contents after the run.
    pub fn sink(&self) -> Arc<Mutex<S>> {
        Arc::clone(&self.sink)
    }

    /// A handle on the count of events that could not be written.
    pub fn failed(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.failed)
    }
}

impl<S: LineSink> fmt::Debug for TraceLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceLayer")
            .field("failed", &self.failed.load(Ordering::Relaxed))
            .finish()
    }
}

#[derive(Default)]
struct Fields {
    node: Option<u64>,
    event: Option<String>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "node" {
            self.node = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "event" {
            self.event = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

impl<S: LineSink, Sub: Subscriber> Layer<Sub> for TraceLayer<S> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, Sub>) {
        if event.metadata().target() != TRACE_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (Some(node), Some(json)) = (fields.node, fields.event) else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let node = NodeId(u32::try_from(node).unwrap_or(u32::MAX));
        let ok = match self.sink.lock() {
            Ok(mut sink) => sink.write_line(node, &json).is_ok(),
            Err(_) => false,
        };
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
