//! Live replay: the same replay as [`super::conform`], fed one event at a time by a
//! follower of trace files that are still being written (`physalia monitor`).
//!
//! It reports each divergence the moment the event that shows it is pushed, and keeps its
//! memory bounded in the length of the run where the batch replay need not: the network's
//! table of sent messages keeps at most [`Live::window`] messages. A delivered message
//! leaves the table once [`Live::window`] messages were sent after it; a message still in
//! flight stays until as many again were sent (a partitioned or paused receiver gets its
//! backlog later). A deliver of a message that left the table cannot be checked: it is
//! reported as [`Divergence::Beyond`], never as a divergence of the trace. What still grows
//! is the specification's own state: per chosen slot, its command and votes (the ghost
//! variables that agreement and durability are checked against).

use std::collections::{HashMap, VecDeque};

use physalia_traces::{Header, Input, Kind, Located, MsgId, NodeId};
use serde::Serialize;

use super::{Consequence, Failure, Options, Replay, Report, FRONTIER_CAP};
use crate::spec::CellFacts;

/// The default of [`Live::window`]: messages kept in the network table.
pub const DEFAULT_WINDOW: usize = 1 << 17;

/// What a live replay found at one event.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Divergence {
    /// The first event the specification refuses (or the frontier cap): from here on the
    /// replay goes on from what the failing node logged, to find the consequences.
    Failure(Failure),
    /// A safety violation after the first failure.
    Consequence(Consequence),
    /// An event the replay cannot check: it delivers a message older than the window.
    Beyond {
        /// The file of the event.
        file: String,
        /// Its line.
        line: usize,
        /// The message delivered.
        id: String,
        /// The window, in messages.
        window: usize,
    },
}

impl Divergence {
    /// Whether this says the trace does not conform (not "cannot check", not the frontier
    /// cap).
    pub fn is_divergence(&self) -> bool {
        match self {
            Divergence::Failure(f) => f.check != FRONTIER_CAP,
            Divergence::Consequence(_) => true,
            Divergence::Beyond { .. } => false,
        }
    }
}

/// A replay fed one event at a time, in a causal order.
pub struct Live {
    replay: Replay,
    pushed: usize,
    stopped: bool,
    consequences_seen: usize,
    /// Send order of the messages in the table.
    recent: VecDeque<MsgId>,
    /// Messages past the window still in flight, oldest first.
    old_in_flight: VecDeque<MsgId>,
    /// Per sender incarnation, the highest message seq that left the table.
    evicted: HashMap<(NodeId, u64), u64>,
    window: usize,
    /// Log entries and persist batches logged by the events pushed so far: the running
    /// bounds on slots and batch ids (the batch replay's bounds over the whole trace, taken
    /// over the causal prefix: every slot and batch an event names was logged before it).
    entries_logged: u64,
    batches_logged: u64,
}

impl Live {
    /// A live replay of the cell that `header` describes, keeping `window` messages.
    pub fn new(header: &Header, opts: &Options, window: usize) -> Live {
        Live {
            replay: Replay::new(CellFacts::from_header(header), &header.cell, opts),
            pushed: 0,
            stopped: false,
            consequences_seen: 0,
            recent: VecDeque::new(),
            old_in_flight: VecDeque::new(),
            evicted: HashMap::new(),
            window: window.max(1),
            entries_logged: 0,
            batches_logged: 0,
        }
    }

    /// The messages kept in the network table past which a delivered one leaves it.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Events pushed.
    pub fn events(&self) -> usize {
        self.pushed
    }

    /// Whether the replay stopped (after a failure and its consequences, the frontier cap,
    /// or an event it cannot check); events pushed after are counted, not replayed.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// States in the frontier now.
    pub fn frontier(&self) -> usize {
        self.replay.frontier.len()
    }

    /// Messages in the network table now.
    pub fn messages(&self) -> usize {
        self.replay.net.msgs.len()
    }

    /// The report so far (no linearizability or liveness: those need the whole history).
    pub fn report(&self) -> &Report {
        &self.replay.report
    }

    /// Replays the next event of the causal order; returns what it found there.
    pub fn push(&mut self, loc: &Located) -> Vec<Divergence> {
        let index = self.pushed;
        self.pushed += 1;
        self.replay.report.events = self.pushed;
        if self.stopped {
            return Vec::new();
        }
        if let Kind::Input(Input::Deliver { id, .. }) = &loc.event.kind {
            let gone = !self.replay.net.msgs.contains_key(id)
                && self
                    .evicted
                    .get(&(id.node, id.inc))
                    .is_some_and(|s| id.seq <= *s);
            if gone {
                self.stopped = true;
                return vec![Divergence::Beyond {
                    file: loc.file.clone(),
                    line: loc.line,
                    id: id.to_string(),
                    window: self.window,
                }];
            }
        }
        let ev = &loc.event;
        self.entries_logged = self
            .entries_logged
            .saturating_add(ev.state.accepted.len() as u64);
        self.batches_logged += u64::from(ev.persist.is_some());
        self.replay.facts.slot_bound = self.entries_logged;
        self.replay.facts.persist_bound = self.batches_logged;
        let had_failure = self.replay.report.failure.is_some();
        let go_on = self.replay.event(index, loc);
        let mut out = Vec::new();
        if !had_failure {
            if let Some(f) = &self.replay.report.failure {
                out.push(Divergence::Failure(f.clone()));
            }
        }
        let cs = &self.replay.report.consequences;
        for c in &cs[self.consequences_seen..] {
            out.push(Divergence::Consequence(c.clone()));
        }
        self.consequences_seen = cs.len();
        if !go_on {
            self.stopped = true;
            self.replay.frontier.clear();
        } else {
            self.evict(loc);
        }
        out
    }

    /// Keeps the network table within the window.
    fn evict(&mut self, loc: &Located) {
        self.recent.extend(loc.event.sent.iter().map(|s| s.id));
        let net = &mut self.replay.net;
        while self.recent.len() > self.window {
            let Some(id) = self.recent.pop_front() else {
                break;
            };
            let in_flight = net.msgs.get(&id).is_some_and(|m| {
                m.copies > 0 || (m.after_persist.is_some() && !net.released.contains(&id))
            });
            if in_flight {
                self.old_in_flight.push_back(id);
            } else {
                forget(net, &mut self.evicted, id);
            }
        }
        while self.old_in_flight.len() > self.window {
            let Some(id) = self.old_in_flight.pop_front() else {
                break;
            };
            forget(net, &mut self.evicted, id);
        }
    }
}

/// Removes message `id` from the table, remembering that it left.
fn forget(net: &mut crate::spec::Network, evicted: &mut HashMap<(NodeId, u64), u64>, id: MsgId) {
    net.msgs.remove(&id);
    net.released.remove(&id);
    if let Some(list) = net.held.get_mut(&(id.node, id.inc)) {
        list.retain(|(_, m)| *m != id);
    }
    let e = evicted.entry((id.node, id.inc)).or_insert(0);
    *e = (*e).max(id.seq);
}
