//! The node processes the nemesis runs: their command lines, every process it started
//! (restarts and duplicates included), and stopping them all, always — on drop, so also on
//! an error or Ctrl-C.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::{ClusterFile, NodeEntry};

/// The cluster's node processes.
pub struct Nodes {
    pub exe: PathBuf,
    pub dir: PathBuf,
    pub key_file: PathBuf,
    /// Each node's listen address (what clients are told).
    pub addrs: Vec<String>,
    /// Each node's metrics address.
    pub metrics: Vec<String>,
    /// Each node's `--dial` argument (its higher peers through their pair's proxy).
    pub dial: Vec<String>,
    pub cells: u32,
    /// Arguments every node gets besides its own (timeouts, segment size, an injected bug).
    pub common: Vec<String>,
    /// The running process of each node, if any.
    pub children: Vec<Option<Child>>,
    /// How many times each node was started (names its log file).
    pub runs: Vec<u32>,
    /// Nodes stopped by SIGSTOP and not yet continued.
    pub paused: Vec<bool>,
    /// Other processes started (second processes on a live data directory).
    pub extra: Vec<Child>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

impl Nodes {
    pub fn count(&self) -> u32 {
        self.addrs.len() as u32
    }

    pub fn data_dir(&self, i: u32) -> PathBuf {
        self.dir.join("data").join(format!("n{i}"))
    }

    /// The log file of node `i`'s current (latest) run.
    pub fn log(&self, i: u32) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("n{i}.run{}.log", self.runs[i as usize]))
    }

    /// Node `i`'s command line, listening on `listen` and serving metrics on `metrics`.
    pub fn args(&self, i: u32, listen: &str, metrics: &str) -> Vec<String> {
        let peers: Vec<String> = (0..self.count())
            .filter(|j| *j != i)
            .map(|j| format!("{j}={}", self.addrs[j as usize]))
            .collect();
        let mut a: Vec<String> = [
            "node",
            "--id",
            &i.to_string(),
            "--listen",
            listen,
            "--peers",
            &peers.join(","),
            "--dial",
            &self.dial[i as usize],
            "--data-dir",
            &self.data_dir(i).display().to_string(),
            "--key-file",
            &self.key_file.display().to_string(),
            "--metrics-listen",
            metrics,
            "--cells",
            &self.cells.to_string(),
            "--trace-dir",
            &self.dir.join("traces").display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.extend(self.common.iter().cloned());
        a
    }

    fn spawn(&self, args: &[String], log: &Path) -> Result<Child> {
        let out =
            fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        Command::new(&self.exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("cannot start a node process")
    }

    /// Starts node `i` (a new run; `extra` arguments such as `--rejoin`).
    pub fn start(&mut self, i: u32, extra: &[&str]) -> Result<()> {
        self.runs[i as usize] += 1;
        let mut args = self.args(i, &self.addrs[i as usize], &self.metrics[i as usize]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = self.spawn(&args, &self.log(i))?;
        self.children[i as usize] = Some(child);
        self.paused[i as usize] = false;
        self.write_cluster_file()
    }

    /// Starts a second process on node `i`'s data directory, on other ports.
    pub fn start_duplicate(&mut self, i: u32, listen: &str, metrics: &str) -> Result<PathBuf> {
        let args = self.args(i, listen, metrics);
        let log = self
            .dir
            .join("logs")
            .join(format!("n{i}.duplicate{}.log", self.extra.len()));
        let child = self.spawn(&args, &log)?;
        self.extra.push(child);
        Ok(log)
    }

    /// Whether node `i`'s process is running (stopped counts as running).
    pub fn running(&mut self, i: u32) -> bool {
        match &mut self.children[i as usize] {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The pid of node `i`'s process, if it runs.
    pub fn pid(&mut self, i: u32) -> Option<u32> {
        self.running(i)
            .then(|| self.children[i as usize].as_ref().map(Child::id))
            .flatten()
    }

    /// SIGKILLs node `i` (continued first, if stopped) and reaps it.
    pub fn kill(&mut self, i: u32) {
        if let Some(mut c) = self.children[i as usize].take() {
            if self.paused[i as usize] {
                signal(c.id(), "-CONT");
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused[i as usize] = false;
    }

    /// SIGSTOPs node `i`.
    pub fn pause(&mut self, i: u32) {
        if let Some(pid) = self.pid(i) {
            signal(pid, "-STOP");
            self.paused[i as usize] = true;
        }
    }

    /// SIGCONTs node `i` if it is stopped.
    pub fn resume(&mut self, i: u32) {
        if self.paused[i as usize] {
            if let Some(pid) = self.pid(i) {
                signal(pid, "-CONT");
            }
            self.paused[i as usize] = false;
        }
    }

    /// Stops every process: SIGTERM (a node flushes its traces) and up to `grace` to exit,
    /// then SIGKILL.
    pub fn stop_all(&mut self, grace: Duration) {
        for i in 0..self.count() {
            self.resume(i);
            if let Some(pid) = self.pid(i) {
                signal(pid, "-TERM");
            }
        }
        let deadline = Instant::now() + grace;
        while (0..self.count()).any(|i| self.running(i)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_all();
    }

    /// SIGKILLs and reaps every process started.
    pub fn kill_all(&mut self) {
        for i in 0..self.count() {
            self.kill(i);
        }
        for mut c in self.extra.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.write_cluster_file();
    }

    /// Writes `DIR/cluster.json` as `physalia cluster up` does, with the current pids, so
    /// that `cluster status` and `cluster down` work on the nemesis's cluster too.
    pub fn write_cluster_file(&mut self) -> Result<()> {
        let mut nodes = Vec::new();
        for i in 0..self.count() {
            nodes.push(NodeEntry {
                id: i,
                addr: self.addrs[i as usize].clone(),
                metrics: self.metrics[i as usize].clone(),
                pid: self.pid(i).unwrap_or(0),
                data_dir: self.data_dir(i),
                log: self.log(i),
                domains: None,
                command: std::iter::once(self.exe.display().to_string())
                    .chain(self.args(i, &self.addrs[i as usize], &self.metrics[i as usize]))
                    .collect(),
            });
        }
        let file = ClusterFile {
            key_file: self.key_file.clone(),
            cells: self.cells,
            nodes,
        };
        fs::write(
            self.dir.join("cluster.json"),
            serde_json::to_string_pretty(&file)?,
        )?;
        Ok(())
    }
}

/// Sends `sig` (`-KILL`, `-STOP`, ...) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}
