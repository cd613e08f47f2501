//! Who this data directory belongs to, and whether its durable state is the state this
//! node acknowledged from (`impl/README.md`, "Amnesia").
//!
//! A node votes with its durable state: promises and accepted entries. A node whose state
//! is gone (a wiped disk, a replaced volume, a deleted segment) and that starts as if
//! nothing happened votes with less than it promised, and an acknowledged write can be
//! lost. Three pieces of evidence, each in a different place, make that fail closed:
//!
//! - **The WAL's own marker** (`wal/NEWEST`, see [`crate::wal`]) names the newest segment
//!   the log created: a log missing its newest segment is refused.
//! - **The identity file** (`DATA_DIR/identity`), written once, when the node first leaves
//!   probation: node id, cluster fingerprint and a random *instance* number. Present with
//!   no log (the `wal/` directory deleted) → refused; missing while the log holds votes →
//!   refused; naming another node or cluster → refused. The log holds the same identity
//!   (its first record), so a log copied from another node is refused too.
//! - **The peers**: every node records, durably, the instance of every peer it has heard
//!   from. A node with an empty directory is *on probation*: it steps no cell (no vote, no
//!   promise, no election) until a majority of its peers confirm they never knew it under
//!   another instance. A peer that knew it under another instance says so, and the node
//!   exits: its data is gone. Any two majorities of the peers share a peer, so a node that
//!   ever voted (it left probation, confirmed by a majority) cannot pass probation again
//!   with a wiped directory while that majority keeps its records.
//!
//! The supported recovery of a node whose state is gone is to re-enter as a new instance
//! (`physalia node --rejoin` on an empty directory): it hosts no copy of any cell, so it
//! votes nowhere, until reconfiguration adds it to a jury as a learner first
//! (`physalia cluster replace-node` moves its old memberships to other nodes).

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use physalia_traces::NodeId;

use super::frame::FrameKey;
use super::wire::{Instance, Standing};
use super::NodeError;

/// The identity file's name inside the data directory.
pub const IDENTITY_FILE: &str = "identity";
/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "lock";
/// The identity file is read only this far (it is a few dozen bytes).
const MAX_IDENTITY_BYTES: u64 = 4096;

/// Who a data directory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The node.
    pub node: NodeId,
    /// A fingerprint of the cluster key (not the key).
    pub cluster: u64,
    /// The instance of this directory's state (a new one at `--rejoin`).
    pub instance: Instance,
}

impl Identity {
    /// A new identity of node `node` in the cluster of `key`, with a random instance.
    pub fn new(node: NodeId, key: &FrameKey) -> Identity {
        Identity {
            node,
            cluster: fingerprint(key),
            instance: Instance {
                generation: 0,
                nonce: random_nonce(),
            },
        }
    }

    /// The file's text.
    fn render(&self) -> String {
        format!(
            "# physalia node identity: written once, when this node first joined its cluster.\n\
             # Deleting it makes the node refuse to start (see impl/README.md, \"Amnesia\").\n\
             node {}\ncluster {:016x}\ngeneration {}\ninstance {:016x}\n",
            self.node.0, self.cluster, self.instance.generation, self.instance.nonce
        )
    }

    fn parse(path: &Path, text: &str) -> Result<Identity, NodeError> {
        let bad = |why: &str| {
            NodeError::Config(format!(
                "{} is not a node identity ({why}); it holds {:?}",
                path.display(),
                text.chars().take(200).collect::<String>()
            ))
        };
        let (mut node, mut cluster, mut generation, mut instance) = (None, None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once(' ')
                .ok_or_else(|| bad("a line is not `KEY VALUE`"))?;
            let v = v.trim();
            match k {
                "node" => node = Some(v.parse::<u32>().map_err(|_| bad("node"))?),
                "cluster" => {
                    cluster = Some(u64::from_str_radix(v, 16).map_err(|_| bad("cluster"))?)
                }
                "generation" => generation = Some(v.parse::<u64>().map_err(|_| bad("generation"))?),
                "instance" => {
                    instance = Some(u64::from_str_radix(v, 16).map_err(|_| bad("instance"))?)
                }
                _ => return Err(bad("unknown key")),
            }
        }
        match (node, cluster, generation, instance) {
            (Some(n), Some(c), Some(g), Some(i)) => Ok(Identity {
                node: NodeId(n),
                cluster: c,
                instance: Instance {
                    generation: g,
                    nonce: i,
                },
            }),
            _ => Err(bad(
                "node, cluster, generation and instance are all required",
            )),
        }
    }
}

/// What this node tells its peers in every heartbeat: the instance of its state and its
/// standing, shared by the event loop (which ends probation) and the heartbeat task.
#[derive(Debug)]
pub struct Presence(std::sync::Mutex<(Instance, Standing)>);

impl Presence {
    /// A presence with `instance` and `standing`.
    pub fn new(instance: Instance, standing: Standing) -> std::sync::Arc<Presence> {
        std::sync::Arc::new(Presence(std::sync::Mutex::new((instance, standing))))
    }

    /// The instance and standing now.
    pub fn get(&self) -> (Instance, Standing) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets them (at the end of probation).
    pub fn set(&self, instance: Instance, standing: Standing) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (instance, standing);
    }
}

/// A fingerprint of the cluster key: the first 8 bytes of its HMAC over a fixed label.
pub fn fingerprint(key: &FrameKey) -> u64 {
    let tag = key.tag_of(b"physalia cluster identity v1");
    u64::from_le_bytes(tag[..8].try_into().expect("an HMAC has 32 bytes"))
}

/// A random 64-bit nonce from the standard library's per-process random hash keys (seeded
/// by the operating system), mixed with the time and the process id.
pub fn random_nonce() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// Reads `DIR/identity`, if there is one.
pub fn read(dir: &Path) -> Result<Option<Identity>, NodeError> {
    let path = dir.join(IDENTITY_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(NodeError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let mut text = String::new();
    use std::io::Read;
    file.take(MAX_IDENTITY_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| NodeError::Config(format!("cannot read {}: {e}", path.display())))?;
    Identity::parse(&path, &text).map(Some)
}

/// Writes `DIR/identity` atomically and durably (temporary file, fsync, rename, fsync of
/// the directory).
pub fn write(dir: &Path, id: &Identity) -> Result<(), NodeError> {
    let path = dir.join(IDENTITY_FILE);
    let io = |what: &str, e: std::io::Error| {
        NodeError::Config(format!("cannot {what} {}: {e}", path.display()))
    };
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(id.render().as_bytes())
        .map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename onto", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync the directory of", e))
}

/// The exclusive lock on a data directory, held for the life of the process (released by
/// the operating system when the process exits, however it exits).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock on `dir` (creating the directory and its lock file if needed)
/// before anything else is read or written there. A second process on the same directory
/// gets an error at once and changes nothing.
pub fn lock(dir: &Path) -> Result<DirLock, NodeError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        NodeError::Config(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| NodeError::Config(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file, path }),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::Busy {
            dir: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(NodeError::Config(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Whether `wal_dir` holds any segment or snapshot (a log that has run).
pub fn wal_present(wal_dir: &Path) -> Result<bool, NodeError> {
    let entries = match std::fs::read_dir(wal_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(NodeError::Config(format!(
                "cannot list {}: {e}",
                wal_dir.display()
            )))
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // A temporary file is not a log (recovery deletes it).
        if (name.starts_with("wal-") || name.starts_with("snap-")) && !name.ends_with(".tmp") {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_round_trips_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let key = FrameKey::new(&[7; 32]);
        let id = Identity::new(NodeId(3), &key);
        write(dir.path(), &id).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(id));
        assert_eq!(id.cluster, fingerprint(&FrameKey::new(&[7; 32])));
        assert_ne!(id.cluster, fingerprint(&FrameKey::new(&[8; 32])));
        std::fs::write(dir.path().join(IDENTITY_FILE), "node x\n").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a node identity"), "{e}");
    }

    #[test]
    fn a_second_lock_on_a_directory_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let e = lock(dir.path()).unwrap_err();
        assert!(matches!(e, NodeError::Busy { .. }), "{e}");
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn instances_differ() {
        assert_ne!(random_nonce(), random_nonce());
    }
}
