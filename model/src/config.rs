//! The bounds of a model run, its network semantics and the CI suites; the catalogue of
//! broken variants is `crate::mutant`.

use std::str::FromStr;

pub use crate::mutant::Mutant;

/// How the network treats messages. Loss is a separate switch ([`CellConfig::lossy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// FIFO per directed pair of endpoints; only the oldest message of a pair can be delivered.
    Ordered,
    /// Any order; each send is delivered at most once.
    Unordered,
    /// Any order, any number of times: a message stays deliverable once sent (a set, as in
    /// Lamport's `msgs`).
    Duplicating,
}

impl NetworkKind {
    /// The names accepted on the command line.
    pub const NAMES: [&'static str; 3] = ["ordered", "unordered", "duplicating"];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Ordered => "ordered",
            NetworkKind::Unordered => "unordered",
            NetworkKind::Duplicating => "duplicating",
        }
    }
}

impl FromStr for NetworkKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ordered" => Ok(NetworkKind::Ordered),
            "unordered" => Ok(NetworkKind::Unordered),
            "duplicating" => Ok(NetworkKind::Duplicating),
            _ => Err(format!(
                "unknown network {s:?}: expected one of {}",
                NetworkKind::NAMES.join(", ")
            )),
        }
    }
}

/// The bounds of a model run. Every field bounds the state space.
///
/// The default is the "failover" configuration: 3 nodes, 2 clients with one operation each,
/// 2 slots, rounds ≤ 2, `n0` leading from the start, one failover election, no crash, a lossy
/// duplicating network. CI checks it and the [`CellConfig::ci_suite`] exhaustively. A crash
/// on top of it (the single configuration) is more than 10⁷ states even with
/// symmetry: `physalia check --crashes 1` runs it, for tens of minutes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CellConfig {
    /// Nodes in the cell (3 to 7).
    pub nodes: u8,
    /// Clients (1 to 3).
    pub clients: u8,
    /// Operations each client issues, one after the other (1 to 3).
    pub ops_per_client: u8,
    /// The highest ballot round any node may use.
    pub max_round: u8,
    /// Log slots (1 to [`crate::types::MAX_SLOTS`]).
    pub max_slots: u8,
    /// How many crashes may happen in a run.
    pub max_crashes: u8,
    /// How many elections (`Timeout(election)`) may happen in a run, across all nodes.
    pub max_elections: u8,
    /// The pipeline window α: a leader proposes at slot `s` only once every slot below
    /// `s - α + 1` is committed (1: one proposal in flight at a time).
    pub window: u8,
    /// Whether the cell starts with `n0` as its distinguished proposer at ballot `(1, n0)`,
    /// promised by every node, as a cell does once the control plane has created it and its
    /// first election is over. Elections then model failovers. Without it, every node starts
    /// as a follower and the first leader is elected too.
    pub bootstrap_leader: bool,
    /// How many jury changes the distinguished proposer may propose in a run (0: the jury
    /// never changes, and the state space is the one without reconfiguration).
    pub reconfigs: u8,
    /// Nodes outside the initial jury, `n(nodes)..`, that a change may add (the jury and the
    /// spares together are at most 8 nodes, a jury at most 7).
    pub spares: u8,
    /// The kinds of jury change the proposer may propose.
    pub changes: ChangeKinds,
    /// Network semantics.
    pub network: NetworkKind,
    /// Whether messages may be lost. Loss is an explicit `Drop` action on ordered and unordered
    /// networks. A duplicating network needs none: a message that stays in the set but is
    /// never delivered is lost, so dropping it would only double the states for nothing.
    pub lossy: bool,
    /// The broken variant to run, if any.
    pub mutant: Option<Mutant>,
}

impl Default for CellConfig {
    fn default() -> Self {
        CellConfig {
            nodes: 3,
            clients: 2,
            ops_per_client: 1,
            max_round: 2,
            max_slots: 2,
            max_crashes: 0,
            max_elections: 1,
            window: 2,
            bootstrap_leader: true,
            reconfigs: 0,
            spares: 0,
            changes: ChangeKinds::REPLACE,
            network: NetworkKind::Duplicating,
            lossy: true,
            mutant: None,
        }
    }
}

/// Which kinds of jury change the proposer may propose: `replace(x, y)` (a move), `add(y)`,
/// `remove(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeKinds {
    /// `replace(x, y)`: a member leaves and a taught non-member joins.
    pub replace: bool,
    /// `add(y)`: a taught non-member joins.
    pub add: bool,
    /// `remove(x)`: a member leaves.
    pub remove: bool,
}

impl ChangeKinds {
    /// Moves only (the default: the jury keeps its size).
    pub const REPLACE: ChangeKinds = ChangeKinds {
        replace: true,
        add: false,
        remove: false,
    };
    /// Removals only.
    pub const REMOVE: ChangeKinds = ChangeKinds {
        replace: false,
        add: false,
        remove: true,
    };
    /// Every kind.
    pub const ALL: ChangeKinds = ChangeKinds {
        replace: true,
        add: true,
        remove: true,
    };

    /// The names, as `physalia check --changes` takes and prints them.
    pub fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.replace, "replace"),
            (self.add, "add"),
            (self.remove, "remove"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

impl FromStr for ChangeKinds {
    type Err = String;
    /// A comma-separated list of `replace`, `add`, `remove`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = ChangeKinds {
            replace: false,
            add: false,
            remove: false,
        };
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "replace" => out.replace = true,
                "add" => out.add = true,
                "remove" => out.remove = true,
                _ => {
                    return Err(format!(
                        "unknown jury change {name:?}: expected replace, add or remove"
                    ))
                }
            }
        }
        if out.names().is_empty() {
            return Err("no jury change kind given: expected replace, add or remove".into());
        }
        Ok(out)
    }
}

impl CellConfig {
    /// The configurations CI checks exhaustively, by name: together they cover two clients,
    /// two slots, a failover and a crash, each pair of them at once.
    pub fn ci_suite() -> Vec<(&'static str, CellConfig)> {
        let d = CellConfig::default();
        vec![
            ("failover", d.clone()),
            (
                "crash and failover, one slot",
                CellConfig {
                    max_crashes: 1,
                    max_slots: 1,
                    ..d.clone()
                },
            ),
            (
                "crash, two slots",
                CellConfig {
                    max_crashes: 1,
                    max_elections: 0,
                    ..d
                },
            ),
        ]
    }

    /// The reconfiguration configurations CI checks exhaustively, by name: a cell of 3 nodes
    /// and one spare, changes in force α slots after their own. Together they cover a move
    /// with two clients, a move with a client across a failover (the new leader may be
    /// elected under either jury, and re-proposes the change or the write), every kind of
    /// change with a crash across it, a move and back (ABA: the removed node retires, is
    /// taught a fresh copy and re-added) across a failover, and two pipelined changes (α = 2:
    /// each in force two slots later, the second under the first's jury).
    pub fn reconfig_suite() -> Vec<(&'static str, CellConfig)> {
        let move_ = CellConfig {
            reconfigs: 1,
            spares: 1,
            window: 1,
            max_elections: 0,
            ..CellConfig::default()
        };
        vec![
            ("a move", move_.clone()),
            (
                "a move across a failover",
                CellConfig {
                    clients: 1,
                    max_elections: 1,
                    ..move_.clone()
                },
            ),
            (
                "a crash across a change of any kind",
                CellConfig {
                    max_crashes: 1,
                    changes: ChangeKinds::ALL,
                    ..move_.clone()
                },
            ),
            (
                "a move and back across a failover",
                CellConfig {
                    reconfigs: 2,
                    clients: 0,
                    max_elections: 1,
                    ..move_.clone()
                },
            ),
            (
                "two pipelined changes",
                CellConfig {
                    reconfigs: 2,
                    clients: 1,
                    window: 2,
                    max_slots: 3,
                    ..move_
                },
            ),
        ]
    }

    /// Checks the bounds, saying which one is out of range.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, v: u8, lo: u8, hi: u8| {
            if v < lo || v > hi {
                Err(format!("{name} = {v} is out of range {lo}..={hi}"))
            } else {
                Ok(())
            }
        };
        check("nodes", self.nodes, 1, 7)?;
        check("clients", self.clients, 0, 3)?;
        check("ops per client", self.ops_per_client, 0, 3)?;
        check("max round", self.max_round, 1, 9)?;
        check(
            "max slots",
            self.max_slots,
            1,
            crate::types::MAX_SLOTS as u8,
        )?;
        check("crashes", self.max_crashes, 0, 9)?;
        check("elections", self.max_elections, 0, 9)?;
        check("window", self.window, 1, 8)?;
        check("reconfigs", self.reconfigs, 0, 3)?;
        check("spares", self.spares, 0, 8 - self.nodes.min(8))?;
        Ok(())
    }

    /// Every node of the run: the initial jury `n0..n(nodes)` and the spares after it.
    pub fn total_nodes(&self) -> u8 {
        self.nodes + self.spares
    }

    /// The initial jury: `n0..n(nodes)`.
    pub fn initial_jury(&self) -> crate::types::NodeSet {
        crate::types::NodeSet::first(self.nodes)
    }

    /// How many slots after its own a chosen change is in force: α (the window), or 1 under
    /// `config-effective-early`.
    pub fn in_force_delay(&self) -> u8 {
        if self.has(Mutant::ConfigEffectiveEarly) {
            1
        } else {
            self.window
        }
    }

    /// The size of a quorum of the initial jury (a majority of `nodes`). Quorums of a slot
    /// are majorities of that slot's jury (`crate::jury`).
    pub fn quorum(&self) -> usize {
        self.nodes as usize / 2 + 1
    }

    /// Whether the given mutant is switched on.
    pub fn has(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }
}
