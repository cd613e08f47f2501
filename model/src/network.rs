//! The network between nodes and clients, with selectable semantics.
//!
//! Fault model: messages may be reordered (`Unordered`, `Duplicating`), delivered more than
//! once (`Duplicating`), and lost (any kind, when the run is lossy: a `Drop` action removes a
//! message; see [`crate::CellConfig::lossy`] for the duplicating network). Messages are never
//! corrupted or invented. A message to a crashed node stays in flight until the node
//! restarts, is dropped, or forever.
//!
//! Envelopes are plain `Copy` data kept in sorted vectors: the model clones, hashes and
//! compares the network for every state it generates, and this is the cheapest shape for it.

use std::fmt;

use crate::config::NetworkKind;
use crate::types::{Endpoint, Envelope, Msg};

/// The messages in flight.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Network {
    /// In send order; only the oldest message of each `(src, dst)` pair is deliverable.
    Ordered(Vec<Envelope>),
    /// A multiset, sorted: `(envelope, copies in flight)`.
    Unordered(Vec<(Envelope, u8)>),
    /// A sorted set: delivery leaves the message in flight.
    Duplicating(Vec<Envelope>),
}

impl Network {
    /// An empty network of the given kind.
    pub fn new(kind: NetworkKind) -> Self {
        match kind {
            NetworkKind::Ordered => Network::Ordered(Vec::new()),
            NetworkKind::Unordered => Network::Unordered(Vec::new()),
            NetworkKind::Duplicating => Network::Duplicating(Vec::new()),
        }
    }

    /// Puts a message in flight.
    pub fn send(&mut self, env: Envelope) {
        match self {
            Network::Ordered(q) => q.push(env),
            Network::Unordered(bag) => match bag.binary_search_by(|(e, _)| e.cmp(&env)) {
                Ok(i) => bag[i].1 = bag[i].1.saturating_add(1),
                Err(i) => bag.insert(i, (env, 1)),
            },
            Network::Duplicating(set) => {
                if let Err(i) = set.binary_search(&env) {
                    set.insert(i, env);
                }
            }
        }
    }

    /// The messages that can be delivered (or dropped) now, in a deterministic order.
    pub fn deliverable(&self) -> Vec<Envelope> {
        match self {
            Network::Ordered(q) => {
                let mut heads: Vec<Envelope> = Vec::new();
                for e in q {
                    if !heads.iter().any(|h| h.src == e.src && h.dst == e.dst) {
                        heads.push(*e);
                    }
                }
                heads
            }
            Network::Unordered(bag) => bag.iter().map(|(e, _)| *e).collect(),
            Network::Duplicating(set) => set.clone(),
        }
    }

    /// Takes a message out for delivery: consumed unless the network duplicates.
    pub fn on_deliver(&mut self, env: &Envelope) {
        if !matches!(self, Network::Duplicating(_)) {
            self.remove(env);
        }
    }

    /// Loses one copy of a message (for `Ordered`, the oldest of its pair, which must be it).
    pub fn remove(&mut self, env: &Envelope) {
        match self {
            Network::Ordered(q) => {
                if let Some(i) = q.iter().position(|e| e.src == env.src && e.dst == env.dst) {
                    if q[i] == *env {
                        q.remove(i);
                    }
                }
            }
            Network::Unordered(bag) => {
                if let Ok(i) = bag.binary_search_by(|(e, _)| e.cmp(env)) {
                    bag[i].1 -= 1;
                    if bag[i].1 == 0 {
                        bag.remove(i);
                    }
                }
            }
            Network::Duplicating(set) => {
                if let Ok(i) = set.binary_search(env) {
                    set.remove(i);
                }
            }
        }
    }

    /// Whether any message matching `pred` is in flight.
    pub fn any(&self, mut pred: impl FnMut(&Endpoint, &Endpoint, &Msg) -> bool) -> bool {
        match self {
            Network::Ordered(q) | Network::Duplicating(q) => {
                q.iter().any(|e| pred(&e.src, &e.dst, &e.msg))
            }
            Network::Unordered(bag) => bag.iter().any(|(e, _)| pred(&e.src, &e.dst, &e.msg)),
        }
    }

    /// Every message in flight (with multiplicity for the multiset).
    pub fn envelopes(&self) -> Vec<Envelope> {
        match self {
            Network::Ordered(q) | Network::Duplicating(q) => q.clone(),
            Network::Unordered(bag) => bag
                .iter()
                .flat_map(|&(e, n)| std::iter::repeat_n(e, n as usize))
                .collect(),
        }
    }

    /// The same network with every envelope rewritten by `f` (used by the symmetry reduction).
    pub fn map(&self, f: impl Fn(&Envelope) -> Envelope) -> Network {
        let mut out = match self {
            Network::Ordered(_) => Network::new(NetworkKind::Ordered),
            Network::Unordered(_) => Network::new(NetworkKind::Unordered),
            Network::Duplicating(_) => Network::new(NetworkKind::Duplicating),
        };
        for e in self.envelopes() {
            out.send(f(&e));
        }
        out
    }

    /// How many messages are in flight.
    pub fn len(&self) -> usize {
        match self {
            Network::Ordered(q) | Network::Duplicating(q) => q.len(),
            Network::Unordered(bag) => bag.iter().map(|&(_, n)| n as usize).sum(),
        }
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Unordered(bag) => {
                for (e, n) in bag {
                    if *n > 1 {
                        writeln!(f, "  {e:?}  ×{n}")?;
                    } else {
                        writeln!(f, "  {e:?}")?;
                    }
                }
            }
            Network::Ordered(q) | Network::Duplicating(q) => {
                for e in q {
                    writeln!(f, "  {e:?}")?;
                }
            }
        }
        Ok(())
    }
}
