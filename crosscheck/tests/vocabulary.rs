//! One vocabulary, kept true by machine: the TLA+ configurations and the property catalogue
//! agree by name, and every name the Rosetta table of `tla/README.md` lists exists where
//! its column says (TLA+ operator, model handler, core handler, spec rule, trace kind).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use physalia_crosscheck::repo_root;
use physalia_traces::properties::{self, Modality};
use physalia_traces::{TimeoutKind, KIND_NAMES};

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tla_dir() -> PathBuf {
    repo_root().join("tla")
}

/// Every file of `dir` with extension `ext`, concatenated.
fn all_text(dir: &Path, ext: &str) -> String {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    names.sort();
    names.iter().map(|p| read(p)).collect::<Vec<_>>().join("\n")
}

/// The names a TLC configuration checks: the words after `INVARIANT(S)` and `PROPERTY(IES)`
/// up to the next section keyword.
fn checked_names(cfg: &str) -> Vec<String> {
    const SECTIONS: &[&str] = &[
        "INVARIANT",
        "INVARIANTS",
        "PROPERTY",
        "PROPERTIES",
        "CONSTANT",
        "CONSTANTS",
        "SPECIFICATION",
        "INIT",
        "NEXT",
        "CONSTRAINT",
        "CONSTRAINTS",
        "SYMMETRY",
        "VIEW",
        "CHECK_DEADLOCK",
        "ACTION_CONSTRAINT",
        "ACTION_CONSTRAINTS",
    ];
    let mut out = Vec::new();
    let mut in_checks = false;
    for line in cfg.lines() {
        let line = line.split("\\*").next().unwrap_or("");
        for word in line.split_whitespace() {
            if SECTIONS.contains(&word) {
                in_checks = matches!(word, "INVARIANT" | "INVARIANTS" | "PROPERTY" | "PROPERTIES");
            } else if in_checks {
                out.push(word.to_owned());
            }
        }
    }
    out
}

/// Whether the TLA+ text defines operator `name` (`Name == ...` or `Name(args) == ...`).
fn tla_defines(tla: &str, name: &str) -> bool {
    tla.lines().any(|l| {
        l.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with("==") || (rest.starts_with('(') && rest.contains("=="))
        })
    })
}

#[test]
fn tla_invariants_and_the_catalogue_agree_by_name() {
    let tla = all_text(&tla_dir(), "tla");
    let cfgs = all_text(&tla_dir(), "cfg");
    let checked: BTreeSet<String> = checked_names(&cfgs).into_iter().collect();
    assert!(
        checked.contains("Agreement"),
        "the parser found {checked:?}"
    );
    let catalogue: BTreeSet<&str> = properties::ALL.iter().filter_map(|p| p.tla).collect();
    for name in &checked {
        // `TypeOK` is a type invariant and `Never*` are reachability witnesses (refuted on
        // purpose); every other checked name is a property of the catalogue.
        if name == "TypeOK" || name.starts_with("Never") {
            continue;
        }
        assert!(
            catalogue.contains(name.as_str()),
            "TLC checks {name}, which the property catalogue (traces/src/properties.rs) does \
             not name"
        );
    }
    for p in properties::ALL {
        let Some(op) = p.tla else { continue };
        assert!(tla_defines(&tla, op), "{}: TLA+ defines no {op}", p.name);
        assert!(
            checked.contains(op),
            "{}: no TLC configuration checks {op}",
            p.name
        );
        if p.modality == Modality::Sometimes {
            panic!("{}: a sometimes property has no TLA+ operator", p.name);
        }
    }
}

/// The rows of the Markdown table that follows `heading` in `text`.
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    let after = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))
        .1;
    let mut rows = Vec::new();
    let mut started = false;
    for line in after.lines() {
        if line.starts_with('|') {
            started = true;
            if line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
                continue; // the separator under the header
            }
            let cells: Vec<String> = line
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            rows.push(cells);
        } else if started {
            break;
        }
    }
    rows.remove(0); // the header
    rows
}

/// The backticked tokens of a cell, in order.
fn tokens(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, t)| t.to_owned())
        .collect()
}

fn is_snake(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        && t.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The `` `file.rs` `fn_a`, `fn_b` `` references of a cell: a file followed by one or more
/// function names separated by commas.
fn references(cell: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = cell;
    while let Some(i) = rest.find(".rs` `") {
        let start = rest[..i].rfind('`').map_or(0, |j| j + 1);
        let file = format!("{}.rs", &rest[start..i]);
        let mut after = &rest[i + ".rs` ".len()..];
        let mut names = Vec::new();
        while let Some(body) = after.strip_prefix('`') {
            let Some(end) = body.find('`') else { break };
            if body[..end].ends_with(".rs") {
                break; // the next reference
            }
            names.push(body[..end].to_owned());
            after = &body[end + 1..];
            match after.strip_prefix(", `") {
                Some(more) => after = &after[after.len() - more.len() - 1..],
                None => break,
            }
        }
        out.push((file, names));
        rest = after;
    }
    out
}

/// Checks the `file.rs` `fn_name` references of a cell against the files under `dirs`;
/// returns how many function names were checked.
fn check_functions(cell: &str, dirs: &[PathBuf], column: &str) -> usize {
    let mut checked = 0;
    for (file, names) in references(cell) {
        let path = dirs
            .iter()
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{column}: no {file} under {dirs:?}"));
        let text = read(&path);
        for name in names {
            assert!(
                is_snake(&name),
                "{column}: {name} in {file} is not a function name"
            );
            assert!(
                text.contains(&format!("fn {name}(")) || text.contains(&format!("fn {name}<")),
                "{column}: {file} has no fn {name}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_name_of_the_rosetta_table_exists() {
    let root = repo_root();
    let readme = read(&root.join("tla/README.md"));
    let tla = all_text(&tla_dir(), "tla");
    let rows = table_rows(&readme, "## Rosetta table");
    assert!(
        rows.len() >= 12,
        "the Rosetta table has {} rows",
        rows.len()
    );
    let timers: Vec<&str> = [
        TimeoutKind::Election,
        TimeoutKind::Heartbeat,
        TimeoutKind::Prepare,
    ]
    .iter()
    .map(|t| t.name())
    .collect();
    let messages = [
        "Prepare", "Promise", "Nack", "Accept", "Accepted", "Commit", "Request", "Redirect",
        "Reply",
    ];
    let (mut functions, mut actions, mut kinds) = (0, 0, 0);
    for row in &rows {
        assert_eq!(row.len(), 5, "a Rosetta row has five columns: {row:?}");
        for t in tokens(&row[0]) {
            if let Some((name, _)) = t.split_once('(') {
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    assert!(tla_defines(&tla, name), "TLA+ defines no action {name}");
                    actions += 1;
                }
            }
        }
        functions += check_functions(&row[1], &[root.join("model/src")], "model");
        functions += check_functions(&row[2], &[root.join("impl/src/core")], "core");
        functions += check_functions(
            &row[3],
            &[
                root.join("refinement/src/spec/step"),
                root.join("refinement/src/replay"),
            ],
            "spec/",
        );
        for t in tokens(&row[4]) {
            let known = KIND_NAMES.contains(&t.as_str())
                || timers.contains(&t.as_str())
                || messages.contains(&t.as_str())
                || t == "return";
            assert!(
                known,
                "trace column: {t} is no trace kind, timer or message"
            );
            kinds += 1;
        }
    }
    assert!(functions >= 30 && actions >= 9 && kinds >= 12);
}

#[test]
fn every_message_of_the_vocabulary_table_is_in_the_tla_spec() {
    let readme = read(&repo_root().join("tla/README.md"));
    let tla = read(&tla_dir().join("PhysaliaCell.tla"));
    let rows = table_rows(&readme, "## Vocabulary");
    let mut seen = 0;
    for row in &rows {
        for t in tokens(&row[1]) {
            if let Some(name) = t
                .strip_prefix("type = \"")
                .and_then(|r| r.strip_suffix('"'))
            {
                assert!(
                    tla.contains(&format!("\"{name}\"")),
                    "PhysaliaCell.tla has no message type {name}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "{seen} message rows");
}

#[test]
fn the_parsers_of_this_test_work() {
    let cfg = "SPECIFICATION Spec\nINVARIANTS TypeOK Agreement\n  Durability\nPROPERTIES Live\nCONSTANTS N = 3\n";
    assert_eq!(
        checked_names(cfg),
        ["TypeOK", "Agreement", "Durability", "Live"]
    );
    assert!(tla_defines("Agreement == TRUE\nFoo(a, b) == a", "Foo"));
    assert!(!tla_defines("Agreement2 == TRUE", "Agreement"));
    assert_eq!(tokens("`a.rs` `on_x`, `B`"), ["a.rs", "on_x", "B"]);
    assert_eq!(
        references("x `a.rs` `on_x`, `on_y` (once `msgs`), `b.rs` `z`"),
        [
            (
                "a.rs".to_owned(),
                vec!["on_x".to_owned(), "on_y".to_owned()]
            ),
            ("b.rs".to_owned(), vec!["z".to_owned()])
        ]
    );
}
