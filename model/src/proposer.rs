//! Where the leader may propose (`docs/protocol.md`, "Pipelining" and "Phase 1 across a
//! change"): inside the log and the pipeline window, and with reconfiguration only at slots
//! whose jury holds it and a majority of which promised its ballot from a slot at or below;
//! whom a candidate asks for promises, when it has won, and the re-proposals slot by slot.

use crate::config::{CellConfig, Mutant};
use crate::handlers::Step;
use crate::jury::{self, Juries};
use crate::state::{CellState, Cover, Role};
use crate::types::{Command, Entry, Msg, NodeId, NodeSet, Slot, MAX_SLOTS};

impl Step<'_> {
    /// Whom a candidate with commit index `c` asks for promises, and from which slot: the
    /// jury of `c` from `c`, and each node joining the jury inside the window `[c, c + α)`
    /// from the first slot of the jury it joins (which is its `since`: asked from `c` it would
    /// ignore the `Prepare`). At most two juries by "one change at a time". Under
    /// `phase1-old-jury`, the jury of `c` only.
    pub(crate) fn window_groups(&self, n: NodeId, c: Slot) -> Vec<(Slot, NodeSet)> {
        let juries = self.juries(n);
        let first = juries.at(c).unwrap_or(juries.latest());
        let mut out = vec![(c, first)];
        if self.mutant(Mutant::Phase1OldJury) {
            return out;
        }
        let mut asked = first;
        let end = (c + self.cfg.window).min(self.cfg.max_slots);
        for s in c + 1..end {
            if let Some(jury) = juries.at(s) {
                let new = NodeSet(jury.0 & !asked.0);
                if !new.is_empty() {
                    out.push((s, new));
                    asked = asked.union(new);
                }
            }
        }
        out
    }

    /// See [`covered`]: for the promises node `n` holds.
    pub(crate) fn covered(&self, n: NodeId, juries: &Juries, promises: &Cover, slot: Slot) -> bool {
        covered(juries, promises, n, slot)
    }

    /// Whether phase 1 covers candidate `n`'s window: a majority of the jury of its commit
    /// index, and of every jury of a slot of its window (`phase1-old-jury`: the first only).
    pub(crate) fn window_covered(&self, n: NodeId, promises: &Cover) -> bool {
        let juries = self.juries(n);
        let c = self.s.nodes[n as usize].commit;
        if !self.covered(n, &juries, promises, c) {
            return false;
        }
        if !self.reconfig() || self.mutant(Mutant::Phase1OldJury) {
            return true;
        }
        let end = (c + self.cfg.window).min(self.cfg.max_slots);
        (c + 1..end).all(|s| juries.at(s).is_none() || self.covered(n, &juries, promises, s))
    }

    /// Re-proposes the values learned in phase 1 (a `Noop` into each hole below the last),
    /// slot by slot while the leader may propose at its next slot.
    pub(crate) fn fill_pipeline(&mut self, n: NodeId) {
        let ignore = self.mutant(Mutant::IgnorePromisedValues);
        loop {
            let node = &self.s.nodes[n as usize];
            let Role::Leader { next, learned, .. } = &node.role else {
                return;
            };
            let next = *next;
            let end = learned
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |m| m as Slot + 1);
            if next >= end || !self.may_propose_at(n, next) {
                return;
            }
            let old = learned[next as usize];
            let command = match old {
                Some(e) if !ignore => e.command,
                _ => Command::Noop,
            };
            if let Some(e) = old {
                if e.ballot.node != n && command != Command::Noop && !ignore {
                    self.s.ghost.reproposed = true;
                }
            }
            if let Role::Leader { learned, .. } = &mut self.s.nodes[n as usize].role {
                learned[next as usize] = None;
            }
            self.propose(n, command);
        }
    }

    /// See [`reproposals_pending`].
    pub(crate) fn reproposals_pending(&self, n: NodeId) -> bool {
        reproposals_pending(self.s, n)
    }

    /// See [`may_propose_at`].
    pub(crate) fn may_propose_at(&self, n: NodeId, slot: Slot) -> bool {
        may_propose_at(self.cfg, self.s, n, slot)
    }

    /// Leader `n` proposes `command` at its next slot: accepts it itself and sends `Accept`.
    pub(crate) fn propose(&mut self, n: NodeId, command: Command) {
        let node = &mut self.s.nodes[n as usize];
        let ballot = node.ballot;
        let Role::Leader { next, votes, .. } = &mut node.role else {
            return;
        };
        let slot = *next;
        votes[slot as usize] = NodeSet::single(n);
        *next += 1;
        let entry = Entry { ballot, command };
        node.log[slot as usize] = Some(entry);
        self.vote(n, slot, entry);
        self.broadcast(
            n,
            Msg::Accept {
                ballot,
                slot,
                command,
            },
        );
    }

    /// See [`slot_jury`].
    pub(crate) fn slot_jury(&self, n: NodeId, slot: Slot) -> NodeSet {
        slot_jury(self.cfg, self.s, n, slot)
    }
}

/// The nodes whose promise, among those node `me` collected in `cover`, counts for `slot`
/// (`docs/protocol.md`, "Phase 1 across a change"; `tla/README.md`, finding 2): a promise
/// asked from a slot `f ≤ slot`, made by `me` itself or by a node that was in the jury of
/// every slot of `[f, slot]` (`juries`: as `me` knows them). A promise is its copy's: a node
/// that left the jury in between may have deleted the copy that made it, and its fresh copy
/// never did.
pub(crate) fn promisers(juries: &Juries, cover: &Cover, me: NodeId, slot: Slot) -> NodeSet {
    let jury = |t: Slot| juries.at(t).unwrap_or(juries.latest());
    let mut out = NodeSet::default();
    for (f, who) in cover
        .iter()
        .enumerate()
        .take((slot as usize).min(MAX_SLOTS) + 1)
    {
        for a in who.iter() {
            if a == me || (f as Slot..=slot).all(|t| jury(t).contains(a)) {
                out.insert(a);
            }
        }
    }
    out
}

/// Whether a majority of the jury of `slot` (in `juries`) made promises to node `me` that
/// count for `slot` ([`promisers`]).
pub(crate) fn covered(juries: &Juries, promises: &Cover, me: NodeId, slot: Slot) -> bool {
    let jury = juries.at(slot).unwrap_or(juries.latest());
    jury.is_quorum(promisers(juries, promises, me, slot))
}

/// Whether node `me`, holding `promises`, would record a `Promise` from `src` asked from
/// `from`: not if it already holds one from `src` that counts for `from`, or one asked from
/// that very slot.
pub(crate) fn promise_is_new(
    juries: &Juries,
    promises: &Cover,
    me: NodeId,
    src: NodeId,
    from: Slot,
) -> bool {
    !promises[(from as usize).min(MAX_SLOTS)].contains(src)
        && !promisers(juries, promises, me, from).contains(src)
}

/// The jury of `slot` as node `n` knows it. Where its committed prefix does not determine
/// it (which a correct leader never needs inside its window), the latest jury it knows:
/// what `config-effective-early` falls back to.
pub(crate) fn slot_jury(cfg: &CellConfig, s: &CellState, n: NodeId, slot: Slot) -> NodeSet {
    if cfg.reconfigs == 0 {
        return cfg.initial_jury();
    }
    let juries = jury::of_node(cfg, &s.nodes[n as usize]);
    juries.at(slot).unwrap_or(juries.latest())
}

/// Whether leader `n` still has values learned in phase 1 to re-propose (client operations
/// and changes wait for them).
pub(crate) fn reproposals_pending(s: &CellState, n: NodeId) -> bool {
    matches!(&s.nodes[n as usize].role,
        Role::Leader { learned, .. } if learned.iter().any(Option::is_some))
}

/// Whether leader `n` may propose at `slot`: inside the log and the pipeline window and,
/// with reconfiguration, a member of the slot's jury with phase 1 covering it (a majority of
/// that jury promised its ballot from a slot at or below it; `phase1-old-jury`: always).
pub(crate) fn may_propose_at(cfg: &CellConfig, s: &CellState, n: NodeId, slot: Slot) -> bool {
    let node = &s.nodes[n as usize];
    if slot >= cfg.max_slots || slot >= node.commit + cfg.window {
        return false;
    }
    if cfg.reconfigs == 0 {
        return true;
    }
    let Role::Leader { promises, .. } = &node.role else {
        return false;
    };
    let juries = jury::of_node(cfg, node);
    let jury = juries.at(slot).unwrap_or(juries.latest());
    jury.contains(n) && (cfg.has(Mutant::Phase1OldJury) || covered(&juries, promises, n, slot))
}
