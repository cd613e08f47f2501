//! The cell's state machine: a small typed key-value store with transactions, and the fixed
//! client workload the model runs.
//!
//! The implementation's store holds byte strings, arbitrary-precision integers and booleans;
//! the model keeps two keys and small integers, which is enough to tell every outcome apart.
//! Every operation is total: there is no input that `apply` cannot handle.

use std::fmt;

use physalia_traces as vocab;

/// A key of the store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// The first key.
    X,
    /// The second key.
    Y,
}

impl Key {
    /// The key's name: `x` or `y`.
    pub fn name(self) -> &'static str {
        match self {
            Key::X => "x",
            Key::Y => "y",
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored value (absent keys read as `None`).
pub type Value = i8;

/// A transaction of the store's API.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Txn {
    /// Read one key.
    Get(Key),
    /// Write one key unconditionally.
    Put(Key, Value),
    /// Compare-and-set: write `new` if the key currently holds `expect` (`None`: absent).
    Cas {
        /// The key.
        key: Key,
        /// The value the key must hold (`None`: the key must be absent).
        expect: Option<Value>,
        /// The value written when the condition holds.
        new: Value,
    },
    /// Atomic increment; an absent key counts as 0.
    Incr(Key),
    /// A compound read-and-conditional-write over both keys: if `x == cond_x` and
    /// `y == cond_y`, write `y := put_y`; either way, return what was read.
    Txn {
        /// Condition on `x`.
        cond_x: Option<Value>,
        /// Condition on `y`.
        cond_y: Option<Value>,
        /// The value written to `y` when both conditions hold.
        put_y: Value,
    },
}

impl Txn {
    /// The same transaction in the shared vocabulary (`physalia_traces::Txn`), for display:
    /// keys `x`/`y`, integer values; the compound transaction conditions on both keys, reads
    /// both and writes `y`.
    pub fn to_vocab(self) -> vocab::Txn {
        let key = |k: Key| vocab::Key::from(k.name());
        let val = |v: Value| vocab::Value::Int(v.into());
        match self {
            Txn::Get(k) => vocab::Txn::Get { key: key(k) },
            Txn::Put(k, v) => vocab::Txn::Put {
                key: key(k),
                value: val(v),
            },
            Txn::Cas {
                key: k,
                expect,
                new,
            } => vocab::Txn::Cas {
                key: key(k),
                expected: expect.map(val),
                new: val(new),
            },
            Txn::Incr(k) => vocab::Txn::Incr {
                key: key(k),
                by: 1.into(),
            },
            Txn::Txn {
                cond_x,
                cond_y,
                put_y,
            } => vocab::Txn::Txn {
                conditions: vec![
                    vocab::Condition {
                        key: key(Key::X),
                        expected: cond_x.map(val),
                    },
                    vocab::Condition {
                        key: key(Key::Y),
                        expected: cond_y.map(val),
                    },
                ],
                reads: vec![key(Key::X), key(Key::Y)],
                writes: vec![vocab::WriteOp::Put {
                    key: key(Key::Y),
                    value: val(put_y),
                }],
            },
        }
    }
}

impl fmt::Debug for Txn {
    /// The vocabulary's notation (`physalia_traces::display`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_vocab())
    }
}

/// The result of a transaction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnResult {
    /// A read's value.
    Value(Option<Value>),
    /// A write, or a conditional write whose condition held.
    Ok,
    /// A conditional write whose condition failed, with the value found.
    CasFailed(Option<Value>),
    /// The value after an increment.
    Incremented(Value),
    /// A compound transaction: whether it wrote, and the values of x and y it read.
    Txn {
        /// Whether the conditions held and the write happened.
        committed: bool,
        /// The value of x read.
        x: Option<Value>,
        /// The value of y read.
        y: Option<Value>,
    },
}

impl TxnResult {
    /// Whether this outcome changed nothing: a read, or a failed condition.
    pub fn is_read_only(self) -> bool {
        matches!(self, TxnResult::Value(_)) || self.is_failed_condition()
    }

    /// Whether this outcome reports a failed condition.
    pub fn is_failed_condition(self) -> bool {
        matches!(
            self,
            TxnResult::CasFailed(_)
                | TxnResult::Txn {
                    committed: false,
                    ..
                }
        )
    }
}

impl TxnResult {
    /// The same result in the shared vocabulary, for display (a successful write or
    /// compare-and-set is `ok`).
    pub fn to_vocab(self) -> vocab::TxnResult {
        let val = |v: Option<Value>| v.map(|v| vocab::Value::Int(v.into()));
        match self {
            TxnResult::Value(x) => vocab::TxnResult::Get { value: val(x) },
            TxnResult::Ok => vocab::TxnResult::Put,
            TxnResult::CasFailed(x) => vocab::TxnResult::Cas {
                ok: false,
                current: val(x),
            },
            TxnResult::Incremented(x) => vocab::TxnResult::Incr { value: x.into() },
            TxnResult::Txn { committed, x, y } => vocab::TxnResult::Txn {
                ok: committed,
                reads: vec![
                    (vocab::Key::from(Key::X.name()), val(x)),
                    (vocab::Key::from(Key::Y.name()), val(y)),
                ],
            },
        }
    }
}

impl fmt::Debug for TxnResult {
    /// The vocabulary's notation (`physalia_traces::display`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_vocab())
    }
}

/// The store: the values of x and y.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvState {
    /// The value of x.
    pub x: Option<Value>,
    /// The value of y.
    pub y: Option<Value>,
}

impl fmt::Debug for KvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |o: Option<Value>| o.map_or_else(|| "absent".to_owned(), |v| v.to_string());
        write!(f, "{{x={}, y={}}}", v(self.x), v(self.y))
    }
}

impl KvState {
    fn get(&self, k: Key) -> Option<Value> {
        match k {
            Key::X => self.x,
            Key::Y => self.y,
        }
    }

    fn set(&mut self, k: Key, v: Value) {
        match k {
            Key::X => self.x = Some(v),
            Key::Y => self.y = Some(v),
        }
    }

    /// Applies a transaction and returns its outcome. Total: increments wrap, nothing panics.
    pub fn apply(&mut self, txn: Txn) -> TxnResult {
        match txn {
            Txn::Get(k) => TxnResult::Value(self.get(k)),
            Txn::Put(k, v) => {
                self.set(k, v);
                TxnResult::Ok
            }
            Txn::Cas { key, expect, new } => {
                let found = self.get(key);
                if found == expect {
                    self.set(key, new);
                    TxnResult::Ok
                } else {
                    TxnResult::CasFailed(found)
                }
            }
            Txn::Incr(k) => {
                let v = self.get(k).unwrap_or(0).wrapping_add(1);
                self.set(k, v);
                TxnResult::Incremented(v)
            }
            Txn::Txn {
                cond_x,
                cond_y,
                put_y,
            } => {
                let (x, y) = (self.x, self.y);
                let committed = x == cond_x && y == cond_y;
                if committed {
                    self.y = Some(put_y);
                }
                TxnResult::Txn { committed, x, y }
            }
        }
    }

    /// The outcome `txn` would have here if it does not write: `Some` for a read, or for a
    /// conditional write whose condition fails; `None` when it would change the store.
    pub fn read_only_outcome(&self, txn: Txn) -> Option<TxnResult> {
        let mut copy = *self;
        let outcome = copy.apply(txn);
        (copy == *self).then_some(outcome)
    }
}

/// Operation `op` of `client`'s workload (`client` and `op` are the model's `ClientId` and
/// `OpSeq`, both `u8`; this module depends on no other module of the model). The table is fixed so that states stay small and
/// every run of the model means the same thing:
///
/// | client | op 0 | op 1 | op 2 |
/// |---|---|---|---|
/// | c0 | `cas x absent->1` | `incr y 1` | `get x` |
/// | c1 | `cas x 1->2` | `txn if[x=2 y=absent] read[x y] write[y=2]` | `get y` |
/// | c2 | `get x` | `put y=3` | `get y` |
///
/// With one operation each, c0 and c1 race: c1's compare-and-set succeeds only after c0's,
/// so both orders are visible and a failed condition is reachable.
pub fn workload(client: u8, op: u8) -> Txn {
    match (client % 3, op % 3) {
        (0, 0) => Txn::Cas {
            key: Key::X,
            expect: None,
            new: 1,
        },
        (0, 1) => Txn::Incr(Key::Y),
        (0, _) => Txn::Get(Key::X),
        (1, 0) => Txn::Cas {
            key: Key::X,
            expect: Some(1),
            new: 2,
        },
        (1, 1) => Txn::Txn {
            cond_x: Some(2),
            cond_y: None,
            put_y: 2,
        },
        (1, _) => Txn::Get(Key::Y),
        (_, 0) => Txn::Get(Key::X),
        (_, 1) => Txn::Put(Key::Y, 3),
        (_, _) => Txn::Get(Key::Y),
    }
}
