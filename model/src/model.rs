//! The stateright [`Model`] of one cell: its actions, its transition function and its
//! properties.

use std::fmt;

use stateright::{Model, Property};

use crate::config::{CellConfig, Mutant, NetworkKind};
use crate::handlers::Step;
use crate::network::Network;
use crate::properties as p;
use crate::reconfig;
use crate::state::{CellState, ClientState, Ghost, NodeState, Role, Shown, Status};
use crate::types::{Ballot, Change, ClientId, Endpoint, Envelope, Msg, NodeId, NodeSet, MAX_SLOTS};

/// A timer that fires (the model has no clock: an enabled timer may fire at any time).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// `Timeout(election)` at a node that does not lead.
    Election(NodeId),
    /// `Timeout(retry)` at a client whose request is lost.
    Retry(ClientId),
}

/// One step of the model.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// A client sends its next operation (`Request`).
    Request(ClientId),
    /// A timer fires.
    Timeout(Timer),
    /// A message is delivered.
    Deliver(Envelope),
    /// A message is lost.
    Drop(Envelope),
    /// A node crashes and restarts from its durable state, losing its volatile state.
    ///
    /// One action, not two: in an asynchronous network a node that is down for a while is
    /// indistinguishable from one that is merely not scheduled, with every message to it
    /// delayed (which the network allows), and that crashes just before it restarts. Every
    /// execution with `Crash(n) … Restart(n)` is therefore matched by one where the crash
    /// moves up to the restart, and other nodes see the same thing; splitting the two only
    /// multiplies the interleavings. The TLA+ spec keeps `Crash` and `Restart` apart; the
    /// Rosetta table in `tla/README.md` maps this action to the two.
    Crash(NodeId),
    /// The leader (first) teaches a node (second): a snapshot of its committed prefix,
    /// creating a learner's copy on a node without one. Atomic: log-segment shipping and
    /// snapshot install end in the same state.
    Teach(NodeId, NodeId),
    /// The leader proposes a jury change at its next slot (the operator's request and its
    /// proposal in one step).
    Reconfigure(NodeId, Change),
    /// A removed node deletes its copy once its removal is in force and a majority of the
    /// new jury holds the prefix below it.
    Retire(NodeId),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Request(c) => write!(f, "c{c} invokes its next operation"),
            Action::Timeout(Timer::Election(n)) => write!(f, "Timeout(election) at n{n}"),
            Action::Timeout(Timer::Retry(c)) => write!(f, "Timeout(retry) at c{c}"),
            Action::Deliver(e) => write!(f, "Deliver {e:?}"),
            Action::Drop(e) => write!(f, "Drop {e:?}"),
            Action::Crash(n) => write!(f, "Crash and restart n{n}"),
            Action::Teach(l, y) => {
                write!(f, "n{l} teaches n{y} (snapshot of its committed prefix)")
            }
            Action::Reconfigure(l, c) => write!(f, "n{l} proposes {c:?}"),
            Action::Retire(x) => write!(f, "n{x} retires (deletes its copy, forwards clients)"),
        }
    }
}

/// The model of one cell under a [`CellConfig`].
#[derive(Clone, Debug)]
pub struct CellModel {
    /// The bounds, network and mutant of this run.
    pub cfg: CellConfig,
    /// Whether to remove dead messages after each step (see `dead.rs`); on by default, off
    /// only to show that it changes no verdict.
    pub collect_dead: bool,
}

impl CellModel {
    /// A model of the given configuration. Panics on bounds that [`CellConfig::validate`]
    /// rejects; callers with user input validate first.
    pub fn new(cfg: CellConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid cell configuration: {e}");
        }
        CellModel {
            cfg,
            collect_dead: true,
        }
    }

    /// The initial state: nothing accepted, every client idle. With
    /// [`CellConfig::bootstrap_leader`], `n0` leads at ballot `(1, n0)`, every node has
    /// promised it and the clients know it from discovery; else every node is a follower with
    /// nothing promised and client `c` first asks node `c mod N`.
    pub fn init_state(&self) -> CellState {
        let cfg = &self.cfg;
        let mut s = CellState {
            nodes: (0..cfg.total_nodes())
                .map(|n| {
                    let mut node = NodeState::new();
                    if n >= cfg.nodes {
                        node.status = Status::Spare;
                    }
                    node
                })
                .collect(),
            clients: (0..cfg.clients)
                .map(|c| ClientState {
                    next: 0,
                    pending: false,
                    target: if cfg.bootstrap_leader {
                        0
                    } else {
                        c % cfg.nodes
                    },
                })
                .collect(),
            network: Network::new(cfg.network),
            history: vec![Vec::new(); cfg.clients as usize],
            crashes: 0,
            elections: 0,
            changes: 0,
            shown: Shown {
                initial: cfg.initial_jury(),
                window: cfg.window,
                reconfig: cfg.reconfigs > 0,
            },
            ghost: Ghost {
                votes: Default::default(),
                high_water: vec![Default::default(); cfg.total_nodes() as usize],
                committed_after_restart: false,
                reproposed: false,
                linearizable: true,
            },
        };
        if cfg.bootstrap_leader {
            let ballot = Ballot { round: 1, node: 0 };
            for (i, node) in s.nodes.iter_mut().enumerate().take(cfg.nodes as usize) {
                node.promised = ballot;
                s.ghost.high_water[i] = ballot;
            }
            s.nodes[0].ballot = ballot;
            let mut promises = crate::state::Cover::default();
            if cfg.reconfigs > 0 {
                // The bootstrap election: every node of the initial jury promised from 0.
                for n in 0..cfg.nodes {
                    crate::state::cover_from(&mut promises, n, 0);
                }
            }
            s.nodes[0].role = Role::Leader {
                next: 0,
                votes: [NodeSet::default(); MAX_SLOTS],
                promises,
                learned: [None; MAX_SLOTS],
            };
        }
        s
    }

    /// Whether a client's retry timer may fire. The model has no clock; "the request or its
    /// answer was lost" is the reason to retry. On ordered and unordered networks that means
    /// nothing of the client's is in flight (which also bounds what a client can put in
    /// flight). A duplicating network never needs it: the request stays deliverable, so a
    /// re-delivery plays the retry (and a node that has since learned the leader answers the
    /// re-delivered request with a better `Redirect`).
    fn request_lost(&self, s: &CellState, c: ClientId) -> bool {
        if self.cfg.network == NetworkKind::Duplicating {
            return false;
        }
        let me = Endpoint::Client(c);
        !s.network
            .any(|src, dst, msg| (*src == me && matches!(msg, Msg::Request { .. })) || *dst == me)
    }

    fn apply(&self, s: &mut CellState, action: Action) {
        let mut step = Step { cfg: &self.cfg, s };
        match action {
            Action::Request(c) => step.invoke(c),
            Action::Timeout(Timer::Election(n)) => {
                step.s.elections += 1;
                step.on_election_timeout(n)
            }
            Action::Timeout(Timer::Retry(c)) => step.on_retry_timeout(c),
            Action::Deliver(env) => {
                step.s.network.on_deliver(&env);
                deliver(&mut step, env);
            }
            Action::Drop(env) => step.s.network.remove(&env),
            Action::Crash(n) => {
                let mutant = self.cfg.mutant;
                let node = &mut step.s.nodes[n as usize];
                let mut fresh = NodeState::new();
                (fresh.status, fresh.snap) = (node.status, node.snap);
                if mutant != Some(crate::Mutant::PromiseNotDurable) {
                    fresh.promised = node.promised;
                }
                if mutant != Some(crate::Mutant::AcceptedNotDurable) {
                    fresh.log = node.log;
                }
                *node = fresh;
                step.s.crashes += 1;
            }
            Action::Teach(l, y) => step.teach(l, y),
            Action::Reconfigure(l, c) => step.reconfigure(l, c),
            Action::Retire(x) => step.retire(x),
        }
    }
}

impl CellModel {
    /// The reconfiguration steps enabled in `s`: each leader teaching each node it may
    /// teach, proposing each change it may propose; each removed node that may retire.
    fn reconfig_actions(&self, s: &CellState, actions: &mut Vec<Action>) {
        let cfg = &self.cfg;
        for l in 0..cfg.total_nodes() {
            if !s.nodes[l as usize].is_leader() {
                continue;
            }
            for y in 0..cfg.total_nodes() {
                if reconfig::teach_enabled(cfg, s, l, y) {
                    actions.push(Action::Teach(l, y));
                }
            }
            for c in reconfig::changes_enabled(cfg, s, l) {
                actions.push(Action::Reconfigure(l, c));
            }
        }
        for x in 0..cfg.total_nodes() {
            if reconfig::retire_enabled(cfg, s, x) {
                actions.push(Action::Retire(x));
            }
        }
    }
}

fn deliver(step: &mut Step<'_>, env: Envelope) {
    match (env.src, env.dst, env.msg) {
        (Endpoint::Node(src), Endpoint::Node(n), msg) => match msg {
            Msg::Prepare { ballot, from } => step.on_prepare(n, src, ballot, from),
            Msg::Promise {
                ballot,
                from,
                accepted,
            } => step.on_promise(n, src, ballot, from, &accepted),
            Msg::Nack { ballot, .. } => step.on_nack(n, ballot),
            Msg::Accept {
                ballot,
                slot,
                command,
            } => step.on_accept(n, src, ballot, slot, command),
            Msg::Accepted { ballot, slot } => step.on_accepted(n, src, ballot, slot),
            Msg::Commit { ballot, up_to } => step.on_commit(n, ballot, up_to),
            Msg::Request { .. } | Msg::Redirect { .. } | Msg::Reply { .. } => {
                unreachable!("client messages are never sent between nodes")
            }
        },
        (Endpoint::Client(_), Endpoint::Node(n), Msg::Request { client, op }) => {
            step.on_request(n, client, op)
        }
        (Endpoint::Node(_), Endpoint::Client(c), Msg::Redirect { op, leader }) => {
            step.on_redirect(c, op, leader)
        }
        (Endpoint::Node(_), Endpoint::Client(c), Msg::Reply { op, result }) => {
            step.on_reply(c, op, result)
        }
        (src, dst, msg) => unreachable!("no handler for {msg:?} from {src:?} to {dst:?}"),
    }
}

impl Model for CellModel {
    type State = CellState;
    type Action = Action;

    fn init_states(&self) -> Vec<CellState> {
        vec![self.init_state()]
    }

    fn actions(&self, s: &CellState, actions: &mut Vec<Action>) {
        let cfg = &self.cfg;
        for (c, client) in s.clients.iter().enumerate() {
            let c = c as ClientId;
            if !client.pending && client.next < cfg.ops_per_client {
                actions.push(Action::Request(c));
            }
            if client.pending && self.request_lost(s, c) {
                actions.push(Action::Timeout(Timer::Retry(c)));
            }
        }
        for (n, node) in s.nodes.iter().enumerate() {
            let n = n as NodeId;
            let next_round = node.promised.round.max(node.ballot.round) + 1;
            if !node.is_leader()
                && next_round <= cfg.max_round
                && s.elections < cfg.max_elections
                && reconfig::may_stand(cfg, s, n)
            {
                actions.push(Action::Timeout(Timer::Election(n)));
            }
        }
        for env in s.network.deliverable() {
            if cfg.lossy && cfg.network != NetworkKind::Duplicating {
                actions.push(Action::Drop(env));
            }
            actions.push(Action::Deliver(env));
        }
        for (n, node) in s.nodes.iter().enumerate() {
            if s.crashes < cfg.max_crashes && node.status.has_copy() {
                actions.push(Action::Crash(n as NodeId));
            }
        }
        if cfg.reconfigs > 0 {
            self.reconfig_actions(s, actions);
        }
    }

    fn next_state(&self, last: &CellState, action: Action) -> Option<CellState> {
        let mut s = last.clone();
        self.apply(&mut s, action);
        for (hw, node) in s.ghost.high_water.iter_mut().zip(&s.nodes) {
            if node.promised > *hw {
                *hw = node.promised;
            }
        }
        if s.history != last.history {
            s.ghost.linearizable = crate::linearizability::is_linearizable(&s.history);
        }
        if self.cfg.mutant.is_none_or(Mutant::collects_dead) && self.collect_dead {
            // A retirement resets a commit index as a crash does.
            let may_crash = s.crashes < self.cfg.max_crashes || self.cfg.reconfigs > 0;
            crate::dead::collect(&self.cfg, &mut s, may_crash);
        }
        (s != *last).then_some(s)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(p::AGREEMENT, |m: &CellModel, s: &CellState| {
                p::agreement(&m.cfg, s)
            }),
            Property::always(p::COMMITTED_PREFIX, |m: &CellModel, s: &CellState| {
                p::committed_prefix(&m.cfg, s)
            }),
            Property::always(p::VALIDITY, |m: &CellModel, s: &CellState| {
                p::validity(&m.cfg, s)
            }),
            Property::always(p::PROMISE_MONOTONIC, |m: &CellModel, s: &CellState| {
                p::promise_monotonic(&m.cfg, s)
            }),
            Property::always(p::DURABILITY, |m: &CellModel, s: &CellState| {
                p::durability(&m.cfg, s)
            }),
            Property::always(p::APPLIED_IN_ORDER, |m: &CellModel, s: &CellState| {
                p::applied_in_order(&m.cfg, s)
            }),
            Property::always(p::LINEARIZABLE, |m: &CellModel, s: &CellState| {
                p::linearizable(&m.cfg, s)
            }),
            Property::always(p::ONE_CHANGE_AT_A_TIME, |m: &CellModel, s: &CellState| {
                p::one_change_at_a_time(&m.cfg, s)
            }),
            Property::sometimes(p::COMMAND_CHOSEN, |m: &CellModel, s: &CellState| {
                p::command_chosen(&m.cfg, s)
            }),
            Property::sometimes(p::REPROPOSED, |m: &CellModel, s: &CellState| {
                p::reproposed_after_leader_change(&m.cfg, s)
            }),
            Property::sometimes(p::COMMIT_AFTER_RESTART, |m: &CellModel, s: &CellState| {
                p::commit_after_restart(&m.cfg, s)
            }),
            Property::sometimes(p::CONDITION_FAILED, |m: &CellModel, s: &CellState| {
                p::condition_failed(&m.cfg, s)
            }),
            Property::sometimes(p::CHANGE_IN_FORCE, |m: &CellModel, s: &CellState| {
                p::change_in_force(&m.cfg, s)
            }),
        ]
    }
}
