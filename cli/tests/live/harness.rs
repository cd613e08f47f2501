//! A real cluster (`physalia cluster up --trace`) and a `physalia monitor --follow` child
//! reading it, for the tests of the live monitor. Every process started is stopped on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn physalia() -> Command {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
}

/// A cluster of node processes in a directory.
pub struct Cluster {
    pub dir: PathBuf,
    extra: Vec<Child>,
}

impl Cluster {
    /// `physalia cluster up --trace` with `nodes` nodes and `cells` cells in `dir`.
    pub fn up(dir: &Path, nodes: u32, cells: u32) -> Cluster {
        let out = physalia()
            .args(["cluster", "up", "--trace", "--dir"])
            .arg(dir)
            .args(["--nodes", &nodes.to_string(), "--cells", &cells.to_string()])
            .output()
            .expect("runs cluster up");
        assert!(
            out.status.success(),
            "cluster up failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            dir: dir.to_path_buf(),
            extra: Vec::new(),
        }
    }

    /// One client operation (`put k v`, `incr k`, ...) on `cell`; its exit code.
    pub fn client(&self, cell: &str, op: &[&str]) -> Option<i32> {
        physalia()
            .args(["client", "--cluster"])
            .arg(&self.dir)
            .args(["--cell", cell, "--deadline-ms", "3000"])
            .args(op)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runs physalia client")
            .code()
    }

    /// An eventually consistent read of `keys` of `cell` served by node `node` (its
    /// address the only seed); its exit code.
    pub fn read_from(&self, node: u32, cell: &str, keys: &[&str]) -> Option<i32> {
        let doc = self.file();
        let entry = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["id"] == node)
            .expect("the node")
            .clone();
        physalia()
            .arg("client")
            .args(["--seeds", entry["addr"].as_str().expect("addr")])
            .args(["--key-file", doc["key_file"].as_str().expect("key file")])
            .args(["--cell", cell, "--deadline-ms", "3000", "read"])
            .args(keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runs physalia client")
            .code()
    }

    /// `cluster.json`.
    pub fn file(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("cluster.json")).expect("cluster.json");
        serde_json::from_str(&text).expect("cluster.json is JSON")
    }

    /// `count` writes of distinct values to a few keys of `cell`; how many were acknowledged.
    pub fn writes(&self, cell: &str, tag: &str, count: u32) -> u32 {
        (0..count)
            .filter(|i| {
                let (k, v) = (format!("k{}", i % 4), format!("{tag}{i}"));
                self.client(cell, &["put", &k, &v]) == Some(0)
            })
            .count() as u32
    }

    /// `physalia cluster <verb> --node <id>` (kill, start, restart, stop).
    pub fn lifecycle(&self, verb: &str, node: u32) {
        let out = physalia()
            .args(["cluster", verb, "--dir"])
            .arg(&self.dir)
            .args(["--node", &node.to_string()])
            .output()
            .expect("runs cluster lifecycle");
        assert!(
            out.status.success(),
            "cluster {verb} --node {node}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts node `node` by the command line `cluster.json` recorded, with `extra`
    /// arguments appended (the node must be stopped); the child is stopped on drop.
    pub fn start_with(&mut self, node: u32, extra: &[&str]) {
        let doc = self.file();
        let entry = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["id"] == node)
            .expect("the node");
        let command: Vec<&str> = entry["command"]
            .as_array()
            .expect("a recorded command")
            .iter()
            .map(|a| a.as_str().expect("an argument"))
            .collect();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("logs").join(format!("n{node}.extra.log")))
            .expect("log");
        let child = Command::new(command[0])
            .args(&command[1..])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starts the node");
        self.extra.push(child);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.extra {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = physalia()
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

/// A `physalia monitor --json` child and the documents it printed so far.
pub struct Monitor {
    child: Child,
    docs: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    /// `physalia monitor --json` with `args`.
    pub fn start(args: &[&str]) -> Monitor {
        let mut child = physalia()
            .arg("monitor")
            .arg("--json")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts physalia monitor");
        let out = child.stdout.take().expect("stdout");
        let docs = Arc::new(Mutex::new(Vec::new()));
        let sink = docs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let doc: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                sink.lock().unwrap().push(doc);
            }
        });
        Monitor {
            child,
            docs,
            reader: Some(reader),
        }
    }

    /// The first document of type `kind` printed within `timeout`, and when it was seen.
    pub fn wait_for(&self, kind: &str, timeout: Duration) -> Option<(Value, Instant)> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found = self
                .docs
                .lock()
                .unwrap()
                .iter()
                .find(|d| d["type"] == kind)
                .cloned();
            if let Some(d) = found {
                return Some((d, Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Stops the monitor with SIGTERM (as Ctrl-C would) and returns its exit code and
    /// every document it printed.
    pub fn stop(self) -> (Option<i32>, Vec<Value>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.finish()
    }

    /// Waits for the monitor to exit by itself (bounded: 120 s, then it is killed).
    pub fn finish(mut self) -> (Option<i32>, Vec<Value>) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let code = loop {
            if let Some(s) = self.child.try_wait().expect("waits") {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the monitor did not stop within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let docs = self.docs.lock().unwrap().clone();
        (code, docs)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
