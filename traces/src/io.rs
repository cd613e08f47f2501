//! Writing and reading trace files (JSON Lines: a header, then one event per line).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use crate::event::{Header, TraceEvent, OLDEST_VERSION, SCHEMA, VERSION};

/// The longest trace line a writer writes or a reader reads (bytes, newline excluded). An
/// event line carries one step: its messages (a `Promise` holds at most the sender's log
/// above its snapshot, an `Accept` at most `max_batch` proposals, a `Snapshot` one cell's
/// store), its persist batch and the entries it changed, all bounded by the cell's
/// options and transaction limits; with the defaults a line stays far below this. A longer
/// line is refused rather than written, and refused by the reader before it is parsed.
pub const MAX_LINE: usize = 16 << 20;

/// Writes a trace: the header at construction, then one line per event.
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    out: W,
    events: u64,
    bytes: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Starts a trace on `out` by writing `header`.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        let bytes = write_line(&mut out, header)?;
        Ok(TraceWriter {
            out,
            events: 0,
            bytes,
        })
    }

    /// Appends one event line.
    pub fn write(&mut self, event: &TraceEvent) -> io::Result<()> {
        self.bytes += write_line(&mut self.out, event)?;
        self.events += 1;
        Ok(())
    }

    /// Appends an already serialised event line (as the tracing layer receives it).
    pub fn write_raw(&mut self, json: &str) -> io::Result<()> {
        too_long(json.len())?;
        // One write of the whole line: a crash between the JSON and its newline would
        // leave a line a reader cannot tell from one being written.
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.bytes += json.len() as u64 + 1;
        self.events += 1;
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written so far, header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn too_long(len: usize) -> io::Result<()> {
    if len > MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a trace line of {len} bytes exceeds the bound of {MAX_LINE} bytes"),
        ));
    }
    Ok(())
}

fn write_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<u64> {
    let mut line = serde_json::to_string(value).map_err(io::Error::other)?;
    too_long(line.len())?;
    line.push('\n'); // one write of the whole line (see `write_raw`)
    out.write_all(line.as_bytes())?;
    Ok(line.len() as u64)
}

/// An event with the place it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The file name given to the reader.
    pub file: String,
    /// The 1-based line number.
    pub line: usize,
    /// The event.
    pub event: TraceEvent,
}

/// A trace file as read: its header and its events in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFile {
    /// The file name given to the reader.
    pub file: String,
    /// The header line.
    pub header: Header,
    /// The events, in file order.
    pub events: Vec<Located>,
}

/// Why a trace could not be read. Every variant names the file and, where there is one,
/// the line and the field.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("{file}: cannot read the trace: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: io::Error,
    },
    /// A line is longer than [`MAX_LINE`].
    #[error("{file}:{line}: a line of {len} bytes exceeds the bound of {MAX_LINE} bytes")]
    LineTooLong {
        /// The file.
        file: String,
        /// The 1-based line number.
        line: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The file has no header line.
    #[error("{file}:1: empty trace: the first line must be a `physalia-trace` header")]
    Empty {
        /// The file.
        file: String,
    },
    /// The header names another schema.
    #[error("{file}:1: field `schema`: expected \"{SCHEMA}\", found {found}")]
    WrongSchema {
        /// The file.
        file: String,
        /// What the header said.
        found: String,
    },
    /// The header names a version this reader does not understand.
    #[error(
        "{file}:1: field `version`: this reader understands versions {OLDEST_VERSION} to {VERSION}, found {found}; \
         read it with a matching reader or convert it"
    )]
    WrongVersion {
        /// The file.
        file: String,
        /// What the header said.
        found: String,
    },
    /// A line ends before its JSON value does (e.g. a crash cut the write short).
    #[error("{file}:{line}: truncated line: the JSON ends early (at field `{field}`): {message}")]
    Truncated {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The path of the field being read when the line ended.
        field: String,
        /// The parser's message.
        message: String,
    },
    /// A line is not a valid header or event.
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The path of the offending field (`.` for the whole line).
        field: String,
        /// What was wrong.
        message: String,
    },
}

/// Reads a trace file from disk.
pub fn read_path(path: &Path) -> Result<TraceFile, ReadError> {
    let file = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| ReadError::Io {
        file: file.clone(),
        source,
    })?;
    read_str(&file, &text)
}

/// The largest pipeline window α a header may state (the core's bound on its option; a
/// window sized beyond any log is a corrupted header, and the replay adds it to slots).
pub const MAX_ALPHA: u64 = 1 << 20;

/// Reads a trace from `text`; `file` names it in errors.
pub fn read_str(file: &str, text: &str) -> Result<TraceFile, ReadError> {
    let parts: Vec<&str> = text.split('\n').collect();
    if let Some((i, raw)) = parts.iter().enumerate().find(|(_, l)| l.len() > MAX_LINE) {
        return Err(ReadError::LineTooLong {
            file: file.to_owned(),
            line: i + 1,
            len: raw.len(),
        });
    }
    let header = parse_header(file, parts[0])?;
    let mut events = Vec::with_capacity(parts.len());
    for (i, raw) in parts.iter().enumerate().skip(1) {
        if i + 1 == parts.len() && raw.is_empty() {
            break; // after the newline that ends the last line
        }
        let line = i + 1;
        let event = parse_event(file, line, raw)?;
        events.push(Located {
            file: file.to_owned(),
            line,
            event,
        });
    }
    Ok(TraceFile {
        file: file.to_owned(),
        header,
        events,
    })
}

/// Parses the header line (line 1) of the trace file `file`: its schema and version first,
/// then every field, then the bounds a header must respect.
pub fn parse_header(file: &str, header_line: &str) -> Result<Header, ReadError> {
    if header_line.trim().is_empty() {
        return Err(ReadError::Empty {
            file: file.to_owned(),
        });
    }
    check_schema(file, header_line)?;
    let header: Header = parse_line(file, 1, header_line)?;
    if !(1..=MAX_ALPHA).contains(&header.alpha) {
        return Err(ReadError::Invalid {
            file: file.to_owned(),
            line: 1,
            field: "alpha".to_owned(),
            message: format!(
                "the pipeline window must be 1 to {MAX_ALPHA} slots, found {}",
                header.alpha
            ),
        });
    }
    Ok(header)
}

/// Parses event line `line` (1-based) of the trace file `file`.
pub fn parse_event(file: &str, line: usize, raw: &str) -> Result<TraceEvent, ReadError> {
    if raw.len() > MAX_LINE {
        return Err(ReadError::LineTooLong {
            file: file.to_owned(),
            line,
            len: raw.len(),
        });
    }
    parse_line(file, line, raw)
}

/// Checks the schema name and version before the header's other fields, so that a file of
/// another version is reported as such rather than as an unknown field.
fn check_schema(file: &str, line: &str) -> Result<(), ReadError> {
    let value: serde_json::Value = parse_line(file, 1, line)?;
    let found = |k: &str| {
        value
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "nothing".to_owned())
    };
    if value.get("schema").and_then(|v| v.as_str()) != Some(SCHEMA) {
        return Err(ReadError::WrongSchema {
            file: file.to_owned(),
            found: found("schema"),
        });
    }
    let version = value.get("version").and_then(|v| v.as_u64());
    if !version.is_some_and(|v| (u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&v)) {
        return Err(ReadError::WrongVersion {
            file: file.to_owned(),
            found: found("version"),
        });
    }
    Ok(())
}

fn parse_line<T: DeserializeOwned>(file: &str, line: usize, raw: &str) -> Result<T, ReadError> {
    // The fast path; only a line that fails is parsed again to name the offending field
    // (tracking the path costs about half the reading time of a clean trace).
    if let Ok(value) = serde_json::from_str(raw) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let field = err.path().to_string();
        line_error(file, line, field, err.into_inner())
    })?;
    de.end()
        .map_err(|err| line_error(file, line, ".".to_owned(), err))?;
    Ok(value)
}

fn line_error(file: &str, line: usize, field: String, err: serde_json::Error) -> ReadError {
    // serde_json counts lines within the one line it was given: keep only the column.
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = match full.strip_suffix(&suffix) {
        Some(m) => format!("{m} (column {})", err.column()),
        None => full,
    };
    if err.is_eof() {
        ReadError::Truncated {
            file: file.to_owned(),
            line,
            field,
            message,
        }
    } else {
        ReadError::Invalid {
            file: file.to_owned(),
            line,
            field,
            message,
        }
    }
}
