//! Boot: lock the data directory, decide from the identity file, the log and its identity
//! record whether this is the state the node voted from (`impl/README.md`, "Amnesia"), replay
//! the log and make this run's incarnation durable.

use super::*;

/// A node that has recovered its log and made its new incarnation durable.
pub struct Booted {
    pub(super) log: Arc<dyn Log>,
    pub(super) replayed: Replayed,
    pub(super) lock: identity::DirLock,
    pub(super) identity: identity::Identity,
    pub(super) standing: wire::Standing,
    pub(super) rejoined: bool,
    /// How many torn-tail bytes recovery removed.
    pub truncated_tail_bytes: u64,
    /// How many records a repair discarded.
    pub discarded_records: u64,
}

impl Booted {
    /// This run's incarnation.
    pub fn inc(&self) -> u64 {
        self.replayed.boot.inc
    }

    /// Whose state this is.
    pub fn identity(&self) -> identity::Identity {
        self.identity
    }

    /// Whether the node votes, or waits on probation.
    pub fn standing(&self) -> wire::Standing {
        self.standing
    }
}

/// Locks the data directory, checks that its durable state is the state this node voted
/// from (see [`identity`]), opens and replays the log, then appends and syncs this run's
/// boot record. A log damaged in the middle is an error (unless `repair`); so is a missing
/// newest segment, a missing log or identity of a node that has run, and a directory of
/// another node or cluster.
pub fn boot(cfg: &NodeConfig) -> Result<Booted, NodeError> {
    let lock = identity::lock(&cfg.data_dir)?;
    let dir = cfg.data_dir.join("wal");
    let on_file = identity::read(&cfg.data_dir)?;
    let fingerprint = identity::fingerprint(&cfg.key);
    check_owner(cfg, on_file.as_ref(), fingerprint, "identity")?;
    let had_log = identity::wal_present(&dir)?;
    if let (Some(id), false, false) = (&on_file, had_log, cfg.rejoin) {
        return Err(NodeError::Amnesia(format!(
            "node n{} (instance {}) has run from {}, but its write-ahead log {} is gone (no \
             segment, no snapshot): the promises and votes it acknowledged are lost, and it \
             must not vote as if nothing happened. To bring the node back, re-enter it as a \
             new instance: empty the directory, start it with `--rejoin`, and move its old \
             memberships with `physalia cluster replace-node --node {}` (impl/README.md, \
             \"Amnesia\")",
            id.node.0,
            id.instance,
            cfg.data_dir.display(),
            dir.display(),
            id.node.0
        )));
    }
    let opts = crate::wal::WalOptions {
        repair: cfg.repair,
        segment_bytes: cfg.segment_bytes,
    };
    let (wal, recovered) = crate::wal::Wal::open(&dir, opts).map_err(|source| NodeError::Wal {
        dir: dir.display().to_string(),
        source,
    })?;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut replayed = store::replay(recovered.snapshot.as_ref(), &recovered.records, wall)?;
    let in_log = replayed.identity;
    if let Some((id, _)) = &in_log {
        check_owner(
            cfg,
            Some(id),
            fingerprint,
            "write-ahead log's identity record",
        )?;
    }
    let (identity, standing, rejoined, first_record) =
        standing(cfg, on_file, in_log, &replayed, fingerprint)?;
    // The boot file survives a repair of the log, so incarnations never repeat. A rejoined
    // instance's first boot takes the wall clock's second as its incarnation: above any
    // count of restarts of the instance it replaces, whose files are gone (its message ids
    // and trace files must not repeat theirs).
    let boot_file = cfg.data_dir.join("incarnation");
    if let Some((inc, floor)) = read_boot_file(&boot_file)? {
        replayed.boot.inc = replayed.boot.inc.max(inc + 1);
        replayed.boot.lamport = replayed.boot.lamport.max(floor + 1);
    }
    if rejoined && first_record {
        replayed.boot.inc = replayed.boot.inc.max(wall / 1_000_000);
    }
    write_boot_file(&boot_file, replayed.boot.inc, replayed.boot.lamport)?;
    let log: Arc<dyn Log> = Arc::new(WalLog(wal));
    if first_record {
        log.append(&store::encode(&WalRecord::Identity { identity, rejoined }))?;
    }
    let record = WalRecord::Boot {
        inc: replayed.boot.inc,
        lamport: replayed.boot.lamport,
    };
    let lsn = log.append(&store::encode(&record))?;
    log.sync_to(lsn)?;
    Ok(Booted {
        log,
        replayed,
        lock,
        identity,
        standing,
        rejoined,
        truncated_tail_bytes: recovered.truncated_tail_bytes,
        discarded_records: recovered.discarded_records,
    })
}

/// Refuses an identity (`what`: the file, or the log's record) of another node or cluster.
fn check_owner(
    cfg: &NodeConfig,
    id: Option<&identity::Identity>,
    fingerprint: u64,
    what: &str,
) -> Result<(), NodeError> {
    let Some(id) = id else { return Ok(()) };
    if id.node != cfg.id {
        return Err(NodeError::Amnesia(format!(
            "{} belongs to node n{} (its {what} says so), not to n{}: a node must start from \
             its own state; check --id and --data-dir",
            cfg.data_dir.display(),
            id.node.0,
            cfg.id.0
        )));
    }
    if id.cluster != fingerprint {
        return Err(NodeError::Amnesia(format!(
            "{} belongs to another cluster (its {what} names cluster key fingerprint {:016x}; \
             the key given has {fingerprint:016x}): check --key-file and --data-dir",
            cfg.data_dir.display(),
            id.cluster
        )));
    }
    Ok(())
}

/// Decides how the node starts from what the identity file and the log say: its identity,
/// its standing, whether it rejoined, and whether the log still needs its identity record.
fn standing(
    cfg: &NodeConfig,
    on_file: Option<identity::Identity>,
    in_log: Option<(identity::Identity, bool)>,
    replayed: &Replayed,
    fingerprint: u64,
) -> Result<(identity::Identity, wire::Standing, bool, bool), NodeError> {
    use wire::Standing;
    let votes = replayed.holds_votes();
    if cfg.rejoin && votes {
        return Err(NodeError::Config(format!(
            "--rejoin starts a new instance of a node whose state was lost, but the log in {} \
             holds this node's votes: start it without --rejoin (or, to replace this state on \
             purpose, move the directory away first)",
            cfg.data_dir.display()
        )));
    }
    match (on_file, in_log) {
        // A rejoin that has not ended its probation yet: it goes on with `--rejoin`.
        (Some(f), Some((l, true))) if f != l && !cfg.rejoin && !votes => {
            Err(NodeError::Config(format!(
                "{} holds a rejoin in progress (new instance {}, on probation; {}/identity \
                 still names the lost instance {}): start the node with `--rejoin` to go on",
                cfg.data_dir.display(),
                l.instance,
                cfg.data_dir.display(),
                f.instance
            )))
        }
        (Some(f), Some((l, _))) if f != l && !cfg.rejoin => Err(NodeError::Amnesia(format!(
            "the write-ahead log in {} is of instance {} but {}/identity names instance {}: \
             the log is not the one this node voted from",
            cfg.data_dir.display(),
            l.instance,
            cfg.data_dir.display(),
            f.instance
        ))),
        // The identity file is written only after the log's identity record is durable
        // (and snapshots carry it): a log without it lost its beginning.
        // (`--repair` accepts that loss explicitly: it discards a damaged suffix, which may
        // begin at the first record, and the node then runs on what is left.)
        (Some(f), None) if !cfg.rejoin && cfg.repair => Ok((f, Standing::Member, false, true)),
        (Some(f), None) if !cfg.rejoin => Err(NodeError::Amnesia(format!(
            "{}/identity names instance {} of node n{}, but the write-ahead log holds no \
             identity record: the log lost its beginning (a repair that discarded it, or a \
             log from elsewhere), so it is not the whole log this node voted from. Re-enter \
             the node as a new instance (empty the directory, start with `--rejoin`, then \
             `physalia cluster replace-node --node {}`)",
            cfg.data_dir.display(),
            f.instance,
            f.node.0,
            f.node.0
        ))),
        (Some(f), Some((_, rejoined))) if !cfg.rejoin => Ok((f, Standing::Member, rejoined, false)),
        (None, _) if votes => Err(NodeError::Amnesia(format!(
            "{}/identity is missing, but the write-ahead log holds this node's votes: without \
             the identity the node cannot tell whether the log is the whole log it voted \
             from. If the identity file alone was lost, restore it from a backup; otherwise \
             re-enter the node as a new instance (empty the directory, start with \
             `--rejoin`, then `physalia cluster replace-node --node {}`)",
            cfg.data_dir.display(),
            cfg.id.0
        ))),
        // Nothing voted from here yet: a new directory, or one whose probation did not end.
        (_, Some((l, r))) if r == cfg.rejoin => {
            let standing = if r {
                Standing::Rejoin
            } else {
                Standing::Probation
            };
            Ok((l, standing, r, false))
        }
        _ => {
            let mut id = identity::Identity::new(cfg.id, &cfg.key);
            id.cluster = fingerprint;
            let standing = if cfg.rejoin {
                Standing::Rejoin
            } else {
                Standing::Probation
            };
            Ok((id, standing, cfg.rejoin, true))
        }
    }
}

/// Reads `incarnation lamport` from the boot file, if there is one.
fn read_boot_file(path: &std::path::Path) -> Result<Option<(u64, u64)>, NodeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(NodeError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let bad = || {
        NodeError::Config(format!(
            "{} does not hold `INCARNATION LAMPORT`: {text:?}",
            path.display()
        ))
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(i)), Some(Ok(l)), None) => Ok(Some((i, l))),
        _ => Err(bad()),
    }
}

/// Writes the boot file atomically and durably (temporary file, fsync, rename, fsync of
/// the directory).
fn write_boot_file(path: &std::path::Path, inc: u64, lamport: u64) -> Result<(), NodeError> {
    use std::io::Write;
    let io = |what: &str, e: std::io::Error| {
        NodeError::Config(format!("cannot {what} {}: {e}", path.display()))
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    writeln!(f, "{inc} {lamport}").map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename onto", e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("fsync the directory of", e))?;
    }
    Ok(())
}
