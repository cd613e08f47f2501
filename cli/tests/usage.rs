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
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("verify.xml");
    let out = physalia(&[
        "verify",
        "--skip-model",
        "--seeds",
        "2",
        "--steps",
        "3000",
        "--json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"tests="4""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
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

/// A valid cluster key file in `dir`.
fn key_file(dir: &std::path::Path) -> String {
    let path = dir.join("key");
    std::fs::write(&path, "ab".repeat(32)).unwrap();
    path.display().to_string()
}

#[test]
fn errors_are_json_documents_when_json_was_asked_for() {
    // An error clap finds in the arguments.
    let out = physalia(&["check", "--json", "--threads", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON document");
    assert_eq!(v["schema"], "physalia-error");
    assert_eq!(v["command"], "check");
    assert_eq!(v["exit_code"], 2);
    assert!(v["tool_version"].is_string());
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("--threads") && msg.contains("1..=256"),
        "{msg}"
    );
    assert!(!msg.contains('\u{1b}'), "no terminal colours: {msg:?}");
    // An error found while running.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-key").display().to_string();
    let out = physalia(&[
        "client",
        "--json",
        "--seeds",
        "127.0.0.1:1",
        "--key-file",
        &missing,
        "get",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON document");
    assert_eq!(
        (&v["schema"], &v["command"]),
        (&"physalia-error".into(), &"client".into())
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("cannot read key file"),
        "{v}"
    );
    // Asking for help is not an error, with or without --json.
    let out = physalia(&["check", "--json", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
}

#[test]
fn the_client_refuses_a_missing_key_bad_seeds_and_bad_values_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let missing = dir.path().join("no-key").display().to_string();
    let out = physalia(&[
        "client",
        "--seeds",
        "127.0.0.1:1",
        "--key-file",
        &missing,
        "get",
        "k",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "reported once: {err}"
    );
    // A long deadline: were the seeds retried until it, the exit would be 4 (unknown),
    // and the test would wait for it.
    for (seeds, says) in [
        ("nonsense", "is not an address"),
        ("127.0.0.1:99999", "is not an address"),
        (" , ", "names no node"),
        ("127.0.0.1:1", "no seed accepts connections"),
    ] {
        let out = physalia(&[
            "client",
            "--deadline-ms",
            "3600000",
            "--seeds",
            seeds,
            "--key-file",
            &key,
            "get",
            "k",
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{seeds}: {err}");
        assert!(err.contains(says), "{seeds}: {err}");
    }
    for value in ["int:4x", "hex:zz", "bool:yes"] {
        let out = physalia(&[
            "client",
            "--seeds",
            "127.0.0.1:1",
            "--key-file",
            &key,
            "put",
            "k",
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        assert!(stderr(&out).contains(value), "{value}: {}", stderr(&out));
    }
    let help = physalia(&["client", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    for code in [
        "0  done",
        "3  condition failed",
        "4  outcome unknown",
        "5  unavailable",
        "6  operation failed",
    ] {
        assert!(text.contains(code), "--help lacks `{code}`: {text}");
    }
}

#[test]
fn help_states_the_valid_ranges() {
    for (args, ranges) in [
        (
            &["check", "--help"][..],
            &["1..=7", "1..=4", "0..=3", "1..=256"][..],
        ),
        (&["simulate", "--help"][..], &["1..=7", "0..=8"][..]),
        (
            &["node", "--help"][..],
            &["at least 4096", "1..=600000"][..],
        ),
        (&["cluster", "up", "--help"][..], &["at least 1"][..]),
    ] {
        let out = physalia(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for r in ranges {
            assert!(text.contains(r), "{args:?} --help lacks {r}: {text}");
        }
    }
}

#[test]
fn list_mutants_as_json_names_the_same_mutants_as_the_text() {
    let text = physalia(&["check", "--list-mutants"]);
    let names: Vec<String> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let out = physalia(&["check", "--list-mutants", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON document");
    assert_eq!(v["schema"], "physalia-check-mutants");
    let listed: Vec<String> = v["mutants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.is_empty());
    assert_eq!(listed, names);
    assert!(v["mutants"][0]["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
}

#[test]
fn check_and_conform_write_junit_with_each_verdict() {
    let dir = tempfile::tempdir().unwrap();
    // A mutant: its violated property is a failed test case with the counterexample.
    let mutant = String::from_utf8_lossy(&physalia(&["check", "--list-mutants"]).stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let xml_path = dir.path().join("check.xml");
    let out = physalia(&[
        "check",
        "--mutant",
        &mutant,
        "--json",
        "--junit",
        xml_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "physalia-check");
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let props = doc["properties"].as_array().unwrap().len();
    assert_eq!(xml.matches("<testcase ").count(), props, "{xml}");
    assert!(xml.contains(r#"<failure message="violated""#), "{xml}");
    assert!(
        xml.contains("  1. "),
        "the counterexample is in the case: {xml}"
    );
    // Conform: a conforming trace passes every case; a nonconforming one fails replay.
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/corpus");
    let ok_xml = dir.path().join("ok.xml");
    let out = physalia(&[
        "conform",
        &format!("{corpus}/valid/small-3nodes"),
        "--junit",
        ok_xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xml = std::fs::read_to_string(&ok_xml).unwrap();
    assert!(
        xml.contains(r#"tests="3""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
    let bad_xml = dir.path().join("bad.xml");
    let out = physalia(&[
        "conform",
        &format!("{corpus}/nonconforming/second-value-chosen"),
        "--junit",
        bad_xml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&bad_xml).unwrap();
    assert!(!xml.contains(r#"failures="0""#), "{xml}");
    assert!(
        xml.contains(r#"<testcase name="replay and safety""#)
            && xml.contains(r#"<failure message="step mismatch at event"#),
        "{xml}"
    );
    let unusable = dir.path().join("unusable.xml");
    let out = physalia(&[
        "conform",
        &format!("{corpus}/invalid/truncated"),
        "--json",
        "--junit",
        unusable.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["schema"], &v["verdict"]),
        (&"physalia-conform".into(), &"unusable".into())
    );
    let xml = std::fs::read_to_string(&unusable).unwrap();
    assert!(xml.contains(r#"errors="1""#), "{xml}");
}

/// The command synopses of the README: `(subcommand path, flags named)`, one per fenced
/// block line that starts with `physalia` and shows an option in brackets, with its
/// indented continuation lines.
fn readme_synopses() -> Vec<(Vec<String>, Vec<String>, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut out: Vec<(Vec<String>, Vec<String>, String)> = Vec::new();
    let mut in_block = false;
    let mut current: Option<String> = None;
    let flush = |cur: &mut Option<String>, out: &mut Vec<(Vec<String>, Vec<String>, String)>| {
        if let Some(text) = cur.take() {
            let path: Vec<String> = text
                .split_whitespace()
                .skip(1)
                .take_while(|w| {
                    w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                })
                .map(str::to_owned)
                .collect();
            let flags: Vec<String> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(str::to_owned)
                .collect();
            out.push((path, flags, text));
        }
    };
    for line in readme.lines() {
        if line.starts_with("```") {
            flush(&mut current, &mut out);
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        if line.starts_with("physalia ") && !line.contains(" #") {
            flush(&mut current, &mut out);
            current = Some(line.to_owned());
        } else if line.starts_with(' ') && current.is_some() {
            let c = current.as_mut().unwrap();
            c.push(' ');
            c.push_str(line.trim());
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    out
}

/// The long options `physalia PATH --help` lists (without --help and --version).
fn help_flags(path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = physalia(&args);
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    let mut flags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-")
                .filter(|r| r.chars().nth(1) == Some(','))
                .map_or(l, |r| r[2..].trim_start());
            let name: String = l
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[test]
fn the_readme_synopses_name_exactly_the_options_of_the_binary() {
    let synopses = readme_synopses();
    let paths: Vec<String> = synopses.iter().map(|s| s.0.join(" ")).collect();
    for expected in [
        "verify",
        "conform",
        "check",
        "tla check",
        "simulate",
        "node",
        "client",
        "bench",
        "nemesis",
        "monitor",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "no synopsis of `{expected}` in {paths:?}"
        );
    }
    for (path, flags, text) in &synopses {
        let known = help_flags(path);
        for f in flags {
            assert!(
                known.contains(f),
                "README's `physalia {}` names {f}, which the binary does not have: {text}",
                path.join(" ")
            );
        }
        // A synopsis that does not defer to another one lists every option.
        if !text.contains("...") || !text.contains("the model bounds") {
            for f in &known {
                assert!(
                    flags.contains(f),
                    "README's `physalia {}` synopsis lacks {f}: {text}",
                    path.join(" ")
                );
            }
        }
    }
}

#[test]
fn verify_shards_merge_into_the_table_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = ["verify", "--skip-model", "--seeds", "5", "--steps", "2000"];
    let single = physalia(&[&sweep[..], &["--json"]].concat());
    assert_eq!(single.status.code(), Some(0), "{}", stderr(&single));
    let single: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    let mut files = Vec::new();
    for i in 0..2 {
        let f = dir
            .path()
            .join(format!("shard-{i}.json"))
            .display()
            .to_string();
        let shard = format!("{i}/2");
        let out = physalia(&[&sweep[..], &["--shard", &shard, "--out", &f]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        files.push(f);
    }
    // The engine's index, as a Kubernetes Indexed Job gives it.
    let from_env = Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args([&sweep[..], &["--shards", "2"]].concat())
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    let by_env: serde_json::Value = serde_json::from_slice(&from_env.stdout).unwrap();
    let by_flag: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    assert_eq!(by_env["seeds_run"], by_flag["seeds_run"]);
    assert_eq!(by_flag["seeds_run"], serde_json::json!([1, 3]));
    let merged = physalia(&["verify", "merge", "--json", &files[1], &files[0]]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    let table = |v: &serde_json::Value| -> Vec<(String, u64, u64, String)> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                // The conformance note carries a rate (events per second of replay): drop it.
                let detail = c["detail"].as_str().unwrap();
                let detail = detail
                    .split(", ")
                    .filter(|p| !p.ends_with("events/s"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    c["check"].as_str().unwrap().to_owned(),
                    c["runs"].as_u64().unwrap(),
                    c["passed"].as_u64().unwrap(),
                    detail,
                )
            })
            .collect()
    };
    assert_eq!(table(&merged), table(&single));
    assert_eq!(merged["failures"], single["failures"]);
    // A missing or repeated shard is not a sweep.
    let missing = physalia(&["verify", "merge", &files[0]]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("missing shard(s): 1/2"),
        "{}",
        stderr(&missing)
    );
    let twice = physalia(&["verify", "merge", &files[0], &files[0], &files[1]]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(stderr(&twice).contains("given twice"), "{}", stderr(&twice));
}
