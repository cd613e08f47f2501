//! The client library: typed transactions against a cell of a running cluster.
//!
//! - **Discovery**: the client knows a list of seed nodes. For a cell it has not seen, it
//!   asks the seeds in turn ([`ClientRequest::Locate`]) and caches the node directory, the
//!   cell's jury and the node believed to lead. A wrong cache entry costs a redirect or a
//!   retry, never correctness.
//! - **Redirects**: a node that does not lead answers `Redirect`; the client follows it
//!   (or, with no hint, tries the next member).
//! - **Retries**: each attempt has a timeout; between attempts the client waits a backoff
//!   with full jitter (doubling from [`ClientOptions::backoff_min`] to `backoff_max`). A
//!   retried operation keeps its `(client, op)` number, so the cell applies it at most once.
//! - **Deadline**: past [`ClientOptions::deadline`] the operation fails with
//!   [`ClientError::Timeout`]; whether it was applied is then unknown.
//! - One operation at a time per [`Client`] (the cell keeps each client's latest result).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use num_bigint::BigInt;
use physalia_traces::{ClientId, Config, Key, NodeId, OpSeq, Slot, Txn, TxnResult, Value};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::node::frame::{codec, FrameKey};
use crate::node::wire::{ClientRequest, ClientResponse, NodeStatus, Wire};

/// How hard a client tries.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// Give up on an operation after this long.
    pub deadline: Duration,
    /// Wait this long for one node's answer before trying again.
    pub attempt_timeout: Duration,
    /// Smallest backoff between attempts.
    pub backoff_min: Duration,
    /// Largest backoff between attempts.
    pub backoff_max: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            deadline: Duration::from_secs(10),
            attempt_timeout: Duration::from_millis(1000),
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_millis(200),
        }
    }
}

/// Why an operation did not succeed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// A conditional write found another value; nothing was written.
    #[error("condition failed: the current value is {}", show(.current))]
    ConditionFailed {
        /// The value found (for `cas`; `None` for a general transaction or an absent key).
        current: Option<Value>,
    },
    /// No answer before the deadline: the operation may or may not have been applied.
    #[error("timed out after {after_ms} ms (outcome unknown); last problem: {last}")]
    Timeout {
        /// How long the client tried.
        after_ms: u64,
        /// The last thing that went wrong.
        last: String,
    },
    /// No node could be reached or serve the request.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The cell refused the operation before the log (outside the limits).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The operation was applied as a no-op because it does not fit the data (e.g. an
    /// increment of a byte string).
    #[error("failed to apply: {0}")]
    Failed(String),
    /// No node knows this cell.
    #[error("unknown cell {0}")]
    UnknownCell(String),
}

fn show(v: &Option<Value>) -> String {
    v.as_ref().map_or("absent".into(), |v| v.to_string())
}

struct CellInfo {
    members: Config,
    leader: Option<NodeId>,
    /// The highest `applied` seen by eventually consistent reads (the session floor).
    floor: Slot,
}

/// A client of a cluster.
pub struct Client {
    key: FrameKey,
    seeds: Vec<String>,
    nodes: HashMap<NodeId, String>,
    cells: HashMap<String, CellInfo>,
    conns: HashMap<String, Framed<TcpStream, LengthDelimitedCodec>>,
    id: ClientId,
    next_op: OpSeq,
    next_req: u64,
    rng: u64,
    opts: ClientOptions,
}

/// What one attempt came back with.
enum Attempt {
    Done(ClientResponse),
    Retry(String),
}

impl Client {
    /// A client with id `id` (unique among the cluster's clients) knowing `seeds`.
    pub fn new(seeds: Vec<String>, key: FrameKey, id: ClientId, opts: ClientOptions) -> Client {
        let rng = id.0 ^ 0x5851_F42D_4C95_7F2D;
        Client {
            key,
            seeds,
            nodes: HashMap::new(),
            cells: HashMap::new(),
            conns: HashMap::new(),
            id,
            next_op: 1,
            next_req: 1,
            rng,
            opts,
        }
    }

    /// A client id drawn from the clock and the process id.
    pub fn random_id() -> ClientId {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut state = t ^ (u64::from(std::process::id()) << 40);
        ClientId(crate::rng::splitmix64(&mut state) >> 1)
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The number the next operation will carry.
    pub fn next_op(&self) -> OpSeq {
        self.next_op
    }

    fn random(&mut self) -> u64 {
        crate::rng::splitmix64(&mut self.rng)
    }

    /// Sends one request to `addr` and waits (at most the attempt timeout) for its answer.
    async fn call(&mut self, addr: &str, req: ClientRequest) -> Attempt {
        let timeout = self.opts.attempt_timeout;
        let id = self.next_req;
        self.next_req += 1;
        if !self.conns.contains_key(addr) {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(sock)) => {
                    let _ = sock.set_nodelay(true);
                    self.conns
                        .insert(addr.to_owned(), Framed::new(sock, codec()));
                }
                Ok(Err(e)) => return Attempt::Retry(format!("cannot connect to {addr}: {e}")),
                Err(_) => return Attempt::Retry(format!("connecting to {addr} timed out")),
            }
        }
        let body = match self.key.seal(&Wire::Request { id, req }) {
            Ok(b) => b,
            Err(e) => return Attempt::Retry(e.to_string()),
        };
        let key = self.key.clone();
        let conn = self.conns.get_mut(addr).expect("connected above");
        let exchange = async {
            conn.send(Bytes::from(body))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let frame = conn
                    .next()
                    .await
                    .ok_or_else(|| "connection closed".to_string())?
                    .map_err(|e| e.to_string())?;
                match key.open::<Wire>(&frame) {
                    Ok(Wire::Response { id: got, resp }) if got == id => return Ok(resp),
                    Ok(_) => continue, // a late answer to an earlier attempt
                    Err(e) => return Err(format!("bad frame from the node: {e}")),
                }
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(resp)) => Attempt::Done(resp),
            Ok(Err(e)) => {
                self.conns.remove(addr);
                Attempt::Retry(format!("{addr}: {e}"))
            }
            Err(_) => {
                self.conns.remove(addr);
                Attempt::Retry(format!(
                    "{addr}: no answer within {} ms",
                    timeout.as_millis()
                ))
            }
        }
    }

    async fn backoff(&mut self, attempt: u32) {
        let cap = self
            .opts
            .backoff_min
            .saturating_mul(1 << attempt.min(16))
            .min(self.opts.backoff_max);
        let ms = cap.as_millis().max(1) as u64;
        let wait = Duration::from_millis(self.random() % (ms + 1));
        tokio::time::sleep(wait).await;
    }

    /// Asks the seeds (then every known node) where `cell` lives.
    async fn locate(&mut self, cell: &str) -> Result<(), ClientError> {
        let mut candidates = self.seeds.clone();
        candidates.extend(self.nodes.values().cloned());
        let mut last = String::from("no seed nodes");
        let mut unknown = false;
        for addr in candidates {
            let req = ClientRequest::Locate {
                cell: cell.to_owned(),
            };
            match self.call(&addr, req).await {
                Attempt::Done(ClientResponse::Directory {
                    nodes,
                    members,
                    leader,
                }) => {
                    self.nodes.extend(nodes);
                    let floor = self.cells.get(cell).map_or(0, |c| c.floor);
                    let info = CellInfo {
                        members,
                        leader,
                        floor,
                    };
                    self.cells.insert(cell.to_owned(), info);
                    return Ok(());
                }
                Attempt::Done(ClientResponse::UnknownCell { .. }) => unknown = true,
                Attempt::Done(other) => last = format!("{addr}: unexpected answer {other:?}"),
                Attempt::Retry(why) => last = why,
            }
        }
        if unknown {
            return Err(ClientError::UnknownCell(cell.to_owned()));
        }
        Err(ClientError::Unavailable(format!(
            "cannot locate cell {cell}: {last}"
        )))
    }

    /// The node to try next for `cell`: the believed leader, else a random member.
    fn target(&mut self, cell: &str) -> Option<String> {
        let r = self.random();
        let info = self.cells.get(cell)?;
        let node = info.leader.or_else(|| {
            let m = &info.members.members;
            (!m.is_empty()).then(|| m[(r % m.len() as u64) as usize])
        })?;
        self.nodes.get(&node).cloned()
    }

    fn forget_leader(&mut self, cell: &str) {
        if let Some(c) = self.cells.get_mut(cell) {
            c.leader = None;
        }
    }

    /// Runs a transaction through the cell's log (linearizable) and returns its result.
    /// Results that mean "not applied" become errors: `Rejected`, or `Timeout` if the cell
    /// stayed overloaded until the deadline.
    pub async fn txn(&mut self, cell: &str, txn: Txn) -> Result<TxnResult, ClientError> {
        let op = self.next_op;
        self.next_op += 1;
        let start = Instant::now();
        let mut last = String::from("no attempt made");
        let mut attempt = 0u32;
        while start.elapsed() < self.opts.deadline {
            if attempt > 0 {
                self.backoff(attempt).await;
            }
            attempt += 1;
            if !self.cells.contains_key(cell) {
                match self.locate(cell).await {
                    Ok(()) => {}
                    Err(ClientError::UnknownCell(c)) => return Err(ClientError::UnknownCell(c)),
                    Err(e) => {
                        last = e.to_string();
                        continue;
                    }
                }
            }
            let Some(addr) = self.target(cell) else {
                self.cells.remove(cell);
                last = format!("no address for any member of {cell}");
                continue;
            };
            let req = ClientRequest::Op {
                cell: cell.to_owned(),
                client: self.id,
                op,
                txn: txn.clone(),
            };
            match self.call(&addr, req).await {
                Attempt::Done(ClientResponse::Reply { result }) => match result {
                    TxnResult::Overloaded => last = format!("{addr}: overloaded"),
                    TxnResult::Rejected { reason } => return Err(ClientError::Rejected(reason)),
                    other => return Ok(other),
                },
                Attempt::Done(ClientResponse::Redirect { leader }) => {
                    last = format!("{addr}: redirected to {leader:?}");
                    let members = self.cells.get(cell).map(|c| c.members.clone());
                    let next = leader.or_else(|| {
                        let m = members?.members;
                        let r = self.random();
                        (!m.is_empty()).then(|| m[(r % m.len() as u64) as usize])
                    });
                    if let Some(c) = self.cells.get_mut(cell) {
                        c.leader = next;
                    }
                    if leader.is_some() {
                        attempt = 0; // a fresh hint: follow it at once
                    }
                }
                Attempt::Done(ClientResponse::UnknownCell { .. }) => {
                    last = format!("{addr} does not host {cell}");
                    self.cells.remove(cell);
                }
                Attempt::Done(other) => {
                    last = format!("{addr}: unexpected answer {other:?}");
                    self.forget_leader(cell);
                }
                Attempt::Retry(why) => {
                    last = why;
                    self.forget_leader(cell);
                }
            }
        }
        Err(ClientError::Timeout {
            after_ms: start.elapsed().as_millis() as u64,
            last,
        })
    }

    /// Reads `key` linearizably.
    pub async fn get(&mut self, cell: &str, key: &str) -> Result<Option<Value>, ClientError> {
        let key = Key(key.to_owned());
        match self.txn(cell, Txn::Get { key }).await? {
            TxnResult::Get { value } => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `value` at `key`.
    pub async fn put(&mut self, cell: &str, key: &str, value: Value) -> Result<(), ClientError> {
        let key = Key(key.to_owned());
        match self.txn(cell, Txn::Put { key, value }).await? {
            TxnResult::Put => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `new` at `key` if it holds `expected` (`None`: absent).
    pub async fn cas(
        &mut self,
        cell: &str,
        key: &str,
        expected: Option<Value>,
        new: Value,
    ) -> Result<(), ClientError> {
        let key = Key(key.to_owned());
        match self.txn(cell, Txn::Cas { key, expected, new }).await? {
            TxnResult::Cas { ok: true, .. } => Ok(()),
            TxnResult::Cas { ok: false, current } => Err(ClientError::ConditionFailed { current }),
            other => Err(unexpected(other)),
        }
    }

    /// Adds `by` to the integer at `key` (absent counts as 0) and returns the new value.
    pub async fn incr(&mut self, cell: &str, key: &str, by: BigInt) -> Result<BigInt, ClientError> {
        let key = Key(key.to_owned());
        match self.txn(cell, Txn::Incr { key, by }).await? {
            TxnResult::Incr { value } => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// An eventually consistent read: from any member that has applied at least what this
    /// client's session has already seen (consistent prefix, monotonic per session).
    pub async fn read_eventual(
        &mut self,
        cell: &str,
        keys: &[&str],
    ) -> Result<Vec<(Key, Option<Value>)>, ClientError> {
        let start = Instant::now();
        let mut last = String::from("no attempt made");
        let mut attempt = 0u32;
        while start.elapsed() < self.opts.deadline {
            if attempt > 0 {
                self.backoff(attempt).await;
            }
            attempt += 1;
            if !self.cells.contains_key(cell) {
                if let Err(e) = self.locate(cell).await {
                    last = e.to_string();
                    continue;
                }
            }
            let info = self.cells.get(cell).expect("located");
            let floor = info.floor;
            let m = info.members.members.clone();
            if m.is_empty() {
                return Err(ClientError::Unavailable(format!("{cell} has no members")));
            }
            let node = m[(self.random() % m.len() as u64) as usize];
            let Some(addr) = self.nodes.get(&node).cloned() else {
                self.cells.remove(cell);
                continue;
            };
            let req = ClientRequest::Read {
                cell: cell.to_owned(),
                client: self.id,
                keys: keys.iter().map(|k| Key((*k).to_owned())).collect(),
                min_applied: floor,
            };
            match self.call(&addr, req).await {
                Attempt::Done(ClientResponse::Read { applied, values }) => {
                    if let Some(c) = self.cells.get_mut(cell) {
                        c.floor = c.floor.max(applied);
                    }
                    return Ok(values);
                }
                Attempt::Done(ClientResponse::Behind { applied }) => {
                    last = format!("{addr} has applied {applied} < session floor {floor}");
                }
                Attempt::Done(other) => last = format!("{addr}: unexpected answer {other:?}"),
                Attempt::Retry(why) => last = why,
            }
        }
        Err(ClientError::Timeout {
            after_ms: start.elapsed().as_millis() as u64,
            last,
        })
    }

    /// A node's view of itself and (at most `limit` of) its cells.
    pub async fn status(&mut self, addr: &str, limit: u32) -> Result<NodeStatus, ClientError> {
        match self.call(addr, ClientRequest::Status { limit }).await {
            Attempt::Done(ClientResponse::Status(s)) => Ok(s),
            Attempt::Done(other) => Err(ClientError::Unavailable(format!(
                "{addr}: unexpected answer {other:?}"
            ))),
            Attempt::Retry(why) => Err(ClientError::Unavailable(why)),
        }
    }
}

fn unexpected(result: TxnResult) -> ClientError {
    match result {
        TxnResult::Error { error } => ClientError::Failed(format!("{error:?}")),
        other => ClientError::Failed(format!("unexpected result {other:?}")),
    }
}
