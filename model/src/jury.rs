//! Juries per slot (`docs/protocol.md`, "Reconfiguration"): `config(s)` is the initial jury
//! with every valid change chosen at a slot `j ≤ s − α` applied in slot order, so it is a
//! function of the chosen prefix below `s − α + 1`.
//!
//! A node computes juries from the prefix it knows is chosen (its committed prefix); the
//! ghost computes them from the chosen log, slot by slot ([`chosen`]): the jury of slot `s`
//! decides what is chosen at `s`, which decides the juries `α` slots later.

use crate::config::{CellConfig, Mutant};
use crate::state::{CellState, NodeState};
use crate::types::{Change, Command, NodeId, NodeSet, Slot, MAX_SLOTS};

/// The juries a decided prefix of the log determines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Juries {
    initial: NodeSet,
    /// The delay after which a chosen change is in force (α).
    delay: Slot,
    /// How many slots are decided.
    known: Slot,
    /// The jury after each decided slot's command.
    after: [NodeSet; MAX_SLOTS],
    /// Per node, the slot of the last valid change that made it a member (if any).
    joined: [Option<Slot>; 8],
}

impl Juries {
    /// The juries of the decided commands `prefix` (slot 0 first), from `initial`, with
    /// changes in force `delay` slots after their own.
    pub fn new(initial: NodeSet, delay: Slot, prefix: impl IntoIterator<Item = Command>) -> Self {
        let mut out = Juries {
            initial,
            delay,
            known: 0,
            after: [initial; MAX_SLOTS],
            joined: [None; 8],
        };
        let mut jury = initial;
        for (slot, command) in prefix.into_iter().take(MAX_SLOTS).enumerate() {
            if let Some(change) = command.change() {
                if let Some(next) = change.applied_to(jury) {
                    if let Some(y) = change.joining() {
                        out.joined[y as usize] = Some(slot as Slot);
                    }
                    jury = next;
                }
            }
            out.after[slot] = jury;
            out.known = slot as Slot + 1;
        }
        out
    }

    /// `config(s)`, if the decided prefix determines it (every slot `≤ s − delay` decided).
    pub fn at(&self, s: Slot) -> Option<NodeSet> {
        if s < self.delay {
            return Some(self.initial);
        }
        let last = s - self.delay; // the last slot whose change is in force at `s`
        (last < self.known).then(|| self.after[last as usize])
    }

    /// The jury after every decided change: the jury a new change must fit.
    pub fn latest(&self) -> NodeSet {
        match self.known {
            0 => self.initial,
            k => self.after[k as usize - 1],
        }
    }

    /// The first slot of `n`'s membership in the latest jury: the slot of the change that
    /// added it plus the delay, or 0 for a member of the initial jury never removed.
    pub fn since(&self, n: NodeId) -> Slot {
        self.joined[n as usize].map_or(0, |j| j + self.delay)
    }
}

/// The first hole of a node's log: with `config-from-unchosen` the node treats every entry
/// before it as decided.
fn accepted_prefix(node: &NodeState) -> Slot {
    node.log
        .iter()
        .position(Option::is_none)
        .unwrap_or(MAX_SLOTS) as Slot
}

/// How many slots node `node` treats as decided when it computes juries: its commit index
/// (`config-from-unchosen`: its accepted entries up to the first hole).
pub fn known(cfg: &CellConfig, node: &NodeState) -> Slot {
    if cfg.has(Mutant::ConfigFromUnchosen) {
        accepted_prefix(node).max(node.commit)
    } else {
        node.commit
    }
}

/// The juries node `node` knows: those of the prefix it treats as decided.
pub fn of_node(cfg: &CellConfig, node: &NodeState) -> Juries {
    let k = known(cfg, node) as usize;
    Juries::new(
        cfg.initial_jury(),
        cfg.in_force_delay(),
        node.log[..k]
            .iter()
            .map(|e| e.map_or(Command::Noop, |e| e.command)),
    )
}

/// What the ghost knows is chosen, slot by slot, with the jury of each slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenLog {
    /// Per slot, its jury: `None` when a slot `α` or more below it has nothing chosen yet.
    pub juries: [Option<NodeSet>; MAX_SLOTS],
    /// Per slot, the commands accepted by a majority of the slot's jury at one ballot.
    pub commands: [Vec<Command>; MAX_SLOTS],
}

impl ChosenLog {
    /// Whether `command` is chosen at some slot.
    pub fn contains(&self, command: Command) -> bool {
        self.commands.iter().flatten().any(|c| *c == command)
    }

    /// The chosen jury changes, with their slots.
    pub fn changes(&self) -> impl Iterator<Item = (Slot, Change)> + '_ {
        self.commands.iter().enumerate().flat_map(|(slot, cmds)| {
            cmds.iter()
                .filter_map(move |c| c.change().map(|ch| (slot as Slot, ch)))
        })
    }
}

/// The chosen log of `s` under the true protocol (changes in force α slots after their own,
/// whatever mutant the nodes run): slot by slot, the jury of the slot from the commands
/// chosen at least α below it, and the commands a majority of that jury accepted at one
/// ballot. Where two commands are chosen at one slot (Agreement is violated), the juries
/// after it follow the lesser.
pub fn chosen(cfg: &CellConfig, s: &CellState) -> ChosenLog {
    let mut out = ChosenLog {
        juries: [None; MAX_SLOTS],
        commands: Default::default(),
    };
    let mut decided: Vec<Command> = Vec::new();
    for slot in 0..cfg.max_slots {
        let juries = Juries::new(cfg.initial_jury(), cfg.window, decided.iter().copied());
        // Without reconfiguration no log holds a change: every slot has the initial jury,
        // decided prefix or not.
        let jury = match juries.at(slot) {
            Some(jury) => jury,
            None if cfg.reconfigs == 0 => cfg.initial_jury(),
            None => break,
        };
        out.juries[slot as usize] = Some(jury);
        let mut cmds: Vec<Command> = s
            .ghost
            .votes
            .iter()
            .filter(|((at, _, _), who)| *at == slot && jury.is_quorum(*who))
            .map(|((_, _, c), _)| *c)
            .collect();
        cmds.sort();
        cmds.dedup();
        if let Some(first) = cmds.first() {
            if decided.len() == slot as usize {
                decided.push(*first);
            }
        }
        out.commands[slot as usize] = cmds;
    }
    out
}
