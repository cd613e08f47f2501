//! Compact, readable renderings of protocol values for scenario logs.

use physalia_impl::sm::LocalRead;
use physalia_traces::{
    ApplyError, Command, DurableWrite, Entry, Msg, Proposal, Txn, TxnResult, Value, WriteOp,
};

pub fn value(v: &Option<Value>) -> String {
    v.as_ref().map_or("absent".to_owned(), |v| v.to_string())
}

pub fn txn(t: &Txn) -> String {
    match t {
        Txn::Get { key } => format!("get {key}"),
        Txn::Put { key, value } => format!("put {key}={value}"),
        Txn::Cas { key, expected, new } => {
            format!("cas {key} {}->{new}", self::value(expected))
        }
        Txn::Incr { key, by } => format!("incr {key} {by}"),
        Txn::Txn {
            conditions,
            reads,
            writes,
        } => {
            let c: Vec<String> = conditions
                .iter()
                .map(|c| format!("{}={}", c.key, self::value(&c.expected)))
                .collect();
            let r: Vec<String> = reads.iter().map(|k| k.to_string()).collect();
            let w: Vec<String> = writes.iter().map(write_op).collect();
            format!(
                "txn if[{}] read[{}] write[{}]",
                c.join(" "),
                r.join(" "),
                w.join(" ")
            )
        }
    }
}

fn write_op(w: &WriteOp) -> String {
    match w {
        WriteOp::Put { key, value } => format!("{key}={value}"),
        WriteOp::Delete { key } => format!("del {key}"),
        WriteOp::Incr { key, by } => format!("{key}+={by}"),
    }
}

pub fn command(c: &Command) -> String {
    match c {
        Command::Noop => "noop".to_owned(),
        Command::Op { client, seq, txn } => format!("{client}#{seq} {}", self::txn(txn)),
    }
}

pub fn entry(e: &Entry) -> String {
    format!("{}@{} {}", e.slot, e.ballot, command(&e.command))
}

fn proposal(p: &Proposal) -> String {
    format!("{}: {}", p.slot, command(&p.command))
}

pub fn result(r: &TxnResult) -> String {
    match r {
        TxnResult::Get { value } => format!("get={}", self::value(value)),
        TxnResult::Put => "ok".to_owned(),
        TxnResult::Cas { ok, current } => format!("cas ok={ok} was={}", self::value(current)),
        TxnResult::Incr { value } => format!("incr={value}"),
        TxnResult::Txn { ok, reads } => {
            let r: Vec<String> = reads
                .iter()
                .map(|(k, v)| format!("{k}={}", self::value(v)))
                .collect();
            format!("txn ok={ok} reads=[{}]", r.join(" "))
        }
        TxnResult::Error { error } => match error {
            ApplyError::NotAnInteger { key } => format!("error: {key} is not an integer"),
            ApplyError::IntegerTooLarge { key } => format!("error: {key} too large"),
        },
        TxnResult::Rejected { reason } => format!("rejected: {reason}"),
        TxnResult::Overloaded => "overloaded".to_owned(),
    }
}

pub fn msg(m: &Msg) -> String {
    match m {
        Msg::Prepare { ballot, from } => format!("Prepare b={ballot} from={from}"),
        Msg::Promise { ballot, accepted } => {
            let e: Vec<String> = accepted.iter().map(entry).collect();
            format!("Promise b={ballot} [{}]", e.join(", "))
        }
        Msg::Nack { ballot, promised } => format!("Nack b={ballot} promised={promised}"),
        Msg::Accept { ballot, proposals } => {
            let p: Vec<String> = proposals.iter().map(proposal).collect();
            format!("Accept b={ballot} [{}]", p.join(", "))
        }
        Msg::Accepted {
            ballot,
            slots,
            commit,
        } => format!("Accepted b={ballot} slots={slots:?} commit={commit}"),
        Msg::Commit { ballot, up_to } => format!("Commit b={ballot} up_to={up_to}"),
        Msg::Request { client, op, txn } => format!("Request {client}#{op} {}", self::txn(txn)),
        Msg::Redirect { op, leader } => match leader {
            Some(n) => format!("Redirect op={op} leader={n}"),
            None => format!("Redirect op={op} leader=unknown"),
        },
        Msg::Reply { op, result } => format!("Reply op={op} {}", self::result(result)),
    }
}

pub fn write(w: &DurableWrite) -> String {
    match w {
        DurableWrite::Promised { ballot } => format!("promised={ballot}"),
        DurableWrite::Accepted { entry } => entry_short(entry),
    }
}

fn entry_short(e: &Entry) -> String {
    format!("{}@{}={}", e.slot, e.ballot, command(&e.command))
}

pub fn local_read(r: &LocalRead) -> String {
    match r {
        LocalRead::Values { applied, values } => {
            let v: Vec<String> = values
                .iter()
                .map(|(k, v)| format!("{k}={}", self::value(v)))
                .collect();
            format!("values applied={applied} [{}]", v.join(" "))
        }
        LocalRead::Behind { applied } => format!("behind applied={applied}"),
    }
}
