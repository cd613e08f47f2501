//! The node's counters and their Prometheus text rendering, served over plain HTTP.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::frame::FrameError;

use super::series::{CellSeries, FsyncLatency, PeerLinks, RequestLatency};

/// Counters shared by the node's tasks (all monotonic except the gauges noted).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Slots committed, summed over cells (as seen by this node's replicas).
    pub commits: AtomicU64,
    /// Client operations answered with a result.
    pub replies: AtomicU64,
    /// Client requests redirected.
    pub redirects: AtomicU64,
    /// WAL appends.
    pub wal_appends: AtomicU64,
    /// WAL group commits (each one `fdatasync`).
    pub fsyncs: AtomicU64,
    /// Core steps taken.
    pub steps: AtomicU64,
    /// Timer firings delivered to cells.
    pub timeouts: AtomicU64,
    /// Cells parked (no timer armed) right now (gauge).
    pub parked: AtomicU64,
    /// Cells hosted (gauge).
    pub cells: AtomicU64,
    /// Frames sent to peers.
    pub frames_out: AtomicU64,
    /// Frames accepted.
    pub frames_in: AtomicU64,
    /// Frames to peers dropped because the peer's queue was full or it was unreachable.
    pub frames_dropped_out: AtomicU64,
    /// Frames refused, by reason.
    pub rejected_too_short: AtomicU64,
    /// Frames refused: over the size limit.
    pub rejected_oversized: AtomicU64,
    /// Frames refused: checksum mismatch.
    pub rejected_checksum: AtomicU64,
    /// Frames refused: HMAC mismatch.
    pub rejected_bad_hmac: AtomicU64,
    /// Frames refused: payload does not decode, or is out of place.
    pub rejected_malformed: AtomicU64,
    /// Frames cut short: the connection ended inside a frame.
    pub rejected_eof_mid_frame: AtomicU64,
    /// Connections open (gauge).
    pub connections_open: AtomicU64,
    /// Connections closed for not authenticating within the handshake deadline.
    pub closed_handshake_timeout: AtomicU64,
    /// Unauthenticated connections closed to admit a newer one.
    pub closed_evicted: AtomicU64,
    /// Authenticated connections closed after a silence.
    pub closed_idle: AtomicU64,
    /// Connections refused: every slot held by authenticated connections.
    pub refused_full: AtomicU64,
    /// `accept` failures (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
    /// Messages naming a cell this node does not host.
    pub unknown_cell: AtomicU64,
    /// Jury changes proposed by this node as leader.
    pub changes_proposed: AtomicU64,
    /// Jury changes chosen and answered by this node as leader.
    pub changes_chosen: AtomicU64,
    /// Learners' copies of this node that learned the change adding them.
    pub learners_joined: AtomicU64,
    /// How long the last learner's copy of this node took from creation to joining (ms).
    pub learner_catchup_ms: AtomicU64,
    /// Copies this node deleted once its removal was in force.
    pub copies_deleted: AtomicU64,
    /// Peers found speaking from another instance than the one recorded (wiped, or an
    /// old copy of a directory).
    pub stale_peers: AtomicU64,
    /// Cell messages not stepped: this node is on probation, or the sender is stale.
    pub dropped_unconfirmed: AtomicU64,
    /// Latency histogram of client operations.
    pub request_latency: RequestLatency,
    /// Latency histogram of WAL group commits.
    pub fsync_latency: FsyncLatency,
    /// Per-cell series (bounded; published by the event loop when scraped).
    pub cell_series: CellSeries,
    /// Open authenticated links per peer.
    pub peer_links: PeerLinks,
}

impl Metrics {
    /// New counters, shared.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts a refused frame under its reason.
    pub fn reject(&self, err: &FrameError) {
        let c = match err {
            FrameError::TooShort { .. } => &self.rejected_too_short,
            FrameError::Oversized { .. } => &self.rejected_oversized,
            FrameError::Checksum { .. } => &self.rejected_checksum,
            FrameError::BadMac => &self.rejected_bad_hmac,
            FrameError::Decode(_) | FrameError::Encode(_) => &self.rejected_malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection whose frames stopped being readable (an I/O error is not a
    /// frame and is not counted).
    pub fn reject_read(&self, err: &super::conn::ReadError) {
        use super::conn::ReadError;
        let c = match err {
            ReadError::Oversized { .. } => &self.rejected_oversized,
            ReadError::EofMidFrame { .. } => &self.rejected_eof_mid_frame,
            ReadError::Io(_) => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames refused for any reason.
    pub fn rejected_total(&self) -> u64 {
        [
            &self.rejected_too_short,
            &self.rejected_oversized,
            &self.rejected_checksum,
            &self.rejected_bad_hmac,
            &self.rejected_malformed,
            &self.rejected_eof_mid_frame,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    /// Records one client operation's latency.
    pub fn observe_latency(&self, micros: u64) {
        self.request_latency.0.observe(micros);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_work(&mut out);
        self.render_frames(&mut out);
        self.render_rejections(&mut out);
        self.render_latency(&mut out);
        self.render_membership(&mut out);
        self.peer_links.render(&mut out);
        self.cell_series.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP physalia_build_info the running build (value 1)\n# TYPE physalia_build_info gauge\nphysalia_build_info{{version=\"{}\",wal_format=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            crate::wal::FORMAT_VERSION
        );
        out
    }

    /// The work counters: slots committed, client answers, WAL appends and group
    /// commits, core steps and timers, and the parked and hosted cells.
    fn render_work(&self, out: &mut String) {
        render_simple(
            out,
            &[
                (
                    "physalia_commits_total",
                    "counter",
                    "slots committed",
                    &self.commits,
                ),
                (
                    "physalia_replies_total",
                    "counter",
                    "client operations answered",
                    &self.replies,
                ),
                (
                    "physalia_redirects_total",
                    "counter",
                    "client requests redirected",
                    &self.redirects,
                ),
                (
                    "physalia_wal_appends_total",
                    "counter",
                    "WAL records appended",
                    &self.wal_appends,
                ),
                (
                    "physalia_fsyncs_total",
                    "counter",
                    "WAL group commits (fdatasync)",
                    &self.fsyncs,
                ),
                ("physalia_steps_total", "counter", "core steps", &self.steps),
                (
                    "physalia_timeouts_total",
                    "counter",
                    "timers fired",
                    &self.timeouts,
                ),
                (
                    "physalia_parked_cells",
                    "gauge",
                    "cells with no timer armed",
                    &self.parked,
                ),
                ("physalia_cells", "gauge", "cells hosted", &self.cells),
            ],
        );
    }

    /// The frame counters: frames sent, accepted and dropped, and messages for cells not
    /// hosted here.
    fn render_frames(&self, out: &mut String) {
        render_simple(
            out,
            &[
                (
                    "physalia_frames_out_total",
                    "counter",
                    "frames sent to peers",
                    &self.frames_out,
                ),
                (
                    "physalia_frames_in_total",
                    "counter",
                    "frames accepted",
                    &self.frames_in,
                ),
                (
                    "physalia_frames_dropped_out_total",
                    "counter",
                    "outgoing frames dropped",
                    &self.frames_dropped_out,
                ),
                (
                    "physalia_unknown_cell_total",
                    "counter",
                    "messages for cells not hosted here",
                    &self.unknown_cell,
                ),
                (
                    "physalia_connections_open",
                    "gauge",
                    "connections open (peers and clients)",
                    &self.connections_open,
                ),
                (
                    "physalia_connections_handshake_timeout_total",
                    "counter",
                    "connections closed for not authenticating in time",
                    &self.closed_handshake_timeout,
                ),
                (
                    "physalia_connections_evicted_total",
                    "counter",
                    "unauthenticated connections closed to admit newer ones",
                    &self.closed_evicted,
                ),
                (
                    "physalia_connections_idle_closed_total",
                    "counter",
                    "authenticated connections closed after a silence",
                    &self.closed_idle,
                ),
                (
                    "physalia_connections_refused_total",
                    "counter",
                    "connections refused with every slot authenticated",
                    &self.refused_full,
                ),
                (
                    "physalia_accept_errors_total",
                    "counter",
                    "accept failures (such as running out of file descriptors)",
                    &self.accept_errors,
                ),
            ],
        );
    }

    /// The frames refused, one counter per reason.
    fn render_rejections(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP physalia_rejected_frames_total frames dropped, by reason\n# TYPE physalia_rejected_frames_total counter"
        );
        for (reason, c) in [
            ("too_short", &self.rejected_too_short),
            ("oversized", &self.rejected_oversized),
            ("checksum", &self.rejected_checksum),
            ("bad_hmac", &self.rejected_bad_hmac),
            ("malformed", &self.rejected_malformed),
            ("eof_mid_frame", &self.rejected_eof_mid_frame),
        ] {
            let _ = writeln!(
                out,
                "physalia_rejected_frames_total{{reason=\"{reason}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
    }

    /// The latency histograms: client operations, and WAL group commits.
    fn render_latency(&self, out: &mut String) {
        self.request_latency.0.render(
            out,
            "physalia_request_latency_seconds",
            "client operation latency at the node",
        );
        self.fsync_latency.0.render(
            out,
            "physalia_fsync_latency_seconds",
            "WAL group commit (fdatasync) latency",
        );
    }
}

/// Writes a counter or gauge per `(name, type, help, value)`: its `# HELP` and `# TYPE`
/// lines, then its value.
impl Metrics {
    fn render_membership(&self, out: &mut String) {
        render_simple(
            out,
            &[
                (
                    "physalia_jury_changes_proposed_total",
                    "counter",
                    "jury changes this node proposed as leader",
                    &self.changes_proposed,
                ),
                (
                    "physalia_jury_changes_chosen_total",
                    "counter",
                    "jury changes chosen and answered by this node as leader",
                    &self.changes_chosen,
                ),
                (
                    "physalia_learners_joined_total",
                    "counter",
                    "learners' copies on this node that joined their jury",
                    &self.learners_joined,
                ),
                (
                    "physalia_learner_catchup_ms",
                    "gauge",
                    "time the last learner's copy took from creation to joining (ms)",
                    &self.learner_catchup_ms,
                ),
                (
                    "physalia_copies_deleted_total",
                    "counter",
                    "copies deleted once this node's removal was in force",
                    &self.copies_deleted,
                ),
                (
                    "physalia_stale_peers_total",
                    "counter",
                    "peers found speaking from another instance than the one recorded",
                    &self.stale_peers,
                ),
                (
                    "physalia_unconfirmed_messages_dropped_total",
                    "counter",
                    "cell messages not stepped: on probation, or from a stale peer",
                    &self.dropped_unconfirmed,
                ),
            ],
        );
    }
}

fn render_simple(out: &mut String, metrics: &[(&str, &str, &str, &AtomicU64)]) {
    for (name, kind, help, c) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
            c.load(Ordering::Relaxed)
        );
    }
}

/// Serves `GET /metrics` (any path, in fact) on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            // One bounded read of the request head is enough: we answer every path alike.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(2), sock.read(&mut buf)).await;
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rejections_and_latency() {
        let m = Metrics::default();
        m.reject(&FrameError::BadMac);
        m.reject(&FrameError::Decode("x".into()));
        m.observe_latency(3_000);
        let text = m.render();
        assert!(text.contains("physalia_rejected_frames_total{reason=\"bad_hmac\"} 1"));
        assert!(text.contains("physalia_rejected_frames_total{reason=\"malformed\"} 1"));
        assert!(text.contains("physalia_request_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("physalia_request_latency_seconds_count 1"));
        assert_eq!(m.rejected_total(), 2);
    }
}
