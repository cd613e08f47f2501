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
//! - a clean run is exhaustive when renaming nodes maps executions to executions, which
//!   [`is_exact`] decides for a configuration (it holds for the CI configuration). Otherwise
//!   (two or more elections, whose ballots may tie on the round and be ordered by node id; or
//!   clients that retry round-robin) a clean run with symmetry is a strong but incomplete
//!   check, and `physalia check` says so.
//!
//! Clients are never permuted: their workloads differ. With reconfiguration, the initial
//! jury `n0..n(N-1)` is a constant of the protocol (every jury is computed from it), so
//! nodes are renamed only within the initial jury and within the spares: a renaming that
//! keeps the initial jury as a set maps the jury of every slot to the renamed jury, and the
//! steps that name nodes (teaching, proposing a change, retiring) are offered for every node
//! alike.

use crate::config::{CellConfig, NetworkKind};
use crate::network::Network;
use crate::state::{CellState, Ghost, NodeState, Role};
use crate::types::{Ballot, Change, Command, Endpoint, Entry, Envelope, Msg, NodeId};

/// The representative of `s`'s class under node renaming (see the module docs).
pub fn representative(s: &CellState) -> CellState {
    let n = s.nodes.len();
    let jury = s.shown.initial.len();
    let mut order: Vec<usize> = (0..n).collect();
    // Sort within the initial jury and within the spares, never across.
    order[..jury].sort_by_cached_key(|&i| sort_key(&s.nodes[i]));
    order[jury..].sort_by_cached_key(|&i| sort_key(&s.nodes[i]));
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

/// What a node's state looks like with node ids erased, so that nodes in the same situation
/// sort together whatever their names.
fn sort_key(n: &NodeState) -> impl Ord {
    let role = match &n.role {
        Role::Follower => 0,
        Role::Candidate { .. } => 1,
        Role::Leader { .. } => 2,
    };
    // A jury change names nodes: only its kind is free of node ids.
    type CommandKey = (u8, u8, u8);
    let command = |c: Command| -> CommandKey {
        match c {
            Command::Change(Change::Add(_)) => (2, 0, 0),
            Command::Change(Change::Remove(_)) => (3, 0, 0),
            Command::Change(Change::Replace(..)) => (4, 0, 0),
            Command::Op { client, op } => (1, client, op),
            Command::Noop => (0, 0, 0),
        }
    };
    let log: Vec<Option<(u8, CommandKey)>> = n
        .log
        .iter()
        .map(|e| e.map(|e| (e.ballot.round, command(e.command))))
        .collect();
    (
        (n.status, n.snap),
        role,
        n.ballot.round,
        n.promised.round,
        n.commit,
        log,
        n.applied,
        n.kv,
    )
}

/// Whether renaming nodes maps executions of `cfg` to executions, so that a clean DFS run
/// with symmetry is as good as one without. Node ids enter the protocol in two places only:
/// ballots break ties between equal rounds by node id, and a retrying client moves on to the
/// next node. With at most one election, no two ballots share a round (the bootstrap leader
/// uses round 1, the election the next); on a duplicating network clients never retry. Then
/// every comparison the protocol makes is between rounds or is an equality, both preserved by
/// renaming, and so are all the properties. `tests/symmetry.rs` checks this on small
/// configurations by comparing canonical forms of the full and the reduced state spaces.
///
/// With reconfiguration the same holds for renamings within the initial jury and within the
/// spares (see the module docs), which are the only ones [`representative`] uses.
pub fn is_exact(cfg: &CellConfig) -> bool {
    cfg.max_elections <= 1 && cfg.network == NetworkKind::Duplicating && cfg.mutant.is_none()
}

/// `s` with node `i` renamed to `perm[i]`.
pub fn rename(s: &CellState, perm: &[NodeId]) -> CellState {
    let b = |x: Ballot| rename_ballot(x, perm);
    let e = |x: Entry| rename_entry(x, perm);
    let mut nodes = vec![s.nodes[0].clone(); s.nodes.len()];
    for (old, node) in s.nodes.iter().enumerate() {
        nodes[perm[old] as usize] = NodeState {
            status: node.status,
            snap: node.snap,
            promised: b(node.promised),
            log: node.log.map(|x| x.map(e)),
            role: match &node.role {
                Role::Follower => Role::Follower,
                Role::Candidate { promises, learned } => Role::Candidate {
                    promises: promises.map(|v| v.permuted(perm)),
                    learned: learned.map(|x| x.map(e)),
                },
                Role::Leader {
                    next,
                    votes,
                    promises,
                    learned,
                } => Role::Leader {
                    next: *next,
                    votes: votes.map(|v| v.permuted(perm)),
                    promises: promises.map(|v| v.permuted(perm)),
                    learned: learned.map(|x| x.map(e)),
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
        changes: s.changes,
        shown: s.shown,
        ghost: Ghost {
            votes: {
                let mut v: Vec<_> = s
                    .ghost
                    .votes
                    .iter()
                    .map(|&((slot, bal, cmd), who)| {
                        (
                            (slot, b(bal), rename_command(cmd, perm)),
                            who.permuted(perm),
                        )
                    })
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

fn rename_command(c: Command, perm: &[NodeId]) -> Command {
    match c {
        Command::Change(ch) => Command::Change(ch.permuted(perm)),
        c => c,
    }
}

fn rename_entry(e: Entry, perm: &[NodeId]) -> Entry {
    Entry {
        ballot: rename_ballot(e.ballot, perm),
        command: rename_command(e.command, perm),
    }
}

fn rename_msg(m: &Msg, perm: &[NodeId]) -> Msg {
    let b = |x: Ballot| rename_ballot(x, perm);
    match m {
        Msg::Prepare { ballot, from } => Msg::Prepare {
            ballot: b(*ballot),
            from: *from,
        },
        Msg::Promise {
            ballot,
            from,
            accepted,
        } => Msg::Promise {
            ballot: b(*ballot),
            from: *from,
            accepted: accepted.map(|x| x.map(|e| rename_entry(e, perm))),
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
            command: rename_command(*command, perm),
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
