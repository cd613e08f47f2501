//! Benchmark of the linearizability checker (not a test: it prints figures, asserts none).
//!
//!     cargo run --release -p physalia-refinement --example lin_bench [-- BUDGET [SIZE..]]
//!
//! Histories of one cell from `physalia_refinement::linearizability::synth` (a simulated
//! server, its mix of operations and outcomes described there); written and expected
//! integers are drawn from `0..LIN_BENCH_VALUES` (default 4). `physalia bench --suite lin`
//! measures one of them against the same baseline.
//! The non-linearizable variant replaces the result of the read nearest the middle by a
//! value never written. Each check is bounded by BUDGET search nodes (default 5 000 000);
//! a check that runs out reports "undecided". Every history is checked with and without
//! partitioning by key, in the same run, and the time ratio printed; histories with
//! unknown outcomes also by key with `client_sessions`. SIZEs default to
//! 10 000 and 100 000 operations.

use std::time::Instant;

use physalia_refinement::linearizability::synth::{self, CLIENTS, KEYS};
use physalia_refinement::linearizability::{check_with, Operation, Options, Stats, Verdict};

const SEED: u64 = 5;

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
            let ops = synth::history(n, SEED, unknown_outcomes, values);
            let broken = synth::break_one_read(&ops).expect("a read in the second half");
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
