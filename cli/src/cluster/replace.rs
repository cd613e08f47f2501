//! `physalia cluster replace-node`: moves every membership of one node to other nodes, one
//! cell and one change at a time, each carried out as `cluster move` does (the new member
//! taught first, the change in force before the next). The recovery of a node whose state
//! was lost (`impl/README.md`, "Amnesia"): its old memberships were its lost state's, so
//! the cells it was a member of get a new member that is taught the chosen prefix.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use physalia_impl::node::frame::FrameKey;
use physalia_impl::node::wire::{NodeStatus, Standing};
use physalia_traces::{JuryChange, NodeId};

use super::moves::{move_member, outcome_json, parse_node};
use super::{probe_client, read_cluster, ClusterFile};

/// Options of `cluster replace-node`.
#[derive(Args, Debug)]
pub struct ReplaceArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// The node whose memberships move (`2` or `n2`).
    #[arg(long, value_parser = parse_node)]
    pub node: NodeId,
    /// The node that takes them (default: for each cell, the member node outside its jury
    /// hosting the fewest cells).
    #[arg(long, value_parser = parse_node)]
    pub to: Option<NodeId>,
    /// Give up after this many seconds per cell (catch-up included).
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Print the outcome as one JSON document (`verdict`: `done` or `incomplete`, and each
    /// cell's move).
    #[arg(long)]
    pub json: bool,
}

/// How many cells one run moves at most (each move is a chosen change; a cluster of this
/// tool's size hosts far fewer).
const MAX_CELLS: usize = 4096;

/// Runs `cluster replace-node`: exit 0 once no cell's jury holds the node (each move
/// printed), 1 if some cell has no node to move to or refuses the move, 2 on a usage or
/// infrastructure error.
pub fn run(args: &ReplaceArgs) -> Result<u8> {
    let file = read_cluster(&args.dir)?;
    let key = FrameKey::from_file(&file.key_file)?;
    let ids: Vec<NodeId> = file.nodes.iter().map(|n| NodeId(n.id)).collect();
    for n in std::iter::once(args.node).chain(args.to) {
        if !ids.contains(&n) {
            bail!("{n} is not a node of the cluster in {}", args.dir.display());
        }
    }
    if args.to == Some(args.node) {
        bail!("--node and --to name the same node {}", args.node);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let views = rt.block_on(statuses(&file, &key));
    if views.is_empty() {
        bail!("no node of the cluster in {} answers", args.dir.display());
    }
    let juries = latest_juries(&views);
    let cells: Vec<(&String, &Vec<NodeId>)> = juries
        .iter()
        .filter(|(_, jury)| jury.contains(&args.node))
        .take(MAX_CELLS)
        .collect();
    let mut out = Report::new(args);
    if cells.is_empty() {
        out.say(
            format!("{} is in no cell's jury: nothing to move", args.node),
            None,
        );
        return Ok(out.finish(0));
    }
    // Load: how many juries each node is in, kept current as cells move.
    let mut load: BTreeMap<NodeId, usize> = ids.iter().map(|n| (*n, 0)).collect();
    for jury in juries.values() {
        for n in jury {
            *load.entry(*n).or_default() += 1;
        }
    }
    // A rejoined instance (generation above 0) takes no membership in a cell its lost
    // state may have been in (`impl/README.md`, "Amnesia"): never a target.
    let eligible: Vec<NodeId> = views
        .iter()
        .filter(|s| {
            s.standing == Standing::Member && s.node != args.node && s.instance.generation == 0
        })
        .map(|s| s.node)
        .collect();
    if let Some(to) = args.to {
        if let Some(s) = views.iter().find(|s| s.node == to) {
            if s.instance.generation > 0 {
                let why = format!(
                    "{to} re-entered as a new instance after its state was lost ({}): it takes \
                     no membership of a cell its lost state may have held, so it cannot take \
                     {}'s place",
                    s.instance, args.node
                );
                out.say(why.clone(), Some(serde_json::json!({ "refused": why })));
                return Ok(out.finish(1));
            }
        }
    }
    let mut failed = 0;
    for (cell, jury) in cells {
        let to = args.to.or_else(|| {
            eligible
                .iter()
                .filter(|n| !jury.contains(n))
                .min_by_key(|n| (load.get(n).copied().unwrap_or(0), n.0))
                .copied()
        });
        let Some(to) = to else {
            let why = format!(
                "no node outside its jury [{}] is up and a member to take {}'s place",
                names(jury),
                args.node
            );
            let json = serde_json::json!({ "cell": cell, "verdict": "refused", "reason": why });
            out.say(format!("{cell}: {why}"), Some(json));
            failed += 1;
            continue;
        };
        let change = JuryChange::Replace {
            from: args.node,
            to,
        };
        let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
        let outcome = rt.block_on(move_member(&file, &key, cell, change, deadline))?;
        let line = match &outcome {
            Ok(moved) => {
                *load.entry(to).or_default() += 1;
                moved.line(cell, change)
            }
            Err(refused) => {
                failed += 1;
                format!("{cell}: the move {change} is refused: {refused}")
            }
        };
        out.say(line, Some(outcome_json(cell, change, &outcome)));
    }
    Ok(out.finish(u8::from(failed > 0)))
}

/// What `replace-node` says: lines as they come, or (with `--json`) one document at the end
/// with each cell's outcome and the verdict (`done`, exit 0; `incomplete`, exit 1).
struct Report {
    node: NodeId,
    json: bool,
    cells: Vec<serde_json::Value>,
    notes: Vec<String>,
}

impl Report {
    fn new(args: &ReplaceArgs) -> Report {
        Report {
            node: args.node,
            json: args.json,
            cells: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A line (printed now, or kept as a note) and a cell's outcome for the document.
    fn say(&mut self, line: String, cell: Option<serde_json::Value>) {
        if !self.json {
            println!("{line}");
            return;
        }
        match cell {
            Some(c) => self.cells.push(c),
            None => self.notes.push(line),
        }
    }

    /// Prints the document (with `--json`) and returns `code`.
    fn finish(self, code: u8) -> u8 {
        if self.json {
            let verdict = if code == 0 { "done" } else { "incomplete" };
            let doc = serde_json::json!({
                "node": self.node.to_string(), "verdict": verdict,
                "cells": self.cells, "notes": self.notes,
            });
            println!("{doc}");
        }
        code
    }
}

/// Every node's status that answers.
async fn statuses(file: &ClusterFile, key: &FrameKey) -> Vec<NodeStatus> {
    let mut out = Vec::new();
    for n in &file.nodes {
        let mut client = probe_client(key);
        if let Ok(s) = client.status(&n.addr, u32::MAX).await {
            out.push(s);
        }
    }
    out
}

/// Each cell's latest jury, as the replica with the highest epoch (then commit) knows it.
fn latest_juries(views: &[NodeStatus]) -> BTreeMap<String, Vec<NodeId>> {
    let mut best: BTreeMap<String, (u64, u64, Vec<NodeId>)> = BTreeMap::new();
    for s in views {
        for c in &s.cells {
            let e = best
                .entry(c.cell.clone())
                .or_insert((c.epoch, c.commit, c.jury.clone()));
            if (c.epoch, c.commit) > (e.0, e.1) {
                *e = (c.epoch, c.commit, c.jury.clone());
            }
        }
    }
    best.into_iter().map(|(k, (_, _, j))| (k, j)).collect()
}

fn names(jury: &[NodeId]) -> String {
    jury.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
