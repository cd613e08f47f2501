//! `physalia cluster move`: one jury change of one cell, carried out the way Physalia moves
//! cells: the node that joins is taught first (the leader refuses the change while it
//! catches up), the change goes through the log, and it is in force α slots later.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use physalia_impl::client::{Client, ClientError, ClientOptions};
use physalia_impl::node::frame::FrameKey;
use physalia_traces::{JuryChange, NodeId, Txn, TxnResult};

use super::{probe_client, read_cluster};

/// Options of `cluster move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The cluster's directory.
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// The cell to move (`c0`, ...).
    #[arg(long)]
    pub cell: String,
    /// The member that leaves the jury (a node id, `2` or `n2`).
    #[arg(long, value_parser = parse_node)]
    pub from: NodeId,
    /// The node that joins it.
    #[arg(long, value_parser = parse_node)]
    pub to: NodeId,
    /// Give up after this many seconds (the new node's catch-up included).
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Print the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn parse_node(s: &str) -> Result<NodeId, String> {
    s.strip_prefix('n')
        .unwrap_or(s)
        .parse()
        .map(NodeId)
        .map_err(|_| format!("{s:?} is not a node id (like 2 or n2)"))
}

/// How often the change is asked for again while its node is taught, and the status polled.
const POLL: Duration = Duration::from_millis(200);

/// Runs `cluster move`: exit 0 once the change is in force (the new jury printed), 1 if
/// the cell refuses it (another change in flight, or it does not fit the jury), 2 on a
/// usage or infrastructure error.
pub fn run(args: &MoveArgs) -> Result<u8> {
    if args.from == args.to {
        bail!("--from and --to name the same node {}", args.from);
    }
    let file = read_cluster(&args.dir)?;
    let key = FrameKey::from_file(&file.key_file)?;
    let ids: Vec<u32> = file.nodes.iter().map(|n| n.id).collect();
    for n in [args.from, args.to] {
        if !ids.contains(&n.0) {
            bail!("{n} is not a node of the cluster in {}", args.dir.display());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let change = JuryChange::Replace {
        from: args.from,
        to: args.to,
    };
    if let Some(entry) = file.nodes.iter().find(|n| n.id == args.to.0) {
        let status = rt.block_on(async { probe_client(&key).status(&entry.addr, 0).await });
        if let Ok(s) = status {
            if s.instance.generation > 0 {
                let reason = format!(
                    "{} re-entered as a new instance after its state was lost ({}), and takes \
                     no membership of a cell its lost state may have held (impl/README.md, \
                     \"Amnesia\")",
                    args.to, s.instance
                );
                return Ok(report(&args.cell, change, &Err(reason), args.json));
            }
        }
    }
    let outcome = rt.block_on(move_member(&file, &key, &args.cell, change, deadline))?;
    Ok(report(&args.cell, change, &outcome, args.json))
}

/// Prints one move's outcome (a line, or a JSON document) and returns its exit code: 0 in
/// force, 1 refused.
pub(super) fn report(
    cell: &str,
    change: JuryChange,
    outcome: &std::result::Result<Moved, String>,
    json: bool,
) -> u8 {
    if json {
        println!("{}", outcome_json(cell, change, outcome));
    } else {
        match outcome {
            Ok(moved) => println!("{}", moved.line(cell, change)),
            Err(refused) => println!("{cell}: the move {change} is refused: {refused}"),
        }
    }
    u8::from(outcome.is_err())
}

/// One move's outcome as JSON: `verdict` is `in_force` or `refused`.
pub(super) fn outcome_json(
    cell: &str,
    change: JuryChange,
    outcome: &std::result::Result<Moved, String>,
) -> serde_json::Value {
    match outcome {
        Ok(m) => serde_json::json!({
            "cell": cell, "change": change.to_string(), "verdict": "in_force",
            "jury": m.jury.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "epoch": m.epoch, "in_force": m.in_force, "catch_up_s": m.catch_up_s,
        }),
        Err(reason) => serde_json::json!({
            "cell": cell, "change": change.to_string(), "verdict": "refused", "reason": reason,
        }),
    }
}

/// A change in force: the new jury, its epoch, the slot it is in force from, and how long
/// the joining node took to vote after the change was chosen.
pub(super) struct Moved {
    jury: Vec<NodeId>,
    epoch: u64,
    in_force: u64,
    catch_up_s: f64,
}

impl Moved {
    /// The line `cluster move` prints.
    pub(super) fn line(&self, cell: &str, change: JuryChange) -> String {
        let to = change.joining().map_or_else(String::new, |n| n.to_string());
        let members: Vec<String> = self.jury.iter().map(|n| n.to_string()).collect();
        format!(
            "{cell}: jury [{}] (epoch {}), in force from slot {}; {to} caught up and voting \
             {:.1} s after the change was chosen",
            members.join(","),
            self.epoch,
            self.in_force,
            self.catch_up_s
        )
    }
}

/// Carries out `change` (a replace) on `cell`: proposes it until chosen (the joining node
/// is taught meanwhile), then waits until it is in force with the new node voting.
/// `Ok(Err(reason))`: the cell refuses it.
pub(super) async fn move_member(
    file: &super::ClusterFile,
    key: &FrameKey,
    cell: &str,
    change: JuryChange,
    deadline: Instant,
) -> Result<std::result::Result<Moved, String>> {
    let JuryChange::Replace { to, .. } = change else {
        bail!("only a replace moves a member");
    };
    let seeds: Vec<String> = file.nodes.iter().map(|n| n.addr.clone()).collect();
    let (jury, epoch, in_force) = match propose(&seeds, key, cell, change, deadline).await? {
        Ok(done) => done,
        Err(refused) => return Ok(Err(refused)),
    };
    let started = Instant::now();
    wait_in_force(file, key, cell, Some(to), in_force, deadline)
        .await
        .with_context(|| format!("waiting for {change} to be in force at slot {in_force}"))?;
    Ok(Ok(Moved {
        jury,
        epoch,
        in_force,
        catch_up_s: started.elapsed().as_secs_f64(),
    }))
}

/// Asks the cell's leader for `change` until it is chosen (the joining node is taught in
/// the meantime). `Err(reason)` when the cell refuses it for good.
pub(crate) async fn propose(
    seeds: &[String],
    key: &FrameKey,
    cell: &str,
    change: JuryChange,
    deadline: Instant,
) -> Result<std::result::Result<(Vec<NodeId>, u64, u64), String>> {
    let opts = ClientOptions {
        deadline: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    let mut client = Client::new(seeds.to_vec(), key.clone(), Client::random_id(), opts);
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.txn(cell, Txn::Reconfig { change }).await {
            Ok(TxnResult::Reconfig {
                ok: true,
                jury,
                epoch,
                in_force,
            }) => return Ok(Ok((jury, epoch, in_force))),
            Ok(TxnResult::Reconfig {
                ok: false, jury, ..
            }) => {
                let jury: Vec<String> = jury.iter().map(ToString::to_string).collect();
                return Ok(Err(format!(
                    "it does not fit the jury [{}] at the slot it was chosen at",
                    jury.join(",")
                )));
            }
            Ok(other) => bail!("unexpected answer to a jury change: {other}"),
            Err(ClientError::Rejected(reason)) if reason.contains("being taught") => {
                last = reason;
            }
            Err(ClientError::Rejected(reason)) => return Ok(Err(reason)),
            Err(ClientError::Timeout { last: why, .. }) => last = why,
            Err(ClientError::UnknownCell(c)) => bail!("no node knows the cell {c}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(POLL).await;
    }
    bail!("the change was not chosen in time; last answer: {last}")
}

/// Waits until a replica of the cell has committed past `in_force` and the joining node's
/// copy (if one joins) votes from `in_force` on. An idle cell commits nothing, so while the
/// change is not in force this reads a key through the log now and then (a linearizable
/// `get`), which takes a slot.
pub(crate) async fn wait_in_force(
    file: &super::ClusterFile,
    key: &FrameKey,
    cell: &str,
    joining: Option<NodeId>,
    in_force: u64,
    deadline: Instant,
) -> Result<()> {
    let seeds: Vec<String> = file.nodes.iter().map(|n| n.addr.clone()).collect();
    let mut driver = Client::new(
        seeds,
        key.clone(),
        Client::random_id(),
        ClientOptions::default(),
    );
    loop {
        let (mut past, mut joined) = (false, joining.is_none());
        for n in &file.nodes {
            let mut client = probe_client(key);
            let Ok(s) = client.status(&n.addr, u32::MAX).await else {
                continue;
            };
            for c in s.cells.iter().filter(|c| c.cell == cell) {
                past |= c.commit >= in_force;
                joined |= Some(s.node) == joining && c.since == Some(in_force);
            }
        }
        if past && joined {
            return Ok(());
        }
        if !past {
            let _ = driver.get(cell, "physalia-move").await;
        }
        if Instant::now() >= deadline {
            let who = joining.map_or("no node joins".to_owned(), |j| {
                format!("{j} voting: {joined}")
            });
            bail!("timed out (committed past it: {past}; {who})");
        }
        tokio::time::sleep(POLL).await;
    }
}
