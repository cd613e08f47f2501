//! Tailing one cell's trace files while nodes write them.
//!
//! A poll lists the cell's directory (a file that appears later — a restarted node's new
//! incarnation — is picked up), then reads what each file gained since the last poll. Only
//! whole lines are parsed: the bytes after the last newline are a line being written, kept
//! for the next poll (at most [`MAX_LINE`] bytes of them). An incarnation is complete once
//! its file was read to the end in a poll that began after a newer incarnation's file of the
//! same node existed: the older process had stopped before the newer one started.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use physalia_traces::{
    parse_event, parse_header, Follow, FollowError, Located, NodeId, ReadError, MAX_LINE,
};

/// The most bytes read from one file in one poll (the rest waits for the next poll), so a
/// poll's memory is bounded whatever a file's size.
pub const READ_CHUNK: usize = 1 << 20;

/// Why a cell cannot be followed on.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A file could not be listed or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file got shorter: it was rewritten, not appended to.
    #[error(
        "{path}: the file shrank from {was} to {now} bytes (trace files are only appended to)"
    )]
    Shrank {
        /// The path.
        path: String,
        /// Bytes read before.
        was: u64,
        /// Its length now.
        now: u64,
    },
    /// A line is not a valid header or event.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The events do not merge.
    #[error(transparent)]
    Follow(#[from] FollowError),
}

/// One trace file being followed.
struct Tail {
    name: String,
    offset: u64,
    partial: Vec<u8>,
    lines: usize,
    /// Per node whose events it holds, the newest incarnation (a node's file holds one).
    incs: BTreeMap<NodeId, u64>,
    /// Whether this poll read the file to its end.
    at_end: bool,
    /// The `(node, incarnation)`s sealed because of this file's end.
    sealed: Vec<(NodeId, u64)>,
}

/// The files of one cell (one directory).
pub struct CellFiles {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Tail>,
    bytes: u64,
}

impl CellFiles {
    /// The files of the cell in `dir`.
    pub fn new(dir: PathBuf) -> CellFiles {
        CellFiles {
            dir,
            files: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Files followed.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// One poll: lists the directory, reads what every file gained into `follow`, and seals
    /// the incarnations known complete. A file of a node with `hold` events or more waiting
    /// to be ordered is not read further this time (the others' files hold what they wait
    /// for), so that reading never runs ahead of ordering. Returns the bytes read.
    pub fn poll(&mut self, follow: &mut Follow, hold: usize) -> Result<u64, TailError> {
        for path in list(&self.dir)? {
            self.files.entry(path.clone()).or_insert_with(|| Tail {
                name: path.display().to_string(),
                offset: 0,
                partial: Vec::new(),
                lines: 0,
                incs: BTreeMap::new(),
                at_end: false,
                sealed: Vec::new(),
            });
        }
        let mut bytes = 0;
        for (path, tail) in &mut self.files {
            tail.at_end = false;
            if tail.incs.keys().any(|&n| follow.waiting_of(n) >= hold) {
                continue;
            }
            let n = tail.read(path, follow, hold)?;
            self.bytes += n;
            bytes += n;
        }
        // Every file known now was listed before the reads above.
        let mut newest: BTreeMap<NodeId, u64> = BTreeMap::new();
        for (&n, &i) in self.files.values().flat_map(|t| t.incs.iter()) {
            let e = newest.entry(n).or_insert(i);
            *e = (*e).max(i);
        }
        for tail in self.files.values_mut().filter(|t| t.at_end) {
            let done: Vec<(NodeId, u64)> = tail
                .incs
                .iter()
                .map(|(&n, &i)| (n, i))
                .filter(|(n, i)| newest.get(n).is_some_and(|m| m > i))
                .filter(|k| !tail.sealed.contains(k))
                .collect();
            if done.is_empty() {
                continue;
            }
            // Its process has stopped: a last line without its newline is whole or torn.
            tail.last_line(follow)?;
            for (node, inc) in done {
                follow.seal(node, inc);
                tail.sealed.push((node, inc));
            }
        }
        Ok(bytes)
    }

    /// At the end of the input: every file's last line without a newline is read as a
    /// line (whole, or an error naming it), as the batch reader reads it.
    pub fn end_of_input(&mut self, follow: &mut Follow) -> Result<(), TailError> {
        for tail in self.files.values_mut() {
            tail.last_line(follow)?;
        }
        Ok(())
    }
}

/// The `.jsonl` files in `dir` (none while it does not exist yet).
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, TailError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TailError::Io {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    out.sort();
    Ok(out)
}

impl Tail {
    /// Reads what the file gained (at most [`READ_CHUNK`] bytes, and lines only while the
    /// follower has room: below its backlog, and below `hold` waiting events of this file's
    /// node); returns the bytes consumed.
    fn read(&mut self, path: &Path, follow: &mut Follow, hold: usize) -> Result<u64, TailError> {
        let io = |source| TailError::Io {
            path: self.name.clone(),
            source,
        };
        let mut f = File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len < self.offset {
            return Err(TailError::Shrank {
                path: self.name.clone(),
                was: self.offset,
                now: len,
            });
        }
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut buf = Vec::new();
        let n = (&mut f)
            .take(READ_CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
        let start = self.offset;
        if n == 0 {
            self.at_end = true;
            return Ok(0);
        }
        let mut pos = 0;
        while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
            // The bound on waiting events, and each node's share of it (so that one file
            // cannot fill it with events that wait for another's): what is not consumed is
            // read again next poll.
            let full = follow.waiting() >= follow.backlog()
                || self.incs.keys().any(|&n| follow.waiting_of(n) >= hold);
            if full {
                self.offset = start + pos as u64;
                self.at_end = false;
                return Ok(pos as u64);
            }
            let end = pos + nl;
            if self.partial.is_empty() {
                self.line(&buf[pos..end], follow)?;
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(&buf[pos..end]);
                self.line(&joined, follow)?;
            }
            pos = end + 1;
        }
        self.partial.extend_from_slice(&buf[pos..]);
        if self.partial.len() > MAX_LINE {
            return Err(ReadError::LineTooLong {
                file: self.name.clone(),
                line: self.lines + 1,
                len: self.partial.len(),
            }
            .into());
        }
        self.offset = start + n as u64;
        self.at_end = self.offset >= len;
        Ok(n as u64)
    }

    /// The bytes after the last newline, as a line (once the writer is known to be done).
    fn last_line(&mut self, follow: &mut Follow) -> Result<(), TailError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.partial);
        self.line(&raw, follow)
    }

    /// Parses one whole line into `follow`.
    fn line(&mut self, raw: &[u8], follow: &mut Follow) -> Result<(), TailError> {
        self.lines += 1;
        let line = self.lines;
        let text = std::str::from_utf8(raw).map_err(|e| ReadError::Invalid {
            file: self.name.clone(),
            line,
            field: ".".into(),
            message: format!("not UTF-8: {e}"),
        })?;
        if line == 1 {
            let header = parse_header(&self.name, text)?;
            follow.add_header(&self.name, &header)?;
            return Ok(());
        }
        let event = parse_event(&self.name, line, text)?;
        // In one file, a node's newer incarnation ends its older one.
        let previous = self.incs.insert(event.node, event.inc);
        if let Some(p) = previous.filter(|&p| p < event.inc) {
            follow.seal(event.node, p);
        }
        follow.add(Located {
            file: self.name.clone(),
            line,
            event,
        })?;
        Ok(())
    }
}
