//! The typed key-value transactions of a cell's state machine (the types only; the
//! semantics, validation and apply live in `physalia_impl::kv`).
//!
//! Values are byte strings, arbitrary-precision integers or booleans; there are no floats.
//! On the wire and in traces, byte strings are hex strings and integers decimal strings.

use std::fmt;

use num_bigint::BigInt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vocab::{NodeId, Slot};

/// A key: a UTF-8 string.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Key(pub String);

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key(s.to_owned())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A typed value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Value {
    /// A byte string (hex in JSON).
    Bytes(#[serde(with = "hex::serde")] Vec<u8>),
    /// An arbitrary-precision integer (a decimal string in JSON).
    Int(#[serde(with = "decimal")] BigInt),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "0x{}", hex::encode(b)),
            },
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A condition of a transaction: the key currently holds `expected` (`None`: is absent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The key tested.
    pub key: Key,
    /// The value it must hold, or `None` for "absent".
    pub expected: Option<Value>,
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Key,
        /// The new value.
        value: Value,
    },
    /// Remove `key` (no effect when absent).
    Delete {
        /// The key.
        key: Key,
    },
    /// Add `by` to the integer at `key` (absent counts as 0).
    Incr {
        /// The key.
        key: Key,
        /// The increment (may be negative).
        #[serde(with = "decimal")]
        by: BigInt,
    },
    /// Append `bytes` to the byte string at `key` (absent counts as empty): list-append
    /// workloads, one element's encoding at a time.
    Append {
        /// The key.
        key: Key,
        /// The bytes appended (hex in JSON).
        #[serde(with = "hex::serde")]
        bytes: Vec<u8>,
    },
}

impl WriteOp {
    /// The key it writes.
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put { key, .. }
            | WriteOp::Delete { key }
            | WriteOp::Incr { key, .. }
            | WriteOp::Append { key, .. } => key,
        }
    }
}

/// A change of a cell's jury (`docs/protocol.md`, "Reconfiguration"): one node at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum JuryChange {
    /// `node` joins the jury.
    Add {
        /// The node added.
        node: NodeId,
    },
    /// `node` leaves the jury.
    Remove {
        /// The node removed.
        node: NodeId,
    },
    /// A move: `from` leaves and `to` joins, in one change.
    Replace {
        /// The node that leaves.
        from: NodeId,
        /// The node that joins.
        to: NodeId,
    },
}

impl JuryChange {
    /// The node this change adds, if any (it is taught before the change is proposed).
    pub fn joining(&self) -> Option<NodeId> {
        match self {
            JuryChange::Add { node } | JuryChange::Replace { to: node, .. } => Some(*node),
            JuryChange::Remove { .. } => None,
        }
    }

    /// The node this change removes, if any.
    pub fn leaving(&self) -> Option<NodeId> {
        match self {
            JuryChange::Remove { node } | JuryChange::Replace { from: node, .. } => Some(*node),
            JuryChange::Add { .. } => None,
        }
    }
}

/// A transaction: the operations a client can ask of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Txn {
    /// Read one key.
    Get {
        /// The key.
        key: Key,
    },
    /// Write one key.
    Put {
        /// The key.
        key: Key,
        /// The new value.
        value: Value,
    },
    /// Compare-and-set: if `key` holds `expected` (`None`: absent), set it to `new`.
    Cas {
        /// The key.
        key: Key,
        /// The value it must hold, or `None` for "absent".
        expected: Option<Value>,
        /// The new value.
        new: Value,
    },
    /// Atomic increment by `by` (absent counts as 0).
    Incr {
        /// The key.
        key: Key,
        /// The increment (may be negative).
        #[serde(with = "decimal")]
        by: BigInt,
    },
    /// The compound read-and-conditional-write: read `reads` (before any write); if every
    /// condition holds, apply every write, atomically.
    Txn {
        /// Conditions over any combination of keys; all must hold.
        conditions: Vec<Condition>,
        /// Keys to read (values as of before the writes).
        reads: Vec<Key>,
        /// Writes applied in order when the conditions hold.
        writes: Vec<WriteOp>,
    },
    /// A jury change (an operator's or the control plane's request): it takes effect α
    /// slots after the slot it is chosen at. It reads and writes no key.
    Reconfig {
        /// The change.
        change: JuryChange,
    },
}

impl Txn {
    /// Whether this is a jury change (control plane, not the key-value store).
    pub fn is_reconfig(&self) -> bool {
        matches!(self, Txn::Reconfig { .. })
    }
}

/// Why a transaction's effect was refused at apply time (a defined result, never a panic).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ApplyError {
    /// An increment found a non-integer value at `key`.
    NotAnInteger {
        /// The key.
        key: Key,
    },
    /// An increment would exceed the integer size bound at `key`.
    IntegerTooLarge {
        /// The key.
        key: Key,
    },
    /// An append found a value that is not a byte string at `key`.
    NotBytes {
        /// The key.
        key: Key,
    },
    /// An append would make the byte string at `key` longer than the value size bound.
    BytesTooLong {
        /// The key.
        key: Key,
    },
}

/// The result of a transaction (the `result` of a `Reply`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TxnResult {
    /// The value read by `Get` (`None`: absent).
    Get {
        /// The value.
        value: Option<Value>,
    },
    /// `Put` done.
    Put,
    /// `Cas` outcome and the value found before it.
    Cas {
        /// Whether the swap happened.
        ok: bool,
        /// The value found (before the swap).
        current: Option<Value>,
    },
    /// The value after `Incr`.
    Incr {
        /// The new value.
        #[serde(with = "decimal")]
        value: BigInt,
    },
    /// `Txn` outcome: whether the conditions held (and the writes were applied), and the
    /// values read, in the order asked.
    Txn {
        /// Whether the conditions held.
        ok: bool,
        /// The values read, before the writes.
        reads: Vec<(Key, Option<Value>)>,
    },
    /// The transaction was applied as a no-op because an operation failed.
    Error {
        /// The failure.
        error: ApplyError,
    },
    /// Refused before reaching the log (fail closed): it was never applied.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Refused because the leader's pipeline and queue are full: it was never applied.
    Overloaded,
    /// A jury change applied at its slot: `ok` if it was valid for the jury of that moment
    /// (otherwise it changed nothing), the jury it leads to, that jury's epoch, and the first
    /// slot where it is in force.
    Reconfig {
        /// Whether the change was valid and took effect.
        ok: bool,
        /// The jury after the change (the jury before it if `ok` is false).
        jury: Vec<NodeId>,
        /// That jury's epoch (the number of changes applied since the initial jury).
        epoch: u64,
        /// The first slot whose configuration it is.
        in_force: Slot,
    },
}

impl TxnResult {
    /// Whether the operation certainly had no effect and never reached the log.
    pub fn never_applied(&self) -> bool {
        matches!(self, TxnResult::Rejected { .. } | TxnResult::Overloaded)
    }
}

/// Serde helpers: a `BigInt` as a decimal string.
pub mod decimal {
    use super::*;

    /// Serialize as a decimal string.
    pub fn serialize<S: Serializer>(v: &BigInt, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_str_radix(10))
    }

    /// Deserialize from a decimal string (optional leading `-`, digits only).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BigInt, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix('-').unwrap_or(&s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!(
                "expected a decimal integer string, found {s:?}"
            )));
        }
        BigInt::parse_bytes(s.as_bytes(), 10)
            .ok_or_else(|| serde::de::Error::custom(format!("bad integer {s:?}")))
    }
}
