//! Reading a topology file: the TOML shape, line numbers, and the checks that make the
//! errors name file, line and field.

use std::collections::HashMap;
use std::path::Path;

use physalia_traces::NodeId;
use serde::Deserialize;
use toml::Spanned;

use super::{Client, Domain, DomainIx, Level, Node, Topology, TopologyError, MAX_JURY};

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
}
