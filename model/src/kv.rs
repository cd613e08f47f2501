//! The cell's state machine: a small typed key-value store with transactions, and the fixed
//! client workload the model runs.
//!
//! The implementation's store holds byte strings, arbitrary-precision integers and booleans;
//! the model keeps two keys and small integers, which is enough to tell every outcome apart.
//! Every operation is total: there is no input that `apply` cannot handle.

use std::fmt;

use crate::types::{ClientId, OpSeq};

/// A key of the store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// The first key.
    X,
    /// The second key.
    Y,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::X => write!(f, "x"),
            Key::Y => write!(f, "y"),
        }
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

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |o: &Option<Value>| match o {
            Some(v) => v.to_string(),
            None => "∅".into(),
        };
        match self {
            Txn::Get(k) => write!(f, "get({k:?})"),
            Txn::Put(k, x) => write!(f, "put({k:?}={x})"),
            Txn::Cas { key, expect, new } => write!(f, "cas({key:?}:{}→{new})", v(expect)),
            Txn::Incr(k) => write!(f, "incr({k:?})"),
            Txn::Txn {
                cond_x,
                cond_y,
                put_y,
            } => write!(
                f,
                "txn(if x={} ∧ y={} then y={put_y})",
                v(cond_x),
                v(cond_y)
            ),
        }
    }
}

/// The result of a transaction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
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

impl Outcome {
    /// Whether this outcome changed nothing: a read, or a failed condition.
    pub fn is_read_only(self) -> bool {
        matches!(self, Outcome::Value(_)) || self.is_failed_condition()
    }

    /// Whether this outcome reports a failed condition.
    pub fn is_failed_condition(self) -> bool {
        matches!(
            self,
            Outcome::CasFailed(_)
                | Outcome::Txn {
                    committed: false,
                    ..
                }
        )
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |o: &Option<Value>| match o {
            Some(v) => v.to_string(),
            None => "∅".into(),
        };
        match self {
            Outcome::Value(x) => write!(f, "value {}", v(x)),
            Outcome::Ok => write!(f, "ok"),
            Outcome::CasFailed(x) => write!(f, "failed (found {})", v(x)),
            Outcome::Incremented(x) => write!(f, "now {x}"),
            Outcome::Txn { committed, x, y } => write!(
                f,
                "{} (x={}, y={})",
                if *committed { "committed" } else { "failed" },
                v(x),
                v(y)
            ),
        }
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
        let v = |o: &Option<Value>| match o {
            Some(v) => v.to_string(),
            None => "∅".into(),
        };
        write!(f, "{{x={}, y={}}}", v(&self.x), v(&self.y))
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
    pub fn apply(&mut self, txn: Txn) -> Outcome {
        match txn {
            Txn::Get(k) => Outcome::Value(self.get(k)),
            Txn::Put(k, v) => {
                self.set(k, v);
                Outcome::Ok
            }
            Txn::Cas { key, expect, new } => {
                let found = self.get(key);
                if found == expect {
                    self.set(key, new);
                    Outcome::Ok
                } else {
                    Outcome::CasFailed(found)
                }
            }
            Txn::Incr(k) => {
                let v = self.get(k).unwrap_or(0).wrapping_add(1);
                self.set(k, v);
                Outcome::Incremented(v)
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
                Outcome::Txn { committed, x, y }
            }
        }
    }

    /// The outcome `txn` would have here if it does not write: `Some` for a read, or for a
    /// conditional write whose condition fails; `None` when it would change the store.
    pub fn read_only_outcome(&self, txn: Txn) -> Option<Outcome> {
        let mut copy = *self;
        let outcome = copy.apply(txn);
        (copy == *self).then_some(outcome)
    }
}

/// Operation `seq` of `client`'s workload. The table is fixed so that states stay small and
/// every run of the model means the same thing:
///
/// | client | op 0 | op 1 | op 2 |
/// |---|---|---|---|
/// | c0 | `cas(x:∅→1)` | `incr(y)` | `get(x)` |
/// | c1 | `cas(x:1→2)` | `txn(if x=2 ∧ y=∅ then y=2)` | `get(y)` |
/// | c2 | `get(x)` | `put(y=3)` | `get(y)` |
///
/// With one operation each, c0 and c1 race: c1's compare-and-set succeeds only after c0's,
/// so both orders are visible and a failed condition is reachable.
pub fn workload(client: ClientId, seq: OpSeq) -> Txn {
    match (client % 3, seq % 3) {
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
