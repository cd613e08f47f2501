//! Idle cells: firing timers, parking cells that have nothing to do, and waking them.

use std::cmp::Reverse;

use physalia_traces::{Config, NodeId, Role, TimeoutKind};

use super::{Input, Parked, Runtime, IDLE_BEATS, MAX_CANDIDATES};

/// The member that runs a fresh cell's first election: for cell `c<i>`, member `i mod k`
/// of its jury of `k` (so the first leaders spread over the nodes).
pub(super) fn designated(name: &str, config: &Config) -> Option<NodeId> {
    let i: usize = name.strip_prefix('c')?.parse().ok()?;
    let m = &config.members;
    (!m.is_empty()).then(|| m[i % m.len()])
}

impl Runtime {
    pub(super) fn fire(&mut self, idx: u32, kind: TimeoutKind) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.now_ms();
        let r = &mut self.replicas[idx as usize];
        match kind {
            TimeoutKind::Election => {
                let fresh = r.cell.promised().is_zero();
                // A fresh cell waits for its designated first proposer while that node
                // is alive (parked under it), or at least until `not_before`.
                let first = r.designated.filter(|d| *d != self.id);
                if let Some(d) =
                    first.filter(|d| fresh && self.peers.get(d).is_some_and(|p| p.live))
                {
                    r.parked = Parked::Follower(d);
                    self.parked_by.entry(d).or_default().push(idx);
                    self.metrics.parked.fetch_add(1, Relaxed);
                    return;
                }
                if fresh && now < r.not_before {
                    let d = r.not_before;
                    r.armed[0] = Some(d);
                    self.timers.push(Reverse((d, idx, 0)));
                    return;
                }
                // Bound the candidates standing on this node: the rest try again later.
                if self.candidates >= MAX_CANDIDATES && r.cell.role() != Role::Candidate {
                    let d = now + 1 + self.rng_below(self.opts.election_timeout.max(1));
                    let r = &mut self.replicas[idx as usize];
                    r.armed[0] = Some(d);
                    self.timers.push(Reverse((d, idx, 0)));
                    return;
                }
                let r = &mut self.replicas[idx as usize];
                let leader = r.cell.leader_hint().filter(|l| *l != self.id);
                if let Some(l) = leader {
                    let peer_inc = self.peers.get(&l).filter(|p| p.live).and_then(|p| p.inc);
                    if peer_inc.is_some() && r.heard == Some((l, peer_inc.unwrap_or(0))) {
                        r.parked = Parked::Follower(l);
                        self.parked_by.entry(l).or_default().push(idx);
                        self.metrics.parked.fetch_add(1, Relaxed);
                        return;
                    }
                }
            }
            TimeoutKind::Heartbeat => {
                if r.cell.leader_idle() {
                    r.idle_beats = r.idle_beats.saturating_add(1);
                    if r.idle_beats > IDLE_BEATS {
                        r.parked = Parked::Leader;
                        self.parked_leaders.push(idx);
                        self.metrics.parked.fetch_add(1, Relaxed);
                        return;
                    }
                } else {
                    r.idle_beats = 0;
                }
            }
            TimeoutKind::Prepare => {}
        }
        self.metrics.timeouts.fetch_add(1, Relaxed);
        self.step(idx, Input::Timeout { timer: kind });
    }

    pub(super) fn unpark(&mut self, idx: u32) {
        let r = &mut self.replicas[idx as usize];
        if r.parked != Parked::No {
            r.parked = Parked::No;
            r.armed = [None; 3];
            self.metrics
                .parked
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Wakes the followers parked under `leader`: their election timers are re-armed with
    /// jitter in `[0, election_timeout)`.
    pub(super) fn wake_followers_of(&mut self, leader: NodeId) {
        let now = self.now_ms();
        let t = self.opts.election_timeout.max(1);
        for idx in self.parked_by.remove(&leader).unwrap_or_default() {
            if self.replicas[idx as usize].parked != Parked::Follower(leader) {
                continue;
            }
            self.unpark(idx);
            let d = now + self.random() % t;
            self.replicas[idx as usize].armed[0] = Some(d);
            self.timers.push(Reverse((d, idx, 0)));
        }
    }

    /// Wakes every parked leader: its heartbeat fires now.
    pub(super) fn wake_leaders(&mut self) {
        let now = self.now_ms();
        for idx in std::mem::take(&mut self.parked_leaders) {
            if self.replicas[idx as usize].parked != Parked::Leader {
                continue;
            }
            self.unpark(idx);
            self.replicas[idx as usize].idle_beats = 0;
            self.replicas[idx as usize].armed[1] = Some(now);
            self.timers.push(Reverse((now, idx, 1)));
        }
    }
}
