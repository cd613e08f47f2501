//! The faults, each real: signals to node processes, cuts in the proxies between them,
//! damage to a stopped node's files, a second process on a live data directory, and
//! hostile connections. Each fault is injected, held, healed, and its outcome checked where
//! the node must do something (refuse damaged state, refuse a second process, keep serving
//! under hostile connections).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use physalia_impl::node::frame::FrameKey;
use physalia_impl::node::wire::{NodeStatus, Standing};
use physalia_traces::{JuryChange, NodeId, Role};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::procs::Nodes;
use super::proxy::Partitions;
use super::workload::Rng;
use crate::cluster::moves::{propose, wait_in_force};
use crate::cluster::{free_port, probe_client, read_cluster};

/// The kinds of fault (`--faults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Kill,
    Pause,
    Partition,
    Disk,
    RestartAll,
    DuplicateProcess,
    Hostile,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Disk,
        Kind::RestartAll,
        Kind::DuplicateProcess,
        Kind::Hostile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Disk => "disk",
            Kind::RestartAll => "restart-all",
            Kind::DuplicateProcess => "duplicate-process",
            Kind::Hostile => "hostile",
        }
    }

    /// Parses `--faults`: a comma-separated list of kinds, `all`, or `none`.
    pub fn parse_list(s: &str) -> Result<FaultList, String> {
        let mut out = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => out.extend(Kind::ALL),
                "none" => {}
                _ => {
                    let k = Kind::ALL
                        .into_iter()
                        .find(|k| k.name() == part)
                        .ok_or_else(|| {
                            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                            format!(
                                "unknown fault `{part}` (known: {}, all, none)",
                                names.join(", ")
                            )
                        })?;
                    out.insert(k);
                }
            }
        }
        Ok(FaultList(out.into_iter().collect()))
    }
}

/// The kinds of `--faults`, each once, in order.
#[derive(Clone, Debug)]
pub struct FaultList(pub Vec<Kind>);

/// One fault as it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub kind: Kind,
    /// What was done, to which nodes.
    pub detail: String,
    /// When it was injected and healed (ms since the run began).
    pub start_ms: u64,
    pub end_ms: u64,
    /// What the nodes did.
    pub outcome: String,
    /// What they did wrong, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<String>,
}

/// How long a restarted node may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node started on damaged state has to refuse it.
const REFUSE_WITHIN: Duration = Duration::from_secs(10);
/// Hostile connections opened per hostile fault (the bound of the fault).
const HOSTILE_CONNS: usize = 60;
/// How long a jury change of a recovery may take (catch-up included).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the faults share with the rest of the run.
pub struct Env {
    pub nodes: Arc<Mutex<Nodes>>,
    pub net: Arc<Partitions>,
    pub key: FrameKey,
    pub dir: PathBuf,
    pub addrs: Vec<String>,
    pub started: Instant,
}

impl Env {
    pub fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Nodes) -> T) -> T {
        let mut g = self
            .nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    fn count(&self) -> u32 {
        self.addrs.len() as u32
    }

    /// Node `i`'s status, if it answers within half a second.
    pub async fn status(&self, i: u32) -> Option<NodeStatus> {
        let mut c = probe_client(&self.key);
        c.status(&self.addrs[i as usize], u32::MAX).await.ok()
    }

    /// Every node's status, probed concurrently.
    pub async fn statuses(&self) -> Vec<Option<NodeStatus>> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.count() {
            let (key, addr) = (self.key.clone(), self.addrs[i as usize].clone());
            set.spawn(async move {
                let mut c = probe_client(&key);
                (i, c.status(&addr, u32::MAX).await.ok())
            });
        }
        let mut out = vec![None; self.count() as usize];
        while let Some(r) = set.join_next().await {
            if let Ok((i, s)) = r {
                out[i as usize] = s;
            }
        }
        out
    }

    /// The node leading `cell` at the highest ballot, if any answers as its leader.
    pub async fn leader_of(&self, cell: &str) -> Option<u32> {
        let mut best = None;
        for s in self.statuses().await.into_iter().flatten() {
            for c in s
                .cells
                .iter()
                .filter(|c| c.cell == cell && c.role == Role::Leader)
            {
                if best.is_none_or(|(b, _)| c.promised > b) {
                    best = Some((c.promised, s.node.0));
                }
            }
        }
        best.map(|(_, n)| n)
    }

    /// Waits until node `i` answers (any standing); `Err` with its log's last line if its
    /// process exits or `limit` passes first.
    pub async fn wait_answering(&self, i: u32, limit: Duration) -> Result<NodeStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.status(i).await {
                return Ok(s);
            }
            if !self.with(|n| n.running(i)) {
                return Err(format!(
                    "n{i} exited: {}",
                    last_line(&self.with(|n| n.log(i)))
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("n{i} did not answer within {} s", limit.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Restarts node `i` (killed) and waits until it answers; the failure, if not.
    async fn restart(&self, i: u32, extra: &[&str]) -> Option<String> {
        if let Err(e) = self.with(|n| n.start(i, extra)) {
            return Some(format!("cannot restart n{i}: {e:#}"));
        }
        self.wait_answering(i, START_TIMEOUT).await.err()
    }
}

/// The last non-empty line of a log file (what a node said when it exited).
pub fn last_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty log)")
        .chars()
        .take(400)
        .collect()
}

/// The nemesis: a seeded schedule of faults.
pub struct Nemesis {
    pub env: Arc<Env>,
    pub rng: Rng,
    /// How many faults of each kind it injected (alternates their variants).
    turns: [u64; 7],
    /// Nodes that lost their state and rejoined as a new instance: never again (a rejoined
    /// instance whose lost state was added to a cell twice is the open ABA case of
    /// `impl/README.md`, "Amnesia").
    rejoined: BTreeSet<u32>,
    /// The disk damage of the first disk fault (then each in turn).
    disk_offset: u64,
}

/// How a node must answer damage to its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    /// A partial record appended after the last one (what a crash leaves of an append that
    /// was never acknowledged): it must start, the tail discarded.
    TornTail,
    /// One bit flipped in the middle of the log: it must refuse to start.
    BitFlip,
    /// The newest segment deleted: it must refuse to start.
    DeleteNewest,
    /// The data directory wiped: it must not vote (it exits when a peer recalls its old
    /// instance, or stays on probation).
    Wipe,
}

impl Nemesis {
    pub fn new(env: Arc<Env>, seed: u64) -> Nemesis {
        let mut rng = Rng(seed ^ 0xA076_1D64_78BD_642F);
        let disk_offset = rng.below(4);
        Nemesis {
            env,
            rng,
            turns: [0; 7],
            rejoined: BTreeSet::new(),
            disk_offset,
        }
    }

    fn turn(&mut self, kind: Kind) -> u64 {
        let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.turns[i] += 1;
        self.turns[i] - 1
    }

    fn hold(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(min_ms + self.rng.below(max_ms - min_ms + 1))
    }

    /// A random set of `k` nodes.
    fn pick(&mut self, k: u32) -> BTreeSet<u32> {
        let mut all: Vec<u32> = (0..self.env.count()).collect();
        for i in (1..all.len()).rev() {
            all.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        all.into_iter().take(k as usize).collect()
    }

    fn cell(&mut self, cells: u32) -> String {
        format!("c{}", self.rng.below(u64::from(cells)))
    }

    /// Injects one fault of `kind`, holds it, heals it, and checks the outcome.
    pub async fn inject(&mut self, kind: Kind, cells: u32) -> Fault {
        let start_ms = self.env.ms();
        let (detail, outcome, anomaly) = match kind {
            Kind::Kill => self.kill(cells).await,
            Kind::Pause => self.pause().await,
            Kind::Partition => self.partition(cells).await,
            Kind::Disk => self.disk(cells).await,
            Kind::RestartAll => self.restart_all().await,
            Kind::DuplicateProcess => self.duplicate().await,
            Kind::Hostile => self.hostile().await,
        };
        Fault {
            kind,
            detail,
            start_ms,
            end_ms: self.env.ms(),
            outcome,
            anomaly,
        }
    }

    /// SIGKILL of one node (every other time the leader of a cell), restarted after a hold.
    async fn kill(&mut self, cells: u32) -> (String, String, Option<String>) {
        let cell = self.cell(cells);
        let leader = if self.turn(Kind::Kill).is_multiple_of(2) {
            self.env.leader_of(&cell).await
        } else {
            None
        };
        let i = leader.unwrap_or_else(|| *self.pick(1).first().unwrap_or(&0));
        let who = match leader {
            Some(_) => format!("n{i} (leader of {cell})"),
            None => format!("n{i}"),
        };
        self.env.with(|n| n.kill(i));
        let hold = self.hold(300, 2000);
        tokio::time::sleep(hold).await;
        let failure = self.env.restart(i, &[]).await;
        let outcome = match &failure {
            None => format!("restarted after {} ms and answering", hold.as_millis()),
            Some(f) => format!("restart failed: {f}"),
        };
        (format!("SIGKILL {who}"), outcome, failure)
    }

    /// SIGSTOP of a minority (even turns) or a majority (odd turns), SIGCONT after a hold.
    async fn pause(&mut self) -> (String, String, Option<String>) {
        let n = self.env.count();
        let f = (n - 1) / 2;
        let k = if self.turn(Kind::Pause).is_multiple_of(2) {
            1 + self.rng.below(u64::from(f.max(1))) as u32
        } else {
            f + 1
        };
        let set = self.pick(k);
        self.env
            .with(|nodes| set.iter().for_each(|i| nodes.pause(*i)));
        // A majority held longer than the clients' deadline: outcomes become unknown.
        let hold = if k > f {
            self.hold(1500, 3000)
        } else {
            self.hold(500, 2500)
        };
        tokio::time::sleep(hold).await;
        self.env
            .with(|nodes| set.iter().for_each(|i| nodes.resume(*i)));
        let side = if k > f { "a majority" } else { "a minority" };
        (
            format!("SIGSTOP {} ({side})", show(&set)),
            format!("SIGCONT after {} ms", hold.as_millis()),
            None,
        )
    }

    /// Cuts the network: the leader of a cell alone (even turns) or a random minority from
    /// the rest (odd turns), both ways, healed after a hold.
    async fn partition(&mut self, cells: u32) -> (String, String, Option<String>) {
        let n = self.env.count();
        let cell = self.cell(cells);
        let (side, what) = if self.turn(Kind::Partition).is_multiple_of(2) {
            match self.env.leader_of(&cell).await {
                Some(l) => (
                    BTreeSet::from([l]),
                    format!("n{l} (leader of {cell}) isolated"),
                ),
                None => {
                    let s = self.pick(1);
                    let w = format!("{} isolated", show(&s));
                    (s, w)
                }
            }
        } else {
            let k = 1 + self.rng.below(u64::from(((n - 1) / 2).max(1))) as u32;
            let s = self.pick(k);
            let rest: BTreeSet<u32> = (0..n).filter(|i| !s.contains(i)).collect();
            let w = format!("{} | {}", show(&s), show(&rest));
            (s, w)
        };
        self.env.net.split(&side, n);
        let pairs = self.env.net.cut_pairs();
        let hold = self.hold(1000, 3000);
        tokio::time::sleep(hold).await;
        self.env.net.heal();
        (
            format!("partition {what} ({pairs} node pairs cut both ways)"),
            format!("healed after {} ms", hold.as_millis()),
            None,
        )
    }

    /// Damage to a stopped node's files, then a restart: a torn tail must be recovered;
    /// a flipped bit, a deleted newest segment and a wiped directory must be refused, and
    /// the node then re-enters as a new instance (`--rejoin` on a wiped directory) and is
    /// removed from and added back to each of its cells' juries.
    async fn disk(&mut self, cells: u32) -> (String, String, Option<String>) {
        let variants = [
            Damage::TornTail,
            Damage::BitFlip,
            Damage::DeleteNewest,
            Damage::Wipe,
        ];
        // The variants in turn, from one the seed picks.
        let turn = self.turn(Kind::Disk) + self.disk_offset;
        let mut damage = variants[(turn % 4) as usize];
        let fresh: Vec<u32> = (0..self.env.count())
            .filter(|i| !self.rejoined.contains(i))
            .collect();
        // At most a minority minus one of the nodes lose their state in a run, so that the
        // cells keep a majority of old members through the other faults.
        let lost_ok = (self.rejoined.len() as u32) < (self.env.count() - 1) / 2;
        if damage != Damage::TornTail && (fresh.is_empty() || !lost_ok) {
            damage = Damage::TornTail;
        }
        let i = if damage == Damage::TornTail {
            *self.pick(1).first().unwrap_or(&0)
        } else {
            fresh[self.rng.below(fresh.len() as u64) as usize]
        };
        self.env.with(|n| n.kill(i));
        let data = self.env.with(|n| n.data_dir(i));
        let mut rng = self.rng.clone();
        let (done, damage) = match apply_damage(&data, damage, &mut rng) {
            Ok(x) => x,
            Err(e) => {
                let failure = self.env.restart(i, &[]).await;
                return (
                    format!("disk damage to n{i}"),
                    format!("could not damage its files: {e:#}"),
                    failure,
                );
            }
        };
        self.rng = rng;
        let detail = format!("n{i} stopped; {done}");
        if let Err(e) = self.env.with(|n| n.start(i, &[])) {
            return (
                detail,
                String::new(),
                Some(format!("cannot restart n{i}: {e:#}")),
            );
        }
        let served = self.refused_or_served(i).await;
        match (damage, served) {
            (Damage::TornTail, Ok(())) => (detail, "started; the torn tail discarded".into(), None),
            (Damage::TornTail, Err(why)) => {
                let a = format!("n{i} did not recover a torn tail: {why}");
                self.env.with(|n| n.kill(i));
                self.rejoined.insert(i);
                let rec = self.recover_lost(i, cells).await;
                (detail, rec.unwrap_or_else(|e| e), Some(a))
            }
            (_, Ok(())) => {
                let a = format!("n{i} started and serves as a member from damaged state");
                (detail, "started as a member".into(), Some(a))
            }
            (_, Err(why)) => {
                self.env.with(|n| n.kill(i));
                self.rejoined.insert(i);
                match self.recover_lost(i, cells).await {
                    Ok(how) => (detail, format!("refused ({why}); {how}"), None),
                    Err(e) => (
                        detail,
                        format!("refused ({why})"),
                        Some(format!("n{i} could not be recovered: {e}")),
                    ),
                }
            }
        }
    }

    /// After a restart on damaged state: `Ok` once the node answers as a member, `Err`
    /// with what it said if it exits or stays on probation.
    async fn refused_or_served(&self, i: u32) -> Result<(), String> {
        let deadline = Instant::now() + REFUSE_WITHIN;
        let mut last = String::from("never answered");
        while Instant::now() < deadline {
            if !self.env.with(|n| n.running(i)) {
                return Err(format!(
                    "exited: {}",
                    last_line(&self.env.with(|n| n.log(i)))
                ));
            }
            if let Some(s) = self.env.status(i).await {
                if s.standing == Standing::Member {
                    return Ok(());
                }
                last = format!("on probation after {} s", REFUSE_WITHIN.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last)
    }

    /// Re-enters node `i`, whose state was lost, as a new instance (`--rejoin` on a wiped
    /// directory), then removes its old membership from each cell and adds the new
    /// instance back (the new copy is taught first): how it went.
    async fn recover_lost(&mut self, i: u32, cells: u32) -> Result<String, String> {
        let data = self.env.with(|n| n.data_dir(i));
        let _ = fs::remove_dir_all(&data);
        if let Some(f) = self.env.restart(i, &["--rejoin"]).await {
            return Err(format!("--rejoin failed: {f}"));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.env.status(i).await {
                Some(s) if s.standing == Standing::Member => break,
                _ if Instant::now() > deadline => {
                    return Err("the rejoined instance never left probation".into())
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let file = read_cluster(&self.env.dir).map_err(|e| format!("{e:#}"))?;
        let node = NodeId(i);
        let started = Instant::now();
        for c in 0..cells {
            let cell = format!("c{c}");
            for change in [JuryChange::Remove { node }, JuryChange::Add { node }] {
                let deadline = Instant::now() + CHANGE_TIMEOUT;
                let seeds = self.env.addrs.clone();
                let chosen = propose(&seeds, &self.env.key, &cell, change, deadline)
                    .await
                    .map_err(|e| format!("{cell}: {change}: {e:#}"))?;
                let (_, _, in_force) =
                    chosen.map_err(|why| format!("{cell} refused {change}: {why}"))?;
                let joining = change.joining();
                wait_in_force(&file, &self.env.key, &cell, joining, in_force, deadline)
                    .await
                    .map_err(|e| format!("{cell}: {change}: {e:#}"))?;
            }
        }
        Ok(format!(
            "rejoined as a new instance, removed from and added back to {cells} cells in {:.1} s",
            started.elapsed().as_secs_f64()
        ))
    }

    /// SIGKILL of every node at once, then all restarted.
    async fn restart_all(&mut self) -> (String, String, Option<String>) {
        self.turn(Kind::RestartAll);
        let slots = self
            .env
            .statuses()
            .await
            .into_iter()
            .flatten()
            .flat_map(|s| s.cells.into_iter().map(|c| c.commit))
            .max()
            .unwrap_or(0);
        let n = self.env.count();
        self.env.with(|nodes| (0..n).for_each(|i| nodes.kill(i)));
        let started = Instant::now();
        let mut failures = Vec::new();
        for i in 0..n {
            let extra: &[&str] = &[];
            if let Err(e) = self.env.with(|nodes| nodes.start(i, extra)) {
                failures.push(format!("n{i}: {e:#}"));
            }
        }
        for i in 0..n {
            if let Err(e) = self.env.wait_answering(i, START_TIMEOUT).await {
                failures.push(e);
            }
        }
        let detail = format!("SIGKILL of all {n} nodes at up to {slots} slots per cell");
        if failures.is_empty() {
            let t = started.elapsed().as_secs_f64();
            (
                detail,
                format!("all restarted and answering in {t:.1} s"),
                None,
            )
        } else {
            (detail, String::new(), Some(failures.join("; ")))
        }
    }

    /// A second process on a live node's data directory (on other ports): it must exit
    /// at once, and the node keep serving.
    async fn duplicate(&mut self) -> (String, String, Option<String>) {
        self.turn(Kind::DuplicateProcess);
        let i = *self.pick(1).first().unwrap_or(&0);
        let ports = (free_port(), free_port());
        let (Ok(p), Ok(m)) = ports else {
            return (
                format!("second process on n{i}"),
                "no free port".into(),
                None,
            );
        };
        let listen = format!("127.0.0.1:{p}");
        let metrics = format!("127.0.0.1:{m}");
        let started = self.env.with(|n| n.start_duplicate(i, &listen, &metrics));
        let detail = format!("second process on n{i}'s live data directory");
        let log = match started {
            Ok(log) => log,
            Err(e) => return (detail, format!("cannot start it: {e:#}"), None),
        };
        let deadline = Instant::now() + REFUSE_WITHIN;
        let exited = loop {
            let done = self.env.with(|n| {
                n.extra
                    .last_mut()
                    .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
            });
            if done || Instant::now() > deadline {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.env.with(|n| {
            if let Some(mut c) = n.extra.pop() {
                let _ = c.kill();
                let _ = c.wait();
            }
        });
        let still = self.env.wait_answering(i, START_TIMEOUT).await.err();
        if !exited {
            let a = format!(
                "the second process on n{i}'s data directory ran for {} s",
                REFUSE_WITHIN.as_secs()
            );
            return (detail, "not refused".into(), Some(a));
        }
        let said = last_line(&log);
        match still {
            None => (detail, format!("refused: {said}"), None),
            Some(e) => (
                detail,
                format!("refused: {said}"),
                Some(format!("n{i} stopped serving: {e}")),
            ),
        }
    }

    /// Hostile connections to one node: garbage, stalled partial frames and idle
    /// connections ([`HOSTILE_CONNS`] in all), held open; the node must keep answering.
    async fn hostile(&mut self) -> (String, String, Option<String>) {
        self.turn(Kind::Hostile);
        let i = *self.pick(1).first().unwrap_or(&0);
        let addr = self.env.addrs[i as usize].clone();
        let mut conns = Vec::new();
        let (mut garbage, mut stalled, mut idle) = (0, 0, 0);
        for k in 0..HOSTILE_CONNS {
            let Ok(Ok(mut s)) = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(&addr),
            )
            .await
            else {
                continue;
            };
            let bytes: Vec<u8> = match k % 3 {
                0 => {
                    garbage += 1;
                    (0..64).map(|_| self.rng.next() as u8).collect()
                }
                1 => {
                    stalled += 1;
                    // A length prefix announcing a frame that never comes whole.
                    let mut b = 1000u32.to_be_bytes().to_vec();
                    b.extend_from_slice(b"partial");
                    b
                }
                _ => {
                    idle += 1;
                    Vec::new()
                }
            };
            let _ = s.write_all(&bytes).await;
            conns.push(s);
        }
        let hold = self.hold(1000, 2500);
        tokio::time::sleep(hold).await;
        let answered = self.env.wait_answering(i, Duration::from_secs(5)).await;
        drop(conns);
        let detail = format!(
            "n{i}: {garbage} garbage, {stalled} stalled partial frames, {idle} idle connections held {} ms",
            hold.as_millis()
        );
        match answered {
            Ok(_) => (detail, "kept answering".into(), None),
            Err(e) => (
                detail,
                String::new(),
                Some(format!(
                    "n{i} stopped answering under hostile connections: {e}"
                )),
            ),
        }
    }
}

fn show(set: &BTreeSet<u32>) -> String {
    let v: Vec<String> = set.iter().map(|i| format!("n{i}")).collect();
    format!("{{{}}}", v.join(","))
}

/// The WAL segments of a data directory, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(data.join("wal"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Damages a stopped node's files; what was done, and the damage actually applied (a flip
/// in a log too short to have a middle becomes a torn tail).
fn apply_damage(data: &Path, damage: Damage, rng: &mut Rng) -> Result<(String, Damage)> {
    let segs = segments(data);
    let Some(newest) = segs.last().cloned() else {
        anyhow::bail!("no WAL segment in {}", data.display());
    };
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match damage {
        Damage::Wipe => {
            fs::remove_dir_all(data)?;
            fs::create_dir_all(data)?;
            Ok(("its data directory wiped".into(), damage))
        }
        Damage::DeleteNewest => {
            fs::remove_file(&newest)?;
            Ok((
                format!("its newest WAL segment {} deleted", name(&newest)),
                damage,
            ))
        }
        Damage::BitFlip => {
            // In an older segment anywhere, or in the first half of the only one: never in
            // the last record, which a reader cannot tell from a torn write.
            let (path, range) = if segs.len() > 1 {
                let p = segs[rng.below(segs.len() as u64 - 1) as usize].clone();
                let len = fs::metadata(&p)?.len();
                (p, 0..len)
            } else {
                let len = fs::metadata(&newest)?.len();
                (newest.clone(), 0..len / 2)
            };
            if range.end < 128 {
                return apply_damage(data, Damage::TornTail, rng);
            }
            let at = range.start + rng.below(range.end - range.start);
            let mut bytes = fs::read(&path)?;
            let bit = rng.below(8) as u8;
            bytes[at as usize] ^= 1 << bit;
            write_synced(&path, &bytes)?;
            Ok((
                format!("bit {bit} of byte {at} of {} flipped", name(&path)),
                damage,
            ))
        }
        Damage::TornTail => {
            let mut bytes = fs::read(&newest)?;
            let k = 1 + rng.below(40) as usize;
            bytes.extend((0..k).map(|_| rng.next() as u8));
            write_synced(&newest, &bytes)?;
            Ok((
                format!(
                    "a torn record of {k} bytes after the end of {}",
                    name(&newest)
                ),
                damage,
            ))
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    std::io::Write::write_all(&mut &f, bytes)?;
    f.sync_all()?;
    Ok(())
}
