//! `physalia client`: one operation against a running cluster, printed as JSON.
//!
//! Exit codes: 0 done, 3 condition failed, 4 timed out (outcome unknown), 5 unavailable,
//! 2 anything else (bad input, rejected, unknown cell).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use num_bigint::BigInt;
use physalia_impl::client::{Client, ClientError, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{Txn, TxnResult, Value};

/// Options of `physalia client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Seed nodes, comma-separated addresses.
    #[arg(long)]
    pub seeds: String,
    /// File holding the cluster key.
    #[arg(long)]
    pub key_file: PathBuf,
    /// The cell.
    #[arg(long, default_value = "c0")]
    pub cell: String,
    /// Give up after this many milliseconds (the outcome is then unknown).
    #[arg(long, default_value_t = 10_000)]
    pub deadline_ms: u64,
    /// The operation.
    #[command(subcommand)]
    pub op: ClientOp,
}

/// One operation. Values: `true`/`false` are booleans, a decimal number is an integer,
/// `hex:ABCD` is a byte string given in hex, anything else is a byte string of its UTF-8.
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
        /// The value.
        value: String,
    },
    /// Compare-and-set: write NEW if the key holds EXPECTED (`-`: absent).
    Cas {
        /// The key.
        key: String,
        /// The expected value, or `-` for absent.
        expected: String,
        /// The new value.
        new: String,
    },
    /// Add BY (default 1) to an integer (absent counts as 0).
    Incr {
        /// The key.
        key: String,
        /// The increment.
        #[arg(default_value = "1", allow_hyphen_values = true)]
        by: String,
    },
    /// A general transaction in the trace format's JSON (`-` reads it from stdin), e.g.
    /// `{"txn":{"conditions":[],"reads":["a"],"writes":[{"put":{"key":"b","value":{"int":"1"}}}]}}`.
    Txn {
        /// The transaction as JSON, or `-`.
        json: String,
    },
    /// Eventually consistent read of keys from any member.
    Read {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// Parses a value argument (see [`ClientOp`]).
pub fn parse_value(s: &str) -> Result<Value> {
    if s == "true" || s == "false" {
        return Ok(Value::Bool(s == "true"));
    }
    if let Some(h) = s.strip_prefix("hex:") {
        return Ok(Value::Bytes(hex::decode(h).with_context(|| {
            format!("`{s}` is not valid hex after `hex:`")
        })?));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Value::Int(s.parse::<BigInt>().context("integer")?));
    }
    Ok(Value::Bytes(s.as_bytes().to_vec()))
}

fn parse_txn(op: &ClientOp) -> Result<Option<Txn>> {
    let key = |k: &String| physalia_traces::Key(k.clone());
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
            by: by
                .parse::<BigInt>()
                .with_context(|| format!("increment `{by}` is not an integer"))?,
        },
        ClientOp::Txn { json } => {
            let text = if json == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                json.clone()
            };
            serde_json::from_str(&text)
                .with_context(|| format!("the transaction is not valid JSON of a Txn: {text}"))?
        }
        ClientOp::Read { .. } => return Ok(None),
    }))
}

/// Runs one client operation.
pub fn run(args: &ClientArgs) -> Result<u8> {
    let key = FrameKey::from_file(&args.key_file)?;
    let seeds: Vec<String> = args
        .seeds
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if seeds.is_empty() {
        bail!("--seeds names no node");
    }
    let txn = parse_txn(&args.op)?;
    let opts = ClientOptions {
        deadline: Duration::from_millis(args.deadline_ms),
        ..ClientOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = Client::new(seeds, key, Client::random_id(), opts);
        let outcome = match (&args.op, txn) {
            (ClientOp::Read { keys }, _) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                client
                    .read_eventual(&args.cell, &keys)
                    .await
                    .map(|values| serde_json::json!({ "read": values }))
            }
            (_, Some(txn)) => client.txn(&args.cell, txn).await.and_then(|r| match r {
                TxnResult::Cas { ok: false, current } => {
                    Err(ClientError::ConditionFailed { current })
                }
                other => Ok(serde_json::to_value(other).expect("results serialise")),
            }),
            (_, None) => unreachable!("every other operation is a transaction"),
        };
        match outcome {
            Ok(v) => {
                println!("{v}");
                Ok(0)
            }
            Err(e) => {
                let code = match e {
                    ClientError::ConditionFailed { .. } => 3,
                    ClientError::Timeout { .. } => 4,
                    ClientError::Unavailable(_) => 5,
                    _ => 2,
                };
                eprintln!("error: {e}");
                Ok(code)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_by_shape() {
        assert_eq!(parse_value("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_value("-12").unwrap(), Value::Int((-12).into()));
        assert_eq!(parse_value("hex:00ff").unwrap(), Value::Bytes(vec![0, 255]));
        assert_eq!(parse_value("abc").unwrap(), Value::Bytes(b"abc".to_vec()));
        assert!(parse_value("hex:zz").is_err());
    }
}
