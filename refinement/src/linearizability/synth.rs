//! Synthetic histories for benchmarks (`physalia bench --suite lin`, `examples/lin_bench.rs`):
//! one cell served by a simulated server. [`CLIENTS`] clients each issue one operation at
//! a time (latency 1–40 ms, a 5 % tail up to 200 ms, think time 0–5 ms); each operation
//! takes effect at a uniform point of its interval, in which order the specification
//! computes the results. 1 % have an unknown outcome (half of them took effect, half were
//! never answered), 0.5 % are refused (`Rejected`/`Overloaded`). Mix: 40 % get, 25 % put,
//! 10 % cas, 15 % incr, 10 % two-key transactions over a key pair `(2j, 2j+1)` of [`KEYS`]
//! keys.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use num_bigint::BigInt;
use physalia_traces::{ClientId, Condition, Key, Txn, TxnResult, Value, WriteOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Operation;
use crate::kv::KvSpec;

/// Concurrent clients.
pub const CLIENTS: u64 = 8;
/// Keys.
pub const KEYS: usize = 8;

fn key(i: usize) -> Key {
    Key(format!("k{i}"))
}

fn small_int(rng: &mut StdRng, values: u32) -> Value {
    Value::Int(BigInt::from(rng.random_range(0..values)))
}

fn txn(rng: &mut StdRng, values: u32) -> Txn {
    let k = rng.random_range(0..KEYS);
    match rng.random_range(0..100) {
        0..40 => Txn::Get { key: key(k) },
        40..65 => Txn::Put {
            key: key(k),
            value: small_int(rng, values),
        },
        65..75 => Txn::Cas {
            key: key(k),
            expected: rng.random_bool(0.8).then(|| small_int(rng, values)),
            new: small_int(rng, values),
        },
        75..90 => Txn::Incr {
            key: key(k),
            by: BigInt::from(1),
        },
        _ => {
            let (a, b) = (key(k & !1), key(k | 1));
            Txn::Txn {
                conditions: vec![Condition {
                    key: a.clone(),
                    expected: rng.random_bool(0.5).then(|| small_int(rng, values)),
                }],
                reads: vec![a.clone(), b.clone()],
                writes: vec![
                    WriteOp::Put {
                        key: a,
                        value: small_int(rng, values),
                    },
                    WriteOp::Incr {
                        key: b,
                        by: BigInt::from(1),
                    },
                ],
            }
        }
    }
}

/// A linearizable history of `n` operations drawn from `seed`; `unknown_outcomes`: whether
/// 1 % of them have an unknown outcome (else they complete normally); integers drawn from
/// `0..values`.
pub fn history(n: usize, seed: u64, unknown_outcomes: bool, values: u32) -> Vec<Operation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut free: BinaryHeap<Reverse<(u64, u64)>> = (0..CLIENTS)
        .map(|c| Reverse((rng.random_range(0..10), c)))
        .collect();
    // (point, index, takes effect)
    let mut points: Vec<(u64, usize, bool)> = Vec::with_capacity(n);
    let mut ops: Vec<Operation> = Vec::with_capacity(n);
    for i in 0..n {
        let Reverse((invoke, c)) = free.pop().expect("CLIENTS > 0");
        let latency = if rng.random_bool(0.05) {
            rng.random_range(40..200)
        } else {
            rng.random_range(1..40)
        };
        let ret = invoke + latency;
        free.push(Reverse((ret + rng.random_range(0..5), c)));
        let point = rng.random_range(invoke..=ret);
        let roll = rng.random_range(0..1000);
        let (ret, result, effect) = match roll {
            0..5 => (Some(ret), Some(TxnResult::Overloaded), false),
            5..10 => (
                Some(ret),
                Some(TxnResult::Rejected {
                    reason: "limits".into(),
                }),
                false,
            ),
            10..15 if unknown_outcomes => (Some(ret), None, true),
            15..20 if unknown_outcomes => (None, None, false),
            // Placeholder result, computed below in point order.
            _ => (Some(ret), Some(TxnResult::Put), true),
        };
        points.push((point, i, effect));
        ops.push(Operation {
            client: ClientId(c),
            op: i as u64,
            txn: txn(&mut rng, values),
            invoke,
            ret,
            result,
        });
    }
    points.sort_unstable();
    let mut spec = KvSpec::new();
    for (_, i, effect) in points {
        if effect {
            let got = spec.apply(&ops[i].txn);
            if ops[i].result.is_some() {
                ops[i].result = Some(got);
            }
        }
    }
    ops
}

/// The history with the read nearest the middle answered a value never written (`None`
/// if the second half holds no read).
pub fn break_one_read(ops: &[Operation]) -> Option<Vec<Operation>> {
    let mut broken = ops.to_vec();
    let target = (ops.len() / 2..ops.len())
        .find(|&i| matches!(ops[i].result, Some(TxnResult::Get { .. })))?;
    broken[target].result = Some(TxnResult::Get {
        value: Some(Value::Bytes(b"never written".to_vec())),
    });
    Some(broken)
}
