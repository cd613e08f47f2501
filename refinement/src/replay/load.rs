//! Reading and merging the trace files of one run.

use physalia_traces::Merged;

/// Why a set of trace files cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A directory holds no `.jsonl` file.
    #[error("{0}: no .jsonl trace file in this directory")]
    EmptyDir(String),
    /// A file is not a valid trace.
    #[error(transparent)]
    Read(#[from] physalia_traces::ReadError),
    /// The files do not merge into one causal order.
    #[error(transparent)]
    Merge(#[from] physalia_traces::MergeError),
}

/// Reads and merges trace files; a directory stands for every `.jsonl` file in it.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Merged, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<std::path::PathBuf> = std::fs::read_dir(p)
                .map_err(|source| LoadError::Io {
                    path: p.display().to_string(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                return Err(LoadError::EmptyDir(p.display().to_string()));
            }
            for f in inside {
                files.push(physalia_traces::read_path(&f)?);
            }
        } else {
            files.push(physalia_traces::read_path(p)?);
        }
    }
    Ok(physalia_traces::merge(files)?)
}
