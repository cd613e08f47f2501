//! The properties of a cell, one named function each. `always` properties are safety
//! invariants checked on every reachable state; `sometimes` properties are non-vacuity
//! witnesses: if one is never reached, the model (or its bounds) cannot exercise the behaviour
//! the safety properties are meant to cover.
//!
//! Names and sources come from the property catalogue (`physalia_traces::properties`), which
//! the TLA+ spec, the simulator's online checks and the refinement layer share. Each function
//! reads the configuration and a state only, so that the model (`crate::model`) depends on
//! the properties and never the other way round.

use physalia_traces::properties as catalogue;

use crate::config::CellConfig;
use crate::handlers::replay;
use crate::jury::chosen;
use crate::linearizability;
use crate::state::CellState;
use crate::types::Command;

/// Name of [`agreement`].
pub const AGREEMENT: &str = catalogue::AGREEMENT.name;
/// Name of [`committed_prefix`].
pub const COMMITTED_PREFIX: &str = catalogue::COMMITTED_PREFIX.name;
/// Name of [`validity`].
pub const VALIDITY: &str = catalogue::VALIDITY.name;
/// Name of [`promise_monotonic`].
pub const PROMISE_MONOTONIC: &str = catalogue::PROMISE_MONOTONIC.name;
/// Name of [`durability`].
pub const DURABILITY: &str = catalogue::DURABILITY.name;
/// Name of [`applied_in_order`].
pub const APPLIED_IN_ORDER: &str = catalogue::APPLIED_IN_ORDER.name;
/// Name of [`linearizable`].
pub const LINEARIZABLE: &str = catalogue::LINEARIZABLE.name;
/// Name of [`command_chosen`].
pub const COMMAND_CHOSEN: &str = catalogue::COMMAND_CHOSEN.name;
/// Name of [`reproposed_after_leader_change`].
pub const REPROPOSED: &str = catalogue::REPROPOSED.name;
/// Name of [`commit_after_restart`].
pub const COMMIT_AFTER_RESTART: &str = catalogue::COMMIT_AFTER_RESTART.name;
/// Name of [`condition_failed`].
pub const CONDITION_FAILED: &str = catalogue::CONDITION_FAILED.name;
/// Name of [`one_change_at_a_time`].
pub const ONE_CHANGE_AT_A_TIME: &str = catalogue::ONE_CHANGE_AT_A_TIME.name;
/// Name of [`change_in_force`].
pub const CHANGE_IN_FORCE: &str = catalogue::CHANGE_IN_FORCE.name;

/// **Agreement**: at most one command is chosen per slot, where chosen means accepted by a
/// majority of the slot's jury at one ballot ([`crate::jury::chosen`]). Lamport, "Paxos Made
/// Simple" §2.1 ("only a single value is chosen"), applied per slot as in Multi-Paxos; TLA+
/// `Agreement`.
pub fn agreement(cfg: &CellConfig, s: &CellState) -> bool {
    chosen(cfg, s).commands.iter().all(|c| c.len() <= 1)
}

/// **Committed prefix**: any two nodes' committed logs agree on every slot both have
/// committed (the state-machine safety of Raft §5.4.3, and of every SMR protocol). A slot
/// below a node's commit index must hold an entry.
pub fn committed_prefix(_: &CellConfig, s: &CellState) -> bool {
    let logs: Vec<Vec<Option<Command>>> = s
        .nodes
        .iter()
        .map(|n| n.committed().iter().map(|e| e.map(|e| e.command)).collect())
        .collect();
    if logs.iter().flatten().any(Option::is_none) {
        return false;
    }
    logs.iter()
        .all(|a| logs.iter().all(|b| a.iter().zip(b).all(|(x, y)| x == y)))
}

/// **Validity**: every chosen command is a no-op or an operation a client invoked
/// ("Paxos Made Simple" §2.1: "only a value that has been proposed may be chosen").
/// A jury change is the operator's request, which the model folds into the leader's
/// `Reconfigure` step: every change in a log was requested.
pub fn validity(cfg: &CellConfig, s: &CellState) -> bool {
    chosen(cfg, s).commands.iter().flatten().all(|c| match *c {
        Command::Noop | Command::Change(_) => true,
        Command::Op { client, op } => s
            .history
            .get(client as usize)
            .is_some_and(|h| (op as usize) < h.len()),
    })
}

/// **Promise monotonic**: a node's promised ballot never decreases, across restarts too. An
/// acceptor that forgets a promise can accept a lower ballot and break Agreement (Paxos's
/// acceptor state must be stable storage: "Paxos Made Simple" §2.3). Checked against the ghost
/// high-water mark of every ballot the node ever promised.
pub fn promise_monotonic(_: &CellConfig, s: &CellState) -> bool {
    s.nodes
        .iter()
        .zip(&s.ghost.high_water)
        .all(|(n, &hw)| n.promised >= hw)
}

/// **Durability**: every write acknowledged to a client is chosen, so no failure can take it
/// back (Physalia §2: a configuration change the client saw succeed must survive). TxnResults
/// that wrote nothing (reads, failed conditions) are covered by [`linearizable`] instead.
pub fn durability(cfg: &CellConfig, s: &CellState) -> bool {
    let acknowledged = s.history.iter().flatten().any(|r| r.result.is_some());
    if !acknowledged {
        return true;
    }
    let log = chosen(cfg, s);
    s.history.iter().enumerate().all(|(c, ops)| {
        ops.iter()
            .enumerate()
            .all(|(i, record)| match record.result {
                Some(r) if !r.is_read_only() => log.contains(Command::Op {
                    client: c as u8,
                    op: i as u8,
                }),
                _ => true,
            })
    })
}

/// **Applied in slot order**: a node has applied exactly the slots below its commit
/// index, and its store is what applying them in slot order gives. This is the "apply"
/// half of state-machine replication (Schneider 1990: replicas apply the same commands in the
/// same order).
pub fn applied_in_order(_: &CellConfig, s: &CellState) -> bool {
    s.nodes.iter().all(|n| {
        let prefix: u8 = ((1u16 << n.commit) - 1) as u8;
        n.applied == prefix && n.kv == replay(n.committed()).0
    })
}

/// **Linearizable**: the client history is linearizable against the key-value semantics
/// (Herlihy and Wing 1990), checked with [`linearizability::is_linearizable`] each time the
/// history changes (the model caches the verdict in the ghost state).
pub fn linearizable(_: &CellConfig, s: &CellState) -> bool {
    debug_assert_eq!(
        s.ghost.linearizable,
        linearizability::is_linearizable(&s.history)
    );
    s.ghost.linearizable
}

/// **One change at a time**: chosen jury changes are at least α slots apart, so each is in
/// force before the next (Brooker et al. §3: cells move one node at a time; a change chosen
/// at `i` is in force at `i + α`), and the juries of consecutive slots differ by one node.
pub fn one_change_at_a_time(cfg: &CellConfig, s: &CellState) -> bool {
    if cfg.reconfigs == 0 {
        return true;
    }
    let slots: Vec<u8> = chosen(cfg, s).changes().map(|(slot, _)| slot).collect();
    slots
        .windows(2)
        .all(|w| w[0] == w[1] || w[1] - w[0] >= cfg.window)
}

/// Sometimes: some slot has a client operation chosen.
pub fn command_chosen(cfg: &CellConfig, s: &CellState) -> bool {
    chosen(cfg, s)
        .commands
        .iter()
        .flatten()
        .any(|c| matches!(c, Command::Op { .. }))
}

/// Sometimes: a jury change is in force and a command is chosen under the new jury (a
/// majority of a jury other than the initial one accepted it).
pub fn change_in_force(cfg: &CellConfig, s: &CellState) -> bool {
    if s.changes == 0 {
        return false;
    }
    let log = chosen(cfg, s);
    log.juries
        .iter()
        .zip(&log.commands)
        .any(|(jury, cmds)| jury.is_some_and(|j| j != cfg.initial_jury()) && !cmds.is_empty())
}

/// Sometimes: the distinguished proposer changed and the new one re-proposed an operation
/// accepted under another node's ballot (the step Agreement relies on).
pub fn reproposed_after_leader_change(_: &CellConfig, s: &CellState) -> bool {
    s.ghost.reproposed
}

/// Sometimes: a node crashed and restarted, and a leader committed afterwards.
pub fn commit_after_restart(_: &CellConfig, s: &CellState) -> bool {
    s.ghost.committed_after_restart
}

/// Sometimes: a client saw a conditional write fail its condition.
pub fn condition_failed(_: &CellConfig, s: &CellState) -> bool {
    s.history
        .iter()
        .flatten()
        .any(|op| op.result.is_some_and(|r| r.is_failed_condition()))
}
