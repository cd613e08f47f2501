//! The merge of [`crate::merge`] one event at a time, for trace files still being written.
//!
//! [`merge`](crate::merge) sees every event before it orders them; a follower sees each
//! node's events as they are appended, so it emits an event once nothing it has not seen
//! yet can have to come before it in a causal order: the node's previous event has been
//! emitted, and the message it receives (if any) has been sent, and released when it was
//! held, by an emitted event. Among the events ready at once it emits the lowest
//! `(lc, node, inc, seq)` first, as the batch merge orders them. The checks are the batch
//! merge's (dense sequence numbers from 0 per incarnation, growing incarnations, a strictly
//! increasing Lamport clock per node, a send for every receive, with the clock it left
//! with), reported with the same [`MergeError`]s the moment they are certain.
//!
//! A node's next incarnation may start only once the previous one is known complete
//! ([`Follow::seal`]): its file was read to the end after the newer file appeared. The one
//! thing a follower assumes of its input is what processes give: a node's newer incarnation
//! starts after the older one wrote its first event, so a reader that reads every file
//! before it asks for [`Follow::next_ready`] has added an event of the older incarnation
//! before, or with, any of the newer one's.
//!
//! Bounds: at most [`Follow::backlog`] events wait to be emitted (reaching it is
//! [`FollowError::Backlog`]); the table of sends keeps the last [`Follow::window`] message
//! ids (a receive of an older one is let through: the replay reports what it can check).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use crate::event::{Header, Input, Kind};
use crate::io::Located;
use crate::merge::MergeError;
use crate::vocab::{Endpoint, MsgId, NodeId};

/// Why following stopped.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FollowError {
    /// The files do not merge (as [`crate::merge`] would say).
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// A node's newer incarnation waits for its older one to be known complete.
    #[error(
        "{file}:{line}: {node} incarnation {newer} waits for incarnation {inc} to end (its \
         file was not read to its end after the newer file appeared)"
    )]
    Unsealed {
        /// The file of the newer incarnation's first event.
        file: String,
        /// Its line.
        line: usize,
        /// The node.
        node: NodeId,
        /// The older incarnation.
        inc: u64,
        /// The newer one.
        newer: u64,
    },
    /// Too many events wait for something that does not come.
    #[error(
        "{file}:{line}: {waiting} events wait to be ordered, the bound; the oldest waits for \
         {what}"
    )]
    Backlog {
        /// The file of the oldest waiting event.
        file: String,
        /// Its line.
        line: usize,
        /// Events waiting.
        waiting: usize,
        /// What it waits for.
        what: String,
    },
}

/// One node's events not emitted yet, and what was emitted last.
#[derive(Default)]
struct Stream {
    pending: BTreeMap<(u64, u64), Located>,
    /// `(inc, seq, lc)` of the last event emitted.
    last: Option<(u64, u64, u64)>,
    /// Incarnations known complete.
    sealed: BTreeSet<u64>,
}

/// Where a message was sent (or released): the clock it left with.
struct Sent {
    lc: u64,
    file: Arc<str>,
    line: usize,
    /// Held until a persist batch and not released yet.
    held: bool,
}

/// An incremental merge of one cell's trace files.
pub struct Follow {
    header: Option<(Header, String)>,
    nodes: BTreeMap<NodeId, Stream>,
    sends: HashMap<MsgId, Sent>,
    order: VecDeque<MsgId>,
    /// Held sends past the window, not released yet (their receive must wait for it).
    held_old: VecDeque<MsgId>,
    evicted: HashMap<(NodeId, u64), u64>,
    waiting: usize,
    backlog: usize,
    window: usize,
    emitted: u64,
}

/// Why a node's first pending event cannot be emitted yet.
enum Block {
    /// Its predecessor is not there yet.
    Predecessor { expected: (u64, u64) },
    /// The message it receives was not sent (or released) by an emitted event yet.
    Message(MsgId),
}

impl Follow {
    /// A follower keeping at most `backlog` waiting events and `window` message ids.
    pub fn new(backlog: usize, window: usize) -> Follow {
        Follow {
            header: None,
            nodes: BTreeMap::new(),
            sends: HashMap::new(),
            order: VecDeque::new(),
            held_old: VecDeque::new(),
            evicted: HashMap::new(),
            waiting: 0,
            backlog: backlog.max(1),
            window: window.max(1),
            emitted: 0,
        }
    }

    /// The bound on waiting events.
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// The message ids kept to check receives against.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Events read and not emitted yet.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Events of `node` read and not emitted yet.
    pub fn waiting_of(&self, node: NodeId) -> usize {
        self.nodes.get(&node).map_or(0, |s| s.pending.len())
    }

    /// Events emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The header every file shares, once one was read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref().map(|(h, _)| h)
    }

    /// Notes the header of `file`; every file's must be the first one's.
    pub fn add_header(&mut self, file: &str, header: &Header) -> Result<(), FollowError> {
        match &self.header {
            None => self.header = Some((header.clone(), file.to_owned())),
            Some((h, first)) if h != header => {
                return Err(MergeError::HeaderMismatch {
                    file: file.to_owned(),
                    first: first.clone(),
                }
                .into())
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Adds an event read from a file (in the file's order).
    pub fn add(&mut self, ev: Located) -> Result<(), FollowError> {
        let e = &ev.event;
        let stream = self.nodes.entry(e.node).or_default();
        let key = (e.inc, e.seq);
        let done = stream.last.is_some_and(|(i, s, _)| key <= (i, s));
        if done || stream.pending.contains_key(&key) || stream.sealed.contains(&e.inc) {
            // Seen twice, or after its incarnation was complete: the batch merge's gap.
            let expected = match stream.last {
                Some((i, s, _)) if i == e.inc => s + 1,
                _ => 0,
            };
            return Err(MergeError::SeqGap {
                file: ev.file.clone(),
                line: ev.line,
                node: e.node,
                inc: e.inc,
                expected,
                found: e.seq,
            }
            .into());
        }
        if self.waiting >= self.backlog {
            let what = self.oldest_block().unwrap_or_else(|| {
                "nothing: the events arrive faster than they are replayed".into()
            });
            return Err(FollowError::Backlog {
                file: ev.file,
                line: ev.line,
                waiting: self.waiting,
                what,
            });
        }
        stream.pending.insert(key, ev);
        self.waiting += 1;
        Ok(())
    }

    /// Says that incarnation `inc` of `node` has no more events to come.
    pub fn seal(&mut self, node: NodeId, inc: u64) {
        self.nodes.entry(node).or_default().sealed.insert(inc);
    }

    /// The next event of the causal order, if one is ready.
    pub fn next_ready(&mut self) -> Result<Option<Located>, FollowError> {
        let mut best: Option<(u64, NodeId, u64, u64)> = None;
        for (node, stream) in &self.nodes {
            let Some((&(inc, seq), ev)) = stream.pending.first_key_value() else {
                continue;
            };
            if self.block(stream, ev)?.is_some() {
                continue;
            }
            let key = (ev.event.lc, *node, inc, seq);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let Some((_, node, inc, seq)) = best else {
            return Ok(None);
        };
        let stream = self.nodes.get_mut(&node).expect("chosen above");
        let ev = stream.pending.remove(&(inc, seq)).expect("chosen above");
        if let Some((_, _, lc)) = stream.last {
            if ev.event.lc <= lc {
                return Err(MergeError::ClockBackwards {
                    file: ev.file.clone(),
                    line: ev.line,
                    node,
                    previous: lc,
                    lc: ev.event.lc,
                }
                .into());
            }
        }
        stream.last = Some((inc, seq, ev.event.lc));
        self.waiting -= 1;
        self.emitted += 1;
        self.record_sends(&ev)?;
        Ok(Some(ev))
    }

    /// At the end of the input: every incarnation is complete. Drain [`Follow::next_ready`] after
    /// it; then [`Follow::leftover`] says what never came.
    pub fn end_of_input(&mut self) {
        for stream in self.nodes.values_mut() {
            let incs: Vec<u64> = stream.pending.keys().map(|k| k.0).collect();
            stream.sealed.extend(incs);
            if let Some((i, _, _)) = stream.last {
                stream.sealed.insert(i);
            }
        }
    }

    /// After the input ended and [`Follow::next_ready`] was drained: the batch merge's error for
    /// an event still waiting (it waits for something that will never come).
    pub fn leftover(&self) -> Option<FollowError> {
        (self.waiting > 0).then(|| self.stuck())
    }

    /// The error for the first waiting event of the lowest clock: what it misses.
    pub fn stuck(&self) -> FollowError {
        let mut worst: Option<(&Located, Block)> = None;
        for stream in self.nodes.values() {
            let Some(ev) = stream.pending.values().next() else {
                continue;
            };
            if let Ok(Some(b)) = self.block(stream, ev) {
                if worst.as_ref().is_none_or(|(w, _)| ev.event.lc < w.event.lc) {
                    worst = Some((ev, b));
                }
            }
        }
        let Some((ev, block)) = worst else {
            return FollowError::Backlog {
                file: String::new(),
                line: 0,
                waiting: self.waiting,
                what: "nothing (the events are ready: call next_ready)".into(),
            };
        };
        match block {
            Block::Message(id) => MergeError::ReceiveWithoutSend {
                file: ev.file.clone(),
                line: ev.line,
                id,
            }
            .into(),
            Block::Predecessor { expected } if expected.0 != ev.event.inc => {
                FollowError::Unsealed {
                    file: ev.file.clone(),
                    line: ev.line,
                    node: ev.event.node,
                    inc: expected.0,
                    newer: ev.event.inc,
                }
            }
            Block::Predecessor { expected } => MergeError::SeqGap {
                file: ev.file.clone(),
                line: ev.line,
                node: ev.event.node,
                inc: ev.event.inc,
                expected: expected.1,
                found: ev.event.seq,
            }
            .into(),
        }
    }

    /// What the oldest waiting event waits for, in words.
    fn oldest_block(&self) -> Option<String> {
        let e = self.stuck();
        match e {
            FollowError::Backlog { .. } => None,
            FollowError::Merge(MergeError::ReceiveWithoutSend { file, line, id }) => Some(
                format!("the send of message {id} (received at {file}:{line}; is a node's file not followed?)"),
            ),
            FollowError::Merge(MergeError::SeqGap {
                file,
                line,
                node,
                inc,
                expected,
                ..
            }) => Some(format!(
                "event {expected} of {node} incarnation {inc} (before {file}:{line})"
            )),
            other => Some(other.to_string()),
        }
    }

    /// Why the first pending event `ev` of `stream` cannot be emitted, if it cannot; an
    /// error when it never can.
    fn block(&self, stream: &Stream, ev: &Located) -> Result<Option<Block>, FollowError> {
        let e = &ev.event;
        match stream.last {
            Some((i, s, _)) if e.inc == i && e.seq == s + 1 => {}
            Some((i, s, _)) => {
                if e.inc > i && stream.sealed.contains(&i) && e.seq == 0 {
                    // The next incarnation starts.
                } else {
                    let expected = (i, s + 1);
                    if stream.sealed.contains(&i) {
                        return Err(gap(ev, expected));
                    }
                    return Ok(Some(Block::Predecessor { expected }));
                }
            }
            None if e.seq == 0 => {}
            None => {
                if stream.sealed.contains(&e.inc) {
                    return Err(gap(ev, (e.inc, 0)));
                }
                return Ok(Some(Block::Predecessor {
                    expected: (e.inc, 0),
                }));
            }
        }
        if let Kind::Input(Input::Deliver { id, lc, .. }) = &e.kind {
            match self.sends.get(id) {
                Some(sent) if sent.lc == *lc && e.lc > *lc => {}
                Some(sent) if sent.lc > *lc || e.lc <= *lc => {
                    return Err(MergeError::ClockBeforeSend {
                        file: ev.file.clone(),
                        line: ev.line,
                        id: *id,
                        lc: e.lc,
                        send: format!("{}:{}", sent.file, sent.line),
                        send_lc: sent.lc,
                    }
                    .into())
                }
                Some(_) => return Ok(Some(Block::Message(*id))), // held, not released yet
                None if self
                    .evicted
                    .get(&(id.node, id.inc))
                    .is_some_and(|s| id.seq <= *s) => {} // older than the window
                None => return Ok(Some(Block::Message(*id))),
            }
        }
        Ok(None)
    }

    /// Records the messages `ev` sends and releases.
    fn record_sends(&mut self, ev: &Located) -> Result<(), FollowError> {
        let file: Arc<str> = Arc::from(ev.file.as_str());
        for s in &ev.event.sent {
            if !matches!(s.to, Endpoint::Node(_)) {
                continue;
            }
            if let Some(other) = self.sends.get(&s.id) {
                return Err(MergeError::DuplicateSend {
                    file: ev.file.clone(),
                    line: ev.line,
                    id: s.id,
                    other: format!("{}:{}", other.file, other.line),
                }
                .into());
            }
            self.sends.insert(
                s.id,
                Sent {
                    lc: ev.event.lc,
                    file: file.clone(),
                    line: ev.line,
                    held: s.after_persist.is_some(),
                },
            );
            self.order.push_back(s.id);
        }
        for id in &ev.event.released {
            if let Some(sent) = self.sends.get_mut(id) {
                if sent.lc < ev.event.lc {
                    *sent = Sent {
                        lc: ev.event.lc,
                        file: file.clone(),
                        line: ev.line,
                        held: false,
                    };
                }
            }
        }
        while self.order.len() > self.window {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            if self.sends.get(&id).is_some_and(|s| s.held) {
                self.held_old.push_back(id);
            } else {
                self.forget(id);
            }
        }
        while self.held_old.len() > self.window {
            let Some(id) = self.held_old.pop_front() else {
                break;
            };
            self.forget(id);
        }
        Ok(())
    }

    /// Drops message `id` from the table of sends, remembering that it left.
    fn forget(&mut self, id: MsgId) {
        self.sends.remove(&id);
        let e = self.evicted.entry((id.node, id.inc)).or_insert(0);
        *e = (*e).max(id.seq);
    }
}

fn gap(ev: &Located, expected: (u64, u64)) -> FollowError {
    MergeError::SeqGap {
        file: ev.file.clone(),
        line: ev.line,
        node: ev.event.node,
        inc: ev.event.inc,
        expected: if expected.0 == ev.event.inc {
            expected.1
        } else {
            0
        },
        found: ev.event.seq,
    }
    .into()
}
