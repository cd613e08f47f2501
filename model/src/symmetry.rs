//! Symmetry reduction over node ids, for DFS.
//!
//! [`representative`] renames the nodes of a state so that they appear sorted by their own
//! state, rewriting every node id the state mentions (ballots, vote sets, envelopes, client
//! targets, ghost votes). Two states that differ only by a renaming of nodes then share a
//! fingerprint, and DFS visits one of them.
//!
//! What this does and does not promise (stateright 0.31's DFS continues each path with the
//! *un*-renamed state and only uses the representative to decide "seen before"):
//! - every counterexample found with symmetry is a real execution of the model;
//! - a clean run is exhaustive only if renaming nodes maps executions to executions. Here it
//!   does not quite: ballots `(round, node)` break ties between equal rounds by node id, and a
//!   retrying client moves to node `target + 1`. A clean `--symmetry` run is therefore a
//!   strong but incomplete check; the CI configuration is also checked without it, and
//!   `tests/symmetry.rs` shows it still finds every broken variant.
//! Clients are never permuted: their workloads differ.

use crate::network::Network;
use crate::state::{CellState, Ghost, NodeState, Role};
use crate::types::{Ballot, Endpoint, Entry, Envelope, Msg, NodeId};

/// The representative of `s`'s class under node renaming (see the module docs).
pub fn representative(s: &CellState) -> CellState {
    let n = s.nodes.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| s.nodes[a].cmp(&s.nodes[b]));
    // perm[old] = new
    let mut perm = vec![0 as NodeId; n];
    for (new, &old) in order.iter().enumerate() {
        perm[old] = new as NodeId;
    }
    if perm.iter().enumerate().all(|(i, &p)| p as usize == i) {
        return s.clone();
    }
    rename(s, &perm)
}

/// `s` with node `i` renamed to `perm[i]`.
pub fn rename(s: &CellState, perm: &[NodeId]) -> CellState {
    let b = |x: Ballot| rename_ballot(x, perm);
    let e = |x: Entry| Entry {
        ballot: b(x.ballot),
        command: x.command,
    };
    let mut nodes = vec![s.nodes[0].clone(); s.nodes.len()];
    for (old, node) in s.nodes.iter().enumerate() {
        nodes[perm[old] as usize] = NodeState {
            up: node.up,
            promised: b(node.promised),
            log: node.log.map(|x| x.map(e)),
            role: match &node.role {
                Role::Follower => Role::Follower,
                Role::Candidate { promises, learned } => Role::Candidate {
                    promises: promises.permuted(perm),
                    learned: learned.map(|x| x.map(e)),
                },
                Role::Leader { next, votes } => Role::Leader {
                    next: *next,
                    votes: votes.map(|v| v.permuted(perm)),
                },
            },
            ballot: b(node.ballot),
            commit: node.commit,
            applied: node.applied,
            kv: node.kv,
        };
    }
    let mut high_water = s.ghost.high_water.clone();
    for (old, &hw) in s.ghost.high_water.iter().enumerate() {
        high_water[perm[old] as usize] = b(hw);
    }
    let ep = |x: Endpoint| match x {
        Endpoint::Node(i) => Endpoint::Node(perm[i as usize]),
        c => c,
    };
    let network: Network = s.network.map(|env| Envelope {
        src: ep(env.src),
        dst: ep(env.dst),
        msg: rename_msg(&env.msg, perm),
    });
    CellState {
        nodes,
        clients: s
            .clients
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.target = perm[c.target as usize];
                c
            })
            .collect(),
        network,
        history: s.history.clone(),
        crashes: s.crashes,
        elections: s.elections,
        ghost: Ghost {
            votes: {
                let mut v: Vec<_> = s
                    .ghost
                    .votes
                    .iter()
                    .map(|&((slot, bal, cmd), who)| ((slot, b(bal), cmd), who.permuted(perm)))
                    .collect();
                v.sort();
                v
            },
            high_water,
            ..s.ghost.clone()
        },
    }
}

fn rename_ballot(b: Ballot, perm: &[NodeId]) -> Ballot {
    if b.is_zero() {
        b
    } else {
        Ballot {
            round: b.round,
            node: perm[b.node as usize],
        }
    }
}

fn rename_msg(m: &Msg, perm: &[NodeId]) -> Msg {
    let b = |x: Ballot| rename_ballot(x, perm);
    match m {
        Msg::Prepare { ballot, from } => Msg::Prepare {
            ballot: b(*ballot),
            from: *from,
        },
        Msg::Promise { ballot, accepted } => Msg::Promise {
            ballot: b(*ballot),
            accepted: accepted.map(|x| {
                x.map(|e| Entry {
                    ballot: b(e.ballot),
                    command: e.command,
                })
            }),
        },
        Msg::Nack { ballot, promised } => Msg::Nack {
            ballot: b(*ballot),
            promised: b(*promised),
        },
        Msg::Accept {
            ballot,
            slot,
            command,
        } => Msg::Accept {
            ballot: b(*ballot),
            slot: *slot,
            command: *command,
        },
        Msg::Accepted { ballot, slot } => Msg::Accepted {
            ballot: b(*ballot),
            slot: *slot,
        },
        Msg::Commit { ballot, up_to } => Msg::Commit {
            ballot: b(*ballot),
            up_to: *up_to,
        },
        Msg::Request { .. } | Msg::Reply { .. } => *m,
        Msg::Redirect { op, leader } => Msg::Redirect {
            op: *op,
            leader: leader.map(|l| perm[l as usize]),
        },
    }
}

/// The function to hand to `CheckerBuilder::symmetry_fn`.
pub fn symmetry_fn() -> fn(&CellState) -> CellState {
    representative
}
