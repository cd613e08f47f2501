//! What a connection may cost before and after it proves it holds the cluster key.
//!
//! A connection is *unauthenticated* until its first frame that opens with the cluster key
//! (a peer's `Hello` or a client's request). Until then it may buffer at most
//! [`PREAUTH_MAX_FRAME`] bytes of a frame, it must authenticate within
//! [`HANDSHAKE_DEADLINE`] of being accepted, and at most [`MAX_UNAUTHENTICATED`] such
//! connections are open: a new one evicts the oldest, so idle or slow connections cannot
//! lock clients out (a client authenticates with its first frame, in one round trip). All
//! connections together stay below the process's open-file limit ([`Admission::new`]), with
//! room kept for the log, the listener and the peer links. After authentication a
//! connection that sends nothing for [`IDLE_TIMEOUT`] is closed. Memory per connection
//! grows with the bytes that have arrived, not with the length a prefix announces
//! ([`FrameCodec`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::sync::watch;
use tokio_util::codec::Decoder;

use super::frame::MAX_FRAME;

/// Largest frame an unauthenticated connection may send (a `Hello` or a client request is
/// far smaller).
pub const PREAUTH_MAX_FRAME: usize = 64 * 1024;
/// An accepted connection must send a frame sealed with the cluster key within this time.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(3);
/// Most unauthenticated connections open at once; a new one evicts the oldest.
pub const MAX_UNAUTHENTICATED: usize = 128;
/// An authenticated connection silent this long is closed (peers send a heartbeat every
/// few tens of milliseconds; clients reconnect on their next operation).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Fewest connections admitted, however low the open-file limit (the peers' links and a
/// few clients: past the limit `accept` fails, which is counted and logged).
pub const MIN_CONNECTIONS: usize = 8;
/// Most connections of all kinds, whatever the open-file limit.
pub const MAX_CONNECTIONS: usize = 4096;
/// File descriptors kept out of the connection budget: the WAL's files, the listeners, the
/// outgoing peer links and the runtime's own (trace files are counted on top, one per
/// traced cell).
pub const RESERVED_FDS: usize = 96;
/// How much more a frame's buffer grows at a time, while its bytes arrive.
const GROW_STEP: usize = 16 * 1024;

/// Why reading frames stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A length prefix above the connection's limit: the framing is lost.
    #[error("frame length {len} exceeds the limit of {max}")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The connection's limit.
        max: usize,
    },
    /// The connection ended inside a frame.
    #[error("the connection ended {have} bytes into a frame of {want}")]
    EofMidFrame {
        /// Bytes of the frame that arrived (prefix included).
        have: usize,
        /// Bytes the frame needed (prefix included).
        want: usize,
    },
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// A short label for metrics (`reason="..."`).
    pub fn label(&self) -> &'static str {
        match self {
            ReadError::Oversized { .. } => "oversized",
            ReadError::EofMidFrame { .. } => "eof_mid_frame",
            ReadError::Io(_) => "io",
        }
    }
}

/// Reads the frames of [`super::frame`] (a 4-byte big-endian length, then the body) with
/// a per-connection length limit that can be raised once the connection authenticates,
/// reserving buffer space as bytes arrive rather than for the whole announced length.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A decoder for a connection not yet authenticated.
    pub fn unauthenticated() -> FrameCodec {
        FrameCodec {
            max: PREAUTH_MAX_FRAME,
        }
    }

    /// A decoder for a connection known to hold the key (a link this node dialed).
    pub fn authenticated() -> FrameCodec {
        FrameCodec { max: MAX_FRAME }
    }

    /// Raises the limit to [`MAX_FRAME`] (the connection authenticated).
    pub fn authenticate(&mut self) {
        self.max = MAX_FRAME;
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, ReadError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            return Err(ReadError::Oversized { len, max: self.max });
        }
        let want = 4 + len;
        if src.len() < want {
            // Room for what may come next, never the whole announced length at once.
            src.reserve((want - src.len()).min(GROW_STEP));
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, ReadError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let have = src.len();
                let want = if have >= 4 {
                    4 + u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize
                } else {
                    4
                };
                src.clear();
                Err(ReadError::EofMidFrame { have, want })
            }
        }
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`), if it says.
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

/// Which connections are open, and which of them have not authenticated yet.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    open: AtomicUsize,
    next_id: AtomicU64,
    /// Unauthenticated connections, oldest first, each with the sender that closes it.
    waiting: Mutex<VecDeque<(u64, watch::Sender<bool>)>>,
}

/// One admitted connection: released when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    /// Becomes `true` when the connection is evicted.
    pub evicted: watch::Receiver<bool>,
    authenticated: bool,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken by authenticated connections.
    Full,
}

impl Admission {
    /// Admission for a process whose open-file limit is `fd_limit` (if known) and which
    /// keeps `files` more files open (one trace file per traced cell): at most the limit
    /// minus [`RESERVED_FDS`] and `files`, and at most [`MAX_CONNECTIONS`], connections.
    pub fn new(fd_limit: Option<usize>, files: usize) -> Arc<Admission> {
        let by_fds = fd_limit
            .unwrap_or(1024)
            .saturating_sub(RESERVED_FDS.saturating_add(files))
            .max(MIN_CONNECTIONS);
        Arc::new(Admission {
            max_total: by_fds.min(MAX_CONNECTIONS),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            waiting: Mutex::new(VecDeque::new()),
        })
    }

    /// Most connections open at once.
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a new (unauthenticated) connection, evicting the oldest unauthenticated one
    /// if there are [`MAX_UNAUTHENTICATED`] of them, or if all slots are taken. Returns how
    /// many were evicted with the ticket.
    pub fn admit(self: &Arc<Self>) -> Result<(Ticket, usize), Refusal> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = 0;
        while waiting.len() >= MAX_UNAUTHENTICATED
            || (self.open.load(Ordering::Relaxed) >= self.max_total && !waiting.is_empty())
        {
            if let Some((_, close)) = waiting.pop_front() {
                let _ = close.send(true);
                // Its slot is released here (its ticket, dropped later, releases nothing),
                // so that the slot goes to the newcomer.
                self.open.fetch_sub(1, Ordering::Relaxed);
                evicted += 1;
            }
        }
        if self.open.load(Ordering::Relaxed) >= self.max_total {
            return Err(Refusal::Full);
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(false);
        waiting.push_back((id, tx));
        Ok((
            Ticket {
                admission: Arc::clone(self),
                id,
                evicted: rx,
                authenticated: false,
            },
            evicted,
        ))
    }
}

impl Ticket {
    /// The connection proved it holds the key: it can no longer be evicted. `false` if it
    /// was evicted first (its slot is gone: the caller closes it).
    pub fn authenticate(&mut self) -> bool {
        if self.authenticated {
            return true;
        }
        let mut waiting = self
            .admission
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(i) = waiting.iter().position(|(id, _)| *id == self.id) {
            waiting.remove(i);
            self.authenticated = true;
        }
        self.authenticated
    }

    /// Whether this connection was evicted (its slot already given away).
    pub fn is_evicted(&self) -> bool {
        *self.evicted.borrow()
    }
}

impl Drop for Ticket {
    /// Releases the slot, deciding under the lock: an unauthenticated ticket still waiting
    /// releases it now; one no longer waiting was evicted (its slot was released then)
    /// unless it had authenticated.
    fn drop(&mut self) {
        let mut waiting = self
            .admission
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let release = match waiting.iter().position(|(id, _)| *id == self.id) {
            Some(i) => {
                waiting.remove(i);
                true
            }
            None => self.authenticated,
        };
        if release {
            self.admission.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_read_as_its_bytes_arrive_and_limits_hold() {
        let mut c = FrameCodec::unauthenticated();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(10u32).to_be_bytes());
        buf.extend_from_slice(b"hello");
        assert!(c.decode(&mut buf).unwrap().is_none());
        // No reservation for the whole of a large announced frame.
        let mut big = BytesMut::new();
        big.extend_from_slice(&(60_000u32).to_be_bytes());
        assert!(c.decode(&mut big).unwrap().is_none());
        assert!(big.capacity() <= 4 + GROW_STEP + 64, "{}", big.capacity());
        buf.extend_from_slice(b"world");
        assert_eq!(&c.decode(&mut buf).unwrap().unwrap()[..], b"helloworld");
        let mut over = BytesMut::new();
        over.extend_from_slice(&((PREAUTH_MAX_FRAME as u32) + 1).to_be_bytes());
        assert!(matches!(
            c.decode(&mut over),
            Err(ReadError::Oversized { .. })
        ));
        c.authenticate();
        assert!(c.decode(&mut over).unwrap().is_none());
        let mut cut = BytesMut::new();
        cut.extend_from_slice(&(8u32).to_be_bytes());
        cut.extend_from_slice(b"abc");
        let e = c.decode_eof(&mut cut).unwrap_err();
        assert_eq!(e.label(), "eof_mid_frame");
        assert!(c.decode_eof(&mut BytesMut::new()).unwrap().is_none());
    }

    #[test]
    fn unauthenticated_connections_are_evicted_oldest_first_and_slots_are_bounded() {
        let a = Admission::new(Some(RESERVED_FDS + 8 + 2), 0);
        assert_eq!(a.max_total(), 10);
        let mut tickets: Vec<Ticket> = (0..10).map(|_| a.admit().unwrap().0).collect();
        // All ten are unauthenticated: the eleventh evicts the oldest.
        let (t, evicted) = a.admit().unwrap();
        assert_eq!(evicted, 1);
        assert!(tickets[0].is_evicted());
        assert_eq!(a.open(), 10);
        tickets.push(t);
        // Authenticated connections cannot be evicted: with every slot authenticated, a
        // newcomer is refused.
        for t in tickets.iter_mut().skip(1) {
            t.authenticate();
        }
        assert_eq!(a.admit().unwrap_err(), Refusal::Full);
        drop(tickets);
        assert_eq!(a.open(), 0);
        let (_t, evicted) = a.admit().unwrap();
        assert_eq!(evicted, 0);
    }

    #[test]
    fn the_open_file_limit_is_read() {
        let n = open_file_limit().expect("Linux has /proc/self/limits");
        assert!(n > 0);
    }
}
