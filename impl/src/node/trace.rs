//! Per-node trace files, recorded through the `tracing` layer of `physalia_traces`.
//!
//! A trace file holds one cell's events of one node (its header names the cell), so a node
//! with many cells writes one file per cell and incarnation:
//! `DIR/<cell>/n<node>.i<incarnation>.jsonl`. The layer's sink learns which cell an event
//! belongs to from [`record`], which the runtime calls on the thread that steps the cell.
//! Each line reaches the kernel (a line-buffered file) before the step's WAL record is
//! written and its messages are queued, so a node killed with SIGKILL leaves no durable
//! write and no receive that its trace does not show. (Buffering lines across steps would
//! have to flush before every WAL append and send anyway: the page cache survives SIGKILL.)

use std::cell::Cell as StdCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, LineWriter};
use std::path::PathBuf;

use physalia_traces::{Header, LineSink, NodeId, TraceEvent, TraceWriter};

thread_local! {
    static CURRENT: StdCell<u32> = const { StdCell::new(u32::MAX) };
}

/// Records `event` of the cell with local index `cell` (see [`CellFiles`]).
pub fn record(cell: u32, event: &TraceEvent) {
    CURRENT.with(|c| c.set(cell));
    physalia_traces::record(event);
    CURRENT.with(|c| c.set(u32::MAX));
}

/// A [`LineSink`] writing each cell's events of this node to its own file.
pub struct CellFiles {
    dir: PathBuf,
    inc: u64,
    headers: HashMap<u32, Header>,
    files: HashMap<u32, TraceWriter<LineWriter<File>>>,
}

impl CellFiles {
    /// Files under `dir` for this node's incarnation `inc`; each cell's header is given by
    /// [`CellFiles::set_header`] before its first event.
    pub fn new(dir: PathBuf, inc: u64) -> CellFiles {
        CellFiles {
            dir,
            inc,
            headers: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// The header of the cell with local index `cell` (its file starts with it).
    pub fn set_header(&mut self, cell: u32, header: Header) {
        self.headers.insert(cell, header);
    }

    /// Flushes every open file.
    pub fn flush(&mut self) -> io::Result<()> {
        for w in self.files.values_mut() {
            w.flush()?;
        }
        Ok(())
    }
}

impl LineSink for CellFiles {
    fn write_line(&mut self, node: NodeId, json: &str) -> io::Result<()> {
        let cell = CURRENT.with(|c| c.get());
        if !self.files.contains_key(&cell) {
            let header = self
                .headers
                .get(&cell)
                .ok_or_else(|| io::Error::other(format!("trace event of unknown cell {cell}")))?;
            let dir = self.dir.join(&header.cell);
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{node}.i{}.jsonl", self.inc));
            let file = LineWriter::new(File::create(path)?);
            self.files.insert(cell, TraceWriter::new(file, header)?);
        }
        self.files
            .get_mut(&cell)
            .expect("just opened")
            .write_raw(json)
    }
}
