//! The node's standing with its peers (see [`crate::node::identity`]): every node records
//! the instance of every peer durably and vouches for a peer on probation; a node on
//! probation steps no cell until a majority of its peers vouched, and stops if a peer knew
//! it under another instance.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use physalia_traces::{Config, NodeId};

use super::{Runtime, StoreError};
use crate::core::Durable;
use crate::node::identity::{self, Identity, Presence};
use crate::node::store::{encode, Lsn, WalRecord};
use crate::node::wire::{Instance, PeerMsg, Standing};

/// The cells a node on probation starts once it ends: each with its jury, and their
/// durable state.
pub(super) type Deferred = (Vec<(String, Config)>, HashMap<String, Durable>);

/// What the event loop starts with about its own standing.
pub struct StandingSetup {
    /// Whose state this is.
    pub identity: Identity,
    /// Member, or on probation.
    pub standing: Standing,
    /// The instance re-entered with `--rejoin`.
    pub rejoined: bool,
    /// Shared with the heartbeat task.
    pub presence: Arc<Presence>,
    /// The instance recorded for each peer.
    pub peers: HashMap<NodeId, Instance>,
    /// Where the identity file goes when probation ends.
    pub data_dir: PathBuf,
}

/// The event loop's part of it.
pub(super) struct Standings {
    pub(super) identity: Identity,
    pub(super) standing: Standing,
    pub(super) rejoined: bool,
    presence: Arc<Presence>,
    data_dir: PathBuf,
    /// Each peer's recorded instance and the LSN of its record (0: from the replayed log,
    /// durable). Bounded by the cluster's nodes.
    known: HashMap<NodeId, (Instance, Lsn)>,
    /// The highest LSN known durable.
    synced: Lsn,
    /// Peers to vouch for once their record is durable (at most one entry per peer).
    vouch_after: Vec<(Lsn, NodeId)>,
    /// Peers whose instance conflicts with the record: their cell messages are dropped.
    pub(super) conflicted: HashSet<NodeId>,
    /// On probation: the peers that vouched, with the instance each recorded.
    vouched: BTreeMap<NodeId, Instance>,
    /// On probation: the cells to start once it ends, with their durable state.
    pub(super) deferred: Option<Deferred>,
    /// Why the node must stop, if it must.
    pub(super) fatal: Option<String>,
}

impl Standings {
    pub(super) fn new(setup: StandingSetup) -> Standings {
        Standings {
            identity: setup.identity,
            standing: setup.standing,
            rejoined: setup.rejoined,
            presence: setup.presence,
            data_dir: setup.data_dir,
            known: setup.peers.into_iter().map(|(n, i)| (n, (i, 0))).collect(),
            synced: 0,
            vouch_after: Vec::new(),
            conflicted: HashSet::new(),
            vouched: BTreeMap::new(),
            deferred: None,
            fatal: None,
        }
    }

    /// Whether this node votes (it is not on probation).
    pub(super) fn member(&self) -> bool {
        self.standing == Standing::Member
    }

    /// Every recorded peer instance, sorted (for a snapshot).
    pub(super) fn recorded(&self) -> Vec<(NodeId, Instance)> {
        let mut v: Vec<(NodeId, Instance)> =
            self.known.iter().map(|(n, (i, _))| (*n, *i)).collect();
        v.sort();
        v
    }

    /// Whether a sync is awaited for a vouch.
    pub(super) fn awaits_sync(&self) -> bool {
        !self.vouch_after.is_empty()
    }
}

impl Runtime {
    /// How many peers must vouch for a node on probation: a majority of its peers (any two
    /// majorities of the peers share one, which is what makes a wiped node's second
    /// probation fail while the peers that confirmed the first keep their records).
    pub(super) fn vouches_needed(&self) -> usize {
        self.peers.len() / 2 + 1
    }

    /// A message from a peer that says who it is: its instance and standing.
    pub(super) fn on_presence(&mut self, from: NodeId, instance: Instance, standing: Standing) {
        use std::sync::atomic::Ordering::Relaxed;
        let known = self.st.known.get(&from).map(|(i, _)| *i);
        match known {
            Some(k) if k.nonce == instance.nonce => {
                if instance.generation > k.generation {
                    self.record_peer(from, instance);
                }
                self.st.conflicted.remove(&from);
                if standing != Standing::Member {
                    self.vouch(from);
                }
            }
            Some(k) => match standing {
                // A new instance replacing a lost one: one generation up.
                Standing::Rejoin => {
                    let new = Instance {
                        generation: k.generation + 1,
                        nonce: instance.nonce,
                    };
                    tracing::warn!(peer = %from, old = %k, new = %new, "a peer rejoins as a new instance");
                    self.record_peer(from, new);
                    self.st.conflicted.remove(&from);
                    self.vouch(from);
                }
                // It rejoined while this node was away.
                Standing::Member if instance.generation > k.generation => {
                    self.record_peer(from, instance);
                    self.st.conflicted.remove(&from);
                }
                // A wiped node starting afresh, or an old copy of a node's directory.
                _ => {
                    if let Some(p) = self.peers.get(&from) {
                        let _ = p.out.try_send(PeerMsg::Stale {
                            node: self.id,
                            known: k,
                        });
                    }
                    if self.st.conflicted.insert(from) {
                        self.metrics.stale_peers.fetch_add(1, Relaxed);
                        tracing::error!(
                            peer = %from, known = %k, claimed = %instance, ?standing,
                            "a peer speaks from another instance than the one recorded: its \
                             state is not the one it voted from; ignoring its cell messages"
                        );
                    }
                }
            },
            None => {
                self.record_peer(from, instance);
                if standing != Standing::Member {
                    self.vouch(from);
                }
            }
        }
    }

    /// Records `from`'s instance in the log (made durable before any vouch for it).
    fn record_peer(&mut self, from: NodeId, instance: Instance) {
        let record = WalRecord::PeerInstance {
            node: from,
            instance,
        };
        match self.log.append(&encode(&record)) {
            Ok(lsn) => {
                self.appended = self.appended.max(lsn);
                self.since_snapshot += 1;
                self.st.known.insert(from, (instance, lsn));
            }
            Err(e) => self.st.fatal = Some(format!("cannot record a peer's instance: {e}")),
        }
    }

    /// Vouches for `from` once its record is durable.
    fn vouch(&mut self, from: NodeId) {
        let Some(&(instance, lsn)) = self.st.known.get(&from) else {
            return;
        };
        if lsn <= self.st.synced {
            if let Some(p) = self.peers.get(&from) {
                let _ = p.out.try_send(PeerMsg::Vouch {
                    node: self.id,
                    instance,
                });
            }
        } else if !self.st.vouch_after.iter().any(|(_, n)| *n == from) {
            self.st.vouch_after.push((lsn, from));
            self.kick_sync();
        }
    }

    /// Everything up to `lsn` is durable: send the vouches that waited for it.
    pub(super) fn vouch_synced(&mut self, lsn: Lsn) {
        self.st.synced = self.st.synced.max(lsn);
        let synced = self.st.synced;
        let (ready, wait): (Vec<_>, Vec<_>) = self
            .st
            .vouch_after
            .drain(..)
            .partition(|(l, _)| *l <= synced);
        self.st.vouch_after = wait;
        for (_, from) in ready {
            self.vouch(from);
        }
    }

    /// A peer confirmed this node's instance.
    pub(super) fn on_vouch(&mut self, from: NodeId, instance: Instance) {
        if self.st.member() || instance.nonce != self.st.identity.instance.nonce {
            return;
        }
        self.st.vouched.insert(from, instance);
        if self.st.vouched.len() >= self.vouches_needed() {
            self.leave_probation();
        }
    }

    /// A peer knows this node under another instance.
    pub(super) fn on_stale(&mut self, from: NodeId, known: Instance) {
        let mine = self.st.identity.instance;
        if known == mine || self.st.standing == Standing::Rejoin {
            return;
        }
        if self.st.member() && known.generation < mine.generation {
            return; // the peer has not heard of this node's rejoin yet; it will record it
        }
        let id = self.id.0;
        self.st.fatal = Some(if self.st.member() {
            format!(
                "peer n{} knows this node as instance {known}, newer than this directory's \
                 {mine}: this data directory is an old copy of the node's state, and voting \
                 from it could lose acknowledged writes; refusing to run",
                from.0
            )
        } else {
            format!(
                "peer n{} knows node n{id} as instance {known}, but this data directory is new \
                 (instance {mine}): this node's state was lost (a wiped or replaced data \
                 directory), and it must not vote as if nothing happened. Re-enter it as a \
                 new instance: start it with `--rejoin` on this directory, then run \
                 `physalia cluster replace-node --node {id}` (impl/README.md, \"Amnesia\")",
                from.0
            )
        });
    }

    /// A majority of the peers vouched: record the generation they agreed on, write the
    /// identity file (from now on this directory has voted), and start the cells.
    pub(super) fn leave_probation(&mut self) {
        let generation = self
            .st
            .vouched
            .values()
            .map(|i| i.generation)
            .max()
            .unwrap_or(0);
        let mut identity = self.st.identity;
        identity.instance.generation = generation;
        let record = WalRecord::Identity {
            identity,
            rejoined: self.st.rejoined,
        };
        let durable = self
            .log
            .append(&encode(&record))
            .and_then(|lsn| self.log.sync_to(lsn).map(|()| lsn));
        match durable {
            Ok(lsn) => self.appended = self.appended.max(lsn),
            Err(e) => {
                self.st.fatal = Some(format!("cannot record the end of probation: {e}"));
                return;
            }
        }
        if let Err(e) = identity::write(&self.st.data_dir, &identity) {
            self.st.fatal = Some(format!("cannot write the identity file: {e}"));
            return;
        }
        tracing::info!(
            instance = %identity.instance,
            vouched = self.st.vouched.len(),
            peers = self.peers.len(),
            "left probation: a majority of the peers confirmed this instance"
        );
        self.st.identity = identity;
        self.st.standing = Standing::Member;
        self.st.presence.set(identity.instance, Standing::Member);
        if let Some((cells, durable)) = self.st.deferred.take() {
            self.start_cells(cells, durable);
        }
    }

    /// Stops the loop if the standing says so.
    pub(super) fn check_fatal(&mut self) -> Result<(), StoreError> {
        match self.st.fatal.take() {
            Some(why) => {
                tracing::error!("{why}");
                Err(StoreError::Refused(why))
            }
            None => Ok(()),
        }
    }
}
