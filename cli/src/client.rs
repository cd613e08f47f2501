//! `physalia client`: one operation against a running cluster.
//!
//! Output: one line per value for people (`k = "text" (bytes, UTF-8 text)`), or with
//! `--json` one document (schema `physalia-client`). Exit codes: see [`EXIT_CODES`].

use std::io::Read;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use num_bigint::BigInt;
use physalia_impl::client::{Client, ClientError, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{Key, Txn, TxnResult, Value};
use serde_json::json;

use crate::output;

/// The client's exit codes, as `--help` and the README state them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  2  usage error: bad arguments or value, unreadable key file, malformed seeds, no seed
     accepting connections, a cell no node hosts
  3  condition failed (cas, or a txn whose conditions did not hold): nothing was written
  4  outcome unknown: no answer before the deadline; the operation may have been applied
  5  unavailable: the cell could not serve the operation
  6  operation failed: refused before the log, or applied as a no-op because it does not
     fit the data (e.g. incr of a byte string)";

/// Exit code: usage error.
const USAGE: u8 = 2;
/// Exit code: a condition failed.
const CONDITION_FAILED: u8 = 3;
/// Exit code: outcome unknown.
const UNKNOWN: u8 = 4;
/// Exit code: unavailable.
const UNAVAILABLE: u8 = 5;
/// Exit code: the operation failed.
const FAILED: u8 = 6;

/// Wait at most this long for a seed to accept a connection before the operation starts.
const SEED_PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Options of `physalia client`.
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ClientArgs {
    /// Seed nodes, comma-separated `host:port` addresses (at least one must accept
    /// connections).
    #[arg(long, required_unless_present = "cluster", conflicts_with = "cluster")]
    pub seeds: Option<String>,
    /// File holding the cluster key (hex, at least 32 bytes).
    #[arg(long, required_unless_present = "cluster", conflicts_with = "cluster")]
    pub key_file: Option<PathBuf>,
    /// A cluster directory (`physalia cluster up` or `physalia nemesis`): its nodes are the
    /// seeds and its key file the key, instead of `--seeds` and `--key-file`.
    #[arg(long, value_name = "DIR")]
    pub cluster: Option<PathBuf>,
    /// The cell.
    #[arg(long, default_value = "c0")]
    pub cell: String,
    /// Give up after this many milliseconds (the outcome is then unknown) [1..=3600000].
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub deadline_ms: u64,
    /// Print one JSON document (schema `physalia-client`) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The operation.
    #[command(subcommand)]
    pub op: ClientOp,
}

/// One operation. Values are typed by a prefix: `int:7`, `bool:true`, `hex:00ff` (bytes
/// given in hex), `text:abc` (the bytes of UTF-8 text). Without one, `true`/`false` is a
/// boolean, a decimal number an integer, anything else text.
#[derive(Subcommand, Debug)]
pub enum ClientOp {
    /// Linearizable read of one key.
    Get {
        /// The key.
        key: String,
    },
    /// Write a value.
    Put {
        /// The key.
        key: String,
        /// The value (`int:`, `bool:`, `hex:`, `text:` or untyped).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Compare-and-set: write NEW if the key holds EXPECTED (`-`: absent). Exit 3 if not.
    Cas {
        /// The key.
        key: String,
        /// The expected value, or `-` for absent.
        #[arg(allow_hyphen_values = true)]
        expected: String,
        /// The new value.
        #[arg(allow_hyphen_values = true)]
        new: String,
    },
    /// Add BY (default 1) to an integer (absent counts as 0). Exit 6 on a non-integer.
    Incr {
        /// The key.
        key: String,
        /// The increment (an integer, `int:` optional).
        #[arg(default_value = "1", allow_hyphen_values = true)]
        by: String,
    },
    /// A general transaction in the trace format's JSON (`-` reads it from stdin), e.g.
    /// `{"txn":{"conditions":[],"reads":["a"],"writes":[{"put":{"key":"b","value":{"int":"1"}}}]}}`.
    /// Exit 3 if its conditions did not hold.
    Txn {
        /// The transaction as JSON, or `-`.
        #[arg(value_name = "JSON")]
        transaction: String,
    },
    /// Eventually consistent read of keys from any member.
    Read {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

impl ClientOp {
    fn name(&self) -> &'static str {
        match self {
            ClientOp::Get { .. } => "get",
            ClientOp::Put { .. } => "put",
            ClientOp::Cas { .. } => "cas",
            ClientOp::Incr { .. } => "incr",
            ClientOp::Txn { .. } => "txn",
            ClientOp::Read { .. } => "read",
        }
    }
}

/// Parses a value argument (see [`ClientOp`]).
pub fn parse_value(s: &str) -> Result<Value> {
    if let Some(n) = s.strip_prefix("int:") {
        return parse_int(n).with_context(|| format!("`{s}`: not an integer after `int:`"));
    }
    if let Some(b) = s.strip_prefix("bool:") {
        return match b {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => bail!("`{s}`: a boolean is `bool:true` or `bool:false`"),
        };
    }
    if let Some(h) = s.strip_prefix("hex:") {
        return Ok(Value::Bytes(hex::decode(h).with_context(|| {
            format!("`{s}` is not valid hex after `hex:`")
        })?));
    }
    if let Some(t) = s.strip_prefix("text:") {
        return Ok(Value::Bytes(t.as_bytes().to_vec()));
    }
    if s == "true" || s == "false" {
        return Ok(Value::Bool(s == "true"));
    }
    if let Ok(v) = parse_int(s) {
        return Ok(v);
    }
    Ok(Value::Bytes(s.as_bytes().to_vec()))
}

fn parse_int(s: &str) -> Result<Value> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("not a decimal integer");
    }
    Ok(Value::Int(s.parse::<BigInt>()?))
}

/// A value for people: text in quotes when the bytes are UTF-8 text, hex otherwise, and
/// the type said.
pub fn show_value(v: Option<&Value>) -> String {
    match v {
        None => "absent".into(),
        Some(Value::Int(i)) => format!("{i} (int)"),
        Some(Value::Bool(b)) => format!("{b} (bool)"),
        Some(Value::Bytes(b)) => match text_of(b) {
            Some(t) => format!("{t:?} (bytes, UTF-8 text)"),
            None => format!("0x{} (bytes, hex)", hex::encode(b)),
        },
    }
}

/// The bytes as text, if they are UTF-8 without control characters other than
/// whitespace.
fn text_of(b: &[u8]) -> Option<&str> {
    let t = std::str::from_utf8(b).ok()?;
    t.chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\t')
        .then_some(t)
}

/// A value for machines: `{"type": "bytes", "text": ...}` (or `"hex"`), `{"type": "int",
/// "int": "42"}`, `{"type": "bool", "bool": true}`, `null` for absent.
fn value_json(v: Option<&Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Int(i)) => json!({"type": "int", "int": i.to_string()}),
        Some(Value::Bool(b)) => json!({"type": "bool", "bool": b}),
        Some(Value::Bytes(b)) => match text_of(b) {
            Some(t) => json!({"type": "bytes", "text": t}),
            None => json!({"type": "bytes", "hex": hex::encode(b)}),
        },
    }
}

fn parse_txn(op: &ClientOp) -> Result<Option<Txn>> {
    let key = |k: &String| Key(k.clone());
    Ok(Some(match op {
        ClientOp::Get { key: k } => Txn::Get { key: key(k) },
        ClientOp::Put { key: k, value } => Txn::Put {
            key: key(k),
            value: parse_value(value)?,
        },
        ClientOp::Cas {
            key: k,
            expected,
            new,
        } => Txn::Cas {
            key: key(k),
            expected: (expected != "-")
                .then(|| parse_value(expected))
                .transpose()?,
            new: parse_value(new)?,
        },
        ClientOp::Incr { key: k, by } => Txn::Incr {
            key: key(k),
            by: match parse_int(by.strip_prefix("int:").unwrap_or(by)) {
                Ok(Value::Int(i)) => i,
                _ => bail!("increment `{by}` is not an integer"),
            },
        },
        ClientOp::Txn { transaction } => {
            let text = if transaction == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .take(16 << 20) // a transaction is far smaller than a frame
                    .read_to_string(&mut s)
                    .context("reading the transaction from stdin")?;
                s
            } else {
                transaction.clone()
            };
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "the transaction is not valid JSON of a Txn: {}",
                    text.trim()
                )
            })?
        }
        ClientOp::Read { .. } => return Ok(None),
    }))
}

/// The seeds, each a `host:port` that resolves.
fn parse_seeds(seeds: &str) -> Result<Vec<String>> {
    let seeds: Vec<String> = seeds
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if seeds.is_empty() {
        bail!("--seeds names no node");
    }
    for s in &seeds {
        let resolved = s
            .to_socket_addrs()
            .with_context(|| format!("--seeds: `{s}` is not an address (host:port)"))?;
        if resolved.count() == 0 {
            bail!("--seeds: `{s}` resolves to no address");
        }
    }
    Ok(seeds)
}

/// Fails unless at least one seed accepts a TCP connection (within
/// [`SEED_PROBE_TIMEOUT`] each).
async fn probe_seeds(seeds: &[String]) -> Result<()> {
    let mut problems = Vec::new();
    for s in seeds {
        match tokio::time::timeout(SEED_PROBE_TIMEOUT, tokio::net::TcpStream::connect(s)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => problems.push(format!("{s}: {e}")),
            Err(_) => problems.push(format!(
                "{s}: no answer within {} ms",
                SEED_PROBE_TIMEOUT.as_millis()
            )),
        }
    }
    bail!("no seed accepts connections ({})", problems.join("; "))
}

/// What the operation came to, for the exit code and the report.
struct Report {
    outcome: &'static str,
    code: u8,
    result: Option<TxnResult>,
    /// `(key, value)` pairs to show.
    values: Vec<(Key, Option<Value>)>,
    /// One line for people (on stdout when the outcome is `ok`, on stderr otherwise).
    line: String,
}

fn report(op: &ClientOp, result: Result<TxnResult, ClientError>) -> Report {
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            let (outcome, code) = match e {
                ClientError::ConditionFailed { .. } => ("condition_failed", CONDITION_FAILED),
                ClientError::Timeout { .. } => ("unknown", UNKNOWN),
                ClientError::Unavailable(_) => ("unavailable", UNAVAILABLE),
                ClientError::Rejected(_) | ClientError::Failed(_) => ("failed", FAILED),
                ClientError::UnknownCell(_) => ("unknown_cell", USAGE),
            };
            return Report {
                outcome,
                code,
                result: None,
                values: Vec::new(),
                line: format!("error: {e}"),
            };
        }
    };
    let ok = |values: Vec<(Key, Option<Value>)>, line: String| Report {
        outcome: "ok",
        code: 0,
        result: Some(r.clone()),
        values,
        line,
    };
    match (&r, op) {
        (TxnResult::Get { value }, ClientOp::Get { key }) => {
            let k = Key(key.clone());
            ok(
                vec![(k, value.clone())],
                format!("{key} = {}", show_value(value.as_ref())),
            )
        }
        (TxnResult::Put, ClientOp::Put { key, .. }) => ok(Vec::new(), format!("ok: {key} written")),
        (TxnResult::Cas { ok: true, current }, ClientOp::Cas { key, .. }) => ok(
            vec![(Key(key.clone()), current.clone())],
            format!("ok: {key} was {}, swapped", show_value(current.as_ref())),
        ),
        (TxnResult::Cas { ok: false, current }, ClientOp::Cas { key, expected, .. }) => Report {
            outcome: "condition_failed",
            code: CONDITION_FAILED,
            result: Some(r.clone()),
            values: vec![(Key(key.clone()), current.clone())],
            line: format!(
                "condition failed: {key} holds {}, not {}; nothing was written",
                show_value(current.as_ref()),
                if expected == "-" {
                    "absent".to_owned()
                } else {
                    show_value(parse_value(expected).ok().as_ref())
                }
            ),
        },
        (TxnResult::Incr { value }, ClientOp::Incr { key, .. }) => ok(
            vec![(Key(key.clone()), Some(Value::Int(value.clone())))],
            format!("{key} = {value} (int)"),
        ),
        (TxnResult::Txn { ok: held, reads }, ClientOp::Txn { .. }) => Report {
            outcome: if *held { "ok" } else { "condition_failed" },
            code: if *held { 0 } else { CONDITION_FAILED },
            result: Some(r.clone()),
            values: reads.clone(),
            line: if *held {
                "ok: the conditions held and the writes were applied".into()
            } else {
                "condition failed: the transaction's conditions did not hold; nothing was written"
                    .into()
            },
        },
        (
            TxnResult::Reconfig {
                ok: valid,
                jury,
                epoch,
                in_force,
            },
            ClientOp::Txn { .. },
        ) => {
            let jury: Vec<String> = jury.iter().map(ToString::to_string).collect();
            Report {
                outcome: if *valid { "ok" } else { "condition_failed" },
                code: if *valid { 0 } else { CONDITION_FAILED },
                result: Some(r.clone()),
                values: Vec::new(),
                line: if *valid {
                    format!(
                        "ok: the jury is now [{}], epoch {epoch}, in force from slot {in_force}",
                        jury.join(",")
                    )
                } else {
                    format!(
                        "condition failed: the jury change was not valid for jury [{}]; nothing changed",
                        jury.join(",")
                    )
                },
            }
        }
        (TxnResult::Error { error }, _) => Report {
            outcome: "failed",
            code: FAILED,
            result: Some(r.clone()),
            values: Vec::new(),
            line: format!(
                "error: the operation failed and was applied as a no-op: {}",
                apply_error(error)
            ),
        },
        (other, _) => Report {
            outcome: "failed",
            code: FAILED,
            result: Some(other.clone()),
            values: Vec::new(),
            line: format!(
                "error: the cell answered {} to a {}",
                result_name(other),
                op.name()
            ),
        },
    }
}

fn apply_error(e: &physalia_traces::ApplyError) -> String {
    match e {
        physalia_traces::ApplyError::NotAnInteger { key } => {
            format!("{} does not hold an integer", key.0)
        }
        physalia_traces::ApplyError::IntegerTooLarge { key } => {
            format!(
                "the increment would make {} exceed the integer bound",
                key.0
            )
        }
        physalia_traces::ApplyError::NotBytes { key } => {
            format!("{} does not hold a byte string to append to", key.0)
        }
        physalia_traces::ApplyError::BytesTooLong { key } => {
            format!(
                "the append would make {} longer than the value bound",
                key.0
            )
        }
    }
}

fn result_name(r: &TxnResult) -> &'static str {
    match r {
        TxnResult::Get { .. } => "a get result",
        TxnResult::Put => "a put result",
        TxnResult::Cas { .. } => "a cas result",
        TxnResult::Incr { .. } => "an incr result",
        TxnResult::Txn { .. } => "a txn result",
        TxnResult::Error { .. } => "an error",
        TxnResult::Rejected { .. } => "rejected",
        TxnResult::Overloaded => "overloaded",
        TxnResult::Reconfig { .. } => "a jury change result",
    }
}

/// Runs one client operation; the exit code is one of [`EXIT_CODES`].
pub fn run(args: &ClientArgs) -> Result<u8> {
    let (key, seeds) = match (&args.cluster, &args.seeds, &args.key_file) {
        (Some(dir), _, _) => {
            let file = crate::cluster::read_cluster(dir)?;
            let seeds: Vec<String> = file.nodes.iter().map(|n| n.addr.clone()).collect();
            (
                FrameKey::from_file(&file.key_file)?,
                parse_seeds(&seeds.join(","))?,
            )
        }
        (None, Some(seeds), Some(key)) => (FrameKey::from_file(key)?, parse_seeds(seeds)?),
        _ => bail!("give --seeds and --key-file, or --cluster DIR"),
    };
    let txn = parse_txn(&args.op)?;
    let opts = ClientOptions {
        deadline: Duration::from_millis(args.deadline_ms),
        ..ClientOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rep = rt.block_on(async {
        probe_seeds(&seeds).await?;
        let mut client = Client::new(seeds, key, Client::random_id(), opts);
        anyhow::Ok(match (&args.op, txn) {
            (ClientOp::Read { keys }, _) => {
                let names: Vec<&str> = keys.iter().map(String::as_str).collect();
                match client.read_eventual(&args.cell, &names).await {
                    Ok(values) => Report {
                        outcome: "ok",
                        code: 0,
                        result: None,
                        line: values
                            .iter()
                            .map(|(k, v)| format!("{} = {}", k.0, show_value(v.as_ref())))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        values,
                    },
                    Err(e) => report(&args.op, Err(e)),
                }
            }
            (op, Some(txn)) => report(op, client.txn(&args.cell, txn).await),
            (_, None) => unreachable!("every other operation is a transaction"),
        })
    })?;
    if args.json {
        output::print_json(
            "physalia-client",
            json!({
                "cell": args.cell,
                "op": args.op.name(),
                "outcome": rep.outcome,
                "exit_code": rep.code,
                "result": rep.result,
                "values": rep.values.iter().map(|(k, v)| json!({
                    "key": k.0, "value": value_json(v.as_ref()),
                })).collect::<Vec<_>>(),
                "message": (rep.outcome != "ok").then_some(&rep.line),
            }),
        )?;
    } else if rep.code == 0 {
        output::emit(&format!("{}\n", rep.line))?;
    } else {
        eprintln!("{}", rep.line);
        // A failed cas or txn still read values: show them.
        if let (CONDITION_FAILED, Some(TxnResult::Txn { reads, .. })) = (rep.code, &rep.result) {
            for (k, v) in reads {
                output::emit(&format!("{} = {}\n", k.0, show_value(v.as_ref())))?;
            }
        }
    }
    Ok(rep.code)
}

#[cfg(test)]
mod tests;
