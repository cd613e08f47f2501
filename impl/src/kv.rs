//! The cell's replicated state machine: the jury (membership) and a typed key-value store
//! with transactions, applied in slot order.
//!
//! Every operation is fully specified: [`StateMachine::apply`] is total and deterministic
//! for every command, valid or not (no poison pill). Operations outside the [`Limits`] are
//! refused by [`validate`] before they reach the log (fail closed); if one is found in the
//! log anyway, apply answers it as `Rejected` without effect. Each `(client, op)` takes
//! effect at most once: a repeat is answered with the first result.

use std::collections::BTreeMap;

use num_bigint::BigInt;
use physalia_traces::{
    ApplyError, ClientId, Command, Condition, Config, Image, Key, OpSeq, Slot, Txn, TxnResult,
    Value, WriteOp,
};
use thiserror::Error;

/// Bounds on what one transaction may hold. Each bound is checked before the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes (keys are non-empty).
    pub max_key_len: usize,
    /// Longest byte-string value.
    pub max_bytes_len: usize,
    /// Largest integer, in bits of magnitude (stored values and increments alike).
    pub max_int_bits: u64,
    /// Most conditions + reads + writes in one transaction.
    pub max_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 256,
            max_bytes_len: 4096,
            max_int_bits: 1024,
            max_ops: 64,
        }
    }
}

/// Why an operation is refused before it reaches the log.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Rejection {
    /// A key is empty or longer than the limit.
    #[error("key of {len} bytes is outside 1..={max}")]
    BadKey {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A byte string is longer than the limit.
    #[error("byte string of {len} bytes exceeds {max}")]
    BytesTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An integer is larger than the limit.
    #[error("integer of {bits} bits exceeds {max}")]
    IntegerTooLarge {
        /// Its size.
        bits: u64,
        /// The limit.
        max: u64,
    },
    /// A transaction holds too many parts, or none.
    #[error("transaction with {count} parts is outside 1..={max}")]
    BadSize {
        /// Conditions + reads + writes.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks that `txn` is within `limits`; an operation that fails never enters the log.
pub fn validate(txn: &Txn, limits: &Limits) -> Result<(), Rejection> {
    match txn {
        Txn::Get { key } => check_key(key, limits),
        Txn::Put { key, value } => check_key(key, limits).and(check_value(value, limits)),
        Txn::Cas { key, expected, new } => {
            check_key(key, limits)?;
            expected.iter().try_for_each(|v| check_value(v, limits))?;
            check_value(new, limits)
        }
        Txn::Incr { key, by } => check_key(key, limits).and(check_int(by, limits)),
        Txn::Txn {
            conditions,
            reads,
            writes,
        } => {
            let count = conditions.len() + reads.len() + writes.len();
            if count == 0 || count > limits.max_ops {
                return Err(Rejection::BadSize {
                    count,
                    max: limits.max_ops,
                });
            }
            for c in conditions {
                check_key(&c.key, limits)?;
                c.expected.iter().try_for_each(|v| check_value(v, limits))?;
            }
            reads.iter().try_for_each(|k| check_key(k, limits))?;
            writes.iter().try_for_each(|w| check_write(w, limits))
        }
        // Validity against the jury is decided where it applies (it depends on the log).
        Txn::Reconfig { .. } => Ok(()),
    }
}

fn check_write(w: &WriteOp, limits: &Limits) -> Result<(), Rejection> {
    match w {
        WriteOp::Put { key, value } => check_key(key, limits).and(check_value(value, limits)),
        WriteOp::Delete { key } => check_key(key, limits),
        WriteOp::Incr { key, by } => check_key(key, limits).and(check_int(by, limits)),
        WriteOp::Append { key, bytes } => {
            check_key(key, limits).and(check_value(&Value::Bytes(bytes.clone()), limits))
        }
    }
}

fn check_key(key: &Key, limits: &Limits) -> Result<(), Rejection> {
    let len = key.0.len();
    if len == 0 || len > limits.max_key_len {
        return Err(Rejection::BadKey {
            len,
            max: limits.max_key_len,
        });
    }
    Ok(())
}

fn check_value(v: &Value, limits: &Limits) -> Result<(), Rejection> {
    match v {
        Value::Bytes(b) if b.len() > limits.max_bytes_len => Err(Rejection::BytesTooLong {
            len: b.len(),
            max: limits.max_bytes_len,
        }),
        Value::Int(i) => check_int(i, limits),
        _ => Ok(()),
    }
}

fn check_int(i: &BigInt, limits: &Limits) -> Result<(), Rejection> {
    if i.bits() > limits.max_int_bits {
        return Err(Rejection::IntegerTooLarge {
            bits: i.bits(),
            max: limits.max_int_bits,
        });
    }
    Ok(())
}

mod jury;

pub use jury::{check_image, Jury, MAX_CONFIGS, MAX_JURY, MAX_SLOT};

/// What applying one committed command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A no-op, or a repeat of an operation older than the client's latest: nothing to say.
    Nothing,
    /// The result of `(client, op)`: fresh, or the first result of a repeat.
    Result {
        /// The client.
        client: ClientId,
        /// The operation.
        op: OpSeq,
        /// Its result.
        result: TxnResult,
    },
}

/// An eventually consistent local read's answer (the trace's vocabulary).
pub use physalia_traces::ReadAnswer as LocalRead;

/// The replicated state of one cell, as of the first `applied` slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMachine {
    data: BTreeMap<Key, Value>,
    sessions: BTreeMap<ClientId, (OpSeq, TxnResult)>,
    applied: Slot,
    limits: Limits,
    jury: Jury,
    alpha: u64,
    /// The last applied slot holding a jury change (see [`Image::last_change`]).
    last_change: Option<Slot>,
}

impl StateMachine {
    /// An empty store with jury `config`; a jury change applied at slot `i` is in force
    /// from `i + alpha`.
    pub fn new(config: Config, limits: Limits, alpha: u64) -> StateMachine {
        StateMachine {
            data: BTreeMap::new(),
            sessions: BTreeMap::new(),
            applied: 0,
            limits,
            jury: Jury::new(config),
            alpha: alpha.max(1),
            last_change: None,
        }
    }

    /// How many slots have been applied.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The jury.
    pub fn jury(&self) -> &Jury {
        &self.jury
    }

    /// The pipeline window α: how many slots after its own a jury change takes effect.
    pub fn alpha(&self) -> u64 {
        self.alpha
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The value at `key`.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.data.get(key)
    }

    /// Every key and its value, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.data.iter()
    }

    /// The first result of `(client, op)` if it is the client's latest applied operation.
    pub fn result_of(&self, client: ClientId, op: OpSeq) -> Option<&TxnResult> {
        match self.sessions.get(&client) {
            Some((last, result)) if *last == op => Some(result),
            _ => None,
        }
    }

    /// Whether `(client, op)` was applied already (it or a later operation of the client).
    pub fn seen(&self, client: ClientId, op: OpSeq) -> bool {
        matches!(self.sessions.get(&client), Some((last, _)) if *last >= op)
    }

    /// Applies the command of the next slot (`applied`). Total and deterministic.
    pub fn apply(&mut self, command: &Command) -> Applied {
        let slot = self.applied;
        self.applied += 1;
        let Command::Op { client, op, txn } = command else {
            return Applied::Nothing;
        };
        if txn.is_reconfig() {
            self.last_change = Some(slot);
        }
        if let Some((last, result)) = self.sessions.get(client) {
            if *last == *op {
                return Applied::Result {
                    client: *client,
                    op: *op,
                    result: result.clone(),
                };
            }
            if *last > *op {
                return Applied::Nothing;
            }
        }
        let result = match validate(txn, &self.limits) {
            Ok(()) if txn.is_reconfig() => self.reconfigure(txn, slot),
            Ok(()) => self.execute(txn),
            Err(r) => TxnResult::Rejected {
                reason: r.to_string(),
            },
        };
        self.sessions.insert(*client, (*op, result.clone()));
        Applied::Result {
            client: *client,
            op: *op,
            result,
        }
    }

    /// The state as of the applied prefix, as a snapshot keeps and ships it.
    pub fn image(&self) -> Image {
        Image {
            upto: self.applied,
            data: self
                .data
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(c, (op, r))| (*c, *op, r.clone()))
                .collect(),
            juries: self.jury.configs.clone(),
            last_change: self.last_change,
        }
    }

    /// The last applied slot holding a jury change, if any.
    pub fn last_change(&self) -> Option<Slot> {
        self.last_change
    }

    /// The state machine a snapshot holds (with this machine's limits and α). Refused if
    /// the image is not one a state machine could have produced: no jury, juries out of
    /// slot order, a jury over [`MAX_JURY`] members or unsorted, or more than
    /// [`MAX_CONFIGS`] of them.
    pub fn from_image(&self, image: &Image) -> Result<StateMachine, String> {
        check_image(image)?;
        let configs = &image.juries;
        // A change applied below `upto` is in force by `upto + α − 1` at the latest.
        if configs
            .last()
            .is_some_and(|(start, _, _)| *start >= image.upto.saturating_add(self.alpha))
        {
            return Err("a configuration in force beyond what the snapshot's changes give".into());
        }
        let l = &self.limits;
        for (k, v) in &image.data {
            let fits = match v {
                Value::Bytes(b) => b.len() <= l.max_bytes_len,
                Value::Int(i) => i.bits() <= l.max_int_bits,
                Value::Bool(_) => true,
            };
            if k.0.is_empty() || k.0.len() > l.max_key_len || !fits {
                return Err(format!("key {k}: outside this cell's limits"));
            }
        }
        Ok(StateMachine {
            data: image.data.iter().cloned().collect(),
            sessions: image
                .sessions
                .iter()
                .map(|(c, op, r)| (*c, (*op, r.clone())))
                .collect(),
            applied: image.upto,
            limits: self.limits,
            jury: Jury {
                configs: configs.clone(),
            },
            alpha: self.alpha,
            last_change: image.last_change,
        })
    }

    /// Serves an eventually consistent read from the applied prefix, if it is at least as
    /// recent as the client's session floor `min_applied` (monotonic reads).
    pub fn read_local(&self, keys: &[Key], min_applied: Slot) -> LocalRead {
        if self.applied < min_applied {
            return LocalRead::Behind {
                applied: self.applied,
            };
        }
        LocalRead::Values {
            applied: self.applied,
            values: keys
                .iter()
                .map(|k| (k.clone(), self.data.get(k).cloned()))
                .collect(),
        }
    }

    /// A jury change applied at `slot`: valid against the latest jury, it is in force from
    /// `slot + α`; otherwise it changes nothing.
    fn reconfigure(&mut self, txn: &Txn, slot: Slot) -> TxnResult {
        let Txn::Reconfig { change } = txn else {
            return TxnResult::Rejected {
                reason: "not a jury change".to_owned(),
            };
        };
        let in_force = slot + self.alpha;
        let ok = match self.jury.changed(change) {
            Some(config) => {
                self.jury.push(in_force, config);
                true
            }
            None => false,
        };
        let (jury, epoch) = self.jury.latest();
        TxnResult::Reconfig {
            ok,
            jury: jury.members.clone(),
            epoch,
            in_force,
        }
    }

    fn execute(&mut self, txn: &Txn) -> TxnResult {
        match txn {
            Txn::Get { key } => TxnResult::Get {
                value: self.data.get(key).cloned(),
            },
            Txn::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                TxnResult::Put
            }
            Txn::Cas { key, expected, new } => {
                let current = self.data.get(key).cloned();
                let ok = current == *expected;
                if ok {
                    self.data.insert(key.clone(), new.clone());
                }
                TxnResult::Cas { ok, current }
            }
            Txn::Incr { key, by } => match self.incremented(key, by, self.data.get(key)) {
                Ok(v) => {
                    self.data.insert(key.clone(), Value::Int(v.clone()));
                    TxnResult::Incr { value: v }
                }
                Err(error) => TxnResult::Error { error },
            },
            Txn::Txn {
                conditions,
                reads,
                writes,
            } => self.transaction(conditions, reads, writes),
            Txn::Reconfig { .. } => TxnResult::Rejected {
                reason: "a jury change is applied by reconfigure".to_owned(),
            },
        }
    }

    fn incremented(
        &self,
        key: &Key,
        by: &BigInt,
        current: Option<&Value>,
    ) -> Result<BigInt, ApplyError> {
        let base = match current {
            None => BigInt::from(0),
            Some(Value::Int(i)) => i.clone(),
            Some(_) => return Err(ApplyError::NotAnInteger { key: key.clone() }),
        };
        let v = base + by;
        if v.bits() > self.limits.max_int_bits {
            return Err(ApplyError::IntegerTooLarge { key: key.clone() });
        }
        Ok(v)
    }

    /// `current` with `bytes` appended (absent counts as empty), or why not: not a byte
    /// string, or longer than the value bound.
    fn appended(
        &self,
        key: &Key,
        bytes: &[u8],
        current: Option<&Value>,
    ) -> Result<Value, ApplyError> {
        let mut v = match current {
            None => Vec::new(),
            Some(Value::Bytes(b)) => b.clone(),
            Some(_) => return Err(ApplyError::NotBytes { key: key.clone() }),
        };
        if v.len() + bytes.len() > self.limits.max_bytes_len {
            return Err(ApplyError::BytesTooLong { key: key.clone() });
        }
        v.extend_from_slice(bytes);
        Ok(Value::Bytes(v))
    }

    /// Reads first, then checks every condition, then applies every write to an overlay
    /// that is committed only if no write failed: all or nothing.
    fn transaction(
        &mut self,
        conditions: &[Condition],
        reads: &[Key],
        writes: &[WriteOp],
    ) -> TxnResult {
        let reads: Vec<(Key, Option<Value>)> = reads
            .iter()
            .map(|k| (k.clone(), self.data.get(k).cloned()))
            .collect();
        let ok = conditions
            .iter()
            .all(|c| self.data.get(&c.key) == c.expected.as_ref());
        if !ok {
            return TxnResult::Txn { ok, reads };
        }
        let mut overlay: BTreeMap<Key, Option<Value>> = BTreeMap::new();
        for w in writes {
            match w {
                WriteOp::Put { key, value } => {
                    overlay.insert(key.clone(), Some(value.clone()));
                }
                WriteOp::Delete { key } => {
                    overlay.insert(key.clone(), None);
                }
                WriteOp::Incr { key, by } => {
                    let current = match overlay.get(key) {
                        Some(staged) => staged.as_ref(),
                        None => self.data.get(key),
                    };
                    match self.incremented(key, by, current) {
                        Ok(v) => overlay.insert(key.clone(), Some(Value::Int(v))),
                        Err(error) => return TxnResult::Error { error },
                    };
                }
                WriteOp::Append { key, bytes } => {
                    let current = match overlay.get(key) {
                        Some(staged) => staged.as_ref(),
                        None => self.data.get(key),
                    };
                    match self.appended(key, bytes, current) {
                        Ok(v) => overlay.insert(key.clone(), Some(v)),
                        Err(error) => return TxnResult::Error { error },
                    };
                }
            }
        }
        for (k, v) in overlay {
            match v {
                Some(v) => self.data.insert(k, v),
                None => self.data.remove(&k),
            };
        }
        TxnResult::Txn { ok, reads }
    }
}
