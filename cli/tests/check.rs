//! The `physalia check` command line: verdicts, exit codes, counterexamples, JSON, help.

use std::process::{Command, Output};

fn physalia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("run physalia")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small clean configuration (the CI suite is checked by the model's exhaustive test).
const SMALL: &[&str] = &["check", "--crashes", "1", "--elections", "0"];

#[test]
fn small_model_passes_with_every_property_listed() {
    let out = physalia(SMALL);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for name in [
        "agreement",
        "committed prefix",
        "durability",
        "linearizable",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(line.contains("holds"), "{line}");
    }
    let reproposal = text.lines().find(|l| l.contains("re-proposes")).unwrap();
    assert!(reproposal.contains("not applicable"), "{reproposal}");
    assert!(text.contains("state space exhausted"), "{text}");
    assert!(text.contains("states/s"), "{text}");
}

#[test]
fn unreached_witness_fails_the_run() {
    // An election is allowed, but round 2 is not: no leader can ever change, so the
    // re-proposal witness is unreachable and the run is vacuous.
    let out = physalia(&["check", "--max-round", "1", "--max-slots", "1"]);
    let text = stdout(&out);
    assert!(
        text.contains("\"new leader re-proposes an old value\" is never reached"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn mutant_prints_a_numbered_counterexample_and_exits_1() {
    let out = physalia(&["check", "--mutant", "reply-before-commit"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("durability"), "{text}");
    assert!(text.contains("VIOLATED"), "{text}");
    assert!(text.contains("  1. c"), "numbered steps expected:\n{text}");
    assert!(
        text.contains("sends n0→c"),
        "who sent what to whom:\n{text}"
    );
}

#[test]
fn json_output_is_one_document_with_the_counterexample() {
    let out = physalia(&["check", "--mutant", "stale-read", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["config"]["mutant"], "stale-read");
    let violated: Vec<_> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["verdict"] == "violated")
        .collect();
    assert_eq!(violated.len(), 1);
    assert_eq!(violated[0]["name"], "linearizable");
    assert!(
        violated[0]["counterexample"]["steps"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
}

#[test]
fn list_mutants_prints_one_name_per_line() {
    let out = physalia(&["check", "--list-mutants"]);
    let text = stdout(&out);
    let names: Vec<&str> = text.lines().collect();
    assert!(names.len() >= 8, "{text}");
    assert!(names.contains(&"accept-lower-ballot"));
    assert!(names.iter().all(|n| !n.contains(' ')));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let out = physalia(&["check", "--mutant", "no-such-bug"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list-mutants"));
    let out = physalia(&["check", "--symmetry", "on", "--strategy", "bfs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--strategy dfs"));
    let out = physalia(&["check", "--nodes", "9"]);
    assert_eq!(out.status.code(), Some(2));
    let out = physalia(&["check", "--reconfigs", "1", "--changes", "swap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replace, add or remove"));
    let out = physalia(&["check", "--reconfigs", "1", "--spares", "5", "--nodes", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spares"));
}

#[test]
fn help_documents_every_subcommand_and_option() {
    let top = stdout(&physalia(&["--help"]));
    for sub in ["check", "explore", "simulate", "tla"] {
        assert!(top.contains(sub), "{top}");
    }
    let check = stdout(&physalia(&["check", "--help"]));
    for opt in [
        "--nodes",
        "--clients",
        "--ops",
        "--max-round",
        "--max-slots",
        "--crashes",
        "--elections",
        "--network",
        "--lossy",
        "--strategy",
        "--threads",
        "--symmetry",
        "--reconfigs",
        "--spares",
        "--changes",
        "--mutant",
        "--list-mutants",
        "--json",
    ] {
        assert!(check.contains(opt), "{opt} missing from check --help");
    }
    let explore = stdout(&physalia(&["explore", "--help"]));
    assert!(explore.contains("--addr"));
}

/// The JSON verdict of each property, by name.
fn verdicts(v: &serde_json::Value) -> Vec<(String, String)> {
    v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A move (`--reconfigs 1`, one spare by default, α = 1) is checked exhaustively: every
/// property holds, and a change takes effect with a command chosen under the new jury.
#[test]
fn reconfiguration_run_is_clean_and_a_change_takes_effect() {
    let out = physalia(&[
        "check",
        "--reconfigs",
        "1",
        "--window",
        "1",
        "--elections",
        "0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["config"]["reconfigs"], 1);
    assert_eq!(v["config"]["spares"], 1);
    assert_eq!(v["stopped_at_violation"], false);
    let verdicts = verdicts(&v);
    for (name, verdict) in &verdicts {
        assert!(
            ["holds", "reached", "not applicable"].contains(&verdict.as_str()),
            "{name}: {verdict}"
        );
    }
    for (name, verdict) in [
        ("one change at a time", "holds"),
        ("a change takes effect", "reached"),
    ] {
        assert!(
            verdicts.contains(&(name.to_string(), verdict.to_string())),
            "{name} should be {verdict}: {verdicts:?}"
        );
    }
}

/// Each reconfiguration mutant that is a bug makes `physalia check --mutant NAME` exit 1,
/// naming the property it violates (`docs/broken-variants.md`).
#[test]
fn reconfiguration_mutants_exit_1_naming_the_property() {
    for (mutant, property) in [
        ("config-effective-early", "durability"),
        ("concurrent-changes", "one change at a time"),
        ("phase1-old-jury", "agreement"),
        ("stale-member-votes", "durability"),
        ("aba-rejoin", "agreement"),
    ] {
        let out = physalia(&["check", "--mutant", mutant]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{mutant}:\n{text}");
        let line = text
            .lines()
            .find(|l| l.contains("VIOLATED"))
            .unwrap_or_else(|| panic!("{mutant}: nothing violated:\n{text}"));
        assert!(line.contains(property), "{mutant}: {line}");
        assert!(
            text.contains(&format!("counterexample: \"{property}\" is violated")),
            "{mutant}:\n{text}"
        );
    }
}

/// `config-from-unchosen` is not a bug of this protocol (README, "Broken variants"): the run
/// exhausts its bounds with every property holding and exits 0.
#[test]
fn config_from_unchosen_is_clean() {
    let out = physalia(&["check", "--mutant", "config-from-unchosen", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["stopped_at_violation"], false);
    for (name, verdict) in verdicts(&v) {
        assert_ne!(verdict, "violated", "{name}");
    }
}

/// Checks the shape ITF readers rely on: `vars`, and every state holding exactly them
/// (and its `#meta.index`), integers as `#bigint`.
fn itf_states(path: &std::path::Path) -> (Vec<String>, Vec<serde_json::Value>) {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the ITF file")).unwrap();
    assert_eq!(doc["#meta"]["format"], "ITF");
    let vars: Vec<String> = doc["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let states = doc["states"].as_array().unwrap().clone();
    for (i, s) in states.iter().enumerate() {
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), vars.len() + 1, "state {i}: {keys:?}");
        for v in &vars {
            assert!(s.get(v).is_some(), "state {i} lacks {v}");
        }
        assert_eq!(s["#meta"]["index"].as_u64(), Some(i as u64));
    }
    (vars, states)
}

#[test]
fn a_counterexample_is_written_as_an_itf_trace() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cex.itf.json");
    let out = physalia(&[
        "check",
        "--mutant",
        "reply-before-commit",
        "--json",
        "--itf",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["verdict"] == "violated")
        .unwrap()
        .clone();
    let steps = p["counterexample"]["steps"].as_array().unwrap();
    let (vars, states) = itf_states(&file);
    assert_eq!(vars, ["action_taken", "nodes", "clients", "network"]);
    assert_eq!(states.len(), steps.len() + 1);
    assert_eq!(states[0]["action_taken"], "init");
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(
            states[i + 1]["action_taken"],
            step["action"],
            "step {}",
            i + 1
        );
    }
    // Integers as ITF writes them; nodes as a map of records.
    let n0 = &states[0]["nodes"]["#map"][0];
    assert_eq!(n0[0]["#bigint"], "0");
    assert!(n0[1]["commit"]["#bigint"].is_string(), "{n0}");
    assert!(n0[1]["promised"]["#tup"].is_array(), "{n0}");
    // A clean run writes none, and says so.
    let clean = dir.path().join("clean.itf.json");
    let out = physalia(&[SMALL, &["--itf", clean.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0));
    assert!(!clean.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no counterexample"));
}
