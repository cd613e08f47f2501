//! Commands that must fail fast and plainly on a bad request (issue "The CLI as users of
//! stateright, TLC, Jepsen and etcdctl expect it", "Never panic, never lie"): one line
//! naming what is wrong, exit 2, no panic, nothing started.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn physalia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("runs physalia")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn explore_on_a_bad_or_busy_address_exits_2_without_a_panic() {
    for addr in ["127.0.0.1:99999", "not-an-address", "192.0.2.1:3000"] {
        let out = physalia(&["explore", "--addr", addr]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{addr}: {err}");
        assert!(err.contains(addr), "{addr}: {err}");
        assert!(!err.contains("panicked"), "{addr}: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("Explorer on"),
            "{addr}: announced before binding"
        );
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = physalia(&["explore", "--addr", &addr]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot listen there"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn cluster_up_with_no_cells_or_nodes_is_refused_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("c");
    for bad in [["--cells", "0"], ["--nodes", "0"]] {
        let t = Instant::now();
        let out = physalia(&[
            "cluster",
            "up",
            "--dir",
            d.to_str().unwrap(),
            bad[0],
            bad[1],
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(bad[0]), "{err}");
        assert!(!d.exists(), "nothing is created");
        // Refused at parsing, not after waiting for nodes (a generous bound, not a figure).
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn simulate_refuses_a_trace_directory_with_other_traces_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let stale = dir.path().join("n8.jsonl");
    std::fs::write(&stale, "{}\n").unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "simulate", "--nodes", "3", "--spares", "0", "--steps", "2000",
        ];
        a.extend(["--trace-out", d]);
        a.extend(extra);
        physalia(&a)
    };
    let out = run(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("n8.jsonl") && err.contains("--force"), "{err}");
    assert!(stale.exists(), "nothing deleted without --force");
    assert!(!dir.path().join("n0.jsonl").exists(), "nothing written");
    let out = run(&["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stale.exists(), "--force deletes the old traces");
    let conform = physalia(&["conform", d]);
    assert_eq!(
        conform.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&conform.stdout)
    );
}

#[test]
fn simulate_says_what_a_run_did_not_exercise_and_prints_no_debug_text() {
    let out = physalia(&["simulate", "--clients", "0", "--steps", "3000"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("not exercised: no client operation committed"),
        "{text}"
    );
    let out = physalia(&["simulate", "--steps", "100"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("after GST: not judged"), "{text}");
    assert!(
        text.contains("not exercised: the run ended before GST"),
        "{text}"
    );
    let out = physalia(&["simulate", "--seed", "3"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("not exercised"), "{text}");
    for debug in ["Some(", "None", "Liveness {", "{ first_commit"] {
        assert!(!text.contains(debug), "Debug text {debug:?} in:\n{text}");
    }
    assert!(text.contains("after GST: first answer after"), "{text}");
}

#[test]
fn progress_is_not_drawn_into_a_pipe() {
    // stderr is a pipe here: no carriage-return progress updates in it.
    let out = physalia(&["simulate", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stderr.contains(&b'\r'), "{}", stderr(&out));
    let out = physalia(&["verify", "--skip-model", "--seeds", "2", "--steps", "3000"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.stderr.contains(&b'\r'), "{}", stderr(&out));
    assert!(!out.stdout.contains(&b'\r'));
}

#[test]
fn simulate_json_is_one_document_with_its_schema_and_verdict() {
    let out = physalia(&["simulate", "--seed", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["schema"], "physalia-simulate");
    assert!(v["tool_version"].is_string());
    assert_eq!(v["verdict"], "held");
    assert_eq!(v["seed"], 2);
    assert!(v["operations_committed"].as_u64().unwrap() > 0);
    assert!(v["liveness"]["unanswered"].is_u64());
    assert_eq!(v["not_exercised"].as_array().unwrap().len(), 0);
    let short = physalia(&["simulate", "--steps", "100", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&short.stdout).unwrap();
    assert!(v["liveness"].is_null());
    assert!(!v["not_exercised"].as_array().unwrap().is_empty());
}

#[test]
fn conform_groups_repeated_consequences_and_says_when_liveness_was_not_judged() {
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../traces/corpus/nonconforming/second-value-chosen"
    );
    let out = physalia(&["conform", corpus]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let broken = text.lines().filter(|l| l.contains("` broken: ")).count();
    assert!(broken <= 20, "{broken} consequence lines:\n{text}");
    assert!(text.contains("more like it at this event"), "{text}");
    assert!(text.contains("events from 3 files"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let sim = physalia(&["simulate", "--steps", "200", "--trace-out", d]);
    assert_eq!(sim.status.code(), Some(0));
    let out = physalia(&["conform", d]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("liveness: not judged: the trace ends at"),
        "{text}"
    );
    assert!(!text.contains("leader never seen"), "{text}");
}

#[test]
fn verify_json_is_one_document_with_every_check() {
    let out = physalia(&[
        "verify",
        "--skip-model",
        "--seeds",
        "2",
        "--steps",
        "3000",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["schema"], "physalia-verify");
    assert!(v["tool_version"].is_string());
    assert_eq!(v["verdict"], "passed");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4);
    assert!(
        checks.iter().all(|c| c["runs"] == 2 && c["failed"] == 0),
        "{checks:?}"
    );
}
