//! The monitor's own metrics, in Prometheus text format, over HTTP.
//!
//! One thread serves one connection at a time: at most [`MAX_REQUEST`] bytes of request
//! read, within [`CONNECTION_DEADLINE`] in all (a scraper trickling bytes is cut off when it
//! passes), and a write timeout of the same: a stalled or hostile scraper costs that thread
//! at most 4 s per connection and never the monitor's replay.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// The most bytes of a request read (its first line is all that is used).
pub const MAX_REQUEST: usize = 8 << 10;

/// How long one connection may take to send its request.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(2);

/// One cell's figures.
#[derive(Clone, Debug, Default)]
pub struct CellSample {
    pub cell: String,
    pub events: u64,
    pub divergences: u64,
    pub waiting: u64,
    pub frontier: u64,
    pub files: u64,
    pub bytes: u64,
    pub followed: bool,
}

#[derive(Default)]
struct State {
    cells: Vec<CellSample>,
    lag_seconds: f64,
    scrapes: u64,
}

/// The figures the monitor updates and the server reads.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// Replaces the per-cell figures.
    pub fn set_cells(&self, cells: Vec<CellSample>) {
        if let Ok(mut s) = self.0.lock() {
            s.cells = cells;
        }
    }

    /// Sets the lag of the last interval (the largest delay from an event's `now` to its
    /// replay).
    pub fn set_lag(&self, seconds: f64) {
        if let Ok(mut s) = self.0.lock() {
            s.lag_seconds = seconds;
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let Ok(mut s) = self.0.lock() else {
            return String::new();
        };
        s.scrapes += 1;
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, f: &dyn Fn(&CellSample) -> f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for c in &s.cells {
                let _ = writeln!(out, "{name}{{cell=\"{}\"}} {}", escape(&c.cell), f(c));
            }
        };
        family(
            "physalia_monitor_events_total",
            "counter",
            "Trace events replayed against the specification.",
            &|c| c.events as f64,
        );
        family(
            "physalia_monitor_divergences_total",
            "counter",
            "Divergences from the specification found.",
            &|c| c.divergences as f64,
        );
        family(
            "physalia_monitor_waiting_events",
            "gauge",
            "Events read and waiting to be ordered.",
            &|c| c.waiting as f64,
        );
        family(
            "physalia_monitor_frontier_states",
            "gauge",
            "Specification states in the replay frontier.",
            &|c| c.frontier as f64,
        );
        family(
            "physalia_monitor_files",
            "gauge",
            "Trace files followed.",
            &|c| c.files as f64,
        );
        family(
            "physalia_monitor_read_bytes_total",
            "counter",
            "Bytes of trace read.",
            &|c| c.bytes as f64,
        );
        family(
            "physalia_monitor_followed",
            "gauge",
            "1 while the cell is followed, 0 once it diverged or cannot be checked.",
            &|c| u8::from(c.followed) as f64,
        );
        let _ = writeln!(
            out,
            "# HELP physalia_monitor_lag_seconds Largest delay from an event to its replay over the last status interval.\n# TYPE physalia_monitor_lag_seconds gauge\nphysalia_monitor_lag_seconds {}",
            s.lag_seconds
        );
        let _ = writeln!(
            out,
            "# HELP physalia_monitor_scrapes_total Scrapes served.\n# TYPE physalia_monitor_scrapes_total counter\nphysalia_monitor_scrapes_total {}",
            s.scrapes
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves the metrics at `addr` on a thread of its own; returns the figures to update and
/// the address bound.
pub fn serve(addr: &str) -> Result<(Shared, SocketAddr)> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let shared = Shared::default();
    let served = shared.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let _ = answer(stream, &served);
                }
                // Out of descriptors, say: wait rather than spin.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    Ok((shared, bound))
}

/// Answers one request.
fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_write_timeout(Some(CONNECTION_DEADLINE))?;
    let deadline = std::time::Instant::now() + CONNECTION_DEADLINE;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while req.len() < MAX_REQUEST && !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let first = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path) {
        (Some("GET"), Some("/metrics")) => ("200 OK", shared.render()),
        (Some("GET"), Some(_)) => ("404 Not Found", "only /metrics is served\n".to_owned()),
        _ => ("400 Bad Request", "expected GET /metrics\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
