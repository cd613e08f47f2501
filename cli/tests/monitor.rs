//! `physalia monitor` on real node processes and on recorded traces: it follows a live
//! cluster through a kill and a restart (a new incarnation's file appears) without a false
//! alarm, serves its metrics, stops cleanly on SIGTERM; and on recorded traces it agrees
//! with `physalia conform`: a changed event is a divergence at that file and line, a
//! garbage line is named, a missing file is a receive without its send.
//! (`detect.rs` shows it flag a node built with an injected bug joining a live cluster.)

#[path = "live/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use harness::{physalia, Cluster, Monitor};
use serde_json::Value;

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connects to the metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn monitor_follows_a_live_cluster_through_a_restart_without_false_alarm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cluster = Cluster::up(&dir, 3, 2);
    let mon = Monitor::start(&[
        "--cluster",
        dir.to_str().unwrap(),
        "--follow",
        "--interval",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (m, _) = mon
        .wait_for("metrics", Duration::from_secs(20))
        .expect("the metrics address");
    let addr = m["address"].as_str().unwrap().to_owned();
    assert!(cluster.writes("c0", "a", 30) > 0);
    assert!(cluster.writes("c1", "a", 10) > 0);
    cluster.lifecycle("kill", 1);
    assert!(cluster.writes("c0", "b", 20) > 0, "a majority is up");
    cluster.lifecycle("start", 1);
    assert!(cluster.writes("c0", "c", 20) > 0);
    assert!(cluster.writes("c1", "c", 10) > 0);
    std::thread::sleep(Duration::from_secs(2));
    let metrics = scrape(&addr);
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let events: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("physalia_monitor_events_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(events > 0.0, "{metrics}");
    assert!(metrics.contains("physalia_monitor_divergences_total{cell="));
    let (code, docs) = mon.stop();
    let summary = docs
        .iter()
        .find(|d| d["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {docs:?}"));
    assert_eq!(summary["verdict"], "conforms", "{summary:#}");
    assert_eq!(code, Some(0));
    assert!(docs.iter().any(|d| d["type"] == "status"), "status lines");
    assert!(!docs.iter().any(|d| d["type"] == "divergence"));
    let cells = summary["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{summary:#}");
    let c0 = cells
        .iter()
        .find(|c| c["cell"].as_str().unwrap().ends_with("c0"))
        .unwrap();
    // n1's second incarnation's file was picked up when it appeared.
    assert_eq!(c0["files"], 4, "{c0:#}");
    assert!(c0["matched"].as_u64().unwrap() >= events as u64 / 2);
    assert_eq!(c0["matched"], c0["events"]);
    // The batch replay of the same files agrees on the count.
    let out = physalia()
        .args(["conform", "--json"])
        .arg(dir.join("traces").join("c0"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["events"].as_u64().unwrap() >= c0["events"].as_u64().unwrap(),
        "{doc:#}"
    );
}

/// Recorded traces: `physalia simulate --trace-out`.
fn recorded(dir: &Path, seed: u64) {
    let out = physalia()
        .args(["simulate", "--seed", &seed.to_string(), "--steps", "4000"])
        .arg("--trace-out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(dir: &Path) -> (Option<i32>, Vec<Value>) {
    let out = physalia()
        .args(["monitor", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    let docs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code(), docs)
}

fn first_file(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn monitor_agrees_with_conform_on_recorded_and_corrupted_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    recorded(&dir, 3);
    let (code, docs) = check(&dir);
    assert_eq!(code, Some(0), "{docs:?}");
    let summary = docs.iter().find(|d| d["type"] == "summary").unwrap();
    assert_eq!(summary["verdict"], "conforms");

    // A changed event: a commit index raised far beyond anything chosen.
    let file = first_file(&dir);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"commit\":3,"))
        .expect("a commit index of 3");
    lines[at] = lines[at].replacen("\"commit\":3,", "\"commit\":3000,", 1);
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (code, docs) = check(&dir);
    assert_eq!(code, Some(1), "{docs:?}");
    let d = docs.iter().find(|d| d["type"] == "divergence").unwrap();
    assert_eq!(d["line"], at + 1, "{d:#}");
    assert!(d["file"]
        .as_str()
        .unwrap()
        .ends_with(file.file_name().unwrap().to_str().unwrap()));
    let conform = physalia().arg("conform").arg(&dir).output().unwrap();
    assert_eq!(conform.status.code(), Some(1), "conform agrees");

    // A garbage line: named by file and line, exit 2.
    let dir2 = tmp.path().join("g");
    recorded(&dir2, 3);
    let file = first_file(&dir2);
    let mut text = std::fs::read_to_string(&file).unwrap();
    let n = text.lines().count();
    text.push_str("{\"garbage\": true}\n");
    std::fs::write(&file, text).unwrap();
    let (code, docs) = check(&dir2);
    assert_eq!(code, Some(2), "{docs:?}");
    let e = docs.iter().find(|d| d["type"] == "unusable").unwrap();
    let why = e["why"].as_str().unwrap();
    assert!(why.contains(&format!(":{}:", n + 1)), "{why}");

    // A node's file missing: what it sent is received without a send.
    let dir3 = tmp.path().join("m");
    recorded(&dir3, 3);
    std::fs::remove_file(first_file(&dir3)).unwrap();
    let (code, docs) = check(&dir3);
    assert_eq!(code, Some(2), "{docs:?}");
    let e = docs.iter().find(|d| d["type"] == "unusable").unwrap();
    assert!(
        e["why"].as_str().unwrap().contains("without a send"),
        "{e:#}"
    );
}

#[test]
fn monitor_refuses_what_it_cannot_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let out = physalia()
        .args(["monitor", "--cluster"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster.json"));
    let out = physalia()
        .arg("monitor")
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = physalia().arg("monitor").arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trace file"));
}
