//! The cell's transactional key-value store as an executable specification.
//!
//! Written from the documented semantics (`traces/README.md`, "Transactions and results",
//! and `docs/protocol.md`, "The state machine"), independently of the implementation's
//! `physalia_impl::kv`. It is the sequential object against which client histories are
//! checked for linearizability ([`crate::linearizability`]).
//!
//! The specification covers the effect of transactions that reached the log and passed
//! validation; refusals before the log (`Rejected`, `Overloaded`) are never applied and are
//! not modelled here. Where the documentation is silent, the choices below were taken from
//! the implementation's observable behaviour and are stated on [`KvSpec::apply`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use num_bigint::BigInt;
use physalia_traces::{ApplyError, Condition, Key, Txn, TxnResult, Value, WriteOp};

/// The default bound on integer magnitude, in bits (the implementation's default limit).
pub const DEFAULT_MAX_INT_BITS: u64 = 1024;

/// The bound on a byte string's length that an append may not exceed (the implementation's
/// default limit; `crosscheck` keeps the two equal).
pub const MAX_BYTES_LEN: usize = 4096;

/// The state of a cell's key-value store: an ordered map from keys to values.
///
/// Cloning is O(1) (the map is shared and copied on the first write), and the state is
/// `Hash + Eq` so that a search can remember which states it has visited.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvSpec {
    data: Arc<BTreeMap<Key, Value>>,
    max_int_bits: u64,
    max_bytes_len: usize,
}

impl Default for KvSpec {
    fn default() -> Self {
        KvSpec::new()
    }
}

impl KvSpec {
    /// An empty store whose increments may produce integers up to
    /// [`DEFAULT_MAX_INT_BITS`] bits.
    pub fn new() -> KvSpec {
        KvSpec::with_max_int_bits(DEFAULT_MAX_INT_BITS)
    }

    /// An empty store whose increments fail with `IntegerTooLarge` beyond `max_int_bits`
    /// bits of magnitude (the cell's `max_int_bits` limit).
    pub fn with_max_int_bits(max_int_bits: u64) -> KvSpec {
        KvSpec::with_limits(max_int_bits, MAX_BYTES_LEN)
    }

    /// An empty store with both bounds: integers up to `max_int_bits` bits, byte strings an
    /// append may grow up to `max_bytes_len` bytes (the cell's are [`DEFAULT_MAX_INT_BITS`]
    /// and [`MAX_BYTES_LEN`]; a foreign history's store may have none).
    pub fn with_limits(max_int_bits: u64, max_bytes_len: usize) -> KvSpec {
        KvSpec {
            data: Arc::new(BTreeMap::new()),
            max_int_bits,
            max_bytes_len,
        }
    }

    /// A store holding `entries`, with the same bounds as this one.
    pub fn with_entries(&self, entries: impl IntoIterator<Item = (Key, Value)>) -> KvSpec {
        KvSpec {
            data: Arc::new(entries.into_iter().collect()),
            max_int_bits: self.max_int_bits,
            max_bytes_len: self.max_bytes_len,
        }
    }

    /// The value at `key` (`None`: absent).
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.data.get(key)
    }

    /// Every key and its value, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.data.iter()
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Applies one transaction that reached the log and returns its result.
    ///
    /// - `Get` reads; `Put` writes; `Cas` writes `new` iff the key holds `expected`
    ///   (`None`: absent) and reports the value found before.
    /// - `Incr` adds to an integer, absent counting as 0, and returns the new value. On a
    ///   byte string or boolean it is a no-op answered `Error { NotAnInteger }`; when the
    ///   sum would exceed the integer bound, a no-op answered `Error { IntegerTooLarge }`.
    /// - `Txn` reads `reads` before any write, then evaluates every condition against the
    ///   state before the transaction. If one fails: `ok: false` with the reads, and no
    ///   write. Otherwise the writes apply in order, an `incr` seeing the earlier writes of
    ///   the same transaction; if any write fails the whole transaction is a no-op
    ///   answered with that write's `Error` (all or nothing), else `ok: true` with the reads.
    pub fn apply(&mut self, txn: &Txn) -> TxnResult {
        match txn {
            Txn::Get { key } => TxnResult::Get {
                value: self.get(key).cloned(),
            },
            Txn::Put { key, value } => {
                Arc::make_mut(&mut self.data).insert(key.clone(), value.clone());
                TxnResult::Put
            }
            Txn::Cas { key, expected, new } => {
                let current = self.get(key).cloned();
                let ok = current == *expected;
                if ok {
                    Arc::make_mut(&mut self.data).insert(key.clone(), new.clone());
                }
                TxnResult::Cas { ok, current }
            }
            Txn::Incr { key, by } => match self.sum(key, self.get(key), by) {
                Ok(value) => {
                    Arc::make_mut(&mut self.data).insert(key.clone(), Value::Int(value.clone()));
                    TxnResult::Incr { value }
                }
                Err(error) => TxnResult::Error { error },
            },
            Txn::Txn {
                conditions,
                reads,
                writes,
            } => self.transaction(conditions, reads, writes),
            // A jury change touches no key; its result is the jury's (`spec::jury`), and
            // client histories leave it out (it is not an operation of the store).
            Txn::Reconfig { .. } => TxnResult::Rejected {
                reason: "a jury change is not an operation of the key-value store".to_owned(),
            },
        }
    }

    /// Whether applying `txn` can never change the state, whatever the state is.
    pub fn is_read_only(txn: &Txn) -> bool {
        match txn {
            Txn::Get { .. } | Txn::Reconfig { .. } => true,
            Txn::Txn { writes, .. } => writes.is_empty(),
            Txn::Put { .. } | Txn::Cas { .. } | Txn::Incr { .. } => false,
        }
    }

    /// Every key `txn` reads, tests or writes (with repeats, in the order written).
    pub fn keys(txn: &Txn) -> Vec<&Key> {
        match txn {
            Txn::Get { key } | Txn::Put { key, .. } | Txn::Cas { key, .. } => vec![key],
            Txn::Incr { key, .. } => vec![key],
            Txn::Reconfig { .. } => Vec::new(),
            Txn::Txn {
                conditions,
                reads,
                writes,
            } => conditions
                .iter()
                .map(|c| &c.key)
                .chain(reads.iter())
                .chain(writes.iter().map(WriteOp::key))
                .collect(),
        }
    }

    /// `current + by`, where absent counts as 0, or why the increment fails.
    fn sum(&self, key: &Key, current: Option<&Value>, by: &BigInt) -> Result<BigInt, ApplyError> {
        let sum = match current {
            None => by.clone(),
            Some(Value::Int(i)) => i + by,
            Some(Value::Bytes(_) | Value::Bool(_)) => {
                return Err(ApplyError::NotAnInteger { key: key.clone() })
            }
        };
        if sum.bits() > self.max_int_bits {
            return Err(ApplyError::IntegerTooLarge { key: key.clone() });
        }
        Ok(sum)
    }

    fn transaction(
        &mut self,
        conditions: &[Condition],
        reads: &[Key],
        writes: &[WriteOp],
    ) -> TxnResult {
        let reads: Vec<(Key, Option<Value>)> = reads
            .iter()
            .map(|k| (k.clone(), self.get(k).cloned()))
            .collect();
        let holds = conditions
            .iter()
            .all(|c| self.get(&c.key) == c.expected.as_ref());
        if !holds {
            return TxnResult::Txn { ok: false, reads };
        }
        if writes.is_empty() {
            return TxnResult::Txn { ok: true, reads };
        }
        // Writes go to a copy that replaces the state only if every write succeeded.
        let mut next = KvSpec {
            data: Arc::clone(&self.data),
            max_int_bits: self.max_int_bits,
            max_bytes_len: self.max_bytes_len,
        };
        for w in writes {
            match w {
                WriteOp::Put { key, value } => {
                    Arc::make_mut(&mut next.data).insert(key.clone(), value.clone());
                }
                WriteOp::Delete { key } => {
                    if next.data.contains_key(key) {
                        Arc::make_mut(&mut next.data).remove(key);
                    }
                }
                WriteOp::Incr { key, by } => match next.sum(key, next.get(key), by) {
                    Ok(v) => {
                        Arc::make_mut(&mut next.data).insert(key.clone(), Value::Int(v));
                    }
                    Err(error) => return TxnResult::Error { error },
                },
                WriteOp::Append { key, bytes } => {
                    let mut v = match next.get(key) {
                        None => Vec::new(),
                        Some(Value::Bytes(b)) => b.clone(),
                        Some(Value::Int(_) | Value::Bool(_)) => {
                            return TxnResult::Error {
                                error: ApplyError::NotBytes { key: key.clone() },
                            }
                        }
                    };
                    if v.len().saturating_add(bytes.len()) > next.max_bytes_len {
                        return TxnResult::Error {
                            error: ApplyError::BytesTooLong { key: key.clone() },
                        };
                    }
                    v.extend_from_slice(bytes);
                    Arc::make_mut(&mut next.data).insert(key.clone(), Value::Bytes(v));
                }
            }
        }
        *self = next;
        TxnResult::Txn { ok: true, reads }
    }
}

impl fmt::Display for KvSpec {
    /// `{a: 1, b: "x"}`, in key order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.data.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}: {v}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::from(s)
    }
    fn int(i: i64) -> Value {
        Value::Int(BigInt::from(i))
    }
    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn get_put_cas() {
        let mut s = KvSpec::new();
        assert_eq!(
            s.apply(&Txn::Get { key: k("a") }),
            TxnResult::Get { value: None }
        );
        let put = Txn::Put {
            key: k("a"),
            value: bytes("x"),
        };
        assert_eq!(s.apply(&put), TxnResult::Put);
        let cas_absent = Txn::Cas {
            key: k("a"),
            expected: None,
            new: int(1),
        };
        assert_eq!(
            s.apply(&cas_absent),
            TxnResult::Cas {
                ok: false,
                current: Some(bytes("x"))
            }
        );
        let cas = Txn::Cas {
            key: k("a"),
            expected: Some(bytes("x")),
            new: int(1),
        };
        assert_eq!(
            s.apply(&cas),
            TxnResult::Cas {
                ok: true,
                current: Some(bytes("x"))
            }
        );
        assert_eq!(s.get(&k("a")), Some(&int(1)));
    }

    #[test]
    fn incr_counts_absent_as_zero_and_refuses_non_integers() {
        let mut s = KvSpec::new();
        let incr = |by: i64| Txn::Incr {
            key: k("n"),
            by: BigInt::from(by),
        };
        assert_eq!(
            s.apply(&incr(5)),
            TxnResult::Incr {
                value: BigInt::from(5)
            }
        );
        assert_eq!(
            s.apply(&incr(-7)),
            TxnResult::Incr {
                value: BigInt::from(-2)
            }
        );
        s.apply(&Txn::Put {
            key: k("n"),
            value: Value::Bool(true),
        });
        let before = s.clone();
        assert_eq!(
            s.apply(&incr(1)),
            TxnResult::Error {
                error: ApplyError::NotAnInteger { key: k("n") }
            }
        );
        assert_eq!(s, before, "a failed increment is a no-op");
    }

    #[test]
    fn incr_beyond_the_bound_is_a_no_op() {
        let mut s = KvSpec::with_max_int_bits(4);
        let incr = |by: i64| Txn::Incr {
            key: k("n"),
            by: BigInt::from(by),
        };
        assert_eq!(
            s.apply(&incr(15)),
            TxnResult::Incr {
                value: BigInt::from(15)
            }
        );
        assert_eq!(
            s.apply(&incr(1)),
            TxnResult::Error {
                error: ApplyError::IntegerTooLarge { key: k("n") }
            }
        );
        assert_eq!(s.get(&k("n")), Some(&int(15)));
    }

    #[test]
    fn txn_reads_before_writes_and_is_all_or_nothing() {
        let mut s = KvSpec::new();
        s.apply(&Txn::Put {
            key: k("a"),
            value: int(1),
        });
        s.apply(&Txn::Put {
            key: k("s"),
            value: bytes("str"),
        });
        let txn = |cond: Value, second: WriteOp| Txn::Txn {
            conditions: vec![Condition {
                key: k("a"),
                expected: Some(cond),
            }],
            reads: vec![k("a"), k("b")],
            writes: vec![
                WriteOp::Incr {
                    key: k("a"),
                    by: BigInt::from(1),
                },
                WriteOp::Incr {
                    key: k("a"),
                    by: BigInt::from(1),
                },
                second,
            ],
        };
        let reads = vec![(k("a"), Some(int(1))), (k("b"), None)];
        // A failing condition: the reads, no write.
        let r = s.apply(&txn(int(0), WriteOp::Delete { key: k("s") }));
        assert_eq!(
            r,
            TxnResult::Txn {
                ok: false,
                reads: reads.clone()
            }
        );
        assert_eq!(s.get(&k("a")), Some(&int(1)));
        // A failing write: the whole transaction is a no-op.
        let before = s.clone();
        let r = s.apply(&txn(
            int(1),
            WriteOp::Incr {
                key: k("s"),
                by: BigInt::from(1),
            },
        ));
        assert_eq!(
            r,
            TxnResult::Error {
                error: ApplyError::NotAnInteger { key: k("s") }
            }
        );
        assert_eq!(s, before);
        // Success: increments see each other, reads are from before.
        let r = s.apply(&txn(int(1), WriteOp::Delete { key: k("s") }));
        assert_eq!(r, TxnResult::Txn { ok: true, reads });
        assert_eq!(s.get(&k("a")), Some(&int(3)));
        assert_eq!(s.get(&k("s")), None);
        assert_eq!(s.to_string(), "{a: 3}");
        assert_eq!(
            txn(int(1), WriteOp::Delete { key: k("s") }).to_string(),
            "txn if[a=1] read[a b] write[a+=1 a+=1 del s]"
        );
        assert_eq!(
            TxnResult::Txn {
                ok: true,
                reads: vec![(k("a"), Some(int(1))), (k("b"), None)]
            }
            .to_string(),
            "txn ok=true reads=[a=1 b=absent]"
        );
    }

    #[test]
    fn clones_are_independent() {
        let mut a = KvSpec::new();
        a.apply(&Txn::Put {
            key: k("x"),
            value: int(1),
        });
        let b = a.clone();
        a.apply(&Txn::Put {
            key: k("x"),
            value: int(2),
        });
        assert_eq!(b.get(&k("x")), Some(&int(1)));
        assert_eq!(a.get(&k("x")), Some(&int(2)));
    }
}
