//! A scenario environment in the style of etcd raft's `rafttest`: nodes of one cell, an
//! in-order network of in-flight messages, per-node storage, and commands that drive the
//! nodes step by step while logging what each step did.
//!
//! Storage syncs at once by default: after a step that asks for a write, the write is
//! applied to the node's storage and the node steps `Persisted`, releasing what it held.
//! `sync N off` leaves node N's writes unsynced (lost by `crash N`) until `sync N on`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use num_bigint::BigInt;
use physalia_impl::core::{Boot, Cell, ClientReply, Durable, Input, Options, Output};
use physalia_traces::{
    ClientId, Condition, Config, Envelope, JuryChange, Key, NodeId, Persist, Role, TimeoutKind,
    TraceEvent, Txn, Value, WriteOp,
};

/// One node: its replica (None while crashed), its storage and its boot record.
struct Node {
    cell: Option<Cell>,
    storage: Durable,
    unsynced: Vec<Persist>,
    sync: bool,
    boot: Boot,
    shown: String,
}

/// The scenario environment.
pub struct Env {
    config: Config,
    opts: Options,
    nodes: BTreeMap<NodeId, Node>,
    net: Vec<Envelope>,
    isolated: BTreeSet<NodeId>,
    now: u64,
    out: String,
    /// Every trace event of the run, in step order.
    pub trace: Vec<TraceEvent>,
}

impl Env {
    /// `n` nodes of the initial jury and `spares` nodes outside it, each with a learner's
    /// copy (they vote once a jury change adds them).
    pub fn with_spares(n: u32, spares: u32, opts: Options) -> Env {
        let mut env = Env::new(n, opts);
        for s in n..n + spares {
            let id = NodeId(s);
            let boot = Boot::default();
            let (cell, out) = Cell::new_learner(id, env.config.clone(), env.opts.clone(), boot, 0);
            let node = Node {
                cell: Some(cell),
                storage: Durable {
                    learner: true,
                    ..Durable::default()
                },
                unsynced: Vec::new(),
                sync: true,
                boot,
                shown: String::new(),
            };
            env.nodes.insert(id, node);
            env.trace.push(out.trace);
        }
        env
    }

    pub fn new(n: u32, opts: Options) -> Env {
        let config = Config::with_nodes(n);
        let mut env = Env {
            config: config.clone(),
            opts,
            nodes: BTreeMap::new(),
            net: Vec::new(),
            isolated: BTreeSet::new(),
            now: 0,
            out: String::new(),
            trace: Vec::new(),
        };
        for id in config.members {
            let (cell, out) = Cell::new(id, env.config.clone(), env.opts.clone(), 0);
            let node = Node {
                cell: Some(cell),
                storage: Durable::default(),
                unsynced: Vec::new(),
                sync: true,
                boot: Boot::default(),
                shown: String::new(),
            };
            env.nodes.insert(id, node);
            env.trace.push(out.trace);
        }
        env
    }

    /// The number of nodes (the initial jury and the spares).
    pub fn nodes(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The size of the initial jury.
    pub fn jury_size(&self) -> u32 {
        self.config.members.len() as u32
    }

    /// The pipeline window α.
    pub fn alpha(&self) -> u64 {
        self.opts.alpha
    }

    /// Runs one command line and returns its log.
    pub fn run(&mut self, line: &str) -> Result<String, String> {
        self.out.clear();
        self.now += 10;
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = words.split_first().ok_or("empty command")?;
        match *cmd {
            "election" => self.timeout(node(args, 0)?, TimeoutKind::Election),
            "heartbeat" => self.timeout(node(args, 0)?, TimeoutKind::Heartbeat),
            "prepare" => self.timeout(node(args, 0)?, TimeoutKind::Prepare),
            "propose" => self.propose(args)?,
            "read" => self.local_read(args)?,
            "deliver-msgs" => self.deliver(&nodes(args)?),
            "drop-msgs" => self.drop_msgs(&nodes(args)?),
            "stabilize" => self.stabilize(),
            "isolate" => {
                self.isolated.insert(node(args, 0)?);
            }
            "heal" => self.isolated.clear(),
            "crash" => self.crash(node(args, 0)?),
            "lose" => self.lose(node(args, 0)?, num(args.get(1).ok_or("lose N K")?)?),
            "restart" => self.restart(node(args, 0)?),
            "retire" => self.retire(node(args, 0)?),
            "sync" => self.set_sync(node(args, 0)?, args.get(1) == Some(&"on")),
            "status" => self.status(),
            _ => return Err(format!("unknown command {cmd:?}")),
        }
        Ok(std::mem::take(&mut self.out))
    }

    fn cell(&mut self, id: NodeId) -> Option<&mut Cell> {
        self.nodes.get_mut(&id).and_then(|n| n.cell.as_mut())
    }

    fn timeout(&mut self, id: NodeId, kind: TimeoutKind) {
        let label = format!("timeout {kind:?}").to_lowercase();
        self.step(id, Input::Timeout { timer: kind }, &label);
    }

    fn propose(&mut self, args: &[&str]) -> Result<(), String> {
        let id = node(args, 0)?;
        let client = ClientId(num(args.get(1).ok_or("propose N CLIENT OP TXN")?)?);
        let op = num(args.get(2).ok_or("propose N CLIENT OP TXN")?)?;
        let txn = parse_txn(&args[3..])?;
        let label = format!("request c{}#{op} {}", client.0, txn);
        self.step(id, Input::Request { client, op, txn }, &label);
        Ok(())
    }

    fn local_read(&mut self, args: &[&str]) -> Result<(), String> {
        let id = node(args, 0)?;
        let client = ClientId(num(args.get(1).ok_or("read N CLIENT MIN KEY...")?)?);
        let min_applied = num(args.get(2).ok_or("read N CLIENT MIN KEY...")?)?;
        let keys: Vec<Key> = args[3..].iter().map(|k| Key::from(*k)).collect();
        let label = format!("local read c{} min={min_applied}", client.0);
        let input = Input::LocalRead {
            client,
            keys,
            min_applied,
        };
        self.step(id, input, &label);
        Ok(())
    }

    /// Steps node `id` (if it is up), logs the step, and handles its output.
    fn step(&mut self, id: NodeId, input: Input, label: &str) {
        let now = self.now;
        let Some(cell) = self.cell(id) else {
            let _ = writeln!(self.out, "{id} is down: {label} ignored");
            return;
        };
        let out = cell.step(now, input);
        let _ = writeln!(self.out, "{id} {label}");
        self.handle(id, out);
    }

    fn handle(&mut self, id: NodeId, out: Output) {
        if let Some(p) = &out.persist {
            let w: Vec<String> = p.writes.iter().map(|w| w.to_string()).collect();
            let _ = writeln!(self.out, "  persist #{}: {}", p.id, w.join(", "));
        }
        for s in out.trace.sent.iter().filter(|s| s.after_persist.is_some()) {
            let _ = writeln!(self.out, "  hold -> {}: {}", s.to, s.msg);
        }
        for env in &out.send {
            let _ = writeln!(self.out, "  send -> {}: {}", env.to, env.msg);
        }
        for r in &out.replies {
            let line = match r {
                ClientReply::Msg { client, msg } => format!("{client}: {}", msg),
                ClientReply::LocalRead { client, read } => {
                    format!("{client}: {}", read)
                }
            };
            let _ = writeln!(self.out, "  reply -> {line}");
        }
        self.show_state(id);
        self.net.extend(out.send);
        self.trace.push(out.trace);
        if let Some(p) = out.persist {
            self.store(id, p);
        }
    }

    /// Prints the node's state if it changed since it was last shown.
    fn show_state(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(cell) = node.cell.as_ref() else {
            return;
        };
        let shown = summary(cell);
        if shown != node.shown {
            let _ = writeln!(self.out, "  state: {shown}");
            node.shown = shown;
        }
    }

    /// Writes a persist batch; when syncing, acknowledges it at once.
    fn store(&mut self, id: NodeId, p: Persist) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.unsynced.push(p);
        if node.sync {
            self.sync_now(id);
        }
    }

    fn sync_now(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let Some(last) = node.unsynced.last().map(|p| p.id) else {
            return;
        };
        for p in std::mem::take(&mut node.unsynced) {
            node.storage.apply(&p.writes);
        }
        self.step(
            id,
            Input::Persisted { up_to: last },
            &format!("persisted #{last}"),
        );
    }

    fn set_sync(&mut self, id: NodeId, on: bool) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.sync = on;
        }
        if on {
            self.sync_now(id);
        }
    }

    /// Delivers, in order, every message in flight now addressed to one of `to` (all nodes
    /// if empty); messages sent meanwhile stay in flight.
    fn deliver(&mut self, to: &[NodeId]) {
        let (mine, rest): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.net)
            .into_iter()
            .partition(|e| to.is_empty() || to.contains(&e.to));
        self.net = rest;
        for env in mine {
            let (from, dest) = (env.from(), env.to);
            if self.isolated.contains(&from) || self.isolated.contains(&dest) {
                let _ = writeln!(self.out, "{dest} lost {} from {from}", env.msg.name());
                continue;
            }
            let label = format!("<- {from}: {}", env.msg);
            self.step(dest, Input::deliver(env), &label);
        }
    }

    fn drop_msgs(&mut self, to: &[NodeId]) {
        let before = self.net.len();
        self.net.retain(|e| !(to.is_empty() || to.contains(&e.to)));
        let _ = writeln!(self.out, "dropped {} messages", before - self.net.len());
    }

    fn stabilize(&mut self) {
        for _ in 0..100 {
            if self.net.is_empty() {
                return;
            }
            self.deliver(&[]);
        }
        let _ = writeln!(self.out, "not stable after 100 rounds");
    }

    fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Some(cell) = node.cell.take() {
            node.boot.lamport = cell.lamport();
        }
        let lost = node.unsynced.len();
        node.unsynced.clear();
        node.shown.clear();
        let _ = writeln!(self.out, "{id} crashed (lost {lost} unsynced batches)");
    }

    /// Drops the `k` highest log entries of crashed node `id`'s storage, as a truncated or
    /// repaired log tail does (acknowledged writes included).
    fn lose(&mut self, id: NodeId, k: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        for _ in 0..k {
            let Some(&slot) = node.storage.log.keys().next_back() else {
                break;
            };
            node.storage.log.remove(&slot);
        }
        let left = node.storage.log.len();
        let _ = writeln!(
            self.out,
            "{id} lost its {k} newest log entries ({left} left)"
        );
    }

    fn restart(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        node.boot.inc += 1;
        let (cell, out) = Cell::restart(
            id,
            self.config.clone(),
            self.opts.clone(),
            node.storage.clone(),
            node.boot,
            self.now,
        );
        node.cell = Some(cell);
        let _ = writeln!(self.out, "{id} restarted, incarnation {}", node.boot.inc);
        self.handle(id, out);
    }

    /// Deletes node `id`'s copy of the cell (its removal is in force) and gives it a fresh
    /// learner's copy in a new incarnation.
    fn retire(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("known node");
        if let Some(cell) = node.cell.take() {
            node.boot.lamport = cell.lamport();
            node.boot.inc = cell.inc();
        }
        node.boot.inc += 1;
        node.storage = Durable {
            learner: true,
            ..Durable::default()
        };
        node.unsynced.clear();
        node.shown.clear();
        let (cell, out) = Cell::new_learner(
            id,
            self.config.clone(),
            self.opts.clone(),
            node.boot,
            self.now,
        );
        node.cell = Some(cell);
        let _ = writeln!(
            self.out,
            "{id} deleted its copy; a learner's copy, incarnation {}",
            node.boot.inc
        );
        self.handle(id, out);
    }

    fn status(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = &self.nodes[&id];
            let Some(cell) = node.cell.as_ref() else {
                let _ = writeln!(self.out, "{id}: down");
                continue;
            };
            let log: Vec<String> = cell
                .log()
                .iter()
                .map(|(s, (b, c))| format!("{s}@{b}={}", c))
                .collect();
            let kv: Vec<String> = cell
                .state_machine()
                .entries()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(self.out, "{id}: {}", summary(cell));
            let _ = writeln!(self.out, "  log: [{}]", log.join(", "));
            let _ = writeln!(self.out, "  kv: {{{}}}", kv.join(" "));
            let configs: Vec<String> = cell
                .state_machine()
                .jury()
                .configs()
                .map(|(start, epoch, c)| {
                    let m: Vec<String> = c.members.iter().map(|n| n.to_string()).collect();
                    format!("{start}:[{}]#{epoch}", m.join(" "))
                })
                .collect();
            if configs.len() > 1 {
                let _ = writeln!(self.out, "  jury: {}", configs.join(" "));
            }
            if cell.base() > 0 {
                let _ = writeln!(self.out, "  snapshot: slots < {}", cell.base());
            }
        }
    }
}

fn summary(cell: &Cell) -> String {
    let ballot = match cell.role() {
        Role::Follower => String::new(),
        _ => format!(" b={}", cell.ballot()),
    };
    let since = match cell.since() {
        Some(0) if !cell.is_learner_copy() => String::new(),
        Some(s) => format!(" since={s}"),
        None => " learner".to_owned(),
    };
    format!(
        "{}{ballot} promised={} commit={} applied={}{since}",
        cell.role(),
        cell.promised(),
        cell.commit(),
        cell.state_machine().applied()
    )
}

fn num(s: &str) -> Result<u64, String> {
    s.trim_start_matches(['n', 'c'])
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))
}

fn node(args: &[&str], i: usize) -> Result<NodeId, String> {
    let s = args.get(i).ok_or("missing node")?;
    Ok(NodeId(num(s)? as u32))
}

fn nodes(args: &[&str]) -> Result<Vec<NodeId>, String> {
    (0..args.len()).map(|i| node(args, i)).collect()
}

/// `123` is an integer, `true`/`false` a boolean, `-` absent, anything else bytes.
fn parse_value(s: &str) -> Option<Value> {
    if s == "-" {
        return None;
    }
    if let Ok(i) = s.parse::<BigInt>() {
        return Some(Value::Int(i));
    }
    Some(match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::Bytes(s.as_bytes().to_vec()),
    })
}

fn required(s: Option<&&str>) -> Result<Value, String> {
    parse_value(s.ok_or("missing value")?).ok_or_else(|| "value required".to_owned())
}

fn parse_txn(w: &[&str]) -> Result<Txn, String> {
    let key = |i: usize| w.get(i).map(|k| Key::from(*k)).ok_or("missing key");
    match w.first().copied() {
        Some("get") => Ok(Txn::Get { key: key(1)? }),
        Some("put") => Ok(Txn::Put {
            key: key(1)?,
            value: required(w.get(2))?,
        }),
        Some("incr") => Ok(Txn::Incr {
            key: key(1)?,
            by: w
                .get(2)
                .unwrap_or(&"1")
                .parse()
                .map_err(|_| "bad increment")?,
        }),
        Some("cas") => Ok(Txn::Cas {
            key: key(1)?,
            expected: parse_value(w.get(2).ok_or("missing expected")?),
            new: required(w.get(3))?,
        }),
        Some("txn") => parse_compound(&w[1..]),
        Some("reconfig") => parse_change(&w[1..]).map(|change| Txn::Reconfig { change }),
        other => Err(format!("unknown transaction {other:?}")),
    }
}

/// `if K=V.. read K.. write K=V|K+=N|del K..` (sections optional, in this order;
/// `K=-` tests for absence).
fn parse_compound(w: &[&str]) -> Result<Txn, String> {
    let (mut conditions, mut reads, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    let mut section = "";
    let mut i = 0;
    while i < w.len() {
        let word = w[i];
        i += 1;
        if matches!(word, "if" | "read" | "write") {
            section = word;
            continue;
        }
        match section {
            "if" => {
                let (k, v) = word.split_once('=').ok_or("condition K=V")?;
                let expected = parse_value(v);
                conditions.push(Condition {
                    key: k.into(),
                    expected,
                });
            }
            "read" => reads.push(Key::from(word)),
            "write" if word == "del" => {
                let key = Key::from(*w.get(i).ok_or("del K")?);
                i += 1;
                writes.push(WriteOp::Delete { key });
            }
            "write" => writes.push(parse_write(word)?),
            _ => return Err(format!("{word:?} outside if/read/write")),
        }
    }
    Ok(Txn::Txn {
        conditions,
        reads,
        writes,
    })
}

/// `replace A B`, `add A` or `remove A` (node numbers).
fn parse_change(w: &[&str]) -> Result<JuryChange, String> {
    let n = |i: usize| -> Result<NodeId, String> {
        let s = w.get(i).ok_or("reconfig replace A B | add A | remove A")?;
        Ok(NodeId(s.parse().map_err(|_| format!("bad node {s:?}"))?))
    };
    match w.first().copied() {
        Some("replace") => Ok(JuryChange::Replace {
            from: n(1)?,
            to: n(2)?,
        }),
        Some("add") => Ok(JuryChange::Add { node: n(1)? }),
        Some("remove") => Ok(JuryChange::Remove { node: n(1)? }),
        other => Err(format!("unknown jury change {other:?}")),
    }
}

fn parse_write(word: &str) -> Result<WriteOp, String> {
    if let Some((k, by)) = word.split_once("+=") {
        let by = by.parse().map_err(|_| "bad increment")?;
        return Ok(WriteOp::Incr { key: k.into(), by });
    }
    let (k, v) = word.split_once('=').ok_or("write K=V")?;
    Ok(WriteOp::Put {
        key: k.into(),
        value: parse_value(v).ok_or("value required")?,
    })
}
