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

use physalia_traces::NodeId;
use serde::{Deserialize, Serialize};

mod parse;

pub use parse::parse_node_id;
pub(crate) use parse::Lines;

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

impl Topology {
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
