//! One rendering of the vocabulary for people: `check`, `conform`, the Explorer, scenario
//! files and reports all print protocol values through these `Display` impls.
//!
//! The notation, by example:
//!
//! | value | rendered |
//! |---|---|
//! | ballot `(round 2, node 1)` / the zero ballot | `(2,n1)` / `⊥` |
//! | message id (sender, incarnation, per-incarnation counter) | `n0/1/23` |
//! | command | `noop`, `c1#4 put k="v"` (client, operation number, transaction) |
//! | log entry (slot, ballot, command) | `0@(1,n0)=c1#4 put k="v"` |
//! | transactions | `reconfig replace n2->n7`, `get k`, `put k=7`, `cas k absent->"v"`, `incr k -1`, `txn if[k=1] read[j] write[k=2 del j n+=1]` |
//! | results | `get=absent`, `ok`, `cas ok=false was=3`, `incr=4`, `txn ok=true reads=[j=absent]`, `error: k is not an integer`, `rejected: …`, `overloaded` |
//!
//! Byte values print as a quoted string when they are UTF-8 text and as `0x…` hex otherwise.

use std::fmt::{self, Display, Formatter};

use crate::event::{DurableWrite, Input, Kind, ReadAnswer};
use crate::kv::{ApplyError, JuryChange, Txn, TxnResult, Value, WriteOp};
use crate::vocab::{Command, Entry, Image, Msg, Proposal, TimeoutKind};

/// A value or its absence: the value's notation, or `absent`.
pub struct OrAbsent<'a>(pub Option<&'a Value>);

impl Display for OrAbsent<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("absent"),
        }
    }
}

/// Items separated by `sep`.
struct Joined<'a, T>(&'a [T], &'a str);

impl<T: Display> Display for Joined<'_, T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(self.1)?;
            }
            x.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for WriteOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            WriteOp::Put { key, value } => write!(f, "{key}={value}"),
            WriteOp::Delete { key } => write!(f, "del {key}"),
            WriteOp::Incr { key, by } => write!(f, "{key}+={by}"),
            WriteOp::Append { key, bytes } => {
                write!(f, "{key}++={}", Value::Bytes(bytes.clone()))
            }
        }
    }
}

impl Display for JuryChange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            JuryChange::Add { node } => write!(f, "add {node}"),
            JuryChange::Remove { node } => write!(f, "remove {node}"),
            JuryChange::Replace { from, to } => write!(f, "replace {from}->{to}"),
        }
    }
}

impl Display for Txn {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Txn::Get { key } => write!(f, "get {key}"),
            Txn::Put { key, value } => write!(f, "put {key}={value}"),
            Txn::Cas { key, expected, new } => {
                write!(f, "cas {key} {}->{new}", OrAbsent(expected.as_ref()))
            }
            Txn::Incr { key, by } => write!(f, "incr {key} {by}"),
            Txn::Txn {
                conditions,
                reads,
                writes,
            } => {
                f.write_str("txn if[")?;
                for (i, c) in conditions.iter().enumerate() {
                    let sep = if i > 0 { " " } else { "" };
                    write!(f, "{sep}{}={}", c.key, OrAbsent(c.expected.as_ref()))?;
                }
                write!(
                    f,
                    "] read[{}] write[{}]",
                    Joined(reads, " "),
                    Joined(writes, " ")
                )
            }
            Txn::Reconfig { change } => write!(f, "reconfig {change}"),
        }
    }
}

impl Display for ApplyError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::NotAnInteger { key } => write!(f, "{key} is not an integer"),
            ApplyError::IntegerTooLarge { key } => write!(f, "{key} too large"),
            ApplyError::NotBytes { key } => write!(f, "{key} is not a byte string"),
            ApplyError::BytesTooLong { key } => write!(f, "{key} too long"),
        }
    }
}

impl Display for TxnResult {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TxnResult::Get { value } => write!(f, "get={}", OrAbsent(value.as_ref())),
            TxnResult::Put => f.write_str("ok"),
            TxnResult::Cas { ok, current } => {
                write!(f, "cas ok={ok} was={}", OrAbsent(current.as_ref()))
            }
            TxnResult::Incr { value } => write!(f, "incr={value}"),
            TxnResult::Txn { ok, reads } => {
                write!(f, "txn ok={ok} reads=[")?;
                for (i, (k, v)) in reads.iter().enumerate() {
                    let sep = if i > 0 { " " } else { "" };
                    write!(f, "{sep}{k}={}", OrAbsent(v.as_ref()))?;
                }
                f.write_str("]")
            }
            TxnResult::Error { error } => write!(f, "error: {error}"),
            TxnResult::Rejected { reason } => write!(f, "rejected: {reason}"),
            TxnResult::Overloaded => f.write_str("overloaded"),
            TxnResult::Reconfig {
                ok,
                jury,
                epoch,
                in_force,
            } => write!(
                f,
                "reconfig ok={ok} jury=[{}] epoch={epoch} in_force={in_force}",
                Joined(jury, " ")
            ),
        }
    }
}

impl Display for Command {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Command::Noop => f.write_str("noop"),
            Command::Op { client, op, txn } => write!(f, "{client}#{op} {txn}"),
        }
    }
}

impl Display for Entry {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}={}", self.slot, self.ballot, self.command)
    }
}

impl Display for Image {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (keys, sessions) = (self.data.len(), self.sessions.len());
        let s = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "upto={} ({keys} key{}, {sessions} session{}",
            self.upto,
            s(keys),
            s(sessions)
        )?;
        if let Some((_, epoch, config)) = self.juries.last() {
            let members: Vec<String> = config.members.iter().map(|n| n.to_string()).collect();
            write!(f, ", jury epoch {epoch} [{}]", members.join(" "))?;
        }
        f.write_str(")")
    }
}

impl Display for Proposal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.slot, self.command)
    }
}

impl Display for Msg {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Prepare { ballot, from } => write!(f, "Prepare b={ballot} from={from}"),
            Msg::Promise { ballot, accepted } => {
                write!(f, "Promise b={ballot} [{}]", Joined(accepted, ", "))
            }
            Msg::Nack { ballot, promised } => write!(f, "Nack b={ballot} promised={promised}"),
            Msg::Accept { ballot, proposals } => {
                write!(f, "Accept b={ballot} [{}]", Joined(proposals, ", "))
            }
            Msg::Accepted {
                ballot,
                slots,
                commit,
            } => write!(f, "Accepted b={ballot} slots={slots:?} commit={commit}"),
            Msg::Commit { ballot, up_to } => write!(f, "Commit b={ballot} up_to={up_to}"),
            Msg::Snapshot { ballot, image } => write!(f, "Snapshot b={ballot} {image}"),
            Msg::Request { client, op, txn } => write!(f, "Request {client}#{op} {txn}"),
            Msg::Redirect { op, leader } => match leader {
                Some(n) => write!(f, "Redirect op={op} leader={n}"),
                None => write!(f, "Redirect op={op} leader=unknown"),
            },
            Msg::Reply { op, result } => write!(f, "Reply op={op} {result}"),
        }
    }
}

impl Display for DurableWrite {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            DurableWrite::Promised { ballot } => write!(f, "promised={ballot}"),
            DurableWrite::Accepted { entry } => entry.fmt(f),
            DurableWrite::Snapshot { image } => write!(f, "snapshot {image}"),
        }
    }
}

impl Display for ReadAnswer {
    /// `values applied=3 [k=1 j=absent]` or `behind applied=2`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ReadAnswer::Values { applied, values } => {
                write!(f, "values applied={applied} [")?;
                for (i, (k, v)) in values.iter().enumerate() {
                    let sep = if i > 0 { " " } else { "" };
                    write!(f, "{sep}{k}={}", OrAbsent(v.as_ref()))?;
                }
                f.write_str("]")
            }
            ReadAnswer::Behind { applied } => write!(f, "behind applied={applied}"),
        }
    }
}

impl Display for TimeoutKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Display for Input {
    /// Briefly: `deliver Prepare n0/0/3`, `timeout election`, `request c1#4`, ...
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Input::Deliver { id, msg, .. } => write!(f, "deliver {} {id}", msg.name()),
            Input::Timeout { timer } => write!(f, "timeout {timer}"),
            Input::Request { client, op, .. } => write!(f, "request {client}#{op}"),
            Input::LocalRead { client, .. } => write!(f, "local_read {client}"),
            Input::Persisted { up_to } => write!(f, "persisted up_to {up_to}"),
        }
    }
}

impl Display for Kind {
    /// Briefly: `start (promised (1,n0), 3 log entries)`, or the input.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Start {
                promised,
                log_len,
                learner,
                floor,
                base,
            } => {
                let fresh = match (*learner, *floor) {
                    (false, _) => String::new(),
                    (true, 0) => ", a learner's copy".to_owned(),
                    (true, crate::event::NO_FLOOR_YET) => {
                        ", a learner's copy, a member only after its node's removal".to_owned()
                    }
                    (true, f) => format!(", a learner's copy, a member from slot {f} on at least"),
                };
                let snapshot = if *base > 0 {
                    format!(", a snapshot up to slot {base}")
                } else {
                    String::new()
                };
                write!(
                    f,
                    "start (promised {promised}, {log_len} log entries{snapshot}{fresh})"
                )
            }
            Kind::Input(i) => i.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigInt;

    use super::*;
    use crate::kv::{Condition, Key};
    use crate::vocab::{Ballot, ClientId, MsgId, NodeId};

    #[test]
    fn renders_the_documented_notation() {
        let b = Ballot {
            round: 2,
            node: NodeId(1),
        };
        assert_eq!(b.to_string(), "(2,n1)");
        assert_eq!(Ballot::ZERO.to_string(), "⊥");
        let id = MsgId {
            node: NodeId(0),
            inc: 1,
            seq: 23,
        };
        assert_eq!(id.to_string(), "n0/1/23");
        let txn = Txn::Txn {
            conditions: vec![Condition {
                key: Key::from("k"),
                expected: Some(Value::Int(BigInt::from(1))),
            }],
            reads: vec![Key::from("j")],
            writes: vec![
                WriteOp::Delete { key: "j".into() },
                WriteOp::Incr {
                    key: "n".into(),
                    by: BigInt::from(-1),
                },
            ],
        };
        assert_eq!(txn.to_string(), "txn if[k=1] read[j] write[del j n+=-1]");
        let cmd = Command::Op {
            client: ClientId(1),
            op: 4,
            txn: Txn::Cas {
                key: "k".into(),
                expected: None,
                new: Value::Bytes(b"v".to_vec()),
            },
        };
        let e = Entry {
            slot: 0,
            ballot: b,
            command: cmd,
        };
        assert_eq!(e.to_string(), "0@(2,n1)=c1#4 cas k absent->\"v\"");
        let r = TxnResult::Txn {
            ok: true,
            reads: vec![(Key::from("j"), None)],
        };
        assert_eq!(r.to_string(), "txn ok=true reads=[j=absent]");
        assert_eq!(Value::Bytes(vec![0xff]).to_string(), "0xff");
    }
}
