//! The sample corpus: every valid trace set reads and merges; every invalid one is rejected
//! with the message its `expect.txt` names.

use std::fs;
use std::path::{Path, PathBuf};

use physalia_traces::*;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(kind);
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

/// Reads and merges every `*.jsonl` of `dir`.
fn load(dir: &Path) -> Result<Merged, String> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    let files = paths
        .iter()
        .map(|p| read_path(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    merge(files).map_err(|e| e.to_string())
}

#[test]
fn valid_traces_read_and_merge() {
    let dirs = corpus("valid");
    assert!(dirs.len() >= 2);
    for dir in dirs {
        let merged = load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(!merged.events.is_empty());
    }
}

#[test]
fn invalid_traces_are_rejected_with_their_expected_message() {
    let dirs = corpus("invalid");
    assert!(dirs.len() >= 7);
    for dir in dirs {
        let expect = fs::read_to_string(dir.join("expect.txt")).unwrap();
        let err = load(&dir).expect_err(&format!("{} must be rejected", dir.display()));
        assert!(
            err.contains(expect.trim()),
            "{}: expected {:?} in {err:?}",
            dir.display(),
            expect.trim()
        );
    }
}
