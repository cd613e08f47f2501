//! Messages from peers: presence and standing (heartbeats, vouches, stale instances), the
//! cells' protocol messages (a copy created for a cell a leader teaches), and liveness.

use physalia_traces::NodeId;

use super::*;

impl Runtime {
    pub(super) fn on_peer(&mut self, from: NodeId, msg: PeerMsg) {
        use std::sync::atomic::Ordering::Relaxed;
        match msg {
            PeerMsg::Hello { node, inc } => {
                if node != from {
                    self.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    return;
                }
                self.seen(from, Some(inc));
            }
            PeerMsg::Heartbeat {
                node,
                inc,
                instance,
                standing,
            } => {
                if node != from {
                    self.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    return;
                }
                self.seen(from, Some(inc));
                self.on_presence(from, instance, standing);
            }
            PeerMsg::Vouch { node, instance } if node == from => self.on_vouch(from, instance),
            PeerMsg::Stale { node, known } if node == from => self.on_stale(from, known),
            PeerMsg::Vouch { .. } | PeerMsg::Stale { .. } => {
                self.metrics.rejected_malformed.fetch_add(1, Relaxed);
            }
            // On probation no cell steps (it would vote with state it may have lost); a
            // peer speaking from another instance than the one recorded is not heard.
            PeerMsg::Cell { .. } if !self.st.member() || self.st.conflicted.contains(&from) => {
                self.metrics.dropped_unconfirmed.fetch_add(1, Relaxed);
            }
            PeerMsg::Cell { cell, env } => {
                self.seen(from, None);
                let known = self.index.get(&cell).copied();
                let Some(idx) = known.or_else(|| self.host_learner(&cell)) else {
                    self.metrics.unknown_cell.fetch_add(1, Relaxed);
                    if let Some(p) = self.peers.get(&from) {
                        let _ = p.out.try_send(PeerMsg::UnknownCell { cell });
                    }
                    return;
                };
                if env.to != self.id || env.from() != from {
                    self.metrics.rejected_malformed.fetch_add(1, Relaxed);
                    return;
                }
                self.step(idx, Input::deliver(env));
            }
            PeerMsg::UnknownCell { cell } => {
                self.metrics.unknown_cell.fetch_add(1, Relaxed);
                tracing::warn!(peer = %from, cell, "the peer does not host this cell");
            }
        }
    }

    /// Notes that `from` is alive (in incarnation `inc`, if the message says).
    pub(super) fn seen(&mut self, from: NodeId, inc: Option<u64>) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let restarted = inc.is_some_and(|i| p.inc.is_some_and(|old| old != i));
        let revived = !p.live && inc.is_some();
        if let Some(i) = inc {
            p.inc = Some(i);
            p.live = true;
        }
        if restarted {
            tracing::info!(peer = %from, "peer restarted");
            self.wake_followers_of(from);
        }
        if restarted || revived {
            self.wake_leaders();
        }
    }
}
