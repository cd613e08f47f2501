//! A placement: each cell's client and jury, its file format, and the two baseline
//! strategies (`rotation`, `random`). The domain-aware strategy is in
//! [`crate::domain_aware`], its swap heuristic in [`crate::swap`].
//!
//! The placement file is TOML (or JSON with the same fields, when the file name ends in
//! `.json`):
//!
//! ```toml
//! format = "physalia-colony-placement"
//! version = 1
//! strategy = "domain-aware+swaps"
//! seed = 1
//!
//! [[cell]]
//! id = "c0"
//! client = "vol-0"     # optional: a cell with no client has no exempt domain
//! jury = ["n3", "n17", "n25", "n40", "n52", "n66", "n71"]
//! ```

use std::collections::HashSet;
use std::path::Path;

use physalia_traces::NodeId;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::rng::Rng;
use crate::topology::{parse_node_id, Lines, Topology, MAX_JURY};

/// The `format` field of a placement file.
pub const FORMAT: &str = "physalia-colony-placement";

/// One cell's placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellPlacement {
    /// The cell's id (its partition key).
    pub id: String,
    /// The client the cell serves, if any.
    pub client: Option<String>,
    /// The jury, ascending by node id.
    pub jury: Vec<NodeId>,
}

/// A placement of cells on nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The strategy that made it.
    pub strategy: String,
    /// The seed it used, if any.
    pub seed: Option<u64>,
    /// The cells.
    pub cells: Vec<CellPlacement>,
}

/// A placement in indices: what the checker and the evaluators work on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Per cell: its members (indices into [`Topology::nodes`], ascending).
    pub members: Vec<Vec<usize>>,
    /// Per cell: its client (index into [`Topology::clients`]).
    pub client: Vec<Option<usize>>,
}

impl Resolved {
    /// The number of cells.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Cells per node.
    pub fn load(&self, nodes: usize) -> Vec<u32> {
        let mut load = vec![0u32; nodes];
        for m in &self.members {
            for &n in m {
                load[n] += 1;
            }
        }
        load
    }

    /// Turns indices back into a placement with cell ids `c0..`.
    pub fn to_placement(&self, topo: &Topology, strategy: &str, seed: Option<u64>) -> Placement {
        let cells = self
            .members
            .iter()
            .zip(&self.client)
            .enumerate()
            .map(|(i, (m, c))| CellPlacement {
                id: format!("c{i}"),
                client: c.map(|c| topo.clients[c].name.clone()),
                jury: m.iter().map(|&n| topo.nodes[n].id).collect(),
            })
            .collect();
        Placement {
            strategy: strategy.to_string(),
            seed,
            cells,
        }
    }
}

/// What went wrong with a placement file.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML/JSON of the placement's shape (the message names line and column).
    #[error("{file}: not a valid placement file: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// One field of one cell is wrong.
    #[error("{file}{line}: cell {cell}: field `{field}`: {problem}")]
    Field {
        /// The file.
        file: String,
        /// `:<line>` where known (TOML), empty for JSON.
        line: String,
        /// The cell's id (or its position).
        cell: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The file as a whole is wrong.
    #[error("{file}: {problem}")]
    Whole {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOut {
    format: String,
    version: u32,
    strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    cell: Vec<CellOut>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CellOut {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    jury: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlIn {
    format: Spanned<String>,
    version: Spanned<i64>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    cell: Vec<TomlCell>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlCell {
    id: Spanned<String>,
    client: Option<Spanned<String>>,
    jury: Spanned<Vec<String>>,
}

/// A cell as read, with the lines of its fields where the format has them.
struct CellIn {
    id: String,
    id_line: Option<usize>,
    client: Option<(String, Option<usize>)>,
    jury: Vec<String>,
    jury_line: Option<usize>,
}

fn line_suffix(line: Option<usize>) -> String {
    line.map_or(String::new(), |l| format!(":{l}"))
}

impl Placement {
    /// Serialises as TOML (the default file format).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.file_out()).unwrap_or_default()
    }

    /// Serialises as pretty JSON (same fields as the TOML).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.file_out()).unwrap_or_default()
    }

    fn file_out(&self) -> FileOut {
        FileOut {
            format: FORMAT.to_string(),
            version: 1,
            strategy: self.strategy.clone(),
            seed: self.seed,
            cell: self
                .cells
                .iter()
                .map(|c| CellOut {
                    id: c.id.clone(),
                    client: c.client.clone(),
                    jury: c.jury.iter().map(|n| n.to_string()).collect(),
                })
                .collect(),
        }
    }

    /// Writes the placement: JSON if `path` ends in `.json`, TOML otherwise.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = if is_json(path) {
            self.to_json()
        } else {
            self.to_toml()
        };
        std::fs::write(path, text)
    }

    /// Reads a placement file (JSON if the name ends in `.json`, TOML otherwise) and
    /// checks it against the topology: every member a node of it, no member twice, 1 to 7
    /// members, every client one of it, no cell id twice.
    pub fn load(path: &Path, topo: &Topology) -> Result<(Placement, Resolved), PlacementError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PlacementError::Read {
            file: file.clone(),
            source,
        })?;
        if is_json(path) {
            Self::parse_json(&text, &file, topo)
        } else {
            Self::parse_toml(&text, &file, topo)
        }
    }

    /// Parses TOML placement text; `file` names it in errors.
    pub fn parse_toml(
        text: &str,
        file: &str,
        topo: &Topology,
    ) -> Result<(Placement, Resolved), PlacementError> {
        let raw: TomlIn = toml::from_str(text).map_err(|e| PlacementError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let lines = Lines::new(text);
        header_ok(
            file,
            raw.format.get_ref(),
            *raw.version.get_ref(),
            Some(lines.line(raw.format.span().start)),
        )?;
        let cells = raw
            .cell
            .into_iter()
            .map(|c| CellIn {
                id_line: Some(lines.line(c.id.span().start)),
                id: c.id.into_inner(),
                client: c.client.map(|s| {
                    let l = lines.line(s.span().start);
                    (s.into_inner(), Some(l))
                }),
                jury_line: Some(lines.line(c.jury.span().start)),
                jury: c.jury.into_inner(),
            })
            .collect();
        resolve(file, raw.strategy, raw.seed, cells, topo)
    }

    /// Parses JSON placement text; `file` names it in errors.
    pub fn parse_json(
        text: &str,
        file: &str,
        topo: &Topology,
    ) -> Result<(Placement, Resolved), PlacementError> {
        let raw: FileOut = serde_json::from_str(text).map_err(|e| PlacementError::Syntax {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        header_ok(file, &raw.format, i64::from(raw.version), None)?;
        let cells = raw
            .cell
            .into_iter()
            .map(|c| CellIn {
                id: c.id,
                id_line: None,
                client: c.client.map(|s| (s, None)),
                jury: c.jury,
                jury_line: None,
            })
            .collect();
        resolve(file, Some(raw.strategy), raw.seed, cells, topo)
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn header_ok(
    file: &str,
    format: &str,
    version: i64,
    line: Option<usize>,
) -> Result<(), PlacementError> {
    if format != FORMAT {
        return Err(PlacementError::Whole {
            file: format!("{file}{}", line_suffix(line)),
            problem: format!("field `format` is '{format}', expected '{FORMAT}'"),
        });
    }
    if version != 1 {
        return Err(PlacementError::Whole {
            file: format!("{file}{}", line_suffix(line)),
            problem: format!("field `version` is {version}; this build reads version 1"),
        });
    }
    Ok(())
}

fn resolve(
    file: &str,
    strategy: Option<String>,
    seed: Option<u64>,
    cells: Vec<CellIn>,
    topo: &Topology,
) -> Result<(Placement, Resolved), PlacementError> {
    let mut ids = HashSet::new();
    let mut out = Placement {
        strategy: strategy.unwrap_or_else(|| "unknown".into()),
        seed,
        cells: Vec::with_capacity(cells.len()),
    };
    let mut resolved = Resolved {
        members: Vec::with_capacity(cells.len()),
        client: Vec::with_capacity(cells.len()),
    };
    for (pos, c) in cells.into_iter().enumerate() {
        let name = if c.id.trim().is_empty() {
            format!("#{pos}")
        } else {
            c.id.clone()
        };
        let err =
            |line: Option<usize>, field: &'static str, problem: String| PlacementError::Field {
                file: file.to_string(),
                line: line_suffix(line),
                cell: name.clone(),
                field,
                problem,
            };
        if c.id.trim().is_empty() {
            return Err(err(c.id_line, "id", "empty cell id".into()));
        }
        if !ids.insert(c.id.clone()) {
            return Err(err(c.id_line, "id", "duplicate cell id".into()));
        }
        if c.jury.is_empty() || c.jury.len() > MAX_JURY {
            return Err(err(
                c.jury_line,
                "jury",
                format!("{} members; a jury has 1 to {MAX_JURY}", c.jury.len()),
            ));
        }
        let mut members = Vec::with_capacity(c.jury.len());
        let mut jury = Vec::with_capacity(c.jury.len());
        for m in &c.jury {
            let id = parse_node_id(m).ok_or_else(|| {
                err(
                    c.jury_line,
                    "jury",
                    format!("'{m}' is not a node id (n<integer>)"),
                )
            })?;
            let ix = topo.node_index(id).ok_or_else(|| {
                err(
                    c.jury_line,
                    "jury",
                    format!("node {id} is not in the topology {}", topo.source),
                )
            })?;
            if members.contains(&ix) {
                return Err(err(c.jury_line, "jury", format!("node {id} appears twice")));
            }
            members.push(ix);
            jury.push(id);
        }
        members.sort_unstable();
        jury.sort_unstable();
        let client = match &c.client {
            None => None,
            Some((cl, line)) => Some(topo.client_index(cl).ok_or_else(|| {
                err(
                    *line,
                    "client",
                    format!("client '{cl}' is not in the topology (or clients file)"),
                )
            })?),
        };
        resolved.members.push(members);
        resolved.client.push(client);
        out.cells.push(CellPlacement {
            id: c.id,
            client: c.client.map(|(c, _)| c),
            jury,
        });
    }
    Ok((out, resolved))
}

/// What a placement strategy is asked for: how many cells, their clients and jury sizes.
#[derive(Clone, Debug)]
pub struct Demand {
    /// Per cell: its client (index into the topology's clients), if any.
    pub client: Vec<Option<usize>>,
    /// Per cell: the jury size it asks for (1..=7).
    pub jury: Vec<usize>,
}

impl Demand {
    /// `cells` cells, assigned to the topology's clients round-robin (cell `i` to client
    /// `i mod clients`; none if there are no clients), each asking for the client's `jury`
    /// or else `default_jury` nodes.
    pub fn round_robin(topo: &Topology, cells: usize, default_jury: usize) -> Demand {
        let default_jury = default_jury.clamp(1, MAX_JURY);
        let m = topo.clients.len();
        let client: Vec<Option<usize>> = (0..cells)
            .map(|i| if m == 0 { None } else { Some(i % m) })
            .collect();
        let jury = client
            .iter()
            .map(|c| c.and_then(|c| topo.clients[c].jury).unwrap_or(default_jury))
            .collect();
        Demand { client, jury }
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.client.len()
    }

    /// Whether no cell is asked for.
    pub fn is_empty(&self) -> bool {
        self.client.is_empty()
    }
}

/// The old behaviour (`physalia_impl::node::placement`): cell `i`'s jury is the `k` nodes
/// (all, if fewer) starting at position `i mod n` of the node list sorted by id.
pub fn rotation(topo: &Topology, demand: &Demand) -> Resolved {
    let n = topo.nodes.len();
    let members = demand
        .jury
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let k = k.min(n);
            let start = i % n.max(1);
            let mut m: Vec<usize> = (0..k).map(|j| (start + j) % n).collect();
            m.sort_unstable();
            m
        })
        .collect();
    Resolved {
        members,
        client: demand.client.clone(),
    }
}

/// Uniformly random juries of distinct nodes, from the whole colony, seeded.
pub fn random(topo: &Topology, demand: &Demand, seed: u64) -> Resolved {
    let n = topo.nodes.len();
    let mut rng = Rng::derived(seed, 0x7261_6e64);
    let mut pool: Vec<usize> = (0..n).collect();
    let members = demand
        .jury
        .iter()
        .map(|&k| {
            let k = k.min(n);
            // A partial Fisher-Yates shuffle: the first k of the pool.
            for j in 0..k {
                let r = j + rng.below(n - j);
                pool.swap(j, r);
            }
            let mut m = pool[..k].to_vec();
            m.sort_unstable();
            m
        })
        .collect();
    Resolved {
        members,
        client: demand.client.clone(),
    }
}
