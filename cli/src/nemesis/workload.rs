//! The nemesis's clients: concurrent real clients issuing every transaction kind against
//! every cell, with retries and deadlines, recording each operation as the history format
//! of `physalia lin` has it (`refinement/src/histories/mod.rs`): invoke and return times
//! in milliseconds since the run began, the result, or unknown when the client gave up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use physalia_impl::client::{Client, ClientError, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{ClientId, Condition, Key, Txn, TxnResult, Value, WriteOp};
use serde_json::json;

/// Most operations one run records (the bound on the history, and on the checker's work).
pub const MAX_OPS: usize = 200_000;

/// The registers every client reads, writes and compares (contended keys).
pub const REGISTERS: u64 = 4;

/// The key every client increments by one.
pub const COUNTER: &str = "counter";

/// One operation of the history.
#[derive(Clone, Debug)]
pub struct Op {
    pub client: u64,
    pub op: u64,
    pub cell: String,
    pub txn: Txn,
    pub invoke_ms: u64,
    /// `None`: never answered (unknown outcome).
    pub return_ms: Option<u64>,
    /// `None`: unknown outcome.
    pub result: Option<TxnResult>,
}

impl Op {
    /// Its line in the history file.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "client": self.client, "op": self.op, "cell": self.cell, "txn": self.txn,
            "invoke_ms": self.invoke_ms, "return_ms": self.return_ms,
            "result": match &self.result {
                Some(r) => json!({"known": r}),
                None => json!("unknown"),
            },
        })
    }
}

/// The history, shared by every client.
#[derive(Default)]
pub struct Recorder {
    pub ops: Mutex<Vec<Op>>,
}

/// Splitmix64: the clients' and the schedule's seeded choices.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn int(v: u64) -> Value {
    Value::Int(v.into())
}

/// A client of the run: its history id (`client` in the history, and its id at the cell).
pub struct Worker {
    pub id: u64,
    pub client: Client,
    pub rng: Rng,
    pub started: Instant,
    pub recorder: Arc<Recorder>,
    /// How many operations it invoked (its next operation's number is this + 1).
    pub issued: u64,
    /// The value it last read of each register (what its compare-and-sets expect).
    pub seen: Vec<Option<Value>>,
}

impl Worker {
    /// A worker with history id `id`, knowing `seeds`.
    pub fn new(
        id: u64,
        seeds: Vec<String>,
        key: &FrameKey,
        seed: u64,
        started: Instant,
        recorder: Arc<Recorder>,
    ) -> Worker {
        let opts = ClientOptions {
            // Shorter than most faults' holds: some operations end of unknown outcome.
            deadline: Duration::from_millis(1200),
            attempt_timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        };
        // The cell keeps one session per client id: distinct runs must not share ids.
        let cid = ClientId((seed.rotate_left(17) ^ id.wrapping_mul(0x9E37_79B9)) | 1);
        Worker {
            id,
            client: Client::new(seeds, key.clone(), cid, opts),
            rng: Rng(seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93)),
            started,
            recorder,
            issued: 0,
            seen: vec![None; REGISTERS as usize],
        }
    }

    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `txn` on `cell` and records it; the result, if known.
    pub async fn run(&mut self, cell: &str, txn: Txn) -> Option<TxnResult> {
        self.issued += 1;
        let op = self.issued;
        let invoke_ms = self.ms();
        let outcome = self.client.txn(cell, txn.clone()).await;
        // Round the return up: an interval only widens, which never hides a violation that
        // the recorded order shows.
        let return_ms = self.ms() + 1;
        let result = match outcome {
            Ok(r) => Some(r),
            Err(ClientError::Rejected(reason)) => Some(TxnResult::Rejected { reason }),
            // Timed out or unavailable after attempts that may have reached the log.
            Err(_) => None,
        };
        if let (Txn::Get { key }, Some(TxnResult::Get { value })) = (&txn, &result) {
            if let Some(r) = key
                .0
                .strip_prefix('r')
                .and_then(|r| r.parse::<usize>().ok())
            {
                if let Some(slot) = self.seen.get_mut(r) {
                    slot.clone_from(value);
                }
            }
        }
        let rec = Op {
            client: self.id,
            op,
            cell: cell.to_owned(),
            txn,
            invoke_ms,
            return_ms: result.as_ref().map(|_| return_ms),
            result: result.clone(),
        };
        if let Ok(mut ops) = self.recorder.ops.lock() {
            ops.push(rec);
        }
        result
    }

    /// One operation of the mix: reads, writes, compare-and-sets and compound transactions
    /// of the registers, increments of the counter, and writes of the worker's own keys
    /// (each written once: every acknowledged one must be there at the end).
    pub fn next_txn(&mut self) -> Txn {
        let reg = |r: u64| Key(format!("r{r}"));
        let unique = self.id * 1_000_000 + self.issued + 1;
        match self.rng.below(100) {
            0..=24 => Txn::Get {
                key: reg(self.rng.below(REGISTERS)),
            },
            25..=44 => Txn::Put {
                key: reg(self.rng.below(REGISTERS)),
                value: int(unique),
            },
            45..=59 => {
                let r = self.rng.below(REGISTERS);
                let expected = self.seen[r as usize].clone();
                Txn::Cas {
                    key: reg(r),
                    expected,
                    new: int(unique),
                }
            }
            60..=74 => Txn::Incr {
                key: Key(COUNTER.into()),
                by: 1.into(),
            },
            75..=89 => Txn::Put {
                key: Key(format!("w{}.{}", self.id, self.issued + 1)),
                value: int(unique),
            },
            _ => {
                let (a, b) = (self.rng.below(REGISTERS), self.rng.below(REGISTERS));
                let conditions = match self.rng.below(2) {
                    0 => vec![],
                    _ => vec![Condition {
                        key: reg(a),
                        expected: None,
                    }],
                };
                let writes = match self.rng.below(3) {
                    0 => vec![WriteOp::Delete { key: reg(b) }],
                    _ => vec![WriteOp::Put {
                        key: reg(b),
                        value: int(unique),
                    }],
                };
                Txn::Txn {
                    conditions,
                    reads: vec![reg(a), reg(b)],
                    writes,
                }
            }
        }
    }
}

/// Runs one worker until `until`, on the cells `cells`, pausing up to `think` between
/// operations; stops early once the history holds [`MAX_OPS`].
pub async fn drive(mut w: Worker, cells: u32, until: Instant, think: Duration) -> Worker {
    while Instant::now() < until {
        if w.recorder.ops.lock().map_or(true, |o| o.len() >= MAX_OPS) {
            break;
        }
        let cell = format!("c{}", w.rng.below(u64::from(cells)));
        let txn = w.next_txn();
        w.run(&cell, txn).await;
        let pause = w.rng.below(think.as_millis() as u64 + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    w
}
