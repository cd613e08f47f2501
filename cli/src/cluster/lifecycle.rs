//! `physalia cluster start|stop|kill|restart --dir DIR --node ID`: one node of a local
//! cluster, run by the exact command line `cluster.json` recorded for it (its output
//! appended to its log). The pid recorded is the latest process's, so `cluster down` stops
//! restarted nodes too.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::node::frame::FrameKey;
use physalia_traces::NodeId;

use super::moves::parse_node;
use super::{alive, probe_client, read_cluster, signal, write_cluster, ClusterFile};

/// Options naming one node of a cluster.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// The node (`2` or `n2`).
    #[arg(long, value_parser = parse_node)]
    pub node: NodeId,
}

/// What to do to the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start it (refused if it runs) and wait until it answers.
    Start,
    /// SIGTERM, then SIGKILL after 5 s.
    Stop,
    /// SIGKILL.
    Kill,
    /// Stop, then start.
    Restart,
}

/// How long a stopped node has to exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a started node has to answer.
const START_WAIT: Duration = Duration::from_secs(20);

/// Runs `cluster start|stop|kill|restart`: exit 0 once done, 1 if a started node did not
/// answer (its log named), 2 on a usage error.
pub fn run(args: &NodeArgs, action: Action) -> Result<u8> {
    let mut file = read_cluster(&args.dir)?;
    let Some(idx) = file.nodes.iter().position(|n| n.id == args.node.0) else {
        bail!(
            "{} is not a node of the cluster in {}",
            args.node,
            args.dir.display()
        );
    };
    let id = args.node;
    if matches!(action, Action::Stop | Action::Kill | Action::Restart) {
        let pid = file.nodes[idx].pid;
        if pid != 0 && alive(pid) {
            stop(pid, action == Action::Kill);
            println!(
                "{id} (pid {pid}) {}",
                if action == Action::Kill {
                    "killed"
                } else {
                    "stopped"
                }
            );
        } else if action != Action::Restart {
            println!("{id} was not running");
        }
    }
    if !matches!(action, Action::Start | Action::Restart) {
        return Ok(0);
    }
    let pid = file.nodes[idx].pid;
    if pid != 0 && alive(pid) {
        bail!("{id} is running (pid {pid}); `cluster restart` restarts it");
    }
    let pid = start(&file, idx)?;
    file.nodes[idx].pid = pid;
    write_cluster(&args.dir, &file)?;
    let key = FrameKey::from_file(&file.key_file)?;
    let addr = file.nodes[idx].addr.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answered = rt.block_on(async {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if probe_client(&key).status(&addr, 0).await.is_ok() {
                return true;
            }
            if !alive(pid) || Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let log = file.nodes[idx].log.display().to_string();
    if answered {
        println!("{id} started (pid {pid}) and answering on {addr}");
        Ok(0)
    } else if alive(pid) {
        println!(
            "{id} started (pid {pid}) but did not answer within {} s; see {log}",
            START_WAIT.as_secs()
        );
        Ok(1)
    } else {
        println!(
            "{id} exited at start; see {log}: {}",
            last_line(Path::new(&log))
        );
        Ok(1)
    }
}

/// SIGTERM (or SIGKILL) and wait until the process is gone, SIGKILL after [`STOP_GRACE`].
fn stop(pid: u32, kill: bool) {
    signal(pid, if kill { "-KILL" } else { "-TERM" });
    let deadline = Instant::now() + STOP_GRACE;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        println!(
            "pid {pid} ignored SIGTERM for {} s; sending SIGKILL",
            STOP_GRACE.as_secs()
        );
        signal(pid, "-KILL");
        while alive(pid) && Instant::now() < deadline + STOP_GRACE {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts node `idx` by its recorded command line, appending to its log; its pid.
fn start(file: &ClusterFile, idx: usize) -> Result<u32> {
    let n = &file.nodes[idx];
    let Some((program, args)) = n.command.split_first() else {
        bail!(
            "cluster.json records no command line for n{} (a cluster from an older version?)",
            n.id
        );
    };
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&n.log)
        .with_context(|| format!("cannot open {}", n.log.display()))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    Ok(child.id())
}

/// The last non-empty line of a file.
fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty log)")
        .chars()
        .take(400)
        .collect()
}
