//! What one step does, accumulated while the handlers run, and the persist gate.
//!
//! Handlers never build an [`Output`] themselves: they call [`Cell::persist`],
//! [`Cell::send`], [`Cell::send_after_persist`], [`Cell::defer_vote`] and [`Cell::reply`];
//! [`Cell::finish`] turns the accumulated effects into the output and the trace event.

use std::mem;

use physalia_traces::{
    Ballot, ClientEvent, ClientId, ClientResult, DurableWrite, Endpoint, Entry, Envelope, Kind,
    Msg, MsgId, NodeId, Observed, OpSeq, Persist, PersistId, Sent, Slot, TraceEvent, Txn,
};

use super::{AfterPersist, Cell, ClientReply, Output};

/// The effects of the step in progress.
#[derive(Debug, Default)]
pub(super) struct Effects {
    kind: Option<Kind>,
    batch: Option<PersistId>,
    writes: Vec<DurableWrite>,
    send: Vec<Envelope>,
    held: Vec<MsgId>,
    sent: Vec<Sent>,
    released: Vec<MsgId>,
    replies: Vec<ClientReply>,
    client: Vec<ClientEvent>,
    accepted: Vec<Entry>,
}

/// A vote of this node for itself that counts only once the write behind it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SelfVote {
    /// Its promise for its own candidate ballot.
    Promise(Ballot),
    /// Its acceptance of its own proposals at its ballot.
    Accept(Ballot, Vec<Slot>),
}

/// What waits for one persist batch.
#[derive(Debug)]
pub(super) struct Held {
    batch: PersistId,
    msgs: Vec<Envelope>,
    votes: Vec<SelfVote>,
}

impl Cell {
    /// Starts a step: sets the time, ticks the Lamport clock, clears the effects.
    pub(super) fn begin(&mut self, now: u64, kind: Kind, received_lc: Option<u64>) {
        self.now = now;
        self.lc = self.lc.max(received_lc.unwrap_or(0)) + 1;
        self.folded.clear();
        self.fx = Effects {
            kind: Some(kind),
            ..Effects::default()
        };
    }

    /// Adds a record to this step's persist batch (opening the batch if needed).
    pub(super) fn persist(&mut self, write: DurableWrite) {
        if self.fx.batch.is_none() {
            self.issued += 1;
            self.fx.batch = Some(self.issued);
        }
        if let DurableWrite::Accepted { entry } = &write {
            self.fx.accepted.push(entry.clone());
        }
        self.fx.writes.push(write);
    }

    fn envelope(&mut self, to: NodeId, msg: Msg) -> Envelope {
        let id = self.next_msg_id();
        Envelope {
            id,
            to,
            lc: self.lc,
            msg,
        }
    }

    fn next_msg_id(&mut self) -> MsgId {
        let id = MsgId {
            node: self.id,
            inc: self.inc,
            seq: self.msg_seq,
        };
        self.msg_seq += 1;
        id
    }

    /// Sends `msg` to `to` at once: for messages that depend on no unsynced write.
    pub(super) fn send(&mut self, to: NodeId, msg: Msg) {
        let env = self.envelope(to, msg);
        self.fx.sent.push(Sent {
            id: env.id,
            to: Endpoint::Node(to),
            after_persist: None,
            msg: env.msg.clone(),
        });
        self.fx.send.push(env);
    }

    /// Sends `msg` once every write issued so far is durable (at once if it already is).
    pub(super) fn send_after_persist(&mut self, to: NodeId, msg: Msg) {
        if self.issued == self.durable {
            return self.send(to, msg);
        }
        let batch = self.issued;
        let env = self.envelope(to, msg);
        self.fx.sent.push(Sent {
            id: env.id,
            to: Endpoint::Node(to),
            after_persist: Some(batch),
            msg: env.msg.clone(),
        });
        self.fx.held.push(env.id);
        self.held_for(batch).msgs.push(env);
    }

    /// Counts `vote` once every write issued so far is durable.
    pub(super) fn defer_vote(&mut self, vote: SelfVote) {
        debug_assert!(
            self.issued > self.durable,
            "a self-vote follows its own write"
        );
        let batch = self.issued;
        self.held_for(batch).votes.push(vote);
    }

    fn held_for(&mut self, batch: PersistId) -> &mut Held {
        if self.held.back().is_none_or(|h| h.batch != batch) {
            self.held.push_back(Held {
                batch,
                msgs: Vec::new(),
                votes: Vec::new(),
            });
        }
        self.held.back_mut().expect("just pushed")
    }

    /// Answers a client; a `Reply` is also recorded as the operation's return.
    pub(super) fn reply(&mut self, client: ClientId, msg: Msg) {
        if let Msg::Reply { op, result } = &msg {
            self.fx.client.push(ClientEvent::Return {
                client,
                op: *op,
                result: ClientResult::Known(result.clone()),
            });
        }
        let id = self.next_msg_id();
        self.fx.sent.push(Sent {
            id,
            to: Endpoint::Client(client),
            after_persist: None,
            msg: msg.clone(),
        });
        self.fx.replies.push(ClientReply::Msg { client, msg });
    }

    /// Answers a client's local read; the answer is also recorded in the trace.
    pub(super) fn reply_local(&mut self, client: ClientId, answer: crate::kv::LocalRead) {
        self.fx.client.push(ClientEvent::Read {
            client,
            answer: answer.clone(),
        });
        self.fx.replies.push(ClientReply::LocalRead {
            client,
            read: answer,
        });
    }

    /// Records that the operation was taken in by this node.
    pub(super) fn invoked(&mut self, client: ClientId, op: OpSeq, txn: &Txn) {
        self.fx.client.push(ClientEvent::Invoke {
            client,
            op,
            txn: txn.clone(),
        });
    }

    /// Handles `Persisted { up_to }`: releases the held messages and counts the self-votes
    /// of every batch `<= up_to`. An acknowledgement beyond what was issued is clamped.
    pub(super) fn on_persisted(&mut self, up_to: PersistId) {
        let up_to = up_to.min(self.issued);
        if up_to <= self.durable {
            return;
        }
        self.durable = up_to;
        while self.held.front().is_some_and(|h| h.batch <= up_to) {
            let held = self.held.pop_front().expect("checked");
            // A held message leaves now: it carries this step's clock, and the trace
            // records its release, so that its receive follows this step.
            for mut env in held.msgs {
                env.lc = self.lc;
                self.fx.released.push(env.id);
                self.fx.send.push(env);
            }
            for vote in held.votes {
                self.on_self_vote(vote);
            }
        }
    }

    /// Ends the step: builds the output and the trace event.
    pub(super) fn finish(&mut self) -> Output {
        let fx = mem::take(&mut self.fx);
        let persist = fx.batch.map(|id| Persist {
            id,
            writes: fx.writes,
        });
        let trace = TraceEvent {
            node: self.id,
            inc: self.inc,
            seq: self.step_seq,
            lc: self.lc,
            now: self.now,
            kind: fx.kind.expect("begin sets the kind"),
            sent: fx.sent,
            released: fx.released,
            persist: persist.clone(),
            client: fx.client,
            state: Observed {
                promised: self.promised,
                role: self.role,
                ballot: self.ballot,
                commit: self.commit,
                accepted: fx.accepted,
            },
        };
        self.step_seq += 1;
        let after_persist = AfterPersist {
            batch: (!fx.held.is_empty()).then_some(self.issued),
            ids: fx.held,
        };
        Output {
            persist,
            after_persist,
            send: fx.send,
            replies: fx.replies,
            timers: self.timers,
            trace,
        }
    }
}
