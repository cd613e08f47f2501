//! The mechanised links between the layers of the workbench (`../shared/DESIGN.md`, "The
//! chain of evidence"): this crate is the one place that links the implementation (`impl`)
//! with the checkers (`refinement`, `model`), so that the specification never depends on what
//! it judges and production code links no checker.
//!
//! Today it holds the tests and benchmarks that need both sides: the differential test of
//! the implementation's state machine against the specification's (`tests/kv_differential.rs`),
//! the vocabulary checks that keep the TLA+ spec, the property catalogue and the Rosetta table
//! of `tla/README.md` in agreement with the code (`tests/vocabulary.rs`). (The replay
//! benchmark is `physalia bench --suite replay`.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The repository root (the workspace directory), for tests that read `tla/` and `docs/`.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
