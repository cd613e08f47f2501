//! `physalia colony simulate`: the Monte Carlo of failures and repairs, and its speed.

use std::time::Instant;

use anyhow::{bail, Result};
use physalia_colony::simulate::{simulate, SimOptions};
use physalia_colony::FailureModel;
use serde_json::json;

use super::{emit, emit_json, load_placement, SimulateArgs};

pub(super) fn run(a: &SimulateArgs) -> Result<u8> {
    let topo = a.topo.load()?;
    let (placement, resolved) = load_placement(&topo, &a.placement)?;
    if !(a.hours.is_finite() && a.hours > 0.0 && a.hours <= 1e9) {
        bail!(
            "--hours {}: give a positive number of hours, at most 1e9",
            a.hours
        );
    }
    let opts = SimOptions {
        hours: a.hours,
        seed: a.seed,
        model: FailureModel::default(),
        max_events: a.max_events,
    };
    let started = Instant::now();
    let r = simulate(&topo, &resolved, &opts);
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let mut worst_cells: Vec<usize> = (0..r.cells.len()).collect();
    worst_cells.sort_by(|&x, &y| {
        r.cells[y]
            .downtime_hours
            .total_cmp(&r.cells[x].downtime_hours)
            .then(x.cmp(&y))
    });
    worst_cells.truncate(a.worst);
    worst_cells.retain(|&c| r.cells[c].downtime_hours > 0.0);
    let mut worst_clients: Vec<usize> = (0..r.clients.len()).collect();
    worst_clients.sort_by(|&x, &y| {
        r.clients[x]
            .availability
            .total_cmp(&r.clients[y].availability)
            .then(x.cmp(&y))
    });
    worst_clients.truncate(a.worst);
    let cell_hours: f64 = r.cells.iter().map(|c| c.downtime_hours).sum();
    let mean_client = if r.clients.is_empty() {
        1.0
    } else {
        r.clients.iter().map(|c| c.availability).sum::<f64>() / r.clients.len() as f64
    };
    let rate = json!({
        "wall_s": elapsed,
        "simulated_hours_per_s": r.hours / elapsed,
        "events_per_s": r.events as f64 / elapsed,
    });
    if a.json {
        emit_json(
            "simulate",
            &json!({
                "topology": topo.source,
                "placement": a.placement.display().to_string(),
                "cells": r.cells.len(),
                "hours": r.hours,
                "seed": a.seed,
                "model": opts.model,
                "events": r.events,
                "node_transitions": r.node_transitions,
                "cell_transitions": r.cell_transitions,
                "truncated": r.truncated,
                "cell_hours_without_quorum": cell_hours,
                "mean_client_availability": mean_client,
                "clients": topo.clients.iter().zip(&r.clients).map(|(c, o)| json!({
                    "client": c.name, "up_hours": o.up_hours, "cells": o.cells, "availability": o.availability,
                })).collect::<Vec<_>>(),
                "worst_cells": worst_cells.iter().map(|&c| json!({
                    "cell": placement.cells[c].id,
                    "downtime_hours": r.cells[c].downtime_hours,
                    "outages": r.cells[c].outages,
                })).collect::<Vec<_>>(),
                "rate": rate,
            }),
        )?;
        return Ok(0);
    }
    let mut t = format!(
        "simulated {:.0} h of {} ({} cells, {}) with seed {}{}\n",
        r.hours,
        topo.source,
        r.cells.len(),
        placement.strategy,
        a.seed,
        if r.truncated {
            " (stopped at --max-events)"
        } else {
            ""
        }
    );
    t += &format!(
        "{} failures and repairs, {} node transitions, {} cell quorum losses/recoveries\n",
        r.events, r.node_transitions, r.cell_transitions
    );
    t += &format!(
        "cell-hours without a quorum while the client was up: {cell_hours:.3}\nmean availability per client: {mean_client:.9}\n"
    );
    if !worst_clients.is_empty() {
        t += "worst clients (availability of their cells while they were up):\n";
        for &c in &worst_clients {
            let o = &r.clients[c];
            t += &format!(
                "  {:<16} {:.9} over {} cells, up {:.0} h\n",
                topo.clients[c].name, o.availability, o.cells, o.up_hours
            );
        }
    }
    if worst_cells.is_empty() {
        t += "no cell lost its quorum while its client was up\n";
    } else {
        t += "worst cells:\n";
        for &c in &worst_cells {
            t += &format!(
                "  {:<10} {:.3} h without quorum in {} outages\n",
                placement.cells[c].id, r.cells[c].downtime_hours, r.cells[c].outages
            );
        }
    }
    t += &format!(
        "speed: {elapsed:.2} s wall, {:.0} simulated hours/s, {:.0} events/s\n",
        r.hours / elapsed,
        r.events as f64 / elapsed
    );
    emit(&t)?;
    Ok(0)
}
