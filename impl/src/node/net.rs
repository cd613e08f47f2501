//! Connections: the one listener (peers and clients), and one link per pair of nodes.
//!
//! Between two nodes there is exactly one TCP connection, carrying every cell's messages
//! both ways: the node with the lower id dials ([`peer_link`], reconnecting with backoff)
//! and opens with `Hello`; the other takes it in `serve` and sends its own queue for that
//! peer on it until it ends (a newer connection from the same peer takes the queue over).
//!
//! Every connection carries length-delimited frames sealed with the cluster key
//! ([`super::frame`]). A frame that fails its checksum, its HMAC or decoding is dropped
//! and counted, and the connection goes on (the length prefix keeps the framing). A length
//! over the limit loses the framing: it is counted and that connection is closed. Either
//! way the node keeps serving everyone else. What a connection may cost before and after
//! it authenticates (deadlines, eviction, caps, buffer growth) is [`super::conn`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use physalia_traces::NodeId;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::conn::{Admission, FrameCodec, Ticket, HANDSHAKE_DEADLINE, IDLE_TIMEOUT};
use super::event::Event;
use super::frame::{codec, FrameKey};
use super::metrics::Metrics;
use super::wire::{ClientResponse, PeerMsg, Wire};

/// Most frames queued towards one peer; beyond it frames are dropped (and counted), as a
/// lossy network would.
pub const PEER_QUEUE: usize = 65_536;
/// Most frames written to a socket before a flush.
const WRITE_BATCH: usize = 256;
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);

/// When each peer was last heard from, updated by the connection readers as frames
/// arrive, so that a busy event loop does not take its own backlog for a silent peer.
#[derive(Debug)]
pub struct PeerClocks {
    epoch: std::time::Instant,
    last: Vec<(NodeId, std::sync::atomic::AtomicU64)>,
}

impl PeerClocks {
    /// Clocks for `peers`, none heard yet.
    pub fn new(peers: impl IntoIterator<Item = NodeId>) -> Arc<PeerClocks> {
        Arc::new(PeerClocks {
            epoch: std::time::Instant::now(),
            last: peers
                .into_iter()
                .map(|p| (p, std::sync::atomic::AtomicU64::new(0)))
                .collect(),
        })
    }

    /// Notes a frame from `peer`.
    pub fn touch(&self, peer: NodeId) {
        if let Some((_, t)) = self.last.iter().find(|(n, _)| *n == peer) {
            let now = self.epoch.elapsed().as_millis() as u64 + 1;
            t.store(now, Relaxed);
        }
    }

    /// How long ago `peer` was last heard from (`None`: never, or not a peer).
    pub fn silent_for(&self, peer: NodeId) -> Option<Duration> {
        let (_, t) = self.last.iter().find(|(n, _)| *n == peer)?;
        let at = t.load(Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        (at > 0).then(|| Duration::from_millis(now.saturating_sub(at)))
    }
}

/// Sends this node's coalesced heartbeat (one for all its cells) to every peer, every
/// `every`, from its own task (so a busy event loop still says it is alive).
/// Each heartbeat carries the node's instance and standing (`presence`).
pub async fn heartbeats(
    me: NodeId,
    inc: u64,
    presence: Arc<super::identity::Presence>,
    outs: Vec<mpsc::Sender<PeerMsg>>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (instance, standing) = presence.get();
        for out in &outs {
            if out.is_closed() {
                return;
            }
            let _ = out.try_send(PeerMsg::Heartbeat {
                node: me,
                inc,
                instance,
                standing,
            });
        }
    }
}

/// What the listener needs to know.
#[derive(Clone)]
pub struct ListenCtx {
    /// The cluster key.
    pub key: FrameKey,
    /// The event loop.
    pub events: mpsc::Sender<Event>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The peers that dial this node (those with a lower id), each with the queue of
    /// messages for it, which the connection it dialed carries back.
    pub accepted: Arc<Vec<(NodeId, AcceptedQueue)>>,
    /// When each peer was last heard from.
    pub clocks: Arc<PeerClocks>,
    /// The connections admitted, and which have not authenticated yet.
    pub admission: Arc<Admission>,
}

/// The outgoing queue of a peer that dials this node, taken by its current connection.
pub type AcceptedQueue = Arc<tokio::sync::Mutex<mpsc::Receiver<PeerMsg>>>;

/// Accepts connections forever, each admitted by [`Admission`] (which may evict the oldest
/// unauthenticated connection, or refuse when every slot is authenticated). An `accept`
/// failure (out of file descriptors, say) is counted, logged at most once a second, and
/// retried after a pause.
pub async fn accept_loop(listener: TcpListener, ctx: ListenCtx) {
    let mut last_log: Option<std::time::Instant> = None;
    loop {
        match listener.accept().await {
            Ok((sock, from)) => match ctx.admission.admit() {
                Ok((ticket, evicted)) => {
                    ctx.metrics
                        .closed_evicted
                        .fetch_add(evicted as u64, Relaxed);
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve(sock, from, ctx.clone(), ticket));
                }
                Err(_) => {
                    ctx.metrics.refused_full.fetch_add(1, Relaxed);
                    drop(sock);
                }
            },
            Err(e) => {
                ctx.metrics.accept_errors.fetch_add(1, Relaxed);
                if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(
                        open = ctx.admission.open(),
                        limit = ctx.admission.max_total(),
                        "accept failed: {e} (logged at most once a second)"
                    );
                    last_log = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The reading half of a connection, as frames.
type FrameReader = FramedRead<OwnedReadHalf, FrameCodec>;

/// Who is on the other end of an accepted connection.
enum Mode {
    Unknown,
    Client(mpsc::Sender<Wire>),
}

/// The next frame of an accepted connection: before it authenticates, by the handshake
/// deadline and unless evicted; after, within the idle timeout. `None`: close it.
async fn next_frame(
    reader: &mut FrameReader,
    ticket: &mut Ticket,
    deadline: tokio::time::Instant,
    authenticated: bool,
    ctx: &ListenCtx,
) -> Option<Result<bytes::BytesMut, super::conn::ReadError>> {
    if authenticated {
        return match tokio::time::timeout(IDLE_TIMEOUT, reader.next()).await {
            Ok(next) => next,
            Err(_) => {
                ctx.metrics.closed_idle.fetch_add(1, Relaxed);
                None
            }
        };
    }
    tokio::select! {
        next = tokio::time::timeout_at(deadline, reader.next()) => match next {
            Ok(next) => next,
            Err(_) => {
                ctx.metrics.closed_handshake_timeout.fetch_add(1, Relaxed);
                None
            }
        },
        _ = ticket.evicted.changed() => None,
    }
}

/// Serves one accepted connection: a peer that dials this node (its first frame is
/// `Hello`) or a client (its first frame is a request), until it ends.
async fn serve(sock: TcpStream, from: SocketAddr, ctx: ListenCtx, mut ticket: Ticket) {
    ctx.metrics.connections_open.fetch_add(1, Relaxed);
    serve_admitted(sock, from, &ctx, &mut ticket).await;
    ctx.metrics.connections_open.fetch_sub(1, Relaxed);
}

async fn serve_admitted(sock: TcpStream, from: SocketAddr, ctx: &ListenCtx, ticket: &mut Ticket) {
    let (r, w) = sock.into_split();
    let mut reader = FramedRead::new(r, FrameCodec::unauthenticated());
    let mut mode = Mode::Unknown;
    let mut writer = Some(w);
    let deadline = tokio::time::Instant::now() + HANDSHAKE_DEADLINE;
    let mut authenticated = false;
    while let Some(frame) = next_frame(&mut reader, ticket, deadline, authenticated, ctx).await {
        let body = match frame {
            Ok(b) => b,
            Err(e) => {
                // The framing is lost (a length over the limit), or the connection ended
                // inside a frame, or the socket failed.
                ctx.metrics.reject_read(&e);
                tracing::warn!(%from, reason = e.label(), "closing a connection: {e}");
                return;
            }
        };
        let wire: Wire = match ctx.key.open(&body) {
            Ok(w) => w,
            Err(e) => {
                ctx.metrics.reject(&e);
                tracing::warn!(%from, reason = e.label(), "dropped a frame: {e}");
                continue;
            }
        };
        ctx.metrics.frames_in.fetch_add(1, Relaxed);
        if !authenticated {
            // Sealed with the cluster key: the sender holds it (unless it was evicted just
            // before: then its slot is gone and it closes).
            if !ticket.authenticate() {
                return; // counted as evicted by `accept_loop`
            }
            authenticated = true;
            reader.decoder_mut().authenticate();
        }
        match (&mode, wire) {
            (Mode::Unknown, Wire::Peer(PeerMsg::Hello { node, inc })) => {
                let queue = ctx.accepted.iter().find(|(n, _)| *n == node);
                let (Some((_, queue)), Some(w_half)) = (queue, writer.take()) else {
                    ctx.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    tracing::warn!(%from, %node, "a node that does not dial this one said hello; closing");
                    return;
                };
                serve_peer(&mut reader, w_half, queue, node, inc, ctx).await;
                return;
            }
            (Mode::Unknown, w @ Wire::Request { .. }) => {
                let Some(w_half) = writer.take() else { return };
                let (tx, rx) = mpsc::channel(1024);
                tokio::spawn(client_writer(w_half, rx, ctx.key.clone()));
                mode = Mode::Client(tx);
                if !client_request(&mode, w, ctx).await {
                    return;
                }
            }
            (Mode::Client(_), w @ Wire::Request { .. }) => {
                if !client_request(&mode, w, ctx).await {
                    return;
                }
            }
            (_, other) => {
                ctx.metrics.rejected_malformed.fetch_add(1, Relaxed);
                tracing::warn!(%from, "dropped an out-of-place frame: {:?}", kind(&other));
            }
        }
    }
}

/// Serves the connection of peer `node` (incarnation `inc`) after its hello: hands the
/// hello to the event loop, writes the peer's `queue` on the connection, and reads the
/// peer's frames until the connection ends.
async fn serve_peer(
    reader: &mut FrameReader,
    w_half: OwnedWriteHalf,
    queue: &AcceptedQueue,
    node: NodeId,
    inc: u64,
    ctx: &ListenCtx,
) {
    ctx.clocks.touch(node);
    let _link = super::series::PeerLinks::open(&ctx.metrics, node);
    let msg = PeerMsg::Hello { node, inc };
    if ctx
        .events
        .send(Event::Peer { from: node, msg })
        .await
        .is_err()
    {
        return;
    }
    // This connection carries our messages to `node` too, until it ends (the
    // writer stops when `_stop` is dropped, i.e. when this reader returns).
    let (_stop, stop_rx) = oneshot::channel::<()>();
    let sink = FramedWrite::new(w_half, codec());
    let (queue, key, metrics) = (Arc::clone(queue), ctx.key.clone(), Arc::clone(&ctx.metrics));
    tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        let mut rx = tokio::select! {
            rx = queue.lock() => rx,
            _ = &mut stop_rx => return,
        };
        let mut sink = sink;
        write_loop(&mut sink, &mut rx, &key, &metrics, &mut stop_rx).await;
    });
    read_peer_frames(reader, node, ctx).await;
}

fn kind(w: &Wire) -> &'static str {
    match w {
        Wire::Peer(_) => "peer message",
        Wire::Request { .. } => "request",
        Wire::Response { .. } => "response",
    }
}

/// Hands a client request to the event loop; its answer is written when it comes.
async fn client_request(mode: &Mode, wire: Wire, ctx: &ListenCtx) -> bool {
    let (Mode::Client(out), Wire::Request { id, req }) = (mode, wire) else {
        return true;
    };
    let (tx, rx) = oneshot::channel();
    if ctx
        .events
        .send(Event::Client { req, reply: tx })
        .await
        .is_err()
    {
        return false;
    }
    let out = out.clone();
    tokio::spawn(async move {
        let resp = rx.await.unwrap_or(ClientResponse::Unavailable {
            reason: "no answer from this node (superseded by a newer request of the same client, or shutting down)".into(),
        });
        let _ = out.send(Wire::Response { id, resp }).await;
    });
    true
}

async fn client_writer(
    w: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Wire>,
    key: FrameKey,
) {
    let mut sink = FramedWrite::new(w, codec());
    while let Some(msg) = rx.recv().await {
        let Ok(body) = key.seal(&msg) else { continue };
        if sink.send(Bytes::from(body)).await.is_err() {
            return;
        }
    }
}

/// Reads a peer's frames (after its hello) until the connection ends, or stays silent for
/// the idle timeout (the peer heartbeats far more often; the dialer reconnects).
async fn read_peer_frames(reader: &mut FrameReader, node: NodeId, ctx: &ListenCtx) {
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, reader.next()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(_) => {
                ctx.metrics.closed_idle.fetch_add(1, Relaxed);
                return;
            }
        };
        let body = match frame {
            Ok(body) => body,
            Err(e) => {
                ctx.metrics.reject_read(&e);
                tracing::warn!(peer = %node, reason = e.label(), "closing a peer link: {e}");
                return;
            }
        };
        match ctx.key.open::<Wire>(&body) {
            Ok(Wire::Peer(msg)) => {
                ctx.metrics.frames_in.fetch_add(1, Relaxed);
                ctx.clocks.touch(node);
                if ctx
                    .events
                    .send(Event::Peer { from: node, msg })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(other) => {
                ctx.metrics.rejected_malformed.fetch_add(1, Relaxed);
                tracing::warn!(peer = %node, "dropped an out-of-place frame: {:?}", kind(&other));
            }
            Err(e) => {
                ctx.metrics.reject(&e);
                tracing::warn!(peer = %node, reason = e.label(), "dropped a frame: {e}");
            }
        }
    }
}

/// Writes queued messages to a peer until a write fails, `stop` fires, or the queue is
/// closed (then it returns `true`).
async fn write_loop(
    sink: &mut FramedWrite<
        tokio::net::tcp::OwnedWriteHalf,
        tokio_util::codec::LengthDelimitedCodec,
    >,
    rx: &mut mpsc::Receiver<PeerMsg>,
    key: &FrameKey,
    metrics: &Metrics,
    stop: &mut oneshot::Receiver<()>,
) -> bool {
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => return true,
            },
            _ = &mut *stop => return false,
        };
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        for m in batch {
            let Ok(body) = key.seal(&Wire::Peer(m)) else {
                continue;
            };
            if sink.feed(Bytes::from(body)).await.is_err() {
                metrics.frames_dropped_out.fetch_add(1, Relaxed);
                return false;
            }
        }
        if SinkExt::<Bytes>::flush(sink).await.is_err() {
            return false;
        }
    }
}

/// The link to a peer with a higher id, which this node dials: connect (with backoff), say
/// hello, then write every queued message and read the peer's messages on the same
/// connection. While the peer is unreachable, queued messages are dropped (counted).
pub async fn peer_link(
    me: NodeId,
    inc: u64,
    peer: NodeId,
    addr: String,
    mut rx: mpsc::Receiver<PeerMsg>,
    ctx: ListenCtx,
) {
    let (key, metrics) = (ctx.key.clone(), Arc::clone(&ctx.metrics));
    let mut backoff = BACKOFF_MIN;
    loop {
        let sock = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(_) => {
                // Drop what piled up: a lossy link, as far as the protocol knows.
                loop {
                    match rx.try_recv() {
                        Ok(_) => metrics.frames_dropped_out.fetch_add(1, Relaxed),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    };
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        let _ = sock.set_nodelay(true);
        let (r, w) = sock.into_split();
        let mut sink = FramedWrite::new(w, codec());
        let hello = Wire::Peer(PeerMsg::Hello { node: me, inc });
        let Ok(body) = key.seal(&hello) else { return };
        if sink.send(Bytes::from(body)).await.is_err() {
            continue;
        }
        let link = super::series::PeerLinks::open(&metrics, peer);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let reader_ctx = ctx.clone();
        tokio::spawn(async move {
            // This node dialed the peer's address: the link is the peer's.
            let mut reader = FramedRead::new(r, FrameCodec::authenticated());
            read_peer_frames(&mut reader, peer, &reader_ctx).await;
            drop(stop_tx);
        });
        let done = write_loop(&mut sink, &mut rx, &key, &metrics, &mut stop_rx).await;
        drop(link);
        if done {
            return;
        }
        tracing::info!(peer = %addr, "link lost; reconnecting");
    }
}
