//! Data-driven protocol scenarios in `impl/testdata/*.txt`, in the style of etcd raft's
//! `testdata/`: each block is a command, a `----` line, and the log of what every node did.
//!
//! After an intended change, re-generate the expected logs with
//! `UPDATE_EXPECT=1 cargo test -p physalia-impl --test scenarios` and review the diff.

mod harness;

use std::path::Path;

use harness::Env;
use physalia_impl::core::Options;
use physalia_traces::{merge, read_str, Config, Header, NodeId, TraceWriter};

/// One `command / ---- / expected` block.
struct Block {
    line: usize,
    command: String,
    expected: String,
}

/// A line of prose (comment or blank) or a block.
enum Item {
    Prose(String),
    Block(Block),
}

/// Parses a scenario file: comments (`#`) and blank lines between blocks are kept verbatim
/// so that an update preserves them.
fn parse(text: &str) -> Result<Vec<Item>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || l.starts_with('#') {
            items.push(Item::Prose(l.to_owned()));
            i += 1;
            continue;
        }
        if lines.get(i + 1) != Some(&"----") {
            return Err(format!("line {}: expected `----` after the command", i + 2));
        }
        let mut j = i + 2;
        while j < lines.len() && !lines[j].is_empty() {
            j += 1;
        }
        let expected = lines[i + 2..j].iter().map(|l| format!("{l}\n")).collect();
        items.push(Item::Block(Block {
            line: i + 1,
            command: l.to_owned(),
            expected,
        }));
        i = j;
    }
    Ok(items)
}

/// Builds an environment from the file's first command, `init N [alpha=A] [queue=Q]
/// [spares=S] [snapshot=K]`.
fn init(command: &str) -> Result<Env, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.first() != Some(&"init") {
        return Err("a scenario starts with `init N [alpha=A]`".to_owned());
    }
    let n: u32 = words.get(1).and_then(|w| w.parse().ok()).ok_or("init N")?;
    let mut opts = Options::default();
    let mut spares = 0;
    for w in &words[2..] {
        if let Some(a) = w.strip_prefix("alpha=") {
            opts.alpha = a.parse().map_err(|_| "alpha=A")?;
        }
        if let Some(q) = w.strip_prefix("queue=") {
            opts.max_queue = q.parse().map_err(|_| "queue=Q")?;
        }
        if let Some(k) = w.strip_prefix("snapshot=") {
            opts.snapshot_every = k.parse().map_err(|_| "snapshot=K")?;
        }
        if let Some(s) = w.strip_prefix("spares=") {
            spares = s.parse().map_err(|_| "spares=S")?;
        }
    }
    Ok(Env::with_spares(n, spares, opts))
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let items = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut env: Option<Env> = None;
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    for item in items {
        let b = match item {
            Item::Prose(p) => {
                rewritten += &p;
                rewritten.push('\n');
                continue;
            }
            Item::Block(b) => b,
        };
        let actual = match (&mut env, b.command.starts_with("init")) {
            (None, true) => init(&b.command).map(|e| {
                env = Some(e);
                "ok\n".to_owned()
            }),
            (Some(e), false) => e.run(&b.command),
            _ => Err("`init` must come first, once".to_owned()),
        }
        .unwrap_or_else(|e| format!("error: {e}\n"));
        if actual != b.expected {
            failures.push(format!(
                "{}:{}: `{}`\n--- expected\n{}--- actual\n{}",
                path.display(),
                b.line,
                b.command,
                b.expected,
                actual
            ));
        }
        rewritten += &format!("{}\n----\n{}", b.command, actual);
    }
    if let Some(env) = &env {
        check_trace(path, env)?;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, rewritten).map_err(|e| e.to_string())?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Writes the run's trace as one file per node, reads the files back and merges them:
/// every step of the scenario must make a valid, causally consistent trace.
fn check_trace(path: &Path, env: &Env) -> Result<(), String> {
    let mut header = Header::new("scenario", Config::with_nodes(env.jury_size()), env.alpha());
    header.nodes = (0..env.nodes()).map(NodeId).collect();
    let mut files = Vec::new();
    for n in 0..env.nodes() {
        let mut w = TraceWriter::new(Vec::new(), &header).map_err(|e| e.to_string())?;
        for ev in env.trace.iter().filter(|e| e.node == NodeId(n)) {
            w.write(ev).map_err(|e| e.to_string())?;
        }
        let text = String::from_utf8(w.into_inner()).map_err(|e| e.to_string())?;
        let name = format!("{}#n{n}", path.display());
        files.push(read_str(&name, &text).map_err(|e| e.to_string())?);
    }
    let merged = merge(files).map_err(|e| e.to_string())?;
    assert_eq!(merged.events.len(), env.trace.len());
    Ok(())
}

fn run(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(format!("{name}.txt"));
    if let Err(e) = run_file(&path) {
        panic!("{e}\n(after an intended change: UPDATE_EXPECT=1 cargo test -p physalia-impl)");
    }
}

#[test]
fn election() {
    run("election");
}

#[test]
fn replication() {
    run("replication");
}

#[test]
fn failover() {
    run("failover");
}

#[test]
fn hole() {
    run("hole");
}

#[test]
fn catchup() {
    run("catchup");
}

#[test]
fn nack() {
    run("nack");
}

#[test]
fn unsynced() {
    run("unsynced");
}

#[test]
fn lagging_leader() {
    run("lagging-leader");
}

#[test]
fn restart() {
    run("restart");
}

#[test]
fn move_a_node() {
    run("move");
}

#[test]
fn a_restarted_follower_that_lost_acknowledged_entries_catches_up() {
    run("lost-tail");
}

#[test]
fn snapshot_install_and_a_full_restart_with_compacted_logs() {
    run("snapshot");
}
