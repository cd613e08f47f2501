//! Benchmark of the linearizability checker (not a test: it prints figures, asserts none).
//!
//!     cargo run --release -p physalia-refinement --example lin_bench [-- BUDGET [SIZE..]]
//!
//! Histories of one cell, generated from a simulated server: `CLIENTS` clients each issue
//! one operation at a time (latency 1–40 ms, a 5 % tail up to 200 ms, think time 0–5 ms);
//! each operation takes effect at a uniform point of its interval, in which order the spec
//! computes the results. 1 % have an unknown outcome (half of them took effect, half were
//! never answered), 0.5 % are refused (`Rejected`/`Overloaded`). Mix: 40 % get, 25 % put,
//! 10 % cas, 15 % incr, 10 % two-key transactions over a key pair `(2j, 2j+1)` of `KEYS`
//! keys; written and expected integers are drawn from `0..LIN_BENCH_VALUES` (default 4).
//! The non-linearizable variant replaces the result of the read nearest the middle by a
//! value never written. Each check is bounded by BUDGET search nodes (default 5 000 000);
//! a check that runs out reports "undecided". Every history is checked with and without
//! partitioning by key, in the same run, and the time ratio printed; histories with
//! unknown outcomes also by key with `client_sessions`. SIZEs default to
//! 10 000 and 100 000 operations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use num_bigint::BigInt;
use physalia_refinement::kv::KvSpec;
use physalia_refinement::linearizability::{check_with, Operation, Options, Stats, Verdict};
use physalia_traces::{ClientId, Condition, Key, Txn, TxnResult, Value, WriteOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLIENTS: u64 = 8;
const KEYS: usize = 8;
const SEED: u64 = 5;

fn key(i: usize) -> Key {
    Key(format!("k{i}"))
}

/// How many distinct integers writes and conditions draw from: `LIN_BENCH_VALUES`, default 4.
fn value_domain() -> u32 {
    match std::env::var("LIN_BENCH_VALUES") {
        Err(_) => 4,
        Ok(v) => v.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
            eprintln!("LIN_BENCH_VALUES must be a positive number, got {v:?}");
            std::process::exit(2)
        }),
    }
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

/// A linearizable history of `n` operations; `unknown_outcomes`: whether 1 % of them have
/// an unknown outcome (else they complete normally).
fn generate(n: usize, seed: u64, unknown_outcomes: bool, values: u32) -> Vec<Operation> {
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

/// The history with the read nearest the middle answered a value never written.
fn break_one_read(ops: &[Operation]) -> Vec<Operation> {
    let mut broken = ops.to_vec();
    let target = (ops.len() / 2..ops.len())
        .find(|&i| matches!(ops[i].result, Some(TxnResult::Get { .. })))
        .expect("a read in the second half");
    broken[target].result = Some(TxnResult::Get {
        value: Some(Value::Bytes(b"never written".to_vec())),
    });
    broken
}

/// Checks and prints one line; returns the time taken and whether the check decided.
fn run(label: &str, ops: &[Operation], options: Options) -> (f64, bool) {
    let start = Instant::now();
    let (verdict, stats): (Verdict, Stats) = check_with(ops, &options).expect("well-formed");
    let partition_by_key = options.partition_by_key;
    let secs = start.elapsed().as_secs_f64();
    let outcome = match &verdict {
        Verdict::Linearizable { order } => format!("linearizable ({} in order)", order.len()),
        Verdict::NotLinearizable(v) => format!(
            "NOT linearizable (prefix {}, {} pending)",
            v.prefix.len(),
            v.pending.len()
        ),
        Verdict::Undecided { .. } => "undecided (budget exhausted)".to_owned(),
    };
    println!(
        "{label:<30} partitions {:>2} {:>8.3} s {:>9.0} ops/s  nodes {:>9}  memo {:>8}  {outcome}",
        stats.partitions,
        secs,
        ops.len() as f64 / secs,
        stats.explored,
        stats.memo,
    );
    let decided = !matches!(verdict, Verdict::Undecided { .. });
    if let (Verdict::NotLinearizable(v), true) = (&verdict, ops.len() <= 10_000) {
        if partition_by_key {
            println!("{v}");
        }
    }
    (secs, decided)
}

fn main() {
    let budget: u64 = match std::env::args().nth(1) {
        None => 5_000_000,
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("BUDGET must be a number of search nodes, got {a:?}");
            std::process::exit(2)
        }),
    };
    let sizes: Vec<usize> = std::env::args()
        .skip(2)
        .map(|a| {
            a.parse().unwrap_or_else(|_| {
                eprintln!("SIZE must be a number of operations, got {a:?}");
                std::process::exit(2)
            })
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let values = value_domain();
    println!(
        "{CLIENTS} clients, {KEYS} keys, {values} integer values, seed {SEED}, \
         budget {budget} nodes per check"
    );
    for unknown_outcomes in [true, false] {
        println!(
            "-- {} --",
            if unknown_outcomes {
                "1 % unknown outcomes (0.5 % took effect, 0.5 % never answered)"
            } else {
                "every operation answered"
            }
        );
        for &n in &sizes {
            let ops = generate(n, SEED, unknown_outcomes, values);
            let broken = break_one_read(&ops);
            for (variant, history) in [("linearizable", &ops), ("one bad read", &broken)] {
                let by_key = Options::with_budget(budget);
                let on = run(&format!("{n} ops, {variant}, by key"), history, by_key);
                let whole = Options {
                    partition_by_key: false,
                    ..by_key
                };
                let off = run(&format!("{n} ops, {variant}, whole"), history, whole);
                if unknown_outcomes {
                    let sessions = Options {
                        client_sessions: true,
                        ..by_key
                    };
                    run(
                        &format!("{n} ops, {variant}, by key+sess"),
                        history,
                        sessions,
                    );
                }
                let ratio = off.0 / on.0;
                match (on.1, off.1) {
                    (true, true) => println!("{:<30} time whole / by key = {ratio:.1}x", ""),
                    (true, false) => println!(
                        "{:<30} time whole / by key > {ratio:.1}x (whole undecided)",
                        ""
                    ),
                    _ => println!("{:<30} time ratio n/a (by key undecided)", ""),
                }
            }
        }
    }
}
