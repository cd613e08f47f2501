//! The Wing–Gong/Lowe search over one partition of a history.

use ahash::AHashSet;
use physalia_traces::Key;

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

/// The set of linearized operations of a partition, compactly: every completed operation
/// below `low` (in invocation order), those in `above`, and the unknown ones in `unknown`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Linearized {
    low: u32,
    above: Vec<u32>,
    unknown: Vec<u64>,
}

impl Linearized {
    fn with(&self, slot: Slot) -> Linearized {
        let mut next = self.clone();
        match slot {
            Slot::Definite(d) if d == next.low => {
                next.low += 1;
                let skip = next
                    .above
                    .iter()
                    .zip(next.low..)
                    .take_while(|(a, l)| **a == *l)
                    .count();
                next.above.drain(..skip);
                next.low += skip as u32;
            }
            Slot::Definite(d) => {
                let at = next.above.partition_point(|&a| a < d);
                next.above.insert(at, d);
            }
            Slot::Unknown(u) => next.unknown[u as usize / 64] |= 1 << (u % 64),
        }
        next
    }
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

/// The search over one partition.
pub(super) struct Search<'a> {
    ops: &'a [Operation],
    /// History index of each local operation, in invocation order.
    members: Vec<usize>,
    slots: Vec<Slot>,
    definite: usize,
    max_int_bits: u64,
    entries: Entries,
    memo: AHashSet<(Linearized, KvSpec)>,
    pub(super) explored: u64,
    /// The longest prefix found (local indices), and the state after it.
    best: Vec<usize>,
    best_state: KvSpec,
}

impl<'a> Search<'a> {
    pub(super) fn new(ops: &'a [Operation], members: &[usize], max_int_bits: u64) -> Search<'a> {
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
        Search {
            ops,
            entries: Entries::new(ops, &members),
            members,
            slots,
            definite: definite as usize,
            max_int_bits,
            memo: AHashSet::new(),
            explored: 0,
            best: Vec::new(),
            best_state: KvSpec::with_max_int_bits(max_int_bits),
        }
    }

    /// How many (linearized set, state) pairs were remembered.
    pub(super) fn memo_len(&self) -> usize {
        self.memo.len()
    }

    pub(super) fn run(&mut self, budget: u64) -> Outcome {
        let mut state = KvSpec::with_max_int_bits(self.max_int_bits);
        let unknown = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Unknown(_)))
            .count();
        let mut set = Linearized {
            unknown: vec![0; unknown.div_ceil(64)],
            ..Linearized::default()
        };
        // Each frame: the call node lifted, and the state and set before it.
        let mut stack: Vec<(usize, KvSpec, Linearized)> = Vec::new();
        let mut definite_left = self.definite;
        // Length of the common prefix of `stack` and `best`.
        let mut common = 0;
        let mut entry = self.entries.next[Entries::HEAD];
        while definite_left > 0 {
            let (local, is_call) = self.entries.op[entry];
            if is_call {
                if self.explored >= budget {
                    return Outcome::Exhausted;
                }
                self.explored += 1;
                let o = &self.ops[self.members[local]];
                let mut after = state.clone();
                let got = after.apply(&o.txn);
                if o.result.as_ref().is_none_or(|r| *r == got) {
                    let slot = self.slots[local];
                    let next_set = set.with(slot);
                    if self.memo.insert((next_set.clone(), after.clone())) {
                        if common == stack.len() && self.best.get(common) == Some(&local) {
                            common += 1;
                        }
                        stack.push((entry, std::mem::replace(&mut state, after), set));
                        set = next_set;
                        self.entries.lift(entry);
                        if matches!(slot, Slot::Definite(_)) {
                            definite_left -= 1;
                        }
                        if stack.len() > self.best.len() {
                            self.best.truncate(common);
                            self.best.extend(
                                stack[common..]
                                    .iter()
                                    .map(|(n, _, _)| self.entries.op[*n].0),
                            );
                            common = stack.len();
                            self.best_state = state.clone();
                        }
                        entry = self.entries.next[Entries::HEAD];
                        continue;
                    }
                }
                entry = self.entries.next[entry];
            } else {
                // A pending operation's return: what is linearized so far cannot be extended.
                let Some((call, before, before_set)) = stack.pop() else {
                    return Outcome::Failed;
                };
                common = common.min(stack.len());
                self.entries.unlift(call);
                if matches!(self.slots[self.entries.op[call].0], Slot::Definite(_)) {
                    definite_left += 1;
                }
                state = before;
                set = before_set;
                entry = self.entries.next[call];
            }
        }
        Outcome::Linearized(
            stack
                .iter()
                .map(|(n, _, _)| self.members[self.entries.op[*n].0])
                .collect(),
        )
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
        let pending = outside()
            .filter(|&l| blocking.is_none_or(|(d, _)| self.ops[self.members[l]].invoke <= d))
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
