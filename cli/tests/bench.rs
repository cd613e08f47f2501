//! `physalia bench --suite`: the in-process suites run and report their figures with the
//! same-run ratios and the targets they speak to (no figure is asserted: performance lives
//! in the benchmark, not in tests).

use std::process::Command;

fn physalia(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
        .args(args)
        .output()
        .expect("runs physalia")
}

#[test]
fn the_in_process_suites_report_figures_ratios_and_targets() {
    let out = physalia(&[
        "bench",
        "--suite",
        "replay,lin,sim",
        "--replay-events",
        "10000",
        "--lin-ops",
        "2000",
        "--sim-steps",
        "20000",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["schema"], "physalia-bench");
    let s = &v["suites"];
    let row = &s["replay"]["sizes"][0];
    assert!(row["events"].as_u64().unwrap() > 1000, "{row}");
    assert_eq!(row["ratio_to_smallest"].as_f64(), Some(1.0));
    assert!(row["bytes_per_event"].as_f64().unwrap() > 0.0);
    assert_eq!(s["lin"]["operations"].as_u64(), Some(2000));
    assert!(s["lin"]["ratio_baseline_to_project"].as_f64().unwrap() > 0.0);
    assert!(s["sim"]["off"]["core_steps_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["sim"]["ratio_on_to_off"].as_f64().unwrap() > 0.0);
    // The suites not run report nothing; the targets they speak to do.
    assert!(s.get("node").is_none() && s.get("model").is_none());
    let targets = v["targets"].as_array().expect("targets");
    let names: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert!(
        names.contains(&"traces: bytes per event (default simulation)"),
        "{names:?}"
    );
    assert!(
        names.contains(&"sim: core steps per second, traces on"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("node:")), "{names:?}");
    // 10⁶ events were not replayed: said, not guessed.
    let million = targets
        .iter()
        .find(|t| t["target"] == "traces: 10^6 events read + merged + replayed")
        .expect("the 10^6 target");
    assert!(
        million["figure"].is_null() && million["met"].is_null(),
        "{million}"
    );
    // The text goes to stderr with --json; the targets table is in it.
    assert!(
        err.contains("replay:") && err.contains("lin:") && err.contains("sim:"),
        "{err}"
    );
    assert!(err.contains("target"), "{err}");
}

#[test]
fn an_unknown_suite_is_refused() {
    let out = physalia(&["bench", "--suite", "replay,bogus"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown suite `bogus`"));
}
