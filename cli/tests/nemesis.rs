//! `physalia nemesis` in its short bounded form (issue 13): a real cluster of node
//! processes, every fault kind injected at least once, and every check passing on the
//! healthy node. The same command against a node built with an injected bug finds an
//! anomaly (`cli/tests/detect.rs`, feature `bugs`).

use std::process::Command;

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
}

#[test]
fn every_fault_kind_on_a_real_cluster_and_the_run_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["nemesis", "--dir", run.to_str().unwrap()])
        .args([
            "--nodes",
            "5",
            "--cells",
            "1",
            "--clients",
            "3",
            "--seconds",
            "30",
        ])
        .args(["--faults", "all", "--seed", "3", "--json"])
        .output()
        .expect("runs physalia nemesis");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{text}\n{err}"));
    assert_eq!(doc["schema"], "physalia-nemesis", "{doc:#}");
    assert_eq!(doc["verdict"], "valid", "{doc:#}");
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    // Every kind of fault happened, each with an outcome the nemesis checked.
    let by_kind = doc["faults"]["by_kind"].as_object().unwrap();
    for kind in [
        "kill",
        "pause",
        "partition",
        "disk",
        "restart-all",
        "duplicate-process",
        "hostile",
    ] {
        assert!(
            by_kind.get(kind).is_some_and(|n| n.as_u64() >= Some(1)),
            "{kind}: {doc:#}"
        );
    }
    assert!(doc["faults"]["not_injected"].as_array().unwrap().is_empty());
    // The duplicate process was refused for holding a live directory, not for a port.
    let list = doc["faults"]["list"].as_array().unwrap();
    let dup = list
        .iter()
        .find(|f| f["kind"] == "duplicate-process")
        .unwrap();
    assert!(
        dup["outcome"]
            .as_str()
            .unwrap()
            .contains("in use by another process"),
        "{dup}"
    );
    // The checks ran on real work: operations of every kind, acknowledged writes read
    // back, the counter, the history and the traces.
    let ops = &doc["operations"];
    assert!(ops["total"].as_u64().unwrap() > 200, "{ops}");
    for kind in ["get", "put", "cas", "incr", "txn"] {
        assert!(
            ops["by_kind"][kind]["ok"].as_u64().unwrap_or(0) > 0,
            "{kind}: {ops}"
        );
    }
    let w = &doc["acknowledged_writes"];
    assert!(w["acknowledged"].as_u64().unwrap() > 10, "{w}");
    assert_eq!(w["acknowledged"], w["present"], "{w}");
    assert_eq!(doc["counters"][0]["exact"], true, "{doc:#}");
    assert_eq!(
        doc["linearizability"]["cells"][0]["verdict"],
        "linearizable"
    );
    assert_eq!(doc["conformance"]["cells"][0]["verdict"], "conforms");
    assert!(doc["recovery_ms"].is_u64(), "{doc:#}");
    // The live monitor followed the traces through every fault without a false alarm, and
    // replayed as many events as the batch replay afterwards.
    let m = &doc["monitor"];
    assert_eq!(m["verdict"], "conforms", "{m:#}");
    assert_eq!(
        m["cells"][0]["events"], doc["conformance"]["cells"][0]["events"],
        "{m:#}"
    );
    // What reproduces it is kept; every process it started is gone.
    for f in [
        "history.jsonl",
        "faults.jsonl",
        "report.json",
        "cluster.json",
        "monitor.jsonl",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert_eq!(
        history.lines().count() as u64,
        ops["total"].as_u64().unwrap()
    );
    let cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("cluster.json")).unwrap()).unwrap();
    for n in cluster["nodes"].as_array().unwrap() {
        let pid = n["pid"].as_u64().unwrap();
        assert!(pid == 0 || !alive(pid), "node process {pid} still running");
    }
    let logs = std::fs::read_dir(run.join("logs")).unwrap().count();
    assert!(logs > 5, "restarts have their own logs");
}

#[test]
fn a_bad_fault_list_or_a_used_directory_is_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args([
            "nemesis",
            "--dir",
            run.to_str().unwrap(),
            "--faults",
            "kill,flood",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown fault `flood`"), "{err}");
    assert!(!run.exists());
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("cluster.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(["nemesis", "--dir", run.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("already holds a cluster"), "{err}");
}
