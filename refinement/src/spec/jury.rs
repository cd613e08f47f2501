//! The jury over time, as the specification computes it (independently of the
//! implementation): the configuration in force at each slot is the initial jury with every
//! valid change chosen at a slot `j ≤ s − α` applied in slot order (`docs/protocol.md`,
//! "Reconfiguration").

use physalia_traces::{JuryChange, NodeId, Slot, TxnResult};

/// The most members of a jury.
pub const MAX_JURY: usize = 7;

/// The configurations of a cell from slot 0: `(first slot, epoch, sorted members)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Juries {
    configs: Vec<(Slot, u64, Vec<NodeId>)>,
    alpha: u64,
}

impl Default for Juries {
    /// No jury at all (a placeholder; a cell's juries come from `CellFacts::juries`).
    fn default() -> Self {
        Juries::new(&[], 1)
    }
}

impl Juries {
    /// The initial jury `members`, in force from slot 0; changes take effect `alpha` slots
    /// after their own.
    pub fn new(members: &[NodeId], alpha: u64) -> Juries {
        let mut m = members.to_vec();
        m.sort();
        m.dedup();
        Juries {
            configs: vec![(0, 0, m)],
            alpha: alpha.max(1),
        }
    }

    /// How many slots after its own a change takes effect (α).
    pub fn alpha(&self) -> u64 {
        self.alpha
    }

    /// The members of the configuration in force at `slot`.
    pub fn at(&self, slot: Slot) -> &[NodeId] {
        let i = self.configs.partition_point(|(s, _, _)| *s <= slot);
        &self.configs[i.saturating_sub(1)].2
    }

    /// The first slot of the configuration in force at `slot`.
    pub fn start_of(&self, slot: Slot) -> Slot {
        let i = self.configs.partition_point(|(s, _, _)| *s <= slot);
        self.configs[i.saturating_sub(1)].0
    }

    /// The size of a quorum at `slot`: a majority of its configuration.
    pub fn quorum_at(&self, slot: Slot) -> usize {
        self.at(slot).len() / 2 + 1
    }

    /// Whether `n` is a member of the configuration in force at `slot`.
    pub fn member_at(&self, n: NodeId, slot: Slot) -> bool {
        self.at(slot).contains(&n)
    }

    /// Whether `n` is a member of every configuration in force from `from` through `to`
    /// (a promise made at `from` speaks for `to` only from a copy that stayed a member).
    pub fn member_throughout(&self, n: NodeId, from: Slot, to: Slot) -> bool {
        self.member_at(n, from)
            && self
                .configs
                .iter()
                .filter(|(s, _, _)| *s > from && *s <= to)
                .all(|(_, _, m)| m.contains(&n))
    }

    /// Whether `n` is a member of some configuration known.
    pub fn knows(&self, n: NodeId) -> bool {
        self.configs.iter().any(|(_, _, m)| m.contains(&n))
    }

    /// A jury history as a snapshot holds it: `(first slot, epoch, members)` in slot order
    /// (`None` if empty, out of order, or with an empty or oversized jury).
    pub fn from_configs(configs: Vec<(Slot, u64, Vec<NodeId>)>, alpha: u64) -> Option<Juries> {
        let ordered = configs
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let valid = configs.iter().all(|(_, _, m)| {
            !m.is_empty() && m.len() <= MAX_JURY && m.windows(2).all(|w| w[0] < w[1])
        });
        (!configs.is_empty() && ordered && valid).then_some(Juries {
            configs,
            alpha: alpha.max(1),
        })
    }

    /// The last `n` configurations, `(first slot, epoch, members)`.
    pub fn last_configs(&self, n: usize) -> &[(Slot, u64, Vec<NodeId>)] {
        &self.configs[self.configs.len().saturating_sub(n)..]
    }

    /// The first slot of every configuration after the initial one.
    pub fn change_points(&self) -> impl Iterator<Item = Slot> + '_ {
        self.configs.iter().skip(1).map(|(s, _, _)| *s)
    }

    /// The latest configuration and its epoch.
    pub fn latest(&self) -> (&[NodeId], u64) {
        let (_, e, m) = self.configs.last().expect("the initial configuration");
        (m, *e)
    }

    /// Applies `change` chosen at `slot`: valid against the latest jury (add a non-member to
    /// fewer than 7, remove a member from more than one, replace a member by a non-member)
    /// it is in force from `slot + α`; invalid, it changes nothing. Returns the result the
    /// client is answered with.
    pub fn apply(&mut self, slot: Slot, change: &JuryChange) -> TxnResult {
        let in_force = slot + self.alpha;
        let (latest, epoch) = self.latest();
        let mut m = latest.to_vec();
        let has = |n: NodeId| latest.contains(&n);
        let ok = match *change {
            JuryChange::Add { node } if !has(node) && m.len() < MAX_JURY => {
                m.push(node);
                true
            }
            JuryChange::Remove { node } if has(node) && m.len() > 1 => {
                m.retain(|x| *x != node);
                true
            }
            JuryChange::Replace { from, to } if has(from) && !has(to) => {
                m.retain(|x| *x != from);
                m.push(to);
                true
            }
            _ => false,
        };
        if ok {
            m.sort();
            self.configs.push((in_force, epoch + 1, m.clone()));
        }
        let (jury, epoch) = self.latest();
        TxnResult::Reconfig {
            ok,
            jury: jury.to_vec(),
            epoch,
            in_force,
        }
    }
}

/// A set of nodes for reports: `{n0 n1 n7}`.
pub fn show(nodes: impl IntoIterator<Item = NodeId>) -> String {
    let v: Vec<String> = nodes.into_iter().map(|n| n.to_string()).collect();
    format!("{{{}}}", v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_in_force_alpha_slots_after_its_own() {
        let n = |i| NodeId(i);
        let mut j = Juries::new(&[n(0), n(1), n(2)], 3);
        let r = j.apply(
            4,
            &JuryChange::Replace {
                from: n(2),
                to: n(7),
            },
        );
        assert!(matches!(
            r,
            TxnResult::Reconfig {
                ok: true,
                in_force: 7,
                epoch: 1,
                ..
            }
        ));
        assert_eq!(j.at(6), &[n(0), n(1), n(2)]);
        assert_eq!(j.at(7), &[n(0), n(1), n(7)]);
        let bad = j.apply(9, &JuryChange::Remove { node: n(2) });
        assert!(matches!(
            bad,
            TxnResult::Reconfig {
                ok: false,
                epoch: 1,
                ..
            }
        ));
        assert_eq!(j.quorum_at(100), 2);
    }
}
