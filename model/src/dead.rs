//! Garbage collection of dead messages, for the correct protocol only.
//!
//! On a duplicating network a message stays deliverable forever, so two executions that
//! reach the same node and client states but sent different *useless* messages (a `Nack` to
//! a node that has moved on, a `Reply` to a client that has moved on) would count as
//! different states. A message is removed here only when no future delivery of it can change
//! anything, whatever happens next; removing it therefore loses no behaviour. On the CI
//! configuration this divides the state space by more than ten.
//!
//! Each rule relies on a fact of the correct protocol: the ballots a node stands or leads
//! with only grow, across restarts too, because `promised` is durable and a new ballot is
//! above it (a retired node keeps its promise beside its forwarding pointer, and a fresh copy
//! starts from it); a client's `next` only grows. Mutants break those facts, so the model
//! does not collect under a mutant (`tests/dead.rs` checks that collecting never changes a
//! verdict). A commit index also falls when a node retires (its copy is deleted), which the
//! `Commit` rule treats like a crash.

use crate::config::CellConfig;
use crate::jury;
use crate::proposer::{covered, promise_is_new};
use crate::state::{CellState, Role, Status};
use crate::types::{Ballot, Endpoint, Entry, Envelope, Msg, NodeId, Slot};

/// Removes every dead message from the network. `may_crash` says whether any crash (or
/// retirement) is still possible in this run: either resets a node's commit index.
pub fn collect(cfg: &CellConfig, s: &mut CellState, may_crash: bool) {
    let dead: Vec<Envelope> = s
        .network
        .envelopes()
        .into_iter()
        .filter(|e| is_dead(cfg, s, e, may_crash))
        .collect();
    for e in &dead {
        s.network.remove(e);
    }
}

/// Whether delivering `e` can never change anything again.
pub fn is_dead(cfg: &CellConfig, s: &CellState, e: &Envelope, may_crash: bool) -> bool {
    let src = match e.src {
        Endpoint::Node(src) => src,
        Endpoint::Client(c) => {
            // A request for an operation the client already completed: that operation is
            // chosen (Durability), so every leader, present or future, has it in its log
            // (phase 1 recovers every chosen value) and only ignores or re-answers it.
            let Msg::Request { op, .. } = e.msg else {
                return false;
            };
            return s.clients[c as usize].next > op
                && s.nodes.iter().all(|n| {
                    !n.is_leader()
                        || n.log
                            .iter()
                            .flatten()
                            .any(|x| x.command == crate::types::Command::Op { client: c, op })
                });
        }
    };
    match (e.dst, &e.msg) {
        // A `Prepare` from a slot, or an `Accept` for a slot, that the `since` guard of the
        // receiver's copy refuses, and of every copy it may hold later, is never answered.
        (Endpoint::Node(n), Msg::Prepare { from: slot, .. } | Msg::Accept { slot, .. })
            if *slot < future_since(cfg, s, n) =>
        {
            true
        }
        // A client acts on an answer only for the operation it is waiting for.
        (Endpoint::Client(c), Msg::Reply { op, .. } | Msg::Redirect { op, .. }) => {
            s.clients[c as usize].next > *op
        }
        // A promise counts only at a candidate (or, with reconfiguration, a leader) of that
        // very ballot that has not counted it for its slots.
        (Endpoint::Node(n), Msg::Promise { ballot, from, .. }) => {
            let node = &s.nodes[n as usize];
            let juries = || jury::of_node(cfg, node);
            let counting = node.ballot == *ballot
                && match &node.role {
                    Role::Candidate { promises, .. } => {
                        promise_is_new(&juries(), promises, n, src, *from)
                    }
                    Role::Leader { promises, .. } => {
                        cfg.reconfigs > 0
                            && !covered(&juries(), promises, n, *from)
                            && promise_is_new(&juries(), promises, n, src, *from)
                    }
                    Role::Follower => false,
                };
            !counting && node.promised >= *ballot
        }
        // An acceptance counts only at the leader of that ballot, once per slot and node.
        (Endpoint::Node(n), Msg::Accepted { ballot, slot }) => {
            let node = &s.nodes[n as usize];
            let counting = node.ballot == *ballot
                && match &node.role {
                    Role::Leader { votes, .. } => {
                        let who = votes[*slot as usize];
                        *slot >= node.commit && !who.is_empty() && !who.contains(src)
                    }
                    Role::Candidate { .. } => true,
                    Role::Follower => false,
                };
            !counting && node.promised >= *ballot
        }
        // A refusal matters only to a candidate or leader still using that ballot.
        (Endpoint::Node(n), Msg::Nack { ballot, .. }) => done_with(s, n, *ballot),
        // Once the acceptor has promised the ballot (or a higher one), a prepare can only
        // produce a promise or a refusal, which are dead once the sender is done with it.
        (Endpoint::Node(n), Msg::Prepare { ballot, .. }) => {
            s.nodes[n as usize].promised >= *ballot && done_with(s, src, *ballot)
        }
        // An accept the acceptor has already accepted, or now refuses, can only produce an
        // acceptance or a refusal, dead once the sender is done with the ballot. (An accept
        // not yet accepted is alive: accepting it may make its value chosen.)
        (
            Endpoint::Node(n),
            Msg::Accept {
                ballot,
                slot,
                command,
            },
        ) => {
            let node = &s.nodes[n as usize];
            let accepted = node.log[*slot as usize]
                == Some(Entry {
                    ballot: *ballot,
                    command: *command,
                });
            let refused = node.promised > *ballot;
            (accepted || refused) && done_with(s, src, *ballot)
        }
        // A commit a node has already gone past, when no crash can reset its commit index.
        (Endpoint::Node(n), Msg::Commit { up_to, .. }) => {
            let node = &s.nodes[n as usize];
            (!may_crash && node.commit >= *up_to)
                // Below its `since` a copy learns by teaching only: once its commit index
                // is past every slot it was taught, `Commit` moves it only over entries it
                // accepted, at or after its `since`, unless a crash drops it again.
                || (s.crashes >= cfg.max_crashes
                    && *up_to <= future_since(cfg, s, n)
                    && node.commit >= node.snap.min(*up_to))
        }
        _ => false,
    }
}

/// The lowest slot any copy node `n` holds, now or later, may promise or vote for: a member
/// ignores slots below its `since`; a copy created later (on a spare, or on a retired node)
/// or a learner becomes a member for slots from the slot of the change that adds it plus
/// the delay (α; so never below it), and after the slot its previous copy left. (Under
/// `aba-rejoin`, which drops these guards, the model does not collect.)
fn future_since(cfg: &CellConfig, s: &CellState, n: NodeId) -> Slot {
    let delay = cfg.in_force_delay();
    match s.nodes[n as usize].status {
        Status::Member { since } => since,
        Status::Learner { left } | Status::Retired { left } if left > 0 => delay.max(left + 1),
        Status::Learner { .. } | Status::Retired { .. } | Status::Spare => delay,
    }
}

/// Whether node `n` is done with `ballot`: it neither stands nor leads with it, and never
/// will again (its promise is at or above it, and new ballots are above the promise).
fn done_with(s: &CellState, n: NodeId, ballot: Ballot) -> bool {
    let node = &s.nodes[n as usize];
    let using = node.ballot == ballot && !matches!(node.role, Role::Follower);
    !using && node.promised >= ballot
}
