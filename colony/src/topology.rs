//! The colony's topology: every node's failure domains and every client's location.
//!
//! A topology file is TOML (documented field by field in `colony/README.md`):
//!
//! ```toml
//! [[node]]
//! id = "n0"            # n<integer>: the node's id in the cluster
//! region = "r1"
//! az = "r1-az1"
//! row = "r1-az1-row1"  # optional level: named by every node or by none
//! rack = "r1-az1-row1-k1"
//! power = "r1-az1-p1"
//! color = "blue"
//!
//! [[client]]
//! id = "vol-0"
//! region = "r1"
//! az = "r1-az1"
//! row = "r1-az1-row1"  # optional; so are rack and power
//! jury = 5             # optional: this client's cells get 5 nodes instead of 7
//! ```
//!
//! Domain names are unique per level; each domain has one parent (an AZ is in one region,
//! a row in one AZ, a rack in one row, a power domain in one AZ), and a file that puts a
//! domain under two parents is rejected with both lines named.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use physalia_traces::NodeId;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The largest jury a cell has (the paper's 7).
pub const MAX_JURY: usize = 7;

/// A level of failure domains, from the widest to the narrowest, then colors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A region: cells stay in their client's region.
    Region,
    /// An availability zone (inside one region).
    Az,
    /// A row of racks (inside one AZ): the network unit under the AZ.
    Row,
    /// A rack (inside one row): top-of-rack switch.
    Rack,
    /// A power domain (inside one AZ; it may feed racks of several rows).
    Power,
    /// A color: a deployment group. Not a physical domain; every cell is of one color.
    Color,
}

impl Level {
    /// Every level, widest first.
    pub const ALL: [Level; 6] = [
        Level::Region,
        Level::Az,
        Level::Row,
        Level::Rack,
        Level::Power,
        Level::Color,
    ];

    /// The levels the placement rule constrains: a failure of one such domain that the
    /// client survives must leave the cell a quorum.
    pub const RULE: [Level; 4] = [Level::Az, Level::Row, Level::Rack, Level::Power];

    /// The field name in files and output.
    pub fn name(self) -> &'static str {
        match self {
            Level::Region => "region",
            Level::Az => "az",
            Level::Row => "row",
            Level::Rack => "rack",
            Level::Power => "power",
            Level::Color => "color",
        }
    }

    /// Position in [`Level::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The levels a domain of this level may sit inside, nearest first; the first one the
    /// topology has is its parent level.
    fn parent_levels(self) -> &'static [Level] {
        match self {
            Level::Region | Level::Color => &[],
            Level::Az => &[Level::Region],
            Level::Row => &[Level::Az],
            Level::Rack => &[Level::Row, Level::Az],
            Level::Power => &[Level::Az],
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The index of a domain in [`Topology::domains`].
pub type DomainIx = usize;

/// A failure domain (or a color) and the nodes in it.
#[derive(Clone, Debug)]
pub struct Domain {
    /// Its level.
    pub level: Level,
    /// Its name (unique within the level).
    pub name: String,
    /// The domain it sits inside, if its level has a parent level in this topology.
    pub parent: Option<DomainIx>,
    /// Indices (into [`Topology::nodes`]) of its nodes, ascending.
    pub nodes: Vec<usize>,
    /// The line of the file that first named it.
    pub line: usize,
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level, self.name)
    }
}

/// A node and its domains.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its cluster id.
    pub id: NodeId,
    /// Its domain at each level ([`Level::index`]); `None` where the topology has no such
    /// level.
    pub domains: [Option<DomainIx>; 6],
    /// The line of its `id` in the file.
    pub line: usize,
}

impl Node {
    /// Its domain at `level`.
    pub fn domain(&self, level: Level) -> Option<DomainIx> {
        self.domains[level.index()]
    }
}

/// A client (an EBS volume's host, say) and where it is.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its name.
    pub name: String,
    /// Its domain at each level it names (never a color).
    pub domains: [Option<DomainIx>; 6],
    /// The jury size its cells ask for, if not the default.
    pub jury: Option<usize>,
    /// The line of its `id` in the file.
    pub line: usize,
}

impl Client {
    /// Its domain at `level`.
    pub fn domain(&self, level: Level) -> Option<DomainIx> {
        self.domains[level.index()]
    }
}

/// What went wrong with a topology or clients file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not the shape of a topology (the message names line and column).
    #[error("{file}: not a valid topology file: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// One field of one entry is wrong.
    #[error("{file}:{line}: {item}: field `{field}`: {problem}")]
    Field {
        /// The file.
        file: String,
        /// The line of the field.
        line: usize,
        /// The entry (`node n3`, `client vol-1`).
        item: String,
        /// The field.
        field: &'static str,
        /// What is wrong and what to do.
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

/// A validated topology: nodes sorted by id, domains indexed.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Where it was read from (for messages).
    pub source: String,
    /// Its nodes, sorted by id.
    pub nodes: Vec<Node>,
    /// Its clients, in file order.
    pub clients: Vec<Client>,
    /// Every domain at every level.
    pub domains: Vec<Domain>,
    present: [bool; 6],
    by_name: Vec<HashMap<String, DomainIx>>,
    node_ix: HashMap<NodeId, usize>,
    client_ix: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    node: Vec<RawNode>,
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Spanned<String>,
    region: Spanned<String>,
    az: Spanned<String>,
    row: Option<Spanned<String>>,
    rack: Option<Spanned<String>>,
    power: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Spanned<String>,
    region: Spanned<String>,
    az: Spanned<String>,
    row: Option<Spanned<String>>,
    rack: Option<Spanned<String>>,
    power: Option<Spanned<String>>,
    jury: Option<Spanned<i64>>,
}

/// Byte offset to 1-based line.
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset).max(1)
    }
}

/// Parses `n<integer>`.
pub fn parse_node_id(s: &str) -> Option<NodeId> {
    let digits = s.strip_prefix('n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(NodeId)
}

struct Builder<'a> {
    file: &'a str,
    lines: Lines,
    t: Topology,
}

impl Builder<'_> {
    fn field_err(
        &self,
        span: std::ops::Range<usize>,
        item: String,
        field: &'static str,
        problem: String,
    ) -> TopologyError {
        TopologyError::Field {
            file: self.file.to_string(),
            line: self.lines.line(span.start),
            item,
            field,
            problem,
        }
    }

    /// Finds or creates the domain `name` at `level` under `parent`.
    fn domain(
        &mut self,
        level: Level,
        value: &Spanned<String>,
        parent: Option<DomainIx>,
        item: &str,
    ) -> Result<DomainIx, TopologyError> {
        let name = value.get_ref().trim();
        if name.is_empty() {
            return Err(self.field_err(
                value.span(),
                item.to_string(),
                level.name(),
                "empty name".into(),
            ));
        }
        let line = self.lines.line(value.span().start);
        if let Some(&ix) = self.t.by_name[level.index()].get(name) {
            let d = &self.t.domains[ix];
            if d.parent != parent {
                let here = parent.map_or("none".to_string(), |p| self.t.domains[p].to_string());
                let there = d
                    .parent
                    .map_or("none".to_string(), |p| self.t.domains[p].to_string());
                return Err(self.field_err(
                    value.span(),
                    item.to_string(),
                    level.name(),
                    format!(
                        "{level} '{name}' is in {here} here but in {there} at line {}; \
                         a domain has one parent (use distinct names)",
                        d.line
                    ),
                ));
            }
            return Ok(ix);
        }
        let ix = self.t.domains.len();
        self.t.domains.push(Domain {
            level,
            name: name.to_string(),
            parent,
            nodes: Vec::new(),
            line,
        });
        self.t.by_name[level.index()].insert(name.to_string(), ix);
        Ok(ix)
    }

    fn parent_of(&self, level: Level, doms: &[Option<DomainIx>; 6]) -> Option<DomainIx> {
        level
            .parent_levels()
            .iter()
            .find(|l| self.t.present[l.index()])
            .and_then(|l| doms[l.index()])
    }

    fn add_node(&mut self, raw: &RawNode) -> Result<(), TopologyError> {
        let id_text = raw.id.get_ref();
        let item = format!("node {id_text}");
        let id = parse_node_id(id_text).ok_or_else(|| {
            self.field_err(
                raw.id.span(),
                item.clone(),
                "id",
                format!("'{id_text}' is not a node id: write n<integer>, e.g. \"n12\""),
            )
        })?;
        if let Some(&other) = self.t.node_ix.get(&id) {
            let first = self.t.nodes[other].line;
            return Err(self.field_err(
                raw.id.span(),
                item,
                "id",
                format!("duplicate node id (first at line {first})"),
            ));
        }
        let values = [
            Some(&raw.region),
            Some(&raw.az),
            raw.row.as_ref(),
            raw.rack.as_ref(),
            raw.power.as_ref(),
            raw.color.as_ref(),
        ];
        let mut doms = [None; 6];
        for level in Level::ALL {
            let v = values[level.index()];
            match (v, self.t.present[level.index()]) {
                (Some(v), true) => {
                    let parent = self.parent_of(level, &doms);
                    doms[level.index()] = Some(self.domain(level, v, parent, &item)?);
                }
                (None, false) => {}
                (Some(v), false) => {
                    return Err(self.field_err(
                        v.span(),
                        item,
                        level.name(),
                        format!(
                            "named here but not by the first node: a level is named by \
                             every node or by none (add `{level}` to every node)"
                        ),
                    ))
                }
                (None, true) => {
                    return Err(self.field_err(
                        raw.id.span(),
                        item,
                        level.name(),
                        format!(
                            "missing: the other nodes name their {level}; a level is named \
                             by every node or by none"
                        ),
                    ))
                }
            }
        }
        let ix = self.t.nodes.len();
        self.t.node_ix.insert(id, ix);
        self.t.nodes.push(Node {
            id,
            domains: doms,
            line: self.lines.line(raw.id.span().start),
        });
        Ok(())
    }

    fn lookup(
        &self,
        level: Level,
        v: &Spanned<String>,
        item: &str,
    ) -> Result<DomainIx, TopologyError> {
        let name = v.get_ref().trim();
        if !self.t.present[level.index()] {
            return Err(self.field_err(
                v.span(),
                item.to_string(),
                level.name(),
                format!("the topology's nodes name no {level}; leave this field out"),
            ));
        }
        self.t.by_name[level.index()]
            .get(name)
            .copied()
            .ok_or_else(|| {
                self.field_err(
                    v.span(),
                    item.to_string(),
                    level.name(),
                    format!("no node of the topology is in {level} '{name}'"),
                )
            })
    }

    fn add_client(&mut self, raw: &RawClient) -> Result<(), TopologyError> {
        let name = raw.id.get_ref().trim().to_string();
        let item = format!("client {name}");
        if name.is_empty() {
            return Err(self.field_err(raw.id.span(), item, "id", "empty name".into()));
        }
        if let Some(&other) = self.t.client_ix.get(&name) {
            let first = self.t.clients[other].line;
            return Err(self.field_err(
                raw.id.span(),
                item,
                "id",
                format!("duplicate client id (first at line {first})"),
            ));
        }
        let values = [
            Some(&raw.region),
            Some(&raw.az),
            raw.row.as_ref(),
            raw.rack.as_ref(),
            raw.power.as_ref(),
        ];
        let mut doms = [None; 6];
        for (i, v) in values.iter().enumerate() {
            let level = Level::ALL[i];
            let Some(v) = v else { continue };
            let ix = self.lookup(level, v, &item)?;
            // The client's domains must nest as the topology's do.
            if let Some(parent_level) = level
                .parent_levels()
                .iter()
                .find(|l| self.t.present[l.index()])
            {
                let want = self.t.domains[ix].parent;
                if let (Some(have), Some(want)) = (doms[parent_level.index()], want) {
                    if have != want {
                        return Err(self.field_err(
                            v.span(),
                            item,
                            level.name(),
                            format!(
                                "{} is in {}, not in the client's {}",
                                self.t.domains[ix], self.t.domains[want], self.t.domains[have]
                            ),
                        ));
                    }
                }
            }
            doms[i] = Some(ix);
        }
        let jury = match &raw.jury {
            None => None,
            Some(j) => {
                let v = *j.get_ref();
                if !(1..=MAX_JURY as i64).contains(&v) {
                    return Err(self.field_err(
                        j.span(),
                        item,
                        "jury",
                        format!("{v} is not a jury size: give 1 to {MAX_JURY}"),
                    ));
                }
                Some(v as usize)
            }
        };
        self.t.client_ix.insert(name.clone(), self.t.clients.len());
        self.t.clients.push(Client {
            name,
            domains: doms,
            jury,
            line: self.lines.line(raw.id.span().start),
        });
        Ok(())
    }
}

fn parse_raw(text: &str, file: &str) -> Result<RawFile, TopologyError> {
    toml::from_str(text).map_err(|e| TopologyError::Syntax {
        file: file.to_string(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn read(path: &Path) -> Result<String, TopologyError> {
    std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        file: path.display().to_string(),
        source,
    })
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        Self::parse(&read(path)?, &path.display().to_string())
    }

    /// Parses and validates a topology from TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Topology, TopologyError> {
        let raw = parse_raw(text, file)?;
        let Some(first) = raw.node.first() else {
            return Err(TopologyError::Whole {
                file: file.to_string(),
                problem: "no [[node]] entries: a topology names at least one node".into(),
            });
        };
        let mut present = [true; 6];
        present[Level::Row.index()] = first.row.is_some();
        present[Level::Rack.index()] = first.rack.is_some();
        present[Level::Power.index()] = first.power.is_some();
        // Without colors every node is of the one implicit color `default`.
        present[Level::Color.index()] = true;
        let implicit_color = first.color.is_none();
        let mut b = Builder {
            file,
            lines: Lines::new(text),
            t: Topology {
                source: file.to_string(),
                nodes: Vec::new(),
                clients: Vec::new(),
                domains: Vec::new(),
                present,
                by_name: vec![HashMap::new(); 6],
                node_ix: HashMap::new(),
                client_ix: HashMap::new(),
            },
        };
        let default_color = Spanned::new(0..0, "default".to_string());
        for n in &raw.node {
            if implicit_color {
                if let Some(c) = &n.color {
                    return Err(b.field_err(
                        c.span(),
                        format!("node {}", n.id.get_ref()),
                        "color",
                        "named here but not by the first node: a level is named by every \
                         node or by none (add `color` to every node)"
                            .into(),
                    ));
                }
                let fixed = RawNode {
                    id: n.id.clone(),
                    region: n.region.clone(),
                    az: n.az.clone(),
                    row: n.row.clone(),
                    rack: n.rack.clone(),
                    power: n.power.clone(),
                    color: Some(default_color.clone()),
                };
                b.add_node(&fixed)?;
            } else {
                b.add_node(n)?;
            }
        }
        for c in &raw.client {
            b.add_client(c)?;
        }
        Ok(b.t.finish())
    }

    /// Replaces the clients by those of a clients file (`[[client]]` entries only).
    pub fn load_clients(&mut self, path: &Path) -> Result<(), TopologyError> {
        let text = read(path)?;
        self.parse_clients(&text, &path.display().to_string())
    }

    /// Replaces the clients by those of clients TOML text; `file` names it in errors.
    pub fn parse_clients(&mut self, text: &str, file: &str) -> Result<(), TopologyError> {
        let raw = parse_raw(text, file)?;
        if !raw.node.is_empty() {
            return Err(TopologyError::Whole {
                file: file.to_string(),
                problem: "a clients file holds [[client]] entries only (nodes belong in the \
                          topology)"
                    .into(),
            });
        }
        let mut b = Builder {
            file,
            lines: Lines::new(text),
            t: self.clone(),
        };
        b.t.clients.clear();
        b.t.client_ix.clear();
        for c in &raw.client {
            b.add_client(c)?;
        }
        *self = b.t;
        Ok(())
    }

    fn finish(mut self) -> Topology {
        // Sort nodes by id and re-point every index at the sorted order.
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_by_key(|&i| self.nodes[i].id);
        self.nodes = order.iter().map(|&i| self.nodes[i].clone()).collect();
        self.node_ix = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i))
            .collect();
        for d in &mut self.domains {
            d.nodes.clear();
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for d in n.domains.iter().flatten() {
                self.domains[*d].nodes.push(i);
            }
        }
        self
    }

    /// Whether the topology's nodes name `level` (colors are always present: an implicit
    /// `default` when the file names none).
    pub fn has_level(&self, level: Level) -> bool {
        self.present[level.index()]
    }

    /// The index of a node.
    pub fn node_index(&self, id: NodeId) -> Option<usize> {
        self.node_ix.get(&id).copied()
    }

    /// The index of a client.
    pub fn client_index(&self, name: &str) -> Option<usize> {
        self.client_ix.get(name).copied()
    }

    /// The domains of one level, in order of first appearance.
    pub fn domains_at(&self, level: Level) -> impl Iterator<Item = DomainIx> + '_ {
        self.domains
            .iter()
            .enumerate()
            .filter(move |(_, d)| d.level == level)
            .map(|(i, _)| i)
    }

    /// Whether `domain` contains client `client` (the client names it or one inside it).
    pub fn client_in(&self, client: usize, domain: DomainIx) -> bool {
        let level = self.domains[domain].level;
        self.clients[client].domain(level) == Some(domain)
    }

    /// A one-line summary: node count and domains per level.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} nodes", self.nodes.len())];
        for level in Level::ALL {
            if self.has_level(level) {
                parts.push(format!("{} {level}", self.domains_at(level).count()));
            }
        }
        parts.push(format!("{} clients", self.clients.len()));
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[node]]
id = "n1"
region = "r"
az = "a1"
[[node]]
id = "n0"
region = "r"
az = "a2"
[[client]]
id = "x"
region = "r"
az = "a1"
"#;

    #[test]
    fn parses_and_sorts_nodes_and_indexes_domains() {
        let t = Topology::parse(SMALL, "small.toml").unwrap();
        assert_eq!(t.nodes[0].id, NodeId(0));
        assert_eq!(t.nodes[1].id, NodeId(1));
        let a1 = t.by_name[Level::Az.index()]["a1"];
        assert_eq!(t.domains[a1].nodes, vec![1]);
        assert!(!t.has_level(Level::Rack));
        assert!(t.has_level(Level::Color));
        assert!(t.client_in(0, a1));
        assert_eq!(t.nodes[0].line, 7);
    }

    fn err(text: &str) -> String {
        Topology::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err("[[node]]\nid = \"x3\"\nregion = \"r\"\naz = \"a\"\n");
        assert!(e.starts_with("t.toml:2: node x3: field `id`"), "{e}");
        let e = err("[[node]]\nid = \"n0\"\nregion = \"r\"\naz = \"a\"\nrack = \"k\"\n[[node]]\nid = \"n1\"\nregion = \"r\"\naz = \"a\"\n");
        assert!(
            e.starts_with("t.toml:7: node n1: field `rack`: missing"),
            "{e}"
        );
        let e = err("[[node]]\nid = \"n0\"\nregion = \"r1\"\naz = \"a\"\n[[node]]\nid = \"n1\"\nregion = \"r2\"\naz = \"a\"\n");
        assert!(e.starts_with("t.toml:8: node n1: field `az`"), "{e}");
        assert!(e.contains("at line 4"), "{e}");
        let e = err(&format!(
            "{SMALL}[[client]]\nid = \"y\"\nregion = \"r\"\naz = \"a9\"\n"
        ));
        assert!(e.contains("client y: field `az`: no node"), "{e}");
        let e = err("[[node]]\nid = \"n0\"\nregion = \"r\"\naz = \"a\"\nzone = 3\n");
        assert!(
            e.contains("unknown field `zone`") && e.contains("line 5"),
            "{e}"
        );
        let e = err("[[node]]\nid = \"n0\"\nregion = \"r\"\n");
        assert!(e.contains("missing field `az`"), "{e}");
        let e = err("");
        assert!(e.contains("no [[node]]"), "{e}");
        let e = err(&format!(
            "{SMALL}[[client]]\nid = \"z\"\nregion = \"r\"\naz = \"a1\"\njury = 9\n"
        ));
        assert!(e.contains("client z: field `jury`"), "{e}");
    }

    #[test]
    fn duplicate_node_names_the_first_line() {
        let e = err("[[node]]\nid = \"n0\"\nregion = \"r\"\naz = \"a\"\n[[node]]\nid = \"n0\"\nregion = \"r\"\naz = \"a\"\n");
        assert!(
            e.contains("t.toml:6") && e.contains("first at line 2"),
            "{e}"
        );
    }
}
