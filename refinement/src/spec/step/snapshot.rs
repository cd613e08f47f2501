//! Snapshots (`docs/protocol.md`, "Snapshots"): compaction of a node's own applied prefix,
//! state transfer to a node behind, and what a copy concludes about its membership from a
//! snapshot's jury history.
//!
//! A snapshot is the state a store has after applying a chosen prefix; the rules require
//! every image a node writes or sends to be exactly its own store's (so, by induction over
//! the committed prefix, a chosen prefix), and an installed one to lie strictly above the
//! installing node's commit index (installing never rolls a chosen prefix back).

use physalia_traces::{Ballot, DurableWrite, Image, Input, Kind, Msg, NodeId, Role, TimeoutKind};

use super::Ctx;

impl Ctx<'_> {
    /// `Snapshot` from the leader of a ballot at least the promise, or answering this node's
    /// own `Prepare`: a node whose commit index is below the image's point installs it (its
    /// log entries from that point on stay) and, unless a follower, steps down; at or above
    /// the point, or for an image no store could hold, nothing changes. (The answer to the
    /// leader, its commit index, is checked with the sends.)
    pub(super) fn on_snapshot(&mut self, src: NodeId, ballot: Ballot, image: &Image) {
        let from_leader = ballot.node == src && ballot >= self.w.promised;
        let answer =
            ballot.node == self.n && ballot == self.w.ballot && self.w.role != Role::Follower;
        if !(from_leader || answer) || image.upto <= self.w.commit {
            return;
        }
        let Some(store) = self.w.store.from_image(image) else {
            return;
        };
        self.w.store = store;
        self.w.commit = image.upto;
        self.fold(image.clone());
        self.adopt_memberships();
        if self.w.role != Role::Follower {
            self.step_down();
        }
    }

    /// Makes `image` the node's snapshot: the log below its point goes, and it is written.
    fn fold(&mut self, image: Image) {
        self.w.base = image.upto;
        let kept = self.w.log.split_off(&image.upto);
        self.w.set_log(kept);
        self.writes.push(DurableWrite::Snapshot { image });
    }

    /// Compaction, the node's choice at the end of any step: a logged snapshot write that no
    /// rule predicted must be the node's own store as the step leaves it, above its current
    /// snapshot.
    pub(super) fn check_compaction(&mut self) {
        let predicted = self
            .writes
            .iter()
            .any(|w| matches!(w, DurableWrite::Snapshot { .. }));
        let logged: Vec<&Image> = self
            .ev
            .persist
            .iter()
            .flat_map(|p| p.writes.iter())
            .filter_map(|w| match w {
                DurableWrite::Snapshot { image } => Some(image),
                _ => None,
            })
            .collect();
        let [image] = logged.as_slice() else {
            return; // none, or several: `persist.writes` reports the difference
        };
        if predicted {
            return;
        }
        let own = self.w.store.image();
        if **image == own && image.upto > self.w.base && image.upto <= self.w.commit {
            self.fold(own);
        } else {
            let allowed = format!(
                "a snapshot only of the node's own store as the step leaves it ({own}), above \
                 its snapshot at {}, or an install above its commit index {}",
                self.w.base, self.pre.commit
            );
            self.find("persist.writes", allowed, format!("snapshot {image}"));
        }
    }

    /// What `on_change_applied` would have concluded from the changes a snapshot folds in,
    /// read off its jury history: a configuration without this node raises the floor to its
    /// first slot; one that holds it again (after one that did not) at or after the floor is
    /// the copy's membership.
    pub(super) fn adopt_memberships(&mut self) {
        let n = self.n;
        let points: Vec<(physalia_traces::Slot, bool)> = self
            .w
            .store
            .juries
            .last_configs(usize::MAX)
            .iter()
            .map(|(s, _, m)| (*s, m.contains(&n)))
            .collect();
        for pair in points.windows(2) {
            let ((_, was), (start, is)) = (pair[0], pair[1]);
            if was && !is {
                self.w.floor = if self.w.floor == physalia_traces::NO_FLOOR_YET {
                    start
                } else {
                    self.w.floor.max(start)
                };
            }
            if !was && is && self.w.floor != physalia_traces::NO_FLOOR_YET && start >= self.w.floor
            {
                self.w.since = Some(start);
            }
        }
        // In a cut history (the oldest kept configuration starts after slot 0), the oldest
        // one, if it holds the node at or after the floor, is a membership of this copy from
        // its first slot at least (the one adding it was forgotten).
        if let Some(&(first, holds)) = points.first().filter(|(first, _)| *first > 0) {
            let floor = self.w.floor;
            if self.w.since.is_none()
                && holds
                && floor != physalia_traces::NO_FLOOR_YET
                && first >= floor
            {
                self.w.since = Some(first);
            }
        }
    }
}

/// A `Snapshot` sent by a node: the answer a `Prepare` from below its snapshot requires
/// (checked as the expected answer), or a leader's state transfer on a heartbeat, of its
/// own store, at its ballot.
pub(super) fn check_snapshot_send(
    ctx: &mut Ctx<'_>,
    field: &str,
    to: NodeId,
    ballot: Ballot,
    image: &Image,
) {
    let heartbeat = matches!(
        ctx.ev.kind,
        Kind::Input(Input::Timeout {
            timer: TimeoutKind::Heartbeat
        })
    );
    let leading = ctx.w.role == Role::Leader && ctx.w.ballot == ballot;
    let own = ctx.w.store.image();
    if !(heartbeat && leading && *image == own && own.upto > 0) {
        ctx.find(
            format!("{field}.msg"),
            format!(
                "a Snapshot only from the leader of {ballot} on a heartbeat, of its own store \
                 ({own}), or as the answer to a Prepare from below the node's snapshot"
            ),
            format!(
                "{} to {to}",
                Msg::Snapshot {
                    ballot,
                    image: image.clone()
                }
            ),
        );
    }
}
