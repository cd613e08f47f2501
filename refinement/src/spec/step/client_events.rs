//! Which client events a step may log: invocations, returns, and local reads' answers.

use physalia_traces::{ClientEvent, ClientResult, Endpoint, Input, Kind, Msg, Role};

use super::Ctx;

/// Client events: an invocation is a leader taking in the requested operation (logged for
/// every request it takes in, unless it rejects it); a return is the reply sent in the same
/// step, and every reply is logged as a return; a local read's answer is the node's
/// applied prefix ([`super::reads`]).
pub(super) fn check_client_events(ctx: &mut Ctx<'_>) {
    let ev = ctx.ev;
    let mut read_answers = 0;
    for (i, c) in ev.client.iter().enumerate() {
        let field = format!("client[{i}]");
        match c {
            ClientEvent::Invoke { client, op, txn } => {
                let ok = ctx.pre.role == Role::Leader
                    && match &ev.kind {
                        Kind::Input(Input::Request {
                            client: c,
                            op: o,
                            txn: t,
                        }) => c == client && o == op && t == txn,
                        Kind::Input(Input::Deliver {
                            msg:
                                Msg::Request {
                                    client: c,
                                    op: o,
                                    txn: t,
                                },
                            ..
                        }) => c == client && o == op && t == txn,
                        _ => false,
                    };
                if !ok {
                    ctx.find(
                        field,
                        "an invocation only where a leader takes in the requested operation",
                        format!("invoke {client}#{op}"),
                    );
                }
            }
            ClientEvent::Return { client, op, result } => {
                // A node knows the answer it sends: `unknown` is a client's record.
                let replied = match result {
                    ClientResult::Known(r) => ev.sent.iter().any(|s| {
                        s.to == Endpoint::Client(*client)
                            && matches!(&s.msg, Msg::Reply { op: o, result: rr } if o == op && rr == r)
                    }),
                    ClientResult::Unknown => false,
                };
                if !replied {
                    let logged = match result {
                        ClientResult::Known(r) => format!("return {client}#{op} {r}"),
                        ClientResult::Unknown => format!("return {client}#{op} unknown"),
                    };
                    ctx.find(
                        field,
                        "a return only with the Reply sent in the same step, with its result \
                         (a node knows what it answers)",
                        logged,
                    );
                }
            }
            ClientEvent::Read { client, answer } => {
                read_answers += 1;
                super::reads::check_answer(ctx, &field, *client, answer, read_answers);
            }
        }
    }
    for (i, s) in ev.sent.iter().enumerate() {
        let (Endpoint::Client(c), Msg::Reply { op, result }) = (&s.to, &s.msg) else {
            continue;
        };
        let returned = ev.client.iter().any(|e| {
            matches!(e, ClientEvent::Return { client, op: o, result: ClientResult::Known(r) }
                if client == c && o == op && r == result)
        });
        if !returned {
            ctx.find(
                format!("sent[{i}]"),
                "a Reply logged as its operation's return (client events)",
                format!("{} to {c} with no return", s.msg),
            );
        }
    }
    if let Some((c, op)) = ctx.took_in {
        let invoked = ev.client.iter().any(
            |e| matches!(e, ClientEvent::Invoke { client, op: o, .. } if *client == c && *o == op),
        );
        let rejected = ev.sent.iter().any(|s| {
            s.to == Endpoint::Client(c)
                && matches!(&s.msg, Msg::Reply { op: o, result: physalia_traces::TxnResult::Rejected { .. } } if *o == op)
        });
        if !invoked && !rejected {
            ctx.find(
                "client",
                format!(
                    "the invocation of {c}#{op}: a leader logs every request it takes in \
                     (proposed, queued, answered or found in its log) unless it rejects it"
                ),
                "no invoke",
            );
        }
    }
    super::reads::check_answered(ctx, read_answers);
}
