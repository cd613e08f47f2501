//! The jury over time (`docs/protocol.md`, "Reconfiguration") and the checks a snapshot's
//! jury history must pass.

use physalia_traces::{Config, Image, JuryChange, NodeId, Slot};

/// The most members of a jury (Physalia's cells have 7).
pub const MAX_JURY: usize = 7;

/// The highest slot a snapshot may name (2⁶²): far beyond any cell's life, and low enough
/// that sums of slots and windows never overflow.
pub const MAX_SLOT: Slot = 1 << 62;

/// Most configurations the jury history keeps (the oldest are forgotten first; a node asks
/// only for slots at or above its commit index, which the latest configurations cover).
pub const MAX_CONFIGS: usize = 16;

/// The jury over time: the configuration in force at each slot (`docs/protocol.md`,
/// "Reconfiguration"). A change applied at slot `i` is in force from slot `i + α`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jury {
    /// `(first slot, epoch, configuration)`, in slot order.
    pub(super) configs: Vec<(Slot, u64, Config)>,
}

impl Jury {
    /// A jury whose configuration is `initial` from slot 0 on (epoch 0).
    pub fn new(initial: Config) -> Jury {
        Jury {
            configs: vec![(0, 0, initial)],
        }
    }

    /// The configuration in force at `slot`.
    pub fn at(&self, slot: Slot) -> &Config {
        let i = self.configs.partition_point(|(start, _, _)| *start <= slot);
        &self.configs[i.saturating_sub(1)].2
    }

    /// The latest configuration (in force now or from a slot to come) and its epoch.
    pub fn latest(&self) -> (&Config, u64) {
        let (_, epoch, config) = self.configs.last().expect("a jury keeps one configuration");
        (config, *epoch)
    }

    /// The first slot of the configuration in force at `slot`.
    pub fn start_of(&self, slot: Slot) -> Slot {
        let i = self.configs.partition_point(|(start, _, _)| *start <= slot);
        self.configs[i.saturating_sub(1)].0
    }

    /// The first slot after `slot` where another configuration takes over, if any is known.
    pub fn next_change_after(&self, slot: Slot) -> Option<Slot> {
        self.configs
            .iter()
            .map(|(start, _, _)| *start)
            .find(|start| *start > slot)
    }

    /// Whether `node` is a member of every configuration in force from `from` through `to`
    /// (a promise made at `from` speaks for `to` only from a copy that stayed a member).
    pub fn member_throughout(&self, node: NodeId, from: Slot, to: Slot) -> bool {
        self.at(from).contains(node)
            && self
                .configs
                .iter()
                .filter(|(start, _, _)| *start > from && *start <= to)
                .all(|(_, _, c)| c.contains(node))
    }

    /// Whether `node` is a member of some configuration this history holds.
    pub fn knows(&self, node: NodeId) -> bool {
        self.configs.iter().any(|(_, _, c)| c.contains(node))
    }

    /// Every configuration held, with its first slot and epoch.
    pub fn configs(&self) -> impl Iterator<Item = (Slot, u64, &Config)> {
        self.configs.iter().map(|(s, e, c)| (*s, *e, c))
    }

    /// The configuration `change` leads to from the latest one, if the change is valid.
    pub fn changed(&self, change: &JuryChange) -> Option<Config> {
        let (latest, _) = self.latest();
        let mut members = latest.members.clone();
        match *change {
            JuryChange::Add { node } => {
                if latest.contains(node) || members.len() >= MAX_JURY {
                    return None;
                }
                members.push(node);
            }
            JuryChange::Remove { node } => {
                if !latest.contains(node) || members.len() <= 1 {
                    return None;
                }
                members.retain(|m| *m != node);
            }
            JuryChange::Replace { from, to } => {
                if !latest.contains(from) || latest.contains(to) {
                    return None;
                }
                members.retain(|m| *m != from);
                members.push(to);
            }
        }
        members.sort();
        Some(Config { members })
    }

    /// Records `config` in force from `start` (after every configuration held).
    pub(super) fn push(&mut self, start: Slot, config: Config) {
        let epoch = self.latest().1 + 1;
        self.configs.push((start, epoch, config));
        if self.configs.len() > MAX_CONFIGS {
            self.configs.remove(0);
        }
    }
}

/// Whether `image` is one a state machine could have written: a jury history of 1 to
/// [`MAX_CONFIGS`] configurations in slot and epoch order, each of 1 to [`MAX_JURY`] sorted
/// members, and no jury change at or above its point. A node refuses to start from a
/// snapshot that is not, and a replica ignores such a snapshot sent to it.
pub fn check_image(image: &Image) -> Result<(), String> {
    let configs = &image.juries;
    if configs.is_empty() || configs.len() > MAX_CONFIGS {
        return Err(format!(
            "{} configurations (1 to {MAX_CONFIGS})",
            configs.len()
        ));
    }
    let ordered = configs
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    let valid = configs.iter().all(|(_, _, c)| {
        !c.members.is_empty()
            && c.members.len() <= MAX_JURY
            && c.members.windows(2).all(|w| w[0] < w[1])
    });
    if !ordered || !valid {
        return Err("the jury history is not in slot and epoch order of valid juries".into());
    }
    if image.last_change.is_some_and(|s| s >= image.upto) {
        return Err("a jury change at or above the snapshot's point".into());
    }
    // No cell reaches this many slots; the bound keeps every `slot + α` sum in range.
    if image.upto > MAX_SLOT {
        return Err(format!("slot {} beyond {MAX_SLOT}", image.upto));
    }
    Ok(())
}
