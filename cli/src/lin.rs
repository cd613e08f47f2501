//! `physalia lin`: linearizability of client histories that our nodes did not record
//! (or did: our JSONL), in our format, Porcupine's Jepsen etcd logs or Jepsen's EDN; and
//! export of a history to those formats. Formats: `physalia_refinement::histories`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use physalia_refinement::histories::{self, Format, History, Model};
use physalia_refinement::linearizability::{check_with, Operation, Options, Verdict};
use std::collections::HashMap;

use physalia_traces::{Key, Txn, TxnResult, Value, WriteOp};
use serde_json::json;

/// Options of `physalia lin`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 every history is linearizable; 1 one is not; 2 a history \
could not be read, or the budget ran out before a verdict (undecided)."
)]
pub struct LinArgs {
    /// History files.
    #[arg(value_name = "HISTORY", required = true)]
    pub histories: Vec<PathBuf>,
    /// Their format [default: from the name and first lines: .edn or `{:` is jepsen-edn, a
    /// `jepsen.util` line is porcupine, else physalia].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// What the operations may be: the cell's transactions, or registers (read, write,
    /// cas of one key; a foreign history's single register is the key `x`).
    #[arg(long, value_enum, default_value_t = ModelArg::Kv)]
    pub model: ModelArg,
    /// A key's value before the history, KEY=VALUE (values typed as the client's: int:7,
    /// text:abc, hex:00ff, bool:true); repeatable. Absent keys start absent.
    #[arg(long, value_name = "KEY=VALUE")]
    pub initial: Vec<String>,
    /// Most search nodes per history, 1..=10^10.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub budget: u64,
    /// Wall-clock budget per history (seconds; the search and the reduction of a
    /// violation to its smallest failing sub-history share it), 1..=86400.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Hold the cell's client sessions (one result kept per client: an operation of
    /// unknown outcome expires when its client's next operation returns), as our cells do.
    #[arg(long)]
    pub sessions: bool,
    /// Write the (one) history in this format on stdout instead of checking it.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub export: Option<FormatArg>,
    /// Print one JSON document (schema `physalia-lin`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--format` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Our JSON Lines (one operation per line).
    Physalia,
    /// Porcupine's Jepsen etcd logs.
    Porcupine,
    /// Jepsen's EDN history.
    JepsenEdn,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Physalia => Format::Physalia,
            FormatArg::Porcupine => Format::Porcupine,
            FormatArg::JepsenEdn => Format::JepsenEdn,
        }
    }
}

/// `--model` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// The cell's transactions.
    Kv,
    /// Registers.
    Register,
}

/// The keys an operation touches.
fn keys_of(txn: &Txn) -> Vec<&Key> {
    physalia_refinement::kv::KvSpec::keys(txn)
}

/// How the search ended for one history.
enum Outcome {
    Linearizable,
    Not {
        report: String,
        keys: Vec<String>,
        /// The smallest failing sub-history found (history indices), and whether it is
        /// 1-minimal (removing any one operation makes it linearizable).
        minimal: Vec<usize>,
        complete: bool,
    },
    Undecided(u64),
    /// The history breaks a rule of histories (e.g. an operation listed twice).
    Malformed(String),
}

/// The values an operation observed: what it read, and what it found when its condition
/// held.
fn observed(o: &Operation) -> Vec<(&Key, &Value)> {
    match (&o.txn, &o.result) {
        (Txn::Get { key }, Some(TxnResult::Get { value: Some(v) })) => vec![(key, v)],
        (
            Txn::Cas { key, .. },
            Some(TxnResult::Cas {
                ok: true,
                current: Some(v),
            }),
        ) => vec![(key, v)],
        (Txn::Txn { conditions, .. }, Some(TxnResult::Txn { ok, reads })) => {
            let mut out: Vec<(&Key, &Value)> = reads
                .iter()
                .filter_map(|(k, v)| Some((k, v.as_ref()?)))
                .collect();
            if *ok {
                out.extend(
                    conditions
                        .iter()
                        .filter_map(|c| Some((&c.key, c.expected.as_ref()?))),
                );
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The values an operation may have written (nothing if it certainly did not), and the
/// keys it changed in ways a value cannot name (increments, deletions).
fn written(o: &Operation) -> (Vec<(&Key, &Value)>, Vec<&Key>) {
    let applied = match &o.result {
        None => true,
        Some(r) if r.never_applied() => false,
        Some(TxnResult::Cas { ok, .. } | TxnResult::Txn { ok, .. }) => *ok,
        Some(_) => true,
    };
    if !applied {
        return (Vec::new(), Vec::new());
    }
    match &o.txn {
        Txn::Put { key, value }
        | Txn::Cas {
            key, new: value, ..
        } => (vec![(key, value)], Vec::new()),
        Txn::Incr { key, .. } => (Vec::new(), vec![key]),
        Txn::Txn { writes, .. } => {
            let (mut vals, mut opaque) = (Vec::new(), Vec::new());
            for w in writes {
                match w {
                    WriteOp::Put { key, value } => vals.push((key, value)),
                    WriteOp::Delete { key }
                    | WriteOp::Incr { key, .. }
                    | WriteOp::Append { key, .. } => opaque.push(key),
                }
            }
            (vals, opaque)
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// The compares an operation saw fail: for a failed cas its `(key, expected)`; for a
/// transaction whose conditions did not hold, each condition (one of them failed).
fn refuted(o: &Operation) -> Vec<(&Key, Option<&Value>)> {
    match (&o.txn, &o.result) {
        (Txn::Cas { key, expected, .. }, Some(TxnResult::Cas { ok: false, .. })) => {
            vec![(key, expected.as_ref())]
        }
        (Txn::Txn { conditions, .. }, Some(TxnResult::Txn { ok: false, .. })) => conditions
            .iter()
            .map(|c| (&c.key, c.expected.as_ref()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Per key, the operations of a set that may have changed it: `Some(value)` written, or
/// `None` for a change a value cannot name (increment, deletion).
fn writers<'a>(
    ops: &'a [Operation],
    set: &[usize],
) -> HashMap<&'a Key, Vec<(usize, Option<&'a Value>)>> {
    let mut w: HashMap<&Key, Vec<(usize, Option<&Value>)>> = HashMap::new();
    for &j in set {
        let (vals, opaque) = written(&ops[j]);
        for (k, v) in vals {
            w.entry(k).or_default().push((j, Some(v)));
        }
        for k in opaque {
            w.entry(k).or_default().push((j, None));
        }
    }
    w
}

/// Which of operation `i`'s observations the writers `w` can explain, each by a write
/// invoked before `i` returned: every value it saw (`true` for each), and whether one of
/// its failed compares (if any) met another value than it expected.
fn explained(
    ops: &[Operation],
    i: usize,
    w: &HashMap<&Key, Vec<(usize, Option<&Value>)>>,
) -> (Vec<bool>, Option<bool>) {
    let before = |j: usize| j != i && ops[i].ret.is_none_or(|r| ops[j].invoke <= r);
    let seen = observed(&ops[i])
        .into_iter()
        .map(|(k, v)| {
            w.get(k).is_some_and(|ws| {
                ws.iter()
                    .any(|(j, x)| before(*j) && x.is_none_or(|x| x == v))
            })
        })
        .collect();
    let compares = refuted(&ops[i]);
    let failed = (!compares.is_empty()).then(|| {
        compares.iter().any(|(k, e)| {
            w.get(k).is_some_and(|ws| {
                ws.iter()
                    .any(|(j, x)| before(*j) && x.is_none_or(|x| Some(x) != *e))
            })
        })
    });
    (seen, failed)
}

/// Whether `keep` explains every observation of its operations that `start` explains
/// (see [`explained`]): a sub-history that does not fails only because a write was removed
/// from under a read or a failed compare, which says nothing about the history. (A value
/// no operation of the history wrote is an anomaly of its own, and stays unexplained.)
fn closed(ops: &[Operation], keep: &[usize], start: &HashMap<usize, Explained>) -> bool {
    let w = writers(ops, keep);
    keep.iter().all(|&i| {
        let (seen_full, failed_full) = &start[&i];
        let failed_full = *failed_full;
        let (seen, failed) = explained(ops, i, &w);
        seen_full.iter().zip(&seen).all(|(full, now)| !full || *now)
            && !(failed_full == Some(true) && failed != Some(true))
    })
}

/// What the starting set explains of one operation (see [`explained`]).
type Explained = (Vec<bool>, Option<bool>);

/// Whether `ops` restricted to `keep` is closed and still not linearizable.
fn fails(
    ops: &[Operation],
    keep: &[usize],
    start: &HashMap<usize, Explained>,
    options: &Options,
) -> bool {
    if !closed(ops, keep, start) {
        return false;
    }
    let sub: Vec<Operation> = keep.iter().map(|&i| ops[i].clone()).collect();
    matches!(
        check_with(&sub, options),
        Ok((Verdict::NotLinearizable(_), _))
    )
}

/// Shrinks the failing operations `start` to a smaller closed set (see [`closed`]) that
/// still fails: removes chunks of halving size, then single operations until none can go
/// (1-minimal among closed sets), or until the deadline (then `false`).
fn minimize(
    ops: &[Operation],
    start: Vec<usize>,
    options: &Options,
    deadline: Instant,
) -> (Vec<usize>, bool) {
    let all = writers(ops, &start);
    let explanations: HashMap<usize, Explained> = start
        .iter()
        .map(|&i| (i, explained(ops, i, &all)))
        .collect();
    let fails = |keep: &[usize]| fails(ops, keep, &explanations, options);
    let mut keep = start.clone();
    let mut chunk = keep.len() / 2;
    while chunk >= 1 {
        let mut at = 0;
        while at < keep.len() {
            if Instant::now() >= deadline {
                return (keep, false);
            }
            let end = (at + chunk).min(keep.len());
            let candidate: Vec<usize> = keep[..at].iter().chain(&keep[end..]).copied().collect();
            if !candidate.is_empty() && fails(&candidate) {
                keep = candidate;
            } else {
                at = end;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    // One more pass of single removals until nothing changes: then 1-minimal.
    loop {
        let mut changed = false;
        let mut at = 0;
        while at < keep.len() {
            if Instant::now() >= deadline {
                return (keep, false);
            }
            let candidate: Vec<usize> = keep
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != at)
                .map(|(_, &i)| i)
                .collect();
            if !candidate.is_empty() && fails(&candidate) {
                keep = candidate;
                changed = true;
            } else {
                at += 1;
            }
        }
        if !changed {
            return (keep, true);
        }
    }
}

/// Judges one history; a foreign one (not ours) has no bound on byte strings: the cell's
/// 4 KiB value limit says nothing about another system's lists.
fn judge(h: &History, args: &LinArgs, foreign: bool) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let options = Options {
        client_sessions: args.sessions,
        deadline: Some(deadline),
        max_bytes_len: if foreign {
            usize::MAX
        } else {
            physalia_refinement::kv::MAX_BYTES_LEN
        },
        ..Options::with_budget(args.budget)
    };
    match check_with(&h.ops, &options) {
        Ok((Verdict::Linearizable { .. }, _)) => Outcome::Linearizable,
        Ok((Verdict::Undecided { explored }, _)) => Outcome::Undecided(explored),
        Ok((Verdict::NotLinearizable(v), _)) => {
            let keys: Vec<String> = v.keys.iter().map(|k| k.0.clone()).collect();
            // The failing keys' operations, unless client sessions tie keys together (an
            // unknown operation expires with its client's next one, on any key) or they
            // alone do not fail: then every operation.
            let on_keys: Vec<usize> = (0..h.ops.len())
                .filter(|&i| keys_of(&h.ops[i].txn).iter().any(|k| v.keys.contains(k)))
                .collect();
            let sub: Vec<Operation> = on_keys.iter().map(|&i| h.ops[i].clone()).collect();
            let alone = matches!(
                check_with(&sub, &options),
                Ok((Verdict::NotLinearizable(_), _))
            );
            let start = if args.sessions || !alone {
                (0..h.ops.len()).collect()
            } else {
                on_keys
            };
            let (minimal, complete) = minimize(&h.ops, start, &options, deadline);
            Outcome::Not {
                report: v.to_string(),
                keys,
                minimal,
                complete,
            }
        }
        Err(e) => Outcome::Malformed(e.to_string()),
    }
}

/// Parses `--initial KEY=VALUE`.
fn initial(args: &LinArgs) -> Result<Vec<(Key, physalia_traces::Value)>> {
    args.initial
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--initial `{s}` is not KEY=VALUE"))?;
            if k.is_empty() {
                bail!("--initial `{s}` names no key");
            }
            Ok((Key(k.to_owned()), crate::client::parse_value(v)?))
        })
        .collect()
}

/// Runs `physalia lin`.
pub fn run(args: &LinArgs) -> Result<u8> {
    let model = match args.model {
        ModelArg::Kv => Model::Kv,
        ModelArg::Register => Model::Register,
    };
    let init = initial(args)?;
    if let Some(to) = args.export {
        let [path] = args.histories.as_slice() else {
            bail!("--export writes one history: give one file");
        };
        let (_, hs) = histories::load(path, args.format.map(Into::into), model)?;
        if hs.len() != 1 {
            bail!(
                "{} holds the histories of {} cells; the other formats hold one",
                path.display(),
                hs.len()
            );
        }
        let h = histories::with_initial(&hs[0], &init);
        crate::output::emit(&histories::export(&h, to.into())?)?;
        return Ok(0);
    }
    let (mut not_linearizable, mut no_verdict) = (false, false);
    let mut docs = Vec::new();
    for path in &args.histories {
        let (format, hs) = match histories::load(path, args.format.map(Into::into), model) {
            Ok(x) => x,
            Err(e) => {
                if args.json {
                    docs.push(json!({"file": path.display().to_string(), "verdict": "unusable", "error": e.to_string()}));
                } else {
                    eprintln!("error: {e}");
                }
                no_verdict = true;
                continue;
            }
        };
        for h in hs {
            let h = histories::with_initial(&h, &init);
            let started = Instant::now();
            let outcome = judge(&h, args, format != Format::Physalia);
            let seconds = started.elapsed().as_secs_f64();
            let unknown = h.ops.iter().filter(|o| o.result.is_none()).count();
            let never = h
                .ops
                .iter()
                .filter(|o| o.result.as_ref().is_some_and(|r| r.never_applied()))
                .count();
            let header = format!(
                "{}{} ({}, {} model): {} {}, {unknown} of unknown outcome, {never} never took effect",
                path.display(),
                if h.cell == "history" { String::new() } else { format!(" cell {}", h.cell) },
                format.name(),
                match model {
                    Model::Kv => "kv",
                    Model::Register => "register",
                },
                h.ops.len(),
                if h.ops.len() == 1 { "operation" } else { "operations" },
            );
            let mut doc = json!({
                "file": path.display().to_string(), "cell": h.cell, "format": format.name(),
                "operations": h.ops.len(), "unknown": unknown, "never_applied": never,
                "seconds": seconds,
            });
            let text = match &outcome {
                Outcome::Linearizable => {
                    doc["verdict"] = json!("linearizable");
                    format!("  LINEARIZABLE ({seconds:.3} s)")
                }
                Outcome::Malformed(why) => {
                    no_verdict = true;
                    doc["verdict"] = json!("unusable");
                    doc["error"] = json!(why);
                    format!("  UNUSABLE: {why}")
                }
                Outcome::Undecided(explored) => {
                    no_verdict = true;
                    doc["verdict"] = json!("undecided");
                    doc["explored"] = json!(explored);
                    format!(
                        "  UNDECIDED: the budget ({} search nodes, {} s) ran out after {explored} nodes and {seconds:.1} s; no verdict (raise --budget or --timeout)",
                        args.budget, args.timeout
                    )
                }
                Outcome::Not {
                    report,
                    keys,
                    minimal,
                    complete,
                } => {
                    not_linearizable = true;
                    doc["verdict"] = json!("not linearizable");
                    doc["keys"] = json!(keys);
                    doc["report"] = json!(report);
                    doc["minimal"] = json!(minimal
                        .iter()
                        .map(|&i| json!({
                            "index": i, "line": h.lines[i], "operation": h.ops[i].to_string(),
                        }))
                        .collect::<Vec<_>>());
                    doc["minimal_is_1_minimal"] = json!(complete);
                    let mut t = format!("  NOT LINEARIZABLE ({seconds:.3} s)\n");
                    for l in report.lines() {
                        t += &format!("  {l}\n");
                    }
                    t += &format!(
                        "  smallest failing sub-history: {} of {} operations ({}):",
                        minimal.len(),
                        h.ops.len(),
                        if *complete {
                            "each value read, and each failed compare, is explained by a write in it; removing any one more leaves it linearizable or unexplained"
                        } else {
                            "the time budget ran out before it was minimal"
                        }
                    );
                    for &i in minimal {
                        let at = if h.lines[i] == 0 {
                            "initial state".to_owned()
                        } else {
                            format!("line {}", h.lines[i])
                        };
                        t += &format!("\n    {at}: {}", h.ops[i]);
                    }
                    t
                }
            };
            docs.push(doc);
            if !args.json {
                crate::output::emit(&format!("{header}\n{text}\n"))?;
            }
        }
    }
    // 1 if any history is not linearizable, whatever the order of the files; else 2 if one
    // had no verdict.
    let code = if not_linearizable {
        1
    } else {
        u8::from(no_verdict) * 2
    };
    if args.json {
        crate::output::print_json(
            "physalia-lin",
            json!({
                "histories": docs,
                "verdict": match code { 0 => "linearizable", 1 => "not linearizable", _ => "undecided or unusable" },
            }),
        )?;
    }
    Ok(code)
}
