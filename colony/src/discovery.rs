//! The discovery cache: where clients look up a cell's jury.
//!
//! Cells publish [`Announcement`]s `(cell, jury, epoch)`, the epoch growing with every jury
//! change. A cache keeps, per cell, the announcement with the highest epoch, for ever (no
//! eviction: a cell's entry is small and an old hint beats none). Caches are replicated
//! widely and exchange their contents with [`DiscoveryCache::merge`], which is a join: it is
//! commutative, associative and idempotent, so replicas that have seen the same
//! announcements hold the same entries whatever the order, duplication or batching of the
//! exchanges (eventual consistency). Ties in epoch (which a correct cell never produces) are
//! broken by the jury's order, so even then replicas converge.
//!
//! **A hint only.** An entry can be stale (the cell has moved since) or wrong. A client
//! uses it to choose which nodes to ask first; correctness comes from the cell itself (a
//! node that is not the leader redirects, a node that left forwards), so a bad entry costs
//! retries, never a wrong answer. Nothing here is consulted by the protocol.

use std::collections::BTreeMap;

use physalia_traces::{CellId, NodeId};
use serde::{Deserialize, Serialize};

/// What a cell publishes about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The cell.
    pub cell: CellId,
    /// Its jury at `epoch`.
    pub jury: Vec<NodeId>,
    /// Grows with every jury change of the cell.
    pub epoch: u64,
}

/// What a client gets from the cache: where to look first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint<'a> {
    /// The jury last announced (ascending).
    pub jury: &'a [NodeId],
    /// Its epoch.
    pub epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    epoch: u64,
    jury: Vec<NodeId>,
}

/// A replica of the discovery cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryCache {
    entries: BTreeMap<CellId, Entry>,
}

impl DiscoveryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in an announcement; returns whether it changed the cache (a newer epoch, or a
    /// cell not seen before). Older or equal announcements are ignored.
    pub fn publish(&mut self, a: Announcement) -> bool {
        let mut jury = a.jury;
        jury.sort_unstable();
        jury.dedup();
        self.offer(
            a.cell,
            Entry {
                epoch: a.epoch,
                jury,
            },
        )
    }

    fn offer(&mut self, cell: CellId, e: Entry) -> bool {
        match self.entries.get_mut(&cell) {
            Some(cur) if *cur >= e => false,
            Some(cur) => {
                *cur = e;
                true
            }
            None => {
                self.entries.insert(cell, e);
                true
            }
        }
    }

    /// Takes in everything another replica holds (a join: see the module docs); returns
    /// how many entries changed.
    pub fn merge(&mut self, other: &DiscoveryCache) -> usize {
        other
            .entries
            .iter()
            .filter(|(cell, e)| self.offer((*cell).clone(), (*e).clone()))
            .count()
    }

    /// The hint for `cell`, if any announcement of it has arrived.
    pub fn hint(&self, cell: &str) -> Option<Hint<'_>> {
        self.entries.get(cell).map(|e| Hint {
            jury: &e.jury,
            epoch: e.epoch,
        })
    }

    /// Every entry, as announcements, by cell.
    pub fn announcements(&self) -> impl Iterator<Item = Announcement> + '_ {
        self.entries.iter().map(|(cell, e)| Announcement {
            cell: cell.clone(),
            jury: e.jury.clone(),
            epoch: e.epoch,
        })
    }

    /// The number of cells known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no cell is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ann(cell: u8, epoch: u64, jury: &[u32]) -> Announcement {
        Announcement {
            cell: format!("c{cell}"),
            jury: jury.iter().map(|&n| NodeId(n)).collect(),
            epoch,
        }
    }

    #[test]
    fn keeps_the_highest_epoch_and_ignores_stale_ones() {
        let mut c = DiscoveryCache::new();
        assert!(c.publish(ann(0, 2, &[3, 1, 2])));
        assert!(!c.publish(ann(0, 1, &[7, 8, 9])));
        assert!(!c.publish(ann(0, 2, &[1, 2, 3])));
        let h = c.hint("c0").unwrap();
        assert_eq!(
            (h.epoch, h.jury),
            (2, &[NodeId(1), NodeId(2), NodeId(3)][..])
        );
        assert!(c.publish(ann(0, 3, &[1, 2, 4])));
        assert_eq!(c.hint("c0").unwrap().jury[2], NodeId(4));
        assert!(c.hint("c9").is_none());
    }

    fn arb_ann() -> impl Strategy<Value = Announcement> {
        (0u8..4, 0u64..5, proptest::collection::vec(0u32..9, 1..7))
            .prop_map(|(c, e, j)| ann(c, e, &j))
    }

    fn cache_of(v: &[Announcement]) -> DiscoveryCache {
        let mut c = DiscoveryCache::new();
        for a in v {
            c.publish(a.clone());
        }
        c
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(
            a in proptest::collection::vec(arb_ann(), 0..12),
            b in proptest::collection::vec(arb_ann(), 0..12),
            c in proptest::collection::vec(arb_ann(), 0..12),
        ) {
            let (x, y, z) = (cache_of(&a), cache_of(&b), cache_of(&c));
            let mut xy = x.clone();
            xy.merge(&y);
            let mut yx = y.clone();
            yx.merge(&x);
            prop_assert_eq!(&xy, &yx);
            let mut xy_z = xy.clone();
            xy_z.merge(&z);
            let mut yz = y.clone();
            yz.merge(&z);
            let mut x_yz = x.clone();
            x_yz.merge(&yz);
            prop_assert_eq!(&xy_z, &x_yz);
            let mut xx = x.clone();
            prop_assert_eq!(xx.merge(&x), 0);
            prop_assert_eq!(&xx, &x);
        }

        #[test]
        fn order_of_arrival_does_not_matter_and_the_newest_epoch_wins(
            a in proptest::collection::vec(arb_ann(), 0..16),
            seed in any::<u64>(),
        ) {
            let mut shuffled = a.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                let j = (crate::rng::splitmix64(&mut s) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let x = cache_of(&a);
            prop_assert_eq!(&x, &cache_of(&shuffled));
            for e in x.announcements() {
                let newest = a.iter().filter(|v| v.cell == e.cell).map(|v| v.epoch).max();
                prop_assert_eq!(Some(e.epoch), newest);
            }
            // Splitting the announcements over two replicas and merging gives the same.
            let (l, r) = a.split_at(a.len() / 2);
            let mut m = cache_of(l);
            m.merge(&cache_of(r));
            prop_assert_eq!(&m, &x);
        }
    }
}
