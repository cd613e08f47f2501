//! The Wing–Gong/Lowe search over one partition of a history.

use ahash::AHashMap;
use physalia_traces::{Key, Txn, TxnResult};

use super::{Operation, Pending, Violation};
use crate::kv::KvSpec;

/// An operation's place in a partition's search.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// A completed operation: index among them, in invocation order.
    Definite(u32),
    /// An unknown-outcome operation: index among them.
    Unknown(u32),
}

/// The completed operations linearized in a partition, compactly: every one below `low`
/// (in invocation order) and those in `above` (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Completed {
    low: u32,
    above: Vec<u32>,
}

/// The set of linearized operations of a partition: the completed ones, and a bitset of the
/// unknown-outcome ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Linearized {
    completed: Completed,
    unknown: Vec<u64>,
}

impl Linearized {
    fn with(&self, slot: Slot) -> Linearized {
        let mut next = self.clone();
        let c = &mut next.completed;
        match slot {
            Slot::Definite(d) if d == c.low => {
                c.low += 1;
                let skip = c
                    .above
                    .iter()
                    .zip(c.low..)
                    .take_while(|(a, l)| **a == *l)
                    .count();
                c.above.drain(..skip);
                c.low += skip as u32;
            }
            Slot::Definite(d) => {
                let at = c.above.partition_point(|&a| a < d);
                c.above.insert(at, d);
            }
            Slot::Unknown(u) => next.unknown[u as usize / 64] |= 1 << (u % 64),
        }
        next
    }
}

impl Linearized {
    fn has_unknown(&self, u: u32) -> bool {
        self.unknown[u as usize / 64] & (1 << (u % 64)) != 0
    }
}

/// Whether bitset `a` is a subset of bitset `b` (of the same length).
fn subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x & !y == 0)
}

pub(super) enum Outcome {
    Linearized(Vec<usize>),
    Failed,
    Exhausted,
}

/// The list of call and return entries still to linearize, doubly linked over indices:
/// node 0 is the head, node `2n + 1` the tail, node `1 + e` entry `e` in time order.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node: the operation (local index) and whether it is its call.
    op: Vec<(usize, bool)>,
    /// For each local operation: the node of its return.
    ret_node: Vec<usize>,
}

impl Entries {
    const HEAD: usize = 0;

    fn new(ops: &[Operation], members: &[usize]) -> Entries {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * members.len());
        for (local, &i) in members.iter().enumerate() {
            // Calls sort before returns at equal times: equal stamps are concurrent.
            events.push((ops[i].invoke, false, local));
            events.push((ops[i].deadline().unwrap_or(u64::MAX), true, local));
        }
        events.sort_unstable();
        let len = events.len() + 2;
        let mut op = vec![(usize::MAX, false); len];
        let mut ret_node = vec![0; members.len()];
        for (e, &(_, is_ret, local)) in events.iter().enumerate() {
            op[e + 1] = (local, !is_ret);
            if is_ret {
                ret_node[local] = e + 1;
            }
        }
        Entries {
            next: (1..=len).collect(),
            prev: (0..len).map(|n| n.saturating_sub(1)).collect(),
            op,
            ret_node,
        }
    }

    fn unlink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = x;
        self.prev[x] = p;
    }

    fn relink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = n;
        self.prev[x] = n;
    }

    /// Removes call node `n` and its return; undone (in reverse order) by [`Self::unlift`].
    fn lift(&mut self, n: usize) {
        self.unlink(n);
        self.unlink(self.ret_node[self.op[n].0]);
    }

    fn unlift(&mut self, n: usize) {
        self.relink(self.ret_node[self.op[n].0]);
        self.relink(n);
    }
}

/// Where the search is: the configuration reached (the state and the set of operations
/// linearized), the frames that reached it, and the next entry of the list to try.
struct Position {
    state: KvSpec,
    set: Linearized,
    /// Each frame: the call node lifted, and the state and set before it.
    stack: Vec<(usize, KvSpec, Linearized)>,
    /// The latest invocation among the operations placed: an operation placed later takes
    /// effect after that time.
    latest_invoke: u64,
    /// `latest_invoke` before each frame (one entry per frame).
    latest_before: Vec<u64>,
    /// Completed operations not linearized yet.
    definite_left: usize,
    /// Length of the common prefix of `stack` and `best`.
    common: usize,
    /// Candidates are tried completed operations first, then unknown-outcome ones: an
    /// unknown write then takes effect only where an observation needs it, instead of
    /// being tried (and refuted) at every step after its invocation.
    unknown_phase: bool,
    /// The node of the list looked at.
    entry: usize,
}

/// The search over one partition.
pub(super) struct Search<'a> {
    ops: &'a [Operation],
    /// History index of each local operation, in invocation order.
    members: Vec<usize>,
    slots: Vec<Slot>,
    /// For an unknown-outcome operation: the time after which it can no longer take effect
    /// (see `Options::client_sessions`).
    expiry: Vec<Option<u64>>,
    /// For an unknown-outcome operation: the previous one (local index, in invocation
    /// order) with the same transaction.
    twin_before: Vec<Option<usize>>,
    definite: usize,
    /// The empty store, with the history's bounds.
    empty: KvSpec,
    entries: Entries,
    /// For each (completed operations linearized, state) visited: the sets of unknown
    /// ones linearized with it, none a superset of another.
    memo: AHashMap<(Completed, KvSpec), Vec<Vec<u64>>>,
    remembered: usize,
    pub(super) explored: u64,
    /// The longest prefix found (local indices), and the state after it.
    best: Vec<usize>,
    best_state: KvSpec,
    /// How many completed operations `best` holds: prefixes are ranked by it, since
    /// unknown-outcome operations can always be placed and say nothing.
    best_completed: usize,
}

/// How many attempts pass between two readings of the clock for the wall-clock budget.
const DEADLINE_EVERY: u64 = 4096;

impl<'a> Search<'a> {
    /// The search over history indices `members`; `expiry` is indexed by history index.
    pub(super) fn new(
        ops: &'a [Operation],
        members: &[usize],
        expiry: &[Option<u64>],
        empty: KvSpec,
    ) -> Search<'a> {
        let mut members = members.to_vec();
        members.sort_by_key(|&i| (ops[i].invoke, i));
        let (mut definite, mut unknown) = (0u32, 0u32);
        let slots = members
            .iter()
            .map(|&i| {
                if ops[i].result.is_some() {
                    definite += 1;
                    Slot::Definite(definite - 1)
                } else {
                    unknown += 1;
                    Slot::Unknown(unknown - 1)
                }
            })
            .collect();
        let mut last: AHashMap<&Txn, usize> = AHashMap::new();
        let twin_before = members
            .iter()
            .enumerate()
            .map(|(local, &i)| match ops[i].result {
                Some(_) => None,
                None => last.insert(&ops[i].txn, local),
            })
            .collect();
        Search {
            ops,
            expiry: members.iter().map(|&i| expiry[i]).collect(),
            twin_before,
            entries: Entries::new(ops, &members),
            members,
            slots,
            definite: definite as usize,
            best_state: empty.clone(),
            empty,
            memo: AHashMap::new(),
            remembered: 0,
            explored: 0,
            best: Vec::new(),
            best_completed: 0,
        }
    }

    /// How many (linearized set, state) pairs are remembered.
    pub(super) fn memo_len(&self) -> usize {
        self.remembered
    }

    /// Remembers `(set, state)`; false if it, or a configuration that subsumes it, was
    /// visited before.
    ///
    /// A configuration with the same completed operations and state but fewer unknown ones
    /// linearized subsumes it: every continuation of the latter is one of the former, which
    /// leaves the extra unknown operations for later or never (they have no deadline). So
    /// only the minimal unknown sets are kept, and a search that never placed an unknown
    /// write is not repeated once for each place it could have taken effect.
    fn remember(&mut self, set: &Linearized, state: &KvSpec) -> bool {
        let seen = self
            .memo
            .entry((set.completed.clone(), state.clone()))
            .or_default();
        if seen.iter().any(|u| subset(u, &set.unknown)) {
            return false;
        }
        let before = seen.len();
        seen.retain(|u| !subset(&set.unknown, u));
        seen.push(set.unknown.clone());
        self.remembered = self.remembered + seen.len() - before;
        true
    }

    /// Searches for a linearization of the partition, trying at most `budget`
    /// candidates and stopping (as for the budget) at `deadline`, which is read every
    /// [`DEADLINE_EVERY`] attempts; on failure `best` holds the longest prefix found.
    pub(super) fn run(&mut self, budget: u64, deadline: Option<std::time::Instant>) -> Outcome {
        let unknown = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Unknown(_)))
            .count();
        let mut at = Position {
            state: self.empty.clone(),
            set: Linearized {
                completed: Completed::default(),
                unknown: vec![0; unknown.div_ceil(64)],
            },
            stack: Vec::new(),
            latest_invoke: 0,
            latest_before: Vec::new(),
            definite_left: self.definite,
            common: 0,
            unknown_phase: false,
            entry: self.entries.next[Entries::HEAD],
        };
        // Bounded: each iteration is an attempt (at most `budget`), a backtrack (at most one
        // per earlier attempt) or a step along the list (at most its length between two of
        // those).
        while at.definite_left > 0 {
            let (local, is_call) = self.entries.op[at.entry];
            if !is_call {
                // The earliest pending return: no candidate before it can be linearized next.
                if !at.unknown_phase && unknown > 0 {
                    at.unknown_phase = true;
                    at.entry = self.entries.next[Entries::HEAD];
                    continue;
                }
                if !self.backtrack(&mut at) {
                    return Outcome::Failed;
                }
                continue;
            }
            let slot = self.slots[local];
            if self.passes_over(&at, local, slot) {
                at.entry = self.entries.next[at.entry];
                continue;
            }
            if self.explored >= budget {
                return Outcome::Exhausted;
            }
            if self.explored.is_multiple_of(DEADLINE_EVERY)
                && deadline.is_some_and(|d| std::time::Instant::now() >= d)
            {
                return Outcome::Exhausted;
            }
            self.explored += 1;
            if !self.try_place(&mut at, local, slot) {
                at.entry = self.entries.next[at.entry];
            }
        }
        Outcome::Linearized(
            at.stack
                .iter()
                .map(|(n, _, _)| self.members[self.entries.op[*n].0])
                .collect(),
        )
    }

    /// Undoes the last placement: its call (and return) go back into the list and the
    /// search goes on with the candidate after it. False if nothing was placed, i.e. no
    /// linearization exists.
    #[inline]
    fn backtrack(&mut self, at: &mut Position) -> bool {
        let Some((call, before, before_set)) = at.stack.pop() else {
            return false;
        };
        at.common = at.common.min(at.stack.len());
        self.entries.unlift(call);
        at.unknown_phase = match self.slots[self.entries.op[call].0] {
            Slot::Definite(_) => {
                at.definite_left += 1;
                false
            }
            Slot::Unknown(_) => true,
        };
        at.state = before;
        at.set = before_set;
        at.latest_invoke = at.latest_before.pop().unwrap_or(0);
        at.entry = self.entries.next[call];
        true
    }

    /// Whether the call of `local` (in `slot`) is passed over at this position: it is not
    /// of the kind tried in this phase, an unknown-outcome twin invoked earlier is still
    /// unplaced, or it can no longer take effect.
    #[inline]
    fn passes_over(&self, at: &Position, local: usize, slot: Slot) -> bool {
        matches!(slot, Slot::Unknown(_)) != at.unknown_phase
            || (at.unknown_phase && self.has_unplaced_twin(local, &at.set, at.latest_invoke))
            || !self.open_at(local, at.latest_invoke)
    }

    /// Tries to linearize `local` (in `slot`) next: it must give the result it returned
    /// (if any), not be redundant, and lead to a configuration not visited before. Then it
    /// is placed, and the search starts again from the head of the list.
    #[inline]
    fn try_place(&mut self, at: &mut Position, local: usize, slot: Slot) -> bool {
        let o = &self.ops[self.members[local]];
        let mut after = at.state.clone();
        let got = after.apply(&o.txn);
        if !o.result.as_ref().is_none_or(|r| *r == got)
            || self.redundant_after_unknown(
                local,
                at.latest_invoke,
                slot,
                &o.txn,
                &got,
                &after,
                at.stack.last(),
            )
        {
            return false;
        }
        let next_set = at.set.with(slot);
        if !self.remember(&next_set, &after) {
            return false;
        }
        if at.common == at.stack.len() && self.best.get(at.common) == Some(&local) {
            at.common += 1;
        }
        at.stack.push((
            at.entry,
            std::mem::replace(&mut at.state, after),
            std::mem::replace(&mut at.set, next_set),
        ));
        at.latest_before.push(at.latest_invoke);
        at.latest_invoke = at.latest_invoke.max(o.invoke);
        self.entries.lift(at.entry);
        if matches!(slot, Slot::Definite(_)) {
            at.definite_left -= 1;
        }
        if self.definite - at.definite_left > self.best_completed {
            self.record_best(at);
        }
        at.unknown_phase = false;
        at.entry = self.entries.next[Entries::HEAD];
        true
    }

    /// Makes the prefix on the stack the longest found (it holds more completed
    /// operations than `best`), reusing the part the two have in common.
    #[inline]
    fn record_best(&mut self, at: &mut Position) {
        self.best_completed = self.definite - at.definite_left;
        self.best.truncate(at.common);
        self.best.extend(
            at.stack[at.common..]
                .iter()
                .map(|(n, _, _)| self.entries.op[*n].0),
        );
        at.common = at.stack.len();
        self.best_state = at.state.clone();
    }

    /// Whether an unknown-outcome operation with the same transaction, invoked earlier, is
    /// not linearized yet: placing it instead leads to the same configurations (both are
    /// candidates and neither has a deadline), so only the earliest of such twins is tried.
    ///
    /// Under client sessions a twin stands in only if it is not expired and expires no
    /// later (then it is at least as good to place it and keep the other).
    fn has_unplaced_twin(&self, local: usize, set: &Linearized, latest_invoke: u64) -> bool {
        let mut twin = self.twin_before[local];
        // Bounded by the number of twins: each step goes to an earlier operation.
        while let Some(t) = twin {
            if let Slot::Unknown(u) = self.slots[t] {
                let no_later = match (self.expiry[t], self.expiry[local]) {
                    (_, None) => true,
                    (None, Some(_)) => false,
                    (Some(a), Some(b)) => a <= b,
                };
                if !set.has_unknown(u) && self.open_at(t, latest_invoke) && no_later {
                    return true;
                }
            }
            twin = self.twin_before[t];
        }
        false
    }

    /// Whether the unknown-outcome operation `local` can still take effect after
    /// operations invoked up to `latest_invoke` (see `Options::client_sessions`).
    fn open_at(&self, local: usize, latest_invoke: u64) -> bool {
        self.expiry[local].is_none_or(|t| latest_invoke <= t)
    }

    /// Whether placing `slot` (transaction `txn`, giving `got` and state `after`) right
    /// after the unknown-outcome operation on top of the stack is redundant, because a
    /// configuration that subsumes it is reached on another path:
    /// - it commutes with that operation (same result, same state in either order) and
    ///   comes first in the canonical order (completed before unknown, then by index): the
    ///   other order reaches the same configuration;
    /// - it is unknown-outcome and its effect hides that operation's (two unknown writes of
    ///   one key): placing it instead reaches the same state with fewer unknown operations.
    #[allow(clippy::too_many_arguments)]
    fn redundant_after_unknown(
        &self,
        local: usize,
        latest_invoke: u64,
        slot: Slot,
        txn: &Txn,
        got: &TxnResult,
        after: &KvSpec,
        top: Option<&(usize, KvSpec, Linearized)>,
    ) -> bool {
        let Some((call, before_previous, _)) = top else {
            return false;
        };
        let previous_local = self.entries.op[*call].0;
        let Slot::Unknown(previous) = self.slots[previous_local] else {
            return false;
        };
        let mut instead = before_previous.clone();
        let got_instead = instead.apply(txn);
        if let Slot::Unknown(_) = slot {
            if instead == *after {
                return true;
            }
        }
        let first = match slot {
            Slot::Definite(_) => true,
            Slot::Unknown(u) => u < previous,
        };
        // The other order places the previous operation after this one: it must still be
        // able to take effect then.
        let later = latest_invoke.max(self.ops[self.members[local]].invoke);
        if !first || got_instead != *got || !self.open_at(previous_local, later) {
            return false;
        }
        instead.apply(&self.ops[self.members[previous_local]].txn);
        instead == *after
    }

    /// The violation after a failed search: the longest prefix and what could follow it.
    pub(super) fn violation(&self) -> Violation {
        let mut in_prefix = vec![false; self.members.len()];
        for &l in &self.best {
            in_prefix[l] = true;
        }
        let outside = || (0..self.members.len()).filter(|&l| !in_prefix[l]);
        // The earliest deadline among completed operations outside the prefix bounds what
        // could take effect next: everything invoked up to then.
        let blocking = outside()
            .filter_map(|l| {
                let o = &self.ops[self.members[l]];
                o.deadline().map(|d| (d, l))
            })
            .min();
        let latest_invoke = self
            .best
            .iter()
            .map(|&l| self.ops[self.members[l]].invoke)
            .max()
            .unwrap_or(0);
        let pending = outside()
            .filter(|&l| blocking.is_none_or(|(d, _)| self.ops[self.members[l]].invoke <= d))
            .filter(|&l| self.open_at(l, latest_invoke))
            .map(|l| {
                let index = self.members[l];
                let mut s = self.best_state.clone();
                Pending {
                    index,
                    operation: self.ops[index].clone(),
                    spec_result: s.apply(&self.ops[index].txn),
                    blocking: blocking.is_some_and(|(_, b)| b == l),
                }
            })
            .collect();
        let mut keys: Vec<Key> = self
            .members
            .iter()
            .flat_map(|&i| KvSpec::keys(&self.ops[i].txn))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        Violation {
            keys,
            prefix: self.best.iter().map(|&l| self.members[l]).collect(),
            state: self.best_state.clone(),
            pending,
        }
    }
}
