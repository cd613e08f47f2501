//! `physalia simulate`: deterministic runs, a readable summary, traces that read back.

use std::process::{Command, Output};

fn physalia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("run physalia")
}

#[test]
fn same_seed_same_traces_byte_for_byte_and_they_read_back() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        let out = physalia(&[
            "simulate",
            "--seed",
            "11",
            "--nodes",
            "5",
            "--steps",
            "4000",
            "--trace-out",
            dir.path().to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        for needle in [
            "operations committed",
            "real time",
            "dropped",
            "online checks: all held",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }
    for n in 0..5 {
        let name = format!("n{n}.jsonl");
        let x = std::fs::read(a.path().join(&name)).unwrap();
        let y = std::fs::read(b.path().join(&name)).unwrap();
        assert!(x.len() > 1000, "{name} is nearly empty");
        assert_eq!(x, y, "{name} differs between two runs of the same seed");
        let trace = physalia_traces::read_path(&a.path().join(&name)).expect("trace reads back");
        assert!(!trace.events.is_empty());
    }
}

#[test]
fn unknown_fault_is_a_clear_error() {
    let out = physalia(&["simulate", "--faults", "drop,meteor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("meteor"));
}

#[cfg(not(feature = "bugs"))]
#[test]
fn without_the_bugs_feature_there_is_no_bug_flag() {
    let out = physalia(&["simulate", "--bug", "skip-prepare"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bug"));
}

#[cfg(feature = "bugs")]
#[test]
fn an_injected_bug_makes_the_online_checks_fail() {
    let out = physalia(&["simulate", "--bug", "skip-prepare", "--steps", "5000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("injected bug: skip-prepare"), "{text}");
    assert!(!text.contains("online checks: all held"), "{text}");
}

#[cfg(feature = "bugs")]
#[test]
fn an_unknown_bug_is_a_clear_error() {
    let out = physalia(&["simulate", "--bug", "meteor"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("meteor") && err.contains("stale-read"),
        "{err}"
    );
}
